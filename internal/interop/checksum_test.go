//go:build linux

package interop

import (
	"testing"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/internal/kernelpeer"
	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/stack"
)

// checksumData is what each end sends in the checksum cases. The captures
// hold whole packets so that every DSS checksum can be verified, and their
// ring (see startCapture) holds about 8000 packets: 8 MiB each way is at
// most about 5000 packets even when no segment is a GSO one, so tcpdump
// loses nothing however late it reads. (Not rate-limited: tbf cuts the GSO
// super-packets into MTU-sized ones, ten times as many packets.)
const checksumData = 8 << 20

// limitRate returns a setup that limits both veths to rate (tbf).
func limitRate(rate string) func(t *testing.T, tp *Topology) {
	return func(t *testing.T, tp *Topology) {
		tbf(t, tp.Peer, PeerVeth, rate)
		tbf(t, tp.Ours, OursVeth, rate)
	}
}

// TestChecksum is case 2: DSS checksums (RFC 8684 §3.3.1) asked for by the
// kernel (net.mptcp.checksum_enabled=1, umptcp by default) and by umptcp
// (Config.Checksum, the kernel by default), in both roles. Either side's
// flag A is enough: both ends use checksums (Info().Checksum, the kernel's
// MPTCP_INFO), data arrives intact, neither counts DataCsumErr, and the
// capture verifies the DSS checksums of both directions.
func TestChecksum(t *testing.T) {
	cases := []struct {
		name string
		env  env
		// kernelAsks: the kernel sets flag A (else umptcp does).
		kernelAsks bool
	}{
		{name: "kernel-asks", kernelAsks: true,
			env: env{peerSysctls: []string{"net.mptcp.checksum_enabled=1"}, snaplen: -1}},
		{name: "umptcp-asks", env: env{stack: stack.Config{Checksum: true}, snaplen: -1}},
		// The TUN endpoint without offloads: umptcp cuts its segments
		// itself (software GSO), each repeating its mapping and checksum.
		{name: "umptcp-asks-generic-path", env: env{stack: stack.Config{Checksum: true}, snaplen: -1, noOffload: true}},
	}
	for _, tc := range cases {
		eachVariant(t, tc.name, func(t *testing.T, v6 bool, r role) {
			e := tc.env
			e.v6 = v6
			s := open(t, r, e)
			or, kr := s.transfer(checksumData, checksumData, kernelpeer.Config{})
			res := s.finish(captureWant{handshake: true, csumChecked: true})
			checkIntegrity(t, checksumData, checksumData, or, kr)
			checkMPTCP(t, s, or, kr, res)
			if !or.info.Checksum {
				t.Errorf("umptcp: Info().Checksum false")
			}
			if kr.Info != nil && !kr.Info.ChecksumEnabled {
				t.Errorf("kernel: MPTCP_INFO says checksums are off")
			}
			checkFlagA(t, s, tc.kernelAsks)
			// Both directions were verified, not only one.
			csums := s.caps[0].find(t, func(_ *decode.Packet, o *options.Option) bool {
				return o.Subtype == options.SubtypeDSS && o.DSS().HasChecksum
			})
			from := map[bool]int{}
			for _, c := range csums {
				from[c.src == s.kerAddr]++
			}
			if from[true] == 0 || from[false] == 0 {
				t.Errorf("capture: DSS checksums from the kernel %d, from umptcp %d; want both", from[true], from[false])
			}
			t.Logf("capture: %d DSS checksums verified, %d skipped", res.captures[0].Checks[decode.CheckDSSChecksum].OK,
				res.captures[0].Checks[decode.CheckDSSChecksum].Skipped)
		})
	}
}

// checkFlagA checks that the side that asks for checksums sets flag A in
// its MP_CAPABLE on the SYN or SYN/ACK (the other side may echo it).
func checkFlagA(t *testing.T, s *session, kernelAsks bool) {
	t.Helper()
	mpc := s.caps[0].find(t, func(p *decode.Packet, o *options.Option) bool {
		return o.Subtype == options.SubtypeMPCapable && p.Flags&decode.FlagSYN != 0
	})
	if len(mpc) == 0 {
		t.Errorf("capture: no MP_CAPABLE on SYN or SYN/ACK")
	}
	for _, m := range mpc {
		kernel := m.src == s.kerAddr
		a := m.opt.MPCapable().ChecksumRequired()
		if kernel == kernelAsks && !a {
			t.Errorf("capture: frame %d from %v: MP_CAPABLE without flag A", m.frame, m.src)
		}
		t.Logf("capture: frame %d: MP_CAPABLE from %v, flag A %v", m.frame, m.src, a)
	}
}
