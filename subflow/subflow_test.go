package subflow

import (
	"fmt"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// Pure tests of a subflow's MPTCP logic: two Subflows exchange the options
// of a handshake and of data segments through Outgoing and Incoming, as the
// shim would, with no packets and no gVisor.

const (
	keyA = 0x0102030405060708 // initiator
	keyB = 0x1112131415161718 // responder
)

// The initiator's ISN is close to the wrap of the sequence space, on
// purpose: relative sequence numbers must not care.
var isnA, isnB uint32 = 0xfffffff0, 1000

var idsnA, idsnB = options.IDSN(keyA), options.IDSN(keyB)

// appender is an option that can be encoded.
type appender interface{ Append([]byte) []byte }

// segOpts parses the options of a segment as the peer would.
func segOpts(flags uint8, payload int, raw []byte) *options.Segment {
	var s options.Segment
	s.Parse(options.PadNOP(append([]byte(nil), raw...)), options.ContextOf(flags, payload))
	return &s
}

// build encodes options into an option area.
func build(flags uint8, payload int, opts ...appender) *options.Segment {
	var b []byte
	for _, o := range opts {
		b = o.Append(b)
	}
	return segOpts(flags, payload, b)
}

func only(t *testing.T, s *options.Segment, st options.Subtype) *options.Option {
	t.Helper()
	if len(s.List()) != 1 || s.List()[0].Subtype != st || s.List()[0].Malformed {
		t.Fatalf("want exactly one well-formed %v, got %+v", st, s.List())
	}
	return &s.List()[0]
}

// pair is an initiator and a responder subflow and what their handshake
// negotiated.
type pair struct {
	ini, rsp *Subflow
	csum     bool
}

// out runs Outgoing and fails on anything unexpected.
func out(t *testing.T, s *Subflow, seg Segment, c ConnState) ([]byte, int) {
	t.Helper()
	b, split, _ := s.Outgoing(nil, seg, c)
	return b, split
}

// handshake runs the three-way handshake between two fresh subflows,
// checking each MP_CAPABLE byte for byte.
func handshake(t *testing.T, wantA, wantB bool) *pair {
	t.Helper()
	p := &pair{
		ini:  New(Config{Role: Initiator, LocalKey: keyA, WantChecksum: wantA}),
		rsp:  New(Config{Role: Responder, LocalKey: keyB, WantChecksum: wantB}),
		csum: wantA || wantB,
	}
	flags := uint8(options.CapableFlagHMACSHA256)
	csumFlag := uint8(0)
	if p.csum {
		csumFlag = options.CapableFlagChecksum
	}

	// SYN: len 4, v1, H (and A if the initiator asks).
	syn := Segment{Flags: FlagSYN, Seq: isnA}
	raw, _ := out(t, p.ini, syn, ConnState{})
	o := only(t, segOpts(syn.Flags, 0, raw), options.SubtypeMPCapable)
	mpc := o.MPCapable()
	wantSYN := flags
	if wantA {
		wantSYN |= options.CapableFlagChecksum
	}
	if o.Len() != 4 || mpc.Variant != options.CapableSYN || mpc.Version != 1 || mpc.Flags != wantSYN {
		t.Fatalf("SYN: %+v", mpc)
	}
	p.rsp.AcceptSYN(isnA, mpc)

	// SYN/ACK: len 12, the responder's key, A iff negotiated.
	sa := Segment{Flags: FlagSYN | FlagACK, Seq: isnB, Ack: isnA + 1}
	raw, _ = out(t, p.rsp, sa, ConnState{})
	o = only(t, segOpts(sa.Flags, 0, raw), options.SubtypeMPCapable)
	mpc = o.MPCapable()
	if o.Len() != 12 || mpc.Variant != options.CapableSYNACK || mpc.Version != 1 || mpc.Flags != flags|csumFlag || mpc.SenderKey != keyB {
		t.Fatalf("SYN/ACK: %+v", mpc)
	}
	ev := p.ini.Incoming(sa, segOpts(sa.Flags, 0, raw), Refs{})
	if !ev.Established || ev.RemoteKey != keyB || ev.Checksum != p.csum || ev.Fallback != NoFallback {
		t.Fatalf("initiator on the SYN/ACK: %+v", ev)
	}

	// Third ACK: len 20, the initiator's key then the responder's.
	a3 := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1}
	raw, _ = out(t, p.ini, a3, ConnState{DataAck: idsnB + 1, DataAckOK: true})
	o = only(t, segOpts(a3.Flags, 0, raw), options.SubtypeMPCapable)
	mpc = o.MPCapable()
	if o.Len() != 20 || mpc.Variant != options.CapableACK || mpc.Flags != flags|csumFlag || mpc.SenderKey != keyA || mpc.ReceiverKey != keyB {
		t.Fatalf("third ACK: %+v", mpc)
	}
	ev = p.rsp.Incoming(a3, segOpts(a3.Flags, 0, raw), Refs{})
	if !ev.Established || ev.RemoteKey != keyA || ev.Checksum != p.csum || !ev.CapableACKRX {
		t.Fatalf("responder on the third ACK: %+v", ev)
	}
	for _, s := range []*Subflow{p.ini, p.rsp} {
		if !s.Established() || s.Checksum() != p.csum || s.Fallback() != NoFallback {
			t.Fatalf("%v: established %v checksum %v fallback %v", s.Role(), s.Established(), s.Checksum(), s.Fallback())
		}
	}
	if l, r, ok := p.ini.Keys(); l != keyA || r != keyB || !ok {
		t.Fatalf("initiator's keys %x %x %v", l, r, ok)
	}
	if l, r, ok := p.rsp.Keys(); l != keyB || r != keyA || !ok {
		t.Fatalf("responder's keys %x %x %v", l, r, ok)
	}
	return p
}

func TestHandshakeChecksumCombinations(t *testing.T) {
	for _, a := range []bool{false, true} {
		for _, b := range []bool{false, true} {
			handshake(t, a, b)
		}
	}
}

// sum returns the DSS checksum of data mapped at dsn, ssn.
func sum(data []byte, dsn uint64, ssn uint32, wireLen uint16) uint16 {
	var c options.DSSChecksum
	c.Add(data)
	return c.Sum(dsn, ssn, wireLen)
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestFirstDataCarriesCapable: the initiator's first data carries
// MP_CAPABLE with both keys and the data-level length (24 bytes with the
// checksum) instead of a DSS, until the responder's DSS arrives; the
// responder maps it at IDSN+1, subflow sequence 1.
func TestFirstDataCarriesCapable(t *testing.T) {
	for _, csum := range []bool{false, true} {
		p := handshake(t, csum, false)
		data := payload(3000, 1)
		p.ini.AddTXMapping(idsnA+1, len(data), options.PartialSum(data), false)
		seg := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1, PayloadLen: 1400}
		raw, split := out(t, p.ini, seg, ConnState{DataAck: idsnB + 1, DataAckOK: true})
		opts := segOpts(seg.Flags, seg.PayloadLen, raw)
		mpc := only(t, opts, options.SubtypeMPCapable).MPCapable()
		wantV := options.CapableData
		if csum {
			wantV = options.CapableDataChecksum
		}
		if split != 0 || mpc.Variant != wantV || mpc.SenderKey != keyA || mpc.ReceiverKey != keyB || mpc.DataLen != 3000 {
			t.Fatalf("checksum %v: first data %+v split %d", csum, mpc, split)
		}
		if csum && mpc.Checksum != sum(data, idsnA+1, 1, 3000) {
			t.Errorf("MP_CAPABLE checksum %#x, want %#x", mpc.Checksum, sum(data, idsnA+1, 1, 3000))
		}
		// A retransmission carries the same.
		raw2, _ := out(t, p.ini, seg, ConnState{DataAck: idsnB + 1, DataAckOK: true})
		if string(raw2) != string(raw) {
			t.Errorf("retransmission of the first data carries other options")
		}
		ev := p.rsp.Incoming(seg, opts, Refs{RcvNxt: idsnA + 1})
		if !ev.HasMapping || ev.Mapping != RXAdded {
			t.Fatalf("responder on the first data: %+v", ev)
		}
		m, rel, ok := p.rsp.NextRX()
		if !ok || rel != 1 || m.SSN != 1 || m.DSN != idsnA+1 || m.Len != 3000 || m.HasChecksum != csum {
			t.Fatalf("responder's mapping %+v rel %d ok %v", m, rel, ok)
		}
		// The next segment, still before the responder's DSS, carries a DSS.
		seg2 := Segment{Flags: FlagACK, Seq: isnA + 1401, Ack: isnB + 1, PayloadLen: 1600}
		raw, _ = out(t, p.ini, seg2, ConnState{DataAck: idsnB + 1, DataAckOK: true})
		d := only(t, segOpts(seg2.Flags, seg2.PayloadLen, raw), options.SubtypeDSS).DSS()
		if !d.HasMapping || d.DSN != idsnA+1 || d.SubflowSeq != 1 || d.DataLen != 3000 || !d.HasAck || !d.Ack64 || d.DataAck != idsnB+1 {
			t.Fatalf("second segment: %+v", d)
		}
		// The responder's DSS (with a DATA_ACK) confirms the keys: the
		// first segment's retransmission then carries a DSS.
		ack := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 3001}
		ev = p.ini.Incoming(ack, build(ack.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1}), Refs{SndUna: idsnA + 1})
		if !ev.HasDataAck || ev.DataAck != idsnA+1 || !p.ini.fullyEstablished {
			t.Fatalf("initiator on the responder's DSS: %+v fully %v", ev, p.ini.fullyEstablished)
		}
		raw, _ = out(t, p.ini, seg, ConnState{DataAck: idsnB + 1, DataAckOK: true})
		d = only(t, segOpts(seg.Flags, seg.PayloadLen, raw), options.SubtypeDSS).DSS()
		if d.DSN != idsnA+1 || d.SubflowSeq != 1 || d.DataLen != 3000 || d.HasChecksum != csum ||
			(csum && d.Checksum != sum(data, idsnA+1, 1, 3000)) {
			t.Fatalf("retransmission after confirmation: %+v", d)
		}
	}
}

// TestThirdACKLost: the responder learns the initiator's key from the
// MP_CAPABLE on the first data.
func TestThirdACKLost(t *testing.T) {
	ini := New(Config{Role: Initiator, LocalKey: keyA})
	rsp := New(Config{Role: Responder, LocalKey: keyB})
	synRaw, _ := out(t, ini, Segment{Flags: FlagSYN, Seq: isnA}, ConnState{})
	rsp.AcceptSYN(isnA, segOpts(FlagSYN, 0, synRaw).Find(options.SubtypeMPCapable).MPCapable())
	sa := Segment{Flags: FlagSYN | FlagACK, Seq: isnB, Ack: isnA + 1}
	saRaw, _ := out(t, rsp, sa, ConnState{})
	ini.Incoming(sa, segOpts(sa.Flags, 0, saRaw), Refs{})
	out(t, ini, Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1}, ConnState{}) // lost
	ini.AddTXMapping(idsnA+1, 500, 0, false)
	seg := Segment{Flags: FlagACK | FlagPSH, Seq: isnA + 1, Ack: isnB + 1, PayloadLen: 500}
	raw, _ := out(t, ini, seg, ConnState{DataAck: idsnB + 1, DataAckOK: true})
	ev := rsp.Incoming(seg, segOpts(seg.Flags, seg.PayloadLen, raw), Refs{})
	// (The mapping is taken twice, by the third-ACK path and the
	// first-data path, so the event says RXDuplicate; only the table
	// matters.)
	if !ev.Established || ev.RemoteKey != keyA || !ev.HasMapping {
		t.Fatalf("responder on the first data: %+v", ev)
	}
	if m, _, ok := rsp.NextRX(); !ok || m.DSN != idsnA+1 || m.SSN != 1 || m.Len != 500 {
		t.Fatalf("mapping %+v %v", m, ok)
	}
}

// TestHandshakeFallback: every way the handshake can end in plain TCP.
func TestHandshakeFallback(t *testing.T) {
	breakers := []struct {
		name string
		f    func(o []byte)
	}{
		{"no option", nil},
		{"B set", func(o []byte) { o[3] |= options.CapableFlagExtensibility }},
		{"H clear", func(o []byte) { o[3] &^= options.CapableFlagHMACSHA256 }},
		{"other crypto bit", func(o []byte) { o[3] |= 0x04 }},
		{"version 0", func(o []byte) { o[2] &^= 0x0f }},
		{"version 2", func(o []byte) { o[2] = o[2]&0xf0 | 2 }},
	}
	for _, b := range breakers {
		// The SYN/ACK: the initiator falls back.
		ini := New(Config{Role: Initiator, LocalKey: keyA})
		out(t, ini, Segment{Flags: FlagSYN, Seq: isnA}, ConnState{})
		raw := options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: options.CapableFlagHMACSHA256, SenderKey: keyB}.Append(nil)
		if b.f == nil {
			raw = nil
		} else {
			b.f(raw)
		}
		sa := Segment{Flags: FlagSYN | FlagACK, Seq: isnB, Ack: isnA + 1}
		ev := ini.Incoming(sa, segOpts(sa.Flags, 0, raw), Refs{})
		if ev.Fallback != FallbackNoMPCOnSYNACK || ev.Established || ini.Established() || ini.Fallback() != FallbackNoMPCOnSYNACK {
			t.Errorf("SYN/ACK %s: %+v", b.name, ev)
		}
		// A fallen-back subflow adds no option, not even to a RST.
		for _, f := range []uint8{FlagACK, FlagRST | FlagACK} {
			if o, _ := out(t, ini, Segment{Flags: f, Seq: isnA + 1, Ack: isnB + 1}, ConnState{FastClose: true}); len(o) != 0 {
				t.Errorf("SYN/ACK %s: options after fallback: %x", b.name, o)
			}
		}
		if _, ok := ini.PureACK(); ok {
			t.Errorf("SYN/ACK %s: pure ACK offered after fallback", b.name)
		}

		// The third ACK: the responder falls back.
		rsp := New(Config{Role: Responder, LocalKey: keyB})
		rsp.AcceptSYN(isnA, options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: options.CapableFlagHMACSHA256})
		out(t, rsp, Segment{Flags: FlagSYN | FlagACK, Seq: isnB, Ack: isnA + 1}, ConnState{})
		raw = options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: options.CapableFlagHMACSHA256, SenderKey: keyA, ReceiverKey: keyB}.Append(nil)
		if b.f == nil {
			raw = nil
		} else {
			b.f(raw)
		}
		a3 := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1}
		ev = rsp.Incoming(a3, segOpts(a3.Flags, 0, raw), Refs{})
		if ev.Fallback != FallbackNoMPCOnACK || ev.Established || rsp.Fallback() != FallbackNoMPCOnACK {
			t.Errorf("third ACK %s: %+v", b.name, ev)
		}
	}
	// A third ACK echoing another key than ours.
	rsp := New(Config{Role: Responder, LocalKey: keyB})
	rsp.AcceptSYN(isnA, options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: options.CapableFlagHMACSHA256})
	out(t, rsp, Segment{Flags: FlagSYN | FlagACK, Seq: isnB, Ack: isnA + 1}, ConnState{})
	a3 := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1}
	ev := rsp.Incoming(a3, build(a3.Flags, 0, options.MPCapable{Variant: options.CapableACK, Version: 1,
		Flags: options.CapableFlagHMACSHA256, SenderKey: keyA, ReceiverKey: keyB ^ 1}), Refs{})
	if ev.Fallback != FallbackNoMPCOnACK {
		t.Errorf("third ACK with the wrong receiver key: %+v", ev)
	}
	// A SYN may offer a higher version; the SYN/ACK answers with 1.
	rsp = New(Config{Role: Responder, LocalKey: keyB})
	mpc := options.MPCapable{Variant: options.CapableSYN, Version: 3, Flags: options.CapableFlagHMACSHA256}
	if !mpc.Usable() {
		t.Fatalf("a SYN offering version 3 is not usable")
	}
	rsp.AcceptSYN(isnA, mpc)
	raw, _ := out(t, rsp, Segment{Flags: FlagSYN | FlagACK, Seq: isnB, Ack: isnA + 1}, ConnState{})
	if m := segOpts(FlagSYN|FlagACK, 0, raw).Find(options.SubtypeMPCapable); m == nil || m.MPCapable().Version != 1 {
		t.Errorf("SYN/ACK to a version 3 SYN: %x", raw)
	}
}

// TestDSSExpansion: 32-bit DSNs and DATA_ACKs are expanded against the
// connection's 64-bit state, across 2^32 boundaries both ways (§3.3).
func TestDSSExpansion(t *testing.T) {
	cases := []struct {
		ref  uint64
		low  uint32
		want uint64
	}{
		{0x1_ffff_fff0, 0x0000_0010, 0x2_0000_0010},
		{0x2_0000_0010, 0xffff_fff0, 0x1_ffff_fff0},
		{0x5_1234_5678, 0x1234_5678, 0x5_1234_5678},
		{0x5_1234_5678, 0x1234_9999, 0x5_1234_9999},
		{0x10, 0xffff_fff0, 0xffff_ffff_ffff_fff0}, // just before the 64-bit wrap
	}
	for _, c := range cases {
		p := handshake(t, false, false)
		seg := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, PayloadLen: 100}
		d := options.DSS{HasAck: true, DataAck: uint64(c.low), HasMapping: true, DSN: uint64(c.low), SubflowSeq: 1, DataLen: 100}
		ev := p.ini.Incoming(seg, build(seg.Flags, seg.PayloadLen, d), Refs{RcvNxt: c.ref, SndUna: c.ref})
		if !ev.HasDataAck || ev.DataAck != c.want {
			t.Errorf("DATA_ACK %#x against %#x: %#x, want %#x", c.low, c.ref, ev.DataAck, c.want)
		}
		if m, _, ok := p.ini.NextRX(); !ok || m.DSN != c.want {
			t.Errorf("DSN %#x against %#x: %+v, want %#x", c.low, c.ref, m, c.want)
		}
		// A 32-bit DATA_FIN alone is expanded the same way.
		seg = Segment{Flags: FlagACK, Seq: isnB + 101, Ack: isnA + 1}
		ev = p.ini.Incoming(seg, build(seg.Flags, 0, options.DSS{HasMapping: true, DataFIN: true, DSN: uint64(c.low), DataLen: 1}), Refs{RcvNxt: c.ref})
		if !ev.HasDataFIN || ev.DataFINSeq != c.want {
			t.Errorf("DATA_FIN %#x against %#x: %+v", c.low, c.ref, ev)
		}
	}
}

// TestDataFIN: a DATA_FIN alone takes one DSN at subflow sequence 0; with
// data it ends the mapping, which maps one byte fewer than its length.
func TestDataFIN(t *testing.T) {
	p := handshake(t, false, false)
	// Alone, on an option-only ACK.
	seg := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}
	ev := p.ini.Incoming(seg, build(seg.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1,
		HasMapping: true, DSN64: true, DataFIN: true, DSN: idsnB + 1, SubflowSeq: 0, DataLen: 1}), Refs{RcvNxt: idsnB + 1})
	if !ev.HasDataFIN || ev.DataFINSeq != idsnB+1 || ev.HasMapping {
		t.Errorf("DATA_FIN alone: %+v", ev)
	}
	if _, _, ok := p.ini.NextRX(); ok {
		t.Errorf("DATA_FIN alone left a mapping")
	}
	// With 100 bytes of data.
	seg = Segment{Flags: FlagACK | FlagFIN, Seq: isnB + 1, Ack: isnA + 1, PayloadLen: 100}
	ev = p.ini.Incoming(seg, build(seg.Flags, seg.PayloadLen, options.DSS{HasMapping: true, DSN64: true,
		DataFIN: true, DSN: idsnB + 1, SubflowSeq: 1, DataLen: 101}), Refs{RcvNxt: idsnB + 1})
	if !ev.HasDataFIN || ev.DataFINSeq != idsnB+101 || !ev.HasMapping || ev.Mapping != RXAdded {
		t.Errorf("DATA_FIN with data: %+v", ev)
	}
	if m, _, ok := p.ini.NextRX(); !ok || m.Len != 100 || m.WireLen != 101 || !m.DataFIN {
		t.Errorf("mapping of DATA_FIN with data: %+v", m)
	}

	// Sending: an ACK while our DATA_FIN is pending carries it alone, with
	// a checksum over nothing when checksums are on.
	for _, csum := range []bool{false, true} {
		p := handshake(t, csum, false)
		raw, _ := out(t, p.rsp, Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1},
			ConnState{DataAck: idsnA + 1, DataAckOK: true, DataFIN: true, DataFINSeq: idsnB + 1})
		d := only(t, segOpts(FlagACK, 0, raw), options.SubtypeDSS).DSS()
		if !d.DataFIN || !d.HasMapping || d.DSN != idsnB+1 || d.SubflowSeq != 0 || d.DataLen != 1 || d.HasChecksum != csum {
			t.Errorf("checksum %v: DATA_FIN sent %+v", csum, d)
		}
		if csum && d.Checksum != sum(nil, idsnB+1, 0, 1) {
			t.Errorf("DATA_FIN checksum %#x, want %#x", d.Checksum, sum(nil, idsnB+1, 0, 1))
		}
	}
}

// TestRXMappingOutcomes sends mappings through Incoming: identical
// retransmissions, conflicts, mappings out of any window, over the limit,
// not covering their segment, with or without the checksum.
func TestRXMappingOutcomes(t *testing.T) {
	p := handshake(t, false, false)
	p.ini.rx.limit = 3
	send := func(rel uint32, payload int, d options.DSS) Events {
		seg := Segment{Flags: FlagACK, Seq: isnB + rel, Ack: isnA + 1, PayloadLen: payload}
		d.HasMapping, d.DSN64 = true, true
		return p.ini.Incoming(seg, build(seg.Flags, payload, d), Refs{RcvNxt: idsnB + 1})
	}
	steps := []struct {
		name     string
		rel      uint32
		payload  int
		d        options.DSS
		want     RXResult
		misfit   bool
		mismatch bool
	}{
		{"first", 1, 1000, options.DSS{DSN: idsnB + 1, SubflowSeq: 1, DataLen: 2000}, RXAdded, false, false},
		{"second segment of it", 1001, 1000, options.DSS{DSN: idsnB + 1, SubflowSeq: 1, DataLen: 2000}, RXDuplicate, false, false},
		{"other DSN", 1, 1000, options.DSS{DSN: idsnB + 9, SubflowSeq: 1, DataLen: 2000}, RXConflict, false, false},
		{"not covering its segment", 5001, 1000, options.DSS{DSN: idsnB + 2001, SubflowSeq: 2001, DataLen: 100}, RXAdded, true, false},
		{"checksum not negotiated", 3001, 100, options.DSS{DSN: idsnB + 3001, SubflowSeq: 3001, DataLen: 100, HasChecksum: true}, 0, false, true},
		{"out of any window", 1 << 31, 100, options.DSS{DSN: idsnB + 1<<31, SubflowSeq: 1 << 31, DataLen: 100}, RXConflict, false, false},
		{"third", 9001, 100, options.DSS{DSN: idsnB + 9001, SubflowSeq: 9001, DataLen: 100}, RXAdded, false, false},
		{"over the limit", 10001, 100, options.DSS{DSN: idsnB + 10001, SubflowSeq: 10001, DataLen: 100}, RXFull, false, false},
	}
	for _, s := range steps {
		ev := send(s.rel, s.payload, s.d)
		if ev.ChecksumMismatch != s.mismatch {
			t.Errorf("%s: checksum mismatch %v", s.name, ev.ChecksumMismatch)
		}
		if s.mismatch {
			continue
		}
		if !ev.HasMapping || ev.Mapping != s.want || ev.MappingMisfit != s.misfit {
			t.Errorf("%s: %+v, want result %d misfit %v", s.name, ev, s.want, s.misfit)
		}
	}
	// The reader consumes the first mapping: the same mapping again is
	// then old news, and the table has room again.
	p.ini.Consumed(2000)
	if ev := send(1, 1000, options.DSS{DSN: idsnB + 1, SubflowSeq: 1, DataLen: 2000}); ev.Mapping != RXConsumed {
		t.Errorf("mapping of consumed bytes: %+v", ev)
	}
	if ev := send(10001, 100, options.DSS{DSN: idsnB + 10001, SubflowSeq: 10001, DataLen: 100}); ev.Mapping != RXAdded {
		t.Errorf("after consuming: %+v", ev)
	}
	// A checksum missing although negotiated.
	q := handshake(t, true, false)
	seg := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, PayloadLen: 10}
	ev := q.ini.Incoming(seg, build(seg.Flags, 10, options.DSS{HasMapping: true, DSN64: true, DSN: idsnB + 1, SubflowSeq: 1, DataLen: 10}), Refs{})
	if !ev.ChecksumMismatch || ev.HasMapping {
		t.Errorf("checksum missing: %+v", ev)
	}
}

// TestInfiniteMapping: the peer's infinite mapping makes the subflow
// plain TCP from its subflow sequence number on, mapped to its DSN; stored
// mappings after it are dropped, those before it kept; one that starts
// before the reader starts at the reader.
func TestInfiniteMapping(t *testing.T) {
	p := handshake(t, false, false)
	for _, rel := range []uint32{1, 1001, 2001} {
		seg := Segment{Flags: FlagACK, Seq: isnB + rel, Ack: isnA + 1, PayloadLen: 1000}
		p.ini.Incoming(seg, build(seg.Flags, 1000, options.DSS{HasMapping: true, DSN64: true, DSN: idsnB + uint64(rel), SubflowSeq: rel, DataLen: 1000}), Refs{})
	}
	// The infinite mapping starts where the third mapping starts (as the
	// sender's next new data does): it replaces the third.
	seg := Segment{Flags: FlagACK, Seq: isnB + 2001, Ack: isnA + 1, PayloadLen: 100}
	ev := p.ini.Incoming(seg, build(seg.Flags, 100, options.DSS{HasMapping: true, DSN64: true, DSN: 777, SubflowSeq: 2001, DataLen: 0}), Refs{})
	if !ev.InfiniteMapping || ev.Fallback != FallbackInfiniteMapping || p.ini.Fallback() != FallbackInfiniteMapping {
		t.Fatalf("infinite mapping: %+v", ev)
	}
	if m, _, ok := p.ini.NextRX(); !ok || m.Infinite || m.SSN != 1 {
		t.Errorf("mapping before the infinite one: %+v", m)
	}
	p.ini.Consumed(1000)
	if m, _, ok := p.ini.NextRX(); !ok || m.Infinite || m.SSN != 1001 {
		t.Errorf("the mapping before the infinite one: %+v", m)
	}
	p.ini.Consumed(1000)
	m, rel, ok := p.ini.NextRX()
	if !ok || !m.Infinite || m.SSN != 2001 || m.DSN != 777 || rel != 2001 {
		t.Fatalf("infinite mapping in the table: %+v rel %d", m, rel)
	}
	p.ini.Consumed(1 << 20)
	if m, rel, ok := p.ini.NextRX(); !ok || !m.Infinite || rel != 2001+1<<20 {
		t.Errorf("a megabyte later: %+v rel %d", m, rel)
	}
	// After the fallback the subflow ignores options.
	seg = Segment{Flags: FlagACK, Seq: isnB + 5000, Ack: isnA + 1, PayloadLen: 10}
	if ev := p.ini.Incoming(seg, build(seg.Flags, 10, options.DSS{HasAck: true, Ack64: true, DataAck: 5}), Refs{}); ev.HasDataAck {
		t.Errorf("DATA_ACK taken after the fallback")
	}

	// Retroactive: it starts before what the reader consumed, so it
	// starts at the reader, with the DSN moved as much.
	q := handshake(t, false, false)
	seg = Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, PayloadLen: 1000}
	q.ini.Incoming(seg, build(seg.Flags, 1000, options.DSS{HasMapping: true, DSN64: true, DSN: idsnB + 1, SubflowSeq: 1, DataLen: 1000}), Refs{})
	q.ini.Consumed(1000)
	seg = Segment{Flags: FlagACK, Seq: isnB + 1001, Ack: isnA + 1, PayloadLen: 10}
	q.ini.Incoming(seg, build(seg.Flags, 10, options.DSS{HasMapping: true, DSN64: true, DSN: 5000, SubflowSeq: 101, DataLen: 0}), Refs{})
	if m, rel, ok := q.ini.NextRX(); !ok || !m.Infinite || m.SSN != 1001 || m.DSN != 5900 || rel != 1001 {
		t.Errorf("retroactive infinite mapping: %+v rel %d", m, rel)
	}

	// Inside a stored mapping: the mapping is cut where the infinite one
	// starts, which then holds every byte after it; also when it is
	// retroactive and the reader is inside the mapping.
	for _, c := range []struct {
		name     string
		consumed int
		ssn      uint32
		dsn      uint64
		check    uint32 // the reader's position to look at
		wantDSN  uint64
	}{
		{"forward", 0, 501, 7000, 501, 7000},
		{"forward, read past the cut", 0, 501, 7000, 1001, 7500},
		{"retroactive, reader inside", 600, 101, 9100, 601, 9600},
	} {
		r := handshake(t, false, false)
		seg = Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, PayloadLen: 1000}
		r.ini.Incoming(seg, build(seg.Flags, 1000, options.DSS{HasMapping: true, DSN64: true, DSN: idsnB + 1, SubflowSeq: 1, DataLen: 1000}), Refs{})
		r.ini.Consumed(c.consumed)
		seg = Segment{Flags: FlagACK, Seq: isnB + 1001, Ack: isnA + 1, PayloadLen: 10}
		ev := r.ini.Incoming(seg, build(seg.Flags, 10, options.DSS{HasMapping: true, DSN64: true, DSN: c.dsn, SubflowSeq: c.ssn, DataLen: 0}), Refs{})
		if !ev.InfiniteMapping {
			t.Fatalf("%s: %+v", c.name, ev)
		}
		if c.consumed == 0 && c.check > 1 {
			// Bytes before the cut still belong to the old mapping.
			if m, _, ok := r.ini.NextRX(); !ok || m.Infinite || m.SSN != 1 || m.End() != c.ssn {
				t.Errorf("%s: mapping before the cut %+v, want [1, %d)", c.name, m, c.ssn)
			}
		}
		r.ini.Consumed(int(c.check) - 1 - c.consumed)
		m, rel, ok := r.ini.NextRX()
		if !ok || !m.Infinite || rel != c.check || m.DSN+uint64(rel-m.SSN) != c.wantDSN {
			t.Errorf("%s: at %d: %+v rel %d ok %v, want the infinite mapping at DSN %d", c.name, c.check, m, rel, ok, c.wantDSN)
		}
	}

	// FallBackAt: data without a mapping from the reader's position on.
	r := handshake(t, false, false)
	r.ini.Consumed(0)
	r.ini.FallBackAt(idsnB+1, FallbackNoDSS)
	if m, rel, ok := r.ini.NextRX(); !ok || !m.Infinite || m.DSN != idsnB+1 || rel != 1 || r.ini.Fallback() != FallbackNoDSS {
		t.Errorf("FallBackAt: %+v rel %d fallback %v", m, rel, r.ini.Fallback())
	}
}

// TestTXMappings: each segment carries the mapping that holds it, the
// same on every segment and retransmission of the mapping; a segment
// spanning two mappings is split at the boundary; extending a mapping
// within a write; DATA_ACK on every segment.
func TestTXMappings(t *testing.T) {
	for _, csum := range []bool{false, true} {
		p := handshake(t, false, csum)
		// Confirm the initiator so that its data carries DSS.
		ack := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}
		p.ini.Incoming(ack, build(ack.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1}), Refs{SndUna: idsnA + 1})
		a, b := payload(1000, 3), payload(3000, 9)
		p.ini.AddTXMapping(idsnA+1, 600, options.PartialSum(a[:600]), false)
		p.ini.AddTXMapping(idsnA+601, 400, options.PartialSum(a[600:]), true) // same write: one mapping
		p.ini.AddTXMapping(idsnA+5001, len(b), options.PartialSum(b), false)  // not contiguous in DSN
		cs := ConnState{DataAck: idsnB + 77, DataAckOK: true}
		get := func(rel uint32, n int) (options.DSS, int) {
			t.Helper()
			raw, split := out(t, p.ini, Segment{Flags: FlagACK, Seq: isnA + rel, Ack: isnB + 1, PayloadLen: n}, cs)
			return only(t, segOpts(FlagACK, n, raw), options.SubtypeDSS).DSS(), split
		}
		first := options.DSS{HasAck: true, Ack64: true, DataAck: idsnB + 77, HasMapping: true, DSN64: true, DSN: idsnA + 1, SubflowSeq: 1, DataLen: 1000}
		second := options.DSS{HasAck: true, Ack64: true, DataAck: idsnB + 77, HasMapping: true, DSN64: true, DSN: idsnA + 5001, SubflowSeq: 1001, DataLen: 3000}
		if csum {
			first.HasChecksum, first.Checksum = true, sum(a, idsnA+1, 1, 1000)
			second.HasChecksum, second.Checksum = true, sum(b, idsnA+5001, 1001, 3000)
		}
		for _, c := range []struct {
			rel   uint32
			n     int
			want  options.DSS
			split int
		}{
			{1, 500, first, 0},
			{501, 500, first, 0},
			{501, 1000, first, 500}, // spans both: cut at 1001
			{1001, 1400, second, 0},
			{2401, 1600, second, 0},
			{1, 500, first, 0}, // a retransmission: the same mapping
		} {
			d, split := get(c.rel, c.n)
			if d != c.want || split != c.split {
				t.Errorf("checksum %v: segment %d+%d: %+v split %d, want %+v split %d", csum, c.rel, c.n, d, split, c.want, c.split)
			}
		}
		// The peer acknowledges the first mapping: it is released, the
		// second stays and is still found.
		p.ini.Acked(isnA + 1001)
		if p.ini.tx.len() != 1 {
			t.Errorf("after the ACK of the first mapping: %d mappings", p.ini.tx.len())
		}
		if d, _ := get(2401, 100); d != second {
			t.Errorf("after the ACK: %+v", d)
		}
		p.ini.Acked(isnA + 4001)
		if p.ini.tx.len() != 0 {
			t.Errorf("after the ACK of everything: %d mappings", p.ini.tx.len())
		}
		if st := p.ini.Stats(); st.TXNoMapping != 0 || st.BytesAcked != 4000 {
			t.Errorf("stats %+v", st)
		}
	}
}

// TestAckedBounds: an ACK outside what TCP was given is ignored.
func TestAckedBounds(t *testing.T) {
	p := handshake(t, false, false)
	p.ini.AddTXMapping(idsnA+1, 100, 0, false)
	p.ini.Acked(isnA + 500) // beyond anything written
	p.ini.Acked(isnA - 500) // before the ISN
	if p.ini.tx.len() != 1 || p.ini.Stats().BytesAcked != 0 {
		t.Errorf("bogus ACKs released mappings: %d left, %+v", p.ini.tx.len(), p.ini.Stats())
	}
	p.ini.Acked(isnA + 102) // the data and a FIN
	if p.ini.tx.len() != 0 || p.ini.Stats().BytesAcked != 100 {
		t.Errorf("ACK of data and FIN: %d left, %+v", p.ini.tx.len(), p.ini.Stats())
	}
}

// TestFastCloseAndReset: MP_FASTCLOSE is acted on only with our key; a
// RST of an aborted connection carries MP_FASTCLOSE with the peer's key
// and MP_TCPRST with our reason.
func TestFastCloseAndReset(t *testing.T) {
	p := handshake(t, false, false)
	for _, f := range []uint8{FlagACK, FlagRST | FlagACK} {
		for _, key := range []uint64{keyA, keyA ^ 1} {
			seg := Segment{Flags: f, Seq: isnB + 1, Ack: isnA + 1}
			ev := p.ini.Incoming(seg, build(f, 0, options.MPFastClose{ReceiverKey: key}, options.MPTCPRst{Reason: options.TCPRstMiddlebox}), Refs{})
			if ev.FastClose != (key == keyA) || ev.BadFastClose != (key != keyA) {
				t.Errorf("flags %#x key %x: %+v", f, key, ev)
			}
			if f&FlagRST != 0 && (!ev.HasReset || ev.ResetReason != options.TCPRstMiddlebox) {
				t.Errorf("RST: %+v", ev)
			}
		}
	}
	p.rsp.SetResetReason(options.TCPRstNoResources)
	raw, _ := out(t, p.rsp, Segment{Flags: FlagRST | FlagACK, Seq: isnB + 1, Ack: isnA + 1}, ConnState{FastClose: true})
	opts := segOpts(FlagRST|FlagACK, 0, raw)
	fc, rst := opts.Find(options.SubtypeMPFastClose), opts.Find(options.SubtypeMPTCPRst)
	if fc == nil || fc.MPFastClose().ReceiverKey != keyA || rst == nil || rst.MPTCPRst().Reason != options.TCPRstNoResources {
		t.Errorf("RST of a fast close: %+v", opts.List())
	}
	// A later RST (TCP answering a stray segment) is plain, as Linux's.
	raw, _ = out(t, p.rsp, Segment{Flags: FlagRST | FlagACK, Seq: isnB + 1, Ack: isnA + 1}, ConnState{FastClose: true})
	if len(raw) != 0 {
		t.Errorf("second RST carries options: % x", raw)
	}
	p = handshake(t, false, false)
	raw, _ = out(t, p.rsp, Segment{Flags: FlagRST | FlagACK, Seq: isnB + 1, Ack: isnA + 1}, ConnState{})
	opts = segOpts(FlagRST|FlagACK, 0, raw)
	if opts.Find(options.SubtypeMPFastClose) != nil || opts.Find(options.SubtypeMPTCPRst) == nil {
		t.Errorf("RST without fast close: %+v", opts.List())
	}
}

// TestMPFailOnce: a requested MP_FAIL goes out once, on the next segment.
func TestMPFailOnce(t *testing.T) {
	p := handshake(t, true, true)
	p.rsp.RequestMPFail(idsnA + 1234)
	cs := ConnState{DataAck: idsnA + 1, DataAckOK: true}
	raw, _ := out(t, p.rsp, Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}, cs)
	f := segOpts(FlagACK, 0, raw).Find(options.SubtypeMPFail)
	if f == nil || f.MPFail().DSN != idsnA+1234 {
		t.Fatalf("no MP_FAIL: %x", raw)
	}
	raw, _ = out(t, p.rsp, Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}, cs)
	if segOpts(FlagACK, 0, raw).Find(options.SubtypeMPFail) != nil {
		t.Errorf("MP_FAIL sent twice")
	}
	ev := p.ini.Incoming(Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}, build(FlagACK, 0, options.MPFail{DSN: 99}), Refs{})
	if !ev.HasMPFail || ev.MPFailDSN != 99 {
		t.Errorf("MP_FAIL received: %+v", ev)
	}
}

// TestPureACK: the template of a synthesised ACK follows what TCP sent.
func TestPureACK(t *testing.T) {
	p := handshake(t, false, false)
	if _, ok := p.rsp.PureACK(); !ok {
		t.Fatalf("no pure ACK after the handshake")
	}
	p.rsp.AddTXMapping(idsnB+1, 100, 0, false)
	out(t, p.rsp, Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, Window: 77, PayloadLen: 100,
		HasTimestamp: true, TSVal: 5, TSEcr: 6}, ConnState{})
	seg, ok := p.rsp.PureACK()
	if !ok || seg.Seq != isnB+101 || seg.Ack != isnA+1 || seg.Window != 77 || !seg.HasTimestamp || seg.TSVal != 5 || seg.TSEcr != 6 || seg.PayloadLen != 0 {
		t.Errorf("pure ACK %+v", seg)
	}
	// A retransmission does not move it back.
	out(t, p.rsp, Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, Window: 77, PayloadLen: 50}, ConnState{})
	if seg, _ := p.rsp.PureACK(); seg.Seq != isnB+101 {
		t.Errorf("pure ACK after a retransmission: seq %d", seg.Seq-isnB)
	}
	if st := p.rsp.Stats(); st.BytesSent != 150 || st.BytesRetrans != 50 {
		t.Errorf("stats %+v", st)
	}
}

// TestTXMappingsFitGSO: gVisor cuts GSO super-segments at its own size
// (65415 bytes here), which is no multiple of our mappings (45 segments of
// 1420). The mappings of bytes never sent are cut again to fit each
// super-segment, so that none has to be cut in two; bytes sent before keep
// their mappings, and so do connections with DSS checksums, which cut at
// mapping boundaries as before.
func TestTXMappingsFitGSO(t *testing.T) {
	const mss, gso, mapLen = 1420, 65415, 45 * 1420
	cs := ConnState{DataAck: idsnB + 1, DataAckOK: true}
	setup := func(csum bool, lens ...int) *Subflow {
		p := handshake(t, false, csum)
		ack := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}
		p.ini.Incoming(ack, build(ack.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1}), Refs{SndUna: idsnA + 1})
		dsn := idsnA + 1
		for _, n := range lens {
			p.ini.AddTXMapping(dsn, n, 0, false)
			dsn += uint64(n)
		}
		return p.ini
	}
	send := func(s *Subflow, rel uint32, n int, rest bool) (options.DSS, int) {
		t.Helper()
		raw, split := out(t, s, Segment{Flags: FlagACK, Seq: isnA + rel, Ack: isnB + 1, PayloadLen: n, MSS: mss, Rest: rest}, cs)
		return only(t, segOpts(FlagACK, n, raw), options.SubtypeDSS).DSS(), split
	}
	check := func(what string, d options.DSS, split int, ssn uint32, n, wantSplit int) {
		t.Helper()
		if d.SubflowSeq != ssn || d.DSN != idsnA+uint64(ssn) || int(d.DataLen) != n || split != wantSplit {
			t.Errorf("%s: mapping ssn %d dsn +%d len %d split %d; want ssn %d len %d split %d",
				what, d.SubflowSeq, d.DSN-idsnA, d.DataLen, split, ssn, n, wantSplit)
		}
	}

	t.Run("bulk", func(t *testing.T) {
		s := setup(false, mapLen, mapLen, mapLen, mapLen)
		total := 4 * mapLen
		rel := uint32(1)
		for left := total; left > 0; {
			n := min(gso, left)
			d, split := send(s, rel, n, false)
			check(fmt.Sprintf("super-segment at %d", rel), d, split, rel, n, 0)
			rel += uint32(n)
			left -= n
		}
		// Retransmissions carry the mappings the segments carried.
		d, split := send(s, 1+gso, gso, false)
		check("retransmitted super-segment", d, split, 1+gso, gso, 0)
		d, split = send(s, 1+gso+mss, mss, false)
		check("retransmitted segment inside it", d, split, 1+gso, gso, 0)
		if st := s.Stats(); st.SegmentsSplit != 0 || st.TXNoMapping != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("window-limited", func(t *testing.T) {
		s := setup(false, mapLen, mapLen, mapLen)
		d, split := send(s, 1, 30000, false)
		check("short super-segment", d, split, 1, 30000, 0)
		d, split = send(s, 30001, gso, false)
		check("next super-segment", d, split, 30001, gso, 0)
		d, split = send(s, 30001+gso, gso, false)
		check("third super-segment", d, split, 30001+gso, gso, 0)
		d, split = send(s, 30001+2*gso, 3*mapLen-30000-2*gso, false)
		check("last super-segment", d, split, 30001+2*gso, 3*mapLen-30000-2*gso, 0)
	})
	t.Run("DSN gap", func(t *testing.T) {
		// Data not contiguous at the data level (a retransmission on another
		// subflow, a probe) is never put in one mapping.
		s := setup(false, 1000)
		s.AddTXMapping(idsnA+1+5000, 2000, 0, false)
		d, split := send(s, 1, 3000, false)
		check("segment across the gap", d, split, 1, 1000, 1000)
		raw, split := out(t, s, Segment{Flags: FlagACK, Seq: isnA + 1001, Ack: isnB + 1, PayloadLen: 2000, MSS: mss, Rest: true}, cs)
		d = only(t, segOpts(FlagACK, 2000, raw), options.SubtypeDSS).DSS()
		if d.SubflowSeq != 1001 || d.DSN != idsnA+5001 || d.DataLen != 2000 || split != 0 {
			t.Errorf("rest after the gap: %+v split %d", d, split)
		}
	})
	t.Run("retransmission across mappings", func(t *testing.T) {
		s := setup(false, mapLen, mapLen)
		for rel := uint32(1); rel < 1+2*mapLen; rel += mss {
			send(s, rel, mss, false) // sent one MSS at a time: mappings of whole segments
		}
		d, split := send(s, 1, gso, false)
		check("retransmitted super-segment", d, split, 1, 46*mss, 46*mss)
	})
	t.Run("one MSS at a time", func(t *testing.T) {
		// A short segment (the writer was slower than TCP for a moment)
		// shifts TCP's segments against the mappings: the next mapping
		// boundary cuts one segment, and the mapping after it is recut so
		// that the full-sized segments that follow end with it.
		s := setup(false, mapLen, mapLen, mapLen, mapLen)
		rel, left, splits := uint32(1), 4*mapLen, 0
		for i := 0; left > 0; i++ {
			n := min(mss, left)
			if i == 3 {
				n = 800
			}
			_, split := send(s, rel, n, false)
			if split > 0 {
				splits++
				send(s, rel+uint32(split), n-split, true)
			}
			rel += uint32(n)
			left -= n
		}
		if splits != 1 {
			t.Errorf("%d segments cut at a mapping boundary, want 1", splits)
		}
	})
	t.Run("short segment on a GSO link", func(t *testing.T) {
		// Once TCP sent a super-segment, every segment gets a mapping of
		// its own length: a short one mapped with whole segments after it
		// would make the super-segments that follow straddle its end.
		s := setup(false, mapLen, mapLen, mapLen, mapLen)
		rel := uint32(1)
		for i, n := range []int{gso, mss, 800, gso, 2 * mss, gso} {
			d, split := send(s, rel, n, false)
			check(fmt.Sprintf("segment %d at %d", i, rel), d, split, rel, n, 0)
			rel += uint32(n)
		}
		if st := s.Stats(); st.SegmentsSplit != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("checksum", func(t *testing.T) {
		s := setup(true, mapLen, mapLen)
		d, split := send(s, 1, gso, false)
		if d.SubflowSeq != 1 || int(d.DataLen) != mapLen || split != mapLen {
			t.Errorf("with checksums: mapping %+v split %d; want the written mapping and a cut at %d", d, split, mapLen)
		}
	})
}

// TestIncomingAppliesACK: Incoming applies a segment's acknowledgment as
// Acked does (the shim calls only Incoming): the mappings it covers go.
func TestIncomingAppliesACK(t *testing.T) {
	p := handshake(t, false, false)
	p.ini.AddTXMapping(idsnA+1, 1000, 0, false)
	p.ini.AddTXMapping(idsnA+1001, 1000, 0, false)
	ack := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1001}
	p.ini.Incoming(ack, build(ack.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1001}), Refs{SndUna: idsnA + 1})
	if n := p.ini.tx.len(); n != 1 {
		t.Errorf("%d mappings after the ACK of the first, want 1", n)
	}
	if st := p.ini.Stats(); st.BytesAcked != 1000 {
		t.Errorf("bytes acked %d, want 1000", st.BytesAcked)
	}
}

// TestUnwriteTX: gVisor may queue fewer bytes of a non-atomic write than
// it read (its send buffer shrank meanwhile). The mappings of the bytes it
// did not take are taken back where no segment carried them, and a mapping
// a segment carried stays as sent: the next bytes, the same data sequence,
// fill it again and only what lies beyond it gets a new mapping.
func TestUnwriteTX(t *testing.T) {
	const mss = 1000
	cs := ConnState{DataAck: idsnB + 1, DataAckOK: true}
	setup := func() *Subflow {
		p := handshake(t, false, false)
		ack := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}
		p.ini.Incoming(ack, build(ack.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1}), Refs{SndUna: idsnA + 1})
		return p.ini
	}
	dss := func(s *Subflow, rel uint32, n int) options.DSS {
		t.Helper()
		raw, split := out(t, s, Segment{Flags: FlagACK, Seq: isnA + rel, Ack: isnB + 1, PayloadLen: n, MSS: mss}, cs)
		if split != 0 {
			t.Fatalf("segment at %d cut at %d", rel, split)
		}
		return only(t, segOpts(FlagACK, n, raw), options.SubtypeDSS).DSS()
	}
	want := func(what string, d options.DSS, ssn uint32, n int) {
		t.Helper()
		if d.SubflowSeq != ssn || d.DSN != idsnA+uint64(ssn) || int(d.DataLen) != n {
			t.Errorf("%s: mapping ssn %d dsn +%d len %d; want ssn %d len %d", what, d.SubflowSeq, d.DSN-idsnA, d.DataLen, ssn, n)
		}
	}
	data := make([]byte, 200_000)

	t.Run("unsent mappings", func(t *testing.T) {
		s := setup()
		s.MapWrite(idsnA+1, data[:30_000], false)
		s.MapWrite(idsnA+30_001, data[:30_000], false) // extends the first: unsent
		want("first segment", dss(s, 1, mss), 1, 60_000)
		s.MapWrite(idsnA+60_001, data[:100_000], false)
		// TCP took 70,000 bytes: the mappings after the sent one go back to
		// 10,000 bytes.
		s.UnwriteTX(70_001)
		if got := s.NextTXSSN(); got != 70_001 {
			t.Fatalf("next SSN %d after UnwriteTX(70001)", got)
		}
		if n := s.tx.len(); n != 2 || s.tx.last().Len != 10_000 {
			t.Fatalf("%d mappings, last %+v; want 2, the last of 10000 bytes", n, *s.tx.last())
		}
		s.MapWrite(idsnA+70_001, data[:5_000], false) // continues the unsent one
		want("after the sent mapping", dss(s, 60_001, mss), 60_001, 15_000)
	})
	t.Run("sent mapping past the end", func(t *testing.T) {
		s := setup()
		s.MapWrite(idsnA+1, data[:50_000], false)
		want("first segment", dss(s, 1, mss), 1, 50_000)
		s.UnwriteTX(20_001) // TCP took 20,000 bytes; the mapping went out with 50,000
		if n := s.tx.len(); n != 1 || s.tx.last().Len != 50_000 || s.NextTXSSN() != 20_001 {
			t.Fatalf("%d mappings, last %+v, next SSN %d", n, *s.tx.last(), s.NextTXSSN())
		}
		s.MapWrite(idsnA+20_001, data[:45_000], false)
		want("bytes the sent mapping covers", dss(s, 40_001, mss), 1, 50_000)
		want("bytes after it", dss(s, 50_001, mss), 50_001, 15_000)
		if s.NextTXSSN() != 65_001 {
			t.Errorf("next SSN %d, want 65001", s.NextTXSSN())
		}
	})
}
