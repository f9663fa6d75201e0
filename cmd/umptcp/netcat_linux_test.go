//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/umptcp/umptcp/internal/kernelpeer"
	"github.com/umptcp/umptcp/internal/netns"
)

// TestNetcatKernel runs the umptcp binary's connect and listen on a TUN
// device in network namespaces of its own, against the Linux kernel's MPTCP
// (internal/kernelpeer, in this process, on sockets made inside the
// namespace): data both ways checked by SHA-256, --stats-json, --pcap, the
// kernel's view (nstat, ss -Mni), --keep --echo with two connections,
// --no-host-config, signals, and the errors a user meets.
//
// It needs root, ip(8), ss(8), nstat(8) and /dev/net/tun. Without them it
// skips; with CI=true it fails instead, as internal/interop does: CI must
// run it, not skip it quietly.
func TestNetcatKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in network namespaces")
	}
	requireKernel(t)
	bin := filepath.Join(t.TempDir(), "umptcp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("listen", func(t *testing.T) { testListenKernelClient(t, bin) })
	t.Run("connect", func(t *testing.T) { testConnectKernelServer(t, bin) })
	t.Run("keep-echo", func(t *testing.T) { testKeepEcho(t, bin) })
	t.Run("errors", func(t *testing.T) { testErrors(t, bin) })
	t.Run("no-permission", func(t *testing.T) { testNoPermission(t, bin) })
	t.Run("in-process", testInProcess)
}

// requireKernel is netns.Require plus the tools and the TUN driver.
func requireKernel(t *testing.T) {
	t.Helper()
	netns.RequireTUN(t, "ss", "nstat", "go")
}

var nsCounter struct {
	sync.Mutex
	n int
}

// newNS creates a network namespace for t, named from netns.Prefix, the
// test's name, the pid and a counter (the pattern netns.SweepStale
// recognises), and deletes it by that name when t ends, even on failure.
// It touches no other namespace: unlike netns.New it sweeps nothing.
func newNS(t *testing.T) *netns.NS {
	t.Helper()
	nsCounter.Lock()
	nsCounter.n++
	n := nsCounter.n
	nsCounter.Unlock()
	test := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	name := fmt.Sprintf("%snc-%s-%d-%d", netns.Prefix, test, os.Getpid(), n)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &netns.NS{Name: name}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	ns.MustRun(t, "ip", "link", "set", "lo", "up")
	ns.MustRun(t, "sysctl", "-q", "-w", "net.mptcp.enabled=1")
	return ns
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a umptcp process this test started; cleanup kills it by its pid
// if it is still running.
type proc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
	err    error // of Wait, once done is closed
}

// startUmptcp runs bin with args inside ns (ip netns exec execs it: the
// pid is umptcp's), with stdin and stdout from files ("" for none).
func startUmptcp(t *testing.T, ns *netns.NS, bin, stdin, stdout string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin}, args...)...)
	p.cmd.Stderr = &p.stderr
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the child has its own copy
		p.cmd.Stdin = f
	}
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p.cmd.Stdout = f
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit status, failing t if the process runs past d.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("umptcp %v still running after %v; killed. stderr:\n%s", p.cmd.Args[4:], d, p.stderr.String())
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// waitStderr waits until the process wrote s on standard error.
func (p *proc) waitStderr(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("umptcp exited (%v) before writing %q; stderr:\n%s", p.err, s, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr after 15s:\n%s", s, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// payloadFile writes the first n bytes of kernelpeer.Payload(seed).
func payloadFile(t *testing.T, seed uint64, n int64) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), fmt.Sprintf("payload-%d", seed))
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, kernelpeer.Payload(seed), n); err != nil {
		t.Fatal(err)
	}
	return name
}

func fileSHA256(t *testing.T, name string) (int64, string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return int64(len(b)), hex.EncodeToString(sum[:])
}

func readStats(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("--stats-json: %v\n%s", err, b)
	}
}

// kernelDial opens a kernel MPTCP connection from inside ns.
func kernelDial(t *testing.T, ns *netns.NS, addr string) *net.TCPConn {
	t.Helper()
	var c *net.TCPConn
	err := ns.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		c, err = kernelpeer.Dial(ctx, "", addr)
		return err
	})
	if err != nil {
		t.Fatalf("kernel dial %s: %v", addr, err)
	}
	return c
}

// ssToken returns the token `ss -Mni` shows in ns for the established
// MPTCP socket between local and remote: the kernel's view that the
// connection is MPTCP. It may run on any goroutine.
func ssToken(ns *netns.NS, local, remote string) (uint32, error) {
	out, err := ns.SS("-Mni")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(out, "\n")
	// A dual-stack listener's sockets show IPv4 addresses mapped.
	unmap := strings.NewReplacer("[::ffff:", "", "]:", ":")
	for i, line := range lines {
		line = unmap.Replace(line)
		if !strings.HasPrefix(line, "ESTAB") || !strings.Contains(line, local) || !strings.Contains(line, remote) {
			continue
		}
		for _, d := range lines[i+1:] {
			if !strings.HasPrefix(d, "\t") && !strings.HasPrefix(d, " ") {
				break
			}
			for _, f := range strings.Fields(d) {
				if tok, ok := strings.CutPrefix(f, "token:"); ok {
					v, err := strconv.ParseUint(tok, 16, 32)
					return uint32(v), err
				}
			}
		}
	}
	return 0, fmt.Errorf("ss -Mni shows no established MPTCP socket %s - %s:\n%s", local, remote, out)
}

func hexToken(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatalf("token %q: %v", s, err)
	}
	return uint32(v)
}

// checkKernelCounters checks the kernel's MIB in ns (a namespace of this
// test alone, so absolute values are this test's): the counters in want
// have those values, and no MPTCP fallback, reset or fast close and no
// reset of an established TCP connection was counted.
func checkKernelCounters(t *testing.T, ns *netns.NS, want map[string]uint64) {
	t.Helper()
	m, err := ns.Nstat("MPTcpExt*", "TcpEstabResets")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("kernel %s = %d, want %d", k, m[k], v)
		}
	}
	for k, v := range m {
		if v != 0 && (strings.Contains(k, "Fallback") || strings.Contains(k, "Fastclose") || strings.Contains(k, "Rst") ||
			strings.Contains(k, "Reset") || strings.Contains(k, "Mismatch") || strings.Contains(k, "NotMatching")) {
			t.Errorf("kernel %s = %d", k, v)
		}
	}
}

// The kernel dials `umptcp listen`: 4 MiB each way, the kernel's socket is
// MPTCP (ss -Mni, nstat, MPTCP_INFO) with the token the stats name, and the
// capture is a clean MPTCP connection.
func testListenKernelClient(t *testing.T, bin string) {
	ns := newNS(t)
	const n = 4 << 20
	dir := t.TempDir()
	in, out := payloadFile(t, 2, n), filepath.Join(dir, "out")
	stats, pcap := filepath.Join(dir, "stats.json"), filepath.Join(dir, "cap.pcap")
	p := startUmptcp(t, ns, bin, in, out, "listen", "-v", "--tun", "ump0=10.71.0.2/24",
		"--stats-json", stats, "--pcap", pcap, ":5001")
	p.waitStderr(t, "umptcp listen: listening on 10.71.0.2:5001 (device ump0, host side 10.71.0.1)")

	c := kernelDial(t, ns, "10.71.0.2:5001")
	kernelLocal := c.LocalAddr().String()
	ssTok, err := ssToken(ns, kernelLocal, "10.71.0.2:5001")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kernelpeer.Run(ctx, "client", c, kernelpeer.Config{Addr: "10.71.0.2:5001", Send: n, Seed: 1, Sink: true, RequireMPTCP: true})
	if err != nil {
		t.Fatalf("kernel client: %v", err)
	}
	if code := p.wait(t, 30*time.Second); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	t.Logf("stderr:\n%s", p.stderr.String())

	if res.Received != n || res.ReceivedSHA256 != kernelpeer.PayloadSHA256(2, n) {
		t.Errorf("kernel received %d bytes, digest %s; want %d, %s", res.Received, res.ReceivedSHA256, n, kernelpeer.PayloadSHA256(2, n))
	}
	if size, sum := fileSHA256(t, out); size != n || sum != kernelpeer.PayloadSHA256(1, n) {
		t.Errorf("stdout has %d bytes, digest %s; want %d, %s", size, sum, n, kernelpeer.PayloadSHA256(1, n))
	}
	var st connStats
	readStats(t, stats, &st)
	if !st.MPTCP || st.FallbackReason != "" || st.BytesSent != n || st.BytesReceived != n || st.Error != "" ||
		st.Local != "10.71.0.2:5001" || st.Remote != kernelLocal || len(st.Subflows) != 1 {
		t.Errorf("stats: %+v", st)
	} else if sf := st.Subflows[0]; sf.Local != st.Local || sf.Remote != kernelLocal || sf.BytesReceived < n || sf.BytesSent < n || sf.RTTMs <= 0 {
		t.Errorf("subflow stats: %+v", sf)
	}
	if res.Info == nil || res.Info.Fallback {
		t.Fatalf("kernel MPTCP_INFO: %+v", res.Info)
	}
	if rt := hexToken(t, st.RemoteToken); rt != res.Info.Token || rt != ssTok {
		t.Errorf("umptcp's remote_token %s, kernel's token %08x (MPTCP_INFO), %08x (ss -Mni)", st.RemoteToken, res.Info.Token, ssTok)
	}
	checkKernelCounters(t, ns, map[string]uint64{"MPTcpExtMPCapableSYNACKRX": 1, "MPTcpExtMPCurrEstab": 0})
	for _, s := range []string{"connection from " + kernelLocal + ": MPTCP, token " + st.Token, "sent 4.19 MB, received 4.19 MB in"} {
		if !strings.Contains(p.stderr.String(), s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	capture, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	checkCapture(t, capture, 1)
	if out, err := ns.Run("ip", "link", "show", "ump0"); err == nil {
		t.Errorf("the device outlived the command:\n%s", out)
	}
}

// `umptcp connect` (water driver, DSS checksums) dials a kernel MPTCP
// listener: 4 MiB each way, the kernel saw MPTCP with checksums.
func testConnectKernelServer(t *testing.T, bin string) {
	ns := newNS(t)
	const n = 4<<20 + 3
	dir := t.TempDir()
	in, out, stats := payloadFile(t, 4, n), filepath.Join(dir, "out"), filepath.Join(dir, "stats.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ln *net.TCPListener
	if err := ns.Do(func() (err error) {
		ln, err = kernelpeer.Listen(ctx, "0.0.0.0:5002")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type served struct {
		res   kernelpeer.Result
		ssTok uint32
		err   error
	}
	srv := make(chan served, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			srv <- served{err: err}
			return
		}
		tok, serr := ssToken(ns, "10.72.0.1:5002", c.RemoteAddr().String())
		res, err := kernelpeer.Run(ctx, "server", c, kernelpeer.Config{Addr: "0.0.0.0:5002", Send: n, Seed: 3, Sink: true, RequireMPTCP: true})
		if err == nil {
			err = serr
		}
		srv <- served{res, tok, err}
	}()
	p := startUmptcp(t, ns, bin, in, out, "connect", "--tun", "ump0=10.72.0.2/24", "--tun-driver", "water",
		"--checksum", "--stats-json", stats, "10.72.0.1:5002")
	code := p.wait(t, 30*time.Second)
	s := <-srv
	if code != exitOK || s.err != nil {
		t.Fatalf("exit %d, kernel server: %v; stderr:\n%s", code, s.err, p.stderr.String())
	}
	if s.res.Received != n || s.res.ReceivedSHA256 != kernelpeer.PayloadSHA256(4, n) {
		t.Errorf("kernel received %d bytes, digest %s", s.res.Received, s.res.ReceivedSHA256)
	}
	if size, sum := fileSHA256(t, out); size != n || sum != kernelpeer.PayloadSHA256(3, n) {
		t.Errorf("stdout has %d bytes, digest %s", size, sum)
	}
	var st connStats
	readStats(t, stats, &st)
	if !st.MPTCP || !st.Checksum || st.BytesSent != n || st.BytesReceived != n || st.Remote != "10.72.0.1:5002" ||
		len(st.Subflows) != 1 || st.Subflows[0].BytesReceived < n {
		t.Errorf("stats: %+v", st)
	}
	if s.res.Info == nil || !s.res.Info.ChecksumEnabled || s.res.Info.Fallback {
		t.Errorf("kernel MPTCP_INFO: %+v", s.res.Info)
	} else if rt := hexToken(t, st.RemoteToken); rt != s.res.Info.Token || rt != s.ssTok {
		t.Errorf("umptcp's remote_token %s, kernel's %08x (MPTCP_INFO), %08x (ss -Mni)", st.RemoteToken, s.res.Info.Token, s.ssTok)
	}
	checkKernelCounters(t, ns, map[string]uint64{"MPTcpExtMPCapableSYNRX": 1, "MPTcpExtMPCapableACKRX": 1, "MPTcpExtMPCurrEstab": 0})
}

// `umptcp listen --keep --echo --no-host-config`: the host commands it
// prints configure the device; two kernel connections at once get their
// bytes back; SIGTERM ends it with status 0 and the stats of both.
func testKeepEcho(t *testing.T, bin string) {
	ns := newNS(t)
	stats := filepath.Join(t.TempDir(), "stats.json")
	p := startUmptcp(t, ns, bin, "", "", "listen", "--keep", "--echo", "--no-host-config",
		"--tun", "ump0=10.73.0.2/24", "--mtu", "1400", "--stats-json", stats, ":5003")
	p.waitStderr(t, "listening on 10.73.0.2:5003")
	var cmds [][]string
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if strings.HasPrefix(line, "  ip ") {
			cmds = append(cmds, strings.Fields(line))
		}
	}
	want := [][]string{strings.Fields("ip link set dev ump0 mtu 1400 up"), strings.Fields("ip addr add 10.73.0.1/24 dev ump0")}
	if fmt.Sprint(cmds) != fmt.Sprint(want) {
		t.Fatalf("host commands %q, want %q; stderr:\n%s", cmds, want, p.stderr.String())
	}
	for _, c := range cmds {
		ns.MustRun(t, c...)
	}

	sizes := []int64{1 << 20, 1<<20 + 1}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, size := range sizes {
		c := kernelDial(t, ns, "10.73.0.2:5003")
		wg.Go(func() {
			res, err := kernelpeer.Run(ctx, "client", c, kernelpeer.Config{Addr: "10.73.0.2:5003", Send: size, Seed: uint64(10 + i), Sink: true, RequireMPTCP: true})
			if err != nil {
				t.Errorf("kernel client %d: %v", i, err)
				return
			}
			if res.Received != size || res.ReceivedSHA256 != res.SentSHA256 {
				t.Errorf("client %d: sent %d (%s), echoed %d (%s)", i, res.Sent, res.SentSHA256, res.Received, res.ReceivedSHA256)
			}
		})
	}
	wg.Wait()
	// Both reports are printed once the connections finished.
	p.waitStderr(t, "echoed 1048576 of 1048576 bytes received")
	p.waitStderr(t, "echoed 1048577 of 1048577 bytes received")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 15*time.Second); code != exitOK {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
	var ks keepStats
	readStats(t, stats, &ks)
	if len(ks.Connections) != 2 || ks.Error != "" {
		t.Fatalf("stats: %+v", ks)
	}
	var total uint64
	for _, cs := range ks.Connections {
		if !cs.MPTCP || cs.BytesSent != cs.BytesReceived || cs.Error != "" {
			t.Errorf("connection stats: %+v", cs)
		}
		total += cs.BytesReceived
	}
	if total != uint64(sizes[0]+sizes[1]) {
		t.Errorf("received %d in all", total)
	}
	checkKernelCounters(t, ns, map[string]uint64{"MPTcpExtMPCapableSYNACKRX": 2, "MPTcpExtMPCurrEstab": 0})
}

// The errors a user meets, as the binary reports them: busy device,
// addresses in use, refused, no route (ICMP, and a host that does not
// forward), bad flags, and SIGINT with --stats-json.
func testErrors(t *testing.T, bin string) {
	ns := newNS(t)
	dir := t.TempDir()
	stats := filepath.Join(dir, "stats.json")
	holder := startUmptcp(t, ns, bin, "", "", "listen", "--tun", "ump0=10.74.0.2/24", "--stats-json", stats, ":5004")
	holder.waitStderr(t, "listening on 10.74.0.2:5004")

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"busy", []string{"listen", "--tun", "ump0=10.75.0.2/24", ":1"}, exitFailure,
			`umptcp listen: TUN device "ump0" is busy: another process holds it`},
		{"stack address in use", []string{"listen", "--tun", "ump1=10.74.0.1/24", ":1"}, exitFailure,
			"umptcp listen: address in use: 10.74.0.1, the stack's address (--tun), is already an address of this host (interface ump0)"},
		{"host address in use", []string{"connect", "--tun", "ump1=10.74.0.9/24", "10.74.0.1:1"}, exitFailure,
			"umptcp connect: address in use: 10.74.0.1, the host side's address on the device, already belongs to interface ump0"},
		{"refused", []string{"connect", "--tun", "ump1=10.76.0.2/24", "10.76.0.1:9"}, exitFailure,
			"umptcp connect: connection refused by 10.76.0.1:9: nothing listens on that port"},
		{"not forwarded", []string{"connect", "--connect-timeout", "1s", "--tun", "ump1=10.76.0.2/24", "192.0.2.1:80"}, exitFailure,
			"umptcp connect: no answer from 192.0.2.1:80 within 1s: the host does not forward packets (net.ipv4.ip_forward is 0)"},
		{"other family", []string{"connect", "--tun", "ump1=10.76.0.2/24", "[fd00::1]:80"}, exitFailure,
			"umptcp connect: no route to fd00::1: the stack has no IPv6 address (--tun gives it 10.76.0.2/24)"},
		{"bad flag", []string{"listen", "--tun", "ump1", ":1"}, exitUsage,
			`umptcp listen: invalid value "ump1" for flag -tun: want NAME=ADDR/PREFIX`},
		{"name too long", []string{"listen", "--tun", "umptcp-name-too-long=10.76.0.2/24", ":1"}, exitUsage,
			"--tun umptcp-name-too-long: bad device name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startUmptcp(t, ns, bin, "", "", tt.args...)
			if code := p.wait(t, 15*time.Second); code != tt.code || !strings.Contains(p.stderr.String(), tt.stderr) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant %q", code, tt.code, p.stderr.String(), tt.stderr)
			}
		})
	}
	t.Run("no route", func(t *testing.T) {
		// A forwarding host without a route answers the SYN with ICMP
		// network unreachable.
		ns.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		defer ns.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
		p := startUmptcp(t, ns, bin, "", "", "connect", "--connect-timeout", "10s", "--tun", "ump1=10.76.0.2/24", "192.0.2.1:80")
		want := "umptcp connect: no route to 192.0.2.1: the host side of ump1 cannot reach it"
		if code := p.wait(t, 15*time.Second); code != exitFailure || !strings.Contains(p.stderr.String(), want) {
			t.Errorf("exit %d, stderr:\n%s\nwant %q", code, p.stderr.String(), want)
		}
	})

	// SIGINT: the listener ends, says why, writes its stats, and the
	// device is gone.
	if err := holder.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := holder.wait(t, 10*time.Second); code != exitFailure || !strings.Contains(holder.stderr.String(), "umptcp listen: interrupted (SIGINT or SIGTERM)") {
		t.Errorf("after SIGINT: exit %d, stderr:\n%s", code, holder.stderr.String())
	}
	var st connStats
	readStats(t, stats, &st)
	if st.Error != "interrupted (SIGINT or SIGTERM)" || st.MPTCP || st.Subflows == nil {
		t.Errorf("stats after SIGINT: %+v", st)
	}
	if out, err := ns.Run("ip", "link", "show", "ump0"); err == nil {
		t.Errorf("the device outlived the command:\n%s", out)
	}
}

// Without root the kernel refuses the device, and the command says what to
// do. The test is root, so it runs the binary as nobody (uid 65534), in a
// new network namespace of its own that the child enters before dropping
// its privileges (clone(CLONE_NEWNET)); nothing outside it can change.
func testNoPermission(t *testing.T, bin string) {
	// nobody must be able to reach the binary: t.TempDir's directories
	// are 0700.
	for d := filepath.Dir(bin); d != filepath.Dir(filepath.Dir(filepath.Dir(bin))); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "listen", "--tun", "ump0=10.77.0.2/24", ":5000")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	want := `umptcp listen: no permission to create TUN device "ump0": run as root`
	if !ok || ee.ExitCode() != exitFailure || !strings.Contains(stderr.String(), want) {
		t.Errorf("as nobody: %v, stderr:\n%s\nwant %q", err, stderr.String(), want)
	}
}

// The whole of `umptcp connect`, run in this process on a thread inside
// the namespace (netns.NS.Do: the device and the host's netlink sockets
// are created there), leaves no goroutine behind: every one it started has
// stopped by the time run returns, the stack, the device and the progress
// line's included.
func testInProcess(t *testing.T) {
	ns := newNS(t)
	startSignalLoop()
	base := runtime.NumGoroutine()
	const n = 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ln *net.TCPListener
	if err := ns.Do(func() (err error) {
		ln, err = kernelpeer.Listen(ctx, "0.0.0.0:5005")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := make(chan error, 1)
	var res kernelpeer.Result
	go func() {
		var err error
		res, err = kernelpeer.Serve(ctx, ln, kernelpeer.Config{Addr: "0.0.0.0:5005", Send: n, Seed: 5, Sink: true, RequireMPTCP: true})
		srv <- err
	}()
	up := payload(6, n)
	var stdout, stderr bytes.Buffer
	code := -1
	if err := ns.Do(func() error {
		code = run([]string{"connect", "-v", "--tun", "ump0=10.78.0.2/24", "10.78.0.1:5005"}, bytes.NewReader(up), &stdout, &stderr)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-srv; err != nil || code != exitOK {
		t.Fatalf("exit %d, kernel: %v; stderr:\n%s", code, err, stderr.String())
	}
	ln.Close()
	sum := sha256.Sum256(up)
	if stdout.Len() != n || res.ReceivedSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("stdout %d bytes; kernel received %d bytes, digest %s", stdout.Len(), res.Received, res.ReceivedSHA256)
	}
	if got := sha256.Sum256(stdout.Bytes()); hex.EncodeToString(got[:]) != kernelpeer.PayloadSHA256(5, n) {
		t.Error("stdout is not what the kernel sent")
	}
	waitGoroutines(t, base)
}
