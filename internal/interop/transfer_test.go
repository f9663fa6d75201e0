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
