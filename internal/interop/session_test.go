//go:build linux

package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/internal/kernelpeer"
	"github.com/umptcp/umptcp/stack"
)

// A session is one connection between umptcp and the kernel in a fresh
// topology, with everything a case looks at around it: the captures, the
// kernel's MIB (nstat) and umptcp's counters before and after, and `ss`
// while the connection is up. open builds it; a case then drives the two
// ends (transfer, or its own choreography); finish waits for both ends to
// be gone and collects a result.

// role says who opens the connection.
type role int

const (
	oursClient   role = iota // umptcp dials the kernel's MPTCP listener
	kernelClient             // the kernel dials umptcp's listener
)

var roles = []role{oursClient, kernelClient}

// families are the address families every case runs in: IPv4 and IPv6
// (case 7: IPv6 end to end, through the middlebox too).
var families = []bool{false, true}

func family(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// eachVariant runs fn as the subtests name/family/role, for both families
// and both roles.
func eachVariant(t *testing.T, name string, fn func(t *testing.T, v6 bool, r role)) {
	t.Helper()
	for _, v6 := range families {
		for _, r := range roles {
			t.Run(name+"/"+family(v6)+"/"+r.String(), func(t *testing.T) { fn(t, v6, r) })
		}
	}
}

func (r role) String() string {
	if r == oursClient {
		return "umptcp-client"
	}
	return "kernel-client"
}

// port is the server's port in every case (each case has its own
// namespaces).
const port = 5001

// Bounds on waits. They only stop a broken run; nothing is measured.
const (
	connectLimit  = 10 * time.Second
	transferLimit = 3 * time.Minute
	closeLimit    = 15 * time.Second
)

// env is what a case sets up around its connection.
type env struct {
	v6        bool
	middlebox bool
	// stack configures umptcp (Links is filled in by the topology).
	stack stack.Config
	// peerSysctls are "key=value" settings for the kernel peer's namespace.
	peerSysctls []string
	// setup runs on the new topology before the captures start and the
	// connection opens: middlebox rules, qdiscs.
	setup func(t *testing.T, tp *Topology)
	// afterHandshake runs once both ends have the connection, before any
	// data is sent.
	afterHandshake func(t *testing.T, tp *Topology)
	// snaplen of the captures: 0 means snapHeaders, -1 whole packets.
	snaplen int
	// lossy: the path drops packets, so the handshake may be sent again
	// and its counters count each copy.
	lossy bool
	// noOffload: the TUN endpoint's generic path, no offloads (see
	// Options.DisableOffload).
	noOffload bool
}

type session struct {
	t    *testing.T
	role role
	env  env
	tp   *Topology
	ours *stack.Conn
	kern *net.TCPConn
	// caps: the kernel's veth, and with a middlebox mid's veth towards ours
	// (what umptcp sent before the middlebox touched it).
	caps       []*capture
	peerBefore map[string]uint64
	oursBefore map[string]uint64
	// hostBefore: the MIB of the kernel under umptcp (ns ours), which only
	// forwards: it must count no MPTCP at all.
	hostBefore        map[string]uint64
	oursAddr, kerAddr netip.AddrPort
	// ssUp is `ss -Mni` in the kernel's namespace once the connection is up.
	ssUp string
	// kernelMPTCP is the kernel socket's MultipathTCP() then.
	kernelMPTCP bool
}

// open builds the topology of e and opens a connection in role r.
func open(t *testing.T, r role, e env) *session {
	t.Helper()
	requireSuite(t)
	tp := New(t, Options{Middlebox: e.middlebox, Stack: e.stack, DisableOffload: e.noOffload})
	s := &session{t: t, role: r, env: e, tp: tp}
	for _, kv := range e.peerSysctls {
		k, v, _ := strings.Cut(kv, "=")
		if err := tp.Peer.Sysctl(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if e.setup != nil {
		e.setup(t, tp)
	}
	snap := e.snaplen
	switch snap {
	case 0:
		snap = snapHeaders
	case -1:
		snap = 0
	}
	dir := captureDir(t)
	s.caps = append(s.caps, startCapture(t, tp.Peer, PeerVeth, dir, "peer", snap))
	if e.middlebox {
		s.caps = append(s.caps, startCapture(t, tp.Mid, MidOursVeth, dir, "mid", snap))
	}
	var err error
	if s.peerBefore, err = tp.Peer.Nstat("MPTcpExt*"); err != nil {
		t.Fatal(err)
	}
	if s.hostBefore, err = tp.Ours.Nstat("MPTcpExt*"); err != nil {
		t.Fatal(err)
	}
	s.oursBefore = tp.Stack.Counters().Snapshot()

	server := netip.AddrPortFrom(PeerAddr(e.v6), port)
	if r == kernelClient {
		server = netip.AddrPortFrom(StackAddr(e.v6), port)
	}
	ctx, cancel := context.WithTimeout(t.Context(), connectLimit)
	defer cancel()
	if r == oursClient {
		s.ours, s.kern, err = connectToKernel(ctx, tp, server)
	} else {
		s.ours, s.kern, err = connectFromKernel(ctx, tp, server)
	}
	if err != nil {
		t.Fatalf("%s: connect: %v", r, err)
	}
	t.Cleanup(func() {
		s.kern.Close()
		s.ours.Close()
	})
	s.oursAddr = addrPort(s.ours.LocalAddr())
	s.kerAddr = addrPort(s.kern.LocalAddr())
	s.kernelMPTCP, _ = s.kern.MultipathTCP()
	if s.ssUp, err = tp.Peer.SS("-Mni"); err != nil {
		t.Fatal(err)
	}
	if e.afterHandshake != nil {
		e.afterHandshake(t, tp)
	}
	return s
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		panic(err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// connectToKernel: the kernel listens in peer, umptcp dials it.
func connectToKernel(ctx context.Context, tp *Topology, server netip.AddrPort) (*stack.Conn, *net.TCPConn, error) {
	var ln *net.TCPListener
	if err := tp.Peer.Do(func() error {
		var err error
		ln, err = kernelpeer.Listen(ctx, server.String())
		return err
	}); err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   *net.TCPConn
		err error
	}
	ach := make(chan accepted, 1)
	go func() {
		dl, _ := ctx.Deadline()
		ln.SetDeadline(dl)
		c, err := ln.AcceptTCP()
		ach <- accepted{c, err}
	}()
	oc, derr := tp.Stack.DialContext(ctx, "tcp", server.String())
	if derr != nil {
		ln.Close()
	}
	a := <-ach
	if derr != nil || a.err != nil {
		if oc != nil {
			oc.Close()
		}
		if a.c != nil {
			a.c.Close()
		}
		return nil, nil, errors.Join(derr, a.err)
	}
	return oc, a.c, nil
}

// connectFromKernel: umptcp listens, the kernel dials it from peer.
func connectFromKernel(ctx context.Context, tp *Topology, server netip.AddrPort) (*stack.Conn, *net.TCPConn, error) {
	ln, err := tp.Stack.Listen("tcp", server.String())
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   *stack.Conn
		err error
	}
	ach := make(chan accepted, 1)
	go func() {
		c, err := ln.AcceptMPTCP()
		ach <- accepted{c, err}
	}()
	var kc *net.TCPConn
	derr := tp.Peer.Do(func() error {
		var err error
		kc, err = kernelpeer.Dial(ctx, "", server.String())
		return err
	})
	var a accepted
	if derr == nil {
		select {
		case a = <-ach:
		case <-ctx.Done():
			a.err = fmt.Errorf("accept: %w", ctx.Err())
		}
	}
	if derr != nil || a.err != nil {
		if kc != nil {
			kc.Close()
		}
		ln.Close()
		if a.c != nil {
			a.c.Close()
		}
		return nil, nil, errors.Join(derr, a.err)
	}
	return a.c, kc, nil
}

// oursResult is what umptcp's end did in a transfer.
type oursResult struct {
	sent, received       int64
	sentSHA, receivedSHA string
	writeErr, readErr    error
	// info is Info() and mptcp MultipathTCP() after the transfer, before
	// Close.
	info  stack.Info
	mptcp bool
}

// Seeds of the payloads: umptcp sends Payload(seedUp), the kernel
// Payload(seedDown).
const (
	seedUp   = 1
	seedDown = 2
)

// transfer runs the standard exchange: umptcp writes up bytes and
// half-closes, the kernel writes down bytes and half-closes (DATA_FIN after
// its data), both read until EOF, then both close. kcfg can add kernel
// behaviour (write sizes, linger); its Send, Seed and Sink are set here.
func (s *session) transfer(up, down int64, kcfg kernelpeer.Config) (oursResult, kernelpeer.Result) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), transferLimit)
	defer cancel()
	kcfg.Addr, kcfg.Send, kcfg.Seed, kcfg.Sink = s.kerAddr.String(), down, seedDown, true
	kch := make(chan kernelpeer.Result, 1)
	go func() {
		res, _ := kernelpeer.Run(ctx, s.role.peerRole(), s.kern, kcfg)
		kch <- res
	}()
	var or oursResult
	start := time.Now()
	defer func() {
		s.t.Helper()
		el := time.Since(start)
		s.t.Logf("transfer: %d bytes up, %d down in %v (%.2f Gbit/s)", up, down, el.Round(time.Millisecond),
			float64(up+down)*8/el.Seconds()/1e9)
	}()
	s.ours.SetDeadline(time.Now().Add(transferLimit))
	var wg sync.WaitGroup
	wg.Go(func() {
		or.sent, or.sentSHA, or.writeErr = writePayload(s.ours, seedUp, up)
		if or.writeErr == nil {
			or.writeErr = s.ours.CloseWrite()
		}
	})
	h := sha256.New()
	or.received, or.readErr = io.Copy(h, s.ours)
	or.receivedSHA = hex.EncodeToString(h.Sum(nil))
	wg.Wait()
	or.info = s.ours.Info()
	or.mptcp = s.ours.MultipathTCP()
	s.ours.Close()
	kr := <-kch
	return or, kr
}

func (r role) peerRole() string {
	if r == oursClient {
		return "server"
	}
	return "client"
}

// writePayload writes n bytes of Payload(seed) to w and returns how many
// were written and their digest.
func writePayload(w io.Writer, seed uint64, n int64) (int64, string, error) {
	h := sha256.New()
	src := kernelpeer.Payload(seed)
	buf := make([]byte, 256<<10)
	var sent int64
	var err error
	for sent < n {
		b := buf[:min(int64(len(buf)), n-sent)]
		src.Read(b)
		var k int
		k, err = w.Write(b)
		h.Write(b[:k])
		sent += int64(k)
		if err != nil {
			break
		}
	}
	return sent, hex.EncodeToString(h.Sum(nil)), err
}

// hashRead reads exactly n bytes from r and returns their digest.
func hashRead(r io.Reader, n int64) (string, error) {
	h := sha256.New()
	_, err := io.CopyN(h, r, n)
	return hex.EncodeToString(h.Sum(nil)), err
}

// checkIntegrity compares what each end sent with what the other received.
func checkIntegrity(t *testing.T, up, down int64, or oursResult, kr kernelpeer.Result) {
	t.Helper()
	if or.writeErr != nil || or.readErr != nil {
		t.Errorf("umptcp: write error %v, read error %v", or.writeErr, or.readErr)
	}
	if kr.Error != "" {
		t.Errorf("kernel: %s", kr.Error)
	}
	if or.sent != up || kr.Received != up || kr.ReceivedSHA256 != or.sentSHA {
		t.Errorf("umptcp→kernel: sent %d, kernel received %d, digest match %v (want %d bytes)",
			or.sent, kr.Received, kr.ReceivedSHA256 == or.sentSHA, up)
	}
	if kr.Sent != down || or.received != down || or.receivedSHA != kr.SentSHA256 {
		t.Errorf("kernel→umptcp: sent %d, umptcp received %d, digest match %v (want %d bytes)",
			kr.Sent, or.received, or.receivedSHA == kr.SentSHA256, down)
	}
}

// result is what a session left behind.
type result struct {
	// peer and ours: the kernel's MPTcpExt* counters and umptcp's, as
	// deltas over the session.
	peer, ours map[string]uint64
	// peerEstab: the kernel's MPCurrEstab gauge at the end (absolute).
	peerEstab uint64
	// leftover: the kernel's sockets of the connection that were still
	// there at the end (TIME-WAIT included), from `ss -tanM`.
	leftover []string
	captures []decode.Result
}

// finish waits (bounded) until umptcp has no MPTCP connection open and the
// kernel no socket of the connection except in TIME-WAIT, stops the
// captures and verifies them with want, and returns the counter deltas.
// The middlebox's capture (towards umptcp, before the middlebox) is
// verified with mid[0] if given, else with want's fallback only.
func (s *session) finish(want captureWant, mid ...captureWant) result {
	if keepCaptures != "" {
		defer s.keep()
	}
	t := s.t
	t.Helper()
	var res result
	start := time.Now()
	if !waitFor(closeLimit, func() bool { return s.tp.Stack.Counters().MPCurrEstab.Load() == 0 }) {
		t.Errorf("umptcp: MPCurrEstab still %d after %v", s.tp.Stack.Counters().MPCurrEstab.Load(), closeLimit)
	}
	var live []string
	if !waitFor(closeLimit, func() bool {
		res.leftover, live = s.kernelSockets()
		return len(live) == 0
	}) {
		t.Errorf("kernel: connection still there after %v:\n%s", closeLimit, strings.Join(live, "\n"))
	}
	if len(res.leftover) > 0 {
		t.Logf("kernel: left in TIME-WAIT: %v", res.leftover)
	}
	t.Logf("finish: ends gone after %v", time.Since(start).Round(time.Millisecond))
	// Make sure tcpdump has written everything before it is stopped (it
	// drops what it has not read yet): a marker after the last segment.
	sendMarker(s.tp, s.env.v6)
	for _, c := range s.caps {
		if !waitFor(10*time.Second, c.hasMarker) {
			t.Errorf("capture %s: the end marker did not arrive", c.dev)
		}
	}
	for i, c := range s.caps {
		w := want
		if i > 0 {
			w = captureWant{fallback: want.fallback}
			if len(mid) > 0 {
				w = mid[0]
			}
		}
		res.captures = append(res.captures, c.verify(t, w))
	}
	after, err := s.tp.Peer.Nstat("MPTcpExt*")
	if err != nil {
		t.Fatal(err)
	}
	res.peer = delta(s.peerBefore, after)
	host, err := s.tp.Ours.Nstat("MPTcpExt*")
	if err != nil {
		t.Fatal(err)
	}
	if d := nonzero(delta(s.hostBefore, host)); d != " (none)" {
		t.Errorf("the kernel under umptcp (ns ours) counted MPTCP, it should only forward:%s", d)
	}
	res.peerEstab = after["MPTcpExtMPCurrEstab"]
	res.ours = delta(s.oursBefore, s.tp.Stack.Counters().Snapshot())
	t.Logf("kernel nstat: %s", nonzero(res.peer))
	t.Logf("umptcp counters: %s", nonzero(res.ours))
	if res.peerEstab != 0 {
		t.Errorf("kernel: MPTcpExtMPCurrEstab %d at the end", res.peerEstab)
	}
	return res
}

// kernelSockets lists the kernel's TCP and MPTCP sockets of the
// connection: those in TIME-WAIT, and the others.
func (s *session) kernelSockets() (timeWait, live []string) {
	local, remote := s.kerAddr.String(), s.remoteOfKernel().String()
	for _, args := range [][]string{{"-Htan"}, {"-HMan"}} {
		out, err := s.tp.Peer.SS(args...)
		if err != nil {
			live = append(live, err.Error())
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, local) || !strings.Contains(line, remote) {
				continue
			}
			line = strings.Join(strings.Fields(line), " ")
			if strings.HasPrefix(line, "TIME-WAIT") {
				timeWait = append(timeWait, line)
			} else {
				live = append(live, "ss "+args[0]+": "+line)
			}
		}
	}
	return timeWait, live
}

// remoteOfKernel is umptcp's address as the kernel sees it.
func (s *session) remoteOfKernel() netip.AddrPort {
	return addrPort(s.kern.RemoteAddr())
}

func delta(before, after map[string]uint64) map[string]uint64 {
	d := make(map[string]uint64)
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

// nonzero renders the non-zero counters, short names, sorted.
func nonzero(m map[string]uint64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			fmt.Fprintf(&b, " %s=%d", strings.TrimPrefix(k, "MPTcpExt"), m[k])
		}
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// ssShowsMPTCP reports whether `ss -Mni` output lists the connection
// between the two addresses as an established MPTCP socket with a token,
// and returns the token as ss prints it.
func ssShowsMPTCP(out string, local, remote netip.AddrPort) (token string, ok bool) {
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "ESTAB") || !strings.Contains(line, local.String()) || !strings.Contains(line, remote.String()) {
			continue
		}
		// The socket's details follow on the next line(s), indented.
		for _, d := range lines[i+1:] {
			if !strings.HasPrefix(d, "\t") && !strings.HasPrefix(d, " ") {
				break
			}
			for _, f := range strings.Fields(d) {
				if tok, found := strings.CutPrefix(f, "token:"); found {
					return tok, true
				}
			}
		}
		return "", false
	}
	return "", false
}

// captureDir returns a directory for the captures of t, removed at its end:
// in /dev/shm when there is one, so that tcpdump's writes of whole packets
// at Gbit/s do not wait for a disk.
func captureDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "umptcp-interop-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// keepCaptures, when set (UMPTCP_INTEROP_PCAPS=DIR), is a directory where
// every session's captures are copied, named after the test, for a look
// with tshark or `umptcp decode` after the run.
var keepCaptures = os.Getenv("UMPTCP_INTEROP_PCAPS")

func (s *session) keep() {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(s.t.Name())
	for _, c := range s.caps {
		b, err := os.ReadFile(c.path)
		if err == nil {
			err = os.WriteFile(filepath.Join(keepCaptures, name+"-"+c.dev+".pcap"), b, 0o644)
		}
		if err != nil {
			s.t.Logf("keeping capture: %v", err)
		}
	}
}
