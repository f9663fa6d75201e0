package emu

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

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

var _ io.Reader
