package stack

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umptcp/umptcp/subflow"
)

// flow is what the shim knows about one subflow, found by its 4-tuple on
// every packet.
type flow struct {
	key           flowKey
	local, remote netip.AddrPort
	sf            *subflow.Subflow
	// conn is nil for a responder's subflow until its handshake completes.
	conn atomic.Pointer[Conn]
	// created and token serve the bound on half-open handshakes.
	created time.Time
	token   uint32
	pending atomic.Bool
	retired atomic.Int64 // unix nanoseconds when its connection finished; 0 while in use

	// Window scale shifts from the SYNs (-1: not seen). The peer's window
	// field is scaled only if both SYNs carried the option (RFC 7323 §2.2).
	ourWS, peerWS atomic.Int32

	// peerReset: the peer reset the subflow with a RST TCP accepts; the
	// shim sends nothing more on it.
	peerReset atomic.Bool

	// mssSeen is the largest payload of a plain (non-GSO) segment sent on
	// the subflow.
	mssSeen atomic.Int32
}

func newFlow(local, remote netip.AddrPort, sf *subflow.Subflow) *flow {
	f := &flow{key: keyOf(local, remote), local: local, remote: remote, sf: sf, created: time.Now()}
	f.ourWS.Store(-1)
	f.peerWS.Store(-1)
	return f
}

func (f *flow) retire(now time.Time) { f.retired.Store(now.UnixNano()) }

func (f *flow) peerWindowShift() uint {
	o, p := f.ourWS.Load(), f.peerWS.Load()
	if o < 0 || p < 0 {
		return 0
	}
	return uint(min(p, 14))
}

// flowTable maps 4-tuples to flows. Reads happen on every packet; writes
// when a subflow is created or removed.
type flowTable struct {
	mu      sync.RWMutex
	m       map[flowKey]*flow
	pending int
}

func (t *flowTable) get(k flowKey) *flow {
	t.mu.RLock()
	f := t.m[k]
	t.mu.RUnlock()
	return f
}

func (t *flowTable) add(f *flow) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[flowKey]*flow)
	}
	if _, ok := t.m[f.key]; ok {
		return false
	}
	t.m[f.key] = f
	if f.pending.Load() {
		t.pending++
	}
	return true
}

// addPending adds a responder's half-open flow unless limit are already
// waiting.
func (t *flowTable) addPending(f *flow, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending >= limit {
		return false
	}
	if t.m == nil {
		t.m = make(map[flowKey]*flow)
	}
	if _, ok := t.m[f.key]; ok {
		return false
	}
	f.pending.Store(true)
	t.m[f.key] = f
	t.pending++
	return true
}

// settle marks a pending flow as no longer half-open.
func (t *flowTable) settle(f *flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f.pending.Swap(false) {
		t.pending--
	}
}

func (t *flowTable) remove(f *flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[f.key] == f {
		delete(t.m, f.key)
		f.retired.CompareAndSwap(0, 1) // caches check it
		if f.pending.Swap(false) {
			t.pending--
		}
	}
}

// expired returns the flows half-open for longer than halfOpen and those
// retired for longer than grace.
func (t *flowTable) expired(now time.Time, halfOpen, grace time.Duration) []*flow {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []*flow
	for _, f := range t.m {
		r := f.retired.Load()
		if (f.pending.Load() && now.Sub(f.created) > halfOpen) || (r != 0 && now.UnixNano()-r > int64(grace)) {
			out = append(out, f)
		}
	}
	return out
}

func (t *flowTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
