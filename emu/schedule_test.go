package emu

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// numbered returns an IPv4 TCP packet of exactly size bytes whose sequence
// number is i, so arrivals can be matched to sends.
func numbered(i, size int) []byte {
	hdr := header.IPv4MinimumSize + header.TCPMinimumSize
	return buildTCP(seg{flags: header.TCPFlagAck, seq: uint32(i), payload: make([]byte, size-hdr)})
}

func seqOf(b []byte) int {
	return int(binary.BigEndian.Uint32(b[header.IPv4MinimumSize+header.TCPSeqNumOffset:]))
}

func seqs(got []arrival) []int {
	var s []int
	for _, a := range got {
		s = append(s, seqOf(a.b))
	}
	return s
}

func TestDelay(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{Delay: 10 * time.Millisecond}, Config{})
	inject(t, l.A(), numbered(0, 100))
	clk.Advance(10*time.Millisecond - 1)
	if n := len(capB.packets()); n != 0 {
		t.Fatalf("%d packets delivered before the delay elapsed", n)
	}
	clk.Advance(1)
	got := capB.packets()
	if len(got) != 1 || got[0].at != 10*time.Millisecond {
		t.Fatalf("got %v, want one packet at 10ms", got)
	}
}

// TestRate checks serialisation: at 8 Mbit/s a 1000-byte packet takes 1ms,
// so a burst of three sent at once arrives 1ms apart after the delay.
func TestRate(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{Rate: 8_000_000, Delay: 5 * time.Millisecond}, Config{})
	inject(t, l.A(), numbered(0, 1000), numbered(1, 1000), numbered(2, 1000))
	clk.Advance(20 * time.Millisecond)
	got := capB.packets()
	want := []time.Duration{6 * time.Millisecond, 7 * time.Millisecond, 8 * time.Millisecond}
	if len(got) != 3 {
		t.Fatalf("got %d packets, want 3", len(got))
	}
	for i := range got {
		if got[i].at != want[i] || seqOf(got[i].b) != i {
			t.Errorf("packet %d: seq %d at %v, want seq %d at %v", i, seqOf(got[i].b), got[i].at, i, want[i])
		}
	}
	// The link stays busy: a packet sent at 1ms waits for the other two.
	clk2 := l.Stats(AToB)
	if clk2.DeliveredBytes != 3000 {
		t.Errorf("DeliveredBytes = %d", clk2.DeliveredBytes)
	}
}

// TestQueueLimit checks drop-tail against both bounds. The bound counts every
// packet not yet serialised, the one on the wire included.
func TestQueueLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"packets", Config{Rate: 8_000_000, QueuePackets: 2}},
		{"bytes", Config{Rate: 8_000_000, QueueBytes: 2500}},
		{"both", Config{Rate: 8_000_000, QueueBytes: 10000, QueuePackets: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, clk, _, capB := fakeLink(t, tc.cfg, Config{})
			var burst [][]byte
			for i := range 5 {
				burst = append(burst, numbered(i, 1000))
			}
			inject(t, l.A(), burst...)
			// After 1ms the first packet has left: room for one more.
			clk.Advance(time.Millisecond)
			inject(t, l.A(), numbered(5, 1000), numbered(6, 1000))
			clk.Advance(time.Second)
			if got, want := seqs(capB.packets()), []int{0, 1, 5}; !slices.Equal(got, want) {
				t.Errorf("delivered %v, want %v", got, want)
			}
			if s := l.Stats(AToB); s.DroppedQueue != 4 {
				t.Errorf("DroppedQueue = %d, want 4", s.DroppedQueue)
			}
		})
	}
}

func TestDefaultQueue(t *testing.T) {
	c := Config{Rate: 100_000_000, Delay: 20 * time.Millisecond}
	if b, p := c.queueLimits(); b != 500_000 || p != 0 {
		t.Errorf("100mbit, 20ms: queue %d bytes %d packets, want one BDP of 500000 bytes", b, p)
	}
	c = Config{Rate: 1_000_000}
	if b, _ := c.queueLimits(); b != 64*DefaultMTU {
		t.Errorf("1mbit, no delay: queue %d bytes, want the floor of 64 packets", b)
	}
}

// TestJitter sends packets with ±5ms jitter around 10ms. Packets 100µs apart
// arrive in order unless JitterReorders (the FIFO floor then pushes most of
// them towards the late end); packets 20ms apart, which cannot catch up with
// each other, show the whole spread.
func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		gap       time.Duration
		reorders  bool
		minSpread time.Duration
	}{
		{100 * time.Microsecond, false, 0},
		{100 * time.Microsecond, true, 8 * time.Millisecond},
		{20 * time.Millisecond, false, 8 * time.Millisecond},
	} {
		cfg := Config{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterReorders: tc.reorders, Seed: 5}
		l, clk, _, capB := fakeLink(t, cfg, Config{})
		const n = 200
		for i := range n {
			inject(t, l.A(), numbered(i, 100))
			clk.Advance(tc.gap)
		}
		clk.Advance(time.Second)
		got := capB.packets()
		if len(got) != n {
			t.Fatalf("got %d packets, want %d", len(got), n)
		}
		if inOrder := slices.IsSorted(seqs(got)); inOrder == tc.reorders {
			t.Errorf("gap %v, JitterReorders=%v: arrivals in order = %v", tc.gap, tc.reorders, inOrder)
		}
		var minD, maxD time.Duration = time.Hour, 0
		for _, a := range got {
			d := a.at - time.Duration(seqOf(a.b))*tc.gap // sent at i×gap
			minD, maxD = min(minD, d), max(maxD, d)
		}
		if minD < 5*time.Millisecond || maxD > 15*time.Millisecond || maxD-minD < tc.minSpread {
			t.Errorf("gap %v, JitterReorders=%v: delays in [%v, %v], want within 10ms±5ms, spread ≥ %v",
				tc.gap, tc.reorders, minD, maxD, tc.minSpread)
		}
	}
}

func TestReorder(t *testing.T) {
	cfg := Config{Delay: time.Millisecond, Reorder: 0.2, ReorderDelay: 3 * time.Millisecond, Seed: 9}
	l, clk, _, capB := fakeLink(t, cfg, Config{})
	const n = 200
	for i := range n {
		inject(t, l.A(), numbered(i, 100))
		clk.Advance(100 * time.Microsecond)
	}
	clk.Advance(time.Second)
	got := capB.packets()
	st := l.Stats(AToB)
	if len(got) != n || st.Reordered == 0 {
		t.Fatalf("got %d packets, %d reordered", len(got), st.Reordered)
	}
	late := 0
	for _, a := range got {
		d := a.at - time.Duration(seqOf(a.b))*100*time.Microsecond
		switch d {
		case time.Millisecond:
		case 4 * time.Millisecond:
			late++
		default:
			t.Errorf("packet %d delayed %v, want 1ms or 4ms", seqOf(a.b), d)
		}
	}
	if uint64(late) != st.Reordered || slices.IsSorted(seqs(got)) {
		t.Errorf("%d held back, Reordered = %d, sorted %v", late, st.Reordered, slices.IsSorted(seqs(got)))
	}
}

func TestDuplicate(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{Duplicate: 1, Delay: time.Millisecond}, Config{})
	inject(t, l.A(), numbered(0, 100), numbered(1, 100))
	clk.Advance(time.Millisecond)
	if got, want := seqs(capB.packets()), []int{0, 0, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if s := l.Stats(AToB); s.Duplicated != 2 || s.DeliveredPackets != 4 {
		t.Errorf("stats %+v", s)
	}
}

func TestMTU(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{MTU: 1280}, Config{})
	if l.A().MTU() != 1280 || l.B().MTU() != DefaultMTU {
		t.Errorf("MTU A %d B %d, want 1280 and %d", l.A().MTU(), l.B().MTU(), DefaultMTU)
	}
	inject(t, l.A(), numbered(0, 1280), numbered(1, 1281))
	clk.Advance(0)
	if got := seqs(capB.wait(t, 1)); !slices.Equal(got, []int{0}) {
		t.Errorf("delivered %v, want [0]", got)
	}
	if s := l.Stats(AToB); s.DroppedMTU != 1 {
		t.Errorf("DroppedMTU = %d", s.DroppedMTU)
	}
	l.A().SetMTU(9000)
	if l.Config(AToB).MTU != 9000 || l.A().MTU() != 9000 {
		t.Errorf("SetMTU not applied")
	}
}

func TestBlackhole(t *testing.T) {
	l, clk, capA, capB := fakeLink(t, Config{Delay: time.Millisecond}, Config{})
	inject(t, l.A(), numbered(0, 100)) // on its way before the blackhole
	l.SetBlackhole(AToB, true)
	inject(t, l.A(), numbered(1, 100))
	inject(t, l.B(), numbered(2, 100)) // the other direction is unaffected
	clk.Advance(time.Millisecond)
	l.SetBlackhole(AToB, false)
	inject(t, l.A(), numbered(3, 100))
	clk.Advance(time.Millisecond)
	if got := seqs(capB.packets()); !slices.Equal(got, []int{0, 3}) {
		t.Errorf("A→B delivered %v, want [0 3]", got)
	}
	if got := seqs(capA.packets()); !slices.Equal(got, []int{2}) {
		t.Errorf("B→A delivered %v, want [2]", got)
	}
	if s := l.Stats(AToB); s.DroppedBlackhole != 1 {
		t.Errorf("DroppedBlackhole = %d", s.DroppedBlackhole)
	}
}

// TestBlackholeStacks breaks a path under a TCP connection and heals it: the
// transfer stalls, then completes.
func TestBlackholeStacks(t *testing.T) {
	l, p := newLinkPair(t, Config{}, Config{})
	c, s := p.connect(t, true)
	l.SetBlackhole(AToB, true)
	l.SetBlackhole(BToA, true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		transfer(t, c, s, 1<<20, 1)
	}()
	// Wait until the stack has tried to send into the hole, then heal it.
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats(AToB).DroppedBlackhole == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no packet sent into the blackhole")
		}
		time.Sleep(time.Millisecond)
	}
	l.SetBlackhole(AToB, false)
	l.SetBlackhole(BToA, false)
	<-done
}

// TestDeterminism runs the same packet sequence through two links with the
// same seed and checks identical fates, arrival times and bytes; a different
// seed gives different ones.
func TestDeterminism(t *testing.T) {
	cfg := Config{
		Rate: 50_000_000, Delay: 3 * time.Millisecond, Jitter: time.Millisecond,
		Loss: 0.05, Burst: Burst{P: 0.02, R: 0.3}, Reorder: 0.05, Duplicate: 0.05,
		Corrupt: 0.05, Rewrite: 0.05, Strip: StripData,
	}
	run := func(seed uint64) ([]arrival, Stats) {
		c := cfg
		c.Seed = seed
		l, clk, _, capB := fakeLink(t, c, Config{})
		for i := range 500 {
			inject(t, l.A(), buildTCP(seg{flags: header.TCPFlagAck, seq: uint32(i), options: mptcpOpt(8), payload: make([]byte, 200+i)}))
			clk.Advance(50 * time.Microsecond)
		}
		clk.Advance(time.Second)
		return capB.packets(), l.Stats(AToB)
	}
	a1, s1 := run(77)
	a2, s2 := run(77)
	a3, _ := run(78)
	if s1 != s2 {
		t.Errorf("same seed, different stats:\n%+v\n%+v", s1, s2)
	}
	same := func(x, y []arrival) bool {
		return slices.EqualFunc(x, y, func(p, q arrival) bool { return p.at == q.at && string(p.b) == string(q.b) })
	}
	if !same(a1, a2) {
		t.Error("same seed, different arrivals")
	}
	if same(a1, a3) {
		t.Error("different seeds, same arrivals")
	}
	t.Logf("%+v", s1)
}

// TestDeterminismIndependentOfTiming: which packets are lost depends only on
// the seed and the packet's position, not on when packets are sent.
func TestDeterminismIndependentOfTiming(t *testing.T) {
	run := func(gap time.Duration) []int {
		l, clk, _, capB := fakeLink(t, Config{Loss: 0.3, Duplicate: 0.1, Seed: 3}, Config{})
		for i := range 300 {
			inject(t, l.A(), numbered(i, 60))
			clk.Advance(gap)
		}
		clk.Advance(0)
		return seqs(capB.packets())
	}
	if a, b := run(0), run(7*time.Millisecond); !slices.Equal(a, b) {
		t.Errorf("fates changed with timing:\n%v\n%v", a, b)
	}
}

func TestSetConfigSeed(t *testing.T) {
	l, err := NewLink(Config{}, Config{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Config(AToB).Seed == 0 || l.Config(BToA).Seed != 5 {
		t.Errorf("seeds %d, %d: want random non-zero and 5", l.Config(AToB).Seed, l.Config(BToA).Seed)
	}
	if err := l.SetConfig(BToA, Config{Loss: 0.1}); err != nil {
		t.Fatal(err)
	}
	if got := l.Config(BToA); got.Seed != 5 || got.Loss != 0.1 {
		t.Errorf("after SetConfig with seed 0: %+v, want seed kept", got)
	}
	if err := l.SetConfig(BToA, Config{Loss: 2}); err == nil {
		t.Error("SetConfig accepted loss 2")
	}
	if err := l.Update(BToA, func(c *Config) { c.Delay = time.Second }); err != nil || l.Config(BToA).Delay != time.Second || l.Config(BToA).Seed != 5 {
		t.Errorf("Update: %v, %+v", err, l.Config(BToA))
	}
	if err := l.Update(BToA, func(c *Config) { c.Jitter = -1 }); err == nil || l.Config(BToA).Jitter != 0 {
		t.Errorf("Update accepted a negative jitter: %v, %+v", err, l.Config(BToA))
	}
	if _, err := NewLink(Config{Delay: -1}, Config{}); err == nil {
		t.Error("NewLink accepted a negative delay")
	}
}

// TestCloseReleases: Close drops what is on its way (counted), stops sends,
// and the counters balance.
func TestCloseReleases(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{Delay: time.Second, Duplicate: 0.5, Loss: 0.2, Seed: 1}, Config{})
	for i := range 50 {
		inject(t, l.A(), numbered(i, 100))
	}
	clk.Advance(time.Second)
	for i := range 10 {
		inject(t, l.A(), numbered(100+i, 100))
	}
	l.Close()
	l.Close() // idempotent
	s := l.Stats(AToB)
	if s.SentPackets+s.Duplicated != s.DeliveredPackets+s.Dropped() {
		t.Errorf("counters do not balance: %+v", s)
	}
	if s.DroppedDetached == 0 || s.DeliveredPackets != uint64(len(capB.packets())) {
		t.Errorf("stats %+v, %d captured", s, len(capB.packets()))
	}
	var list stack.PacketBufferList
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{})
	list.PushBack(pkt)
	if _, err := l.A().WritePackets(list); !isClosed(err) {
		t.Errorf("WritePackets after Close: %v", err)
	}
	list.DecRef()
}

func isClosed(err tcpip.Error) bool {
	_, ok := err.(*tcpip.ErrClosedForSend)
	return ok
}

func TestStatsString(t *testing.T) {
	s := Stats{SentPackets: 1200, SentBytes: 1_782_579, DeliveredPackets: 1188, DeliveredBytes: 1000, DroppedLoss: 12, Stripped: 3}
	want := "sent 1200/1.7MiB delivered 1188/1000B dropped loss=12 events stripped=3"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestDetached: with no dispatcher attached, packets are counted, not lost
// silently.
func TestDetached(t *testing.T) {
	l, clk, _, _ := fakeLink(t, Config{}, Config{})
	l.B().Attach(nil)
	if l.B().IsAttached() {
		t.Fatal("still attached")
	}
	inject(t, l.A(), numbered(0, 100))
	clk.Advance(0)
	if s := l.Stats(AToB); s.DroppedDetached != 1 {
		t.Errorf("DroppedDetached = %d", s.DroppedDetached)
	}
}

// TestGSOOffload: with GSOMaxSize the endpoints advertise host GSO and
// checksum offload, gVisor sends super-segments, and they cross whole (above
// the MTU) to a stack that takes them; the bytes arrive intact. A packet
// above the MTU that is not a super-segment is still dropped.
func TestGSOOffload(t *testing.T) {
	cfg := Config{MTU: 1500, GSOMaxSize: MaxGSOSize}
	l, p := newLinkPair(t, cfg, cfg)
	ep := l.A().(stack.GSOEndpoint)
	if ep.SupportedGSO() != stack.HostGSOSupported || ep.GSOMaxSize() != MaxGSOSize {
		t.Fatalf("SupportedGSO %v, GSOMaxSize %d", ep.SupportedGSO(), ep.GSOMaxSize())
	}
	want := stack.CapabilityTXChecksumOffload | stack.CapabilityRXChecksumOffload
	if c := l.A().Capabilities(); c&want != want {
		t.Fatalf("capabilities %v, want checksum offload both ways", c)
	}
	client, server := p.connect(t, false)
	transfer(t, client, server, 32<<20, 7)
	st := l.Stats(AToB)
	if st.DeliveredBytes/st.DeliveredPackets <= 1500 || st.DroppedMTU != 0 {
		t.Errorf("no super-segments crossed: %+v", st)
	}

	inject(t, l.A(), numbered(0, 1501))
	if s := l.Stats(AToB); s.DroppedMTU != 1 {
		t.Errorf("a plain packet above the MTU: DroppedMTU = %d, want 1", s.DroppedMTU)
	}
	if err := (Config{GSOMaxSize: MaxGSOSize + 1}).Validate(); err == nil {
		t.Errorf("Validate accepted GSOMaxSize above MaxGSOSize")
	}
}
