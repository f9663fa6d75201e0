package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/options"
)

// fastCloseSetup opens a connection from 'a', exchanges a little data both
// ways (so both ends are fully established) and returns the ends as closer
// and peer.
func fastCloseSetup(t *testing.T, p *tpair, closerIsInitiator bool) (closer, peer *Conn, closerSide byte) {
	t.Helper()
	cli, srv := connect(t, p.pair, 'a', 4800)
	for _, pr := range [][2]*Conn{{cli, srv}, {srv, cli}} {
		msg := []byte("hello, fully established")
		if _, err := pr[0].Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(pr[1], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("exchange: %v", err)
		}
	}
	if closerIsInitiator {
		return cli, srv, 'a'
	}
	return srv, cli, 'b'
}

// checkFastCloseRST checks the RST the closer sent: MP_FASTCLOSE with the
// peer's key and MP_TCPRST (RFC 8684 §3.5, §3.6), and returns the key it
// carried.
func checkFastCloseRST(t *testing.T, p *tpair, closerSide byte) {
	t.Helper()
	pkts := p.cap.snapshot()
	checkWireBasics(t, pkts)
	f := flowsOf(pkts)[0]
	peerKey := f.key(other(closerSide))
	n := 0
	for i := range f.pkts {
		w := &f.pkts[i]
		if w.from != closerSide || !w.rst() {
			continue
		}
		n++
		if n > 1 {
			// TCP answering the peer's segments still in flight: plain
			// RSTs, as Linux sends them, once the subflow's reset went.
			if len(w.opts.List()) != 0 {
				t.Errorf("RST after the first carries MPTCP options: %v", w)
			}
			continue
		}
		fc := w.opt(options.SubtypeMPFastClose)
		if fc == nil || fc.MPFastClose().ReceiverKey != peerKey {
			t.Errorf("RST without MP_FASTCLOSE carrying the peer's key %016x: %v", peerKey, w)
		}
		if w.opt(options.SubtypeMPTCPRst) == nil {
			t.Errorf("RST without MP_TCPRST: %v", w)
		}
	}
	if n == 0 {
		t.Errorf("the closer sent no RST")
	}
}

// TestFastClose aborts a connection from each end, IPv4 and IPv6, in the
// two ways that abort (RFC 8684 §3.5, as Linux does): Close with data
// unread, and SetLinger(0) then Close. The closer's RST carries
// MP_FASTCLOSE with the peer's key and MP_TCPRST; the peer's Read and
// Write fail with ErrFastClosed; MPFastcloseTx/Rx and MPRstTx/Rx count it;
// both connections leave their stacks.
func TestFastClose(t *testing.T) {
	for _, how := range []string{"unread data", "linger 0"} {
		for _, closerIsInitiator := range []bool{true, false} {
			for _, v6 := range []bool{false, true} {
				name := fmt.Sprintf("%s/closer-initiator=%v/v6=%v", how, closerIsInitiator, v6)
				t.Run(name, func(t *testing.T) {
					noLeaks(t)
					p := newTPair(t, pairOpts{v6: v6})
					closer, peer, side := fastCloseSetup(t, p, closerIsInitiator)
					if how == "unread data" {
						if _, err := peer.Write(make([]byte, 5000)); err != nil {
							t.Fatal(err)
						}
						waitFor(t, "the data to reach the closer", closer.unreadData)
					} else {
						if err := closer.SetLinger(0); err != nil {
							t.Fatal(err)
						}
					}
					if err := closer.Close(); err != nil {
						t.Fatal(err)
					}
					_, err := peer.Read(make([]byte, 100))
					if !errors.Is(err, ErrFastClosed) {
						t.Errorf("peer's Read after the fast close: %v, want ErrFastClosed", err)
					}
					if _, err := peer.Write([]byte("x")); err == nil {
						t.Errorf("peer's Write after the fast close succeeded")
					}
					if _, err := closer.Read(make([]byte, 1)); !errors.Is(err, errClosedConn) {
						t.Errorf("closer's Read after Close: %v", err)
					}
					waitConnsGone(t, p.a, p.b)
					cs, ps := p.stackOf(side), p.stackOf(other(side))
					checkCounters(t, "closer's stack", cs, counterWant{"MPTcpExtMPFastcloseTx": 1, "MPTcpExtMPFastcloseRx": 0, "MPTcpExtMPRstTx": 1})
					checkCounters(t, "peer's stack", ps, counterWant{"MPTcpExtMPFastcloseRx": 1, "MPTcpExtMPFastcloseTx": 0, "MPTcpExtMPRstRx": 1, "UmptcpBadFastClose": 0})
					if in := peer.Info(); len(in.Resets) != 1 {
						t.Errorf("peer's Info().Resets = %v, want the closer's MP_TCPRST", in.Resets)
					}
					peer.Close()
					checkFastCloseRST(t, p, side)
				})
			}
		}
	}
}

// TestFastCloseWrongKeyIgnored changes the key in an MP_FASTCLOSE on its
// way: the peer must not act on it (RFC 8684 §5: only with our key) and
// counts it; the RST still resets the subflow, so the peer sees a plain
// reset, not ErrFastClosed, and the connection, whose only subflow is gone,
// fails and leaves the stack (see TestResetWithoutFastClose).
func TestFastCloseWrongKeyIgnored(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			noLeaks(t)
			p := newTPair(t, pairOpts{v6: v6})
			closer, peer, side := fastCloseSetup(t, p, true)
			p.tap(other(side)).setInbound(func(b []byte) []byte {
				w, ok := parseWire(0, b)
				if ok && w.rst() {
					if o := w.opt(options.SubtypeMPFastClose); o != nil {
						o.Raw[len(o.Raw)-1] ^= 0xff // the key's last byte
						fixTCPChecksum(b)
					}
				}
				return b
			})
			closer.SetLinger(0)
			closer.Close()
			_, err := peer.Read(make([]byte, 1))
			if err == nil || errors.Is(err, ErrFastClosed) {
				t.Errorf("peer's Read: %v, want a reset that is not ErrFastClosed", err)
			}
			checkCounters(t, "peer's stack", p.stackOf(other(side)), counterWant{"MPTcpExtMPFastcloseRx": 0, "UmptcpBadFastClose": 1})
			peer.Close()
			waitConnsGone(t, p.a, p.b)
		})
	}
}

// TestResetWithoutFastClose resets the only subflow of a connection with a
// RST that carries no MPTCP option (a peer that lost its state, a
// middlebox), in both roles: the peer's Read fails, MultipathTCP turns
// false, and after Close the connection leaves the stack at once, not
// after CloseTimeout (set to an hour here), as Linux's MPTCP socket takes
// the error of its last subflow.
func TestResetWithoutFastClose(t *testing.T) {
	for _, closerIsInitiator := range []bool{true, false} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("closer-initiator=%v/v6=%v", closerIsInitiator, v6), func(t *testing.T) {
				noLeaks(t)
				p := newTPair(t, pairOpts{v6: v6, a: Config{CloseTimeout: time.Hour}, b: Config{CloseTimeout: time.Hour}})
				closer, peer, side := fastCloseSetup(t, p, closerIsInitiator)
				p.link.Update(dirOf(side), func(c *emu.Config) { c.Strip = emu.StripAll })
				closer.SetLinger(0)
				closer.Close()
				if _, err := peer.Read(make([]byte, 1)); err == nil || errors.Is(err, ErrFastClosed) {
					t.Errorf("peer's Read after a plain reset: %v", err)
				}
				if peer.MultipathTCP() {
					t.Errorf("MultipathTCP true on a connection whose only subflow was reset")
				}
				peer.Close()
				waitConnsGone(t, p.a, p.b)
			})
		}
	}
}

// TestResetTakenByWrite resets the only subflow with a plain RST, MPTCP
// and fallen back, in both roles, and lets a Write meet the reset first:
// gVisor hands an endpoint's hard error to whichever of Read and Write
// comes first and then reports only "closed". Read must still fail with
// ErrReset, not return EOF as though the peer had closed: a clean EOF
// after a reset would hide the lost rest of the stream (a CI run of
// TestRewriteRandomWithChecksum saw exactly that).
func TestResetTakenByWrite(t *testing.T) {
	for _, plain := range []bool{false, true} {
		for _, closerIsInitiator := range []bool{true, false} {
			t.Run(fmt.Sprintf("plain=%v/closer-initiator=%v", plain, closerIsInitiator), func(t *testing.T) {
				noLeaks(t)
				p := newTPair(t, pairOpts{a: Config{CloseTimeout: time.Hour}, b: Config{CloseTimeout: time.Hour}})
				if plain {
					p.link.Update(emu.BToA, func(c *emu.Config) { c.Strip = emu.StripSYNACK })
				}
				closer, peer, side := fastCloseSetup(t, p, closerIsInitiator)
				if peer.MultipathTCP() == plain {
					t.Fatalf("MultipathTCP %v, want %v", peer.MultipathTCP(), !plain)
				}
				p.link.Update(dirOf(side), func(c *emu.Config) { c.Strip = emu.StripAll })
				closer.SetLinger(0)
				closer.Close()
				ep := peer.subList()[0].ep
				if !waitFor(t, "the peer's endpoint to take the RST", func() bool { return resetEndpoint(ep) }) {
					return
				}
				// Take the endpoint's error as a concurrent Write would.
				var r bytes.Reader
				if _, err := ep.Write(&r, tcpip.WriteOptions{}); err == nil {
					t.Fatalf("endpoint Write after the reset succeeded")
				}
				n, err := peer.Read(make([]byte, 1))
				if !errors.Is(err, ErrReset) {
					t.Errorf("peer's Read after a reset whose error a Write took: %d, %v; want ErrReset", n, err)
				}
				peer.Close()
				waitConnsGone(t, p.a, p.b)
			})
		}
	}
}
