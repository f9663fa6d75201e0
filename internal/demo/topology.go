package demo

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/stack"
)

// topology is the client and server stacks and the links between them.
type topology struct {
	links          []*emu.Link
	client, server *stack.Stack
	pcap           *emu.Pcap
}

// clientAddr and serverAddr are the two stacks' addresses on path i
// (198.18.0.0/15: RFC 2544's benchmarking range).
func clientAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i), 1}) }
func serverAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i), 2}) }

// pathOf returns the index of the path holding a (either stack's address),
// or -1.
func pathOf(a netip.Addr) int {
	b := a.Unmap().As16()
	if !a.Unmap().Is4() || b[12] != 198 || b[13] != 18 {
		return -1
	}
	return int(b[14])
}

// The uses of Config.Seed. Each gets its own derived seeds, so that adding a
// path or a direction does not shift the others.
const (
	seedUp         = iota // the client's data
	seedDown              // the server's data
	seedClientKeys        // the client stack's keys and nonces
	seedServerKeys        // the server stack's
	seedLinks             // path i, direction d: index 2*i+d
)

// derive returns the index-th well-mixed, non-zero seed for one use of the
// run seed.
func derive(seed uint64, use, index int) uint64 {
	v := pattern{seed}.word(uint64(use)<<32 | uint64(index))
	if v == 0 {
		v = 1
	}
	return v
}

// newTopology builds the stacks and links of cfg (defaults applied).
func newTopology(cfg Config) (t *topology, err error) {
	t = &topology{}
	defer func() {
		if err != nil {
			t.close()
			t = nil
		}
	}()
	if cfg.Pcap != nil {
		if t.pcap, err = emu.NewPcap(cfg.Pcap, cfg.Snaplen); err != nil {
			return nil, fmt.Errorf("pcap: %w", err)
		}
	}
	var cl, sl []stack.Link
	for i, p := range cfg.Paths {
		up, down := p, p
		if p.Seed == 0 {
			up.Seed = derive(cfg.Seed, seedLinks, 2*i)
			down.Seed = derive(cfg.Seed, seedLinks, 2*i+1)
		}
		l, err := emu.NewLink(up, down)
		if err != nil {
			return nil, fmt.Errorf("path %d: %w", i+1, err)
		}
		t.links = append(t.links, l)
		if t.pcap != nil {
			l.SetPcap(t.pcap)
		}
		name := fmt.Sprintf("path%d", i+1)
		cl = append(cl, stack.Link{Name: name, Endpoint: l.A(), Addrs: []netip.Prefix{netip.PrefixFrom(clientAddr(i), 24)}})
		sl = append(sl, stack.Link{Name: name, Endpoint: l.B(), Addrs: []netip.Prefix{netip.PrefixFrom(serverAddr(i), 24)}})
	}
	keys := func(use int) *rand.ChaCha8 {
		var s [32]byte
		for i := range 4 {
			v := derive(cfg.Seed, use, i)
			for j := range 8 {
				s[8*i+j] = byte(v >> (8 * j))
			}
		}
		return rand.NewChaCha8(s)
	}
	if t.client, err = stack.New(stack.Config{Links: cl, Checksum: cfg.Checksum, Rand: keys(seedClientKeys)}); err != nil {
		return nil, fmt.Errorf("client stack: %w", err)
	}
	if t.server, err = stack.New(stack.Config{Links: sl, Checksum: cfg.Checksum, Rand: keys(seedServerKeys)}); err != nil {
		return nil, fmt.Errorf("server stack: %w", err)
	}
	if cfg.rfc6675 {
		opt := tcpip.TCPRecovery(0)
		for _, s := range []*stack.Stack{t.client, t.server} {
			if err := s.GVisor().SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
				return nil, fmt.Errorf("loss recovery: %s", err)
			}
		}
	}
	return t, nil
}

// close closes the stacks (which waits for their goroutines), then the links
// (which waits for their deliveries), then flushes the capture.
func (t *topology) close() error {
	if t.client != nil {
		t.client.Close()
	}
	if t.server != nil {
		t.server.Close()
	}
	for _, l := range t.links {
		l.Close()
	}
	if t.pcap != nil {
		if err := t.pcap.Flush(); err != nil {
			return fmt.Errorf("writing the capture: %w", err)
		}
	}
	return nil
}

// linkStats returns the counters of path i, both directions.
func (t *topology) linkStats(i int) (up, down emu.Stats) {
	return t.links[i].Stats(emu.AToB), t.links[i].Stats(emu.BToA)
}
