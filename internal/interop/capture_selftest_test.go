//go:build linux

package interop

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// recorder is a testing.TB that records errors instead of failing, and
// logs too, to test the checks themselves.
type recorder struct {
	testing.TB
	errs, logs []string
}

func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.TB.Logf(format, args...)
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }

// TestCaptureChecksCatch makes sure the capture checks are not vacuous: a
// capture with a malformed MPTCP option (a DSS of length 3) fails both
// decode's well-formed check and tshark's, and a capture with nothing wrong
// passes.
func TestCaptureChecksCatch(t *testing.T) {
	requireSuite(t)
	dir := t.TempDir()
	write := func(name string, opts []byte) *capture {
		p := filepath.Join(dir, name+".pcap")
		if err := os.WriteFile(p, rawPcap(tcpSegment(opts)), 0o644); err != nil {
			t.Fatal(err)
		}
		return &capture{path: p, dev: name, stopped: true}
	}
	bad := &recorder{TB: t}
	write("bad", []byte{30, 3, 0x20}).verify(bad, captureWant{})
	var decodeSaw, tsharkSaw bool
	for _, e := range bad.errs {
		t.Logf("caught: %s", e)
		decodeSaw = decodeSaw || strings.Contains(e, "malformed MPTCP options")
		tsharkSaw = tsharkSaw || strings.Contains(e, "tshark") && strings.Contains(e, "_ws.malformed")
	}
	if !decodeSaw || !tsharkSaw {
		t.Errorf("a malformed DSS went through: decode caught it %v, tshark %v", decodeSaw, tsharkSaw)
	}
	// A well-formed DSS with a data ACK only: no error.
	good := &recorder{TB: t}
	dss := []byte{30, 8, 0x20, 0x01, 0, 0, 0, 1}
	write("good", dss).verify(good, captureWant{})
	if len(good.errs) > 0 {
		t.Errorf("a well-formed capture fails: %v", good.errs)
	}
}

// TestCaptureChecksWiresharkLookup: a capture on which Wireshark's MPTCP
// mapping lookup fails its assertion (see capture.tshark) passes when decode
// finds the mappings consistent, and fails on decode's check when they are
// not. The client maps 2,000 bytes from subflow seq 1 on a segment of 1,000,
// retransmits the first 500 under a mapping of 500 from the same start, then
// sends bytes 1001-2000 under a mapping that starts at them: Wireshark's
// node for start 1 keeps the 2,000-byte range with the 500-byte mapping,
// and its lookup for byte 1001 returns that mapping.
func TestCaptureChecksWiresharkLookup(t *testing.T) {
	requireSuite(t)
	dir := t.TempDir()
	const keyC, keyS, isnC, isnS = 0x0102030405060708, 0x1112131415161718, 1000, 5000
	for _, tt := range []struct {
		name string
		skew uint64 // added to the DSN of the retransmission's mapping
	}{{"consistent", 0}, {"inconsistent", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			base := options.IDSN(keyC) + 1
			flags := uint8(options.CapableFlagHMACSHA256)
			cli := func(seq uint32, payload int, o ...interface{ Append([]byte) []byte }) []byte {
				var opts []byte
				for _, x := range o {
					opts = x.Append(opts)
				}
				return rawSegment(1000, 80, 1, 2, seq, isnS+1, 0x10, opts, payload)
			}
			dss := func(ssn uint32, n int, dsn uint64) options.DSS {
				return options.DSS{HasAck: true, DataAck: uint64(options.IDSN(keyS) + 1), HasMapping: true, DSN64: true,
					DSN: base + dsn, SubflowSeq: ssn, DataLen: uint16(n)}
			}
			pkts := [][]byte{
				rawSegment(1000, 80, 1, 2, isnC, 0, 0x02, options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: flags}.Append(nil), 0),
				rawSegment(80, 1000, 2, 1, isnS, isnC+1, 0x12, options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: flags, SenderKey: keyS}.Append(nil), 0),
				cli(isnC+1, 0, options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: flags, SenderKey: keyC, ReceiverKey: keyS}),
				cli(isnC+1, 1000, dss(1, 2000, 0)),
				cli(isnC+1, 500, dss(1, 500, tt.skew)),
				cli(isnC+1001, 1000, dss(1001, 1000, 1000)),
			}
			p := filepath.Join(dir, tt.name+".pcap")
			if err := os.WriteFile(p, rawPcap(pkts...), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &recorder{TB: t}
			(&capture{path: p, dev: tt.name, stopped: true}).verify(r, captureWant{handshake: true})
			lookup := false
			for _, l := range r.logs {
				lookup = lookup || strings.Contains(l, "MPTCP mapping lookup fails its assertion on 1 segments")
			}
			if !lookup {
				t.Errorf("tshark's lookup did not fail on frame 6 (the case this test is about): %q", r.logs)
			}
			caught := false
			for _, e := range r.errs {
				caught = caught || strings.Contains(e, "mapping ties subflow bytes to other DSNs")
			}
			switch {
			case tt.skew == 0 && len(r.errs) > 0:
				t.Errorf("consistent mappings fail: %q", r.errs)
			case tt.skew != 0 && !caught:
				t.Errorf("inconsistent mappings pass: %q", r.errs)
			}
		})
	}
}

// rawSegment is an IPv4 TCP segment from 10.0.0.src to 10.0.0.dst with the
// given options (padded with NOPs) and payload bytes of zeros. Checksums
// are left zero.
func rawSegment(sport, dport uint16, src, dst byte, seq, ack uint32, flags byte, opts []byte, payload int) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	tcp := make([]byte, 20+len(opts)+payload)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = byte((20+len(opts))/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], opts)
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, src, 10, 0, 0, dst}
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+len(tcp)))
	return append(ip, tcp...)
}

// tcpSegment is an IPv4 ACK from 10.0.0.1:1000 to 10.0.0.2:80 with the
// given TCP options (padded with NOPs) and no payload.
func tcpSegment(opts []byte) []byte {
	return rawSegment(1000, 80, 1, 2, 1, 1, 0x10, opts, 0)
}

// rawPcap is a pcap file (LINKTYPE_RAW) holding the packets.
func rawPcap(pkts ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 101)
	for i, p := range pkts {
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
