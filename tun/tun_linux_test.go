package tun_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/umptcp/umptcp/internal/netns"
	"github.com/umptcp/umptcp/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Addresses from the benchmarking range (RFC 2544) and a ULA, inside namespaces the
// test creates.
var (
	host4  = netip.MustParsePrefix("198.18.0.1/24")
	stack4 = netip.MustParsePrefix("198.18.0.2/24")
	host6  = netip.MustParsePrefix("fd75:6d70:7470::1/64")
	stack6 = netip.MustParsePrefix("fd75:6d70:7470::2/64")
)

// newGVisor builds a plain gVisor stack (IPv4, IPv6, TCP with SACK) on ep.
func newGVisor(t *testing.T, ep stack.LinkEndpoint) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	for _, p := range []netip.Prefix{stack4, stack6} {
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{
			Protocol:          proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()},
		}, stack.AddressProperties{}); err != nil {
			t.Fatalf("AddProtocolAddress: %v", err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header4Any(), NIC: 1},
		{Destination: header6Any(), NIC: 1},
	})
	return s
}

func header4Any() tcpip.Subnet {
	sn, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes(make([]byte, 4)))
	return sn
}

func header6Any() tcpip.Subnet {
	sn, _ := tcpip.NewSubnet(tcpip.AddrFrom16([16]byte{}), tcpip.MaskFromBytes(make([]byte, 16)))
	return sn
}

// checkNoLeak fails when goroutines of this package's endpoint or of wireguard-go's device
// are still alive shortly after everything was closed.
func checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(s, "\n\n") {
			if strings.Contains(g, "routineReadFromTUN") || strings.Contains(g, "wireguard/tun.(*NativeTun)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines leaked after Close:\n%s", strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKernelTCP exchanges TCP between a gVisor stack on a TUN device and the Linux kernel
// in a fresh namespace, both directions, IPv4 and IPv6, with every driver and path.
func TestKernelTCP(t *testing.T) {
	netns.Require(t)
	cases := []struct {
		name      string
		driver    tun.Driver
		noOffld   bool
		forwarded bool
	}{
		{"wireguard-offload", tun.DriverWireGuard, false, false},
		{"wireguard-offload-forwarded", tun.DriverWireGuard, false, true},
		{"wireguard-generic", tun.DriverWireGuard, true, false},
		{"wireguard-generic-forwarded", tun.DriverWireGuard, true, true},
		{"water", tun.DriverWater, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testKernelTCP(t, c.driver, c.noOffld, c.forwarded)
		})
	}
}

// Addresses of the veth pair for forwarded cases.
var (
	vethOurs4 = netip.MustParsePrefix("198.18.1.1/24")
	vethPeer4 = netip.MustParsePrefix("198.18.1.2/24")
	vethOurs6 = netip.MustParsePrefix("fd75:6d70:7470:1::1/64")
	vethPeer6 = netip.MustParsePrefix("fd75:6d70:7470:1::2/64")
)

// testKernelTCP runs the exchange against a kernel listener on the TUN's host side, or,
// when forwarded, in a second namespace behind a veth pair, so that super-segments are
// forwarded by the kernel as in the benchmark topology.
func testKernelTCP(t *testing.T, driver tun.Driver, noOffload, forwarded bool) {
	ns := netns.New(t, "tun")
	listenNS, listen4, listen6 := ns, host4.Addr(), host6.Addr()
	if forwarded {
		peer := netns.New(t, "tunpeer")
		if err := netns.Veth(netns.VethEnd{NS: ns, Dev: "va", Addrs: []netip.Prefix{vethOurs4, vethOurs6}},
			netns.VethEnd{NS: peer, Dev: "vb", Addrs: []netip.Prefix{vethPeer4, vethPeer6}}); err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			ns.Sysctl("net.ipv4.ip_forward", "1"),
			ns.Sysctl("net.ipv6.conf.all.forwarding", "1"),
			peer.AddRoute(host4.Masked(), vethOurs4.Addr(), "vb"),
			peer.AddRoute(host6.Masked(), vethOurs6.Addr(), "vb"),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		listenNS, listen4, listen6 = peer, vethPeer4.Addr(), vethPeer6.Addr()
	}
	var (
		dev      *tun.Device
		ln4, ln6 net.Listener
	)
	err := ns.Do(func() error {
		var err error
		dev, err = tun.Open(tun.Config{Name: "umptun0", Driver: driver, MTU: 1500})
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	// ConfigureHost reaches the device's namespace from this (unlocked) goroutine.
	if err := dev.ConfigureHost(tun.HostConfig{Addresses: []tun.Address{{Prefix: host4}, {Prefix: host6}}}); err != nil {
		dev.Close()
		t.Fatalf("configure: %v", err)
	}
	if err := listenNS.Do(func() error {
		var err error
		if ln4, err = net.Listen("tcp4", listen4.String()+":0"); err != nil {
			return err
		}
		ln6, err = net.Listen("tcp6", "["+listen6.String()+"]:0")
		return err
	}); err != nil {
		dev.Close()
		t.Fatalf("listen: %v", err)
	}
	defer ln4.Close()
	defer ln6.Close()

	ep, err := tun.NewEndpoint(dev, tun.EndpointOptions{DisableOffload: noOffload})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	if want := driver == tun.DriverWireGuard && !noOffload; ep.Offload() != want {
		t.Errorf("Offload() = %v, want %v", ep.Offload(), want)
	}
	s := newGVisor(t, ep)
	defer func() {
		s.Close()
		ep.Close()
		ep.Wait()
		s.Wait()
		checkNoLeak(t)
	}()

	for _, fam := range []struct {
		name  string
		ln    net.Listener
		proto tcpip.NetworkProtocolNumber
	}{{"ipv4", ln4, ipv4.ProtocolNumber}, {"ipv6", ln6, ipv6.ProtocolNumber}} {
		t.Run(fam.name, func(t *testing.T) {
			exchange(t, s, fam.ln, fam.proto, 8<<20)
		})
	}
	t.Logf("stats: rx %d (gso %d, badcsum %d, drop %d) tx %d (gso %d, drop %d)",
		ep.Stats.RxPackets.Load(), ep.Stats.RxGSOPackets.Load(), ep.Stats.RxBadChecksum.Load(), ep.Stats.RxDropped.Load(),
		ep.Stats.TxPackets.Load(), ep.Stats.TxGSOPackets.Load(), ep.Stats.TxDropped.Load())
	if ep.Offload() && ep.Stats.TxGSOPackets.Load() == 0 {
		t.Errorf("offload path sent no GSO super-segment")
	}
}

// exchange sends size random bytes from gVisor to the kernel (upload) and then from the
// kernel to gVisor (download) over one connection, comparing SHA-256 digests.
func exchange(t *testing.T, s *stack.Stack, ln net.Listener, proto tcpip.NetworkProtocolNumber, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	up := make([]byte, size)
	down := make([]byte, size)
	rand.Read(up)
	rand.Read(down)

	type result struct {
		sum [32]byte
		err error
	}
	srv := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		if _, err := io.CopyN(h, c, int64(size)); err != nil {
			srv <- result{err: err}
			return
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		if _, err := c.Write(down); err != nil {
			srv <- result{err: err}
			return
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until gVisor closes
		srv <- result{sum: sum}
	}()

	ap := netip.MustParseAddrPort(ln.Addr().String())
	c, err := gonet.DialContextTCP(ctx, s, tcpip.FullAddress{
		NIC: 1, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port(),
	}, proto)
	if err != nil {
		t.Fatalf("dial %v: %v", ap, err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(up); err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	c.Close()
	r := <-srv
	if r.err != nil {
		t.Fatalf("kernel side: %v", r.err)
	}
	if r.sum != sha256.Sum256(up) {
		t.Errorf("upload: SHA-256 mismatch at the kernel")
	}
	if !bytes.Equal(got, down) {
		t.Errorf("download: got %d bytes, SHA-256 %x, want %d bytes %x", len(got), sha256.Sum256(got), len(down), sha256.Sum256(down))
	}
}

// TestOpenErrors checks the errors a user sees for common mistakes.
func TestOpenErrors(t *testing.T) {
	_, err := tun.Open(tun.Config{Name: "this-name-is-far-too-long"})
	if !errors.Is(err, tun.ErrNameTooLong) {
		t.Errorf("long name: got %v, want ErrNameTooLong", err)
	}
	netns.Require(t)
	ns := netns.New(t, "tunerr")
	err = ns.Do(func() error {
		d, err := tun.Open(tun.Config{Name: "umpbusy0"})
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = tun.Open(tun.Config{Name: "umpbusy0"})
		if !errors.Is(err, tun.ErrBusy) {
			t.Errorf("second open: got %v, want ErrBusy", err)
		}
		_, err = tun.Open(tun.Config{Name: "lo"})
		if !errors.Is(err, tun.ErrBusy) || !strings.Contains(err.Error(), "not a TUN") {
			t.Errorf("open lo: got %v, want ErrBusy (not a TUN device)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConfigureHost checks MTU, up, addresses (IPv6 usable at once) and routes as the
// kernel reports them.
func TestConfigureHost(t *testing.T) {
	netns.Require(t)
	ns := netns.New(t, "tuncfg")
	var dev *tun.Device
	if err := ns.Do(func() error {
		var err error
		dev, err = tun.Open(tun.Config{Name: "umpcfg0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	err := dev.ConfigureHost(tun.HostConfig{
		Addresses: []tun.Address{{Prefix: host4, Peer: stack4.Addr()}, {Prefix: host6}},
		MTU:       1400,
		Routes:    []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("fd75:6d70:7470:99::/64")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if dev.MTU() != 1400 {
		t.Errorf("MTU() = %d", dev.MTU())
	}
	link := ns.MustRun(t, "ip", "link", "show", "umpcfg0")
	if !strings.Contains(link, "mtu 1400") || !strings.Contains(link, ",UP") {
		t.Errorf("link: %s", link)
	}
	addrs := ns.MustRun(t, "ip", "addr", "show", "umpcfg0")
	for _, want := range []string{"inet 198.18.0.1 peer 198.18.0.2/24", "inet6 fd75:6d70:7470::1/64"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("addresses lack %q:\n%s", want, addrs)
		}
	}
	if strings.Contains(addrs, "tentative") {
		t.Errorf("IPv6 address is tentative (DAD not skipped):\n%s", addrs)
	}
	routes := ns.MustRun(t, "ip", "route", "show") + ns.MustRun(t, "ip", "-6", "route", "show")
	for _, want := range []string{"198.51.100.0/24 dev umpcfg0", "fd75:6d70:7470:99::/64 dev umpcfg0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes lack %q:\n%s", want, routes)
		}
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dev.ConfigureHost(tun.HostConfig{MTU: 1500}); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("configure after close: %v, want ErrClosed", err)
	}
}
