//go:build linux

package interop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/stack"
)

// fastCloseCase is one way of aborting a connection.
type fastCloseCase struct {
	name string
	// kernelAborts: the kernel aborts (else umptcp does).
	kernelAborts bool
	run          func(t *testing.T, s *session)
}

var fastCloseCases = []fastCloseCase{
	{name: "kernel-close-unread", kernelAborts: true, run: func(t *testing.T, s *session) {
		// umptcp sends data the kernel never reads; close() with unread
		// data makes Linux fast-close (__mptcp_close: mptcp_data_avail).
		writeAll(t, "umptcp", s.ours, make([]byte, 64<<10))
		waitPending(t, s.kern)
		closeKernel(t, s)
	}},
	{name: "kernel-linger0", kernelAborts: true, run: func(t *testing.T, s *session) {
		exchange(t, s, 64<<10)
		if err := s.kern.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		closeKernel(t, s)
	}},
	{name: "umptcp-close-unread", run: func(t *testing.T, s *session) {
		// The kernel sends 64 KiB; umptcp reads one byte (so the rest has
		// arrived or is arriving) and closes.
		writeAll(t, "kernel", s.kern, make([]byte, 64<<10))
		var b [1]byte
		if _, err := io.ReadFull(s.ours, b[:]); err != nil {
			t.Fatalf("umptcp: read: %v", err)
		}
		closeOurs(t, s)
	}},
	{name: "umptcp-linger0", run: func(t *testing.T, s *session) {
		exchange(t, s, 64<<10)
		if err := s.ours.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		closeOurs(t, s)
	}},
}

// TestFastClose is case 4: aborts both ways, in both roles. The aborting
// side counts MPFastcloseTx and the other MPFastcloseRx; the capture has an
// MP_FASTCLOSE carrying the receiver's key; the other end's read and write
// fail (umptcp: ErrFastClosed; the kernel: ECONNRESET or EPIPE); nothing is
// left of the connection in the kernel, not even TIME-WAIT.
func TestFastClose(t *testing.T) {
	for _, fc := range fastCloseCases {
		eachVariant(t, fc.name, func(t *testing.T, v6 bool, r role) { testFastClose(t, v6, r, fc) })
	}
}

func testFastClose(t *testing.T, v6 bool, r role, fc fastCloseCase) {
	s := open(t, r, env{v6: v6})
	deadline := time.Now().Add(closeLimit)
	s.ours.SetDeadline(deadline)
	s.kern.SetDeadline(deadline)
	info := s.ours.Info()
	fc.run(t, s)
	if fc.kernelAborts {
		readErr, writeErr := failedIO(s.ours)
		t.Logf("umptcp after the kernel's abort: read %v; write %v", readErr, writeErr)
		for _, err := range []error{readErr, writeErr} {
			if !errors.Is(err, stack.ErrFastClosed) {
				t.Errorf("umptcp: got %v, want %v", err, stack.ErrFastClosed)
			}
		}
		closeOurs(t, s)
	} else {
		readErr, writeErr := failedIO(s.kern)
		t.Logf("kernel after umptcp's abort: read %v; write %v", readErr, writeErr)
		if !errors.Is(readErr, syscall.ECONNRESET) {
			t.Errorf("kernel: read: %v, want ECONNRESET", readErr)
		}
		if !errors.Is(writeErr, syscall.ECONNRESET) && !errors.Is(writeErr, syscall.EPIPE) {
			t.Errorf("kernel: write: %v, want ECONNRESET or EPIPE", writeErr)
		}
		closeKernel(t, s)
	}
	res := s.finish(captureWant{handshake: true})
	if len(res.leftover) > 0 {
		t.Errorf("kernel: sockets left after an abort: %v", res.leftover)
	}
	checkSSUp(t, s, oursResult{info: info})

	kh, oh := handshakeCounters(r)
	base := zeros(zeroAlways, zeroNoFallback)
	abortRx := counters{"MPFastcloseTx": 0, "MPFastcloseRx": 1}
	if fc.kernelAborts {
		expect(t, "kernel", res.peer, base.with(kh).with(counters{"MPFastcloseTx": 1, "MPFastcloseRx": 0}))
		expect(t, "umptcp", res.ours, base.with(oh).with(abortRx))
	} else {
		expect(t, "kernel", res.peer, base.with(kh).with(abortRx))
		expect(t, "umptcp", res.ours, base.with(oh).with(counters{"MPFastcloseRx": 0}))
		// umptcp counts every MP_FASTCLOSE it sends, like Linux, but it also
		// puts one on each RST that answers the kernel's segments still in
		// flight (Linux answers those with plain RSTs): at least one.
		if n := res.ours["MPTcpExtMPFastcloseTx"]; n == 0 {
			t.Errorf("umptcp: MPTcpExtMPFastcloseTx = 0, want at least 1")
		}
	}
	checkAfterReset(t, s, fc.kernelAborts)

	from := s.oursAddr
	if fc.kernelAborts {
		from = s.kerAddr
	}
	sent := s.caps[0].find(t, func(_ *decode.Packet, o *options.Option) bool { return o.Subtype == options.SubtypeMPFastClose })
	var fromCloser int
	for _, f := range sent {
		if f.src == from {
			fromCloser++
		} else {
			t.Errorf("capture: MP_FASTCLOSE from %v, the side that did not abort (frame %d)", f.src, f.frame)
		}
	}
	if fromCloser == 0 {
		t.Errorf("capture: no MP_FASTCLOSE from %v", from)
	}
	rsts := s.caps[0].find(t, func(_ *decode.Packet, o *options.Option) bool { return o.Subtype == options.SubtypeMPTCPRst })
	t.Logf("capture: %d MP_FASTCLOSE, MP_TCPRST %s", len(sent), describeResets(rsts))
}

// checkAfterReset checks umptcp's segments once a RST crossed: nothing
// but RSTs, and no RST in answer to the kernel's. Segments that reach the
// kernel's veth within inFlight of the RST may have left umptcp before it
// saw the RST, and are not held against it.
func checkAfterReset(t *testing.T, s *session, kernelAborts bool) {
	t.Helper()
	const inFlight = time.Millisecond
	var first segment
	found := false
	for _, seg := range s.caps[0].segments(t) {
		if !found {
			if seg.rst() {
				first, found = seg, true
			}
			continue
		}
		if seg.src != s.oursAddr || seg.at.Sub(first.at) < inFlight {
			continue
		}
		switch {
		case !seg.rst():
			t.Errorf("frame %d: umptcp sends a segment (flags %#x, %d bytes) %v after the RST of frame %d",
				seg.frame, seg.flags, seg.payload, seg.at.Sub(first.at), first.frame)
		case kernelAborts:
			t.Errorf("frame %d: umptcp answers the kernel's RST+MP_FASTCLOSE of frame %d with a RST", seg.frame, first.frame)
		}
	}
	if !found {
		t.Errorf("capture: no RST")
	}
}

// failedIO reads and then writes on c after the peer aborted, and returns
// both errors (a read that returns data is an error too).
func failedIO(c net.Conn) (readErr, writeErr error) {
	var b [4096]byte
	for {
		n, err := c.Read(b[:])
		if err != nil {
			readErr = err
			break
		}
		if n > 0 {
			continue // data sent before the abort may still be read
		}
	}
	if readErr == io.EOF {
		readErr = fmt.Errorf("EOF, not an abort")
	}
	// A kernel socket reports the reset on the first write after it, a
	// second one at the latest.
	for range 2 {
		if _, writeErr = c.Write(b[:]); writeErr != nil {
			break
		}
	}
	if writeErr == nil {
		writeErr = fmt.Errorf("write succeeded after the abort")
	}
	return readErr, writeErr
}

// waitPending blocks until data is pending on the kernel's socket, without
// reading it (MSG_PEEK), so that a close leaves it unread.
func waitPending(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, perr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(perr, unix.EAGAIN)
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		t.Fatalf("kernel: waiting for pending data: %v", err)
	}
}

func describeResets(rsts []sighting) string {
	if len(rsts) == 0 {
		return "none"
	}
	s := ""
	for _, r := range rsts {
		m := r.opt.MPTCPRst()
		s += fmt.Sprintf("[frame %d from %v reason %d flags %#x]", r.frame, r.src, m.Reason, m.Flags)
	}
	return s
}
