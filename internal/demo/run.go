package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/stack"
)

// Run runs the demo described by cfg. It returns a *UsageError, and no
// Result, when cfg is invalid. Otherwise it returns the Result, partial if
// the transfer failed, together with the failure: an error setting up, the
// first error of a read or write, or the context's end (timeout,
// interrupt). A transfer that completed with differing bytes is not an
// error: see Result.OK. Every goroutine Run started has ended when it
// returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var cancel context.CancelFunc
	if cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(ctx, cfg.Timeout, fmt.Errorf("timed out after %v (--timeout)", cfg.Timeout))
		defer cancel()
	}
	res := &Result{Size: cfg.Size, Seed: cfg.Seed}
	topo, err := newTopology(cfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, topo: topo, res: res}
	err = r.transfer(ctx)
	// The link counters are taken before the stacks close: closing them
	// resets what is left (TIME-WAIT) into links that are going away.
	r.fillPaths()
	if cerr := topo.close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// run is the state of one Run.
type run struct {
	cfg  Config
	topo *topology
	res  *Result

	client, server *end
	start          time.Time // first byte written
}

// end is one end of the connection: it writes its pattern and reads (and
// verifies) the other end's.
type end struct {
	name            string // "client" or "server"
	sends, receives string // "up" or "down": the direction of each half
	conn            *stack.Conn
	out             pattern
	in              *verifier

	sent, received atomic.Int64 // progress, read by the reporter
	sentSum        string
	eof            time.Time // when the read side got EOF
}

// write sends size bytes of the pattern, then DATA_FIN.
func (e *end) write(size int64) error {
	buf := make([]byte, chunk)
	h := sha256.New()
	for off := int64(0); off < size; {
		b := buf[:min(size-off, chunk)]
		e.out.fill(b, off)
		h.Write(b)
		n, err := e.conn.Write(b)
		off += int64(n)
		e.sent.Store(off)
		if err != nil {
			return fmt.Errorf("write after %d bytes: %w", off, err)
		}
	}
	e.sentSum = hex.EncodeToString(h.Sum(nil))
	if err := e.conn.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	return nil
}

// read reads and verifies until EOF.
func (e *end) read() error {
	buf := make([]byte, chunk)
	for {
		n, err := e.conn.Read(buf)
		if n > 0 {
			e.in.add(buf[:n])
			e.received.Add(int64(n))
		}
		if err == io.EOF {
			e.eof = time.Now()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read after %d bytes: %w", e.received.Load(), err)
		}
	}
}

// transfer connects, exchanges the data both ways at once, and records the
// outcome in r.res. The connection is closed when it returns.
func (r *run) transfer(ctx context.Context) error {
	t0 := time.Now()
	cc, sc, err := r.connect(ctx)
	if err != nil {
		return err
	}
	r.res.Connect = Seconds(time.Since(t0))
	up, down := pattern{derive(r.cfg.Seed, seedUp, 0)}, pattern{derive(r.cfg.Seed, seedDown, 0)}
	r.client = &end{name: "client", sends: "up", receives: "down", conn: cc, out: up, in: newVerifier(down, chunk)}
	r.server = &end{name: "server", sends: "down", receives: "up", conn: sc, out: down, in: newVerifier(up, chunk)}

	var (
		failOnce sync.Once
		failErr  error
		failed   = make(chan struct{})
		done     = make(chan struct{})
	)
	fail := func(err error) {
		failOnce.Do(func() { failErr = err; close(failed) })
	}
	var workers, bg sync.WaitGroup
	// Canceller: a failure or the end of ctx unblocks every read and write
	// through the deadlines, so that the other goroutines end too.
	bg.Go(func() {
		select {
		case <-ctx.Done():
			fail(context.Cause(ctx))
		case <-failed:
		case <-done:
			return
		}
		past := time.Unix(1, 0)
		cc.SetDeadline(past)
		sc.SetDeadline(past)
	})
	r.start = time.Now()
	if r.cfg.ProgressStyle != ProgressNone {
		bg.Go(func() { r.report(done) })
	}
	for _, e := range []*end{r.client, r.server} {
		workers.Go(func() {
			if err := e.write(r.res.Size); err != nil {
				fail(fmt.Errorf("%s: %s %w", e.sends, e.name, err))
			}
		})
		workers.Go(func() {
			if err := e.read(); err != nil {
				fail(fmt.Errorf("%s: %s %w", e.receives, e.name, err))
			}
		})
	}
	workers.Wait()
	end := time.Now()
	close(done)
	bg.Wait()

	ci, si := cc.Info(), sc.Info()
	r.fillResult(ci, si, end)
	cc.Close()
	sc.Close()
	if failErr == nil {
		// Let the subflows finish their FIN exchange, so that the capture
		// and the link counters end as a real connection does rather than
		// with the stacks' closing aborts.
		waitClosed(cc, sc, 2*time.Second)
	}
	return failErr
}

// connect opens the connection: the server listens, the client dials.
func (r *run) connect(ctx context.Context) (cc, sc *stack.Conn, err error) {
	ln, err := r.topo.server.Listen("tcp", fmt.Sprintf(":%d", Port))
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	type accepted struct {
		c   *stack.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.AcceptMPTCP()
		ch <- accepted{c, err}
	}()
	addr := netip.AddrPortFrom(serverAddr(0), Port)
	cc, err = r.topo.client.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		ln.Close()
		if a := <-ch; a.c != nil {
			a.c.Close()
		}
		return nil, nil, fmt.Errorf("connecting to %v: %w", addr, err)
	}
	var a accepted
	select {
	case a = <-ch:
	case <-ctx.Done():
		ln.Close()
		a = <-ch
		if a.c != nil {
			a.c.Close()
		}
		cc.Close()
		return nil, nil, fmt.Errorf("accepting: %w", context.Cause(ctx))
	}
	ln.Close()
	if a.err != nil {
		cc.Close()
		return nil, nil, fmt.Errorf("accept: %w", a.err)
	}
	return cc, a.c, nil
}

// waitClosed waits, at most d, until no subflow of the two connections is
// still open.
func waitClosed(cc, sc *stack.Conn, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		open := false
		for _, c := range []*stack.Conn{cc, sc} {
			for _, s := range c.Info().Subflows {
				switch s.State {
				case "", "CLOSED", "TIME-WAIT", "ERROR":
				default:
					open = true
				}
			}
		}
		if !open {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fillResult records the outcome of the transfer, with the two ends' Info
// taken when it ended.
func (r *run) fillResult(ci, si stack.Info, end time.Time) {
	res := r.res
	res.Client = r.client.conn.LocalAddr().String()
	res.Server = r.client.conn.RemoteAddr().String()
	res.MPTCP = ci.MPTCP && si.MPTCP
	res.FallbackReason = ci.FallbackReason
	if res.FallbackReason == "" && si.FallbackReason != "" {
		res.FallbackReason = "server: " + si.FallbackReason
	}
	res.Checksum = ci.Checksum
	res.Duration = Seconds(end.Sub(r.start))
	res.Up = r.flow(r.client, r.server, end)
	res.Down = r.flow(r.server, r.client, end)
	res.SHA256OK = res.Up.SHA256OK && res.Down.SHA256OK

	// Pair the subflows by their 4-tuple: the server's (local, remote) is
	// the client's (remote, local).
	type tuple struct{ a, b netip.AddrPort }
	bySrv := make(map[tuple]stack.SubflowInfo, len(si.Subflows))
	for _, s := range si.Subflows {
		bySrv[tuple{s.Remote, s.Local}] = s
	}
	for _, c := range ci.Subflows {
		s := bySrv[tuple{c.Local, c.Remote}]
		sf := Subflow{
			Path:   pathOf(c.Local.Addr()) + 1,
			Client: c.Local.String(), Server: c.Remote.String(),
			State: c.State,
			RTT:   Millis(c.RTT), ServerRTT: Millis(s.RTT),
			UpBytes:   firstNonZero(s.BytesReceived, c.BytesAcked, c.BytesSent-c.BytesRetrans),
			DownBytes: firstNonZero(c.BytesReceived, s.BytesAcked, s.BytesSent-s.BytesRetrans),
			UpSent:    c.BytesSent, DownSent: s.BytesSent,
			UpRetrans: c.BytesRetrans, DownRetrans: s.BytesRetrans,
			Cwnd: c.Cwnd, ServerCwnd: s.Cwnd,
		}
		sf.UpGoodput = rate(int64(sf.UpBytes), res.Up.Duration.D())
		sf.DownGoodput = rate(int64(sf.DownBytes), res.Down.Duration.D())
		res.Up.Retrans += sf.UpRetrans
		res.Down.Retrans += sf.DownRetrans
		res.Subflows = append(res.Subflows, sf)
	}
	res.Counters = Counters{Client: nonZero(r.topo.client), Server: nonZero(r.topo.server)}
}

// firstNonZero returns the first of the values that is not zero. After a
// fallback in the handshake, the listener's connection keeps no subflow
// counters and the dialer's counts no acknowledged bytes: the other end's
// view stands in, or the bytes sent once.
func firstNonZero(v ...uint64) uint64 {
	for _, x := range v {
		if x != 0 {
			return x
		}
	}
	return 0
}

// flow returns one direction's outcome, from the sending and receiving end.
func (r *run) flow(tx, rx *end, end time.Time) Flow {
	f := Flow{
		Sent:            tx.sent.Load(),
		Received:        rx.received.Load(),
		SHA256Sent:      tx.sentSum,
		SHA256Received:  rx.in.digest(),
		DifferingBytes:  rx.in.differ,
		FirstDifference: rx.in.firstDiff,
	}
	if !rx.eof.IsZero() {
		end = rx.eof
	}
	f.Duration = Seconds(end.Sub(r.start))
	f.Goodput = rate(f.Received, f.Duration.D())
	f.SHA256OK = f.Received == r.res.Size && f.SHA256Sent != "" && f.SHA256Sent == f.SHA256Received
	if f.Received > r.res.Size && f.FirstDifference < 0 {
		f.FirstDifference = r.res.Size // the extra bytes are the difference
	}
	return f
}

// fillPaths records what the links did.
func (r *run) fillPaths() {
	for i, l := range r.topo.links {
		up, down := r.topo.linkStats(i)
		spec := r.cfg.Paths[i]
		spec.Seed = 0
		lu, ld := l.Config(emu.AToB), l.Config(emu.BToA)
		r.res.Paths = append(r.res.Paths, Path{
			Spec: spec.String(),
			Up:   linkDir(lu.Seed, up.SentPackets, up.DeliveredPackets, up.Dropped(), up.String()),
			Down: linkDir(ld.Seed, down.SentPackets, down.DeliveredPackets, down.Dropped(), down.String()),
		})
	}
}

func linkDir(seed, sent, delivered, dropped uint64, summary string) LinkDir {
	return LinkDir{Seed: seed, SentPackets: sent, DeliveredPackets: delivered, DroppedPackets: dropped, Summary: summary}
}

// nonZero returns the stack's counters that are not zero.
func nonZero(s *stack.Stack) map[string]uint64 {
	m := s.Counters().Snapshot()
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}
