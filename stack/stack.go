// Package stack is umptcp's public API: a userspace Multipath TCP stack
// (RFC 8684) on gVisor's netstack, with net.Conn and net.Listener values.
//
// Each subflow is a plain gVisor TCP endpoint. An option shim on every link
// endpoint adds MPTCP options to the subflows' segments and parses them on
// the way in; a data-level connection (Conn) above the subflows numbers
// the bytes, reassembles them, and handles DATA_ACK, DATA_FIN, fallback and
// fast close. See DESIGN.md for the picture.
package stack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// Link is one network interface of a stack: a gVisor link endpoint (a TUN
// device from package tun, an emulated path from package emu, or any other)
// and the addresses the stack owns on it.
type Link struct {
	// Name names the interface in Info and errors.
	Name string
	// Endpoint carries raw IPv4/IPv6 packets.
	Endpoint gstack.LinkEndpoint
	// Addrs are the stack's addresses on this link; each prefix also
	// routes its subnet through the link.
	Addrs []netip.Prefix
	// Default routes every other destination through this link (the
	// first link gets the default route when no link asks for it).
	Default bool
	// TxQueueLen, when positive, puts a transmit queue of that many
	// packets between the stack and Endpoint (DefaultTxQueueLen is a good
	// length): a goroutine of the link then writes to Endpoint, so the
	// goroutine sending a segment does not wait for the write, which on a
	// TUN device is a syscall that runs the host's receive path (see
	// txQueue). 0 writes in the sending goroutine.
	TxQueueLen int
	// NoSoftwareGSO turns off the segmentation offload the stack does for
	// an Endpoint that has none (umptcp's emu and tun endpoints without
	// offloads): gVisor's TCP then sends every segment through its whole
	// send path rather than up to 64 KiB at once for the stack to cut.
	NoSoftwareGSO bool
}

// Config configures a Stack. The zero value of each field is a sensible
// default.
type Config struct {
	Links []Link
	// Checksum asks peers for DSS checksums (flag A, RFC 8684 §3.3.1).
	// The peer may ask for them too; either side's wish is enough.
	Checksum bool
	// SendBuffer bounds the data a connection keeps until the peer
	// acknowledges it at the data level. Default 4 MiB.
	SendBuffer int
	// ReceiveBuffer bounds the data a connection holds out of order at the
	// data level. Default 4 MiB.
	ReceiveBuffer int
	// Rand is the source of keys and nonces; nil means crypto/rand.
	// Tests pass a deterministic reader.
	Rand io.Reader
	// MaxHalfOpen bounds MP_CAPABLE handshakes waiting for their third ACK
	// (state a peer can make us keep with SYNs alone). Default 1024.
	MaxHalfOpen int
	// HalfOpenTimeout drops such handshakes after this long. Default 30 s.
	HalfOpenTimeout time.Duration
	// MaxRXMappings bounds received mappings per subflow. Default 8192.
	MaxRXMappings int
	// CloseTimeout bounds an orderly close: a connection whose peer does
	// not finish within it is aborted (Linux: net.mptcp.close_timeout,
	// 60 s). Once both DATA_FINs are acknowledged it only bounds the wait
	// for the peer's subflow FINs, and the subflows then close without an
	// abort. Default 60 s.
	CloseTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.SendBuffer <= 0 {
		c.SendBuffer = 4 << 20
	}
	if c.ReceiveBuffer <= 0 {
		c.ReceiveBuffer = 4 << 20
	}
	if c.MaxHalfOpen <= 0 {
		c.MaxHalfOpen = 1024
	}
	if c.HalfOpenTimeout <= 0 {
		c.HalfOpenTimeout = 30 * time.Second
	}
	if c.MaxRXMappings <= 0 {
		c.MaxRXMappings = subflow.DefaultMaxRXMappings
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 60 * time.Second
	}
}

// Stack is a userspace MPTCP stack. Create it with New, close it with Close.
type Stack struct {
	cfg      Config
	gs       *gstack.Stack
	shims    []*shim
	flows    flowTable
	counters Counters

	mu        sync.Mutex
	tokens    map[uint32]struct{}
	conns     map[*Conn]struct{}
	listeners map[uint16]*Listener
	closed    bool

	// failTimeout bounds the wait for the peer's answer to our MP_FAIL.
	failTimeout time.Duration

	workMu sync.Mutex
	workQ  []*Conn
	workCh chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New creates a stack on the given links and starts its worker goroutine.
func New(cfg Config) (*Stack, error) {
	cfg.setDefaults()
	if len(cfg.Links) == 0 {
		return nil, errors.New("umptcp: stack needs at least one link")
	}
	gs := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol},
	})
	// SACK is required: with it gVisor sizes segments for 40 bytes of
	// options, leaving room for a DSS next to timestamps (DESIGN.md).
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	// CUBIC, as Linux uses by default: gVisor's default Reno recovers
	// slowly from slow start's overshoot into a bottleneck queue.
	cubic := tcpip.CongestionControlOption("cubic")
	// Loss recovery stays gVisor's default, RACK, despite its flaw after a
	// retransmission timeout (DESIGN.md, TestRTORecoveryAfterBlackhole):
	// gVisor's RFC 6675 recovery (TCPRecovery(0)) has no such flaw but is
	// far slower on low-RTT lossy paths (the interop suite's 2% loss:
	// 16 MB each way in 50 s instead of 4 s).
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &moderate, &cubic} {
		if err := gs.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			gs.Close()
			return nil, fmt.Errorf("umptcp: configuring TCP: %s", err)
		}
	}
	s := &Stack{
		cfg: cfg, gs: gs,
		tokens:      make(map[uint32]struct{}),
		conns:       make(map[*Conn]struct{}),
		listeners:   make(map[uint16]*Listener),
		workCh:      make(chan struct{}, 1),
		stop:        make(chan struct{}),
		failTimeout: 5 * time.Second,
	}
	hasDefault := false
	for _, l := range cfg.Links {
		hasDefault = hasDefault || l.Default
	}
	// fail undoes what New did so far; the caller's endpoints stay open.
	fail := func(err error) (*Stack, error) {
		gs.Close()
		for _, sh := range s.shims {
			sh.stopQueue()
		}
		return nil, err
	}
	var routes []tcpip.Route
	for i, l := range cfg.Links {
		nic := tcpip.NICID(i + 1)
		sh := newShim(s, l.Endpoint, l.TxQueueLen, !l.NoSoftwareGSO)
		s.shims = append(s.shims, sh)
		if err := gs.CreateNICWithOptions(nic, sh, gstack.NICOptions{Name: l.Name}); err != nil {
			return fail(fmt.Errorf("umptcp: link %q: %s", l.Name, err))
		}
		for _, p := range l.Addrs {
			pa := tcpip.ProtocolAddress{
				Protocol:          protoOf(p.Addr()),
				AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(p.Addr()), PrefixLen: p.Bits()},
			}
			if err := gs.AddProtocolAddress(nic, pa, gstack.AddressProperties{}); err != nil {
				return fail(fmt.Errorf("umptcp: link %q: address %s: %s", l.Name, p, err))
			}
			sub, err := tcpip.NewSubnet(toTCPIP(p.Masked().Addr()), tcpip.MaskFromBytes(net4or6Mask(p)))
			if err == nil {
				routes = append(routes, tcpip.Route{Destination: sub, NIC: nic})
			}
		}
		if l.Default || (!hasDefault && i == 0) {
			routes = append(routes,
				tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nic},
				tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nic})
		}
	}
	gs.SetRouteTable(routes)
	s.wg.Add(1)
	go s.routineWorker()
	return s, nil
}

func net4or6Mask(p netip.Prefix) []byte {
	n := 4
	if p.Addr().Is6() {
		n = 16
	}
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// Counters returns the stack's MIB counters.
func (s *Stack) Counters() *Counters { return &s.counters }

// GVisor returns the underlying gVisor stack, for what umptcp does not
// expose (statistics, extra protocols). Do not create TCP endpoints on it
// behind umptcp's back: the shim would treat them as plain TCP.
func (s *Stack) GVisor() *gstack.Stack { return s.gs }

// Close aborts every connection, closes the listeners, stops the worker,
// closes the gVisor stack and the links' endpoints. It waits for every
// goroutine the stack started.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	ls := make([]*Listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, c := range conns {
		c.setErr(net.ErrClosed)
		c.Close()
		c.abortSubflows()
		s.removeConn(c)
	}
	close(s.stop)
	s.wg.Wait()
	s.gs.Close()
	// Removing the NICs closes the link endpoints (a TUN endpoint's reader
	// stops only then); Wait then joins every goroutine gVisor started.
	for i := range s.shims {
		s.gs.RemoveNIC(tcpip.NICID(i + 1))
	}
	s.gs.Wait()
	return nil
}

// routineWorker runs connection work that must not happen on the packet
// path or in a timer: sending option-only ACKs, closing subflows, aborting.
// It also drops half-open handshakes past their timeout. It stops when the
// stack closes.
func (s *Stack) routineWorker() {
	defer s.wg.Done()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-sweep.C:
			s.sweepHalfOpen()
		case <-s.workCh:
			for {
				s.workMu.Lock()
				q := s.workQ
				s.workQ = nil
				s.workMu.Unlock()
				if len(q) == 0 {
					break
				}
				for _, c := range q {
					c.doWork()
				}
			}
		}
	}
}

func (s *Stack) enqueue(c *Conn) {
	s.workMu.Lock()
	s.workQ = append(s.workQ, c)
	s.workMu.Unlock()
	select {
	case s.workCh <- struct{}{}:
	default:
	}
}

// flowGrace is how long a finished connection's flows stay in the table:
// long enough for TCP's FIN exchange and retransmissions.
const flowGrace = 90 * time.Second

func (s *Stack) sweepHalfOpen() {
	for _, f := range s.flows.expired(time.Now(), s.cfg.HalfOpenTimeout, flowGrace) {
		s.flows.remove(f)
		if f.conn.Load() == nil {
			s.releaseToken(f.token)
		}
	}
}

// newKey returns a fresh key whose token no connection of this stack uses,
// and reserves the token (RFC 8684 §3.2: tokens are unique per host).
func (s *Stack) newKey() (uint64, uint32, error) {
	for i := 0; i < 16; i++ {
		key, err := options.GenerateKey(s.cfg.Rand)
		if err != nil {
			return 0, 0, err
		}
		token := options.Token(key)
		s.mu.Lock()
		// Token 0 marks a connection without one (removeConn).
		if _, used := s.tokens[token]; !used && token != 0 {
			s.tokens[token] = struct{}{}
			s.mu.Unlock()
			return key, token, nil
		}
		s.mu.Unlock()
	}
	s.counters.MPFallbackTokenInit.Add(1)
	return 0, 0, errNoUniqueToken
}

// errNoUniqueToken: newKey found no key whose token is unused (§3.2). A
// dial then connects with plain TCP, as Linux does.
var errNoUniqueToken = errors.New("umptcp: no unique token found")

func (s *Stack) releaseToken(t uint32) {
	s.mu.Lock()
	delete(s.tokens, t)
	s.mu.Unlock()
}

func (s *Stack) addConn(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// removeConn forgets a connection once it is finished or aborted.
func (s *Stack) removeConn(c *Conn) {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	if ok && c.token != 0 {
		delete(s.tokens, c.token)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	// The flows stay while TCP finishes (its FIN and RST still get
	// options, late segments still find their subflow); the sweeper drops
	// them after flowGrace.
	now := time.Now()
	for _, sb := range c.subList() {
		if sb.flow != nil {
			sb.flow.retire(now)
		}
	}
	c.release()
}

// sendPureACK sends an option-only ACK on a subflow through its link.
func (s *Stack) sendPureACK(f *flow) bool {
	if sh := s.shimOf(f); sh != nil {
		return sh.sendPureACK(f)
	}
	return false
}

// sendProbe sends a window probe on f (shim.sendProbe).
func (s *Stack) sendProbe(f *flow, byteAt func(dsn uint64, b []byte) bool) {
	if sh := s.shimOf(f); sh != nil {
		sh.sendProbe(f, byteAt)
	}
}

// shimOf returns the shim of the NIC that has f's local address, or nil.
func (s *Stack) shimOf(f *flow) *shim {
	for _, sh := range s.shims {
		if sh.owns(f) {
			return sh
		}
	}
	return nil
}

// owns reports whether the shim's NIC has the flow's local address.
func (sh *shim) owns(f *flow) bool {
	nic := sh.st.gs.CheckLocalAddress(0, protoOf(f.local.Addr()), toTCPIP(f.local.Addr()))
	for i, x := range sh.st.shims {
		if x == sh {
			return nic == tcpip.NICID(i+1)
		}
	}
	return false
}
