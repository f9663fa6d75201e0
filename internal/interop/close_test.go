//go:build linux

package interop

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/umptcp/umptcp/decode"
)

// closeData is what each end sends before a close case closes.
const closeData = 1 << 20

// answer is what the end that reads EOF first sends back in the half-close
// cases.
var answer = []byte("answer after EOF")

// closeCase is one order of closing.
type closeCase struct {
	name string
	// data: both ends exchange closeData bytes first.
	data bool
	// kernelFINAlone: the kernel has nothing left to send when it closes,
	// so its DATA_FIN must travel on an option-only segment (no payload,
	// no TCP FIN), as Linux sends it.
	kernelFINAlone bool
	run            func(t *testing.T, s *session)
}

var closeCases = []closeCase{
	{name: "umptcp-first", data: true, kernelFINAlone: true, run: func(t *testing.T, s *session) {
		closeOurs(t, s)
		kernelEOF(t, s)
		closeKernel(t, s)
	}},
	{name: "kernel-first", data: true, kernelFINAlone: true, run: func(t *testing.T, s *session) {
		closeKernel(t, s)
		oursEOF(t, s)
		closeOurs(t, s)
	}},
	{name: "simultaneous", data: true, kernelFINAlone: true, run: func(t *testing.T, s *session) {
		// Both ends call Close at once; their DATA_FINs cross.
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; closeOurs(t, s) })
		wg.Go(func() { <-start; closeKernel(t, s) })
		close(start)
		wg.Wait()
	}},
	{name: "umptcp-halfclose", data: true, run: func(t *testing.T, s *session) {
		// umptcp shuts down its write side, the kernel reads EOF, answers
		// and closes; umptcp reads the answer and EOF, and closes.
		if err := s.ours.CloseWrite(); err != nil {
			t.Errorf("umptcp: CloseWrite: %v", err)
		}
		kernelEOF(t, s)
		writeAll(t, "kernel", s.kern, answer)
		closeKernel(t, s)
		readAnswer(t, "umptcp", s.ours)
		oursEOF(t, s)
		closeOurs(t, s)
	}},
	{name: "kernel-halfclose", data: true, kernelFINAlone: true, run: func(t *testing.T, s *session) {
		if err := s.kern.CloseWrite(); err != nil {
			t.Errorf("kernel: CloseWrite: %v", err)
		}
		oursEOF(t, s)
		writeAll(t, "umptcp", s.ours, answer)
		closeOurs(t, s)
		readAnswer(t, "kernel", s.kern)
		kernelEOF(t, s)
		closeKernel(t, s)
	}},
	// Closing before any data: the DATA_FIN is the first DSS of its
	// sender (umptcp as client has not even seen a DSS from the kernel).
	{name: "umptcp-first-nodata", kernelFINAlone: true, run: func(t *testing.T, s *session) {
		closeOurs(t, s)
		kernelEOF(t, s)
		closeKernel(t, s)
	}},
	{name: "kernel-first-nodata", kernelFINAlone: true, run: func(t *testing.T, s *session) {
		closeKernel(t, s)
		oursEOF(t, s)
		closeOurs(t, s)
	}},
}

// TestClose is case 3: orderly close in every order, in both roles. Each
// end reads EOF (never an error) where it should; both DATA_FINs are on the
// wire, the kernel's on an option-only segment when it had nothing left to
// send; no fast close, reset or fallback is counted; afterwards the kernel
// has no socket of the connection left (TIME-WAIT aside, logged) and both
// MPCurrEstab gauges are back to 0.
func TestClose(t *testing.T) {
	for _, cc := range closeCases {
		eachVariant(t, cc.name, func(t *testing.T, v6 bool, r role) { testClose(t, v6, r, cc) })
	}
}

func testClose(t *testing.T, v6 bool, r role, cc closeCase) {
	s := open(t, r, env{v6: v6})
	deadline := time.Now().Add(closeLimit)
	s.ours.SetDeadline(deadline)
	s.kern.SetDeadline(deadline)
	if cc.data {
		exchange(t, s, closeData)
	}
	info := s.ours.Info()
	cc.run(t, s)
	res := s.finish(captureWant{handshake: true})
	if !info.MPTCP {
		t.Errorf("umptcp: not MPTCP before the close: %v", info)
	}
	checkSSUp(t, s, oursResult{info: info})
	kh, oh := handshakeCounters(r)
	base := zeros(zeroAlways, zeroNoFallback, zeroOrderly)
	expect(t, "kernel", res.peer, base.with(kh))
	expect(t, "umptcp", res.ours, base.with(oh))
	checkDataFINs(t, s, cc.kernelFINAlone, res)
}

// checkDataFINs checks that both ends sent a DATA_FIN, and how the kernel
// sent its first one.
func checkDataFINs(t *testing.T, s *session, kernelFINAlone bool, res result) {
	t.Helper()
	fins := s.caps[0].dataFINs(t)
	var ours, kernel []sighting
	for _, f := range fins {
		if f.src == s.kerAddr {
			kernel = append(kernel, f)
		} else {
			ours = append(ours, f)
		}
	}
	if len(ours) == 0 {
		t.Errorf("capture: no DATA_FIN from umptcp")
	}
	if len(kernel) == 0 {
		t.Errorf("capture: no DATA_FIN from the kernel")
	} else if f := kernel[0]; kernelFINAlone && (f.payload != 0 || f.flags&decode.FlagFIN != 0) {
		t.Errorf("capture: the kernel's first DATA_FIN (frame %d) has %d bytes of payload, TCP flags %#x; want an option-only ACK",
			f.frame, f.payload, f.flags)
	}
	t.Logf("DATA_FIN segments: %d from umptcp, %d from the kernel; %d kernel sockets in TIME-WAIT", len(ours), len(kernel), len(res.leftover))
	if c := res.captures[0].Checks[decode.CheckDataFIN]; c.OK == 0 {
		t.Errorf("capture: no data-fin check made: %+v", c)
	}
}

// exchange has both ends send n bytes and read exactly n bytes from the
// other, and checks them.
func exchange(t *testing.T, s *session, n int64) {
	t.Helper()
	var oursSent, kernSent, oursGot, kernGot string
	var errs [4]error
	var wg sync.WaitGroup
	wg.Go(func() { _, oursSent, errs[0] = writePayload(s.ours, seedUp, n) })
	wg.Go(func() { _, kernSent, errs[1] = writePayload(s.kern, seedDown, n) })
	wg.Go(func() { oursGot, errs[2] = hashRead(s.ours, n) })
	wg.Go(func() { kernGot, errs[3] = hashRead(s.kern, n) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if oursGot != kernSent || kernGot != oursSent {
		t.Fatalf("exchange: data corrupted (umptcp→kernel ok %v, kernel→umptcp ok %v)", kernGot == oursSent, oursGot == kernSent)
	}
}

func closeOurs(t *testing.T, s *session) {
	t.Helper()
	if err := s.ours.Close(); err != nil {
		t.Errorf("umptcp: Close: %v", err)
	}
}

func closeKernel(t *testing.T, s *session) {
	t.Helper()
	if err := s.kern.Close(); err != nil {
		t.Errorf("kernel: Close: %v", err)
	}
}

// oursEOF and kernelEOF read and want EOF: no data, no error.
func oursEOF(t *testing.T, s *session) { t.Helper(); wantEOF(t, "umptcp", s.ours) }

func kernelEOF(t *testing.T, s *session) { t.Helper(); wantEOF(t, "kernel", s.kern) }

func wantEOF(t *testing.T, who string, r io.Reader) {
	t.Helper()
	var b [64]byte
	n, err := r.Read(b[:])
	if n != 0 || err != io.EOF {
		t.Errorf("%s: read %d bytes, %v; want EOF", who, n, err)
	}
}

func writeAll(t *testing.T, who string, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Errorf("%s: write: %v", who, err)
	}
}

func readAnswer(t *testing.T, who string, r io.Reader) {
	t.Helper()
	b := make([]byte, len(answer))
	if _, err := io.ReadFull(r, b); err != nil || string(b) != string(answer) {
		t.Errorf("%s: read answer %q, %v", who, b, err)
	}
}
