//go:build linux

package interop

import (
	"testing"

	"github.com/umptcp/umptcp/internal/kernelpeer"
	"github.com/umptcp/umptcp/subflow"
)

// fallbackData is what each end sends in the fallback cases.
const fallbackData = 8 << 20

// midRule adds an iptables rule in the middlebox, for both families.
func midRule(t *testing.T, tp *Topology, args ...string) {
	t.Helper()
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if _, err := tp.Mid.Run(append([]string{cmd}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
}

// Middlebox rules that strip MPTCP (TCP option 30).
var (
	stripSYNACK = []string{"-t", "mangle", "-A", "FORWARD", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK",
		"-j", "TCPOPTSTRIP", "--strip-options", "30"}
	stripAll = []string{"-t", "mangle", "-A", "FORWARD", "-p", "tcp", "-j", "TCPOPTSTRIP", "--strip-options", "30"}
	// stripPayload strips segments with payload only: an IPv4 or IPv6
	// packet of 101 bytes or more has some (headers with every option take
	// at most 40+60 bytes). Pure ACKs keep their DSS.
	stripPayload = []string{"-t", "mangle", "-A", "FORWARD", "-p", "tcp", "-m", "length", "--length", "101:65535",
		"-j", "TCPOPTSTRIP", "--strip-options", "30"}
)

// fallbackCase is one way MPTCP is lost.
type fallbackCase struct {
	name string
	env  env
	want map[role]fallbackWant
}

// fallbackWant is what a fallback must look like in one role.
type fallbackWant struct {
	// reason is umptcp's Info().FallbackReason.
	reason subflow.FallbackReason
	// kernelSocket: the kernel's socket was MPTCP when the connection was
	// set up (net.TCPConn.MultipathTCP); it falls back afterwards.
	kernelSocket bool
	// kernel and ours are counter values (deltas). Counters not named must
	// be zero when they are about fallback (zeroNoFallback) or corruption
	// (zeroAlways), except for onData.
	kernel, ours counters
	// onData: the fallback happens on data after the handshake, and each
	// end counts it once, as MPCapableDataFallback (Linux: the peer's DSS
	// was not seen yet, check_fully_established) or DssFallback (Linux:
	// subflow_check_data_avail). Which one depends on timing (strip-payload:
	// whether a pure ACK with a DSS got through first). Otherwise neither
	// may count.
	onData bool
	// peer and mid: what the captures on the kernel's veth and on the
	// middlebox's veth towards umptcp must hold.
	peer, mid captureWant
}

// Captures of a fallback: some MPTCP options, or none.
var (
	someMPTCP = captureWant{fallback: true}
	noMPTCP   = captureWant{fallback: true, none: true}
)

// noDSSWant: the handshake completed, then data came without a DSS and both
// ends fell back on it (§3.7).
var noDSSWant = map[role]fallbackWant{
	oursClient: {
		reason:       subflow.FallbackNoDSS,
		kernelSocket: true,
		onData:       true,
		kernel:       counters{"MPCapableSYNRX": 1, "MPCapableACKRX": 1},
		ours:         counters{"MPCapableSYNTX": 1, "MPCapableSYNACKRX": 1},
		peer:         someMPTCP, mid: someMPTCP,
	},
	kernelClient: {
		reason:       subflow.FallbackNoDSS,
		kernelSocket: true,
		onData:       true,
		kernel:       counters{"MPCapableSYNTX": 1, "MPCapableSYNACKRX": 1},
		ours:         counters{"MPCapableSYNRX": 1, "MPCapableACKRX": 1},
		peer:         someMPTCP, mid: someMPTCP,
	},
}

var fallbackCases = []fallbackCase{
	{
		// The SYN/ACK loses MP_CAPABLE: the initiator falls back, and its
		// third ACK tells the responder (§3.1).
		name: "strip-synack",
		env: env{middlebox: true, setup: func(t *testing.T, tp *Topology) {
			midRule(t, tp, stripSYNACK...)
		}},
		want: map[role]fallbackWant{
			oursClient: {
				reason: subflow.FallbackNoMPCOnSYNACK,
				kernel: counters{"MPCapableSYNRX": 1, "MPCapableFallbackACK": 1},
				ours:   counters{"MPCapableSYNTX": 1, "MPCapableFallbackSYNACK": 1},
				peer:   someMPTCP, mid: someMPTCP,
			},
			kernelClient: {
				reason: subflow.FallbackNoMPCOnACK,
				kernel: counters{"MPCapableSYNTX": 1, "MPCapableFallbackSYNACK": 1},
				ours:   counters{"MPCapableSYNRX": 1, "MPCapableFallbackACK": 1},
				peer:   someMPTCP, mid: someMPTCP,
			},
		},
	},
	{
		// Every MPTCP option is stripped: the responder sees a plain SYN.
		name: "strip-all",
		env: env{middlebox: true, setup: func(t *testing.T, tp *Topology) {
			midRule(t, tp, stripAll...)
		}},
		want: map[role]fallbackWant{
			oursClient: {
				reason: subflow.FallbackNoMPCOnSYNACK,
				kernel: counters{"MPCapableSYNRX": 0},
				ours:   counters{"MPCapableSYNTX": 1, "MPCapableFallbackSYNACK": 1},
				peer:   noMPTCP, mid: someMPTCP,
			},
			kernelClient: {
				reason: subflow.FallbackNoMPCOnSYN,
				kernel: counters{"MPCapableSYNTX": 1, "MPCapableFallbackSYNACK": 1},
				ours:   counters{"MPCapableSYNRX": 0},
				peer:   someMPTCP, mid: noMPTCP,
			},
		},
	},
	{
		// The handshake completes; then every option is stripped: the
		// first data without a DSS makes both ends fall back (§3.7). Linux
		// counts it as MPCapableDataFallback on the initiator, which has
		// seen no DSS yet, and DssFallback on the responder.
		name: "strip-after-handshake",
		env: env{middlebox: true, afterHandshake: func(t *testing.T, tp *Topology) {
			midRule(t, tp, stripAll...)
		}},
		want: noDSSWant,
	},
	{
		// Only segments with payload lose their options (MP_CAPABLE on the
		// first data included); pure ACKs keep their DSS. Whether the
		// initiator saw one before the first data without a DSS is a race:
		// the kernel as initiator counted MPCapableDataFallback in some
		// runs and DssFallback in others.
		name: "strip-payload",
		env: env{middlebox: true, setup: func(t *testing.T, tp *Topology) {
			midRule(t, tp, stripPayload...)
		}},
		want: noDSSWant,
	},
	{
		// A kernel with net.mptcp.enabled=0: Go's MPTCP socket falls back
		// to a TCP one; the kernel counts nothing.
		name: "kernel-mptcp-disabled",
		env:  env{peerSysctls: []string{"net.mptcp.enabled=0"}},
		want: map[role]fallbackWant{
			oursClient: {
				reason: subflow.FallbackNoMPCOnSYNACK,
				kernel: counters{"MPCapableSYNRX": 0},
				ours:   counters{"MPCapableSYNTX": 1, "MPCapableFallbackSYNACK": 1},
				peer:   someMPTCP,
			},
			kernelClient: {
				reason: subflow.FallbackNoMPCOnSYN,
				kernel: counters{"MPCapableSYNTX": 0},
				ours:   counters{"MPCapableSYNRX": 0},
				peer:   noMPTCP,
			},
		},
	},
}

// TestFallback is case 5: MPTCP lost to a middlebox (in "mid", stripping
// option 30 with TCPOPTSTRIP on the SYN/ACK, on every segment, on every
// segment after the handshake, on segments with payload) or to a kernel
// without MPTCP, in both roles. Data arrives intact both ways; umptcp's
// connection is not MPTCP at the end and says why; the kernel's fallback
// counters are the ones expected, and umptcp's agree with what Linux
// counts in the same position; nothing is counted as a mapping or
// checksum error; the kernel's socket shows the fallback.
func TestFallback(t *testing.T) {
	for _, fc := range fallbackCases {
		eachVariant(t, fc.name, func(t *testing.T, v6 bool, r role) {
			e := fc.env
			e.v6 = v6
			testFallback(t, r, e, fc.want[r])
		})
	}
}

func testFallback(t *testing.T, r role, e env, want fallbackWant) {
	s := open(t, r, e)
	or, kr := s.transfer(fallbackData, fallbackData, kernelpeer.Config{})
	res := s.finish(want.peer, want.mid)
	checkIntegrity(t, fallbackData, fallbackData, or, kr)
	if or.mptcp || or.info.MPTCP {
		t.Errorf("umptcp: MultipathTCP %v, Info.MPTCP %v after fallback", or.mptcp, or.info.MPTCP)
	}
	if or.info.FallbackReason != want.reason.String() {
		t.Errorf("umptcp: FallbackReason %q, want %q", or.info.FallbackReason, want.reason)
	}
	switch {
	case s.kernelMPTCP != want.kernelSocket:
		t.Errorf("kernel: MultipathTCP() %v at setup, want %v", s.kernelMPTCP, want.kernelSocket)
	case kr.MPTCP && kr.Info != nil && !kr.Info.Fallback:
		t.Errorf("kernel: MPTCP_INFO without the fallback flag: %+v", kr.Info)
	}
	if want.kernelSocket {
		// Linux marks a fallback socket in `ss -M`; at setup it was not
		// yet.
		checkSSUp(t, s, or)
	}
	base := zeros(zeroAlways, zeroNoFallback, zeroOrderly)
	handshake := zeros([]string{"MPCapableSYNRX", "MPCapableACKRX", "MPCapableSYNTX", "MPCapableSYNACKRX"})
	for _, data := range dataFallbacks {
		delete(base, data)
	}
	expect(t, "kernel", res.peer, base.with(handshake).with(want.kernel))
	expect(t, "umptcp", res.ours, base.with(handshake).with(want.ours))
	var n uint64
	if want.onData {
		n = 1
	}
	if k := dataFallbackCount(res.peer); k != n {
		t.Errorf("kernel: MPCapableDataFallback + DssFallback = %d, want %d", k, n)
	}
	if k := dataFallbackCount(res.ours); k != n {
		t.Errorf("umptcp: MPCapableDataFallback + DssFallback = %d, want %d, as Linux counts", k, n)
	}
}

// dataFallbacks are the counters of a fallback on data.
var dataFallbacks = []string{"MPCapableDataFallback", "DssFallback"}

func dataFallbackCount(m map[string]uint64) uint64 {
	var n uint64
	for _, c := range dataFallbacks {
		n += m["MPTcpExt"+c]
	}
	return n
}
