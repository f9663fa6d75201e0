//go:build linux

package interop

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/umptcp/umptcp/internal/netns"
	"github.com/umptcp/umptcp/stack"
	"github.com/umptcp/umptcp/tun"
)

// Addresses of the topology.
var (
	StackAddr4 = netip.MustParsePrefix("10.61.2.2/24")
	StackAddr6 = netip.MustParsePrefix("fd61:2::2/64")
	tunHost4   = netip.MustParsePrefix("10.61.2.1/24")
	tunHost6   = netip.MustParsePrefix("fd61:2::1/64")
	PeerAddr4  = netip.MustParsePrefix("10.61.1.2/24")
	PeerAddr6  = netip.MustParsePrefix("fd61:1::2/64")
	oursVeth4  = netip.MustParsePrefix("10.61.1.1/24")
	oursVeth6  = netip.MustParsePrefix("fd61:1::1/64")
	// With a middlebox: ours—mid on 10.61.3.0/24, mid—peer on 10.61.1.0/24.
	oursMid4 = netip.MustParsePrefix("10.61.3.1/24")
	oursMid6 = netip.MustParsePrefix("fd61:3::1/64")
	midOurs4 = netip.MustParsePrefix("10.61.3.2/24")
	midOurs6 = netip.MustParsePrefix("fd61:3::2/64")
	midPeer4 = netip.MustParsePrefix("10.61.1.1/24")
	midPeer6 = netip.MustParsePrefix("fd61:1::1/64")
)

// Options shape a topology.
type Options struct {
	// Middlebox puts a forwarding namespace between ours and peer.
	Middlebox bool
	// Stack configures the umptcp stack; Links is filled in.
	Stack stack.Config
	// MTU of the TUN device and the veths (default 1500).
	MTU int
	// Driver selects the TUN backend.
	Driver tun.Driver
	// DisableOffload puts the TUN endpoint on its generic path (no GSO,
	// full checksums): the stack then segments TCP itself (software GSO).
	DisableOffload bool
}

// Topology is a running setup. Everything is removed by the test's cleanup.
type Topology struct {
	Ours, Mid, Peer *netns.NS
	Endpoint        *tun.Endpoint
	Stack           *stack.Stack
	// PeerVeth is the peer's interface name, for captures.
	PeerVeth string
}

// Interface names, for captures and qdiscs.
const (
	TUNDev      = "umpt0" // the umptcp stack's TUN device, in ours
	OursVeth    = "vo"    // ours' veth, towards peer or mid
	PeerVeth    = "vp"    // peer's veth
	MidOursVeth = "vmo"   // mid's veth towards ours
	MidPeerVeth = "vmp"   // mid's veth towards peer
)

// New builds the topology and a umptcp stack on its TUN device.
func New(t testing.TB, o Options) *Topology {
	t.Helper()
	netns.Require(t)
	if o.MTU == 0 {
		o.MTU = 1500
	}
	tp := &Topology{Ours: netns.New(t, "ours"), Peer: netns.New(t, "peer"), PeerVeth: PeerVeth}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("interop topology: %v", err)
		}
	}
	for _, ns := range []*netns.NS{tp.Ours, tp.Peer} {
		must(ns.Sysctl("net.mptcp.enabled", "1"))
		must(noDAD(ns))
	}
	must(tp.Ours.Sysctl("net.ipv4.ip_forward", "1"))
	must(tp.Ours.Sysctl("net.ipv6.conf.all.forwarding", "1"))
	if !o.Middlebox {
		must(netns.Veth(netns.VethEnd{NS: tp.Ours, Dev: OursVeth, Addrs: []netip.Prefix{oursVeth4, oursVeth6}},
			netns.VethEnd{NS: tp.Peer, Dev: PeerVeth, Addrs: []netip.Prefix{PeerAddr4, PeerAddr6}}))
		must(tp.Peer.AddRoute(StackAddr4.Masked(), oursVeth4.Addr(), PeerVeth))
		must(tp.Peer.AddRoute(StackAddr6.Masked(), oursVeth6.Addr(), PeerVeth))
	} else {
		tp.Mid = netns.New(t, "mid")
		must(noDAD(tp.Mid))
		must(tp.Mid.Sysctl("net.ipv4.ip_forward", "1"))
		must(tp.Mid.Sysctl("net.ipv6.conf.all.forwarding", "1"))
		must(netns.Veth(netns.VethEnd{NS: tp.Ours, Dev: OursVeth, Addrs: []netip.Prefix{oursMid4, oursMid6}},
			netns.VethEnd{NS: tp.Mid, Dev: MidOursVeth, Addrs: []netip.Prefix{midOurs4, midOurs6}}))
		must(netns.Veth(netns.VethEnd{NS: tp.Mid, Dev: MidPeerVeth, Addrs: []netip.Prefix{midPeer4, midPeer6}},
			netns.VethEnd{NS: tp.Peer, Dev: PeerVeth, Addrs: []netip.Prefix{PeerAddr4, PeerAddr6}}))
		must(tp.Ours.AddRoute(PeerAddr4.Masked(), midOurs4.Addr(), OursVeth))
		must(tp.Ours.AddRoute(PeerAddr6.Masked(), midOurs6.Addr(), OursVeth))
		must(tp.Mid.AddRoute(StackAddr4.Masked(), oursMid4.Addr(), MidOursVeth))
		must(tp.Mid.AddRoute(StackAddr6.Masked(), oursMid6.Addr(), MidOursVeth))
		must(tp.Peer.AddRoute(StackAddr4.Masked(), midPeer4.Addr(), PeerVeth))
		must(tp.Peer.AddRoute(StackAddr6.Masked(), midPeer6.Addr(), PeerVeth))
	}

	var dev *tun.Device
	must(tp.Ours.Do(func() error {
		var err error
		dev, err = tun.Open(tun.Config{Name: TUNDev, Driver: o.Driver, MTU: o.MTU})
		return err
	}))
	if err := dev.ConfigureHost(tun.HostConfig{Addresses: []tun.Address{
		{Prefix: tunHost4, Peer: StackAddr4.Addr()}, {Prefix: tunHost6, Peer: StackAddr6.Addr()},
	}}); err != nil {
		dev.Close()
		t.Fatalf("interop topology: %v", err)
	}
	ep, err := tun.NewEndpoint(dev, tun.EndpointOptions{DisableOffload: o.DisableOffload})
	if err != nil {
		dev.Close()
		t.Fatalf("interop topology: %v", err)
	}
	tp.Endpoint = ep
	cfg := o.Stack
	// As cmd/umptcp configures a TUN link: with a transmit queue.
	cfg.Links = []stack.Link{{Name: TUNDev, Endpoint: ep, Addrs: []netip.Prefix{StackAddr4, StackAddr6}, Default: true,
		TxQueueLen: stack.DefaultTxQueueLen}}
	s, err := stack.New(cfg)
	if err != nil {
		ep.Close()
		t.Fatalf("interop topology: %v", err)
	}
	tp.Stack = s
	t.Cleanup(func() { s.Close() })
	must(tp.waitRoutes())
	return tp
}

// noDAD turns off duplicate address detection for the interfaces a
// namespace gets from now on. Until DAD of its link-local address is over,
// an interface sends no neighbour solicitation for a forwarded packet
// (ndisc_send_ns needs a non-tentative link-local source), so the first
// IPv6 SYN through ours was lost and a handshake took a SYN retransmission.
func noDAD(ns *netns.NS) error {
	for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		if err := ns.Sysctl(k, "0"); err != nil {
			return err
		}
	}
	return nil
}

// waitRoutes returns once the kernels route both ways between ours and peer,
// in both families: a plain TCP connection from ours to peer and one from
// peer to the TUN's host address (routed back through ours, and mid) get
// through. A fresh veth drops what it is given until the kernel's link
// watcher activates its queue, up to a second after it came up.
func (tp *Topology) waitRoutes() error {
	for _, v6 := range []bool{false, true} {
		host := tunHost4.Addr()
		if v6 {
			host = tunHost6.Addr()
		}
		// From the TUN's host address, which the peer routes back (it has
		// no route to the ours—mid link).
		if err := tcpReach(tp.Peer, tp.Ours, host, PeerAddr(v6)); err != nil {
			return err
		}
		if err := tcpReach(tp.Ours, tp.Peer, PeerAddr(v6), host); err != nil {
			return err
		}
	}
	return nil
}

// tcpReach listens on addr in srv and dials it from local in cli until a
// connection gets through, for at most readyLimit.
func tcpReach(srv, cli *netns.NS, local, addr netip.Addr) error {
	var ln net.Listener
	if err := srv.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	end := time.Now().Add(readyLimit)
	return cli.Do(func() error {
		for {
			d := net.Dialer{Timeout: 100 * time.Millisecond, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err == nil {
				c.Close()
				return nil
			}
			if time.Now().After(end) {
				return fmt.Errorf("%s cannot reach %s from %s: %v", srv.Name, ln.Addr(), cli.Name, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// readyLimit bounds waitRoutes.
const readyLimit = 10 * time.Second

// PeerAddr returns the kernel peer's address of the family.
func PeerAddr(v6 bool) netip.Addr {
	if v6 {
		return PeerAddr6.Addr()
	}
	return PeerAddr4.Addr()
}

// StackAddr returns umptcp's address of the family.
func StackAddr(v6 bool) netip.Addr {
	if v6 {
		return StackAddr6.Addr()
	}
	return StackAddr4.Addr()
}

func (tp *Topology) String() string {
	return fmt.Sprintf("ours=%s peer=%s", tp.Ours.Name, tp.Peer.Name)
}
