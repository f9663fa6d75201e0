package emu

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// maxBatch bounds the packets a drain takes out of the queue under the lock at
// once, so that senders are not held off for long.
const maxBatch = 256

// Link is an emulated bidirectional path between two gVisor link endpoints,
// A and B. Each direction has its own Config, counters and random stream.
//
// A Link is safe for concurrent use. Close it when done: it stops the timers
// and waits for the deliveries it started.
type Link struct {
	clock     tcpip.Clock
	realClock bool // no WithClock: due packets start a drain goroutine directly
	epoch     tcpip.MonotonicTime
	dirs      [2]direction
	ends      [2]endpoint
	pcap      atomic.Pointer[Pcap]
	closeOnce sync.Once
}

// Option configures a Link at creation.
type Option func(*Link)

// WithClock makes the link take time and timers from c instead of the real
// clock. With gVisor's faketime.ManualClock, packets are delivered from
// inside ManualClock.Advance, so tests of rate and delay are deterministic:
// Advance(d) returns after every packet due within d has been delivered.
func WithClock(c tcpip.Clock) Option {
	return func(l *Link) {
		l.clock = c
		l.realClock = false
	}
}

// NewLink returns a link whose direction A→B behaves as aToB and B→A as bToA.
func NewLink(aToB, bToA Config, opts ...Option) (*Link, error) {
	cfgs := [2]Config{aToB, bToA}
	for i := range cfgs {
		if err := cfgs[i].Validate(); err != nil {
			return nil, fmt.Errorf("emu: %v: %w", Dir(i), err)
		}
	}
	l := &Link{clock: tcpip.NewStdClock(), realClock: true}
	for _, o := range opts {
		o(l)
	}
	l.epoch = l.clock.NowMonotonic()
	for i := range cfgs {
		l.ends[i] = endpoint{link: l, tx: Dir(i)}
		l.dirs[i].init(l, Dir(i), &l.ends[1-i], cfgs[i])
	}
	return l, nil
}

// A returns endpoint A: what a stack writes to it travels A→B, and it
// delivers what travels B→A. Give it to stack.CreateNIC (directly or under a
// wrapper such as the option shim).
func (l *Link) A() stack.LinkEndpoint { return &l.ends[AToB] }

// B returns endpoint B, the other end.
func (l *Link) B() stack.LinkEndpoint { return &l.ends[BToA] }

// Config returns the configuration of direction dir, with its effective seed.
func (l *Link) Config(dir Dir) Config { return *l.dir(dir).cfg.Load() }

// SetConfig replaces the configuration of direction dir. Packets already on
// their way keep the schedule they were given; later packets follow cfg,
// still behind the earlier ones unless cfg lets them reorder. A zero Seed
// keeps the current random stream; another seed restarts it.
func (l *Link) SetConfig(dir Dir, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("emu: %v: %w", dir, err)
	}
	l.dir(dir).setConfig(cfg)
	return nil
}

// Update changes direction dir's configuration in place: f gets the current
// one (seed included) and may modify it; the result is validated and applied
// as by SetConfig, atomically with respect to other updates (f runs under the
// direction's lock, so it must not call the link's other methods). It is the
// way to flip one knob under a running flow:
//
//	l.Update(emu.AToB, func(c *emu.Config) { c.Strip = emu.StripAll })
func (l *Link) Update(dir Dir, f func(*Config)) error {
	d := l.dir(dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := *d.cfg.Load()
	f(&cfg)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("emu: %v: %w", dir, err)
	}
	d.setConfigLocked(cfg)
	return nil
}

// SetBlackhole starts (on) or stops dropping every packet sent in direction
// dir from now on. Packets already on their way still arrive, as after a
// route disappears.
func (l *Link) SetBlackhole(dir Dir, on bool) { l.dir(dir).blackhole.Store(on) }

// Stats returns a snapshot of direction dir's counters.
func (l *Link) Stats(dir Dir) Stats { return l.dir(dir).st.snapshot() }

// Close stops the link: sends fail with tcpip.ErrClosedForSend, packets on
// their way are released (counted in Stats.DroppedDetached), the timers are
// stopped, and Close returns once no drain is running. It flushes the pcap
// writer attached to the link, if any. Close is idempotent. It must not be
// called from inside a delivery (a dispatcher's DeliverNetworkPacket), which
// runs on the drain it waits for.
//
// Stop path: the only goroutines a Link runs are drains (drainLoop), started
// when a packet is due or a timer fires. Close marks both directions closed,
// stops their timers and waits for a running drain to return; a timer
// callback that fires later sees the closed flag and returns at once.
func (l *Link) Close() {
	l.closeOnce.Do(func() {
		for i := range l.dirs {
			l.dirs[i].close()
		}
		if p := l.pcap.Load(); p != nil {
			p.Flush()
		}
	})
}

func (l *Link) dir(d Dir) *direction {
	if d > BToA {
		panic(fmt.Sprintf("emu: invalid direction %d", d))
	}
	return &l.dirs[d]
}

// now is the link's time: nanoseconds since its creation on its clock.
func (l *Link) now() int64 { return int64(l.clock.NowMonotonic().Sub(l.epoch)) }

// direction is one way of a link: the impairment pipeline and the delivery
// queue.
//
// Locking: mu guards everything below it. It is held while packets are
// admitted (so random decisions follow the packet order) and while a drain
// takes due packets, never while packets are delivered to a stack, so a
// stack that sends from inside its receive path cannot deadlock on it.
type direction struct {
	// Read-mostly: the sending stack reads cfg for every packet (MTU,
	// Capabilities), so it gets cache lines of its own, apart from the
	// counters and the lock that every packet writes. Sharing a line with
	// them made each of those reads a cache miss.
	_    cpu.CacheLinePad
	link *Link
	dir  Dir
	dst  *endpoint // the endpoint packets are delivered to

	cfg       atomic.Pointer[Config] // read lock-free by MTU and Capabilities; replaced under mu
	blackhole atomic.Bool
	_         cpu.CacheLinePad
	st        counters

	mu   sync.Mutex
	idle sync.Cond // signalled when a drain ends; Close waits on it

	pcg  rand.PCG
	rng  *rand.Rand
	seed uint64
	bad  bool // Gilbert–Elliott state

	queueBytes, queuePackets int // effective queue bounds of cfg

	// The bottleneck: busyUntil is when the last admitted packet finishes
	// serialisation; backlog lists the packets not finished yet, so the
	// queue bounds can be checked exactly.
	busyUntil    int64
	backlog      ring[departure]
	backlogBytes int

	lastAt int64 // due time of the last in-order packet: the FIFO floor
	seq    uint64
	fifo   ring[pending] // in-order packets, due times non-decreasing
	late   pktHeap       // packets allowed to leave out of order

	timer    tcpip.Timer // fires onTimer; created on first use
	armed    bool
	armedAt  int64
	draining bool // a drainLoop owns the delivery; at most one at a time
	closed   bool

	batch []pending // the running drain's scratch; only it touches it
}

// departure is a packet in the bottleneck queue.
type departure struct {
	at   int64
	size int
}

func (d *direction) init(l *Link, dir Dir, dst *endpoint, cfg Config) {
	d.link, d.dir, d.dst = l, dir, dst
	d.idle.L = &d.mu
	if cfg.Seed == 0 {
		// A random seed, recorded in the config so a run can be replayed.
		for cfg.Seed == 0 {
			cfg.Seed = rand.Uint64()
		}
	}
	d.rng = rand.New(&d.pcg)
	d.reseed(cfg.Seed)
	d.store(cfg)
}

// reseed restarts the random stream. The direction is mixed into the stream
// so that a link whose two directions share a seed still makes independent
// decisions in each.
func (d *direction) reseed(seed uint64) {
	d.seed = seed
	d.pcg.Seed(seed, 0x9e3779b97f4a7c15^uint64(d.dir))
	d.bad = false
}

// store installs cfg; mu held or d not yet shared.
func (d *direction) store(cfg Config) {
	d.queueBytes, d.queuePackets = cfg.queueLimits()
	d.cfg.Store(&cfg)
}

func (d *direction) setConfig(cfg Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setConfigLocked(cfg)
}

func (d *direction) setConfigLocked(cfg Config) {
	switch {
	case cfg.Seed == 0:
		cfg.Seed = d.seed
	case cfg.Seed != d.seed:
		d.reseed(cfg.Seed)
	}
	d.store(cfg)
}

// setMTU serves stack.LinkEndpoint.SetMTU of the sending endpoint.
func (d *direction) setMTU(mtu uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := *d.cfg.Load()
	cfg.MTU = mtu
	d.store(cfg)
}

// send runs the impairments over pkts and queues the survivors. It does not
// take ownership of the packets: queued copies share their bytes
// (copy-on-write) or are fresh copies when they are modified.
func (d *direction) send(pkts stack.PacketBufferList) (int, tcpip.Error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, &tcpip.ErrClosedForSend{}
	}
	cfg := d.cfg.Load()
	now := d.link.now()
	var bytes uint64
	all := pkts.AsSlice()
	for _, pkt := range all {
		bytes += uint64(pkt.Size())
		d.admitLocked(cfg, now, pkt)
	}
	d.st.sentPackets.Add(uint64(len(all)))
	d.st.sentBytes.Add(bytes)
	spawn := d.scheduleLocked(now)
	d.mu.Unlock()
	if spawn {
		// Goroutine "emu drain": delivers due packets until none is left,
		// then ends. Close waits for it (see Link.Close).
		go d.drainLoop()
	}
	// Dropped packets count as written, as on a real NIC: loss is the path's
	// business, not the sender's error.
	return len(all), nil
}

// verdict holds one packet's random decisions.
type verdict struct {
	loss, burst, dup, corrupt, rewrite, reorder bool
	jitter                                      int64
	pos                                         uint64 // where and how to corrupt or rewrite
}

// drawLocked makes the random decisions for the next packet. Every enabled
// impairment draws for every packet, whatever happens to the packet, so the
// n-th packet's decisions depend only on the seed, the config and n, not on
// timing (queue drops) or on blackhole periods.
func (d *direction) drawLocked(cfg *Config) verdict {
	var v verdict
	r := d.rng
	if cfg.Loss > 0 {
		v.loss = r.Float64() < cfg.Loss
	}
	if b := &cfg.Burst; b.enabled() {
		// Loss by the current state, then the state moves (netem's order).
		if d.bad {
			v.burst = r.Float64() < b.badLoss()
			if r.Float64() < b.R {
				d.bad = false
			}
		} else {
			v.burst = b.GoodLoss > 0 && r.Float64() < b.GoodLoss
			if r.Float64() < b.P {
				d.bad = true
			}
		}
	}
	if cfg.Duplicate > 0 {
		v.dup = r.Float64() < cfg.Duplicate
	}
	if cfg.Corrupt > 0 {
		v.corrupt = r.Float64() < cfg.Corrupt
	}
	if cfg.Rewrite > 0 {
		v.rewrite = r.Float64() < cfg.Rewrite
	}
	if cfg.Corrupt > 0 || cfg.Rewrite > 0 {
		v.pos = r.Uint64()
	}
	if cfg.Reorder > 0 {
		v.reorder = r.Float64() < cfg.Reorder
	}
	if cfg.Jitter > 0 {
		j := int64(cfg.Jitter)
		v.jitter = r.Int64N(2*j+1) - j
	}
	return v
}

// admitLocked takes one packet through the pipeline described on Config.
func (d *direction) admitLocked(cfg *Config, now int64, pkt *stack.PacketBuffer) {
	v := d.drawLocked(cfg)
	size := pkt.Size()
	if d.blackhole.Load() {
		d.st.droppedBlackhole.Add(1)
		return
	}
	if size > int(cfg.mtu()) && !(cfg.GSOMaxSize != 0 && isSuperSegment(pkt) && size <= int(cfg.GSOMaxSize)+gsoHeadroom) {
		d.st.droppedMTU.Add(1)
		return
	}
	depart := now
	if cfg.Rate > 0 {
		for d.backlog.len() > 0 && d.backlog.front().at <= now {
			d.backlogBytes -= d.backlog.pop().size
		}
		if (d.queueBytes > 0 && d.backlogBytes+size > d.queueBytes) ||
			(d.queuePackets > 0 && d.backlog.len() >= d.queuePackets) {
			d.st.droppedQueue.Add(1)
			return
		}
		depart = max(now, d.busyUntil) + txTime(size, cfg.Rate)
		d.busyUntil = depart
		d.backlog.push(departure{at: depart, size: size})
		d.backlogBytes += size
	}
	if v.loss {
		d.st.droppedLoss.Add(1)
		return
	}
	if v.burst {
		d.st.droppedBurst.Add(1)
		return
	}

	var buf buffer.Buffer
	if cfg.Strip != StripNone || v.corrupt || v.rewrite {
		buf = d.mangle(cfg, pkt, &v)
	} else {
		// Share the sender's bytes copy-on-write: nothing here writes them.
		buf = pkt.ToBuffer()
	}
	proto := pkt.NetworkProtocolNumber
	if proto == 0 && size > 0 {
		proto = networkProtocol(firstByte(&buf))
	}

	at := depart + int64(cfg.Delay)
	if v.jitter != 0 {
		at = max(at+v.jitter, depart)
	}
	inOrder := !(cfg.JitterReorders && cfg.Jitter > 0)
	if v.reorder {
		at += int64(cfg.reorderDelay())
		inOrder = false
		d.st.reordered.Add(1)
	}
	d.enqueueLocked(buf, at, proto, inOrder)
	if v.dup {
		d.enqueueLocked(buf.Clone(), at, proto, inOrder)
		d.st.duplicated.Add(1)
	}
}

// isSuperSegment reports whether pkt is a TCP segment gVisor built for host
// GSO, which a link with offloads may carry above its MTU.
func isSuperSegment(pkt *stack.PacketBuffer) bool {
	t := pkt.GSOOptions.Type
	return t == stack.GSOTCPv4 || t == stack.GSOTCPv6
}

// mangle returns a private flat copy of pkt with the byte-level impairments
// applied: strip, corrupt, rewrite. The copy keeps the sender's bytes (which
// its retransmission queue still holds) intact.
func (d *direction) mangle(cfg *Config, pkt *stack.PacketBuffer, v *verdict) buffer.Buffer {
	view := pkt.ToView()
	b := view.AsSlice()
	t, ok := locateTCP(b)
	if !ok {
		return buffer.MakeWithView(view)
	}
	seg := b[t.off : t.off+t.hdrLen+t.payload]
	if cfg.Strip&stripClass(t) != 0 && stripMPTCP(header.TCP(seg)) {
		d.st.stripped.Add(1)
	}
	if t.payload > 0 {
		n := uint64(t.payload)
		if v.corrupt {
			corruptPayload(seg, t.hdrLen, int(v.pos%n), uint(v.pos>>61))
			d.st.corrupted.Add(1)
		}
		if v.rewrite {
			x := byte(v.pos >> 48)
			if x == 0 {
				x = 0xff
			}
			rewritePayload(seg, t.hdrLen, int((v.pos>>16)%n), x)
			d.st.rewritten.Add(1)
		}
	}
	return buffer.MakeWithView(view)
}

func firstByte(b *buffer.Buffer) byte {
	var one [1]byte
	b.ReadAt(one[:], 0)
	return one[0]
}

// txTime is the serialisation time of size bytes at rate bits/s, in ns.
func txTime(size int, rate uint64) int64 {
	return int64(uint64(size) * 8 * uint64(time.Second) / rate)
}

func (d *direction) enqueueLocked(buf buffer.Buffer, at int64, proto tcpip.NetworkProtocolNumber, inOrder bool) {
	p := pending{buf: buf, at: at, seq: d.seq, proto: proto}
	d.seq++
	if !inOrder {
		d.late.push(p)
		return
	}
	// In-order packets never leave before their predecessor: this is what
	// keeps jitter from reordering.
	if p.at < d.lastAt {
		p.at = d.lastAt
	}
	d.lastAt = p.at
	d.fifo.push(p)
}

// headLocked returns the due time of the earliest queued packet.
func (d *direction) headLocked() (int64, bool) {
	switch {
	case d.fifo.len() > 0 && len(d.late) > 0:
		return min(d.fifo.front().at, d.late[0].at), true
	case d.fifo.len() > 0:
		return d.fifo.front().at, true
	case len(d.late) > 0:
		return d.late[0].at, true
	}
	return 0, false
}

// takeDueLocked appends up to maxBatch packets due at now to batch, earliest
// first.
func (d *direction) takeDueLocked(now int64, batch []pending) []pending {
	for len(batch) < maxBatch {
		f := d.fifo.len() > 0 && d.fifo.front().at <= now
		h := len(d.late) > 0 && d.late[0].at <= now
		switch {
		case f && h:
			if d.late[0].before(d.fifo.front()) {
				batch = append(batch, d.late.pop())
			} else {
				batch = append(batch, d.fifo.pop())
			}
		case f:
			batch = append(batch, d.fifo.pop())
		case h:
			batch = append(batch, d.late.pop())
		default:
			return batch
		}
	}
	return batch
}

// scheduleLocked makes sure the earliest queued packet will be delivered:
// a running drain will see it; otherwise a due packet needs a drain now and a
// later one a timer. It reports whether the caller must start drainLoop
// (after unlocking), having claimed the drain for it.
func (d *direction) scheduleLocked(now int64) bool {
	if d.draining || d.closed {
		return false
	}
	at, ok := d.headLocked()
	if !ok {
		return false
	}
	if at <= now && d.link.realClock {
		// Straight to a goroutine: a zero timer would cost a trip through
		// the runtime's timer heap per batch. An injected clock gets the
		// zero timer instead, so that it can tell when the drain is done.
		d.draining = true
		return true
	}
	d.armLocked(now, at)
	return false
}

// armLocked makes the timer fire at or before at.
func (d *direction) armLocked(now, at int64) {
	if d.armed && d.armedAt <= at {
		return
	}
	delay := time.Duration(max(at-now, 0))
	if d.timer == nil {
		d.timer = d.link.clock.AfterFunc(delay, d.onTimer)
	} else {
		// A firing already under way (Stop reports false) just finds
		// nothing to do or the drain busy; both are harmless.
		d.timer.Stop()
		d.timer.Reset(delay)
	}
	d.armed, d.armedAt = true, at
}

// onTimer runs on the clock's timer goroutine and becomes the drain unless
// one is running (which will then handle what is due) or the link is closed.
func (d *direction) onTimer() {
	d.mu.Lock()
	d.armed = false
	if d.draining || d.closed {
		d.mu.Unlock()
		return
	}
	d.draining = true
	d.mu.Unlock()
	d.drainLoop()
}

// drainLoop delivers every due packet, then arms the timer for the next one
// and ends. The caller has set d.draining, which makes this the only drain of
// the direction; delivery happens without d.mu held.
func (d *direction) drainLoop() {
	d.mu.Lock()
	for !d.closed {
		now := d.link.now()
		d.batch = d.takeDueLocked(now, d.batch[:0])
		if len(d.batch) == 0 {
			if at, ok := d.headLocked(); ok {
				d.armLocked(now, at)
			}
			break
		}
		d.mu.Unlock()
		d.deliver(d.batch)
		d.mu.Lock()
	}
	d.draining = false
	d.idle.Broadcast()
	d.mu.Unlock()
}

// deliver hands batch to the receiving endpoint's dispatcher, each packet in
// a new PacketBuffer that takes the queued bytes and is released after
// delivery.
//
// No lock is held while delivering. The stack holds its own lock while it
// detaches the NIC (Attach(nil), from Stack.Wait) and its receive path may
// take that lock (a RST needs a route), so waiting for one in the other
// deadlocks. A packet may thus reach a NIC that is being removed, which the
// stack drops, as with gVisor's link/pipe.
func (d *direction) deliver(batch []pending) {
	ep := d.dst
	pc := d.link.pcap.Load()
	var ts time.Time
	if pc != nil {
		ts = d.link.clock.Now()
	}
	var pkts, bytes, detached uint64
	ep.mu.RLock()
	disp := ep.dispatcher
	ep.mu.RUnlock()
	for i := range batch {
		p := &batch[i]
		if disp == nil {
			p.buf.Release()
			p.buf = buffer.Buffer{}
			detached++
			continue
		}
		if pc != nil {
			pc.write(ts, &p.buf)
		}
		bytes += uint64(p.buf.Size())
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: p.buf})
		p.buf = buffer.Buffer{} // now owned by pkt
		disp.DeliverNetworkPacket(p.proto, pkt)
		pkt.DecRef()
		pkts++
	}
	d.st.deliveredPackets.Add(pkts)
	d.st.deliveredBytes.Add(bytes)
	d.st.droppedDetached.Add(detached)
}

// close stops the direction; see Link.Close.
func (d *direction) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.armed = false
	for d.draining {
		d.idle.Wait()
	}
	var n uint64
	for d.fifo.len() > 0 {
		p := d.fifo.pop()
		p.buf.Release()
		n++
	}
	for len(d.late) > 0 {
		p := d.late.pop()
		p.buf.Release()
		n++
	}
	d.st.droppedDetached.Add(n)
}
