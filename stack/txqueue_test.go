package stack

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// txRecorder is a link write that records the packets it is given, in
// order, optionally waiting on gate before each batch.
type txRecorder struct {
	mu   sync.Mutex
	got  []*gstack.PacketBuffer
	gate chan struct{} // nil: never wait
	fail bool          // refuse every packet
}

func (r *txRecorder) write(l gstack.PacketBufferList) (int, tcpip.Error) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return 0, &tcpip.ErrClosedForSend{}
	}
	r.got = append(r.got, l.AsSlice()...)
	return l.Len(), nil
}

func (r *txRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func newTestPackets(n int) []*gstack.PacketBuffer {
	pkts := make([]*gstack.PacketBuffer, n)
	for i := range pkts {
		pkts[i] = gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData([]byte{byte(i)})})
	}
	return pkts
}

// pushAll pushes pkts in lists of random lengths, as the shim does under
// txMu: one pusher at a time.
func pushAll(t *testing.T, q *txQueue, pkts []*gstack.PacketBuffer, rng *rand.Rand) {
	for i := 0; i < len(pkts); {
		k := min(1+rng.IntN(60), len(pkts)-i)
		var l gstack.PacketBufferList
		for _, p := range pkts[i : i+k] {
			l.PushBack(p)
		}
		if !q.push(l, make([]*flow, l.Len())) {
			t.Errorf("push refused before close")
			return
		}
		i += k
	}
}

// TestTxQueueKeepsOrder: everything pushed is written once, in the order
// pushed, through a queue far smaller than what goes through it and a
// writer that stalls now and then; the queue's references are all
// released.
func TestTxQueueKeepsOrder(t *testing.T) {
	for _, qlen := range []int{1, 7, 64} {
		rec := &txRecorder{}
		var c Counters
		q := newTxQueue(qlen, func(l gstack.PacketBufferList) (int, tcpip.Error) {
			if rand.IntN(50) == 0 {
				time.Sleep(100 * time.Microsecond)
			}
			return rec.write(l)
		}, &c)
		pkts := newTestPackets(5000)
		pushAll(t, q, pkts, rand.New(rand.NewPCG(uint64(qlen), 1)))
		q.close()
		if len(rec.got) != len(pkts) {
			t.Fatalf("queue %d: %d packets written, want %d", qlen, len(rec.got), len(pkts))
		}
		for i, p := range rec.got {
			if p != pkts[i] {
				t.Fatalf("queue %d: packet %d written at position %d", qlen, indexOf(pkts, p), i)
			}
		}
		if n := c.UmptcpTxDropped.Load(); n != 0 {
			t.Errorf("queue %d: %d counted dropped", qlen, n)
		}
		for i, p := range pkts {
			if r := p.ReadRefs(); r != 1 {
				t.Fatalf("queue %d: packet %d has %d references after close, want 1 (the test's)", qlen, i, r)
			}
			p.DecRef()
		}
	}
}

func indexOf(pkts []*gstack.PacketBuffer, p *gstack.PacketBuffer) int {
	for i, q := range pkts {
		if q == p {
			return i
		}
	}
	return -1
}

// TestTxQueueWaitsForRoom: a full queue makes the sender wait (it drops
// nothing) until the writer takes packets out.
func TestTxQueueWaitsForRoom(t *testing.T) {
	rec := &txRecorder{gate: make(chan struct{})}
	var c Counters
	q := newTxQueue(4, rec.write, &c)
	pkts := newTestPackets(4 + txWriteBatch + 10)
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushAll(t, q, pkts, rand.New(rand.NewPCG(1, 2)))
	}()
	// The writer takes at most one batch and blocks on the gate; the
	// queue then fills and the sender must wait.
	time.Sleep(20 * time.Millisecond)
	select {
	case <-pushed:
		t.Fatal("push returned while the queue was full and the link blocked")
	default:
	}
	close(rec.gate)
	<-pushed
	q.close()
	if rec.count() != len(pkts) || c.UmptcpTxDropped.Load() != 0 {
		t.Fatalf("%d packets written, %d dropped; want %d, 0", rec.count(), c.UmptcpTxDropped.Load(), len(pkts))
	}
	for _, p := range pkts {
		p.DecRef()
	}
}

// TestTxQueueClose: close writes what is queued; a push after it, or one
// waiting for room when it comes, is refused and keeps nothing.
func TestTxQueueClose(t *testing.T) {
	rec := &txRecorder{gate: make(chan struct{})}
	q := newTxQueue(2, rec.write, &Counters{})
	pkts := newTestPackets(2 + txWriteBatch + 5)
	refused := make(chan bool, 1)
	go func() {
		var l gstack.PacketBufferList
		for _, p := range pkts {
			l.PushBack(p)
		}
		refused <- !q.push(l, make([]*flow, l.Len()))
	}()
	if !waitFor(t, "the pusher to wait for room", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.waiting > 0
	}) {
		return
	}
	closed := make(chan struct{})
	go func() { q.close(); close(closed) }()
	if !<-refused {
		t.Fatal("a push waiting for room was not refused by close")
	}
	close(rec.gate) // let the writer finish what it holds
	<-closed
	var l gstack.PacketBufferList
	l.PushBack(pkts[0])
	if q.push(l, make([]*flow, l.Len())) {
		t.Fatal("push after close accepted")
	}
	if n := rec.count(); n == 0 || n >= len(pkts) {
		t.Fatalf("%d packets written: want what was queued before close only", n)
	}
	for i, p := range pkts {
		if r := p.ReadRefs(); r != 1 {
			t.Fatalf("packet %d has %d references after close, want 1", i, r)
		}
		p.DecRef()
	}
}

// TestTxQueueCountsRefused: what the link refuses is counted.
func TestTxQueueCountsRefused(t *testing.T) {
	rec := &txRecorder{fail: true}
	var c Counters
	q := newTxQueue(16, rec.write, &c)
	pkts := newTestPackets(100)
	pushAll(t, q, pkts, rand.New(rand.NewPCG(3, 4)))
	q.close()
	if n := c.UmptcpTxDropped.Load(); n != uint64(len(pkts)) {
		t.Fatalf("%d counted dropped, want %d", n, len(pkts))
	}
	for _, p := range pkts {
		p.DecRef()
	}
}

// TestTxQueueDropsAfterPeerReset: packets of a subflow the peer reset
// while they waited are not written (and counted); other packets are.
func TestTxQueueDropsAfterPeerReset(t *testing.T) {
	rec := &txRecorder{gate: make(chan struct{})}
	var c Counters
	q := newTxQueue(64, rec.write, &c)
	reset, other := &flow{}, &flow{}
	// The first packet occupies the writer (blocked on the gate); the
	// others wait in the queue, alternating between the two subflows and
	// none.
	pkts := newTestPackets(31)
	var first gstack.PacketBufferList
	first.PushBack(pkts[0])
	q.push(first, []*flow{reset})
	if !waitFor(t, "the writer to take the first packet", func() bool { return q.queued() == 0 }) {
		return
	}
	var l gstack.PacketBufferList
	var flows []*flow
	var want []*gstack.PacketBuffer
	want = append(want, pkts[0]) // taken before the reset
	for i, p := range pkts[1:] {
		l.PushBack(p)
		switch i % 3 {
		case 0:
			flows = append(flows, reset)
		case 1:
			flows = append(flows, other)
			want = append(want, p)
		default:
			flows = append(flows, nil)
			want = append(want, p)
		}
	}
	q.push(l, flows)
	reset.peerReset.Store(true)
	close(rec.gate)
	q.close()
	if len(rec.got) != len(want) {
		t.Fatalf("%d packets written, want %d", len(rec.got), len(want))
	}
	for i := range want {
		if rec.got[i] != want[i] {
			t.Fatalf("written packet %d is packet %d, want %d", i, indexOf(pkts, rec.got[i]), indexOf(pkts, want[i]))
		}
	}
	if n := c.UmptcpDroppedAfterReset.Load(); n != 10 {
		t.Errorf("UmptcpDroppedAfterReset = %d, want 10", n)
	}
	for _, p := range pkts {
		if r := p.ReadRefs(); r != 1 {
			t.Fatalf("packet %d has %d references after close, want 1", indexOf(pkts, p), r)
		}
		p.DecRef()
	}
}

// TestNewFailureStopsQueues: a Stack that New could not finish leaves no
// transmit queue goroutine behind, and the caller's endpoints open.
func TestNewFailureStopsQueues(t *testing.T) {
	noLeaks(t)
	sink := &sinkEndpoint{}
	p := netip.MustParsePrefix("10.7.0.1/24")
	// The second link's address is the first's: gVisor refuses it.
	_, err := New(Config{Links: []Link{
		{Name: "a", Endpoint: sink, Addrs: []netip.Prefix{p}, TxQueueLen: DefaultTxQueueLen},
		{Name: "b", Endpoint: &sinkEndpoint{}, Addrs: []netip.Prefix{p, p}, TxQueueLen: DefaultTxQueueLen},
	}})
	if err == nil {
		t.Fatal("New accepted an address twice on one link")
	}
	t.Logf("New: %v", err)
}

// queued returns how many packets wait to be written (for tests: the
// stack never needs to ask).
func (q *txQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
