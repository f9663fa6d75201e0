package stack

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/umptcp/umptcp/emu"
)

// pair is two stacks joined by an emulated link.
type pair struct {
	link  *emu.Link
	a, b  *Stack
	aAddr netip.Addr
	bAddr netip.Addr
}

func newPair(t testing.TB, v6 bool, aCfg, bCfg Config, ab, ba emu.Config) *pair {
	t.Helper()
	return newPairQueued(t, v6, aCfg, bCfg, ab, ba, 0)
}

// newPairQueued is newPair with a transmit queue of qlen packets on both
// stacks' links (Link.TxQueueLen).
func newPairQueued(t testing.TB, v6 bool, aCfg, bCfg Config, ab, ba emu.Config, qlen int) *pair {
	t.Helper()
	return newPairWith(t, v6, aCfg, bCfg, ab, ba, func(l *Link) { l.TxQueueLen = qlen })
}

// newPairWith is newPair with each stack's Link passed through set first.
func newPairWith(t testing.TB, v6 bool, aCfg, bCfg Config, ab, ba emu.Config, set func(*Link)) *pair {
	t.Helper()
	l, err := emu.NewLink(ab, ba)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{link: l}
	pa, pb := netip.MustParsePrefix("10.7.0.1/24"), netip.MustParsePrefix("10.7.0.2/24")
	if v6 {
		pa, pb = netip.MustParsePrefix("fd07::1/64"), netip.MustParsePrefix("fd07::2/64")
	}
	p.aAddr, p.bAddr = pa.Addr(), pb.Addr()
	aCfg.Links = []Link{{Name: "a", Endpoint: l.A(), Addrs: []netip.Prefix{pa}}}
	bCfg.Links = []Link{{Name: "b", Endpoint: l.B(), Addrs: []netip.Prefix{pb}}}
	set(&aCfg.Links[0])
	set(&bCfg.Links[0])
	if p.a, err = New(aCfg); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(bCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
		l.Close()
	})
	return p
}

// TestTransferBothWays moves 200 MB each way, with the links written in
// the sending goroutine and through transmit queues.
func TestTransferBothWays(t *testing.T) {
	for _, qlen := range []int{0, DefaultTxQueueLen} {
		t.Run(fmt.Sprintf("txqueue=%d", qlen), func(t *testing.T) {
			noLeaks(t)
			transferBothWays(t, newPairQueued(t, false, Config{}, Config{}, emu.Config{}, emu.Config{}, qlen))
		})
	}
}

// TestTransferOverOffloadLink moves 200 MB each way over a link with
// segmentation and checksum offloads (emu.Config.GSOMaxSize, a veth pair's
// or an offloading TUN device's): gVisor sends super-segments with partial
// checksums through the shim, which adds its options to them whole, and the
// peer takes them whole. With and without DSS checksums, IPv4 and IPv6.
func TestTransferOverOffloadLink(t *testing.T) {
	for _, c := range []struct {
		v6, csum bool
	}{{false, false}, {true, false}, {false, true}} {
		t.Run(fmt.Sprintf("v6=%v/checksum=%v", c.v6, c.csum), func(t *testing.T) {
			noLeaks(t)
			gso := emu.Config{GSOMaxSize: emu.MaxGSOSize}
			p := newPair(t, c.v6, Config{Checksum: c.csum}, Config{}, gso, gso)
			transferBothWays(t, p)
			for _, dir := range []emu.Dir{emu.AToB, emu.BToA} {
				st := p.link.Stats(dir)
				if st.DeliveredPackets == 0 || st.DeliveredBytes/st.DeliveredPackets <= emu.DefaultMTU {
					t.Errorf("%v: %d packets, %d bytes: no super-segments crossed", dir, st.DeliveredPackets, st.DeliveredBytes)
				}
				if st.DroppedMTU != 0 {
					t.Errorf("%v: %d packets dropped above the MTU", dir, st.DroppedMTU)
				}
			}
			for _, st := range []*Stack{p.a, p.b} {
				c := st.Counters().Snapshot()
				for _, name := range []string{"DSSNotMatching", "DSSNoMatchTCP", "DataCsumErr", "UmptcpOptionsNoRoom"} {
					if c[name] != 0 {
						t.Errorf("%s = %d", name, c[name])
					}
				}
			}
		})
	}
}

func transferBothWays(t *testing.T, p *pair) {
	ln, err := p.b.Listen("tcp", ":5000")
	if err != nil {
		t.Fatal(err)
	}
	const size = 200 << 20
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	want := sha256.Sum256(data)

	type result struct {
		sum [32]byte
		n   int64
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
		h := sha256.New()
		n, err := io.Copy(h, c)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		if err == nil {
			_, err = c.Write(data)
		}
		srv <- result{s, n, err}
	}()
	c, err := p.a.Dial("tcp", netip.AddrPortFrom(p.bAddr, 5000).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.MultipathTCP() {
		t.Fatal("not MPTCP")
	}
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	res := <-srv
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.n != size || res.sum != want {
		t.Fatalf("server got %d bytes, sum ok %v", res.n, res.sum == want)
	}
	var got [32]byte
	copy(got[:], h.Sum(nil))
	if n != size || got != want {
		t.Fatalf("client got %d bytes, sum ok %v", n, got == want)
	}
	t.Logf("%d bytes each way in %v; counters a=%v", size, time.Since(start), p.a.Counters().Snapshot())
}
