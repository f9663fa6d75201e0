//go:build linux

package interop

import (
	"testing"

	"github.com/umptcp/umptcp/internal/kernelpeer"
)

// bulk is the size of the transfers of cases 1 and 7, each way.
const bulk = 200 << 20

// TestTransfer is cases 1 and 7: an MPTCP v1 handshake and 200 MB each way,
// IPv4 and IPv6, in both roles. Data arrives intact both ways; the kernel
// counts the handshake on its side and no fallback, no DSS mismatch and no
// checksum error; `ss -Mni` shows the connection as MPTCP with the token
// umptcp learnt; the capture passes decode and tshark.
func TestTransfer(t *testing.T) {
	eachVariant(t, "bulk", func(t *testing.T, v6 bool, r role) {
		s := open(t, r, env{v6: v6})
		or, kr := s.transfer(bulk, bulk, kernelpeer.Config{})
		res := s.finish(captureWant{handshake: true})
		checkIntegrity(t, bulk, bulk, or, kr)
		checkMPTCP(t, s, or, kr, res)
	})
}

// TestTransferSoftwareGSO is TestTransfer over the TUN endpoint's generic
// path (no offloads, as on macOS and the BSDs): the stack cuts gVisor's
// super-segments itself, each cut segment repeating the super-segment's
// DSS mapping as Linux's TSO segments do, and the kernel must take them.
func TestTransferSoftwareGSO(t *testing.T) {
	const size = 64 << 20
	eachVariant(t, "generic-path", func(t *testing.T, v6 bool, r role) {
		s := open(t, r, env{v6: v6, noOffload: true})
		before := s.tp.Stack.Counters().UmptcpGSOSuperSegments.Load()
		or, kr := s.transfer(size, size, kernelpeer.Config{})
		res := s.finish(captureWant{handshake: true})
		checkIntegrity(t, size, size, or, kr)
		checkMPTCP(t, s, or, kr, res)
		if n := s.tp.Stack.Counters().UmptcpGSOSuperSegments.Load() - before; n == 0 {
			t.Error("no super-segment was cut: the software GSO path was not taken")
		} else {
			t.Logf("%d super-segments cut", n)
		}
	})
}
