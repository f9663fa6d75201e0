package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/umptcp/umptcp/internal/demo"
	"github.com/umptcp/umptcp/stack"
	"github.com/umptcp/umptcp/tun"
)

// console serialises what the run writes on standard error: messages from
// several goroutines and, on a terminal, the live progress line, which a
// message erases first (the next report redraws it).
type console struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool // w is a terminal: redraw the progress line in place
	shown bool // a live line is on screen
}

func newConsole(w io.Writer) *console { return &console{w: w, live: isTerminal(w)} }

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.eraseLocked()
	fmt.Fprintf(c.w, format, args...)
}

// progress shows one progress report: in place on a terminal, as a line
// otherwise.
func (c *console) progress(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live {
		fmt.Fprintf(c.w, "\r%s\x1b[K", s)
		c.shown = true
		return
	}
	fmt.Fprintln(c.w, s)
}

func (c *console) erase() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.eraseLocked()
}

func (c *console) eraseLocked() {
	if c.shown {
		io.WriteString(c.w, "\r\x1b[K")
		c.shown = false
	}
}

// progressInterval is how often -v reports: a few times a second on a
// terminal, where the line is redrawn; once a second in a log.
func progressInterval(live bool) time.Duration {
	if live {
		return 250 * time.Millisecond
	}
	return time.Second
}

// startProgress starts routineProgress with -v and returns its stop
// function, which returns once the goroutine is gone and the live line
// erased. Without -v it starts nothing.
func (r *ncRun) startProgress(every time.Duration) (stop func()) {
	if !r.o.verbose {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.routineProgress(done, every) })
	return func() {
		close(done)
		wg.Wait()
		r.con.erase()
	}
}

// routineProgress reports progress every interval until done is closed,
// once a connection exists. Rates are over the last second or so.
func (r *ncRun) routineProgress(done <-chan struct{}, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	type sample struct {
		t              time.Time
		sent, received int64
	}
	hist := []sample{{t: time.Now()}}
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			s := sample{now, r.sent.Load(), r.received.Load()}
			hist = append(hist, s)
			for len(hist) > 2 && now.Sub(hist[1].t) >= time.Second {
				hist = hist[1:]
			}
			if r.seen.Load() == 0 {
				continue // nothing to report while waiting
			}
			old := hist[0]
			dt := now.Sub(old.t).Seconds()
			r.con.progress(progressLine(now.Sub(r.start), s.sent, s.received,
				float64(s.sent-old.sent)*8/dt, float64(s.received-old.received)*8/dt, r.progressState()))
		}
	}
}

// progressState says what the connections are: the mode of a single one,
// or how many are open and done.
func (r *ncRun) progressState() string {
	if r.o.keep {
		open := r.open.Load()
		return fmt.Sprintf("%d open, %d done", open, r.seen.Load()-open)
	}
	r.mu.Lock()
	var c *stack.Conn
	if len(r.conns) > 0 {
		c = r.conns[0].c
	}
	r.mu.Unlock()
	if c == nil {
		return ""
	}
	in := c.Info()
	if !in.MPTCP {
		return "TCP"
	}
	s := "s"
	if len(in.Subflows) == 1 {
		s = ""
	}
	return fmt.Sprintf("MPTCP, %d subflow%s", len(in.Subflows), s)
}

// progressLine renders one report so that it fits 80 columns:
//
//	2.5s  sent  41.9 MB  134 Mbit/s  recv  4.19 MB 13.4 Mbit/s  MPTCP, 1 subflow
func progressLine(el time.Duration, sent, received int64, sentRate, recvRate float64, state string) string {
	return fmt.Sprintf("%5.1fs  sent %8s %11s  recv %8s %11s  %s", el.Seconds(),
		demo.FormatBytes(sent), demo.FormatRate(sentRate),
		demo.FormatBytes(received), demo.FormatRate(recvRate), state)
}

// connStats is --stats-json for one connection (from Conn.Info at its end).
type connStats struct {
	MPTCP          bool           `json:"mptcp"`
	FallbackReason string         `json:"fallback_reason"`
	Token          string         `json:"token"`        // ours, 8 hex digits
	RemoteToken    string         `json:"remote_token"` // the peer's: what its `ss -Mni` shows
	Checksum       bool           `json:"checksum"`
	Local          string         `json:"local"`
	Remote         string         `json:"remote"`
	BytesSent      uint64         `json:"bytes_sent"`
	BytesReceived  uint64         `json:"bytes_received"`
	DurationS      float64        `json:"duration_s"`
	Subflows       []subflowStats `json:"subflows"`
	Error          string         `json:"error,omitempty"`
}

type subflowStats struct {
	Local         string  `json:"local"`
	Remote        string  `json:"remote"`
	State         string  `json:"state"`
	RTTMs         float64 `json:"rtt_ms"`
	BytesSent     uint64  `json:"bytes_sent"`
	BytesRetrans  uint64  `json:"bytes_retrans"`
	BytesReceived uint64  `json:"bytes_received"`
}

// keepStats is --stats-json with --keep.
type keepStats struct {
	Connections []connStats `json:"connections"`
	Error       string      `json:"error,omitempty"`
}

func statsOf(rec *connRecord) connStats {
	in := rec.info
	s := connStats{
		MPTCP:          in.MPTCP,
		FallbackReason: in.FallbackReason,
		Checksum:       in.Checksum,
		Local:          rec.c.LocalAddr().String(),
		Remote:         rec.c.RemoteAddr().String(),
		BytesSent:      in.BytesSent,
		BytesReceived:  in.BytesReceived,
		DurationS:      rec.duration.Seconds(),
		Subflows:       []subflowStats{},
	}
	if in.Token != 0 {
		s.Token = fmt.Sprintf("%08x", in.Token)
	}
	if in.RemoteToken != 0 {
		s.RemoteToken = fmt.Sprintf("%08x", in.RemoteToken)
	}
	for _, sf := range in.Subflows {
		s.Subflows = append(s.Subflows, subflowStats{
			Local: sf.Local.String(), Remote: sf.Remote.String(), State: sf.State,
			RTTMs:     float64(sf.RTT) / float64(time.Millisecond),
			BytesSent: sf.BytesSent, BytesRetrans: sf.BytesRetrans, BytesReceived: sf.BytesReceived,
		})
	}
	if rec.err != nil {
		s.Error, _ = explain(rec.err)
	}
	return s
}

// writeStats writes --stats-json: one connection's object, or with --keep
// the list of them. A run that failed before any connection writes an
// object with zero values and the error.
func (r *ncRun) writeStats(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	runErr := ""
	if r.err != nil {
		runErr, _ = explain(r.err)
	}
	var v any
	switch {
	case r.o.keep:
		ks := keepStats{Connections: []connStats{}, Error: runErr}
		for _, rec := range r.conns {
			ks.Connections = append(ks.Connections, statsOf(rec))
		}
		v = ks
	case len(r.conns) == 0:
		v = connStats{Subflows: []subflowStats{}, Error: runErr}
	default:
		s := statsOf(r.conns[0])
		if s.Error == "" {
			s.Error = runErr
		}
		v = s
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// errNoRoute is the kind of a dial error for a destination the stack or
// the host cannot reach.
var errNoRoute = errors.New("no route to host")

// dialError is a failed connect.
type dialError struct {
	target  netip.AddrPort
	dev     string
	timeout time.Duration // set when the dial timed out
	noFwd   string        // the host's forwarding sysctl, when it is off and target is not the host
	err     error
}

func (e *dialError) Error() string { return "connect " + e.target.String() + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// explain turns an error of the run into a message a user can act on, and
// the exit status it calls for.
func explain(err error) (msg string, status int) {
	var te *tun.Error
	var de *dialError
	switch {
	case errors.Is(err, errInterrupted):
		return "interrupted (SIGINT or SIGTERM)", exitFailure
	case errors.As(err, &te):
		return explainTun(te), tunStatus(te)
	case errors.As(err, &de):
		return explainDial(de), exitFailure
	case errors.Is(err, errAddrInUse):
		return err.Error(), exitFailure
	case isErrno(err, syscall.EADDRINUSE, "address already in use"):
		return "address in use: " + err.Error(), exitFailure
	case errors.Is(err, stack.ErrFastClosed):
		return "the peer aborted the connection (MP_FASTCLOSE)", exitFailure
	case errors.Is(err, stack.ErrReset):
		return "the peer reset the connection", exitFailure
	}
	return err.Error(), exitFailure
}

func tunStatus(te *tun.Error) int {
	if errors.Is(te, tun.ErrNameTooLong) || errors.Is(te, tun.ErrInvalidName) {
		return exitUsage
	}
	return exitFailure
}

func explainTun(te *tun.Error) string {
	name := te.Name
	detail := "\n  (" + te.Error() + ")"
	switch {
	case errors.Is(te, tun.ErrPermission):
		return fmt.Sprintf("no permission to create TUN device %q: run as root (it needs CAP_NET_ADMIN and read/write access to the TUN device node, /dev/net/tun on Linux)%s", name, detail)
	case te.Op == "configure" && errors.Is(te, syscall.EEXIST):
		return fmt.Sprintf("address in use: the host already has the address for the host side of %q; choose another with --host-addr%s", name, detail)
	case errors.Is(te, tun.ErrBusy):
		return fmt.Sprintf("TUN device %q is busy: another process holds it, or an interface with this name exists and is not a TUN device; stop that process or choose another name in --tun%s", name, detail)
	case errors.Is(te, tun.ErrNoDevice):
		return fmt.Sprintf("no TUN driver on this host: load it (Linux: modprobe tun) or, in a container, pass the device /dev/net/tun in%s", detail)
	case errors.Is(te, tun.ErrNameTooLong), errors.Is(te, tun.ErrInvalidName):
		return fmt.Sprintf("--tun %s: bad device name: %s", name, te.Error())
	}
	return te.Error()
}

func explainDial(de *dialError) string {
	t := de.target
	switch {
	case de.timeout > 0 && de.noFwd != "":
		return fmt.Sprintf("no answer from %s within %v: the host does not forward packets (%s is 0), so it drops those from %s to any address but its own; enable it (sysctl -w %s=1) or connect to the host side's address", t, de.timeout, de.noFwd, de.dev, de.noFwd)
	case de.timeout > 0:
		return fmt.Sprintf("no answer from %s within %v: nothing answered the SYN; check that the host side of %s is configured and that the host routes (and forwards) to %s", t, de.timeout, de.dev, t.Addr())
	case errors.Is(de.err, errNoRoute) && strings.Contains(de.err.Error(), "the stack has no"):
		return fmt.Sprintf("no route to %s: %s", t.Addr(), strings.TrimPrefix(de.err.Error(), errNoRoute.Error()+": "))
	case isErrno(de.err, syscall.ECONNREFUSED, "connection refused"):
		return fmt.Sprintf("connection refused by %s: nothing listens on that port (the SYN was answered with a reset)", t)
	case errors.Is(de.err, errNoRoute), isErrno(de.err, syscall.EHOSTUNREACH, "no route to host"), isErrno(de.err, syscall.ENETUNREACH, "network is unreachable"):
		return fmt.Sprintf("no route to %s: the host side of %s cannot reach it (it answered the SYN with ICMP unreachable); check the host's routes and that it forwards packets from %s (Linux: sysctl net.ipv4.ip_forward=1)", t.Addr(), de.dev, de.dev)
	case isErrno(de.err, syscall.ETIMEDOUT, "timed out"):
		return fmt.Sprintf("connection to %s timed out: nothing answered the SYN; check that the host side of %s is configured and that the host routes (and forwards) to %s", t, de.dev, t.Addr())
	}
	return de.Error()
}

// isErrno reports whether err is the system error e. The stack returns
// syscall errors on Unix and errors of the same text on Windows.
func isErrno(err error, e syscall.Errno, text string) bool {
	return errors.Is(err, e) || strings.Contains(err.Error(), text)
}
