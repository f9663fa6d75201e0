package kernelpeer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
	"time"
)

// ErrNotMPTCP is returned when Config.RequireMPTCP is set and the connection is plain TCP.
var ErrNotMPTCP = errors.New("kernelpeer: connection is not MPTCP")

// Listen opens a kernel MPTCP listener on addr (host:port; port 0 picks one). If the
// kernel cannot create MPTCP sockets the standard library silently listens with TCP:
// check Result.MPTCP, or set Config.RequireMPTCP.
func Listen(ctx context.Context, addr string) (*net.TCPListener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// Dial opens a kernel MPTCP connection to addr, from local if it is not empty (a host or
// host:port). Like Listen it falls back to TCP where the kernel has no MPTCP.
func Dial(ctx context.Context, local, addr string) (*net.TCPConn, error) {
	var d net.Dialer
	d.SetMultipathTCP(true)
	if local != "" {
		la, err := resolveLocal(ctx, local)
		if err != nil {
			return nil, err
		}
		d.LocalAddr = la
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// resolveLocal accepts a bare host as well as host:port.
func resolveLocal(ctx context.Context, local string) (*net.TCPAddr, error) {
	if _, _, err := net.SplitHostPort(local); err != nil {
		local = net.JoinHostPort(local, "0")
	}
	host, port, _ := net.SplitHostPort(local)
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return nil, err
	}
	return &net.TCPAddr{IP: ips[0].AsSlice(), Port: p, Zone: ips[0].Zone()}, nil
}

// Serve accepts one connection on ln and runs cfg on it as the server. It does not close
// ln, which can serve again. Cancelling ctx stops the accept and the run.
func Serve(ctx context.Context, ln *net.TCPListener, cfg Config) (Result, error) {
	res := Result{Role: "server"}
	if err := cfg.Validate(); err != nil {
		return fail(res, err)
	}
	// A deadline in the past wakes the blocked Accept; it is cleared afterwards so that ln
	// can serve again.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		ln.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	c, err := ln.AcceptTCP()
	if !stop() {
		<-fired
		ln.SetDeadline(time.Time{})
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fail(res, err)
	}
	return Run(ctx, "server", c, cfg)
}

// RunServer listens on cfg.Addr, serves one connection and closes the listener. Use Listen
// and Serve instead when the caller needs the listening address first.
func RunServer(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return fail(Result{Role: "server"}, err)
	}
	ln, err := Listen(ctx, cfg.Addr)
	if err != nil {
		return fail(Result{Role: "server"}, err)
	}
	defer ln.Close()
	return Serve(ctx, ln, cfg)
}

// RunClient dials cfg.Addr (from cfg.Local) and runs cfg on the connection.
func RunClient(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return fail(Result{Role: "client"}, err)
	}
	c, err := Dial(ctx, cfg.Local, cfg.Addr)
	if err != nil {
		return fail(Result{Role: "client"}, err)
	}
	return Run(ctx, "client", c, cfg)
}

// Run does what cfg says on an established connection and closes it. role only labels
// the Result. Cancelling ctx interrupts blocked reads and writes.
//
// Order: the writer and the reader (or the echo loop) run concurrently; when both are done
// the peer, if it is to abort without reading, waits for unread data; then it holds for
// cfg.Hold, reads MPTCP_INFO and closes.
func Run(ctx context.Context, role string, c *net.TCPConn, cfg Config) (Result, error) {
	res := Result{Role: role, Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String()}
	if err := cfg.Validate(); err != nil {
		c.Close()
		return fail(res, err)
	}
	res.MPTCP, _ = c.MultipathTCP()
	if cfg.RequireMPTCP && !res.MPTCP {
		c.Close()
		return fail(res, ErrNotMPTCP)
	}
	// A deadline in the past wakes every blocked Read and Write.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	sent, recv := newCounter(), newCounter()
	var rerr, werr error
	var wg sync.WaitGroup
	if cfg.Echo {
		wg.Go(func() { rerr = echo(c, sent, recv) })
	}
	if cfg.Sink {
		wg.Go(func() { rerr = sink(c, recv) })
	}
	if cfg.Send > 0 {
		wg.Go(func() { werr = send(ctx, c, sent, cfg) })
	}
	wg.Wait()

	var perr error
	if cfg.Linger0 && !cfg.Sink && !cfg.Echo && rerr == nil && werr == nil {
		perr = waitPending(c)
	}
	var herr error
	if cfg.Hold > 0 {
		herr = sleep(ctx, cfg.Hold)
	}
	if res.MPTCP {
		res.Info, _ = readInfo(c)
	}
	var lerr error
	if cfg.Linger0 {
		lerr = c.SetLinger(0)
		res.Aborted = lerr == nil
	}
	cerr := c.Close()

	res.Sent, res.SentSHA256 = sent.sum()
	res.Received, res.ReceivedSHA256 = recv.sum()
	err := errors.Join(rerr, werr, perr, herr, lerr, cerr)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// Say why the deadline-interrupted I/O failed.
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func fail(res Result, err error) (Result, error) {
	res.Error = err.Error()
	return res, err
}

// send writes cfg.Send bytes of Payload(cfg.Seed) in cfg.Writes-sized calls, then shuts
// down the write side unless the peer will abort.
func send(ctx context.Context, c *net.TCPConn, sent *counter, cfg Config) error {
	src := Payload(cfg.Seed)
	sizes := newWriteSizes(cfg.Writes, cfg.Seed)
	buf := make([]byte, max(cfg.Writes.Max, defaultWrite))
	if err := sleep(ctx, cfg.StartDelay); err != nil {
		return err
	}
	for left := cfg.Send; left > 0; {
		b := buf[:min(int64(sizes.next()), left)]
		src.Read(b) // ChaCha8.Read always fills b
		n, err := c.Write(b)
		sent.Write(b[:n])
		left -= int64(n)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if left > 0 {
			if err := sleep(ctx, cfg.WriteDelay); err != nil {
				return err
			}
		}
	}
	if cfg.Linger0 {
		return nil
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// sink reads until EOF.
func sink(c *net.TCPConn, recv *counter) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		recv.Write(buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
}

// echo copies everything it reads back to the peer, then shuts down the write side.
func echo(c *net.TCPConn, sent, recv *counter) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			recv.Write(buf[:n])
			m, werr := c.Write(buf[:n])
			sent.Write(buf[:m])
			if werr != nil {
				return fmt.Errorf("write: %w", werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// counter counts and hashes the bytes written to it.
type counter struct {
	n int64
	h hash.Hash
}

func newCounter() *counter { return &counter{h: sha256.New()} }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *counter) sum() (int64, string) { return c.n, hex.EncodeToString(c.h.Sum(nil)) }
