package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umptcp/umptcp/internal/demo"
	"github.com/umptcp/umptcp/stack"
)

// errInterrupted ends a run on SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// Bounds of the orderly end of a connection, each step: the peer's
// acknowledgment of our data and DATA_FIN, then the subflows' FIN exchange.
// Closing the stack before would reset what is left.
const finishWait = 2 * time.Second

// ncRun is one run of "connect" or "listen". Its goroutines: the command's
// own (setup, dial or accept, and for a single connection the copy from the
// connection to standard output); per connection, the copy from standard
// input (stdinPump) or the --echo/--sink handler (serveService, with
// --keep); and with -v routineProgress. Each has a stop path, given where
// it starts; the run waits for all of them before it closes the stack, but
// one: see stdinPump.
type ncRun struct {
	o      *ncOptions
	stdin  io.Reader
	stdout io.Writer
	con    *console
	start  time.Time

	// Totals over every connection, for the progress line.
	sent, received atomic.Int64
	open           atomic.Int32 // connections being served
	seen           atomic.Int32 // connections accepted or dialled

	mu    sync.Mutex // guards conns and err
	conns []*connRecord
	err   error // why the run failed, for --stats-json
}

// connRecord is what the run keeps of one connection.
type connRecord struct {
	c              *stack.Conn
	start          time.Time
	sent, received atomic.Int64

	// Set when the connection is over.
	info     stack.Info
	duration time.Duration
	err      error
}

func newNCRun(o *ncOptions, stdin io.Reader, stdout, stderr io.Writer) *ncRun {
	return &ncRun{o: o, stdin: stdin, stdout: stdout, con: newConsole(stderr), start: time.Now()}
}

// run sets up the stack on its device, runs the command and closes
// everything, on every path. It returns the exit status.
func (r *ncRun) run(ctx context.Context, pcapFile *os.File) int {
	var pcapW io.Writer
	if pcapFile != nil {
		pcapW = pcapFile
	}
	n, err := openTunNet(r.o, runtime.GOOS, pcapW, r.con)
	if err != nil {
		return r.fail(err)
	}
	stopProgress := r.startProgress(progressInterval(r.con.live))
	var status int
	if r.o.cmd == "connect" {
		status = r.connect(ctx, n)
	} else {
		status = r.listen(ctx, n)
	}
	stopProgress()
	if err := n.close(); err != nil {
		status = max(status, r.fail(err))
	}
	if r.o.verbose {
		r.summary()
	}
	return status
}

// fail records err as the run's failure, prints it in words a user can act
// on, and returns the exit status it calls for.
func (r *ncRun) fail(err error) int {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	msg, status := explain(err)
	r.con.printf("umptcp %s: %s\n", r.o.cmd, msg)
	return status
}

// connect is "umptcp connect" once the stack is up.
func (r *ncRun) connect(ctx context.Context, n *tunNet) int {
	target, err := r.resolve(ctx)
	if err != nil {
		return r.fail(err)
	}
	if target.Addr().Is4() != r.o.tun.prefix.Addr().Is4() {
		return r.fail(&dialError{target: target, dev: n.name, err: fmt.Errorf("%w: the stack has no %s address (--tun gives it %s)",
			errNoRoute, family(target.Addr()), r.o.tun.prefix)})
	}
	if r.o.noHostConfig {
		if err := r.waitHostSide(ctx, n.name); err != nil {
			return r.fail(err)
		}
	}
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if r.o.connectTimeout > 0 {
		dctx, cancel = context.WithTimeout(ctx, r.o.connectTimeout)
	}
	c, err := n.st.DialContext(dctx, "tcp", target.String())
	cancel()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return r.fail(errInterrupted)
	case errors.Is(err, context.DeadlineExceeded):
		de := &dialError{target: target, dev: n.name, timeout: r.o.connectTimeout, err: err}
		if target.Addr() != r.o.host {
			de.noFwd = forwardingOff(target.Addr().Is6())
		}
		return r.fail(de)
	default:
		return r.fail(&dialError{target: target, dev: n.name, err: err})
	}
	rec := r.addConn(c)
	if r.o.verbose {
		r.con.printf("umptcp connect: connected to %s from %s: %s\n", c.RemoteAddr(), c.LocalAddr(), describeMode(c.Info()))
	}
	err = r.pipe(ctx, c, rec)
	r.finish(ctx, rec, err)
	if err != nil {
		return r.fail(err)
	}
	return exitOK
}

// resolve turns HOST:PORT into an address of the stack's family: the stack
// does no name resolution, the host's resolver does.
func (r *ncRun) resolve(ctx context.Context) (netip.AddrPort, error) {
	host, port, _ := net.SplitHostPort(r.o.target) // checked by parseNetcat
	p, _ := parsePort(port)
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), p), nil
	}
	network := "ip4"
	if r.o.tun.prefix.Addr().Is6() {
		network = "ip6"
	}
	as, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil || len(as) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q to an %s address: %v", host, family(r.o.tun.prefix.Addr()), err)
	}
	return netip.AddrPortFrom(as[0].Unmap(), p), nil
}

// waitHostSide waits until the user configured the host side of the device
// (--no-host-config): it is up and has an address of the stack's family.
func (r *ncRun) waitHostSide(ctx context.Context, name string) error {
	ready := func() bool {
		ifi, err := net.InterfaceByName(name)
		if err != nil || ifi.Flags&net.FlagUp == 0 {
			return false
		}
		as, _ := ifi.Addrs()
		for _, a := range as {
			if ipn, ok := a.(*net.IPNet); ok && (ipn.IP.To4() != nil) == r.o.tun.prefix.Addr().Is4() {
				return true
			}
		}
		return false
	}
	if ready() {
		return nil
	}
	r.con.printf("umptcp connect: waiting for the host side of %s to be up with an %s address\n", name, family(r.o.tun.prefix.Addr()))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return errInterrupted
		case <-t.C:
		}
	}
	return nil
}

// listen is "umptcp listen" once the stack is up.
func (r *ncRun) listen(ctx context.Context, n *tunNet) int {
	stackAddr := r.o.tun.prefix.Addr()
	network, addr := "tcp", r.o.listen.String()
	shown := r.o.listen
	if !r.o.listen.Addr().IsValid() {
		network = "tcp4"
		if stackAddr.Is6() {
			network = "tcp6"
		}
		addr = fmt.Sprintf(":%d", r.o.listen.Port())
		shown = netip.AddrPortFrom(stackAddr, r.o.listen.Port())
	}
	l, err := n.st.Listen(network, addr)
	if err != nil {
		return r.fail(err)
	}
	defer l.Close()
	// Stop path of Accept: the listener closes on SIGINT/SIGTERM.
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	r.con.printf("umptcp listen: listening on %s (device %s, host side %s)\n", shown, n.name, r.o.host)

	if !r.o.keep {
		c, err := l.AcceptMPTCP()
		l.Close() // one connection: later SYNs are refused
		if err != nil {
			if ctx.Err() != nil {
				return r.fail(errInterrupted)
			}
			return r.fail(err)
		}
		rec := r.addConn(c)
		if r.o.verbose {
			r.con.printf("umptcp listen: connection from %s: %s\n", c.RemoteAddr(), describeMode(c.Info()))
		}
		service := r.o.sink || r.o.echo
		if service {
			err = r.serveService(ctx, rec)
		} else {
			err = r.pipe(ctx, c, rec)
		}
		r.finish(ctx, rec, err)
		if service {
			r.report(rec)
		}
		if err != nil {
			return r.fail(err)
		}
		return exitOK
	}

	// --keep: one goroutine per connection, concurrently, until a signal
	// closes the listener; then every handler is interrupted (its
	// deadline passes) and waited for.
	var wg sync.WaitGroup
	var acceptErr error
	for {
		c, err := l.AcceptMPTCP()
		if err != nil {
			if ctx.Err() == nil {
				acceptErr = err
			}
			break
		}
		rec := r.addConn(c)
		if r.o.verbose {
			r.con.printf("umptcp listen: connection %d from %s: %s\n", r.seen.Load(), c.RemoteAddr(), describeMode(c.Info()))
		}
		wg.Go(func() {
			err := r.serveService(ctx, rec)
			r.finish(ctx, rec, err)
			r.report(rec)
		})
	}
	wg.Wait()
	if acceptErr != nil {
		return r.fail(acceptErr)
	}
	return exitOK
}

// addConn records a new connection.
func (r *ncRun) addConn(c *stack.Conn) *connRecord {
	rec := &connRecord{c: c, start: time.Now()}
	r.mu.Lock()
	r.conns = append(r.conns, rec)
	r.mu.Unlock()
	r.seen.Add(1)
	r.open.Add(1)
	return rec
}

// pipe copies standard input to c and c to standard output, and returns
// once both are done: standard input ended (then c is half-closed: DATA_FIN)
// and the peer closed its side with everything it sent written out. After
// the peer's DATA_FIN the rest of standard input is still sent: the peer may
// be reading. SIGINT or SIGTERM interrupts both copies.
func (r *ncRun) pipe(ctx context.Context, c *stack.Conn, rec *connRecord) error {
	// Stop path of both copies' connection I/O: a deadline in the past.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	upDone := make(chan error, 1)
	go r.stdinPump(c, rec, upDone)

	buf := make([]byte, 64<<10)
	_, derr := io.CopyBuffer(markedWriter{r.stdout}, &countingReader{r: c, n: &rec.received, total: &r.received}, buf)
	if derr != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		var we *writeError
		if errors.As(derr, &we) {
			return fmt.Errorf("writing standard output: %w", we.err)
		}
		return fmt.Errorf("receiving: %w", derr)
	}
	select {
	case err := <-upDone:
		if err != nil && ctx.Err() != nil {
			return errInterrupted
		}
		return err
	case <-ctx.Done():
		return errInterrupted
	}
}

// stdinPump copies standard input to c and half-closes c at its end,
// then sends the outcome to done (buffered: it never blocks).
//
// Stop path: the end of standard input, or a failed write to c (the
// connection failed, or the run set a deadline in the past on SIGINT or
// SIGTERM). The run does not wait for it when the connection ends first:
// if it is then blocked reading a terminal or a pipe, it stays blocked
// until the process exits, which follows at once. A blocking read(2) of a
// descriptor shared with other processes cannot be interrupted without
// making it non-blocking for all of them.
func (r *ncRun) stdinPump(c *stack.Conn, rec *connRecord, done chan<- error) {
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.stdin.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				done <- fmt.Errorf("sending: %w", err)
				return
			}
			rec.sent.Add(int64(n))
			r.sent.Add(int64(n))
		}
		if rerr == io.EOF {
			done <- c.CloseWrite()
			return
		}
		if rerr != nil {
			done <- fmt.Errorf("reading standard input: %w", rerr)
			return
		}
	}
}

// serveService runs --echo or --sink on one connection: until the peer's
// DATA_FIN, then half-closes. Stop path: the peer closes, or SIGINT/SIGTERM
// sets a deadline in the past.
func (r *ncRun) serveService(ctx context.Context, rec *connRecord) error {
	c := rec.c
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	src := &countingReader{r: c, n: &rec.received, total: &r.received}
	var err error
	if r.o.echo {
		buf := make([]byte, 64<<10)
		_, err = io.CopyBuffer(&countingWriter{w: c, n: &rec.sent, total: &r.sent}, src, buf)
	} else {
		_, err = io.Copy(io.Discard, src)
	}
	if err == nil {
		err = c.CloseWrite()
	}
	if err != nil && ctx.Err() != nil {
		return errInterrupted
	}
	return err
}

// finish ends a connection whose transfer ended with err. A failed one is
// aborted (MP_FASTCLOSE). A finished one is closed in order: first the peer
// acknowledges all our data and our DATA_FIN, then Close, then the
// subflows' FINs; each step bounded by finishWait, so that closing the
// stack afterwards resets nothing the peer still cares about.
func (r *ncRun) finish(ctx context.Context, rec *connRecord, err error) {
	c := rec.c
	defer r.open.Add(-1)
	if err != nil {
		rec.info = c.Info()
		rec.duration = time.Since(rec.start)
		rec.err = err
		c.SetLinger(0)
		c.Close()
		return
	}
	waitUntil(ctx, finishWait, func() bool {
		in := c.Info()
		return in.SndUna == in.SndNxt
	})
	rec.info = c.Info()
	rec.duration = time.Since(rec.start)
	c.Close()
	waitUntil(ctx, finishWait, func() bool {
		for _, s := range c.Info().Subflows {
			if s.State != "CLOSED" && s.State != "TIME-WAIT" && s.State != "" {
				return false
			}
		}
		return true
	})
}

// forwardingOff returns the name of the Linux sysctl that keeps the host
// from forwarding packets of the family, when it is 0; "" when forwarding
// is on or the host is not Linux.
func forwardingOff(v6 bool) string {
	name := "net.ipv4.ip_forward"
	if v6 {
		name = "net.ipv6.conf.all.forwarding"
	}
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		return ""
	}
	return name
}

// waitUntil polls cond until it holds, d passed or ctx is done.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// report prints the line of a --keep connection that ended.
func (r *ncRun) report(rec *connRecord) {
	what := fmt.Sprintf("received %d bytes", rec.received.Load())
	if r.o.echo {
		what = fmt.Sprintf("echoed %d of %d bytes received", rec.sent.Load(), rec.received.Load())
	}
	rate := ""
	if s := rec.duration.Seconds(); s > 0 {
		rate = ", " + demo.FormatRate(float64(rec.received.Load())*8/s)
	}
	status := describeMode(rec.info)
	if rec.err != nil {
		msg, _ := explain(rec.err)
		status += "; failed: " + msg
	}
	r.con.printf("umptcp listen: %s: %s in %.3fs%s; %s\n", rec.c.RemoteAddr(), what, rec.duration.Seconds(), rate, status)
}

// summary prints the -v summary at the end.
func (r *ncRun) summary() {
	el := time.Since(r.start)
	r.mu.Lock()
	n := len(r.conns)
	var mode string
	if n == 1 {
		mode = "; " + describeMode(r.conns[0].info)
	}
	r.mu.Unlock()
	conns := ""
	if r.o.keep {
		conns = fmt.Sprintf("%d connection(s); ", n)
	}
	r.con.printf("umptcp %s: %ssent %s, received %s in %.2fs%s\n", r.o.cmd, conns,
		demo.FormatBytes(r.sent.Load()), demo.FormatBytes(r.received.Load()), el.Seconds(), mode)
}

// describeMode says whether a connection speaks MPTCP.
func describeMode(in stack.Info) string {
	if in.MPTCP {
		s := "s"
		if len(in.Subflows) == 1 {
			s = ""
		}
		csum := ""
		if in.Checksum {
			csum = ", DSS checksums"
		}
		return fmt.Sprintf("MPTCP, token %08x, %d subflow%s%s", in.Token, len(in.Subflows), s, csum)
	}
	if in.FallbackReason != "" {
		return "TCP (fell back: " + in.FallbackReason + ")"
	}
	return "TCP (no MPTCP)"
}

// countingReader counts what it reads, for the connection and in total.
type countingReader struct {
	r        io.Reader
	n, total *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.total.Add(int64(n))
	return n, err
}

// countingWriter counts what it writes; its errors are writeErrors, so that
// an echo can tell a failed write from a failed read.
type countingWriter struct {
	w        io.Writer
	n, total *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	c.total.Add(int64(n))
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// markedWriter marks its errors as writeErrors.
type markedWriter struct{ w io.Writer }

func (m markedWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// writeError is an error of the writing side of a copy.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
