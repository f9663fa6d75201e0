//go:build linux

package interop

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/internal/kernelpeer"
)

// Known umptcp bugs found by this suite. The default run stays green: the
// tests that show them skip, and the checks that every case makes tolerate
// (and log) their symptoms. With -bugs the tests run and nothing is
// tolerated:
//
//	go test ./internal/interop/ -bugs
//
// When a bug is fixed, delete its entry here; its test moves to the case
// files as an ordinary test.
var bugs = flag.Bool("bugs", false, "run the tests of known umptcp bugs and fail on their symptoms in every case")

// requireBugs skips a known-bug test unless -bugs is given.
func requireBugs(t *testing.T, bug string) {
	t.Helper()
	if !*bugs {
		t.Skipf("known umptcp bug %s: run with -bugs", bug)
	}
}

// knownBugCases are the cases (by test name) that fail because of a known
// umptcp bug; open skips them unless -bugs is given.
var knownBugCases = map[string]string{
	// Bug dataFINBeforeDSS, see TestClose and closeCases.
	"TestClose/umptcp-first-nodata/ipv4/umptcp-client": "dataFINBeforeDSS",
	"TestClose/umptcp-first-nodata/ipv6/umptcp-client": "dataFINBeforeDSS",
}

// skipKnownBug skips t if it is one of knownBugCases, without -bugs.
func skipKnownBug(t *testing.T) {
	t.Helper()
	if bug, ok := knownBugCases[t.Name()]; ok {
		requireBugs(t, bug)
	}
}

// symptom reports a symptom of a known bug: a failure with -bugs, a log
// line otherwise.
func symptom(t *testing.T, bug, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if *bugs {
		t.Errorf("%s (known bug %s)", msg, bug)
		return
	}
	t.Logf("known umptcp bug %s (run with -bugs to fail on it): %s", bug, msg)
}

// knownBugOf returns the name of the known bug a capture mismatch is a
// symptom of, or "" (also with -bugs, so that every mismatch fails).
// Segments reordered on the path are sorted out before (pathReordering).
func knownBugOf(m decode.Mismatch) string {
	if *bugs {
		return ""
	}
	fromUs := m.Src.Addr() == StackAddr(false) || m.Src.Addr() == StackAddr(true)
	if m.Check == decode.CheckDataAck && strings.Contains(m.What, "backwards") && fromUs {
		// Bug dataAckBackwards: the same TCP ACK, an older DATA_ACK.
		return "dataAckBackwards"
	}
	return ""
}

// Bug dataFINBeforeDSS: umptcp as client drops its DATA_FIN when it closes
// before the kernel sent it any DSS (TestClose/umptcp-first-nodata/
// umptcp-client). Every option-only ACK it sends carries the MP_CAPABLE of
// the third ACK (length 20) instead of a DSS, so the DATA_FIN it means to
// send is never on the wire; the shim keeps "retransmitting the DATA_FIN"
// (frames 4-11: MP_CAPABLE ACKs at 5 ms, 200 ms, 600 ms, 1.4 s, 3 s, 6.2 s,
// 12.6 s) and the kernel never reads EOF. Only when the kernel gives up and
// closes (its DATA_FIN carries a DSS) does umptcp switch to DSS and send its
// DATA_FIN. Linux sends the third ACK's MP_CAPABLE only while no DATA_FIN is
// due ("DATA_FIN and TCP shutdown take precedence",
// mptcp_established_options_mp in net/mptcp/options.c): umptcp must put a
// DSS with the DATA_FIN on the segment (RFC 8684 §3.1 asks the initiator
// to repeat MP_CAPABLE on its first data, not on a DATA_FIN; the kernel
// already has the keys from the third ACK, and a server that lost them
// falls back anyway).

// Bug ackAfterReset: after a subflow is reset (umptcp aborted it, or the
// kernel's RST+MP_FASTCLOSE arrived), umptcp still sends option-only ACKs
// with a DSS DATA_ACK on it; the kernel answers each with a plain RST.
// TestFastClose/umptcp-close-unread: frame 9 umptcp [R.] MP_FASTCLOSE, then
// frames 11 and 14 umptcp [.] "dss ack" (window 0), 0.2 ms and 5 ms later;
// TestFastClose/kernel-close-unread: frame 6 kernel [R.] MP_FASTCLOSE, frame
// 9 umptcp [.] "dss ack". The DATA_ACK timer (Conn.afterRead, 5 ms) and
// other queued work still call sendPureACK, and the shim synthesises ACKs
// for a flow whose endpoint is gone. Nothing breaks (the kernel has
// forgotten the connection), but it is traffic on a dead 4-tuple (RFC 9293
// §3.10.7.1): the shim should not synthesise segments on a subflow once it
// was reset or aborted, and the timers should stop with the connection.
//
// Bug rstForRST: umptcp answers the kernel's RST+MP_FASTCLOSE with RSTs of
// its own (with MP_TCPRST) on the same subflow (TestFastClose/
// kernel-close-unread: frame 6 kernel [R.], frames 7 [R.] and 8 [R] from
// umptcp). The shim queues the fast close to the worker, which aborts the
// gVisor endpoint (Conn.doWork, workReset → abortSubflows) before gVisor
// has processed the RST, so gVisor sends a RST for it. A RST must never be
// answered with a RST (RFC 9293 §3.10.7.4); RFC 8684 §3.5 has the receiver
// of MP_FASTCLOSE on a RST tear its subflows down, not reset them again.
// Abort only the other subflows, or let gVisor take the RST first.

// Bug fallbackCounters: umptcp's fallback counters disagree with Linux's
// (TestFallback). (1) A client whose SYN/ACK had no MP_CAPABLE (stripped,
// or a kernel with MPTCP disabled) counts MPCapableFallbackSYNACK, and then
// DssFallback and MPCapableDataFallback as well when the first data
// arrives: one fallback counted three times. The connection is TCP from the
// handshake on, but Conn.readSub finds no mapping (no infinite mapping was
// installed for the handshake fallback) and Conn.unmapped takes it for
// data whose DSS was stripped. (2) Data without a DSS after a completed
// handshake: Linux counts exactly one of MPCapableDataFallback (the
// initiator has not yet seen the peer's DSS: check_fully_established) and
// DssFallback (otherwise: subflow_check_data_avail). umptcp's initiator
// counts DssFallback always and MPCapableDataFallback when no data (rather
// than no DSS) came from the peer before: both after the handshake
// (strip-after-handshake), and MPCapableDataFallback where Linux counts
// only DssFallback (strip-payload, the kernel's DSS ACKs got through).

// TestBugDataAckBackwards: umptcp's DATA_ACK goes backwards on a subflow.
//
// Seen in most bulk transfers of TestTransfer (umptcp receiving 200 MB
// while its application reads behind, the TCP window at 0): a segment
// carries a DATA_ACK exactly 2 MiB (the unread receive buffer) below the one
// on the segment before it, with the same TCP ACK, e.g.
//
//	frame 3458 umptcp > kernel ack 57606145 len 0     DATA_ACK 1054126494663476024
//	frame 3461 umptcp > kernel ack 57606145 len 8400  DATA_ACK 1054126494661378872
//
// subflow.(*Subflow).dataAck derives the DATA_ACK from the segment's TCP ACK
// while the received bytes are mapped contiguously from the read position,
// and otherwise falls back to the connection's rcvNxt, which is the
// application's read position. Whenever that fast path fails (for one, the
// reader updates rcvRead (Consumed) before rcvNxt, so a segment built in
// between sees them disagree), the DATA_ACK falls back by the unread data.
// Linux ignores the older DATA_ACK (ack_update_msk only moves forward), so
// nothing breaks, but a cumulative acknowledgment should not regress: RFC
// 8684 §3.3.2, and decode's data-ack check (and Wireshark) flag it. Fix: never
// send less than the highest DATA_ACK sent (per connection), or make the
// fallback the highest value derived so far.
func TestBugDataAckBackwards(t *testing.T) {
	requireBugs(t, "dataAckBackwards")
	for _, r := range roles {
		t.Run(r.String(), func(t *testing.T) {
			for range 3 { // it shows in most runs, not all
				s := open(t, r, env{})
				or, kr := s.transfer(bulk, bulk, kernelpeer.Config{})
				s.finish(captureWant{handshake: true})
				checkIntegrity(t, bulk, bulk, or, kr)
				if t.Failed() {
					return
				}
			}
		})
	}
}
