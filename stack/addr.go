package stack

import (
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

func toTCPIP(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func fromTCPIP(a tcpip.Address) netip.Addr {
	switch a.Len() {
	case 4:
		return netip.AddrFrom4(a.As4())
	case 16:
		return netip.AddrFrom16(a.As16())
	}
	return netip.Addr{}
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{Addr: toTCPIP(ap.Addr()), Port: ap.Port()}
}

func tcpAddr(ap netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(ap) }

func fromFull(f tcpip.FullAddress) netip.AddrPort {
	return netip.AddrPortFrom(fromTCPIP(f.Addr), f.Port)
}

// flowKey names a subflow by its 4-tuple from our side. Addresses are kept
// in 16-byte form (IPv4 mapped) so that lookups on the packet path hash a
// fixed-size value and never allocate.
type flowKey struct {
	local, remote [16]byte
	lport, rport  uint16
}

func addr16(b []byte) (a [16]byte) {
	if len(b) == 4 {
		a[10], a[11] = 0xff, 0xff
		copy(a[12:], b)
		return a
	}
	copy(a[:], b)
	return a
}

func keyOf(local, remote netip.AddrPort) flowKey {
	return flowKey{local: local.Addr().As16(), remote: remote.Addr().As16(), lport: local.Port(), rport: remote.Port()}
}
