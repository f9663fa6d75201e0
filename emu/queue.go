package emu

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// pending is a packet on its way: its bytes, owned by the queue until
// delivered or released, and the time it is due at the receiver.
type pending struct {
	buf   buffer.Buffer
	at    int64  // due time, ns since the link's epoch
	seq   uint64 // enqueue order: breaks ties so equal due times stay FIFO
	proto tcpip.NetworkProtocolNumber
}

// before orders pending packets by due time, then by enqueue order.
func (p *pending) before(q *pending) bool {
	return p.at < q.at || (p.at == q.at && p.seq < q.seq)
}

// ring is a growable FIFO. Entries are stored by value so the common path
// (in-order packets) allocates only when the ring grows.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

// front returns a pointer to the oldest entry; the ring must not be empty.
func (r *ring[T]) front() *T { return &r.buf[r.head] }

// pop removes the oldest entry, zeroing its slot so the ring does not keep
// references alive.
func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return v
}

// grow doubles the capacity (always a power of two, so indices wrap with a
// mask).
func (r *ring[T]) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 64
	}
	nb := make([]T, size)
	for i := 0; i < r.n; i++ {
		nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = nb, 0
}

// pktHeap is a binary min-heap of pending packets ordered by before. It holds
// the packets that may leave out of order (reordered, or jittered with
// JitterReorders); written out instead of container/heap so that pushing a
// value does not box it on the heap.
type pktHeap []pending

func (h *pktHeap) push(p pending) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].before(&s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *pktHeap) pop() pending {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = pending{}
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].before(&s[m]) {
			m = l
		}
		if r < len(s) && s[r].before(&s[m]) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
