package subflow

import (
	"testing"

	"github.com/umptcp/umptcp/options"
)

// Tests of what keeps a connection going when TCP and the MPTCP layer see
// things at different times: retransmissions of acknowledged bytes, window
// probes, DATA_ACKs that must not go back, acknowledgments without DSS,
// resets, and a DATA_FIN before the initiator's keys are confirmed.

func dssIn(t *testing.T, raw []byte, seg Segment) (options.DSS, bool) {
	t.Helper()
	o := segOpts(seg.Flags, seg.PayloadLen, raw).Find(options.SubtypeDSS)
	if o == nil {
		return options.DSS{}, false
	}
	return o.DSS(), true
}

// confirm makes the initiator fully established: the responder's DSS
// acknowledges data (§3.1).
func confirm(t *testing.T, p *pair) {
	t.Helper()
	seg := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1}
	p.ini.Incoming(seg, build(seg.Flags, 0, options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1}), Refs{SndUna: idsnA + 1})
	if !p.ini.FullyEstablished() {
		t.Fatal("initiator not fully established by a DSS with a DATA_ACK")
	}
}

// TCP retransmits from its own view of what the peer acknowledged, which
// can be older than the ACK the shim processed (and released mappings
// for): bytes of the last released mapping still get it; older ones are
// cut off and the rest keeps its mapping.
func TestRetransmissionOfAcknowledgedBytes(t *testing.T) {
	p := handshake(t, false, false)
	confirm(t, p)
	a := p.ini
	const dsn = 7 << 40
	for i := uint64(0); i < 3; i++ {
		a.AddTXMapping(dsn+1000*i, 1000, 0, false)
	}
	a.Acked(isnA + 1 + 2000) // the first two mappings are released

	seg := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1, PayloadLen: 3000}
	raw, split := out(t, a, seg, ConnState{})
	if split != -1000 {
		t.Fatalf("split = %d, want -1000 (drop the bytes of the first mapping, forgotten)", split)
	}
	if len(raw) != 0 {
		t.Errorf("options for the dropped part: % x", raw)
	}
	// The second mapping was the last released: kept for such segments.
	rest := seg
	rest.Seq, rest.PayloadLen, rest.Rest = isnA+1+1000, 2000, true
	raw, split = out(t, a, rest, ConnState{})
	d, ok := dssIn(t, raw, rest)
	if split != 1000 || !ok || !d.HasMapping || d.DSN != dsn+1000 || d.SubflowSeq != 1001 || d.DataLen != 1000 {
		t.Fatalf("rest: split %d, DSS %+v (present %v), want the second mapping for 1000 bytes", split, d, ok)
	}
	rest.Seq, rest.PayloadLen = isnA+1+2000, 1000
	raw, split = out(t, a, rest, ConnState{})
	d, ok = dssIn(t, raw, rest)
	if split != 0 || !ok || !d.HasMapping || d.DSN != dsn+2000 || d.SubflowSeq != 2001 || d.DataLen != 1000 {
		t.Fatalf("last part: split %d, DSS %+v (present %v), want the third mapping", split, d, ok)
	}

	// A segment whose bytes are all acknowledged and forgotten is dropped
	// whole.
	a.Acked(isnA + 1 + 3000)
	old := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1, PayloadLen: 500}
	if _, split = out(t, a, old, ConnState{DataAckOK: true, DataAck: 42}); split != -500 {
		t.Fatalf("acknowledged segment: split %d, want -500", split)
	}
	if n := a.Stats().TXNoMapping; n != 0 {
		t.Errorf("TXNoMapping = %d for retransmissions of acknowledged bytes", n)
	}
}

func TestDataAckNeverGoesBack(t *testing.T) {
	p := handshake(t, false, false)
	confirm(t, p)
	seg := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1}
	for i, c := range []struct{ give, want uint64 }{{100, 100}, {50, 100}, {101, 101}} {
		raw, _ := out(t, p.ini, seg, ConnState{DataAckOK: true, DataAck: c.give})
		d, ok := dssIn(t, raw, seg)
		if !ok || !d.HasAck || d.DataAck != c.want {
			t.Errorf("step %d: rcvNxt %d: DATA_ACK %d (DSS %v), want %d", i, c.give, d.DataAck, ok, c.want)
		}
	}
}

func TestProbe(t *testing.T) {
	p := handshake(t, false, false)
	confirm(t, p)
	a := p.ini
	if _, _, _, ok := a.Probe(); ok {
		t.Fatal("probe before any data was sent and acknowledged")
	}
	const dsn = 1 << 33
	a.AddTXMapping(dsn, 1000, 0, false)
	a.AddTXMapping(dsn+1000, 2000, 0, false)
	data := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1, PayloadLen: 3000, Window: 77,
		HasTimestamp: true, TSVal: 9, TSEcr: 8}
	out(t, a, data, ConnState{})
	for _, c := range []struct {
		acked uint32 // relative
		what  string
	}{
		{500, "inside the first mapping"},
		{1000, "the first mapping's last byte (mapping released)"},
		{2500, "inside the second"},
	} {
		a.Acked(isnA + 1 + c.acked)
		pr, gotDSN, dsnOK, ok := a.Probe()
		if !ok {
			t.Fatalf("%s: no probe with acknowledged data", c.what)
		}
		// The last byte acknowledged: a duplicate to the peer.
		if pr.Seq != isnA+c.acked || pr.PayloadLen != 0 || pr.Ack != isnB+1 || pr.Window != 77 || !pr.HasTimestamp || pr.TSVal != 9 {
			t.Errorf("%s: probe %+v, want seq %d, ack %d, window 77, TS 9", c.what, pr, isnA+c.acked, isnB+1)
		}
		if want := dsn + uint64(c.acked) - 1; !dsnOK || gotDSN != want {
			t.Errorf("%s: probe byte DSN %d (known %v), want %d", c.what, gotDSN, dsnOK, want)
		}
	}
	a.MarkReset()
	if _, _, _, ok := a.Probe(); ok {
		t.Error("probe on a reset subflow")
	}
	if _, ok := a.PureACK(); ok {
		t.Error("pure ACK on a reset subflow")
	}
}

func TestSentRSTStopsSynthesis(t *testing.T) {
	p := handshake(t, false, false)
	a := p.ini
	if _, ok := a.PureACK(); !ok {
		t.Fatal("no pure ACK on an established subflow")
	}
	rst := Segment{Flags: FlagRST | FlagACK, Seq: isnA + 1, Ack: isnB + 1}
	out(t, a, rst, ConnState{})
	if _, ok := a.PureACK(); ok {
		t.Error("pure ACK after a RST was sent")
	}
	if !a.IsReset() {
		t.Error("IsReset false after a RST was sent")
	}
}

func TestAckWithoutDSS(t *testing.T) {
	p := handshake(t, false, false)
	confirm(t, p)
	a := p.ini
	a.AddTXMapping(idsnA+1, 100, 0, false)
	mpc := options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: options.CapableFlagHMACSHA256,
		SenderKey: keyB, ReceiverKey: keyA}
	cases := []struct {
		name string
		ack  uint32
		opts []appender
		want bool
	}{
		{"acks our SYN only", isnA + 1, nil, false},
		{"acks data, no options", isnA + 51, nil, true},
		{"acks data, DSS", isnA + 51, []appender{options.DSS{HasAck: true, Ack64: true, DataAck: idsnA + 1}}, false},
		{"acks data, MP_CAPABLE", isnA + 51, []appender{mpc}, false},
		{"acks more than we sent", isnA + 500, nil, false},
	}
	for _, c := range cases {
		seg := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: c.ack}
		ev := a.Incoming(seg, build(seg.Flags, 0, c.opts...), Refs{SndUna: idsnA + 1})
		if ev.AckWithoutDSS != c.want {
			t.Errorf("%s: AckWithoutDSS = %v, want %v", c.name, ev.AckWithoutDSS, c.want)
		}
	}
}

func TestAcceptableRST(t *testing.T) {
	if New(Config{Role: Initiator}).AcceptableRST(isnB + 1) {
		t.Error("RST accepted before anything was exchanged")
	}
	p := handshake(t, false, false)
	a := p.ini
	out(t, a, Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1, Window: 100}, ConnState{})
	// The peer's data after our last ACK moves what TCP expects next.
	data := Segment{Flags: FlagACK, Seq: isnB + 1, Ack: isnA + 1, PayloadLen: 50}
	a.Incoming(data, build(data.Flags, 50), Refs{})
	ooo := Segment{Flags: FlagACK, Seq: isnB + 1000, Ack: isnA + 1, PayloadLen: 50}
	a.Incoming(ooo, build(ooo.Flags, 50), Refs{})
	for _, c := range []struct {
		seq  uint32
		want bool
	}{
		{isnB + 1, true},   // what our last ACK acknowledged
		{isnB + 51, true},  // the end of the in-order data since
		{isnB + 52, false}, // in the window, not exact: a challenge ACK (RFC 5961)
		{isnB + 1050, false},
		{isnB, false},
	} {
		if got := a.AcceptableRST(c.seq); got != c.want {
			t.Errorf("RST seq %d: acceptable %v, want %v", c.seq, got, c.want)
		}
	}

	// The closing handshake: the peer's FIN, ours; a RST then is refused
	// only once our FIN is acknowledged too (TIME-WAIT: TCP drops it).
	fin := Segment{Flags: FlagACK | FlagFIN, Seq: isnB + 51, Ack: isnA + 1}
	a.Incoming(fin, build(fin.Flags, 0), Refs{})
	out(t, a, Segment{Flags: FlagACK | FlagFIN, Seq: isnA + 1, Ack: isnB + 52}, ConnState{})
	if !a.AcceptableRST(isnB + 52) {
		t.Error("RST after both FINs, ours not acknowledged (CLOSING): refused")
	}
	a.Acked(isnA + 2)
	if a.AcceptableRST(isnB + 52) {
		t.Error("RST in TIME-WAIT accepted")
	}
}

// Linux lets a DATA_FIN (or a FIN) take precedence over repeating the
// third ACK's MP_CAPABLE: otherwise a client that closes before the server
// sent any DSS never gets its DATA_FIN on the wire.
func TestDataFINBeforeConfirmation(t *testing.T) {
	p := handshake(t, false, false)
	a := p.ini
	if a.FullyEstablished() {
		t.Fatal("initiator fully established without the peer's DSS")
	}
	seg := Segment{Flags: FlagACK, Seq: isnA + 1, Ack: isnB + 1}
	raw, _ := out(t, a, seg, ConnState{DataAckOK: true, DataAck: idsnB + 1})
	if segOpts(seg.Flags, 0, raw).Find(options.SubtypeMPCapable) == nil {
		t.Fatal("unconfirmed initiator's ACK without MP_CAPABLE")
	}
	raw, _ = out(t, a, seg, ConnState{DataAckOK: true, DataAck: idsnB + 1, DataFIN: true, DataFINSeq: idsnA + 1})
	d, ok := dssIn(t, raw, seg)
	if !ok || !d.DataFIN || d.DSN != idsnA+1 || d.DataLen != 1 || d.SubflowSeq != 0 {
		t.Fatalf("DATA_FIN pending: DSS %+v (present %v), want DATA_FIN at IDSN+1", d, ok)
	}
	fin := Segment{Flags: FlagACK | FlagFIN, Seq: isnA + 1, Ack: isnB + 1}
	raw, _ = out(t, a, fin, ConnState{DataAckOK: true, DataAck: idsnB + 1})
	if segOpts(fin.Flags, 0, raw).Find(options.SubtypeMPCapable) != nil {
		t.Error("MP_CAPABLE on a FIN")
	}
}

// Linux sends a mapping again with the DATA_FIN set (and its length one
// more) once the application closed: the same bytes, not a conflict.
func TestMappingAgainWithDataFIN(t *testing.T) {
	rx := rxTable{limit: 8}
	m := RXMapping{SSN: 1, DSN: 100, Len: 50, WireLen: 50}
	if r := rx.add(m, 1); r != RXAdded {
		t.Fatalf("add: %v", r)
	}
	fin := m
	fin.DataFIN, fin.WireLen = true, 51
	if r := rx.add(fin, 1); r != RXDuplicate {
		t.Errorf("the mapping again with DATA_FIN: %v, want RXDuplicate", r)
	}
	if got := rx.find(1); got == nil || !got.DataFIN || got.Len != 50 {
		t.Errorf("stored mapping %+v, want the DATA_FIN noted and 50 bytes", got)
	}
}

// After 4 GiB on a subflow its relative sequence numbers wrap: an ACK just
// before the wrap, with data written beyond it, must release only what it
// covers (a min() of the two numbers released everything, and the
// retransmissions that followed had no mapping).
func TestAckedAcrossRelativeWrap(t *testing.T) {
	p := handshake(t, false, false)
	a := p.ini
	a.sndWritten, a.sndUnaRel = 0xffffff00, 0xffffff00
	a.AddTXMapping(1<<40, 0x100, 0, false)       // 0xffffff00 .. 2^32
	a.AddTXMapping(1<<40+0x100, 0x100, 0, false) // 0 .. 0x100, after the wrap
	a.Acked(isnA + 0xffffff80)
	if a.sndUnaRel != 0xffffff80 || a.tx.len() != 2 {
		t.Fatalf("ACK before the wrap: sndUnaRel %#x, %d mappings; want 0xffffff80 and 2", a.sndUnaRel, a.tx.len())
	}
	a.Acked(isnA + 0x80)
	if a.sndUnaRel != 0x80 || a.tx.len() != 1 {
		t.Fatalf("ACK after the wrap: sndUnaRel %#x, %d mappings; want 0x80 and 1", a.sndUnaRel, a.tx.len())
	}
	if m := a.tx.find(0x80); m == nil || m.DSN != 1<<40+0x100 {
		t.Fatalf("mapping after the wrap: %+v", m)
	}
}
