package stack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// Conn is one MPTCP connection, or a TCP connection after fallback. It is a
// net.Conn: Read and Write may be called concurrently, and deadlines and
// CloseWrite work as on a *net.TCPConn.
//
// Locking: readMu serialises readers, writeMu writers; stateMu guards the
// connection's close and error state and is a leaf (nothing is called while
// holding it). The option shim reads the fields it needs through atomics.
// Order: writeMu → gVisor endpoint locks → subflow locks.
type Conn struct {
	st            *Stack
	role          subflow.Role
	local, remote netip.AddrPort
	token         uint32
	localKey      uint64
	created       time.Time

	remoteKey atomic.Uint64
	checksum  atomic.Bool
	mptcp     atomic.Bool
	fallback  atomic.Uint32 // a subflow.FallbackReason
	// plain: TCP from the handshake on: reads and writes go straight to
	// the one endpoint (a listener's plain connection has no subflow state).
	plain atomic.Bool

	subMu  sync.Mutex
	subs   atomic.Pointer[[]*sub] // copy-on-write list, read without locks
	joined bool                   // ever more than one subflow: fallback impossible (§3.7)

	// The fields below are grouped by who writes them, each group on cache
	// lines of its own: the shim reads the first group for every segment it
	// sends (txState) and the acknowledgment fields for every one that
	// arrives (rxRefs, onDataAck), and a line that another core writes
	// meanwhile (the writer's per write, the reader's per read) would make
	// each of those reads a miss.

	// Read per segment, written rarely.
	_          cpu.CacheLinePad
	rcvNxtOK   atomic.Bool
	wndKnown   atomic.Bool
	finPending atomic.Bool // our DATA_FIN is out and not acknowledged
	fastClose  atomic.Bool // we are aborting: RSTs carry MP_FASTCLOSE
	finSeq     atomic.Uint64

	// The writer's.
	_       cpu.CacheLinePad
	writeMu sync.Mutex
	sndNxt  atomic.Uint64 // next data sequence number to send (the DATA_FIN takes one)
	sendBuf sendBuffer
	pl      payloader   // the current write's (see writeEP)
	probeT  *time.Timer // the writer's probe timer, reused

	// Written when the peer's DATA_ACK or window moves.
	_      cpu.CacheLinePad
	sndUna atomic.Uint64 // the peer's DATA_ACK
	wndEnd atomic.Uint64 // the peer's data-level window ends before this DSN

	// The reader's. rcvNxt is also read per segment (our DATA_ACK): that
	// sharing is the protocol's.
	_        cpu.CacheLinePad
	readMu   sync.Mutex
	rcvNxt   atomic.Uint64 // next data sequence number expected: our DATA_ACK
	ackArmed atomic.Bool
	ofo      ofoQueue
	csumRX   csumStage
	_        cpu.CacheLinePad

	stateMu    sync.Mutex
	peerFIN    bool
	peerFINSeq uint64
	eof        bool
	wrClosed   bool
	// closed is set under stateMu like the fields around it, atomic so
	// that isClosed needs no lock (the readable-event callback asks for
	// every segment).
	closed     atomic.Bool
	finAcked   bool
	lingerZero bool
	err        error
	peerReset  bool // the peer reset every subflow (no MP_FASTCLOSE)
	resets     []ResetInfo
	// failPending: we sent MP_FAIL for the mapping at failDSN and dropped
	// its data (§3.7).
	failPending bool
	failDSN     uint64
	closeTimer  *time.Timer
	finTimer    *time.Timer
	finRTO      time.Duration
	// finishing: both DATA_FINs are acknowledged after Close; the
	// subflows' sending sides are shut, waiting for the peer's FINs
	// (maybeFinish).
	finishing bool
	removed   bool

	readCh  chan struct{}
	writeCh chan struct{} // the writer's state changed: TCP has room, an error, a fallback
	// ackCh: the peer's DATA_ACK or data-level window moved. Only a
	// writer blocked at the data level waits for it: a writer waiting for
	// room in TCP's send buffer woken by every DATA_ACK would retry,
	// take gVisor's endpoint lock from TCP's processor each time and
	// get nothing (gVisor signals room once half its buffer is free).
	ackCh  chan struct{}
	doneCh chan struct{} // closed when the connection is closed or failed
	rd, wd deadline

	work   atomic.Uint32
	queued atomic.Bool
}

// sub is one subflow of a connection: its gVisor endpoint and MPTCP state.
type sub struct {
	ep     tcpip.Endpoint
	wq     *waiter.Queue
	flow   *flow
	sf     *subflow.Subflow
	rEntry waiter.Entry
	wEntry waiter.Entry
	// Reader state, under the connection's readMu.
	rxEOF bool
	// rxErr is set by the reader and also read by the writer (pickSub) and
	// the workers (onSubflowLost).
	rxErr subErr
	stage csumStage
	// csumSeen: a mapping's DSS checksum verified on this subflow, so the
	// path keeps our options: data without a mapping then is not a
	// middlebox stripping options but corruption or injection.
	csumSeen bool
	// Writers handed to gVisor's Read, kept here so that passing them as
	// io.Writer does not allocate on every read.
	sw tcpip.SliceWriter
	lw tcpip.LimitedWriter
}

// ResetInfo is an MP_TCPRST the peer sent (RFC 8684 §3.6).
type ResetInfo struct {
	Reason    uint8
	Transient bool
	Subflow   netip.AddrPort // our side of the subflow it came on
}

var (
	// ErrFastClosed is returned once the peer aborted the connection with
	// MP_FASTCLOSE (RFC 8684 §3.5).
	ErrFastClosed = errors.New("umptcp: connection reset by peer (MP_FASTCLOSE)")
	// ErrAborted is returned after Close with linger 0 or unread data.
	ErrAborted = errors.New("umptcp: connection aborted")
	// ErrReset is returned when the connection's last subflow was reset.
	ErrReset = errors.New("umptcp: connection reset by peer")
	// ErrProtocol is returned when the peer broke the protocol in a way
	// the connection cannot survive (e.g. data with no mapping on a
	// connection that cannot fall back).
	ErrProtocol = errors.New("umptcp: MPTCP protocol violation by peer")
	// ErrCorrupted is returned when data failed its DSS checksum and the
	// peer fell back to TCP without sending it again: the stream cannot
	// continue without corruption.
	ErrCorrupted = errors.New("umptcp: data corrupted in transit (DSS checksum) and not sent again")
)

const (
	workDataAck uint32 = 1 << iota
	workFIN
	workClose
	workAbort
	workDrain
	workReset
	workPureACK
	workFallback
)

func newConn(st *Stack, role subflow.Role, local, remote netip.AddrPort, key uint64, token uint32) *Conn {
	c := &Conn{
		st: st, role: role, local: local, remote: remote, localKey: key, token: token, created: time.Now(),
		readCh:  make(chan struct{}, 1),
		writeCh: make(chan struct{}, 1),
		ackCh:   make(chan struct{}, 1),
		doneCh:  make(chan struct{}),
		finRTO:  200 * time.Millisecond,
	}
	c.rd.init()
	c.wd.init()
	empty := []*sub{}
	c.subs.Store(&empty)
	_, idsn := options.TokenIDSN(key)
	c.sndNxt.Store(idsn + 1)
	c.sndUna.Store(idsn + 1)
	c.sendBuf.init(idsn+1, st.cfg.SendBuffer)
	return c
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *Conn) subList() []*sub { return *c.subs.Load() }

// addSub attaches a subflow; ep may be nil for a responder's subflow until
// it is accepted (attach).
func (c *Conn) addSub(s *sub) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	old := c.subList()
	if len(old) > 0 {
		c.joined = true
	}
	l := append(append(make([]*sub, 0, len(old)+1), old...), s)
	c.subs.Store(&l)
}

// attach gives a subflow its gVisor endpoint and subscribes to its events.
func (c *Conn) attach(s *sub, ep tcpip.Endpoint, wq *waiter.Queue) {
	s.ep, s.wq = ep, wq
	ep.SocketOptions().SetDelayOption(false)
	s.rEntry = waiter.NewFunctionEntry(waiter.ReadableEvents|waiter.EventHUp|waiter.EventErr, func(waiter.EventMask) {
		notify(c.readCh)
		if c.isClosed() {
			c.queueWork(workDrain)
		}
	})
	s.wEntry = waiter.NewFunctionEntry(waiter.WritableEvents|waiter.EventHUp|waiter.EventErr, func(waiter.EventMask) {
		notify(c.writeCh)
	})
	wq.EventRegister(&s.rEntry)
	wq.EventRegister(&s.wEntry)
}

// onEstablished records the peer's key once the handshake negotiated MPTCP.
func (c *Conn) onEstablished(remoteKey uint64, checksum bool) {
	c.remoteKey.Store(remoteKey)
	c.checksum.Store(checksum)
	_, idsn := options.TokenIDSN(remoteKey)
	c.rcvNxt.Store(idsn + 1)
	c.rcvNxtOK.Store(true)
	if !c.mptcp.Swap(true) {
		c.st.counters.MPCurrEstab.Add(1)
	}
}

// txState is what the shim stamps on the connection's outgoing segments.
func (c *Conn) txState() subflow.ConnState {
	return subflow.ConnState{
		DataAck: c.rcvNxt.Load(), DataAckOK: c.rcvNxtOK.Load(),
		DataFIN: c.finPending.Load(), DataFINSeq: c.finSeq.Load(),
		FastClose: c.fastClose.Load(),
	}
}

func (c *Conn) rxRefs() subflow.Refs {
	return subflow.Refs{RcvNxt: c.rcvNxt.Load(), SndUna: c.sndUna.Load()}
}

// fellBack reports whether the connection is plain TCP now.
func (c *Conn) fellBack() bool { return c.plain.Load() || c.fallback.Load() != 0 }

// canFallback: only a connection that never had a second subflow can turn
// into plain TCP (§3.7).
func (c *Conn) canFallback() bool {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	return !c.joined
}

// onFallback makes the connection plain TCP from now on: the data level
// stops waiting for DATA_ACKs, which will not come (Linux does the same:
// mptcp_incoming_options on fallback).
func (c *Conn) onFallback(r subflow.FallbackReason) {
	if r == subflow.NoFallback || !c.fallback.CompareAndSwap(0, uint32(r)) {
		return
	}
	if c.mptcp.Swap(false) {
		c.st.counters.MPCurrEstab.Add(^uint64(0))
	}
	for _, s := range c.subList() {
		s.sf.SetFallback(r)
	}
	// A DATA_FIN not yet acknowledged will not be: the worker turns it
	// into a TCP FIN (and finishes a closed connection as TCP).
	c.finPending.Store(false)
	c.queueWork(workFallback)
	notify(c.writeCh)
	notify(c.readCh)
}

// finishFallback runs on the worker after a fallback: a connection whose
// DATA_FIN was pending closes its subflows' sending side with a TCP FIN, as
// CloseWrite does on a plain connection; a closed one is finished as TCP.
func (c *Conn) finishFallback() {
	c.stateMu.Lock()
	closed, wrClosed := c.closed.Load(), c.wrClosed
	c.stateMu.Unlock()
	switch {
	case closed:
		c.closeSubflowsAsTCP(false)
		c.st.removeConn(c)
	case wrClosed:
		for _, s := range c.subList() {
			if s.ep != nil {
				s.ep.Shutdown(tcpip.ShutdownWrite)
			}
		}
	}
}

// dataFINAcked reports whether the peer acknowledged our DATA_FIN: we
// send nothing more at the data level.
func (c *Conn) dataFINAcked() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.finAcked
}

// onSubflowReset is told that the peer reset the subflow of f with a RST
// TCP accepts. When no subflow is left the connection fails, as Linux's
// MPTCP socket takes the error of its last subflow: Read and Write return
// ErrReset and the connection leaves the stack at once.
func (c *Conn) onSubflowReset(f *flow) {
	for _, s := range c.subList() {
		if s.flow != nil && !s.flow.peerReset.Load() {
			return
		}
	}
	if c.mptcp.Swap(false) {
		c.st.counters.MPCurrEstab.Add(^uint64(0))
	}
	// Writes fail at once; reads first take what TCP received before the
	// RST (gVisor keeps it readable, as Linux's TCP does) and then get
	// ErrReset from the subflow. The worker frees the connection once
	// nothing is left to read.
	c.stateMu.Lock()
	c.peerReset = true
	c.stateMu.Unlock()
	notify(c.readCh)
	notify(c.writeCh)
	c.queueWork(workReset)
}

// onDataAck handles the peer's DATA_ACK and window (§3.3.2, §3.3.4).
func (c *Conn) onDataAck(ack, wnd uint64) {
	if int64(ack-c.sndNxt.Load()) > 0 {
		return // acknowledges data never sent: ignore, as Linux does
	}
	end := ack + wnd
	if c.wndKnown.Load() && int64(ack-c.sndUna.Load()) <= 0 && int64(end-c.wndEnd.Load()) <= 0 {
		// Nothing moved, as on every data segment of a one-way transfer
		// towards us: no state to write, no writer to wake.
		return
	}
	for {
		una := c.sndUna.Load()
		if int64(ack-una) <= 0 || c.sndUna.CompareAndSwap(una, ack) {
			break
		}
	}
	for {
		e := c.wndEnd.Load()
		if (c.wndKnown.Load() && int64(end-e) <= 0) || c.wndEnd.CompareAndSwap(e, end) {
			break
		}
	}
	c.wndKnown.Store(true)
	// Give acknowledged send buffer chunks back now if no writer holds the
	// buffer (a blocked writer frees them itself): an idle connection then
	// keeps no 64 KiB chunk for bytes already acknowledged.
	if c.writeMu.TryLock() {
		c.sendBuf.ackedTo(c.sndUna.Load())
		c.writeMu.Unlock()
	}
	notify(c.ackCh)
	if c.finPending.Load() && int64(ack-c.finSeq.Load()) > 0 {
		c.finPending.Store(false)
		c.stateMu.Lock()
		c.finAcked = true
		if c.finTimer != nil {
			c.finTimer.Stop()
		}
		c.stateMu.Unlock()
		c.queueWork(workClose)
	}
}

// onPeerDataFIN records the peer's DATA_FIN; the reader reaches it.
func (c *Conn) onPeerDataFIN(seq uint64) {
	c.stateMu.Lock()
	if !c.peerFIN {
		c.peerFIN, c.peerFINSeq = true, seq
	}
	closed := c.closed.Load()
	c.stateMu.Unlock()
	notify(c.readCh)
	if closed {
		c.queueWork(workDrain)
	}
}

func (c *Conn) onPeerReset(s *flow, reason, flags uint8) {
	c.stateMu.Lock()
	if len(c.resets) < 16 {
		c.resets = append(c.resets, ResetInfo{Reason: reason, Transient: flags&options.TCPRstFlagTransient != 0, Subflow: s.local})
	}
	c.stateMu.Unlock()
}

func (c *Conn) setErr(err error) {
	c.stateMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.stateMu.Unlock()
	notify(c.readCh)
	notify(c.writeCh)
}

func (c *Conn) getErr() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.err
}

func (c *Conn) isClosed() bool { return c.closed.Load() }

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.isClosed() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.rd.expired() {
			// net.Conn: once the deadline passed, I/O fails even if it
			// could succeed.
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		n, err := c.readOnce(p)
		if n > 0 {
			c.afterRead()
			return n, nil
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, c.opErr("read", err)
		}
		if len(p) == 0 {
			return 0, nil
		}
		if err := c.wait(c.readCh, &c.rd); err != nil {
			return 0, c.opErr("read", err)
		}
	}
}

// wait blocks until ch is signalled, the deadline passes or the connection
// is closed.
func (c *Conn) wait(ch chan struct{}, d *deadline) error {
	select {
	case <-ch:
		return nil
	case <-d.done():
		return os.ErrDeadlineExceeded
	case <-c.doneCh:
		return nil // the caller finds the error or EOF
	}
}

// readOnce reads what is ready without blocking.
func (c *Conn) readOnce(p []byte) (int, error) {
	if c.plain.Load() {
		return c.readPlain(p)
	}
	for {
		if n := c.ofo.take(p, &c.rcvNxt); n > 0 {
			return n, nil
		}
		if c.reachedFIN() {
			return 0, io.EOF
		}
		if err := c.getErr(); err != nil {
			return 0, err
		}
		progress, allEOF := false, true
		for _, s := range c.subList() {
			if s.ep == nil {
				allEOF = false
				continue
			}
			if s.rxEOF || s.rxErr.load() != nil {
				continue
			}
			allEOF = false
			n, moved := c.readSub(s, p)
			if n > 0 {
				// Fill p across mappings while the data is in order.
				for n < len(p) {
					k, _ := c.readSub(s, p[n:])
					if k == 0 {
						break
					}
					n += k
				}
				return n, nil
			}
			// A subflow that just met its end or an error is progress
			// too: the next round sees it done (its readable event was
			// consumed by the wait that led here).
			progress = progress || moved || s.rxEOF || s.rxErr.load() != nil
		}
		if allEOF && len(c.subList()) > 0 {
			// Every subflow is finished and no DATA_FIN came: Linux
			// treats that as the end of the stream (mptcp_check_for_eof).
			for _, s := range c.subList() {
				if err := s.rxErr.load(); err != nil {
					return 0, err
				}
			}
			return 0, io.EOF
		}
		if !progress {
			return 0, nil
		}
	}
}

// reachedFIN reports EOF once every byte before the peer's DATA_FIN was
// read, and acknowledges the DATA_FIN (§3.3.3).
func (c *Conn) reachedFIN() bool {
	c.stateMu.Lock()
	if c.eof {
		c.stateMu.Unlock()
		return true
	}
	if !c.peerFIN || c.rcvNxt.Load() != c.peerFINSeq {
		c.stateMu.Unlock()
		return false
	}
	c.eof = true
	c.rcvNxt.Store(c.peerFINSeq + 1)
	c.stateMu.Unlock()
	c.queueWork(workDataAck | workClose)
	return true
}

// readSub moves data from one subflow: into p when it is the next data in
// sequence, into the out-of-order queue when it is later, nowhere when it
// is a duplicate. moved reports whether anything was consumed.
func (c *Conn) readSub(s *sub, p []byte) (n int, moved bool) {
	// One read from TCP takes the bytes of every mapping that continues the
	// one before at both levels (a bulk transfer's mappings do), not one
	// read per mapping: each gVisor Read and ModerateRecvBuf takes the
	// endpoint's lock that its segment processing wants too.
	m, rel, remaining, ok := s.sf.NextRXRun(max(len(p), subflow.MaxMappingLen))
	if !ok {
		return 0, c.unmapped(s)
	}
	if c.checksum.Load() && !m.Infinite {
		return c.readChecked(s, p, m, rel)
	}
	dsn := m.DSN + uint64(rel-m.SSN)
	next := c.rcvNxt.Load()
	if m.Infinite && dsn != next {
		// After a fallback the subflow is plain TCP: its bytes continue
		// the data exactly, or nothing can be read correctly any more. A
		// gap is data we dropped for a failed DSS checksum that the peer
		// did not send again (Linux delivers such data; we refuse to); any
		// other mismatch is a peer breaking the protocol.
		c.st.counters.DSSCorruptionReset.Add(1)
		c.stateMu.Lock()
		failed := c.failPending
		c.stateMu.Unlock()
		if failed {
			c.setErr(ErrCorrupted)
		} else {
			c.setErr(ErrProtocol)
		}
		s.sf.SetResetReason(options.TCPRstMPTCPError)
		c.abortSubflows()
		return 0, false
	}
	switch d := int64(dsn - next); {
	case d == 0:
		k := min(len(p), remaining)
		got := c.readEP(s, p[:k])
		if got > 0 {
			s.sf.Consumed(got)
			c.rcvNxt.Store(next + uint64(got))
			s.ep.ModerateRecvBuf(got)
		}
		return got, false
	case d < 0:
		k := int(min(uint64(remaining), uint64(-d)))
		got := c.discardEP(s, k)
		if got > 0 {
			s.sf.Consumed(got)
			c.st.counters.DuplicateData.Add(1)
		}
		return 0, got > 0
	default:
		k := min(remaining, c.ofo.room(c.st.cfg.ReceiveBuffer))
		if k <= 0 {
			return 0, false
		}
		buf := make([]byte, k)
		got := c.readEP(s, buf)
		if got > 0 {
			s.sf.Consumed(got)
			c.ofo.insert(dsn, buf[:got], next)
			c.st.counters.OFOQueue.Add(1)
		}
		return 0, got > 0
	}
}

// readEP reads into p from the subflow's endpoint, recording its end or
// failure.
func (c *Conn) readEP(s *sub, p []byte) int {
	s.sw = p
	res, err := s.ep.Read(&s.sw, tcpip.ReadOptions{})
	s.sw = nil
	c.noteReadErr(s, err)
	return res.Count
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (c *Conn) discardEP(s *sub, n int) int {
	s.lw = tcpip.LimitedWriter{W: discard{}, N: int64(n)}
	res, err := s.ep.Read(&s.lw, tcpip.ReadOptions{})
	c.noteReadErr(s, err)
	return res.Count
}

func (c *Conn) noteReadErr(s *sub, err tcpip.Error) {
	if _, ok := err.(*tcpip.ErrClosedForReceive); ok && resetEndpoint(s.ep) {
		// A reset whose error a Write took first: gVisor reports an
		// endpoint's hard error once, to Read or Write, then only
		// "closed". Not an end of stream.
		err = &tcpip.ErrConnectionReset{}
	}
	switch err.(type) {
	case nil, *tcpip.ErrWouldBlock:
	case *tcpip.ErrClosedForReceive:
		s.rxEOF = true
	case *tcpip.ErrConnectionReset:
		// gVisor took a RST the shim may not have judged acceptable.
		s.rxErr.store(ErrReset)
		s.sf.MarkReset()
		if s.flow != nil {
			s.flow.peerReset.Store(true)
			c.onSubflowReset(s.flow)
		}
	default:
		s.rxErr.store(errors.New(err.String()))
	}
}

// subErr is an error that one goroutine sets and others read.
type subErr struct{ p atomic.Pointer[error] }

func (e *subErr) load() error {
	if p := e.p.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *subErr) store(err error) { e.p.Store(&err) }

// resetEndpoint reports whether ep ended in an error (a RST, an abort)
// rather than by a FIN.
func resetEndpoint(ep tcpip.Endpoint) bool {
	return tcp.EndpointState(ep.State()) == tcp.StateError
}

// unmapped handles a subflow whose next byte has no mapping: nothing there
// yet, the end of the subflow, or data the peer sent without a mapping
// (options stripped): then fall back if the connection can (§3.7, as
// Linux's subflow_check_data_avail maps it to the next expected DSN), or
// reset the subflow.
func (c *Conn) unmapped(s *sub) bool {
	var one [1]byte
	w := tcpip.SliceWriter(one[:])
	res, err := s.ep.Read(&w, tcpip.ReadOptions{Peek: true})
	if err != nil {
		c.noteReadErr(s, err)
		return s.rxEOF || s.rxErr.load() != nil
	}
	if res.Count == 0 {
		return false
	}
	// The shim records a segment's mapping before gVisor queues its data:
	// data seen now has its mapping in the table already if it came with
	// one. Look again before concluding it came without (NextRX may have
	// run before that segment arrived).
	if _, _, ok := s.sf.NextRX(); ok {
		return true
	}
	// Fall back only where that cannot deliver bad data: never after a DSS
	// checksum verified on this subflow (Linux's subflow_can_fallback has
	// the same rule), and never after we dropped a mapping that failed its
	// checksum: the unmapped bytes would take the dropped ones' place.
	c.stateMu.Lock()
	dropped := c.failPending
	c.stateMu.Unlock()
	if c.canFallback() && !s.csumSeen && !dropped {
		// One counter per fallback, as Linux counts it: an initiator that
		// has not seen the peer's DSS yet counts MPCapableDataFallback
		// (check_fully_established), any other DssFallback
		// (subflow_check_data_avail). A connection that fell back already
		// (the peer acknowledged our data without DSS) counts nothing more.
		switch {
		case c.fellBack():
		case c.role == subflow.Initiator && !s.sf.FullyEstablished():
			c.st.counters.MPCapableDataFallback.Add(1)
		default:
			c.st.counters.DssFallback.Add(1)
		}
		s.sf.FallBackAt(c.rcvNxt.Load(), subflow.FallbackNoDSS)
		c.onFallback(subflow.FallbackNoDSS)
		return true
	}
	lost := ErrProtocol
	if dropped {
		lost = ErrCorrupted
	}
	s.sf.SetResetReason(options.TCPRstMPTCPError)
	s.rxErr.store(lost)
	s.ep.Abort()
	c.onSubflowLost(lost)
	return true
}

// onSubflowLost fails the connection with err when it has no subflow left
// that can carry data (a subflow we reset for breaking the protocol).
func (c *Conn) onSubflowLost(err error) {
	for _, s := range c.subList() {
		if s.ep != nil && s.rxErr.load() == nil {
			return
		}
	}
	c.setErr(err)
	c.queueWork(workReset)
}

// afterRead arms the timer that makes sure our DATA_ACK reaches the peer
// even if TCP has nothing to send soon (§3.3.2).
func (c *Conn) afterRead() {
	// Load first: a failing CompareAndSwap still takes the line exclusive.
	if c.fellBack() || c.ackArmed.Load() || !c.ackArmed.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(dataAckDelay, func() {
		c.ackArmed.Store(false)
		c.queueWork(workDataAck)
	})
}

// dataAckDelay is how long a DATA_ACK may wait for a TCP segment to carry
// it before the shim sends a pure ACK (Linux's delayed ACK is 40 ms; this
// keeps a sender's window open sooner).
const dataAckDelay = 5 * time.Millisecond

func (c *Conn) readPlain(p []byte) (int, error) {
	subs := c.subList()
	if len(subs) == 0 || subs[0].ep == nil {
		return 0, nil
	}
	s := subs[0]
	w := tcpip.SliceWriter(p)
	res, err := s.ep.Read(&w, tcpip.ReadOptions{})
	switch err.(type) {
	case nil:
		s.ep.ModerateRecvBuf(res.Count)
		c.rcvNxt.Add(uint64(res.Count)) // for Info: bytes read
		if s.sf != nil {
			s.sf.Consumed(res.Count)
		}
		return res.Count, nil
	case *tcpip.ErrWouldBlock:
		return 0, nil
	case *tcpip.ErrClosedForReceive:
		if resetEndpoint(s.ep) {
			return 0, ErrReset // see noteReadErr
		}
		return 0, io.EOF
	case *tcpip.ErrConnectionReset:
		return 0, ErrReset
	default:
		return 0, errors.New(err.String())
	}
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	total := 0
	probe := minProbeDelay
	for len(b) > 0 {
		if err := c.writeErr(); err != nil {
			return total, c.opErr("write", err)
		}
		if c.wd.expired() {
			return total, c.opErr("write", os.ErrDeadlineExceeded)
		}
		n, dataBlocked, err := c.writeOnce(b)
		total += n
		b = b[n:]
		if err != nil {
			return total, c.opErr("write", err)
		}
		if n > 0 {
			probe = minProbeDelay
			continue
		}
		if !dataBlocked {
			if err := c.wait(c.writeCh, &c.wd); err != nil {
				return total, c.opErr("write", err)
			}
			continue
		}
		// Blocked by the peer's data-level window or our send buffer, both
		// of which only the peer's DATA_ACK opens. A peer may leave its
		// DATA_ACK behind (Linux moves data to the connection after
		// acknowledging the segment and sends no ACK for that): probe it
		// with a byte its TCP has acknowledged already, which it answers
		// at once with an ACK carrying its current DATA_ACK. Linux's own
		// sender recovers with its MPTCP-level retransmission timer.
		probed, err := c.waitOrProbe(probe)
		if err != nil {
			return total, c.opErr("write", err)
		}
		if probed {
			probe = min(2*probe, maxProbeDelay)
		}
	}
	return total, nil
}

// Bounds of the delay before probing a peer whose DATA_ACK does not open
// the window.
const (
	minProbeDelay = 2 * time.Millisecond
	maxProbeDelay = time.Second
)

// waitOrProbe waits for the writer's signal; if none comes within d it
// sends a data-level window probe.
func (c *Conn) waitOrProbe(d time.Duration) (probed bool, err error) {
	if rtt := c.subflowRTT(); 2*rtt > d {
		d = min(2*rtt, maxProbeDelay)
	}
	if c.probeT == nil {
		c.probeT = time.NewTimer(d)
	} else {
		c.probeT.Reset(d)
	}
	t := c.probeT
	defer t.Stop()
	select {
	case <-c.writeCh:
		return false, nil
	case <-c.ackCh:
		return false, nil
	case <-c.wd.done():
		return false, os.ErrDeadlineExceeded
	case <-c.doneCh:
		return false, nil
	case <-t.C:
	}
	c.probe()
	return true, nil
}

func (c *Conn) subflowRTT() time.Duration {
	if s := c.pickSub(); s != nil {
		var ti tcpip.TCPInfoOption
		if s.ep.GetSockOpt(&ti) == nil {
			return ti.RTT
		}
	}
	return 0
}

// probe asks the peer for its current DATA_ACK and window (see
// Subflow.Probe): the last byte its TCP acknowledged, sent again, which it
// drops and acknowledges at once, or an empty segment when the send buffer
// no longer holds that byte. Before any byte was acknowledged, a pure ACK
// has to do. The caller holds writeMu (the send buffer).
func (c *Conn) probe() {
	s := c.pickSub()
	if s == nil || s.flow == nil {
		return
	}
	c.st.sendProbe(s.flow, c.sendBuf.byteAt)
}

func (c *Conn) writeErr() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.peerReset:
		return ErrReset
	case c.closed.Load():
		return net.ErrClosed
	case c.wrClosed:
		return errors.New("umptcp: write after CloseWrite")
	}
	return nil
}

// writeOnce hands TCP as much of b as the data-level window, the send
// buffer and a subflow's room allow, without blocking. dataBlocked reports
// that only a DATA_ACK from the peer can let it write more.
func (c *Conn) writeOnce(b []byte) (n int, dataBlocked bool, err error) {
	s := c.pickSub()
	if s == nil {
		return 0, false, nil
	}
	if c.fellBack() {
		// TCP delivers what the send buffer still holds: let it go.
		c.sendBuf.ackedTo(c.sndNxt.Load())
		n, err = c.writeEP(s, b, false)
		return n, false, err
	}
	c.sendBuf.ackedTo(c.sndUna.Load())
	room := min(len(b), c.sendBuf.free())
	if c.wndKnown.Load() {
		if w := int64(c.wndEnd.Load() - c.sndNxt.Load()); w < int64(room) {
			room = int(max(w, 0))
		}
	}
	if room <= 0 {
		return 0, true, nil
	}
	n, err = c.writeEP(s, b[:room], true)
	return n, false, err
}

// pickSub chooses the subflow to send on: the first one that is
// established. (The scheduler of the multipath issue replaces this.)
func (c *Conn) pickSub() *sub {
	for _, s := range c.subList() {
		if s.ep != nil && s.rxErr.load() == nil {
			return s
		}
	}
	return nil
}

func (c *Conn) writeEP(s *sub, b []byte, mapped bool) (int, error) {
	var n int64
	var err tcpip.Error
	if mapped {
		// The payloader lives in the Conn (writeMu held): handing gVisor a
		// pointer to a local one would allocate on every write.
		// gVisor copies a non-atomic write without its endpoint lock, so
		// TCP goes on sending meanwhile, as with gonet; it may then queue
		// fewer bytes than it read (its send buffer shrank) and the
		// mappings of the rest are taken back. With DSS checksums, the
		// mappings' sums cannot be cut: the write is atomic (gVisor holds
		// its lock through the copy and queues all it read).
		csum := c.checksum.Load()
		start := s.sf.NextTXSSN()
		c.pl = payloader{s: s, b: b, dsn: c.sndNxt.Load(), checksum: csum}
		n, err = s.ep.Write(&c.pl, tcpip.WriteOptions{Atomic: csum})
		if int(n) < c.pl.off {
			c.st.counters.UmptcpWritesTrimmed.Add(1)
			s.sf.UnwriteTX(start + uint32(n))
		}
		c.pl = payloader{}
		// The send buffer's copy is made here, outside gVisor's endpoint
		// lock: only this writer reads the buffer, and nothing needs the
		// bytes before Write returns.
		c.sendBuf.append(b[:n])
		c.sndNxt.Add(uint64(n))
	} else {
		r := plainPayload{b: b}
		n, err = s.ep.Write(&r, tcpip.WriteOptions{})
		if n > 0 {
			// Plain TCP: the data level no longer tracks acknowledgment.
			c.sndNxt.Add(uint64(n))
			c.sndUna.Store(c.sndNxt.Load())
		}
	}
	switch err.(type) {
	case nil, *tcpip.ErrWouldBlock:
		return int(n), nil
	}
	if cerr := c.getErr(); cerr != nil {
		// The connection failed (we aborted the subflow): its reason, not
		// the endpoint's.
		return int(n), cerr
	}
	switch err.(type) {
	case *tcpip.ErrClosedForSend:
		return int(n), net.ErrClosed
	case *tcpip.ErrConnectionReset:
		return int(n), ErrReset
	default:
		return int(n), errors.New(err.String())
	}
}

// payloader feeds a write to gVisor and, as gVisor takes the bytes, maps
// them to data sequence numbers (before TCP can send any of them); writeEP
// then keeps them in the send buffer until DATA_ACKed, and takes back the
// mappings of bytes gVisor read but did not queue.
type payloader struct {
	s        *sub
	b        []byte
	off      int
	dsn      uint64 // of b[0]
	checksum bool   // keep each mapping's partial sum (DSS checksums)
}

func (p *payloader) Len() int { return len(p.b) - p.off }

func (p *payloader) Read(dst []byte) (int, error) {
	if p.off == len(p.b) {
		return 0, io.EOF
	}
	n := copy(dst, p.b[p.off:])
	if n == 0 {
		return 0, nil
	}
	p.s.sf.MapWrite(p.dsn+uint64(p.off), p.b[p.off:p.off+n], p.checksum)
	p.off += n
	return n, nil
}

type plainPayload struct {
	b   []byte
	off int
}

func (p *plainPayload) Len() int { return len(p.b) - p.off }
func (p *plainPayload) Read(dst []byte) (int, error) {
	if p.off == len(p.b) {
		return 0, io.EOF
	}
	n := copy(dst, p.b[p.off:])
	p.off += n
	return n, nil
}

// CloseWrite sends DATA_FIN (or, after fallback, a TCP FIN): the peer reads
// EOF once it has every byte written before (§3.3.3).
func (c *Conn) CloseWrite() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.stateMu.Lock()
	if c.wrClosed || c.err != nil {
		c.stateMu.Unlock()
		return nil
	}
	c.wrClosed = true
	c.stateMu.Unlock()
	if c.fellBack() {
		for _, s := range c.subList() {
			if s.ep != nil {
				s.ep.Shutdown(tcpip.ShutdownWrite)
			}
		}
		return nil
	}
	seq := c.sndNxt.Load()
	c.finSeq.Store(seq)
	c.sndNxt.Store(seq + 1)
	c.finPending.Store(true)
	c.sendFIN()
	return nil
}

// sendFIN sends the DATA_FIN on an option-only ACK, as Linux does, and
// arms its retransmission until the peer acknowledges it.
func (c *Conn) sendFIN() {
	if !c.finPending.Load() {
		return
	}
	c.sendPureACK()
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.finAcked || c.removed {
		return
	}
	rto := c.finRTO
	c.finRTO = min(2*c.finRTO, 30*time.Second)
	if c.finTimer == nil {
		c.finTimer = time.AfterFunc(rto, func() { c.queueWork(workFIN) })
	} else {
		c.finTimer.Reset(rto)
	}
}

// sendPureACK sends an option-only ACK on the first subflow that can.
func (c *Conn) sendPureACK() bool {
	for _, s := range c.subList() {
		if s.ep != nil && c.st.sendPureACK(s.flow) {
			return true
		}
	}
	return false
}

// Close implements net.Conn. Unread data or SetLinger(0) abort the
// connection with MP_FASTCLOSE (RFC 8684 §3.5), as Linux does; otherwise
// Close sends DATA_FIN and the connection finishes in the background:
// once both DATA_FINs are acknowledged the subflows send their FINs and
// close when the peer's arrive (maybeFinish); CloseTimeout bounds it all.
func (c *Conn) Close() error {
	c.stateMu.Lock()
	if c.closed.Load() {
		c.stateMu.Unlock()
		return nil
	}
	c.closed.Store(true)
	linger0 := c.lingerZero
	failed := c.err != nil || c.peerReset
	c.stateMu.Unlock()
	c.rd.set(time.Time{})
	c.wd.set(time.Time{})
	close(c.doneCh)

	switch {
	case c.fellBack():
		c.closeSubflowsAsTCP(linger0)
		c.st.removeConn(c)
		return nil
	case failed:
		c.abortSubflows()
		c.st.removeConn(c)
		return nil
	case linger0 || c.unreadData():
		c.abort()
		return nil
	}
	c.CloseWrite()
	c.stateMu.Lock()
	c.closeTimer = time.AfterFunc(c.st.cfg.CloseTimeout, func() { c.queueWork(workAbort) })
	c.stateMu.Unlock()
	c.queueWork(workDrain | workClose)
	return nil
}

// unreadData reports whether data arrived that the application has not
// read. Data the peer sent again that the connection has already is not:
// Linux fast-closes on close() only when the application could read
// something (mptcp_data_avail), and a peer reinjects data whose DATA_ACK
// lags, also after its DATA_FIN.
func (c *Conn) unreadData() bool {
	if c.readMu.TryLock() {
		c.dropDuplicates()
		c.readMu.Unlock()
	}
	if c.ofo.size.Load() > 0 {
		return true
	}
	for _, s := range c.subList() {
		if s.ep == nil {
			continue
		}
		if n, err := s.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption); err == nil && n > 0 {
			return true
		}
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.peerFIN && !c.eof && c.rcvNxt.Load() != c.peerFINSeq
}

// dropDuplicates takes out of the subflows the mapped data that lies
// wholly before rcvNxt: sent again by the peer, read already. The caller
// holds readMu.
func (c *Conn) dropDuplicates() {
	if c.plain.Load() {
		return
	}
	next := c.rcvNxt.Load()
	for _, s := range c.subList() {
		if s.ep == nil || s.rxEOF || s.rxErr.load() != nil || s.stage.active {
			continue
		}
		for i := 0; i < 64; i++ {
			m, rel, ok := s.sf.NextRX()
			if !ok || m.Infinite {
				break
			}
			dsn := m.DSN + uint64(rel-m.SSN)
			remaining := int(m.End() - rel)
			if int64(dsn+uint64(remaining)-next) > 0 {
				break // not all old
			}
			got := c.discardEP(s, remaining)
			if got == 0 {
				break
			}
			s.sf.Consumed(got)
			c.st.counters.DuplicateData.Add(1)
		}
	}
}

// abort resets every subflow with MP_FASTCLOSE and MP_TCPRST (§3.5).
func (c *Conn) abort() {
	c.setErr(ErrAborted)
	if !c.fellBack() && c.mptcp.Load() {
		c.fastClose.Store(true)
	}
	c.abortSubflows()
	c.st.removeConn(c)
}

// closeSubflowsAsTCP ends a fallen-back connection's subflows as TCP's
// close does: with a RST when abort is set or data is left unread, with a
// FIN otherwise.
func (c *Conn) closeSubflowsAsTCP(abort bool) {
	if abort || c.unreadData() {
		c.abortSubflows()
		return
	}
	for _, s := range c.subList() {
		if s.ep != nil {
			s.ep.Close()
		}
	}
}

func (c *Conn) abortSubflows() {
	for _, s := range c.subList() {
		if s.ep != nil {
			s.ep.Abort()
		}
	}
}

// SetLinger sets the behaviour of Close like net.TCPConn.SetLinger: with
// sec == 0, Close aborts the connection (MP_FASTCLOSE). Other values keep the
// default orderly close.
func (c *Conn) SetLinger(sec int) error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.lingerZero = sec == 0
	return nil
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return tcpAddr(c.local) }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return tcpAddr(c.remote) }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// MultipathTCP reports whether the connection uses MPTCP, like
// net.TCPConn.MultipathTCP: false for a connection that fell back to TCP.
func (c *Conn) MultipathTCP() bool { return c.mptcp.Load() && !c.fellBack() }

func (c *Conn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// queueWork asks the stack's worker to do w for this connection.
func (c *Conn) queueWork(w uint32) {
	c.work.Or(w)
	if !c.queued.Swap(true) {
		c.st.enqueue(c)
	}
}

// doWork runs on the stack's worker goroutine.
func (c *Conn) doWork() {
	c.queued.Store(false)
	w := c.work.Swap(0)
	c.stateMu.Lock()
	removed := c.removed
	c.stateMu.Unlock()
	if removed {
		// Timers and events that fire after the connection left the stack
		// have nothing to act on: no segment may go out on its subflows.
		return
	}
	if w&workAbort != 0 {
		c.stateMu.Lock()
		finishing := c.finishing
		c.stateMu.Unlock()
		if finishing {
			// Both DATA_FINs were acknowledged: the close was orderly,
			// only the peer's subflow FINs are missing.
			c.maybeFinish(true)
		} else {
			c.abort()
		}
		return
	}
	if w&workReset != 0 {
		// The peer fast-closed the connection, or a subflow must be reset
		// for breaking the protocol: RST every subflow, then forget it.
		// After a plain RST from the peer, wait until the application has
		// read what TCP received before it (or closed): the reader's
		// ErrReset from the subflow queues this again.
		c.stateMu.Lock()
		keep := c.err == nil && c.peerReset && !c.closed.Load()
		c.stateMu.Unlock()
		if keep && c.unreadData() {
			return
		}
		c.setErr(ErrReset)
		c.abortSubflows()
		c.st.removeConn(c)
		return
	}
	if w&workFallback != 0 {
		c.finishFallback()
		c.stateMu.Lock()
		removed = c.removed
		c.stateMu.Unlock()
		if removed {
			return
		}
	}
	if w&workDrain != 0 {
		c.drain()
	}
	if w&workFIN != 0 {
		c.sendFIN()
	}
	if w&workPureACK != 0 {
		c.sendPureACK()
	} else if w&workDataAck != 0 {
		c.sendDataAckIfNeeded()
	}
	if w&workClose != 0 {
		c.maybeFinish(false)
	}
}

// sendDataAckIfNeeded sends a pure ACK when no segment carried our latest
// DATA_ACK.
func (c *Conn) sendDataAckIfNeeded() {
	if c.fellBack() || !c.rcvNxtOK.Load() {
		return
	}
	want := c.rcvNxt.Load()
	for _, s := range c.subList() {
		if sent, ok := s.sf.SentDataAck(); ok && sent == want {
			return
		}
	}
	c.sendPureACK()
}

// drain reads and drops what arrives after Close, so that the peer can
// finish its side: its data is acknowledged and its DATA_FIN reached.
func (c *Conn) drain() {
	if !c.isClosed() || !c.readMu.TryLock() {
		return
	}
	var buf [16 << 10]byte
	for i := 0; i < 64; i++ {
		n, err := c.readOnce(buf[:])
		if n == 0 || err != nil {
			break
		}
	}
	c.readMu.Unlock()
	c.sendDataAckIfNeeded()
	c.maybeFinish(false)
}

// maybeFinish ends the subflows once the connection is closed and both
// DATA_FINs are acknowledged (Linux closes subflows at that point too).
//
// It shuts down only their sending side at first, and closes them when the
// peer's subflow FINs arrive (or when CloseTimeout passes: force). Until
// then what arrives is read and dropped, so TCP acknowledges it with our
// final DATA_ACK. A peer whose DATA_ACK from us was lost or late sends its
// unacknowledged data again at the data level, as new bytes on a subflow
// (Linux's __mptcp_retrans once TCP has nothing outstanding); a closed
// gVisor endpoint answers data past its RCV.NXT with a RST, and the peer
// would see our orderly close end in MP_TCPRST.
func (c *Conn) maybeFinish(force bool) {
	c.stateMu.Lock()
	done := c.closed.Load() && c.finAcked && c.eof && !c.removed
	first := done && !c.finishing
	if first {
		c.finishing = true
	}
	c.stateMu.Unlock()
	if !done {
		return
	}
	if first {
		c.sendDataAckIfNeeded()
	}
	c.readMu.Lock()
	ended := true
	for _, s := range c.subList() {
		if s.ep == nil {
			continue
		}
		// Whatever TCP holds now is data sent again; closing an endpoint
		// with unread bytes would reset the subflow.
		for i := 0; i < 64 && c.discardEP(s, 1<<20) > 0; i++ {
		}
		if first {
			s.ep.Shutdown(tcpip.ShutdownWrite)
		}
		if !s.rxEOF && s.rxErr.load() == nil {
			ended = false
		}
	}
	c.readMu.Unlock()
	if !ended && !force {
		return
	}
	for _, s := range c.subList() {
		if s.ep != nil {
			s.ep.Close()
		}
	}
	c.st.removeConn(c)
}

// release stops timers and frees buffers; called once by the stack when
// the connection leaves it.
func (c *Conn) release() {
	c.stateMu.Lock()
	c.removed = true
	if c.finTimer != nil {
		c.finTimer.Stop()
	}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.stateMu.Unlock()
	if c.mptcp.Swap(false) {
		c.st.counters.MPCurrEstab.Add(^uint64(0))
	}
	for _, s := range c.subList() {
		if s.wq != nil {
			s.wq.EventUnregister(&s.rEntry)
			s.wq.EventUnregister(&s.wEntry)
		}
	}
	if c.writeMu.TryLock() {
		c.sendBuf.release()
		c.writeMu.Unlock()
	}
}

// deadline is a resettable deadline for one direction, as a channel that
// closes when it passes (the pattern of gVisor's gonet adapter).
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

func (d *deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	select {
	case <-d.done():
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		d.ch = make(chan struct{}) // the old timer fired: a fresh channel
	}
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	d.timer = nil
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur <= 0 {
		close(d.ch)
		return
	} else {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
	}
}
