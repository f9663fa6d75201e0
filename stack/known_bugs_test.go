package stack

// Tests that document open stack bugs. They fail today; they run only with
// -bugs, so that the default `go test ./stack` stays green:
//
//	go test ./stack -run TestKnownBugs -bugs -v
//
// Each test names the bug and its root cause; fix the stack, then move the
// test to the file of its topic.

import (
	"io"
	"testing"
	"time"

	"github.com/umptcp/umptcp/emu"
)

// TestKnownBugs runs the known-bug tests when -bugs is given. Without it
// it only reports how many it did not run.
func TestKnownBugs(t *testing.T) {
	bugs := []struct {
		name string
		f    func(*testing.T)
	}{
		{"HandshakeFallbackCountedAsDSSFallback", testBugHandshakeFallbackCountedAsDSSFallback},
		{"UploadAfterDataStripped", testBugUploadAfterDataStripped},
		{"StripDataMidConnection", testBugStripDataMidConnection},
	}
	if !*bugsFlag {
		t.Logf("%d known-bug tests not run; pass -bugs to run them", len(bugs))
		return
	}
	for _, b := range bugs {
		t.Run(b.name, b.f)
	}
}

// Bug: after a fallback in the handshake (no usable MP_CAPABLE on the
// SYN/ACK), the initiator's stack also counts MPTcpExtDssFallback and
// MPTcpExtMPCapableDataFallback, events of a connection that spoke MPTCP.
//
// Root cause: dial() applies the handshake's fallback with onFallback but
// does not make the connection plain (c.plain is set only by the
// listener's accepted()). The initiator's reader then takes the mapped
// path (readSub), finds no mapping for the first byte, and unmapped()
// treats it as data whose DSS a middlebox stripped: it bumps both counters
// and installs an infinite mapping. The data is right; the counters, which
// tests compare with Linux's, are not.
func testBugHandshakeFallbackCountedAsDSSFallback(t *testing.T) {
	for _, tc := range fallbackCases() {
		if tc.iniReason.String() != "no usable MP_CAPABLE on SYN/ACK" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			p := newTPair(t, pairOpts{})
			tc.setup(p, 'a')
			cli, srv := connect(t, p.pair, 'a', 4600)
			toS, toC := transfer(cli, srv, 100000, 100000, 8<<10)
			checkResult(t, "up", toS, stream{1}, 100000)
			checkResult(t, "down", toC, stream{2}, 100000)
			checkCounters(t, "initiator's stack", p.a, counterWant{
				"MPTcpExtDssFallback": 0, "MPTcpExtMPCapableDataFallback": 0,
			})
			cli.Close()
			srv.Close()
		})
	}
}

// Bug: when a middlebox strips the options of the initiator's data and the
// responder never sends data, an upload larger than the send buffer never
// completes.
//
// Root cause: the responder falls back on the first data without DSS
// (unmapped → FallBackAt) and from then on sends no MPTCP option at all; the
// initiator learns of a fallback only from data without DSS (its own
// unmapped), which never comes. Its data level keeps waiting for DATA_ACKs:
// sndUna stops, the 4 MiB send buffer fills, Write blocks and only sends
// one-byte window probes (of data the responder already delivered, now
// mapped by the responder's infinite mapping as new stream bytes), and its
// DATA_FIN is never acknowledged. RFC 8684 §3.7: "if an ACK is received
// for data (not just for the SYN) without a DSS option containing a Data
// ACK, the sender determines that the path is not MPTCP capable"; Linux
// (check_fully_established) falls back on such an ACK.
func testBugUploadAfterDataStripped(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			p := newTPair(t, pairOpts{v6: v6, noRecord: true})
			p.link.Update(emu.AToB, func(c *emu.Config) { c.Strip = emu.StripData })
			cli, srv := connect(t, p.pair, 'a', 4601)
			deadline := time.Now().Add(slack(20 * time.Second))
			cli.SetDeadline(deadline)
			srv.SetDeadline(deadline)
			n := int64(16 << 20)
			done := make(chan error, 1)
			go func() { done <- readExactlyThenEOF(srv, stream{1}, n) }()
			_, err := io.Copy(onlyWriter{cli}, stream{1}.reader(n))
			if err == nil {
				err = cli.CloseWrite()
			}
			if err != nil {
				t.Errorf("upload: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("responder: %v", err)
			}
			if cli.MultipathTCP() || srv.MultipathTCP() {
				t.Errorf("MPTCP after the data's options were stripped: initiator %v, responder %v", cli.MultipathTCP(), srv.MultipathTCP())
			}
			t.Logf("initiator %v\nresponder %v\ninitiator counters %v", cli.Info(), srv.Info(), nonZero(p.a.Counters()))
			cli.Close()
			srv.Close()
		})
	}
}

// Bug: a middlebox that starts stripping the options of data segments in
// the middle of a one-way transfer makes the transfer lose or corrupt data
// or stall.
//
// Root cause: as in testBugUploadAfterDataStripped, the receiver falls
// back alone and the sender never learns it.
func testBugStripDataMidConnection(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			p := newTPair(t, pairOpts{v6: v6, noRecord: true})
			cli, srv := connect(t, p.pair, 'a', 4602)
			deadline := time.Now().Add(slack(20 * time.Second))
			cli.SetDeadline(deadline)
			srv.SetDeadline(deadline)
			n := int64(32 << 20)
			ck := newChecker(stream{1}, n)
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(ck, onlyReader{srv}, 4<<20)
				if err == nil {
					p.link.Update(emu.AToB, func(c *emu.Config) { c.Strip = emu.StripData })
					_, err = io.Copy(ck, onlyReader{srv})
				}
				done <- err
			}()
			_, err := io.Copy(onlyWriter{cli}, stream{1}.reader(n))
			if err == nil {
				err = cli.CloseWrite()
			}
			if err != nil {
				t.Errorf("sender: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("receiver: %v", err)
			}
			if ck.off != n || ck.bad >= 0 {
				t.Errorf("receiver got %d bytes of %d, first wrong byte at %d", ck.off, n, ck.bad)
			}
			t.Logf("sender %v\nreceiver %v\nsender counters %v\nreceiver counters %v", cli.Info(), srv.Info(), nonZero(p.a.Counters()), nonZero(p.b.Counters()))
			cli.Close()
			srv.Close()
		})
	}
}
