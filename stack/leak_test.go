package stack

// Helpers shared by the stack-core tests: test sizes, the goroutine-leak
// check, waits on stack state, a packet tap under the option shim, pairs of
// stacks with taps, and streams of checkable bytes.
//
// Sizes. The large transfers move bulkSize() bytes each way at the same
// time: 256 MiB by default, 1 GiB with -long, 32 MiB with -short, and
// 4 MiB (2 MiB with -short) when the binary is built with -race, where the
// race detector makes every byte many times slower:
//
//	go test ./stack                 # 256 MiB each way
//	go test ./stack -long           # 1 GiB each way
//	go test -race -short ./stack    # small sizes
//
// No test measures time. Waits on asynchronous state (a connection leaving
// its stack, goroutines ending) poll a condition with a bound that only
// turns a hang into a failure; connections get a safety deadline for the
// same reason.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/options"
)

var (
	longFlag = flag.Bool("long", false, "stack tests: move 1 GiB each way in the large transfers")
)

// raceEnabled reports whether the test binary was built with -race (read
// from the build info, so no build-tagged file is needed).
var raceEnabled = func() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}()

// bulkSize is the size of each direction of the large transfers.
func bulkSize() int {
	switch {
	case *longFlag:
		return 1 << 30
	case raceEnabled && testing.Short():
		return 2 << 20
	case raceEnabled:
		return 4 << 20
	case testing.Short():
		return 32 << 20
	}
	return 256 << 20
}

// sized returns n normally, and n/div (at least min) under -short or -race.
func sized(n, div, floor int) int {
	if testing.Short() || raceEnabled {
		return max(n/div, floor)
	}
	return n
}

// slack scales the bounds of the safety waits: the race detector slows
// everything down.
func slack(d time.Duration) time.Duration {
	if raceEnabled {
		return 5 * d
	}
	return d
}

// safetyDeadline bounds every blocking call of a test connection, so that a
// hang becomes a failure instead of a stuck test binary.
func safetyDeadline() time.Time { return time.Now().Add(slack(2 * time.Minute)) }

// waitFor polls cond until it holds or a bound passes.
func waitFor(t testing.TB, what string, cond func() bool) bool {
	t.Helper()
	end := time.Now().Add(slack(20 * time.Second))
	for !cond() {
		if time.Now().After(end) {
			t.Errorf("gave up waiting for %s", what)
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// liveConns returns how many connections the stack still holds.
func liveConns(s *Stack) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// waitConnsGone waits until every connection left the stacks (both
// DATA_FINs done, or aborted) and no MPTCP connection is counted as open.
func waitConnsGone(t testing.TB, stacks ...*Stack) bool {
	t.Helper()
	ok := true
	for i, s := range stacks {
		ok = waitFor(t, fmt.Sprintf("stack %d: connections to leave (MPCurrEstab 0, no conn left)", i), func() bool {
			return liveConns(s) == 0 && s.Counters().MPCurrEstab.Load() == 0
		}) && ok
		if !ok {
			t.Logf("stack %d: %d conns left, MPCurrEstab %d", i, liveConns(s), s.Counters().MPCurrEstab.Load())
			s.mu.Lock()
			for c := range s.conns {
				t.Logf("  left: %v", c.Info())
			}
			s.mu.Unlock()
		}
	}
	return ok
}

// noLeaks records the number of goroutines now and, when the test ends
// (after every cleanup registered later, which closes the stacks and links),
// waits for it to come back down; on failure it prints every goroutine. Call
// it first in a test.
func noLeaks(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		end := time.Now().Add(slack(15 * time.Second))
		for runtime.NumGoroutine() > before {
			if time.Now().After(end) {
				var b strings.Builder
				pprof.Lookup("goroutine").WriteTo(&b, 2)
				t.Errorf("goroutine leak: %d before, %d after closing everything:\n%s", before, runtime.NumGoroutine(), b.String())
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// ---------------------------------------------------------------------------
// Packet tap

// tapEP sits under a stack's option shim (between it and the emulated link):
// it records the packets the stack sends, byte for byte as they leave the
// shim, and may rewrite or drop the packets it delivers to the stack.
type tapEP struct {
	nested.Endpoint
	side byte // 'a' or 'b'
	cap  *capture
	in   atomic.Pointer[inboundHook]
	hold atomic.Pointer[writeHold]
}

// writeHold stops the next write through a tap before it is recorded:
// held is closed when a write arrives, which then waits for release.
type writeHold struct{ held, release chan struct{} }

// holdNextWrite makes the next write through e wait until the returned
// hold is released.
func (e *tapEP) holdNextWrite() *writeHold {
	h := &writeHold{held: make(chan struct{}), release: make(chan struct{})}
	e.hold.Store(h)
	return h
}

// inboundHook sees each packet arriving at a stack (a whole IP packet, a
// private copy). It returns the packet to deliver (the same slice, changed
// or not), or nil to drop it.
type inboundHook func(pkt []byte) []byte

func newTap(side byte, child gstack.LinkEndpoint, c *capture) *tapEP {
	e := &tapEP{side: side, cap: c}
	e.Endpoint.Init(child, e)
	return e
}

// HeadersFromBytes forwards the child's answer: the tap reads outgoing
// packets only as bytes (ToView), so the shim may grow headers in place
// exactly as it does on the bare emulated link.
func (e *tapEP) HeadersFromBytes() bool {
	hb, ok := e.Endpoint.Child().(interface{ HeadersFromBytes() bool })
	return ok && hb.HeadersFromBytes()
}

// WritePackets records what the stack (its shim) sends.
func (e *tapEP) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	if h := e.hold.Swap(nil); h != nil {
		close(h.held)
		<-h.release
	}
	if e.cap != nil && e.cap.on.Load() {
		for _, pkt := range pkts.AsSlice() {
			v := pkt.ToView()
			e.cap.add(e.side, append([]byte(nil), v.AsSlice()...))
			v.Release()
		}
	}
	return e.Endpoint.WritePackets(pkts)
}

// DeliverNetworkPacket lets the inbound hook rewrite or drop a packet.
func (e *tapEP) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	h := e.in.Load()
	if h == nil {
		e.Endpoint.DeliverNetworkPacket(proto, pkt)
		return
	}
	v := pkt.ToView()
	b := append([]byte(nil), v.AsSlice()...)
	v.Release()
	out := (*h)(b)
	if out == nil {
		return
	}
	np := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(out)})
	e.Endpoint.DeliverNetworkPacket(proto, np)
	np.DecRef()
}

func (e *tapEP) setInbound(h inboundHook) {
	if h == nil {
		e.in.Store(nil)
		return
	}
	e.in.Store(&h)
}

// capture holds the packets both taps of a pair recorded, in the order they
// were sent (a packet sent in answer to another is recorded after it).
type capture struct {
	on    atomic.Bool
	start time.Time
	mu    sync.Mutex
	pkts  []wirePkt
}

func (c *capture) add(side byte, raw []byte) {
	p, ok := parseWire(side, raw)
	if !ok {
		return
	}
	p.at = time.Since(c.start)
	c.mu.Lock()
	c.pkts = append(c.pkts, p)
	c.mu.Unlock()
}

// snapshot returns the packets recorded so far.
func (c *capture) snapshot() []wirePkt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wirePkt(nil), c.pkts...)
}

// wirePkt is one recorded TCP segment.
type wirePkt struct {
	from         byte // the side that sent it
	raw          []byte
	v6           bool
	src, dst     []byte
	sport, dport uint16
	flags        uint8
	seq, ack     uint32
	tcpHdr       header.TCP // header and options
	payload      []byte
	opts         options.Segment
	csumOK       bool          // TCP checksum right
	at           time.Duration // when it was sent, since the pair was made
}

func parseWire(side byte, raw []byte) (wirePkt, bool) {
	p := wirePkt{from: side, raw: raw}
	var ipLen, total int
	switch {
	case len(raw) >= header.IPv4MinimumSize && raw[0]>>4 == 4:
		ip := header.IPv4(raw)
		if ip.TransportProtocol() != header.TCPProtocolNumber {
			return p, false
		}
		ipLen, total = int(ip.HeaderLength()), int(ip.TotalLength())
		p.src, p.dst = raw[12:16], raw[16:20]
	case len(raw) >= header.IPv6MinimumSize && raw[0]>>4 == 6:
		ip := header.IPv6(raw)
		if ip.TransportProtocol() != header.TCPProtocolNumber {
			return p, false
		}
		p.v6 = true
		ipLen, total = header.IPv6MinimumSize, header.IPv6MinimumSize+int(ip.PayloadLength())
		p.src, p.dst = raw[8:24], raw[24:40]
	default:
		return p, false
	}
	if total > len(raw) || total < ipLen+header.TCPMinimumSize {
		return p, false
	}
	seg := raw[ipLen:total]
	t := header.TCP(seg)
	off := int(t.DataOffset())
	if off < header.TCPMinimumSize || off > len(seg) {
		return p, false
	}
	p.tcpHdr = t[:off]
	p.payload = seg[off:]
	p.sport, p.dport = t.SourcePort(), t.DestinationPort()
	p.flags = uint8(t.Flags())
	p.seq, p.ack = t.SequenceNumber(), t.AckNumber()
	p.opts.Parse(t.Options(), options.ContextOf(p.flags, len(p.payload)))
	p.csumOK = tcpSum(p.src, p.dst, seg) == 0xffff
	return p, true
}

// tcpSum is the one's-complement sum of a TCP segment and its
// pseudo-header: 0xffff when the checksum is right.
func tcpSum(src, dst, seg []byte) uint16 {
	s := checksum.Checksum(src, 0)
	s = checksum.Checksum(dst, s)
	s = checksum.Combine(s, uint16(header.TCPProtocolNumber))
	s = checksum.Combine(s, uint16(len(seg)))
	return checksum.Checksum(seg, s)
}

// fixTCPChecksum recomputes the TCP checksum of a whole IP packet.
func fixTCPChecksum(raw []byte) {
	var ipLen, total int
	var src, dst []byte
	if raw[0]>>4 == 4 {
		ip := header.IPv4(raw)
		ipLen, total = int(ip.HeaderLength()), int(ip.TotalLength())
		src, dst = raw[12:16], raw[16:20]
	} else {
		ipLen, total = header.IPv6MinimumSize, header.IPv6MinimumSize+int(header.IPv6(raw).PayloadLength())
		src, dst = raw[8:24], raw[24:40]
	}
	seg := header.TCP(raw[ipLen:total])
	seg.SetChecksum(0)
	seg.SetChecksum(^tcpSum(src, dst, seg))
}

func (p *wirePkt) is(f uint8) bool { return p.flags&f == f }
func (p *wirePkt) syn() bool {
	return p.is(uint8(header.TCPFlagSyn)) && !p.is(uint8(header.TCPFlagAck))
}
func (p *wirePkt) synack() bool                           { return p.is(uint8(header.TCPFlagSyn | header.TCPFlagAck)) }
func (p *wirePkt) rst() bool                              { return p.is(uint8(header.TCPFlagRst)) }
func (p *wirePkt) fin() bool                              { return p.is(uint8(header.TCPFlagFin)) }
func (p *wirePkt) opt(st options.Subtype) *options.Option { return p.opts.Find(st) }

func (p *wirePkt) mpc() (options.MPCapable, bool) {
	if o := p.opt(options.SubtypeMPCapable); o != nil {
		return o.MPCapable(), true
	}
	return options.MPCapable{}, false
}

func (p *wirePkt) dss() (options.DSS, bool) {
	if o := p.opt(options.SubtypeDSS); o != nil {
		return o.DSS(), true
	}
	return options.DSS{}, false
}

// malformed reports whether the segment carries an MPTCP option that
// matches no variant for its segment, as a strict (Linux) parser sees it.
func (p *wirePkt) malformed() bool {
	for _, o := range p.opts.List() {
		if o.Malformed {
			return true
		}
	}
	return false
}

func (p *wirePkt) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %c %d>%d %s seq=%d ack=%d win=%d len=%d", p.at.Round(time.Microsecond), p.from, p.sport, p.dport, header.TCPFlags(p.flags), p.seq, p.ack, header.TCP(p.tcpHdr).WindowSize(), len(p.payload))
	for _, o := range p.opts.List() {
		fmt.Fprintf(&b, " %s(%d)", o.Subtype, o.Len())
		switch o.Subtype {
		case options.SubtypeDSS:
			fmt.Fprintf(&b, "%+v", o.DSS())
		case options.SubtypeMPCapable:
			fmt.Fprintf(&b, "%+v", o.MPCapable())
		}
	}
	return b.String()
}

// tpair is two stacks joined by an emulated link with a tap under each
// shim.
type tpair struct {
	*pair
	ta, tb *tapEP
	cap    *capture
}

// pairOpts configures newTPair.
type pairOpts struct {
	v6       bool
	a, b     Config
	ab, ba   emu.Config
	noRecord bool // do not record packets (large transfers)
}

// newTPair builds a pair like newPair, with taps. The stacks and the link
// are closed when the test ends.
func newTPair(t testing.TB, o pairOpts) *tpair {
	t.Helper()
	l, err := emu.NewLink(o.ab, o.ba)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{start: time.Now()}
	c.on.Store(!o.noRecord)
	p := &tpair{pair: &pair{link: l}, cap: c}
	p.ta, p.tb = newTap('a', l.A(), c), newTap('b', l.B(), c)
	pa, pb := netip.MustParsePrefix("10.7.0.1/24"), netip.MustParsePrefix("10.7.0.2/24")
	if o.v6 {
		pa, pb = netip.MustParsePrefix("fd07::1/64"), netip.MustParsePrefix("fd07::2/64")
	}
	p.aAddr, p.bAddr = pa.Addr(), pb.Addr()
	o.a.Links = []Link{{Name: "a", Endpoint: p.ta, Addrs: []netip.Prefix{pa}}}
	o.b.Links = []Link{{Name: "b", Endpoint: p.tb, Addrs: []netip.Prefix{pb}}}
	if p.a, err = New(o.a); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(o.b); err != nil {
		p.a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
		l.Close()
	})
	return p
}

// stacks returns the dialing and the listening stack and the listener's
// address for a connection opened from side 'a' or 'b'.
func (p *pair) roles(from byte) (dialer, listener *Stack, addr netip.Addr) {
	if from == 'a' {
		return p.a, p.b, p.bAddr
	}
	return p.b, p.a, p.aAddr
}

// connect opens one connection from side from ('a' or 'b') to the other
// and returns its two ends: the initiator's and the responder's.
func connect(t testing.TB, p *pair, from byte, port uint16) (cli, srv *Conn) {
	t.Helper()
	dialer, listener, addr := p.roles(from)
	ln, err := listener.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptMPTCP()
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), slack(30*time.Second))
	defer cancel()
	cli, err = dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		ln.Close()
		<-ch
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		cli.Close()
		t.Fatal(r.err)
	}
	cli.SetDeadline(safetyDeadline())
	r.c.SetDeadline(safetyDeadline())
	return cli, r.c
}

// ---------------------------------------------------------------------------
// Streams

// stream is an endless deterministic byte stream: the bytes at any offset
// can be regenerated, so a reader can check what it got without a copy.
type stream struct{ seed uint64 }

// block fills b with the stream's 8-byte-aligned block starting at off
// (a multiple of 8).
func (s stream) at(off int64, b []byte) {
	// Each 8-byte word is a hash of its index: random access, no state.
	w := off / 8
	for i := 0; i < len(b); i += 8 {
		x := uint64(w) + s.seed*0x9e3779b97f4a7c15
		x ^= x >> 30
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		x *= 0x94d049bb133111eb
		x ^= x >> 31
		var word [8]byte
		binary.LittleEndian.PutUint64(word[:], x)
		copy(b[i:], word[:])
		w++
	}
}

// bytes returns the stream's bytes [off, off+n).
func (s stream) bytes(off int64, n int) []byte {
	start := off &^ 7
	buf := make([]byte, int(off-start)+n+8)
	s.at(start, buf)
	return buf[off-start : off-start+int64(n)]
}

// reader returns the first n bytes of the stream as an io.Reader.
func (s stream) reader(n int64) io.Reader { return &streamReader{s: s, n: n} }

type streamReader struct {
	s   stream
	off int64
	n   int64
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), r.n-r.off))
	copy(p, r.s.bytes(r.off, k))
	r.off += int64(k)
	return k, nil
}

// digest returns the SHA-256 of the first n bytes of the stream.
func (s stream) digest(n int64) [32]byte {
	h := sha256.New()
	io.CopyBuffer(h, s.reader(n), make([]byte, 256<<10))
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// checker compares what a connection delivers with the stream, byte for
// byte, and remembers where the first difference was.
type checker struct {
	s     stream
	off   int64
	bad   int64 // offset of the first wrong byte, -1 if none
	h     io.Writer
	sum   func() []byte
	limit int64 // bytes beyond this are unexpected
}

func newChecker(s stream, limit int64) *checker {
	h := sha256.New()
	return &checker{s: s, bad: -1, h: h, sum: func() []byte { return h.Sum(nil) }, limit: limit}
}

func (c *checker) Write(p []byte) (int, error) {
	c.h.Write(p)
	if c.bad < 0 {
		n := int(min(int64(len(p)), max(c.limit-c.off, 0)))
		want := c.s.bytes(c.off, n)
		for i := 0; i < n; i++ {
			if p[i] != want[i] {
				c.bad = c.off + int64(i)
				break
			}
		}
		if c.bad < 0 && n < len(p) {
			c.bad = c.off + int64(n)
		}
	}
	c.off += int64(len(p))
	return len(p), nil
}

// result is one direction of a transfer as its reader saw it.
type result struct {
	n       int64
	sum     [32]byte
	readErr error // the error that ended the read (nil: clean EOF)
	wErr    error // the writer's error
	bad     int64 // first wrong byte, -1 if none
}

// transfer sends up bytes of stream 1 from c to s and down bytes of stream
// 2 from s to c at the same time, each writer then half-closing. Each
// reader reads to EOF (or an error) and checks every byte. wbuf is the
// writers' chunk size.
func transfer(c, s *Conn, up, down int64, wbuf int) (toS, toC result) {
	return transferFrom(c, s, 0, up, 0, down, wbuf)
}

// transferFrom is transfer for streams of which the first fromUp and
// fromDown bytes were exchanged already: it sends the rest.
func transferFrom(c, s *Conn, fromUp, up, fromDown, down int64, wbuf int) (toS, toC result) {
	var wg sync.WaitGroup
	wg.Add(4)
	send := func(conn *Conn, st stream, from, n int64, res *result) {
		defer wg.Done()
		_, err := io.CopyBuffer(onlyWriter{conn}, &streamReader{s: st, off: from, n: n}, make([]byte, wbuf))
		if err == nil {
			err = conn.CloseWrite()
		}
		res.wErr = err
	}
	recv := func(conn *Conn, st stream, from, n int64, res *result) {
		defer wg.Done()
		ck := newChecker(st, n)
		ck.off = from
		if from > 0 {
			// The digest covers the whole stream: feed it what came before.
			io.Copy(ck.h, &streamReader{s: st, n: from})
		}
		res.n, res.readErr = io.CopyBuffer(ck, onlyReader{conn}, make([]byte, 256<<10))
		res.n += from
		copy(res.sum[:], ck.sum())
		res.bad = ck.bad
	}
	go send(c, stream{1}, fromUp, up, &toS)
	go send(s, stream{2}, fromDown, down, &toC)
	go recv(s, stream{1}, fromUp, up, &toS)
	go recv(c, stream{2}, fromDown, down, &toC)
	wg.Wait()
	return toS, toC
}

// onlyWriter and onlyReader hide other methods (ReadFrom, WriteTo) so that
// io.Copy uses the buffer sizes the test chose.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

// checkResult fails the test unless res is a complete, correct transfer of
// n bytes of stream st.
func checkResult(t testing.TB, what string, res result, st stream, n int64) {
	t.Helper()
	if res.wErr != nil {
		t.Errorf("%s: writer: %v", what, res.wErr)
	}
	if res.readErr != nil {
		t.Errorf("%s: reader: %v after %d bytes", what, res.readErr, res.n)
	}
	if res.bad >= 0 {
		t.Errorf("%s: wrong byte at offset %d", what, res.bad)
	}
	if res.n != n {
		t.Errorf("%s: got %d bytes, want %d", what, res.n, n)
	}
	if res.n == n && res.sum != st.digest(n) {
		t.Errorf("%s: SHA-256 differs", what)
	}
}

// readAll reads c to EOF into a buffer.
func readAll(c net.Conn) ([]byte, error) {
	var b bytes.Buffer
	_, err := io.Copy(&b, onlyReader{c})
	return b.Bytes(), err
}

// isTimeout reports whether err is a deadline error as net.Conn users
// check it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

// randBytes returns n pseudo-random bytes.
func randBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sub0Stats returns the first subflow's MPTCP counters.
func (c *Conn) sub0Stats() any {
	if l := c.subList(); len(l) > 0 && l[0].sf != nil {
		return l[0].sf.Stats()
	}
	return nil
}

// errClosedConn is what I/O on a closed connection wraps.
var errClosedConn = net.ErrClosed

// netipAddrPort formats an address and port for Dial.
func netipAddrPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// shortFailTimeout shortens how long the stacks wait for the answer to an
// MP_FAIL before giving up on the connection (5 s), so that tests of
// checksum failures do not wait for it.
func shortFailTimeout(p *pair) {
	p.a.failTimeout = 200 * time.Millisecond
	p.b.failTimeout = 200 * time.Millisecond
}
