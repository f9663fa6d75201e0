package options

import (
	"net/netip"
	"testing"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestNoAllocations pins the promise of the package doc: parsing and
// building do not allocate (STYLE.md: pin it in ordinary tests).
func TestNoAllocations(t *testing.T) {
	area := mustHex(t, "0101080a 00000001 00000002 1e1a 200f 0102030405060708 1112131415161718 00000001 05b4 0101")
	addAddr := mustHex(t, "1e1e 3007 fd000000000000000000000000000002 01bb 0102030405060708")
	var s Segment
	buf := make([]byte, 0, 64)
	dss := DSS{HasAck: true, Ack64: true, DataAck: 1, HasMapping: true, DSN64: true, DSN: 2, SubflowSeq: 1, DataLen: 1448}
	aa := AddAddr{AddrID: 1, Addr: mustAddr("fd00::2"), HasPort: true, Port: 443, HMAC: 7}
	var c DSSChecksum
	mp := make([]byte, 0, 40)
	payload := make([]byte, 1448)
	allocs := testing.AllocsPerRun(200, func() {
		s.Parse(area, dataCtx)
		d := s.Options[0].DSS()
		buf = d.Append(buf[:0])
		buf = aa.Append(buf[:0])
		o, _, _ := Parse(addAddr, ackCtx)
		_ = o.AddAddr()
		buf = MPJoin{Variant: JoinACK}.Append(buf[:0])
		buf = MPCapable{Variant: CapableDataChecksum}.Append(buf[:0])
		mp = dss.Append(mp[:0])
		buf, _, _ = Fit(buf[:0], area[:12], mp)
		c.Add(payload)
		_ = c.Sum(1, 1, 1448)
		_, _ = TokenIDSN(keyA)
		_ = JoinHMAC(keyA, keyB, nonceA, nonceB)
		_ = AddAddrHMAC(keyA, keyB, 1, aa.Addr, 443)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}
