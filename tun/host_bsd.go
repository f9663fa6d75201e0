//go:build darwin || freebsd || openbsd

package tun

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// configureHost runs ifconfig(8) and route(8). UNTESTED: written from the macOS, FreeBSD
// and OpenBSD manual pages; only Linux can be tested in this project's CI.
//
// TUN interfaces on these systems are point-to-point: an IPv4 address needs a destination
// (the userspace stack's address). Without Address.Peer the host address itself is used,
// and the subnet is routed into the interface explicitly.
func configureHost(d *Device, h HostConfig) error {
	if h.MTU != 0 {
		if err := d.setMTU(h.MTU); err != nil {
			return err
		}
	}
	var routes []netip.Prefix
	for _, a := range h.Addresses {
		addr := a.Prefix.Addr()
		var args []string
		if addr.Is4() {
			peer := a.Peer
			if !peer.IsValid() {
				peer = addr
			}
			mask := net.IP(net.CIDRMask(a.Prefix.Bits(), 32)).String()
			args = []string{d.name, "inet", addr.String(), peer.String(), "netmask", mask, "alias"}
			routes = append(routes, a.Prefix.Masked())
		} else {
			args = []string{d.name, "inet6", addr.String(), "prefixlen", strconv.Itoa(a.Prefix.Bits()), "alias"}
			if a.Peer.IsValid() {
				routes = append(routes, netip.PrefixFrom(a.Peer, 128))
			}
		}
		if err := run("ifconfig", args...); err != nil {
			return err
		}
	}
	if err := run("ifconfig", d.name, "up"); err != nil {
		return err
	}
	for _, r := range append(routes, h.Routes...) {
		fam := "-inet"
		if r.Addr().Is6() {
			fam = "-inet6"
		}
		if err := run("route", "-n", "add", fam, "-net", r.Masked().String(), "-interface", d.name); err != nil {
			// An existing route for the subnet (added by ifconfig) is fine.
			if !strings.Contains(err.Error(), "exists") {
				return err
			}
		}
	}
	return nil
}

func (d *Device) setMTU(mtu int) error {
	return run("ifconfig", d.name, "mtu", strconv.Itoa(mtu))
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
