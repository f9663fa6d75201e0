//go:build linux

package interop

import (
	"fmt"
	"testing"

	"github.com/umptcp/umptcp/internal/kernelpeer"
)

// Counter expectations use the MIB names without "MPTcpExt"; umptcp's
// counters carry the same names.

// zeroAlways must stay zero on both sides in every case without a corrupting
// middlebox: no mapping conflicts, no checksum failures.
var zeroAlways = []string{"DSSNotMatching", "DSSNoMatchTCP", "DataCsumErr", "DSSCorruptionFallback",
	"DSSCorruptionReset", "MPFailTx", "MPFailRx", "InfiniteMapTx", "InfiniteMapRx"}

// zeroNoFallback must stay zero on both sides of a connection that stays
// MPTCP.
var zeroNoFallback = []string{"MPCapableFallbackACK", "MPCapableFallbackSYNACK", "DssFallback",
	"MPCapableDataFallback", "FallbackFailed", "MPFallbackTokenInit"}

// zeroOrderly must stay zero on both sides of a connection that is not
// aborted.
var zeroOrderly = []string{"MPFastcloseTx", "MPFastcloseRx", "MPRstTx", "MPRstRx"}

// counters is a set of expected counter values.
type counters map[string]uint64

func zeros(lists ...[]string) counters {
	c := counters{}
	for _, l := range lists {
		for _, n := range l {
			c[n] = 0
		}
	}
	return c
}

// with returns c plus more (more wins).
func (c counters) with(more counters) counters {
	out := counters{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// expect checks the deltas in got against want. A counter umptcp does not
// implement is not checked on umptcp's side.
func expect(t *testing.T, who string, got map[string]uint64, want counters) {
	t.Helper()
	for name, v := range want {
		g, ok := got["MPTcpExt"+name]
		if !ok {
			if who == "kernel" {
				t.Errorf("%s: no counter MPTcpExt%s", who, name)
			}
			continue
		}
		if g != v {
			t.Errorf("%s: MPTcpExt%s = %d, want %d", who, name, g, v)
		}
	}
}

// handshakeCounters are the MP_CAPABLE counters each side counts for one
// handshake, by role: (kernel's, umptcp's).
func handshakeCounters(r role) (kernel, ours counters) {
	active := counters{"MPCapableSYNTX": 1, "MPCapableSYNACKRX": 1, "MPCapableSYNRX": 0, "MPCapableACKRX": 0}
	passive := counters{"MPCapableSYNRX": 1, "MPCapableACKRX": 1, "MPCapableSYNTX": 0, "MPCapableSYNACKRX": 0}
	if r == oursClient {
		return passive, active
	}
	return active, passive
}

// checkMPTCP checks a connection that must have stayed MPTCP from start to
// end and closed in order: both ends' views, `ss -Mni` while it was up, and
// the counters (no fallback, no mapping or checksum error, no fast close or
// MP_TCPRST).
func checkMPTCP(t *testing.T, s *session, or oursResult, kr kernelpeer.Result, res result) {
	t.Helper()
	if !or.mptcp || !or.info.MPTCP || or.info.FallbackReason != "" {
		t.Errorf("umptcp: MultipathTCP %v, Info.MPTCP %v, fallback %q; want MPTCP", or.mptcp, or.info.MPTCP, or.info.FallbackReason)
	}
	if or.info.Token == 0 || or.info.RemoteToken == 0 {
		t.Errorf("umptcp: tokens %08x/%08x", or.info.Token, or.info.RemoteToken)
	}
	if !kr.MPTCP || kr.Info == nil {
		t.Errorf("kernel: MPTCP %v, MPTCP_INFO %+v; want MPTCP", kr.MPTCP, kr.Info)
	} else {
		if kr.Info.Fallback {
			t.Errorf("kernel: MPTCP_INFO says fallback")
		}
		if kr.Info.Token != or.info.RemoteToken {
			t.Errorf("kernel token %08x, umptcp's view of it %08x", kr.Info.Token, or.info.RemoteToken)
		}
	}
	checkSSUp(t, s, or)
	kh, oh := handshakeCounters(s.role)
	base := zeros(zeroAlways, zeroNoFallback, zeroOrderly)
	if s.env.lossy {
		// A lost SYN, SYN/ACK or third ACK is sent again and counted again.
		expectAtLeast(t, "kernel", res.peer, kh)
		expectAtLeast(t, "umptcp", res.ours, oh)
		kh, oh = nil, nil
	}
	expect(t, "kernel", res.peer, base.with(kh))
	expect(t, "umptcp", res.ours, base.with(oh))
}

// expectAtLeast checks that the counters want has as 1 or more are at
// least that, and the ones it has as 0 are 0.
func expectAtLeast(t *testing.T, who string, got map[string]uint64, want counters) {
	t.Helper()
	for name, v := range want {
		g := got["MPTcpExt"+name]
		if (v == 0 && g != 0) || g < v {
			t.Errorf("%s: MPTcpExt%s = %d, want %s", who, name, g, map[bool]string{true: "0", false: fmt.Sprintf("at least %d", v)}[v == 0])
		}
	}
}

// checkSSUp checks that `ss -Mni` showed the connection as MPTCP, with the
// kernel's token, while it was up.
func checkSSUp(t *testing.T, s *session, or oursResult) {
	t.Helper()
	tok, ok := ssShowsMPTCP(s.ssUp, s.kerAddr, s.remoteOfKernel())
	if !ok {
		t.Errorf("kernel: ss -Mni does not show %v-%v as an MPTCP connection with a token:\n%s", s.kerAddr, s.remoteOfKernel(), s.ssUp)
		return
	}
	if want := fmt.Sprintf("%x", or.info.RemoteToken); tok != want {
		t.Errorf("kernel: ss -Mni token %s, umptcp's view of the kernel's token %s", tok, want)
	}
}
