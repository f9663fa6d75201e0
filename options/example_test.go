package options_test

import (
	"fmt"

	"github.com/umptcp/umptcp/options"
)

// Decode the options of a data segment: timestamps and a DSS, as Linux
// sends them.
func ExampleSegment() {
	area := []byte{
		0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2, // NOP NOP TS
		0x1e, 0x16, 0x20, 0x0d, 0x01, 0x02, 0x03, 0x04, // DSS, 32-bit data ACK
		0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 1, 0x05, 0xb4, // 64-bit DSN, subflow seq 1, 1460 bytes
	}
	var seg options.Segment
	seg.Parse(area, options.ContextACK|options.ContextPayload)
	for _, o := range seg.List() {
		d := o.DSS()
		fmt.Printf("%v ack=%#x dsn=%#x ssn=%d len=%d\n", o.Subtype, d.DataAck, d.DSN, d.SubflowSeq, d.DataLen)
	}
	// Output: DSS ack=0x1020304 dsn=0x1000 ssn=1 len=1460
}

// Build a DSS and fit it next to the timestamp option.
func ExampleFit() {
	ts := []byte{0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2}
	var mp [options.MaxTCPOptionsLen]byte
	dss := options.DSS{HasAck: true, Ack64: true, DataAck: 100, HasMapping: true, DSN64: true, DSN: 200, SubflowSeq: 1, DataLen: 1448}
	area, omitted, err := options.Fit(nil, ts, dss.Append(mp[:0]))
	fmt.Println(len(area), omitted, err)
	// Output: 40 0 <nil>
}

func ExampleTokenIDSN() {
	token, idsn := options.TokenIDSN(0x0102030405060708)
	fmt.Printf("token %08x idsn %016x\n", token, idsn)
	// Output: token 66840dda idsn f5a101d3d29d6f72
}
