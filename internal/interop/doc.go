//go:build linux

// Package interop builds the namespaces in which umptcp meets the Linux
// kernel's MPTCP, and holds the kernel interop suite:
//
//	ns "ours"                                    [ns "mid"]              ns "peer"
//	  umptcp stack 10.61.2.2, fd61:2::2            (iptables middlebox)    kernel MPTCP
//	      │ TUN (host side 10.61.2.1, fd61:2::1)                          10.61.1.2
//	  kernel, forwarding ── veth 10.61.1.1 ══════════════════════════ veth fd61:1::2
//
// With a middlebox the veth from "ours" ends in "mid" (10.61.3.0/24), which
// forwards to "peer" over a second veth (10.61.1.0/24).
//
// # The suite
//
//	go test ./internal/interop/            # as root; 70-100 s on 2 cores
//	UMPTCP_INTEROP_PCAPS=DIR go test ...   # keep every capture in DIR
//
// Every case runs in a fresh topology, IPv4 and IPv6, in both roles (umptcp
// dials the kernel's listener; the kernel dials umptcp's). Around each
// connection the suite captures (tcpdump on the kernel's veth, and on the
// middlebox's veth towards umptcp) and verifies the captures with
// decode.Analyze and Wireshark's dissector (tshark, MPTCP analysis on);
// records the kernel's MIB (nstat -az 'MPTcpExt*') and umptcp's Counters
// before and after; reads `ss -Mni` while the connection is up; and waits,
// bounded, until neither side holds the connection any more.
//
//	TestTransfer      MPTCP v1 handshake and 200 MiB each way (cases 1, 7)
//	TestChecksum      DSS checksums asked for by either side (case 2)
//	TestClose         orderly close in every order, half-close (case 3)
//	TestFastClose     MP_FASTCLOSE both ways: unread data, linger 0 (case 4)
//	TestFallback      options stripped by a middlebox, kernel without MPTCP (case 5)
//	TestImpairedPath  2% loss, 100 Mbit/s (case 6)
//	TestCaptureChecksCatch  the capture checks fail on a malformed option
//
// Without root, namespaces or the tools
// (tcpdump, tshark, iptables, tc, nstat, ss) the suite skips; with CI=true
// it fails instead.
package interop
