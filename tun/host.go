package tun

import (
	"errors"
	"net/netip"
)

// Address is one address of the host side of the tunnel.
type Address struct {
	// Prefix is the host's own address and the prefix length of the subnet reached
	// through the device, e.g. 198.18.0.1/24.
	Prefix netip.Prefix
	// Peer, if valid, is the address of the other end of a point-to-point link (the
	// userspace stack). macOS utun interfaces need it for IPv4; elsewhere it is optional.
	Peer netip.Addr
}

// HostConfig is the host-side configuration of a TUN interface.
type HostConfig struct {
	// Addresses to add. IPv6 addresses are added without duplicate address detection
	// (Linux: IFA_F_NODAD) so they are usable at once.
	Addresses []Address
	// MTU, if non-zero, changes the interface MTU.
	MTU int
	// Routes are prefixes the host sends into the device, besides the subnets of
	// Addresses, which the OS routes there already.
	Routes []netip.Prefix
}

func (h *HostConfig) validate() error {
	for _, a := range h.Addresses {
		if !a.Prefix.IsValid() {
			return errors.New("invalid address prefix")
		}
		if a.Peer.IsValid() && a.Peer.Is4() != a.Prefix.Addr().Is4() {
			return errors.New("peer and address are of different IP versions")
		}
	}
	for _, r := range h.Routes {
		if !r.IsValid() {
			return errors.New("invalid route prefix")
		}
	}
	if h.MTU < 0 || h.MTU > 65535 {
		return errors.New("MTU out of range")
	}
	return nil
}

// ConfigureHost assigns addresses, sets the MTU, brings the interface up and adds routes,
// on the host side of the device. On Linux it speaks rtnetlink in the network namespace
// the device was opened in; on macOS, FreeBSD and OpenBSD it runs ifconfig(8) and route(8)
// (untested here: only Linux is tested). Windows returns ErrNotSupported.
func (d *Device) ConfigureHost(h HostConfig) error {
	if err := h.validate(); err != nil {
		return &Error{Op: "configure", Name: d.name, Err: err}
	}
	select {
	case <-d.closed:
		return &Error{Op: "configure", Name: d.name, Kind: ErrClosed}
	default:
	}
	if err := configureHost(d, h); err != nil {
		return classify("configure", d.name, err)
	}
	if h.MTU != 0 {
		d.mtu = h.MTU
	}
	return nil
}
