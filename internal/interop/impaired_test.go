//go:build linux

package interop

import (
	"testing"

	"github.com/umptcp/umptcp/internal/kernelpeer"
	"github.com/umptcp/umptcp/internal/netns"
)

// impairedData is what each end sends over an impaired path.
const impairedData = 16 << 20

// TestImpairedPath is case 6: random loss in the middlebox (2% of the
// packets it forwards, both ways, all but SYNs) and a rate limit (tbf,
// 100 Mbit/s each way, on ours' and the kernel's veths), in both roles.
// Data arrives intact, the connection stays MPTCP with no fallback and no
// mapping or checksum error on either side, and the captures verify.
func TestImpairedPath(t *testing.T) {
	cases := []struct {
		name string
		env  env
	}{
		{name: "loss-2pct", env: env{middlebox: true, lossy: true, setup: func(t *testing.T, tp *Topology) {
			// Not SYNs: after two lost MP_CAPABLE SYNs Linux retries without
			// MPTCP (net.mptcp.syn_retrans_before_tcp_fallback), and the case
			// would be a fallback one. SYN/ACKs and third ACKs can be lost.
			midRule(t, tp, "-A", "FORWARD", "-p", "tcp", "!", "--syn", "-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP")
		}}},
		{name: "rate-100mbit", env: env{setup: limitRate("100mbit")}},
	}
	for _, tc := range cases {
		eachVariant(t, tc.name, func(t *testing.T, v6 bool, r role) {
			e := tc.env
			e.v6 = v6
			s := open(t, r, e)
			or, kr := s.transfer(impairedData, impairedData, kernelpeer.Config{})
			res := s.finish(captureWant{handshake: true})
			checkIntegrity(t, impairedData, impairedData, or, kr)
			checkMPTCP(t, s, or, kr, res)
			for _, sf := range or.info.Subflows {
				t.Logf("umptcp subflow: %d bytes sent, %d retransmitted, rtt %v", sf.BytesSent, sf.BytesRetrans, sf.RTT)
			}
		})
	}
}

// tbf limits what dev in ns sends to rate.
func tbf(t *testing.T, ns *netns.NS, dev, rate string) {
	t.Helper()
	if _, err := ns.Run("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms"); err != nil {
		t.Fatal(err)
	}
}
