package kernelpeer

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needMPTCP skips the test when the kernel has no MPTCP, saying why. Under CI (CI=true)
// that is a failure instead: CI machines are expected to have net.mptcp.enabled=1.
func needMPTCP(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("kernel MPTCP tests need Linux")
	}
	why := ""
	b, err := os.ReadFile("/proc/sys/net/mptcp/enabled")
	switch {
	case err != nil:
		why = "kernel has no MPTCP (" + err.Error() + ")"
	case strings.TrimSpace(string(b)) != "1":
		why = "kernel MPTCP is disabled: net.mptcp.enabled is " + strings.TrimSpace(string(b)) +
			" (enable with: sysctl -w net.mptcp.enabled=1)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// pair runs a server with scfg on loopback and a client with ccfg against it, and returns
// both results and errors.
func pair(t *testing.T, scfg, ccfg Config) (srv, cli Result, serr, cerr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	scfg.Addr = ln.Addr().String()
	ccfg.Addr = ln.Addr().String()

	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := Serve(ctx, ln, scfg)
		done <- out{r, err}
	}()
	cli, cerr = RunClient(ctx, ccfg)
	if cerr != nil {
		cancel() // do not leave the server waiting for a client that gave up
	}
	o := <-done
	return o.res, cli, o.err, cerr
}

func TestLoopbackBothWays(t *testing.T) {
	needMPTCP(t)
	const up, down = 300_000, 120_000
	srv, cli, serr, cerr := pair(t,
		Config{Sink: true, Send: down, Seed: 2, RequireMPTCP: true},
		Config{Sink: true, Send: up, Seed: 1, Writes: SizeRange{Min: 100, Max: 9000}, RequireMPTCP: true},
	)
	if serr != nil || cerr != nil {
		t.Fatalf("server error %v, client error %v", serr, cerr)
	}
	for _, r := range []Result{srv, cli} {
		if !r.MPTCP {
			t.Errorf("%s: MultipathTCP() is false with net.mptcp.enabled=1", r.Role)
		}
		if r.Info == nil || r.Info.Fallback || !r.Info.RemoteKeyReceived {
			t.Errorf("%s: MPTCP_INFO %+v, want no fallback and the remote key", r.Role, r.Info)
		}
	}
	if cli.Sent != up || srv.Received != up || cli.SentSHA256 != PayloadSHA256(1, up) ||
		srv.ReceivedSHA256 != cli.SentSHA256 {
		t.Errorf("upload: client sent %d %s, server got %d %s", cli.Sent, cli.SentSHA256,
			srv.Received, srv.ReceivedSHA256)
	}
	if srv.Sent != down || cli.Received != down || srv.SentSHA256 != PayloadSHA256(2, down) ||
		cli.ReceivedSHA256 != srv.SentSHA256 {
		t.Errorf("download: server sent %d %s, client got %d %s", srv.Sent, srv.SentSHA256,
			cli.Received, cli.ReceivedSHA256)
	}
	// The DSNs after both DATA_FINs: each side's write_seq is what the other received
	// (rcv_nxt), both counting the DATA_FIN.
	if cli.Info != nil && srv.Info != nil && cli.Info.WriteSeq != srv.Info.RcvNxt {
		t.Errorf("client write_seq %d != server rcv_nxt %d", cli.Info.WriteSeq, srv.Info.RcvNxt)
	}
}

func TestLoopbackEcho(t *testing.T) {
	needMPTCP(t)
	const n = 50_000
	srv, cli, serr, cerr := pair(t,
		Config{Echo: true, RequireMPTCP: true},
		Config{Sink: true, Send: n, Seed: 7, Writes: SizeRange{Min: 1000, Max: 1000}, RequireMPTCP: true},
	)
	if serr != nil || cerr != nil {
		t.Fatalf("server error %v, client error %v", serr, cerr)
	}
	want := PayloadSHA256(7, n)
	if srv.Received != n || srv.Sent != n || cli.Received != n || cli.ReceivedSHA256 != want {
		t.Errorf("echo: server got %d sent %d, client got %d %s, want %d %s",
			srv.Received, srv.Sent, cli.Received, cli.ReceivedSHA256, n, want)
	}
}

// TestLoopbackFastClose closes the server with SO_LINGER 0 while the client's data is
// unread: the kernel answers with MP_FASTCLOSE, which the client sees as a reset.
func TestLoopbackFastClose(t *testing.T) {
	needMPTCP(t)
	srv, cli, serr, cerr := pair(t,
		Config{Linger0: true, RequireMPTCP: true},
		Config{Sink: true, Send: 20_000, RequireMPTCP: true},
	)
	if serr != nil {
		t.Fatalf("server: %v", serr)
	}
	if !srv.Aborted || srv.Received != 0 {
		t.Errorf("server: aborted %v, read %d bytes; want an abort with nothing read",
			srv.Aborted, srv.Received)
	}
	if !errors.Is(cerr, syscall.ECONNRESET) && !errors.Is(cerr, syscall.EPIPE) {
		t.Errorf("client error %v, want a reset", cerr)
	}
	if cli.Error == "" {
		t.Error("client result has no error text")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{},
		{Addr: "127.0.0.1:1", Echo: true, Sink: true},
		{Addr: "127.0.0.1:1", Send: -1},
		{Addr: "127.0.0.1:1", Writes: SizeRange{Min: 10, Max: 5}},
	} {
		if _, err := RunClient(ctx, cfg); err == nil || errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("RunClient(%+v) = %v, want a configuration error", cfg, err)
		}
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Serve(ctx, ln, Config{Addr: ln.Addr().String()}); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel = %v, want context.Canceled", err)
	}

	// The listener still serves afterwards.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Serve(ctx, ln, Config{Addr: ln.Addr().String(), Sink: true})
		done <- err
	}()
	if _, err := RunClient(ctx, Config{Addr: ln.Addr().String(), Send: 10}); err != nil {
		t.Errorf("client after a cancelled Serve: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after a cancelled Serve: %v", err)
	}
}

func TestDialLocalAddress(t *testing.T) {
	needMPTCP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial(ctx, "127.0.0.1", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ip := c.LocalAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("local address %v, want 127.0.0.1", c.LocalAddr())
	}
}
