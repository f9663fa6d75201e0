package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/stack"
	"github.com/umptcp/umptcp/tun"
)

// errAddrInUse is the kind of error for an address the host already has.
var errAddrInUse = errors.New("address in use")

// tunNet is a umptcp stack on one TUN device, what "connect" and "listen"
// run on. Ownership: the stack owns the link endpoints (the pcap tap, if
// any, and the TUN endpoint under it), and the TUN endpoint owns the device,
// so closing the stack closes and waits for all of them.
type tunNet struct {
	name string // the device's name, as the OS gave it
	st   *stack.Stack
	tap  *pcapTap // nil without --pcap
}

// openTunNet checks that the addresses are free, opens the device,
// configures its host side (or prints how to, with --no-host-config) and
// starts a stack on it. pcapW, if not nil, receives the capture.
func openTunNet(o *ncOptions, goos string, pcapW io.Writer, con *console) (*tunNet, error) {
	ifs, err := hostInterfaces()
	if err != nil {
		return nil, fmt.Errorf("listing the host's interfaces: %w", err)
	}
	hostHasAddr, err := checkAddrsFree(ifs, o.tun.name, o.tun.prefix.Addr(), o.host)
	if err != nil {
		return nil, err
	}
	dev, err := tun.Open(tun.Config{Name: o.tun.name, Driver: o.driver, MTU: o.mtu})
	if err != nil {
		return nil, err
	}
	name := dev.Name()
	hostAddr := hostAddress(o.tun.prefix, o.host)
	if o.noHostConfig {
		con.printf("umptcp %s: --no-host-config: configure the host side of %s yourself, e.g.:\n", o.cmd, name)
		for _, c := range hostCommands(goos, name, o.tun.prefix, o.host, o.mtu) {
			con.printf("  %s\n", c)
		}
	} else {
		h := tun.HostConfig{Addresses: []tun.Address{hostAddr}}
		if hostHasAddr {
			h.Addresses = nil // a persistent device configured before
		}
		if err := dev.ConfigureHost(h); err != nil {
			dev.Close()
			if errors.Is(err, tun.ErrNotSupported) {
				return nil, fmt.Errorf("%w: run with --no-host-config, which prints the commands to run instead", err)
			}
			return nil, err
		}
	}
	ep, err := tun.NewEndpoint(dev, tun.EndpointOptions{})
	if err != nil {
		dev.Close()
		return nil, err
	}
	var link gstack.LinkEndpoint = ep
	n := &tunNet{name: name}
	if pcapW != nil {
		if n.tap, err = newPcapTap(ep, pcapW); err != nil {
			ep.Close()
			ep.Wait()
			return nil, fmt.Errorf("--pcap: %w", err)
		}
		link = n.tap
	}
	n.st, err = stack.New(stack.Config{
		Links: []stack.Link{{
			Name:     name,
			Endpoint: link,
			Addrs:    []netip.Prefix{o.tun.prefix},
			Default:  true,
			// A TUN write runs the host's receive path: let a queue's
			// goroutine do it, not TCP holding its endpoint lock.
			TxQueueLen: stack.DefaultTxQueueLen,
		}},
		Checksum: o.checksum,
	})
	if err != nil {
		link.Close()
		link.Wait()
		return nil, err
	}
	return n, nil
}

// close closes the stack, which closes the device and waits for every
// goroutine of the stack and the device, then flushes the capture.
func (n *tunNet) close() error {
	n.st.Close()
	if n.tap != nil {
		if err := n.tap.flush(); err != nil {
			return fmt.Errorf("--pcap: %w", err)
		}
	}
	return nil
}

// hostAddress is the host side's address on the device: a point-to-point
// address whose peer is the stack (macOS and the BSDs need the peer), in
// the stack's prefix when the host address is in it.
func hostAddress(p netip.Prefix, host netip.Addr) tun.Address {
	if p.Contains(host) {
		return tun.Address{Prefix: netip.PrefixFrom(host, p.Bits()), Peer: p.Addr()}
	}
	return tun.Address{Prefix: netip.PrefixFrom(host, host.BitLen()), Peer: p.Addr()}
}

// ifAddrs is one host interface and its addresses.
type ifAddrs struct {
	name  string
	addrs []netip.Addr
}

// hostInterfaces lists the interfaces of the host (of this network
// namespace, on Linux).
func hostInterfaces() ([]ifAddrs, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []ifAddrs
	for _, ifi := range ifs {
		as, err := ifi.Addrs()
		if err != nil {
			continue // gone meanwhile
		}
		ia := ifAddrs{name: ifi.Name}
		for _, a := range as {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					ia.addrs = append(ia.addrs, ip.Unmap())
				}
			}
		}
		out = append(out, ia)
	}
	return out, nil
}

// checkAddrsFree checks that the host does not have the stack's address
// (its packets would stay in the host and never reach the stack) and that
// the host address is not another interface's. It reports whether the
// device dev itself has the host address already (a persistent device
// configured before), so that it is not added twice.
func checkAddrsFree(ifs []ifAddrs, dev string, stackAddr, host netip.Addr) (hostHasAddr bool, err error) {
	for _, ifi := range ifs {
		for _, a := range ifi.addrs {
			switch {
			case a == stackAddr:
				return false, fmt.Errorf("%w: %s, the stack's address (--tun), is already an address of this host (interface %s): the stack needs an address of its own", errAddrInUse, a, ifi.name)
			case a == host && dev != "" && ifi.name == dev:
				hostHasAddr = true
			case a == host:
				return false, fmt.Errorf("%w: %s, the host side's address on the device, already belongs to interface %s; choose another with --host-addr or another prefix in --tun", errAddrInUse, a, ifi.name)
			}
		}
	}
	return hostHasAddr, nil
}

// hostCommands returns the shell commands that configure the host side of
// device dev on goos the way ConfigureHost does (go doc
// github.com/umptcp/umptcp/tun): address, MTU, up, and a route to the
// stack's prefix. Only the Linux commands are tested here; the others
// follow the manual pages of ifconfig(8), route(8) and netsh.
func hostCommands(goos, dev string, p netip.Prefix, host netip.Addr, mtu int) []string {
	stackAddr := p.Addr()
	in := p.Contains(host)
	bits := p.Bits()
	if !in {
		bits = host.BitLen()
	}
	mtuS := strconv.Itoa(mtu)
	v6 := stackAddr.Is6()
	mask := net.IP(net.CIDRMask(bits, 32)).String()
	switch goos {
	case "linux":
		addr := fmt.Sprintf("ip addr add %s/%d dev %s", host, bits, dev)
		if !in {
			addr = fmt.Sprintf("ip addr add %s peer %s dev %s", host, stackAddr, dev)
		}
		if v6 {
			addr += " nodad"
		}
		return []string{"ip link set dev " + dev + " mtu " + mtuS + " up", addr}
	case "darwin", "freebsd":
		if v6 {
			return []string{
				fmt.Sprintf("ifconfig %s inet6 %s prefixlen %d mtu %s up", dev, host, bits, mtuS),
				fmt.Sprintf("route -n add -inet6 -net %s -interface %s", p.Masked(), dev),
			}
		}
		return []string{
			fmt.Sprintf("ifconfig %s inet %s %s netmask %s mtu %s up", dev, host, stackAddr, mask, mtuS),
			fmt.Sprintf("route -n add -inet -net %s -interface %s", p.Masked(), dev),
		}
	case "openbsd":
		if v6 {
			return []string{
				fmt.Sprintf("ifconfig %s inet6 %s prefixlen %d mtu %s up", dev, host, bits, mtuS),
				fmt.Sprintf("route -n add -inet6 %s %s", p.Masked(), stackAddr),
			}
		}
		return []string{
			fmt.Sprintf("ifconfig %s inet %s %s netmask %s mtu %s up", dev, host, stackAddr, mask, mtuS),
			fmt.Sprintf("route -n add -inet %s %s", p.Masked(), stackAddr),
		}
	case "windows":
		if v6 {
			return []string{
				fmt.Sprintf(`netsh interface ipv6 add address "%s" %s/%d`, dev, host, bits),
				fmt.Sprintf(`netsh interface ipv6 set subinterface "%s" mtu=%s store=active`, dev, mtuS),
			}
		}
		return []string{
			fmt.Sprintf(`netsh interface ipv4 set address name="%s" static %s %s`, dev, host, mask),
			fmt.Sprintf(`netsh interface ipv4 set subinterface "%s" mtu=%s store=active`, dev, mtuS),
		}
	}
	return []string{fmt.Sprintf("(no commands known for %s: give %s the address %s/%d, MTU %d, bring it up, route %s to it)",
		goos, dev, host, bits, mtu, p.Masked())}
}
