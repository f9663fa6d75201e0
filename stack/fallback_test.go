package stack

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// dirOf returns the emu direction of packets sent by side.
func dirOf(side byte) emu.Dir {
	if side == 'a' {
		return emu.AToB
	}
	return emu.BToA
}

func other(side byte) byte {
	if side == 'a' {
		return 'b'
	}
	return 'a'
}

func (p *tpair) tap(side byte) *tapEP {
	if side == 'a' {
		return p.ta
	}
	return p.tb
}

func (p *pair) stackOf(side byte) *Stack {
	if side == 'a' {
		return p.a
	}
	return p.b
}

// rewriteMPC returns an inbound hook that applies f to the MP_CAPABLE of
// the segments sel selects (bytes: kind, length, version byte, flags, ...)
// and fixes the TCP checksum, as a rewriting middlebox would.
func rewriteMPC(sel func(w *wirePkt) bool, f func(opt []byte)) inboundHook {
	return func(b []byte) []byte {
		w, ok := parseWire(0, b)
		if !ok || !sel(&w) {
			return b
		}
		if o := w.opt(options.SubtypeMPCapable); o != nil {
			f(o.Raw) // aliases b
			fixTCPChecksum(b)
		}
		return b
	}
}

// Ways to break an MP_CAPABLE option (§3.1, Linux's mptcp_parse_option).
var badMPC = []struct {
	name string
	f    func(opt []byte)
}{
	{"B set", func(o []byte) { o[3] |= options.CapableFlagExtensibility }},
	{"H clear", func(o []byte) { o[3] &^= options.CapableFlagHMACSHA256 }},
	{"other crypto bit", func(o []byte) { o[3] |= 0x02 }},
	{"version 0", func(o []byte) { o[2] &^= 0x0f }},
}

// counterWant is an exact expected value of a named counter.
type counterWant map[string]uint64

func checkCounters(t *testing.T, who string, s *Stack, want counterWant) {
	t.Helper()
	snap := s.Counters().Snapshot()
	for name, v := range want {
		got, ok := snap[name]
		if !ok {
			t.Errorf("%s: no counter %s", who, name)
			continue
		}
		if got != v {
			t.Errorf("%s: %s = %d, want %d", who, name, got, v)
		}
	}
}

// fallbackCase is one cause of fallback.
type fallbackCase struct {
	name string
	// setup impairs the pair before the connection opens; ini is the
	// initiator's side.
	setup func(p *tpair, ini byte)
	// first is the side whose application writes first ('i' or 'r'), for
	// causes that depend on who sends data first.
	first                byte
	iniReason, rspReason subflow.FallbackReason
	iniCtr, rspCtr       counterWant
	// iniEitherCount: the initiator counts its fallback once, as
	// MPCapableDataFallback or DssFallback, depending on a race (see the
	// case).
	iniEitherCount bool
}

func fallbackCases() []fallbackCase {
	// A handshake fallback is counted once, as Linux counts it: not again
	// as a DSS fallback when the first data arrives without DSS.
	synackFallback := counterWant{
		"MPTcpExtMPCapableSYNTX": 1, "MPTcpExtMPCapableSYNACKRX": 0, "MPTcpExtMPCapableFallbackSYNACK": 1,
		"MPTcpExtMPCurrEstab": 0, "MPTcpExtDssFallback": 0, "MPTcpExtMPCapableDataFallback": 0,
	}
	synackRsp := counterWant{
		"MPTcpExtMPCapableSYNRX": 1, "MPTcpExtMPCapableACKRX": 0, "MPTcpExtMPCapableFallbackACK": 1,
		"MPTcpExtMPCurrEstab": 0, "MPTcpExtDssFallback": 0,
	}
	synRsp := counterWant{
		"MPTcpExtMPCapableSYNRX": 0, "MPTcpExtMPCapableACKRX": 0, "MPTcpExtMPCapableFallbackACK": 0,
		"MPTcpExtMPCurrEstab": 0,
	}
	cases := []fallbackCase{
		{
			name: "SYN/ACK stripped",
			setup: func(p *tpair, ini byte) {
				p.link.Update(dirOf(other(ini)), func(c *emu.Config) { c.Strip = emu.StripSYNACK })
			},
			iniReason: subflow.FallbackNoMPCOnSYNACK, rspReason: subflow.FallbackNoMPCOnACK,
			iniCtr: synackFallback, rspCtr: synackRsp,
		},
		{
			name: "SYN stripped",
			setup: func(p *tpair, ini byte) {
				p.link.Update(dirOf(ini), func(c *emu.Config) { c.Strip = emu.StripSYN })
			},
			iniReason: subflow.FallbackNoMPCOnSYNACK, rspReason: subflow.FallbackNoMPCOnSYN,
			iniCtr: synackFallback, rspCtr: synRsp,
		},
		{
			name: "third ACK stripped",
			setup: func(p *tpair, ini byte) {
				p.link.Update(dirOf(ini), func(c *emu.Config) { c.Strip = emu.StripOther })
			},
			// The responder falls back on the third ACK (Linux does the
			// same); its data then carries no DSS, from which the
			// initiator learns it.
			first:     'r',
			iniReason: subflow.FallbackNoDSS, rspReason: subflow.FallbackNoMPCOnACK,
			iniCtr: counterWant{"MPTcpExtMPCapableSYNACKRX": 1, "MPTcpExtMPCapableFallbackSYNACK": 0,
				"MPTcpExtDssFallback": 0, "MPTcpExtMPCapableDataFallback": 1, "MPTcpExtMPCurrEstab": 0},
			rspCtr: counterWant{"MPTcpExtMPCapableSYNRX": 1, "MPTcpExtMPCapableACKRX": 0,
				"MPTcpExtMPCapableFallbackACK": 1, "MPTcpExtDssFallback": 0, "MPTcpExtMPCurrEstab": 0},
		},
		{
			name: "initiator's data stripped",
			setup: func(p *tpair, ini byte) {
				p.link.Update(dirOf(ini), func(c *emu.Config) { c.Strip = emu.StripData })
			},
			// The responder sees the initiator's first data without
			// MP_CAPABLE or DSS, falls back, and answers without DSS; the
			// initiator falls back on that acknowledgment without DSS.
			// The responder decides when its reader meets the data, and
			// its TCP may have acknowledged the data with a DSS before
			// (Linux decides as the data arrives): then the initiator is
			// fully established by then and counts DssFallback rather
			// than MPCapableDataFallback. Either way, once.
			first:     'i',
			iniReason: subflow.FallbackNoDSS, rspReason: subflow.FallbackNoDSS,
			iniCtr:         counterWant{"MPTcpExtMPCapableSYNACKRX": 1, "MPTcpExtMPCurrEstab": 0},
			iniEitherCount: true,
			rspCtr: counterWant{"MPTcpExtMPCapableACKRX": 1, "MPTcpExtDssFallback": 1,
				"MPTcpExtMPCapableDataFallback": 0, "MPTcpExtMPCurrEstab": 0},
		},
		{
			name: "responder's data stripped",
			setup: func(p *tpair, ini byte) {
				p.link.Update(dirOf(other(ini)), func(c *emu.Config) { c.Strip = emu.StripData })
			},
			first:     'r',
			iniReason: subflow.FallbackNoDSS, rspReason: subflow.FallbackNoDSS,
			iniCtr: counterWant{"MPTcpExtMPCapableSYNACKRX": 1, "MPTcpExtDssFallback": 0,
				"MPTcpExtMPCapableDataFallback": 1, "MPTcpExtMPCurrEstab": 0},
			rspCtr: counterWant{"MPTcpExtMPCapableACKRX": 1, "MPTcpExtDssFallback": 1, "MPTcpExtMPCurrEstab": 0},
		},
	}
	for _, b := range badMPC {
		b := b
		cases = append(cases, fallbackCase{
			name: "SYN/ACK MP_CAPABLE " + b.name,
			setup: func(p *tpair, ini byte) {
				p.tap(ini).setInbound(rewriteMPC(func(w *wirePkt) bool { return w.synack() }, b.f))
			},
			iniReason: subflow.FallbackNoMPCOnSYNACK, rspReason: subflow.FallbackNoMPCOnACK,
			iniCtr: synackFallback, rspCtr: synackRsp,
		}, fallbackCase{
			name: "SYN MP_CAPABLE " + b.name,
			setup: func(p *tpair, ini byte) {
				p.tap(other(ini)).setInbound(rewriteMPC(func(w *wirePkt) bool { return w.syn() }, b.f))
			},
			iniReason: subflow.FallbackNoMPCOnSYNACK, rspReason: subflow.FallbackNoMPCOnSYN,
			iniCtr: synackFallback, rspCtr: synRsp,
		})
	}
	return cases
}

// TestFallback opens a connection through each cause of fallback to TCP
// (RFC 8684 §3.1, §3.7), in both roles, IPv4 and IPv6, and moves data both
// ways, then half-closes both ways: every byte arrives intact and EOF after
// it, both ends report MultipathTCP false with the right FallbackReason,
// Info counts the bytes, and each stack counts the right events. The whole
// matrix runs three times: data was lost to a RST after the FINs in about
// one run in eight before b40ebeb.
func TestFallback(t *testing.T) {
	n := int64(sized(2<<20, 8, 64<<10))
	const head = 10000 // the first exchange, in the order the case needs
	for rep := 0; rep < sized(3, 3, 1); rep++ {
		for _, tc := range fallbackCases() {
			for _, v6 := range []bool{false, true} {
				for _, ini := range []byte{'a', 'b'} {
					t.Run(fmt.Sprintf("%s/v6=%v/initiator=%c/run=%d", tc.name, v6, ini, rep), func(t *testing.T) {
						noLeaks(t)
						p := newTPair(t, pairOpts{v6: v6})
						tc.setup(p, ini)
						cli, srv := connect(t, p.pair, ini, 4500)
						// A first exchange in a fixed order, so that who falls
						// back when (and so the counters) is deterministic.
						firstW, firstR, firstSt, secondW, secondR, secondSt := cli, srv, stream{1}, srv, cli, stream{2}
						if tc.first == 'r' {
							firstW, firstR, firstSt, secondW, secondR, secondSt = srv, cli, stream{2}, cli, srv, stream{1}
						}
						exchangeHead := func(w, r *Conn, st stream) {
							t.Helper()
							go w.Write(st.bytes(0, head))
							got := make([]byte, head)
							if _, err := io.ReadFull(r, got); err != nil {
								t.Fatalf("first exchange: %v\nwriter %v\nreader %v", err, w.Info(), r.Info())
							}
							if !bytes.Equal(got, st.bytes(0, head)) {
								t.Fatal("first exchange: wrong bytes")
							}
						}
						exchangeHead(firstW, firstR, firstSt)
						exchangeHead(secondW, secondR, secondSt)
						toS, toC := transferFrom(cli, srv, head, n, head, n, 16<<10)
						checkResult(t, "initiator to responder", toS, stream{1}, n)
						checkResult(t, "responder to initiator", toC, stream{2}, n)

						ii, ri := cli.Info(), srv.Info()
						if cli.MultipathTCP() || ii.MPTCP {
							t.Errorf("initiator still MPTCP: %v", ii)
						}
						if srv.MultipathTCP() || ri.MPTCP {
							t.Errorf("responder still MPTCP: %v", ri)
						}
						if ii.FallbackReason != tc.iniReason.String() {
							t.Errorf("initiator's reason %q, want %q", ii.FallbackReason, tc.iniReason.String())
						}
						if ri.FallbackReason != tc.rspReason.String() {
							t.Errorf("responder's reason %q, want %q", ri.FallbackReason, tc.rspReason.String())
						}
						// Info counts the bytes of a connection that fell back too.
						for _, in := range []Info{ii, ri} {
							if in.BytesSent != uint64(n) || in.BytesReceived != uint64(n) {
								t.Errorf("Info after fallback: sent %d received %d, want %d each", in.BytesSent, in.BytesReceived, n)
							}
						}
						checkCounters(t, "initiator's stack", p.stackOf(ini), tc.iniCtr)
						if tc.iniEitherCount {
							c := p.stackOf(ini).Counters()
							if n := c.DssFallback.Load() + c.MPCapableDataFallback.Load(); n != 1 {
								t.Errorf("initiator's stack: DssFallback + MPCapableDataFallback = %d, want 1", n)
							}
						}
						checkCounters(t, "responder's stack", p.stackOf(other(ini)), tc.rspCtr)
						cli.Close()
						srv.Close()
						waitConnsGone(t, p.a, p.b)
						if t.Failed() {
							t.Logf("initiator counters %v\nresponder counters %v", nonZero(p.stackOf(ini).Counters()), nonZero(p.stackOf(other(ini)).Counters()))
							pk := p.cap.snapshot()
							for i := max(0, len(pk)-60); i < len(pk); i++ {
								t.Logf("%d %s", i, pk[i].String())
							}
						}
					})
				}
			}
		}
	}
}

// TestFallbackOneWay strips the options of the data going one way while no
// data comes back, in both roles: the receiver falls back on the first data
// without DSS, and the sender learns it from the ACKs of its data, which
// carry no DATA_ACK any more (RFC 8684 §3.7), instead of waiting for
// DATA_ACKs forever (or probing with bytes the fallen-back receiver would
// deliver twice). Every byte arrives intact, then EOF (the DATA_FIN became
// a TCP FIN), both ends end up plain TCP, and both connections leave. Each
// case runs several times: Read could miss the FIN of a fallen-back
// subflow (a race, fixed in b40ebeb).
func TestFallbackOneWay(t *testing.T) {
	n := int64(sized(16<<20, 8, 1<<20))
	for _, v6 := range []bool{false, true} {
		for _, sender := range []string{"initiator", "responder"} {
			for run := 0; run < sized(8, 4, 2); run++ {
				t.Run(fmt.Sprintf("v6=%v/sender=%s/run=%d", v6, sender, run), func(t *testing.T) {
					noLeaks(t)
					p := newTPair(t, pairOpts{v6: v6, noRecord: true})
					dir := emu.AToB
					if sender == "responder" {
						dir = emu.BToA
					}
					p.link.Update(dir, func(c *emu.Config) { c.Strip = emu.StripData })
					cli, srv := connect(t, p.pair, 'a', 4601)
					w, r := cli, srv
					if sender == "responder" {
						w, r = srv, cli
					}
					done := make(chan error, 1)
					go func() { done <- readExactlyThenEOF(r, stream{1}, n) }()
					_, err := io.Copy(onlyWriter{w}, stream{1}.reader(n))
					if err == nil {
						err = w.CloseWrite()
					}
					if err != nil {
						t.Errorf("sender: %v", err)
					}
					if err := <-done; err != nil {
						t.Errorf("receiver: %v", err)
					}
					if cli.MultipathTCP() || srv.MultipathTCP() {
						t.Errorf("still MPTCP: initiator %v\nresponder %v", cli.Info(), srv.Info())
					}
					cli.Close()
					srv.Close()
					waitConnsGone(t, p.a, p.b)
				})
			}
		}
	}
}
