package stack

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// DefaultTxQueueLen is the suggested length of a link's transmit queue
// (Link.TxQueueLen): Linux's default txqueuelen, and the length gVisor's
// fifo qdisc is commonly given.
const DefaultTxQueueLen = 1000

// txWriteBatch bounds the packets handed to the link in one WritePackets
// call. It matches gVisor's fifo qdisc: a 64 KiB segment cut by software
// GSO into 1420-byte segments makes 47.
const txWriteBatch = 47

// txQueue hands the packets the shim sends to a goroutine of the shim
// that writes them to the link. Without it, gVisor writes each segment to
// the link holding its TCP endpoint's lock, and on a TUN device the write
// syscall runs the host kernel's whole receive path for the packet (IP,
// TCP, MPTCP, waking the reader): the next segment, and every ACK
// arriving meanwhile, waits for it. A TCP sender through umptcp then
// reached 0.7–0.8 of plain gVisor's upload (tunbench): the kernel's MPTCP
// receive path costs more per byte than its TCP's.
//
// The queue sits below the shim, not above it like a gVisor qdisc: what
// enters it has its options chosen, under the shim's txMu, so the wire
// order is the order in which options were chosen, for gVisor's segments
// and the shim's synthesised ones alike (see shim.txMu).
//
// When the queue is full the sender waits for room rather than dropping
// the packet: a drop here would be a loss TCP has to recover from, made
// by ourselves. A packet of a subflow the peer reset while it waited is
// dropped instead of written (see shim.outbound: nothing more goes out on
// such a subflow).
type txQueue struct {
	mu sync.Mutex
	// room is signalled when the writer takes packets out of a full
	// queue.
	room sync.Cond
	// ring holds the queued packets from head on, n of them; each holds a
	// reference the queue owns. flows[i] is ring[i]'s MPTCP subflow, or
	// nil.
	ring    []*stack.PacketBuffer
	flows   []*flow
	head, n int
	closed  bool
	waiting int // senders waiting for room

	wake chan struct{} // capacity 1: packets were queued, or it closed
	done chan struct{} // closed when the writer has returned

	write    func(stack.PacketBufferList) (int, tcpip.Error) // the link's WritePackets
	counters *Counters
}

func newTxQueue(n int, write func(stack.PacketBufferList) (int, tcpip.Error), counters *Counters) *txQueue {
	q := &txQueue{
		ring:     make([]*stack.PacketBuffer, n),
		flows:    make([]*flow, n),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		write:    write,
		counters: counters,
	}
	q.room.L = &q.mu
	go q.run()
	return q
}

// push queues the packets of list in order, each with a reference of
// the queue's own (the caller keeps its list); flows[i] is packet i's
// subflow or nil. It waits while the queue is full. Once the queue is
// closed it queues nothing and reports false.
func (q *txQueue) push(list stack.PacketBufferList, flows []*flow) bool {
	pkts := list.AsSlice()
	if len(pkts) == 0 {
		return true
	}
	q.mu.Lock()
	for i, pkt := range pkts {
		for q.n == len(q.ring) && !q.closed {
			q.signal() // the writer may not have been told yet
			q.waiting++
			q.room.Wait()
			q.waiting--
		}
		if q.closed {
			q.mu.Unlock()
			return false
		}
		tail := (q.head + q.n) % len(q.ring)
		q.ring[tail], q.flows[tail] = pkt.IncRef(), flows[i]
		q.n++
	}
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *txQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it owns the queue's goroutine, and returns once the
// queue is closed and empty.
func (q *txQueue) run() {
	defer close(q.done)
	var batch stack.PacketBufferList
	for {
		q.mu.Lock()
		for q.n > 0 && batch.Len() < txWriteBatch {
			pkt, f := q.ring[q.head], q.flows[q.head]
			q.ring[q.head], q.flows[q.head] = nil, nil
			q.head = (q.head + 1) % len(q.ring)
			q.n--
			if f != nil && f.peerReset.Load() {
				q.counters.UmptcpDroppedAfterReset.Add(1)
				pkt.DecRef()
				continue
			}
			batch.PushBack(pkt)
		}
		if q.waiting > 0 {
			q.room.Broadcast()
		}
		closed := q.closed
		q.mu.Unlock()
		if batch.Len() > 0 {
			if n, err := q.write(batch); err != nil && n < batch.Len() {
				q.counters.UmptcpTxDropped.Add(uint64(batch.Len() - n))
			}
			batch.Reset()
			continue
		}
		if closed {
			return
		}
		<-q.wake
	}
}

// close stops the queue: what it holds is still written, nothing more
// enters. It returns when the writer has finished.
func (q *txQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.room.Broadcast()
	q.mu.Unlock()
	q.signal()
	<-q.done
}
