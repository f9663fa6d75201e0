//go:build linux

package main

import (
	"fmt"
	"net/netip"

	"github.com/umptcp/umptcp/internal/netns"
	"github.com/umptcp/umptcp/tun"
)

// The topology, all in namespaces this program creates and deletes:
//
//	ns "ours"                                       ns "peer"
//	  userspace stack 198.18.2.2                      kernel server 198.18.1.2
//	      │ TUN umptb0 (host side 198.18.2.1/24)          │
//	  kernel, forwarding ── veth va 198.18.1.1/24 ═══ veth vb 198.18.1.2/24
//
// Kernel rows run their client socket in "ours" (198.18.1.1) and so cross the same veth.
// Userspace rows cross the TUN device and then the veth, forwarded by the kernel of "ours",
// as umptcp does when it serves a host.
var (
	vethOurs  = netip.MustParsePrefix("198.18.1.1/24")
	vethPeer  = netip.MustParsePrefix("198.18.1.2/24")
	tunHost   = netip.MustParsePrefix("198.18.2.1/24")
	tunStack  = netip.MustParsePrefix("198.18.2.2/24")
	tunSubnet = netip.MustParsePrefix("198.18.2.0/24")
)

const tunName = "umptb0"

type topology struct {
	ours, peer *netns.NS
}

func newTopology() (*topology, error) {
	t := &topology{}
	var err error
	if t.ours, err = netns.Create("tb-ours"); err != nil {
		return nil, err
	}
	if t.peer, err = netns.Create("tb-peer"); err != nil {
		t.close()
		return nil, err
	}
	steps := []func() error{
		func() error {
			return netns.Veth(netns.VethEnd{NS: t.ours, Dev: "va", Addrs: []netip.Prefix{vethOurs}},
				netns.VethEnd{NS: t.peer, Dev: "vb", Addrs: []netip.Prefix{vethPeer}})
		},
		func() error { return t.ours.Sysctl("net.ipv4.ip_forward", "1") },
		func() error { return t.peer.AddRoute(tunSubnet, vethOurs.Addr(), "vb") },
		func() error { return t.ours.Sysctl("net.mptcp.enabled", "1") },
		func() error { return t.peer.Sysctl("net.mptcp.enabled", "1") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.close()
			return nil, fmt.Errorf("topology: %w", err)
		}
	}
	return t, nil
}

// openTUN creates the TUN device in "ours" and configures its host side. The caller
// builds an endpoint on it; closing the endpoint removes the device.
func (t *topology) openTUN(driver tun.Driver) (*tun.Device, error) {
	var dev *tun.Device
	err := t.ours.Do(func() error {
		var err error
		dev, err = tun.Open(tun.Config{Name: tunName, Driver: driver, MTU: 1500})
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := dev.ConfigureHost(tun.HostConfig{Addresses: []tun.Address{{Prefix: tunHost, Peer: tunStack.Addr()}}}); err != nil {
		dev.Close()
		return nil, err
	}
	return dev, nil
}

func (t *topology) close() {
	for _, ns := range []*netns.NS{t.ours, t.peer} {
		if ns != nil {
			ns.Close()
		}
	}
}
