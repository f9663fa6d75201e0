package bench

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/stack"
)

// The stack throughput benchmark compares umptcp (MPTCP, one subflow)
// with plain gVisor TCP over the same kind of unlimited emu link, both
// with the same TCP settings (SACK, CUBIC, receive buffer auto-tuning),
// alternating the two in every iteration so that the machine's noise hits
// both alike. It reports Gbit/s for each and their ratio per direction.

var (
	addrA = netip.MustParsePrefix("10.9.0.1/24")
	addrB = netip.MustParsePrefix("10.9.0.2/24")
)

// conns is a connected pair: client on A, server on B.
type conns struct {
	client, server net.Conn
	link           *emu.Link
	close          func()
}

// umptcpPair connects two umptcp stacks over link; noSoftGSO sets their
// Links' NoSoftwareGSO.
func umptcpPair(tb testing.TB, link emu.Config, noSoftGSO bool) *conns {
	l, err := emu.NewLink(link, link)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := stack.New(stack.Config{Links: []stack.Link{{Name: "a", Endpoint: l.A(), Addrs: []netip.Prefix{addrA}, NoSoftwareGSO: noSoftGSO}}})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := stack.New(stack.Config{Links: []stack.Link{{Name: "b", Endpoint: l.B(), Addrs: []netip.Prefix{addrB}, NoSoftwareGSO: noSoftGSO}}})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := b.Listen("tcp", ":7000")
	if err != nil {
		tb.Fatal(err)
	}
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err := a.Dial("tcp", netip.AddrPortFrom(addrB.Addr(), 7000).String())
	if err != nil {
		tb.Fatal(err)
	}
	s := <-acc
	if !c.MultipathTCP() {
		tb.Fatal("umptcp pair is not MPTCP")
	}
	return &conns{client: c, server: s, link: l, close: func() {
		c.Close()
		s.Close()
		ln.Close()
		a.Close()
		b.Close()
		l.Close()
	}}
}

// newGVisor is a plain gVisor stack with the TCP settings umptcp uses.
func newGVisor(tb testing.TB, ep gstack.LinkEndpoint, p netip.Prefix) *gstack.Stack {
	s := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	cubic := tcpip.CongestionControlOption("cubic")
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &mod, &cubic} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.CreateNIC(1, ep); err != nil {
		tb.Fatal(err)
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(p.Addr().As4()), PrefixLen: p.Bits()}},
		gstack.AddressProperties{}); err != nil {
		tb.Fatal(err)
	}
	sub, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{10, 9, 0, 0}), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	s.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: 1}})
	return s
}

// gvisorGSO offers gVisor's own software segmentation offload on a link
// that has none: gVisor's TCP then builds super-segments and cuts them
// itself (GVisorGSOSupported, as gVisor's fdbased endpoint can ask for),
// each segment still going down its IP path one by one.
// used records that gVisor did cut a super-segment (its segments then
// reach the link marked GSOGvisor), so the row cannot measure plain gVisor
// under another name.
type gvisorGSO struct {
	nested.Endpoint
	used atomic.Bool
}

func withGVisorGSO(child gstack.LinkEndpoint) *gvisorGSO {
	e := &gvisorGSO{}
	e.Endpoint.Init(child, e)
	return e
}

func (*gvisorGSO) SupportedGSO() gstack.SupportedGSO { return gstack.GVisorGSOSupported }
func (*gvisorGSO) GSOMaxSize() uint32                { return gstack.GVisorGSOMaxSize }

// WritePackets implements stack.LinkWriter.
func (e *gvisorGSO) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	if !e.used.Load() {
		for _, p := range pkts.AsSlice() {
			if p.GSOOptions.Type == gstack.GSOGvisor && p.Data().Size() > 0 {
				e.used.Store(true)
			}
		}
	}
	return e.Endpoint.WritePackets(pkts)
}

// gvisorPair connects two plain gVisor stacks over link; gvGSO puts
// gVisor's own software GSO on both (see gvisorGSO).
func gvisorPair(tb testing.TB, link emu.Config, gvGSO bool) *conns {
	l, err := emu.NewLink(link, link)
	if err != nil {
		tb.Fatal(err)
	}
	epA, epB := l.A(), l.B()
	var gsoA, gsoB *gvisorGSO
	if gvGSO {
		gsoA, gsoB = withGVisorGSO(epA), withGVisorGSO(epB)
		epA, epB = gsoA, gsoB
	}
	a, b := newGVisor(tb, epA, addrA), newGVisor(tb, epB, addrB)
	ln, err := gonet.ListenTCP(b, tcpip.FullAddress{NIC: 1, Port: 7000}, ipv4.ProtocolNumber)
	if err != nil {
		tb.Fatal(err)
	}
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err := gonet.DialContextTCP(context.Background(), a,
		tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.Addr().As4()), Port: 7000}, ipv4.ProtocolNumber)
	if err != nil {
		tb.Fatal(err)
	}
	s := <-acc
	return &conns{client: c, server: s, close: func() {
		if gvGSO && !(gsoA.used.Load() && gsoB.used.Load()) {
			tb.Errorf("gVisor's own GSO was not used (A %v, B %v): the reference is plain gVisor", gsoA.used.Load(), gsoB.used.Load())
		}
		c.Close()
		s.Close()
		ln.Close()
		for _, st := range []*gstack.Stack{a, b} {
			st.Close()
			st.RemoveNIC(1)
			st.Wait()
		}
		l.Close()
	}}
}

const streamChunk = 32 << 20

// benchMTU is the emu MTU of the single-stack profiling benchmarks.
var benchMTU = uint32(1500)

func init() {
	if v := os.Getenv("UMPTCP_BENCH_MTU"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			benchMTU = uint32(n)
		}
	}
}

// move sends n bytes from w to r in 256 KiB writes and returns the time
// until the last byte was read.
func move(tb testing.TB, w, r net.Conn, n int, wbuf, rbuf []byte) time.Duration {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for left := n; left > 0; {
			k, err := w.Write(wbuf[:min(len(wbuf), left)])
			if err != nil {
				errc <- err
				return
			}
			left -= k
		}
		errc <- nil
	}()
	for got := 0; got < n; {
		k, err := r.Read(rbuf)
		if err != nil && err != io.EOF {
			tb.Fatal(err)
		}
		got += k
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

func gbps(n int, d time.Duration) float64 { return float64(n) * 8 / d.Seconds() / 1e9 }

// BenchmarkStackVsGVisor moves streamChunk bytes in each direction over
// umptcp and over plain gVisor, alternating, and reports each one's Gbit/s,
// umptcp ÷ gVisor per direction, and the CPU time umptcp took for its bytes
// ÷ gVisor's (cpu-ratio, on unix).
//
// Every iteration opens a fresh connection on each side: how far a
// connection's first slow start goes decides its throughput for good on
// this path (gVisor's HyStart, docs/DESIGN.md), and that varies from
// one connection to the next, so one connection per run measured a draw,
// not the stack.
func BenchmarkStackVsGVisor(b *testing.B) {
	for _, lc := range []struct {
		name      string
		link      emu.Config
		noSoftGSO bool // umptcp without its software GSO
		gvGSO     bool // plain gVisor with its own software GSO
	}{
		{"mtu=1500", emu.Config{MTU: 1500}, false, false},
		{"mtu=9000", emu.Config{MTU: 9000}, false, false},
		// umptcp without its software segmentation offload (the stack's
		// default on links without offloads, such as these): gVisor's TCP
		// sends every segment through its whole send path, as it does in
		// the plain gVisor reference. The cost of MPTCP per segment.
		{"mtu=1500,no-soft-gso", emu.Config{MTU: 1500}, true, false},
		// The reference given gVisor's own software GSO: its TCP builds
		// super-segments and cuts them before its IP layer, where umptcp
		// cuts them below, in the shim.
		{"mtu=1500,gvisor-gso", emu.Config{MTU: 1500}, false, true},
		// A link with a veth pair's offloads: super-segments and no
		// checksums, as over an offloading TUN device.
		{"mtu=1500,gso", emu.Config{MTU: 1500, GSOMaxSize: emu.MaxGSOSize}, false, false},
	} {
		b.Run(lc.name, func(b *testing.B) {
			wbuf, rbuf := make([]byte, 256<<10), make([]byte, 256<<10)
			for i := range wbuf {
				wbuf[i] = byte(i * 7)
			}
			var uUp, uDown, gUp, gDown time.Duration
			// The process's CPU time over each side's transfers: both
			// stacks run in this process, one at a time.
			var uCPU, gCPU time.Duration
			cpuOK := true
			timed := func(cpu *time.Duration, f func() time.Duration) time.Duration {
				c0, ok0 := processCPU()
				d := f()
				c1, ok1 := processCPU()
				*cpu += c1 - c0
				cpuOK = cpuOK && ok0 && ok1
				return d
			}
			// No SetBytes: an iteration's time includes opening and warming
			// up the connections; the Gbit/s below count the timed moves.
			for b.Loop() {
				u, g := umptcpPair(b, lc.link, lc.noSoftGSO), gvisorPair(b, lc.link, lc.gvGSO)
				// Warm both up (slow start, buffer auto-tuning), untimed.
				for _, p := range []*conns{u, g} {
					move(b, p.client, p.server, streamChunk/4, wbuf, rbuf)
					move(b, p.server, p.client, streamChunk/4, wbuf, rbuf)
				}
				uUp += timed(&uCPU, func() time.Duration { return move(b, u.client, u.server, streamChunk, wbuf, rbuf) })
				gUp += timed(&gCPU, func() time.Duration { return move(b, g.client, g.server, streamChunk, wbuf, rbuf) })
				uDown += timed(&uCPU, func() time.Duration { return move(b, u.server, u.client, streamChunk, wbuf, rbuf) })
				gDown += timed(&gCPU, func() time.Duration { return move(b, g.server, g.client, streamChunk, wbuf, rbuf) })
				u.close()
				g.close()
			}
			if cpuOK && gCPU > 0 {
				// CPU per byte, umptcp ÷ gVisor (the same bytes each).
				b.ReportMetric(uCPU.Seconds()/gCPU.Seconds(), "cpu-ratio")
			}
			n := b.N * streamChunk
			b.ReportMetric(gbps(n, uUp), "umptcp-up-Gbit/s")
			b.ReportMetric(gbps(n, gUp), "gvisor-up-Gbit/s")
			b.ReportMetric(gbps(n, uDown), "umptcp-down-Gbit/s")
			b.ReportMetric(gbps(n, gDown), "gvisor-down-Gbit/s")
			b.ReportMetric(gUp.Seconds()/uUp.Seconds(), "ratio-up")
			b.ReportMetric(gDown.Seconds()/uDown.Seconds(), "ratio-down")
		})
	}
}

// BenchmarkStackUmptcp is the umptcp half of BenchmarkStackVsGVisor alone,
// for profiling.
func BenchmarkStackUmptcp(b *testing.B) {
	u := umptcpPair(b, emu.Config{MTU: benchMTU}, false)
	defer u.close()
	wbuf, rbuf := make([]byte, 256<<10), make([]byte, 256<<10)
	b.SetBytes(2 * streamChunk)
	b.ReportAllocs()
	for b.Loop() {
		move(b, u.client, u.server, streamChunk, wbuf, rbuf)
		move(b, u.server, u.client, streamChunk, wbuf, rbuf)
	}
}

// BenchmarkStackGVisor is the gVisor half, for profiling.
func BenchmarkStackGVisor(b *testing.B) {
	g := gvisorPair(b, emu.Config{MTU: benchMTU}, false)
	defer g.close()
	wbuf, rbuf := make([]byte, 256<<10), make([]byte, 256<<10)
	b.SetBytes(2 * streamChunk)
	b.ReportAllocs()
	for b.Loop() {
		move(b, g.client, g.server, streamChunk, wbuf, rbuf)
		move(b, g.server, g.client, streamChunk, wbuf, rbuf)
	}
}

// BenchmarkIdleConnMemory reports the heap held per idle established
// connection (both ends, after a small exchange and a GC), umptcp against
// plain gVisor TCP, over one emu link each.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 500
	measure := func(open func() (cs []net.Conn, closeAll func())) float64 {
		runtime.GC()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cs, closeAll := open()
		time.Sleep(100 * time.Millisecond) // let delayed ACKs and timers settle
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		runtime.KeepAlive(cs)
		closeAll()
		return per
	}
	var u, g float64
	for b.Loop() {
		u = measure(func() ([]net.Conn, func()) { return openMany(b, n, true) })
		g = measure(func() ([]net.Conn, func()) { return openMany(b, n, false) })
	}
	b.ReportMetric(u, "umptcp-B/conn")
	b.ReportMetric(g, "gvisor-B/conn")
	b.ReportMetric(u/g, "ratio")
}

// openMany opens n connections over one link pair and exchanges a few
// bytes on each, so that every one is established and has been used.
func openMany(tb testing.TB, n int, mptcp bool) ([]net.Conn, func()) {
	l, err := emu.NewLink(emu.Config{}, emu.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	var dial func() net.Conn
	var accept func() net.Conn
	var closers []func()
	if mptcp {
		a, err := stack.New(stack.Config{Links: []stack.Link{{Name: "a", Endpoint: l.A(), Addrs: []netip.Prefix{addrA}}}})
		if err != nil {
			tb.Fatal(err)
		}
		s, err := stack.New(stack.Config{Links: []stack.Link{{Name: "b", Endpoint: l.B(), Addrs: []netip.Prefix{addrB}}}})
		if err != nil {
			tb.Fatal(err)
		}
		ln, err := s.Listen("tcp", ":7000")
		if err != nil {
			tb.Fatal(err)
		}
		dial = func() net.Conn {
			c, err := a.Dial("tcp", netip.AddrPortFrom(addrB.Addr(), 7000).String())
			if err != nil {
				tb.Fatal(err)
			}
			return c
		}
		accept = func() net.Conn { c, _ := ln.Accept(); return c }
		closers = append(closers, func() { ln.Close(); a.Close(); s.Close() })
	} else {
		a, s := newGVisor(tb, l.A(), addrA), newGVisor(tb, l.B(), addrB)
		ln, err := gonet.ListenTCP(s, tcpip.FullAddress{NIC: 1, Port: 7000}, ipv4.ProtocolNumber)
		if err != nil {
			tb.Fatal(err)
		}
		dial = func() net.Conn {
			c, err := gonet.DialContextTCP(context.Background(), a,
				tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.Addr().As4()), Port: 7000}, ipv4.ProtocolNumber)
			if err != nil {
				tb.Fatal(err)
			}
			return c
		}
		accept = func() net.Conn { c, _ := ln.Accept(); return c }
		closers = append(closers, func() {
			ln.Close()
			for _, st := range []*gstack.Stack{a, s} {
				st.Close()
				st.RemoveNIC(1)
				st.Wait()
			}
		})
	}
	var cs []net.Conn
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		c := dial()
		s := accept()
		c.Write(buf)
		io.ReadFull(s, buf)
		s.Write(buf)
		io.ReadFull(c, buf)
		cs = append(cs, c, s)
	}
	return cs, func() {
		for _, c := range cs {
			c.Close()
		}
		for _, f := range closers {
			f()
		}
		l.Close()
	}
}
