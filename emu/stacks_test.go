package emu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Addresses of the test stacks: documentation ranges (RFC 5737, RFC 3849).
// The stacks live in this process; nothing reaches a real network.
var (
	addrA4 = tcpip.AddrFrom4([4]byte{192, 0, 2, 1})
	addrB4 = tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
	addrA6 = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	addrB6 = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
)

const nicID = 1

// newStack returns a gVisor stack with TCP (SACK on, buffers large enough for
// the paths the tests emulate) on one NIC over ep, holding a4 and a6.
func newStack(tb testing.TB, ep stack.LinkEndpoint, a4, a6 tcpip.Address) *stack.Stack {
	tb.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		tb.Fatalf("SACK: %v", err)
	}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 4 << 20, Max: 8 << 20}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd); err != nil {
		tb.Fatalf("send buffer: %v", err)
	}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 4 << 20, Max: 8 << 20}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv); err != nil {
		tb.Fatalf("receive buffer: %v", err)
	}
	if err := s.CreateNIC(nicID, ep); err != nil {
		tb.Fatalf("CreateNIC: %v", err)
	}
	for _, a := range []tcpip.Address{a4, a6} {
		proto := ipv4.ProtocolNumber
		if a.Len() == 16 {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: a.WithPrefix()}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			tb.Fatalf("AddProtocolAddress %v: %v", a, err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	return s
}

// stackPair is two stacks joined by a pair of link endpoints.
type stackPair struct {
	a, b *stack.Stack
}

func newStackPair(tb testing.TB, epA, epB stack.LinkEndpoint) *stackPair {
	tb.Helper()
	p := &stackPair{
		a: newStack(tb, epA, addrA4, addrA6),
		b: newStack(tb, epB, addrB4, addrB6),
	}
	tb.Cleanup(p.close)
	return p
}

func (p *stackPair) close() {
	for _, s := range []*stack.Stack{p.a, p.b} {
		s.Close()
		s.Wait()
	}
}

// newLinkPair is newStackPair over a new Link; the link is closed at cleanup
// after the stacks.
func newLinkPair(tb testing.TB, aToB, bToA Config, opts ...Option) (*Link, *stackPair) {
	tb.Helper()
	l, err := NewLink(aToB, bToA, opts...)
	if err != nil {
		tb.Fatalf("NewLink: %v", err)
	}
	tb.Cleanup(l.Close) // runs after the stacks' cleanup (LIFO)
	return l, newStackPair(tb, l.A(), l.B())
}

// connect returns a connected TCP pair from stack a (client) to stack b.
func (p *stackPair) connect(tb testing.TB, v6 bool) (client, server net.Conn) {
	tb.Helper()
	proto, dst := ipv4.ProtocolNumber, addrB4
	if v6 {
		proto, dst = ipv6.ProtocolNumber, addrB6
	}
	ln, err := gonet.ListenTCP(p.b, tcpip.FullAddress{NIC: nicID, Port: 5001}, proto)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err = gonet.DialContextTCP(ctx, p.a, tcpip.FullAddress{NIC: nicID, Addr: dst, Port: 5001}, proto)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	a := <-ch
	if a.err != nil {
		tb.Fatalf("accept: %v", a.err)
	}
	tb.Cleanup(func() { client.Close(); a.c.Close() })
	return client, a.c
}

// transfer sends n pseudo-random bytes from client to server and checks that
// the server reads exactly them (SHA-256), within a generous bound that only
// catches a stuck transfer.
func transfer(tb testing.TB, client, server net.Conn, n int64, seed uint64) {
	tb.Helper()
	want := sha256.New()
	src := io.TeeReader(io.LimitReader(newRandReader(seed), n), want)
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(client, src)
		if err == nil {
			err = client.(*gonet.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got := sha256.New()
	server.SetReadDeadline(time.Now().Add(5 * time.Minute))
	m, err := io.Copy(got, server)
	if err != nil {
		tb.Fatalf("read after %d bytes: %v", m, err)
	}
	if err := <-errc; err != nil {
		tb.Fatalf("write: %v", err)
	}
	if m != n {
		tb.Fatalf("received %d bytes, want %d", m, n)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		tb.Fatalf("SHA-256 of received bytes differs from sent")
	}
}

// randReader is a fast deterministic byte source.
type randReader struct{ r *rand.ChaCha8 }

func newRandReader(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return &randReader{rand.NewChaCha8(s)}
}

func (r *randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

// emuGoroutines returns the stacks of live goroutines running emu code.
func emuGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "umptcp/emu.(*direction)") && !strings.Contains(g, "emu.emuGoroutines") {
			out = append(out, g)
		}
	}
	return out
}

// checkNoEmuGoroutines fails if emu goroutines are still running after a
// bounded wait (a timer callback that fired just before Close may still be
// returning).
func checkNoEmuGoroutines(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := emuGoroutines()
		if len(g) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d emu goroutines still running:\n%s", len(g), strings.Join(g, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

func mustParse(tb testing.TB, spec string) Config {
	tb.Helper()
	c, err := ParsePath(spec)
	if err != nil {
		tb.Fatalf("ParsePath(%q): %v", spec, err)
	}
	return c
}
