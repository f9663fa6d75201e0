//go:build linux

// Package netns builds throwaway Linux network topologies for tests and benchmarks:
// named network namespaces, veth pairs with IPv4 and IPv6 addresses, routes, sysctls,
// commands and Go functions run inside a namespace, and nstat/ss readers.
//
// Everything it creates is recorded and removed by Close (or by t.Cleanup when made with
// New), and nothing else is touched: namespaces carry a unique name (prefix, test name,
// pid), processes are killed by the pid this package started, and a namespace is deleted
// only by the name this package gave it. Namespaces left behind by a crashed run (their
// creator pid no longer exists) are swept by SweepStale, which New calls.
//
// # Running Go code in a namespace
//
// A network namespace belongs to an OS thread, and Go moves goroutines between threads.
// Do therefore runs the function on a new goroutine that locks its OS thread, joins the
// namespace with setns(2) and never unlocks: when the function returns the goroutine
// ends and the Go runtime destroys the thread (runtime.LockOSThread: "If the calling
// goroutine exits without unlocking the thread, the thread will be terminated"). No other
// goroutine can ever run on a thread left in the wrong namespace. Consequences:
//
//   - sockets, listeners and TUN devices created inside the function live in the
//     namespace and can be used from any goroutine afterwards;
//   - goroutines the function starts do NOT inherit the namespace (they run on other
//     threads); create what needs the namespace before returning;
//   - the mount namespace is not changed, so /sys inside Do shows the caller's devices;
//     use Run (ip netns exec, which remounts /sys) for tools that read sysfs.
//
// Commands (Run, Start) go through `ip netns exec NAME`, which also applies the
// namespace's /etc/netns/NAME configuration.
//
// Root (CAP_SYS_ADMIN and CAP_NET_ADMIN) is required. Tests call Require, which skips
// without root but fails when the CI environment variable is "true".
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace this package creates; SweepStale only ever
// looks at names with it.
const Prefix = "ump-"

// NS is a network namespace created by this package.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string

	mu     sync.Mutex
	procs  []*exec.Cmd
	closed bool
}

// Require skips tb unless the process is root and can create namespaces. When the CI
// environment variable is "true", it fails instead: CI must run these tests.
func Require(tb testing.TB) {
	tb.Helper()
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "needs root (network namespaces, veth, TUN)"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			reason = "needs the ip(8) command (iproute2)"
		}
	}
	if reason != "" {
		skipOrFail(tb, reason)
	}
}

// skipOrFail skips tb for a missing prerequisite, or fails it when the CI
// environment variable is "true": CI must run these tests.
func skipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s; CI=true so this is a failure, not a skip", reason)
	}
	tb.Skipf("skipping: %s", reason)
}

// RequireTUN is Require plus /dev/net/tun and the programs named in tools
// (looked up on PATH): it skips without them, or fails when CI is "true".
func RequireTUN(tb testing.TB, tools ...string) {
	tb.Helper()
	Require(tb)
	var missing []string
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		skipOrFail(tb, "needs "+strings.Join(missing, ", "))
	}
}

var counter struct {
	sync.Mutex
	n int
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// uniqueName is Prefix + name + test + pid + a counter, shortened to stay readable.
func uniqueName(name, test string) string {
	counter.Lock()
	counter.n++
	n := counter.n
	counter.Unlock()
	s := name
	if test != "" {
		s += "-" + test
	}
	s = unsafeChars.ReplaceAllString(s, "_")
	if len(s) > 80 {
		s = s[:80]
	}
	return fmt.Sprintf("%s%s-%d-%d", Prefix, s, os.Getpid(), n)
}

// New creates a namespace for tb and deletes it in tb.Cleanup, even when the test fails.
// The name is Prefix + name + test name + pid + counter. Loopback is brought up.
func New(tb testing.TB, name string) *NS {
	tb.Helper()
	Require(tb)
	SweepStale()
	ns, err := create(uniqueName(name, tb.Name()))
	if err != nil {
		tb.Fatalf("netns: %v", err)
	}
	tb.Cleanup(func() {
		if err := ns.Close(); err != nil {
			tb.Errorf("netns: %v", err)
		}
	})
	return ns
}

// Create makes a namespace outside of a test (benchmark programs). The caller must Close
// it; name is combined with the pid and a counter like New does.
func Create(name string) (*NS, error) {
	SweepStale()
	return create(uniqueName(name, ""))
}

func create(name string) (*NS, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	ns := &NS{Name: name}
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close kills the processes started with Start (by pid), then deletes the namespace.
// Interfaces inside it (veth ends, TUN devices) go with it. Close is idempotent.
func (n *NS) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for _, c := range procs {
		stop(c)
	}
	if out, err := exec.Command("ip", "netns", "delete", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns delete %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// stop kills a process this package started, by its pid, and reaps it.
func stop(c *exec.Cmd) {
	if c.Process == nil || c.ProcessState != nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

// SweepStale deletes namespaces named by this package whose creating process is gone
// (the pid in the name no longer exists), left over by a run that was killed before its
// cleanup ran. Names of live processes and names without Prefix are never touched.
func SweepStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `.*-(\d+)-\d+$`)
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // creator alive (or not ours to judge)
		}
		_ = exec.Command("ip", "netns", "delete", e.Name()).Run()
	}
}

// Run runs a command inside the namespace and returns its combined output. The error
// includes the output.
func (n *NS) Run(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %v: %s", n.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MustRun is Run that fails tb on error.
func (n *NS) MustRun(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := n.Run(args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Start starts a long-running command inside the namespace. Close kills it by pid; its
// output goes to stdout and stderr if non-nil.
func (n *NS) Start(stdout, stderr *bytes.Buffer, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.New("netns: namespace closed")
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n.procs = append(n.procs, cmd)
	return cmd, nil
}

// Do runs fn on a dedicated OS thread inside the namespace and returns its error. See the
// package documentation for what this means for goroutines started by fn.
func (n *NS) Do(fn func() error) error {
	fd, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", n.Name, err)
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread dies with this goroutine.
		runtime.LockOSThread()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: setns %s: %w", n.Name, err)
			return
		}
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("netns: panic in %s: %v", n.Name, r)
			}
		}()
		errc <- fn()
	}()
	return <-errc
}

// Sysctl sets a sysctl inside the namespace, e.g. Sysctl("net.ipv4.ip_forward", "1").
func (n *NS) Sysctl(key, value string) error {
	_, err := n.Run("sysctl", "-q", "-w", key+"="+value)
	return err
}

// AddAddr adds an address to dev; IPv6 addresses get nodad so they work at once.
func (n *NS) AddAddr(dev string, p netip.Prefix) error {
	args := []string{"ip", "addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	_, err := n.Run(args...)
	return err
}

// AddRoute adds a route to dst via gw (if valid) on dev (if not empty).
func (n *NS) AddRoute(dst netip.Prefix, gw netip.Addr, dev string) error {
	args := []string{"ip", "route", "add", dst.Masked().String()}
	if dst.Addr().Is6() {
		args = []string{"ip", "-6", "route", "add", dst.Masked().String()}
	}
	if gw.IsValid() {
		args = append(args, "via", gw.String())
	}
	if dev != "" {
		args = append(args, "dev", dev)
	}
	_, err := n.Run(args...)
	return err
}

// VethEnd is one end of a veth pair.
type VethEnd struct {
	NS    *NS
	Dev   string         // interface name inside NS, at most 15 bytes
	Addrs []netip.Prefix // addresses to add (IPv6 with nodad)
}

// Veth creates a veth pair between two namespaces (a.NS may equal b.NS only with
// distinct names), adds the addresses and brings both ends up. The pair lives inside the
// namespaces, so it disappears with them; no name is ever created in the caller's
// namespace.
func Veth(a, b VethEnd) error {
	if _, err := a.NS.Run("ip", "link", "add", a.Dev, "type", "veth", "peer", "name", b.Dev, "netns", b.NS.Name); err != nil {
		return err
	}
	for _, end := range []VethEnd{a, b} {
		for _, p := range end.Addrs {
			if err := end.NS.AddAddr(end.Dev, p); err != nil {
				return err
			}
		}
		if _, err := end.NS.Run("ip", "link", "set", end.Dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Nstat returns the namespace's absolute counters (nstat -az) whose names match any of
// the patterns (shell globs as nstat takes them, e.g. "MPTcpExt*"); all when none.
func (n *NS) Nstat(patterns ...string) (map[string]uint64, error) {
	out, err := n.Run(append([]string{"nstat", "-az", "--json"}, patterns...)...)
	if err != nil {
		// Older nstat without --json: fall back to the text table.
		out, err = n.Run(append([]string{"nstat", "-az"}, patterns...)...)
		if err != nil {
			return nil, err
		}
		return parseNstatText(out), nil
	}
	return parseNstatJSON(out), nil
}

// parseNstatText reads lines "Name value rate".
func parseNstatText(out string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			m[f[0]] = v
		}
	}
	return m
}

// parseNstatJSON reads {"kernel":{"Name":value,...}} without a JSON dependency on the
// exact shape: every "Name":number pair is taken.
func parseNstatJSON(out string) map[string]uint64 {
	m := map[string]uint64{}
	re := regexp.MustCompile(`"([A-Za-z0-9_]+)"\s*:\s*(\d+)`)
	for _, sm := range re.FindAllStringSubmatch(out, -1) {
		if v, err := strconv.ParseUint(sm[2], 10, 64); err == nil {
			m[sm[1]] = v
		}
	}
	return m
}

// SS runs ss(8) inside the namespace with the given arguments, e.g. SS("-Mni") for MPTCP
// sockets or SS("-tni") for TCP info, and returns its output.
func (n *NS) SS(args ...string) (string, error) {
	return n.Run(append([]string{"ss"}, args...)...)
}
