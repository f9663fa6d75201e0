package emu

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// benchChunk is the bytes written per benchmark iteration.
const benchChunk = 4 << 20

// BenchmarkTCP measures gVisor TCP bulk throughput over an unlimited emu Link
// and over gVisor's own link/pipe (which delivers inline with no emulation),
// the reference an unimpaired emu link should match.
func BenchmarkTCP(b *testing.B) {
	for _, mtu := range []uint32{1500, 65535} {
		b.Run(fmt.Sprintf("emu/mtu=%d", mtu), func(b *testing.B) {
			benchTCP(b, newBenchConn(b, "emu", mtu))
		})
		b.Run(fmt.Sprintf("pipe/mtu=%d", mtu), func(b *testing.B) {
			benchTCP(b, newBenchConn(b, "pipe", mtu))
		})
	}
}

// BenchmarkTCPVsPipe alternates the same transfer over an emu Link and over
// link/pipe inside each iteration, so both see the same machine load, and
// reports each one's throughput and their ratio (emu/pipe; above 1 is emu
// faster).
func BenchmarkTCPVsPipe(b *testing.B) {
	for _, mtu := range []uint32{1500, 65535} {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			benchVs(b, newBenchConn(b, "emu", mtu), newBenchConn(b, "pipe", mtu))
		})
	}
}

// benchConn is a connected TCP pair over some link.
type benchConn struct {
	client, server net.Conn
	wbuf, rbuf     []byte
}

func newBenchConn(b *testing.B, kind string, mtu uint32) *benchConn {
	var ea, eb stack.LinkEndpoint
	switch kind {
	case "emu":
		l, err := NewLink(Config{MTU: mtu}, Config{MTU: mtu})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(l.Close)
		ea, eb = l.A(), l.B()
	case "pipe":
		ea, eb = pipe.New("", "", mtu)
	}
	p := newStackPair(b, ea, eb)
	c, s := p.connect(b, false)
	return &benchConn{client: c, server: s, wbuf: make([]byte, benchChunk), rbuf: make([]byte, 256<<10)}
}

// once moves benchChunk bytes from client to server and returns the time it
// took, reception included.
func (c *benchConn) once(b *testing.B) time.Duration {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := c.client.Write(c.wbuf)
		errc <- err
	}()
	for n := 0; n < benchChunk; {
		m, err := c.server.Read(c.rbuf[:min(len(c.rbuf), benchChunk-n)])
		if err != nil {
			b.Fatal(err)
		}
		n += m
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func benchTCP(b *testing.B, c *benchConn) {
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.once(b)
	}
}

func benchVs(b *testing.B, emu, ref *benchConn) {
	b.SetBytes(2 * benchChunk)
	b.ReportAllocs()
	b.ResetTimer()
	var te, tr time.Duration
	for i := 0; i < b.N; i++ {
		te += emu.once(b)
		tr += ref.once(b)
	}
	gbps := func(d time.Duration) float64 { return float64(b.N) * benchChunk * 8 / d.Seconds() / 1e9 }
	b.ReportMetric(gbps(te), "emu-Gbit/s")
	b.ReportMetric(gbps(tr), "pipe-Gbit/s")
	b.ReportMetric(tr.Seconds()/te.Seconds(), "emu/pipe")
}

// BenchmarkTCPDelayed measures TCP over links with delay, so every packet
// goes through the queue and the timer path, and reports the throughput
// achieved. With a rate limit and a queue deep enough that slow start does
// not overflow it, that is the configured rate less header overhead (about
// 4% at MTU 1500); with the default one-BDP queue, gVisor's default Reno
// loses the slow-start overshoot and recovers slowly, which is TCP's doing.
func BenchmarkTCPDelayed(b *testing.B) {
	for _, spec := range []string{"delay=1ms", "rate=500mbit,delay=1ms,queue=2mb"} {
		b.Run(spec, func(b *testing.B) {
			cfg, err := ParsePath(spec)
			if err != nil {
				b.Fatal(err)
			}
			l, err := NewLink(cfg, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(l.Close)
			p := newStackPair(b, l.A(), l.B())
			c, s := p.connect(b, false)
			bc := &benchConn{client: c, server: s, wbuf: make([]byte, benchChunk), rbuf: make([]byte, 256<<10)}
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			b.ResetTimer()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				total += bc.once(b)
			}
			b.ReportMetric(float64(b.N)*benchChunk*8/total.Seconds()/1e6, "Mbit/s")
		})
	}
}

// nullDispatcher drops what it is given.
type nullDispatcher struct{}

func (nullDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}
func (nullDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)    {}

// BenchmarkWritePackets measures the link alone: batches of 64 full-size
// packets through WritePackets and the drain, per packet.
func BenchmarkWritePackets(b *testing.B) {
	for _, spec := range []string{"", "strip=all", "loss=1%,dup=1%,reorder=1%", "corrupt=100%"} {
		name := spec
		if name == "" {
			name = "ideal"
		}
		b.Run(name, func(b *testing.B) {
			cfg, err := ParsePath(spec)
			if err != nil {
				b.Fatal(err)
			}
			l, err := NewLink(cfg, Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			l.B().Attach(nullDispatcher{})
			pkt := buildTCP(seg{flags: header.TCPFlagAck, options: cat(optTimestamp, mptcpOpt(20)), payload: make([]byte, 1400)})
			const batch = 64
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				var list stack.PacketBufferList
				for range batch {
					p := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
					p.NetworkProtocolNumber = header.IPv4ProtocolNumber
					list.PushBack(p)
				}
				l.A().WritePackets(list)
				list.DecRef()
			}
			// Include the delivery of what is still queued.
			for l.Stats(AToB).DeliveredPackets+l.Stats(AToB).Dropped() < l.Stats(AToB).SentPackets {
				runtime.Gosched()
			}
		})
	}
}
