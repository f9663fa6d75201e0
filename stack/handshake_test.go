package stack

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// flowView is one connection's captured segments with what its handshake
// established: which side initiated, the ISNs and the keys.
type flowView struct {
	ini, rsp   byte
	iniPort    uint16
	rspPort    uint16
	pkts       []wirePkt // the connection's segments, in capture order
	synIdx     int
	synackIdx  int
	ack3Idx    int // -1 when the initiator sent no pure third ACK
	isnI, isnR uint32
	keyI, keyR uint64
}

// flowsOf splits a capture into connections, one per SYN.
func flowsOf(pkts []wirePkt) []*flowView {
	var fs []*flowView
	for _, p := range pkts {
		if p.syn() {
			dup := false
			for _, f := range fs {
				if f.ini == p.from && f.iniPort == p.sport && f.rspPort == p.dport {
					dup = true
				}
			}
			if !dup {
				other := byte('b')
				if p.from == 'b' {
					other = 'a'
				}
				fs = append(fs, &flowView{ini: p.from, rsp: other, iniPort: p.sport, rspPort: p.dport, synIdx: -1, synackIdx: -1, ack3Idx: -1})
			}
		}
	}
	for _, f := range fs {
		for _, p := range pkts {
			if (p.from == f.ini && p.sport == f.iniPort && p.dport == f.rspPort) ||
				(p.from == f.rsp && p.sport == f.rspPort && p.dport == f.iniPort) {
				f.pkts = append(f.pkts, p)
			}
		}
		for i := range f.pkts {
			p := &f.pkts[i]
			switch {
			case p.syn() && f.synIdx < 0:
				f.synIdx, f.isnI = i, p.seq
			case p.synack() && f.synackIdx < 0:
				f.synackIdx, f.isnR = i, p.seq
				if m, ok := p.mpc(); ok {
					f.keyR = m.SenderKey
				}
			case f.synackIdx >= 0 && f.ack3Idx < 0 && p.from == f.ini && len(p.payload) == 0 &&
				!p.syn() && !p.rst() && p.ack == f.isnR+1:
				f.ack3Idx = i
				if m, ok := p.mpc(); ok {
					f.keyI = m.SenderKey
				}
			}
		}
		if f.keyI == 0 {
			// No third ACK seen: the first data carries the key too.
			for _, p := range f.pkts {
				if m, ok := p.mpc(); ok && p.from == f.ini && m.Variant >= options.CapableACK {
					f.keyI = m.SenderKey
					break
				}
			}
		}
	}
	return fs
}

func (f *flowView) rel(p *wirePkt) uint32 {
	if p.from == f.ini {
		return p.seq - f.isnI
	}
	return p.seq - f.isnR
}

// key and idsn of a side.
func (f *flowView) key(side byte) uint64 {
	if side == f.ini {
		return f.keyI
	}
	return f.keyR
}

func (f *flowView) idsn(side byte) uint64 { return options.IDSN(f.key(side)) }

// subflowBytes rebuilds the bytes one side sent on the subflow, indexed by
// relative sequence number (index 0 is relative 1), from the data segments
// captured.
func (f *flowView) subflowBytes(side byte) (b []byte, have []bool) {
	for i := range f.pkts {
		p := &f.pkts[i]
		if p.from != side || len(p.payload) == 0 {
			continue
		}
		start := int(f.rel(p)) - 1
		end := start + len(p.payload)
		if end > len(b) {
			b = append(b, make([]byte, end-len(b))...)
			have = append(have, make([]bool, end-len(have))...)
		}
		// The first transmission wins: retransmissions carry the same
		// bytes, but a window probe (Subflow.Probe) re-sends one byte the
		// peer has acknowledged already with content that is not ours to
		// know, which the peer's TCP drops as a duplicate.
		for j := start; j < end; j++ {
			if !have[j] {
				b[j], have[j] = p.payload[j-start], true
			}
		}
	}
	return b, have
}

// checkWireBasics checks what every captured segment must satisfy: a
// right TCP checksum (the shim rewrote the header) and MPTCP options a
// strict parser accepts.
func checkWireBasics(t *testing.T, pkts []wirePkt) {
	t.Helper()
	for i := range pkts {
		p := &pkts[i]
		if !p.csumOK {
			t.Errorf("segment with a wrong TCP checksum on the wire: %v", p)
		}
		if p.malformed() {
			t.Errorf("malformed MPTCP option: %v", p)
		}
	}
}

// checkHandshake checks the MP_CAPABLE exchange of a flow and returns
// false if there is no point in looking further.
func checkHandshake(t *testing.T, f *flowView, wantA, negotiated bool) bool {
	t.Helper()
	if f.synIdx < 0 || f.synackIdx < 0 {
		t.Errorf("no SYN or SYN/ACK captured")
		return false
	}
	flags := uint8(options.CapableFlagHMACSHA256)
	syn := &f.pkts[f.synIdx]
	m, ok := syn.mpc()
	wantSYN := flags
	if wantA {
		wantSYN |= options.CapableFlagChecksum
	}
	if !ok || m.Variant != options.CapableSYN || m.Len() != 4 || m.Version != 1 || m.Flags != wantSYN {
		t.Errorf("SYN: want MP_CAPABLE len 4 v1 flags %#x, got %v", wantSYN, syn)
	}
	if negotiated {
		flags |= options.CapableFlagChecksum
	}
	sa := &f.pkts[f.synackIdx]
	m, ok = sa.mpc()
	if !ok || m.Variant != options.CapableSYNACK || m.Len() != 12 || m.Version != 1 || m.Flags != flags || m.SenderKey == 0 {
		t.Errorf("SYN/ACK: want MP_CAPABLE len 12 v1 flags %#x with the responder's key, got %v", flags, sa)
	}
	if f.ack3Idx < 0 {
		t.Errorf("no third ACK captured")
		return false
	}
	a3 := &f.pkts[f.ack3Idx]
	m, ok = a3.mpc()
	if !ok || m.Variant != options.CapableACK || m.Len() != 20 || m.Version != 1 || m.Flags != flags ||
		m.ReceiverKey != f.keyR || m.SenderKey == 0 || m.SenderKey == f.keyR {
		t.Errorf("third ACK: want MP_CAPABLE len 20 flags %#x, initiator's key then %016x, got %v", flags, f.keyR, a3)
	}
	return true
}

// checkKeysMatchInfo checks that the keys on the wire are the ones the two
// ends use: their tokens are the ends' tokens.
func checkKeysMatchInfo(t *testing.T, f *flowView, ini, rsp *Conn) {
	t.Helper()
	ii, ri := ini.Info(), rsp.Info()
	if ii.Token != options.Token(f.keyI) || ii.RemoteToken != options.Token(f.keyR) {
		t.Errorf("initiator's tokens %08x/%08x, wire keys give %08x/%08x", ii.Token, ii.RemoteToken, options.Token(f.keyI), options.Token(f.keyR))
	}
	if ri.Token != options.Token(f.keyR) || ri.RemoteToken != options.Token(f.keyI) {
		t.Errorf("responder's tokens %08x/%08x, wire keys give %08x/%08x", ri.Token, ri.RemoteToken, options.Token(f.keyR), options.Token(f.keyI))
	}
}

// dataCheck says what the data segments of a side must carry.
type dataCheck struct {
	side     byte
	st       stream // what the side's application wrote, in order
	checksum bool
	// wantAck, when set, returns the exact DATA_ACK a data segment at
	// stream offset off must carry (ping-pong: the sender has read every
	// byte the peer sent before).
	wantAck func(off int64) (uint64, bool)
	// strict: also a retransmission of bytes the peer had acknowledged
	// before it was sent must carry its mapping (see
	// TestBugRetransmissionWithoutMapping).
	strict bool
}

// checkDataSegments checks every data segment of one side: the
// initiator's first data carries MP_CAPABLE with both keys and the
// data-level length (its mapping is implied: DSN IDSN+1, subflow sequence
// 1), every other one a DSS whose mapping covers it, maps it to the bytes
// the application wrote, carries the checksum iff negotiated (verified
// against the mapped bytes), and a 64-bit DATA_ACK. It returns the DSN the
// side's DATA_FIN carried, if one was seen.
func checkDataSegments(t *testing.T, f *flowView, dc dataCheck) (finDSN uint64, finSeen bool) {
	t.Helper()
	idsn := f.idsn(dc.side)
	sub, have := f.subflowBytes(dc.side)
	peer := f.ini
	if dc.side == f.ini {
		peer = f.rsp
	}
	peerDSSSeen := false
	errs := 0
	fail := func(format string, args ...any) {
		errs++
		if errs <= 10 {
			t.Errorf(format, args...)
		}
	}
	verifySum := func(p *wirePkt, dsn uint64, ssn uint32, wireLen uint16, dataLen int, csum uint16) {
		start := int(ssn) - 1
		if dataLen > 0 && (start < 0 || start+dataLen > len(sub)) {
			fail("mapping ssn %d len %d beyond the captured bytes", ssn, dataLen)
			return
		}
		for j := start; j < start+dataLen; j++ {
			if !have[j] {
				fail("mapping ssn %d: byte %d not captured", ssn, j+1)
				return
			}
		}
		var s options.DSSChecksum
		if dataLen > 0 {
			s.Add(sub[start : start+dataLen])
		}
		if !s.Verify(dsn, ssn, wireLen, csum) {
			fail("DSS checksum %#04x does not verify for DSN %d ssn %d len %d: %v", csum, dsn, ssn, wireLen, p)
		}
	}
	mpcData := 0
	var peerAck uint32 // highest relative ACK of ours the peer sent so far
	for i := range f.pkts {
		p := &f.pkts[i]
		if p.from == peer {
			if _, ok := p.dss(); ok {
				peerDSSSeen = true
			}
			if p.is(0x10) && !p.syn() {
				isn := f.isnI
				if dc.side == f.rsp {
					isn = f.isnR
				}
				if a := p.ack - isn; options.SubflowSeq(peerAck).LessThan(options.SubflowSeq(a)) {
					peerAck = a
				}
			}
			continue
		}
		if p.syn() || p.rst() {
			continue
		}
		d, hasDSS := p.dss()
		if hasDSS && d.DataFIN && d.HasMapping {
			dsn := d.DSN
			if !d.DSN64 {
				dsn = options.ExpandSeq(idsn, uint32(d.DSN))
			}
			fin := dsn + uint64(d.DataLen) - 1
			if finSeen && fin != finDSN {
				fail("DATA_FIN moved from %d to %d", finDSN, fin)
			}
			finDSN, finSeen = fin, true
			if d.HasChecksum != dc.checksum {
				fail("DATA_FIN: checksum present %v, negotiated %v: %v", d.HasChecksum, dc.checksum, p)
			}
			if d.HasChecksum {
				verifySum(p, dsn, d.SubflowSeq, d.DataLen, int(d.DataLen)-1, d.Checksum)
			}
		}
		if len(p.payload) == 0 {
			continue
		}
		rel := f.rel(p)
		if !dc.strict && options.SubflowSeq(rel+uint32(len(p.payload))).LessThanEq(options.SubflowSeq(peerAck)) {
			// A retransmission of bytes the peer acknowledged before it
			// left: the peer drops it as a duplicate. The shim may have
			// pruned its mapping already (known bug, see
			// TestBugRetransmissionWithoutMapping); only the strict check
			// looks at it.
			continue
		}
		if m, ok := p.mpc(); ok && dc.side == f.ini {
			// §3.1: the initiator's first data, until the peer's DSS. Its
			// mapping starts at subflow sequence 1; a segment cut from
			// the first write (software GSO, as Linux's TSO) repeats it.
			mpcData++
			wantV := options.CapableData
			if dc.checksum {
				wantV = options.CapableDataChecksum
			}
			if m.Variant != wantV || m.SenderKey != f.keyI || m.ReceiverKey != f.keyR || rel < 1 ||
				int(rel)-1+len(p.payload) > int(m.DataLen) || m.Version != 1 {
				fail("initiator's first data: want MP_CAPABLE len %d with both keys and a mapping from ssn 1 covering it, got rel %d %v", wantV, rel, p)
			}
			if int(rel) >= 1 && !bytes.Equal(p.payload, dc.st.bytes(int64(rel)-1, len(p.payload))) {
				fail("first data is not the bytes written at its offset")
			}
			if dc.checksum {
				verifySum(p, idsn+1, 1, m.DataLen, int(m.DataLen), m.Checksum)
			}
			if hasDSS {
				fail("first data carries MP_CAPABLE and DSS: %v", p)
			}
			continue
		}
		if dc.side == f.ini && rel == 1 && !peerDSSSeen {
			fail("initiator's first data before the peer's DSS without MP_CAPABLE: %v", p)
		}
		if !hasDSS || !d.HasMapping {
			fail("data segment without a DSS mapping: %v", p)
			continue
		}
		if d.InfiniteMapping() {
			fail("infinite mapping on a healthy connection: %v", p)
			continue
		}
		dsn := d.DSN
		if !d.DSN64 {
			dsn = options.ExpandSeq(idsn, uint32(d.DSN))
		}
		dataLen := int(d.DataLen)
		if d.DataFIN {
			dataLen--
		}
		if !options.SubflowSeq(rel).InWindow(options.SubflowSeq(d.SubflowSeq), uint32(dataLen)) ||
			int(d.SubflowSeq)+dataLen < int(rel)+len(p.payload) {
			fail("mapping ssn %d len %d does not cover the segment at %d+%d: %v", d.SubflowSeq, dataLen, rel, len(p.payload), p)
			continue
		}
		off := int64(dsn-idsn-1) + int64(rel-d.SubflowSeq)
		if !bytes.Equal(p.payload, dc.st.bytes(off, len(p.payload))) {
			fail("segment at ssn %d mapped to stream offset %d does not hold those bytes", rel, off)
		}
		if d.HasChecksum != dc.checksum {
			fail("DSS checksum present %v, negotiated %v: %v", d.HasChecksum, dc.checksum, p)
		} else if d.HasChecksum {
			verifySum(p, dsn, d.SubflowSeq, d.DataLen, dataLen, d.Checksum)
		}
		if !d.HasAck || !d.Ack64 {
			fail("data segment without a 64-bit DATA_ACK: %v", p)
		} else if dc.wantAck != nil {
			if want, ok := dc.wantAck(off); ok && d.DataAck != want {
				fail("data at stream offset %d carries DATA_ACK %d, want %d (peer bytes read: %d)", off, d.DataAck, want, int64(want-f.idsn(peer)-1))
			}
		}
	}
	_ = mpcData
	return finDSN, finSeen
}

// maxDataAck returns the highest DATA_ACK a side sent.
func maxDataAck(f *flowView, side byte) uint64 {
	var m uint64
	for i := range f.pkts {
		p := &f.pkts[i]
		if p.from != side {
			continue
		}
		if d, ok := p.dss(); ok && d.HasAck && d.Ack64 && d.DataAck > m {
			m = d.DataAck
		}
	}
	return m
}

// pingPong runs rounds of request and response: the initiator writes
// up[i] bytes, the responder reads them all and writes down[i] bytes,
// which the initiator reads, then both half-close and read EOF.
func pingPong(t *testing.T, cli, srv *Conn, up, down []int) {
	t.Helper()
	var offUp, offDown int64
	buf := make([]byte, 1<<20)
	for i := range up {
		go func(off int64, n int) {
			cli.Write(stream{1}.bytes(off, n))
		}(offUp, up[i])
		if _, err := io.ReadFull(srv, buf[:up[i]]); err != nil {
			t.Fatalf("round %d: responder read: %v", i, err)
		}
		if !bytes.Equal(buf[:up[i]], stream{1}.bytes(offUp, up[i])) {
			t.Fatalf("round %d: responder read wrong bytes", i)
		}
		offUp += int64(up[i])
		if _, err := srv.Write(stream{2}.bytes(offDown, down[i])); err != nil {
			t.Fatalf("round %d: responder write: %v", i, err)
		}
		if _, err := io.ReadFull(cli, buf[:down[i]]); err != nil {
			t.Fatalf("round %d: initiator read: %v", i, err)
		}
		if !bytes.Equal(buf[:down[i]], stream{2}.bytes(offDown, down[i])) {
			t.Fatalf("round %d: initiator read wrong bytes", i)
		}
		offDown += int64(down[i])
	}
	if err := cli.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("responder after the initiator's DATA_FIN: %d, %v; want 0, EOF", n, err)
	}
	if err := srv.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := cli.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("initiator after the responder's DATA_FIN: %d, %v; want 0, EOF", n, err)
	}
}

var debugDump = false

// cumulative returns the running sums of sizes, with a leading 0.
func cumulative(sizes []int) []int64 {
	out := []int64{0}
	for _, n := range sizes {
		out = append(out, out[len(out)-1]+int64(n))
	}
	return out
}

// roundOf returns the round whose bytes include offset off.
func roundOf(cum []int64, off int64) int {
	for i := 1; i < len(cum); i++ {
		if off < cum[i] {
			return i - 1
		}
	}
	return len(cum) - 1
}

// TestHandshakeOptions checks the options on the wire byte for byte, in
// both roles, IPv4 and IPv6, with and without DSS checksums: MP_CAPABLE on
// SYN (len 4, v1, H, A when asked), SYN/ACK (len 12, responder's key) and
// third ACK (len 20, initiator's key then the SYN/ACK's); the initiator's
// first data (len 22, 24 with checksum); then a DSS on every data segment
// mapping exactly the bytes written, with the DSS checksum verified and the
// exact current 64-bit DATA_ACK; the DATA_FINs at the right DSN and
// acknowledged; and the tokens the ends report match the wire keys.
func TestHandshakeOptions(t *testing.T) {
	up := []int{1000, 1, 70000, 200000, 1460, 3}
	down := []int{5, 140000, 1, 2920, 66000, 7}
	for _, v6 := range []bool{false, true} {
		for _, from := range []byte{'a', 'b'} {
			for _, csum := range []bool{false, true} {
				name := fmt.Sprintf("v6=%v/initiator=%c/checksum=%v", v6, from, csum)
				t.Run(name, func(t *testing.T) {
					noLeaks(t)
					cfgI := Config{Checksum: csum}
					o := pairOpts{v6: v6}
					if from == 'a' {
						o.a = cfgI
					} else {
						o.b = cfgI
					}
					p := newTPair(t, o)
					cli, srv := connect(t, p.pair, from, 4000)
					if !cli.MultipathTCP() || !srv.MultipathTCP() {
						t.Fatalf("not MPTCP: %v / %v", cli.Info(), srv.Info())
					}
					pingPong(t, cli, srv, up, down)
					cli.Close()
					srv.Close()
					waitConnsGone(t, p.a, p.b)

					pkts := p.cap.snapshot()
					checkWireBasics(t, pkts)
					fs := flowsOf(pkts)
					if len(fs) != 1 {
						t.Fatalf("%d connections captured", len(fs))
					}
					f := fs[0]
					if f.ini != from {
						t.Fatalf("initiator is %c", f.ini)
					}
					if !checkHandshake(t, f, csum, csum) {
						return
					}
					checkKeysMatchInfo(t, f, cli, srv)
					cumUp, cumDown := cumulative(up), cumulative(down)
					finI, okI := checkDataSegments(t, f, dataCheck{side: f.ini, st: stream{1}, checksum: csum,
						wantAck: func(off int64) (uint64, bool) {
							// Round r's request is written after reading
							// every response before it.
							return f.idsn(f.rsp) + 1 + uint64(cumDown[roundOf(cumUp, off)]), true
						}})
					finR, okR := checkDataSegments(t, f, dataCheck{side: f.rsp, st: stream{2}, checksum: csum,
						wantAck: func(off int64) (uint64, bool) {
							return f.idsn(f.ini) + 1 + uint64(cumUp[roundOf(cumDown, off)+1]), true
						}})
					totalUp, totalDown := cumUp[len(cumUp)-1], cumDown[len(cumDown)-1]
					if !okI || finI != f.idsn(f.ini)+1+uint64(totalUp) {
						t.Errorf("initiator's DATA_FIN: seen %v at %d, want DSN %d", okI, finI, f.idsn(f.ini)+1+uint64(totalUp))
					}
					if !okR || finR != f.idsn(f.rsp)+1+uint64(totalDown) {
						t.Errorf("responder's DATA_FIN: seen %v at %d, want DSN %d", okR, finR, f.idsn(f.rsp)+1+uint64(totalDown))
					}
					// Each DATA_FIN is acknowledged at the data level.
					if got := maxDataAck(f, f.rsp); got != finI+1 {
						t.Errorf("responder's highest DATA_ACK %d, want %d (initiator's DATA_FIN + 1)", got, finI+1)
					}
					if got := maxDataAck(f, f.ini); got != finR+1 {
						t.Errorf("initiator's highest DATA_ACK %d, want %d (responder's DATA_FIN + 1)", got, finR+1)
					}
					if t.Failed() || debugDump {
						for i := range f.pkts {
							if i < 30 {
								t.Log(f.pkts[i].String())
							}
						}
					}
				})
			}
		}
	}
}

// TestHandshakeThirdACKLost drops the initiator's third ACK: the
// responder learns the initiator's key from the MP_CAPABLE (len 22) on its
// first data, which also maps that data (§3.1, why v1 suits SYN cookies).
// Each case runs several times: the retransmissions it causes race with
// the shim (see the TXNoMapping check).
func TestHandshakeThirdACKLost(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, csum := range []bool{false, true} {
			for run := 0; run < 8; run++ {
				t.Run(fmt.Sprintf("v6=%v/checksum=%v/run=%d", v6, csum, run), func(t *testing.T) {
					noLeaks(t)
					p := newTPair(t, pairOpts{v6: v6, a: Config{Checksum: csum}})
					var dropped sync.Once
					var droppedAny bool
					p.tb.setInbound(func(b []byte) []byte {
						w, ok := parseWire('a', b)
						if ok && !w.syn() && len(w.payload) == 0 && !w.fin() && !w.rst() {
							if m, ok := w.mpc(); ok && m.Variant == options.CapableACK {
								keep := true
								dropped.Do(func() { keep, droppedAny = false, true })
								if !keep {
									return nil
								}
							}
						}
						return b
					})
					ln, err := p.b.Listen("tcp", ":4001")
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					cli, err := p.a.Dial("tcp", netip.AddrPortFrom(p.bAddr, 4001).String())
					if err != nil {
						t.Fatal(err)
					}
					defer cli.Close()
					cli.SetDeadline(safetyDeadline())
					msg := stream{1}.bytes(0, 3000)
					if _, err := cli.Write(msg); err != nil {
						t.Fatal(err)
					}
					srv, err := ln.AcceptMPTCP()
					if err != nil {
						t.Fatal(err)
					}
					defer srv.Close()
					srv.SetDeadline(safetyDeadline())
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("responder read %v, equal %v", err, bytes.Equal(got, msg))
					}
					if !droppedAny {
						t.Fatal("no third ACK was dropped")
					}
					if !cli.MultipathTCP() || !srv.MultipathTCP() {
						t.Fatalf("not MPTCP: %v / %v", cli.Info(), srv.Info())
					}
					if n := p.b.Counters().MPCapableACKRX.Load(); n != 1 {
						t.Errorf("responder MPCapableACKRX %d, want 1", n)
					}
					if srv.Info().Checksum != csum || cli.Info().Checksum != csum {
						t.Errorf("checksum: initiator %v responder %v, want %v", cli.Info().Checksum, srv.Info().Checksum, csum)
					}
					// Echo back and close cleanly.
					if _, err := srv.Write(got); err != nil {
						t.Fatal(err)
					}
					back := make([]byte, len(msg))
					if _, err := io.ReadFull(cli, back); err != nil || !bytes.Equal(back, msg) {
						t.Fatalf("initiator read %v", err)
					}
					f := flowsOf(p.cap.snapshot())[0]
					checkWireBasics(t, p.cap.snapshot())
					checkKeysMatchInfo(t, f, cli, srv)
					checkDataSegments(t, f, dataCheck{side: 'a', st: stream{1}, checksum: csum})
					// The responder's gVisor ACKs the first segments out of order
					// here and the initiator retransmits, racing with the shim,
					// which releases mappings on the ACKs it sees first: a
					// segment must never go out without its mapping.
					if st := cli.sub0Stats().(subflow.Stats); st.TXNoMapping != 0 {
						t.Errorf("initiator: %d data segments sent without a mapping", st.TXNoMapping)
					}
					if t.Failed() {
						for i := range f.pkts {
							t.Logf("rel %d: %v", f.rel(&f.pkts[i]), f.pkts[i].String())
						}
						t.Logf("initiator: %+v", cli.sub0Stats())
					}
					cli.Close()
					srv.Close()
					waitConnsGone(t, p.a, p.b)
				})
			}
		}
	}
}

// TestTokensUnique opens many connections at once, in both directions, so
// that each stack holds many initiator and responder keys: every key on the
// wire differs, every token a stack uses is unique among its connections
// (RFC 8684 §3.2), and each end's token is its wire key's.
func TestTokensUnique(t *testing.T) {
	n := sized(96, 4, 16)
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			noLeaks(t)
			p := newTPair(t, pairOpts{v6: v6})
			type end struct{ ini, rsp *Conn }
			var ends []end
			for i := 0; i < n; i++ {
				from := byte('a')
				if i%3 == 2 {
					from = 'b'
				}
				c, s := connect(t, p.pair, from, uint16(5000+i))
				ends = append(ends, end{c, s})
			}
			tokens := map[*Stack]map[uint32]bool{p.a: {}, p.b: {}}
			keys := map[uint64]bool{}
			for _, e := range ends {
				for _, c := range []*Conn{e.ini, e.rsp} {
					if !c.MultipathTCP() {
						t.Fatalf("not MPTCP: %v", c.Info())
					}
					tok := c.Info().Token
					if tokens[c.st][tok] {
						t.Errorf("token %08x used twice on one stack", tok)
					}
					tokens[c.st][tok] = true
				}
			}
			fs := flowsOf(p.cap.snapshot())
			if len(fs) != n {
				t.Fatalf("%d connections captured, want %d", len(fs), n)
			}
			for _, f := range fs {
				for _, k := range []uint64{f.keyI, f.keyR} {
					if k == 0 || keys[k] {
						t.Errorf("key %016x zero or seen twice", k)
					}
					keys[k] = true
				}
			}
			for _, e := range ends {
				e.ini.Close()
				e.rsp.Close()
			}
			waitConnsGone(t, p.a, p.b)
		})
	}
}

// repeatingRand hands out each 8-byte key twice, so that every second key a
// stack draws collides with the token of the one before.
type repeatingRand struct {
	mu   sync.Mutex
	next uint64
	half bool
}

func (r *repeatingRand) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range b {
		if i%8 == 0 {
			if !r.half {
				r.next++
			}
			r.half = !r.half
		}
		v := r.next*0x0101010101010101 + 0x1234
		b[i] = byte(v >> (8 * (i % 8)))
	}
	return len(b), nil
}

// TestTokensUniqueWithCollidingKeys gives both stacks a key source that
// repeats every key: a stack must draw again instead of using a token it
// already has (§3.2); the connections stay MPTCP.
func TestTokensUniqueWithCollidingKeys(t *testing.T) {
	noLeaks(t)
	p := newTPair(t, pairOpts{a: Config{Rand: &repeatingRand{}}, b: Config{Rand: &repeatingRand{}}})
	var conns []*Conn
	for i := 0; i < 6; i++ {
		from := byte('a')
		if i%2 == 1 {
			from = 'b'
		}
		c, s := connect(t, p.pair, from, uint16(4100+i))
		conns = append(conns, c, s)
	}
	tokens := map[*Stack]map[uint32]bool{p.a: {}, p.b: {}}
	for _, c := range conns {
		if !c.MultipathTCP() {
			t.Errorf("not MPTCP: %v", c.Info())
		}
		tok := c.Info().Token
		if tokens[c.st][tok] {
			t.Errorf("token %08x used twice on one stack", tok)
		}
		tokens[c.st][tok] = true
	}
	for _, c := range conns {
		c.Close()
	}
	waitConnsGone(t, p.a, p.b)
}

// TestChecksumNegotiation tries the four combinations of Config.Checksum
// on initiator and responder: either side asking is enough (§3.1), and then
// both ends report Info().Checksum, the SYN carries A only if the
// initiator asked, the SYN/ACK and third ACK carry it iff negotiated, and
// every DSS carries a checksum that verifies iff negotiated. Data crosses
// intact in every case.
func TestChecksumNegotiation(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, ci := range []bool{false, true} {
			for _, cr := range []bool{false, true} {
				t.Run(fmt.Sprintf("v6=%v/initiator=%v/responder=%v", v6, ci, cr), func(t *testing.T) {
					noLeaks(t)
					p := newTPair(t, pairOpts{v6: v6, a: Config{Checksum: ci}, b: Config{Checksum: cr}})
					cli, srv := connect(t, p.pair, 'a', 4700)
					want := ci || cr
					if cli.Info().Checksum != want || srv.Info().Checksum != want {
						t.Errorf("Info().Checksum: initiator %v responder %v, want %v", cli.Info().Checksum, srv.Info().Checksum, want)
					}
					n := int64(300000)
					toS, toC := transfer(cli, srv, n, n, 20000)
					checkResult(t, "up", toS, stream{1}, n)
					checkResult(t, "down", toC, stream{2}, n)
					cli.Close()
					srv.Close()
					waitConnsGone(t, p.a, p.b)
					pkts := p.cap.snapshot()
					checkWireBasics(t, pkts)
					f := flowsOf(pkts)[0]
					if !checkHandshake(t, f, ci, want) {
						return
					}
					checkDataSegments(t, f, dataCheck{side: f.ini, st: stream{1}, checksum: want})
					checkDataSegments(t, f, dataCheck{side: f.rsp, st: stream{2}, checksum: want})
				})
			}
		}
	}
}

// constRand hands out the same key again and again.
type constRand struct{}

func (constRand) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 7
	}
	return len(b), nil
}

// TestTokenExhaustion gives a stack a key source that always returns the
// same key: its second connection cannot get a unique token (§3.2), so it
// connects with plain TCP, as Linux does, and counts MPFallbackTokenInit.
func TestTokenExhaustion(t *testing.T) {
	noLeaks(t)
	p := newTPair(t, pairOpts{a: Config{Rand: constRand{}}, noRecord: true})
	c1, s1 := connect(t, p.pair, 'a', 7000) // takes the only token
	if !c1.MultipathTCP() {
		t.Fatalf("first connection not MPTCP: %v", c1.Info())
	}
	c2, s2 := connect(t, p.pair, 'a', 7001)
	if c2.MultipathTCP() || s2.MultipathTCP() || p.a.Counters().MPFallbackTokenInit.Load() != 1 {
		t.Errorf("second connection MPTCP %v/%v, MPFallbackTokenInit %d", c2.MultipathTCP(), s2.MultipathTCP(), p.a.Counters().MPFallbackTokenInit.Load())
	}
	toS, toC := transfer(c2, s2, 100000, 100000, 8192)
	checkResult(t, "up", toS, stream{1}, 100000)
	checkResult(t, "down", toC, stream{2}, 100000)
	for _, c := range []*Conn{c1, s1, c2, s2} {
		c.Close()
	}
	waitConnsGone(t, p.a, p.b)
}
