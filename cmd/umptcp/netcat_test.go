package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/stack"
	"github.com/umptcp/umptcp/tun"
)

func TestParseNetcat(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		args []string
		err  string // substring; "" for success
		// checks on success
		check func(t *testing.T, o *ncOptions)
	}{
		{name: "connect minimal", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "10.9.0.1:5000"},
			check: func(t *testing.T, o *ncOptions) {
				want := tunSpec{name: "ump0", prefix: netip.MustParsePrefix("10.9.0.2/24")}
				if o.tun != want || o.host != netip.MustParseAddr("10.9.0.1") || o.target != "10.9.0.1:5000" ||
					o.mtu != 1500 || o.driver != tun.DriverWireGuard || o.connectTimeout != defaultConnectTimeout {
					t.Errorf("%+v", o)
				}
			}},
		{name: "flags after the argument", cmd: "connect", args: []string{"10.9.0.1:5000", "--tun", "ump0=10.9.0.2/24", "-v", "--checksum",
			"--mtu", "9000", "--tun-driver", "water", "--no-host-config", "--pcap", "x.pcap", "--stats-json", "s.json", "--connect-timeout", "5s"},
			check: func(t *testing.T, o *ncOptions) {
				if !o.verbose || !o.checksum || o.mtu != 9000 || o.driver != tun.DriverWater || !o.noHostConfig ||
					o.pcap != "x.pcap" || o.statsJSON != "s.json" || o.connectTimeout != 5*time.Second {
					t.Errorf("%+v", o)
				}
			}},
		{name: "connect to a name", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "example.com:80"},
			check: func(t *testing.T, o *ncOptions) {
				if o.target != "example.com:80" {
					t.Errorf("target %q", o.target)
				}
			}},
		{name: "unnamed device", cmd: "connect", args: []string{"--tun", "10.9.0.2/24", "10.9.0.1:1"},
			check: func(t *testing.T, o *ncOptions) {
				if o.tun.name != "" {
					t.Errorf("name %q", o.tun.name)
				}
			}},
		{name: "host-addr", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--host-addr", "10.9.0.200", "10.9.0.1:1"},
			check: func(t *testing.T, o *ncOptions) {
				if o.host != netip.MustParseAddr("10.9.0.200") {
					t.Errorf("host %v", o.host)
				}
			}},
		{name: "listen every address", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", ":5000"},
			check: func(t *testing.T, o *ncOptions) {
				if o.listen.Addr().IsValid() || o.listen.Port() != 5000 {
					t.Errorf("listen %v", o.listen)
				}
			}},
		{name: "listen bare port", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", "5000"},
			check: func(t *testing.T, o *ncOptions) {
				if o.listen.Port() != 5000 {
					t.Errorf("listen %v", o.listen)
				}
			}},
		{name: "listen stack address", cmd: "listen", args: []string{"--tun", "ump0=fd00::2/64", "[fd00::2]:5000", "--keep", "--echo"},
			check: func(t *testing.T, o *ncOptions) {
				if o.listen != netip.MustParseAddrPort("[fd00::2]:5000") || !o.keep || !o.echo || o.host != netip.MustParseAddr("fd00::1") {
					t.Errorf("%+v", o)
				}
			}},
		{name: "no argument", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24"}, err: "want HOST:PORT"},
		{name: "two arguments", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", ":1", ":2"}, err: "want one [ADDR]:PORT, got 2 arguments"},
		{name: "no --tun", cmd: "connect", args: []string{"10.9.0.1:5000"}, err: "--tun NAME=ADDR/PREFIX is required"},
		{name: "second --tun", cmd: "connect", args: []string{"--tun", "a=10.9.0.2/24", "--tun", "b=10.8.0.2/24", "10.9.0.1:1"},
			err: "a second --tun (b=10.8.0.2/24) is not supported yet"},
		{name: "--tun without prefix", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2", "10.9.0.1:1"},
			err: `invalid value "ump0=10.9.0.2" for flag -tun: the address needs a prefix length, e.g. 10.9.0.2/24`},
		{name: "--tun garbage", cmd: "connect", args: []string{"--tun", "ump0=frob", "10.9.0.1:1"}, err: "want NAME=ADDR/PREFIX"},
		{name: "--tun no address", cmd: "connect", args: []string{"--tun", "ump0=", "10.9.0.1:1"}, err: "want NAME=ADDR/PREFIX"},
		{name: "--tun multicast", cmd: "connect", args: []string{"--tun", "ump0=224.0.0.1/24", "10.9.0.1:1"}, err: "224.0.0.1 cannot be the stack's address"},
		{name: "--tun /32", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/32", "10.9.0.1:1"}, err: "a /32 has no address left for the host side"},
		{name: "--host-addr family", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--host-addr", "fd00::1", "10.9.0.1:1"},
			err: "different IP versions"},
		{name: "--host-addr is the stack", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--host-addr", "10.9.0.2", "10.9.0.1:1"},
			err: "is the stack's own address"},
		{name: "--host-addr garbage", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--host-addr", "x", "10.9.0.1:1"},
			err: `"x" is not an IP address`},
		{name: "--mtu small", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--mtu", "100", "10.9.0.1:1"}, err: "--mtu 100 out of range 576..65535"},
		{name: "--mtu small v6", cmd: "connect", args: []string{"--tun", "ump0=fd00::2/64", "--mtu", "1000", "[fd00::1]:1"}, err: "--mtu 1000 out of range 1280..65535"},
		{name: "--mtu large", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--mtu", "70000", "10.9.0.1:1"}, err: "out of range"},
		{name: "--tun-driver", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--tun-driver", "tap", "10.9.0.1:1"}, err: `--tun-driver "tap": want wireguard or water`},
		{name: "unknown flag", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--frob", "10.9.0.1:1"}, err: "flag provided but not defined: -frob"},
		{name: "listen flag on connect", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--keep", "10.9.0.1:1"}, err: "flag provided but not defined: -keep"},
		{name: "target without port", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "10.9.0.1"}, err: "want HOST:PORT"},
		{name: "target port 0", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "10.9.0.1:0"}, err: `bad port "0"`},
		{name: "target unspecified", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "0.0.0.0:80"}, err: "cannot connect to 0.0.0.0"},
		{name: "negative timeout", cmd: "connect", args: []string{"--tun", "ump0=10.9.0.2/24", "--connect-timeout", "-1s", "10.9.0.1:1"}, err: "must not be negative"},
		{name: "--keep alone", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", "--keep", ":1"}, err: "--keep needs --sink or --echo"},
		{name: "--sink and --echo", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", "--sink", "--echo", ":1"}, err: "exclude each other"},
		{name: "listen other address", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", "10.9.0.3:1"}, err: "10.9.0.3 is not the stack's address"},
		{name: "listen other family", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", "[::]:1"}, err: "the stack has no IPv6 address"},
		{name: "listen port 0", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", ":0"}, err: "port 0 is not supported"},
		{name: "listen bad address", cmd: "listen", args: []string{"--tun", "ump0=10.9.0.2/24", "foo:1"}, err: `"foo" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseNetcat(tt.cmd, tt.args)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, o)
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want a usage error", err, err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q lacks %q", err, tt.err)
			}
		})
	}
}

func TestHostAddrFor(t *testing.T) {
	for _, tt := range []struct {
		prefix, want, host, err string
	}{
		{"10.9.0.2/24", "", "10.9.0.1", ""},
		{"10.9.0.1/24", "", "10.9.0.2", ""},
		{"10.9.0.77/24", "", "10.9.0.1", ""},
		{"10.9.0.1/30", "", "10.9.0.2", ""},
		{"10.9.0.2/30", "", "10.9.0.1", ""},
		{"10.9.0.0/31", "", "10.9.0.1", ""}, // RFC 3021: both addresses usable
		{"10.9.0.1/31", "", "10.9.0.0", ""},
		{"10.9.0.1/32", "", "", "a /32 has no address left"},
		{"fd00::2/64", "", "fd00::1", ""},
		{"fd00::1/64", "", "fd00::2", ""},
		{"fd00::1/127", "", "fd00::", ""}, // RFC 6164
		{"fd00::1/128", "", "", "a /128 has no address left"},
		{"10.9.0.2/24", "192.168.7.1", "192.168.7.1", ""},
		{"10.9.0.2/24", "fd00::1", "", "different IP versions"},
		{"10.9.0.2/24", "10.9.0.2", "", "the stack's own address"},
	} {
		var want netip.Addr
		if tt.want != "" {
			want = netip.MustParseAddr(tt.want)
		}
		got, err := hostAddrFor(netip.MustParsePrefix(tt.prefix), want)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s %s: error %v, want %q", tt.prefix, tt.want, err, tt.err)
			}
			continue
		}
		if err != nil || got != netip.MustParseAddr(tt.host) {
			t.Errorf("%s %s: %v, %v; want %s", tt.prefix, tt.want, got, err, tt.host)
		}
	}
}

func TestCheckAddrsFree(t *testing.T) {
	ifs := []ifAddrs{
		{"lo", []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{"eth0", []netip.Addr{netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("fd00::5")}},
		{"ump0", []netip.Addr{netip.MustParseAddr("10.9.0.1")}},
	}
	a := netip.MustParseAddr
	for _, tt := range []struct {
		dev         string
		stack, host string
		has         bool
		err         string
	}{
		{"ump1", "10.8.0.2", "10.8.0.1", false, ""},
		{"ump0", "10.9.0.2", "10.9.0.1", true, ""}, // a persistent device configured before
		{"ump1", "10.9.0.2", "10.9.0.1", false, "address in use: 10.9.0.1, the host side's address on the device, already belongs to interface ump0"},
		{"", "10.9.0.2", "10.9.0.1", false, "already belongs to interface ump0"},
		{"ump1", "192.168.1.5", "192.168.1.1", false, "address in use: 192.168.1.5, the stack's address (--tun), is already an address of this host (interface eth0)"},
		{"ump1", "fd00::5", "fd00::1", false, "interface eth0"},
	} {
		has, err := checkAddrsFree(ifs, tt.dev, a(tt.stack), a(tt.host))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errAddrInUse) {
				t.Errorf("%s %s %s: error %v, want %q", tt.dev, tt.stack, tt.host, err, tt.err)
			}
			continue
		}
		if err != nil || has != tt.has {
			t.Errorf("%s %s %s: %v %v, want %v", tt.dev, tt.stack, tt.host, has, err, tt.has)
		}
	}
}

func TestHostCommands(t *testing.T) {
	p4, h4 := netip.MustParsePrefix("10.9.0.2/24"), netip.MustParseAddr("10.9.0.1")
	p6, h6 := netip.MustParsePrefix("fd00::2/64"), netip.MustParseAddr("fd00::1")
	for _, tt := range []struct {
		goos string
		p    netip.Prefix
		host netip.Addr
		want string
	}{
		{"linux", p4, h4, "ip link set dev t0 mtu 1400 up\nip addr add 10.9.0.1/24 dev t0"},
		{"linux", p6, h6, "ip link set dev t0 mtu 1400 up\nip addr add fd00::1/64 dev t0 nodad"},
		{"linux", p4, netip.MustParseAddr("192.168.9.9"), "ip link set dev t0 mtu 1400 up\nip addr add 192.168.9.9 peer 10.9.0.2 dev t0"},
		{"darwin", p4, h4, "ifconfig t0 inet 10.9.0.1 10.9.0.2 netmask 255.255.255.0 mtu 1400 up\nroute -n add -inet -net 10.9.0.0/24 -interface t0"},
		{"darwin", p6, h6, "ifconfig t0 inet6 fd00::1 prefixlen 64 mtu 1400 up\nroute -n add -inet6 -net fd00::/64 -interface t0"},
		{"freebsd", p4, h4, "ifconfig t0 inet 10.9.0.1 10.9.0.2 netmask 255.255.255.0 mtu 1400 up\nroute -n add -inet -net 10.9.0.0/24 -interface t0"},
		{"openbsd", p4, h4, "ifconfig t0 inet 10.9.0.1 10.9.0.2 netmask 255.255.255.0 mtu 1400 up\nroute -n add -inet 10.9.0.0/24 10.9.0.2"},
		{"openbsd", p6, h6, "ifconfig t0 inet6 fd00::1 prefixlen 64 mtu 1400 up\nroute -n add -inet6 fd00::/64 fd00::2"},
		{"windows", p4, h4, "netsh interface ipv4 set address name=\"t0\" static 10.9.0.1 255.255.255.0\nnetsh interface ipv4 set subinterface \"t0\" mtu=1400 store=active"},
		{"windows", p6, h6, "netsh interface ipv6 add address \"t0\" fd00::1/64\nnetsh interface ipv6 set subinterface \"t0\" mtu=1400 store=active"},
		{"plan9", p4, h4, "(no commands known for plan9: give t0 the address 10.9.0.1/24, MTU 1400, bring it up, route 10.9.0.0/24 to it)"},
	} {
		got := strings.Join(hostCommands(tt.goos, "t0", tt.p, tt.host, 1400), "\n")
		if got != tt.want {
			t.Errorf("%s %v:\n%s\nwant\n%s", tt.goos, tt.p, got, tt.want)
		}
	}
}

func TestExplain(t *testing.T) {
	target := netip.MustParseAddrPort("10.9.0.1:5000")
	for _, tt := range []struct {
		name   string
		err    error
		msg    string
		status int
	}{
		{"permission", &tun.Error{Op: "open", Name: "ump0", Kind: tun.ErrPermission, Err: syscall.EPERM},
			`no permission to create TUN device "ump0": run as root`, exitFailure},
		{"busy", &tun.Error{Op: "open", Name: "ump0", Kind: tun.ErrBusy, Err: syscall.EBUSY},
			`TUN device "ump0" is busy: another process holds it`, exitFailure},
		{"host address exists", &tun.Error{Op: "configure", Name: "ump0", Kind: tun.ErrBusy, Err: fmt.Errorf("add address: %w", syscall.EEXIST)},
			"address in use: the host already has the address for the host side", exitFailure},
		{"no driver", &tun.Error{Op: "open", Name: "ump0", Kind: tun.ErrNoDevice, Err: syscall.ENOENT},
			"no TUN driver on this host", exitFailure},
		{"name too long", &tun.Error{Op: "open", Name: "averyveryverylongname", Kind: tun.ErrNameTooLong},
			"--tun averyveryverylongname: bad device name", exitUsage},
		{"address in use", fmt.Errorf("%w: 10.9.0.2 is taken", errAddrInUse), "address in use: 10.9.0.2 is taken", exitFailure},
		{"listen in use", fmt.Errorf("listen: %w", syscall.EADDRINUSE), "address in use: listen: address already in use", exitFailure},
		{"refused", &dialError{target: target, dev: "ump0", err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)},
			"connection refused by 10.9.0.1:5000: nothing listens on that port", exitFailure},
		{"unreachable", &dialError{target: target, dev: "ump0", err: syscall.EHOSTUNREACH},
			"no route to 10.9.0.1: the host side of ump0 cannot reach it", exitFailure},
		{"other family", &dialError{target: target, dev: "ump0", err: fmt.Errorf("%w: the stack has no IPv4 address (--tun gives it fd00::2/64)", errNoRoute)},
			"no route to 10.9.0.1: the stack has no IPv4 address", exitFailure},
		{"timeout", &dialError{target: target, dev: "ump0", timeout: time.Second, err: context.DeadlineExceeded},
			"no answer from 10.9.0.1:5000 within 1s: nothing answered the SYN", exitFailure},
		{"timeout no forwarding", &dialError{target: target, dev: "ump0", timeout: time.Second, noFwd: "net.ipv4.ip_forward", err: context.DeadlineExceeded},
			"the host does not forward packets (net.ipv4.ip_forward is 0)", exitFailure},
		{"reset", fmt.Errorf("receiving: %w", stack.ErrReset), "the peer reset the connection", exitFailure},
		{"fast close", fmt.Errorf("receiving: %w", stack.ErrFastClosed), "the peer aborted the connection (MP_FASTCLOSE)", exitFailure},
		{"interrupted", errInterrupted, "interrupted (SIGINT or SIGTERM)", exitFailure},
	} {
		msg, status := explain(tt.err)
		if !strings.Contains(msg, tt.msg) || status != tt.status {
			t.Errorf("%s: %q, %d; want %q, %d", tt.name, msg, status, tt.msg, tt.status)
		}
	}
}

// The command line's answers to bad usage, through run: status 2, the
// reason, and where to look.
func TestNetcatUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"connect", "-h"}, exitOK, "Usage: umptcp connect [flags] HOST:PORT", ""},
		{[]string{"help", "listen"}, exitOK, "Usage: umptcp listen [flags] [ADDR]:PORT", ""},
		{[]string{"listen", "--help"}, exitOK, "--keep", ""},
		{[]string{"connect"}, exitUsage, "", "umptcp connect: want HOST:PORT\nRun \"umptcp connect -h\" for the flags.\n"},
		{[]string{"listen", ":1"}, exitUsage, "", "umptcp listen: --tun NAME=ADDR/PREFIX is required"},
		{[]string{"listen", "--tun", "a=10.9.0.2/24", "--tun", "b=10.8.0.2/24", ":1"}, exitUsage, "", "not supported yet"},
		{[]string{"connect", "--tun", "a=10.9.0.2/24", "--stats-json", filepath.Join(dir, "no", "such", "dir.json"), "10.9.0.1:1"}, exitUsage, "",
			"umptcp connect: --stats-json: open " + filepath.Join(dir, "no", "such", "dir.json") + ": no such file or directory"},
		{[]string{"connect", "--tun", "a=10.9.0.2/24", "--pcap", dir, "10.9.0.1:1"}, exitUsage, "", "umptcp connect: --pcap: open " + dir + ": is a directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("%v: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", tt.args, code, tt.code,
				stdout.String(), tt.stdout, stderr.String(), tt.stderr)
		}
	}
}

// Without permission to create a TUN device the command says so and exits
// 1. As root that cannot happen in this process: netcat_linux_test.go runs
// the binary as nobody instead.
func TestNetcatNoPermissionInProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the kernel's answer without permission is Linux's here")
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root: the permission error is tested by TestNetcatKernel/no-permission, which runs the binary as nobody")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"listen", "--tun", "umptest0=10.9.0.2/24", ":5000"}, strings.NewReader(""), &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), `no permission to create TUN device "umptest0": run as root`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestProgress(t *testing.T) {
	got := progressLine(2500*time.Millisecond, 41_900_000, 4_190_000, 134e6, 13.4e6, "MPTCP, 1 subflow")
	want := "  2.5s  sent  41.9 MB  134 Mbit/s  recv  4.19 MB 13.4 Mbit/s  MPTCP, 1 subflow"
	if got != want {
		t.Errorf("\n%q\nwant\n%q", got, want)
	}
	if len(got) > 80 {
		t.Errorf("%d columns", len(got))
	}

	// In a log: one line per report, and a message is a line of its own.
	// On a terminal: redrawn in place, erased before a message and at
	// the end.
	for _, live := range []bool{false, true} {
		var b bytes.Buffer
		c := &console{w: &b, live: live}
		c.progress("p1")
		c.progress("p2")
		c.printf("msg\n")
		c.progress("p3")
		c.erase()
		want := "p1\np2\nmsg\np3\n"
		if live {
			want = "\rp1\x1b[K\rp2\x1b[K\r\x1b[Kmsg\n\rp3\x1b[K\r\x1b[K"
		}
		if b.String() != want {
			t.Errorf("live %v: %q, want %q", live, b.String(), want)
		}
	}
}

// The progress goroutine reports while a connection exists and is gone
// when stop returns.
func TestProgressStops(t *testing.T) {
	var b bytes.Buffer
	r := newNCRun(&ncOptions{cmd: "connect", verbose: true}, nil, io.Discard, &b)
	base := runtime.NumGoroutine()
	stop := r.startProgress(5 * time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	if b.Len() != 0 {
		t.Errorf("reports before any connection: %q", b.String())
	}
	r.seen.Add(1)
	r.sent.Add(1000)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(safeString(r, &b), "sent  1.00 kB") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if !strings.Contains(b.String(), "sent  1.00 kB") {
		t.Errorf("no report: %q", b.String())
	}
	// Gone: wg.Wait in stop returns when the goroutine is done, which
	// the runtime counts a moment longer.
	waitGoroutines(t, base)
}

// safeString reads what the console wrote, under its lock.
func safeString(r *ncRun, b *bytes.Buffer) string {
	r.con.mu.Lock()
	defer r.con.mu.Unlock()
	return b.String()
}

func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// emuPair is two stacks over an emulated path, "ours" under a pcap tap like
// the commands' --pcap puts it.
type emuPair struct {
	ours, peer *stack.Stack
	oursAddr   netip.Addr
	peerAddr   netip.Addr
	tap        *pcapTap
	capture    bytes.Buffer
	// close closes both stacks and the path; it is idempotent.
	close func()
}

func newEmuPair(t *testing.T) *emuPair {
	t.Helper()
	l, err := emu.NewLink(emu.Config{}, emu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := &emuPair{oursAddr: netip.MustParseAddr("198.18.0.2"), peerAddr: netip.MustParseAddr("198.18.0.1")}
	if p.tap, err = newPcapTap(l.A(), &p.capture); err != nil {
		t.Fatal(err)
	}
	if !p.tap.HeadersFromBytes() {
		t.Error("the tap hides HeadersFromBytes of an emu endpoint")
	}
	p.ours, err = stack.New(stack.Config{Links: []stack.Link{{Name: "t", Endpoint: p.tap, Addrs: []netip.Prefix{netip.PrefixFrom(p.oursAddr, 24)}}}})
	if err != nil {
		t.Fatal(err)
	}
	p.peer, err = stack.New(stack.Config{Links: []stack.Link{{Name: "p", Endpoint: l.B(), Addrs: []netip.Prefix{netip.PrefixFrom(p.peerAddr, 24)}}}})
	if err != nil {
		t.Fatal(err)
	}
	p.close = func() {
		p.ours.Close()
		p.peer.Close()
		l.Close()
	}
	t.Cleanup(p.close)
	return p
}

// peerSide serves one connection on the peer stack: it sends down, then
// half-closes, and reads to EOF, concurrently; it returns what it read.
func peerSide(t *testing.T, ln acceptor, down []byte) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		c, err := ln.AcceptMPTCP()
		if err != nil {
			t.Error(err)
			out <- nil
			return
		}
		defer c.Close()
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(down)
			if err == nil {
				err = c.CloseWrite()
			}
			werr <- err
		}()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Error(err)
		}
		if err := <-werr; err != nil {
			t.Error(err)
		}
		out <- got
	}()
	return out
}

// acceptor is what peerSide needs of a stack.Listener.
type acceptor interface {
	AcceptMPTCP() (*stack.Conn, error)
}

// The data path of "connect" (pipe, then the orderly finish) over an
// emulated path, with the pcap tap under our stack: both directions
// arrive whole, the statistics are Conn.Info's, the capture holds a clean
// MPTCP connection, and no goroutine is left behind.
func TestNetcatPipe(t *testing.T) {
	startSignalLoop()
	base := runtime.NumGoroutine()
	func() {
		p := newEmuPair(t)
		ln, err := p.peer.Listen("tcp", ":5000")
		if err != nil {
			t.Fatal(err)
		}
		up, down := payload(1, 3<<20+17), payload(2, 2<<20+5)
		peerGot := peerSide(t, ln, down)

		var stdout, stderr bytes.Buffer
		r := newNCRun(&ncOptions{cmd: "connect"}, bytes.NewReader(up), &stdout, &stderr)
		c, err := p.ours.Dial("tcp", netip.AddrPortFrom(p.peerAddr, 5000).String())
		if err != nil {
			t.Fatal(err)
		}
		rec := r.addConn(c)
		ctx := context.Background()
		err = r.pipe(ctx, c, rec)
		r.finish(ctx, rec, err)
		if err != nil {
			t.Fatalf("pipe: %v", err)
		}
		if got := <-peerGot; sha256.Sum256(got) != sha256.Sum256(up) {
			t.Errorf("peer got %d bytes, not the %d sent", len(got), len(up))
		}
		if sha256.Sum256(stdout.Bytes()) != sha256.Sum256(down) {
			t.Errorf("stdout got %d bytes, not the %d sent", stdout.Len(), len(down))
		}
		if r.sent.Load() != int64(len(up)) || r.received.Load() != int64(len(down)) {
			t.Errorf("counted %d/%d", r.sent.Load(), r.received.Load())
		}

		var js bytes.Buffer
		if err := r.writeStats(&js); err != nil {
			t.Fatal(err)
		}
		var st connStats
		if err := json.Unmarshal(js.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if !st.MPTCP || st.FallbackReason != "" || st.BytesSent != uint64(len(up)) || st.BytesReceived != uint64(len(down)) ||
			len(st.Token) != 8 || len(st.RemoteToken) != 8 || st.Error != "" || len(st.Subflows) != 1 ||
			st.Remote != netip.AddrPortFrom(p.peerAddr, 5000).String() {
			t.Errorf("stats:\n%s", js.String())
		}
		if sf := st.Subflows[0]; sf.BytesReceived < uint64(len(down)) || sf.BytesSent < uint64(len(up)) || sf.Local != st.Local {
			t.Errorf("subflow stats: %+v", sf)
		}
		// The orderly finish: the peer acknowledged everything, and the
		// subflow got to the end of its FIN exchange before the stack is
		// closed.
		if in := c.Info(); in.SndUna != in.SndNxt {
			t.Errorf("DATA_FIN not acknowledged at the end: %v", in)
		}
		for _, sf := range c.Info().Subflows {
			if sf.State != "TIME-WAIT" && sf.State != "CLOSED" {
				t.Errorf("subflow %s at the end", sf.State)
			}
		}
		p.close()
		if err := p.tap.flush(); err != nil {
			t.Fatal(err)
		}
		checkCapture(t, p.capture.Bytes(), 1)
	}()
	waitGoroutines(t, base)
}

// --keep --echo's handler, twice at once on one stack, and --sink's.
func TestNetcatServices(t *testing.T) {
	startSignalLoop()
	base := runtime.NumGoroutine()
	func() {
		p := newEmuPair(t)
		for _, echo := range []bool{true, false} {
			o := &ncOptions{cmd: "listen", keep: true, echo: echo, sink: !echo}
			var stderr bytes.Buffer
			r := newNCRun(o, nil, io.Discard, &stderr)
			ln, err := p.ours.Listen("tcp", ":6000")
			if err != nil {
				t.Fatal(err)
			}
			const n = 2
			done := make(chan struct{}, n)
			for range n {
				go func() {
					defer func() { done <- struct{}{} }()
					c, err := ln.AcceptMPTCP()
					if err != nil {
						t.Error(err)
						return
					}
					rec := r.addConn(c)
					err = r.serveService(context.Background(), rec)
					r.finish(context.Background(), rec, err)
					r.report(rec)
				}()
			}
			results := make(chan []byte, n)
			for i := range n {
				data := payload(uint64(10+i), 1<<20+i)
				go func() {
					c, err := p.peer.Dial("tcp", netip.AddrPortFrom(p.oursAddr, 6000).String())
					if err != nil {
						t.Error(err)
						results <- nil
						return
					}
					defer c.Close()
					go func() { c.Write(data); c.CloseWrite() }()
					got, err := io.ReadAll(c)
					if err != nil {
						t.Error(err)
					}
					if echo && !bytes.Equal(got, data) {
						t.Errorf("echo: %d bytes back of %d", len(got), len(data))
					}
					if !echo && len(got) != 0 {
						t.Errorf("sink sent %d bytes", len(got))
					}
					results <- got
				}()
			}
			for range n {
				<-results
				<-done
			}
			ln.Close()
			var js bytes.Buffer
			r.writeStats(&js)
			var ks keepStats
			if err := json.Unmarshal(js.Bytes(), &ks); err != nil {
				t.Fatal(err)
			}
			if len(ks.Connections) != n {
				t.Fatalf("stats: %s", js.String())
			}
			var sizes []uint64
			for _, cs := range ks.Connections {
				if !cs.MPTCP || cs.Error != "" || (echo && cs.BytesSent != cs.BytesReceived) || (!echo && cs.BytesSent != 0) {
					t.Errorf("connection stats %+v", cs)
				}
				sizes = append(sizes, cs.BytesReceived)
			}
			if sizes[0]+sizes[1] != 2<<20+1 {
				t.Errorf("received %v", sizes)
			}
			want := "received 1048576 bytes"
			if echo {
				want = "echoed 1048576 of 1048576 bytes received"
			}
			if !strings.Contains(stderr.String(), want) || strings.Count(stderr.String(), "\n") != n {
				t.Errorf("echo %v: reports %q", echo, stderr.String())
			}
		}
		p.close()
	}()
	waitGoroutines(t, base)
}

// An interrupted pipe ends at once, aborts the connection and says why.
func TestNetcatPipeInterrupted(t *testing.T) {
	p := newEmuPair(t)
	ln, err := p.peer.Listen("tcp", ":5000")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.AcceptMPTCP()
		if err == nil {
			io.Copy(io.Discard, c) // never closes its side
			c.Close()
		}
	}()
	// Standard input that never ends, as a terminal nobody types on.
	pr, pw := io.Pipe()
	defer pw.Close()
	r := newNCRun(&ncOptions{cmd: "connect"}, pr, io.Discard, io.Discard)
	c, err := p.ours.Dial("tcp", netip.AddrPortFrom(p.peerAddr, 5000).String())
	if err != nil {
		t.Fatal(err)
	}
	rec := r.addConn(c)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = r.pipe(ctx, c, rec)
	r.finish(ctx, rec, err)
	if !errors.Is(err, errInterrupted) || time.Since(start) > 5*time.Second {
		t.Errorf("pipe: %v after %v", err, time.Since(start))
	}
	var js bytes.Buffer
	r.writeStats(&js)
	if !strings.Contains(js.String(), `"error": "interrupted (SIGINT or SIGTERM)"`) {
		t.Errorf("stats: %s", js.String())
	}
}

// checkCapture checks a capture of MPTCP connections with decode's
// analyzer: conns connections, every check passing, except the DATA_ACK
// that seems to go back on a segment built before one already captured
// (its TCP ACK is lower too): concurrent writers put it on the wire late,
// which the analyzer cannot tell from a regression.
func checkCapture(t *testing.T, pcap []byte, conns int) {
	t.Helper()
	res, err := decode.Analyze(bytes.NewReader(pcap), decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != conns {
		t.Errorf("capture: %d MPTCP connections, want %d", res.Connections, conns)
	}
	if res.Checks[decode.CheckCapableKeys].OK == 0 || res.Checks[decode.CheckDSN].OK == 0 || res.Checks[decode.CheckDataFIN].OK == 0 {
		t.Errorf("capture: keys, DSNs or DATA_FINs not checked: %+v", res.Checks)
	}
	stale := staleAcks(t, pcap)
	for _, m := range res.Mismatches {
		if m.Check == decode.CheckDataAck && strings.Contains(m.What, "backwards") && stale[m.Frame] {
			t.Logf("capture: tolerated, a segment built earlier: %v", m)
			continue
		}
		t.Errorf("capture: %v", m)
	}
	if res.MismatchesDropped > 0 {
		t.Errorf("capture: %d more mismatches", res.MismatchesDropped)
	}
}

// staleAcks returns the frames whose TCP ACK is below one seen before in
// the same direction.
func staleAcks(t *testing.T, pcap []byte) map[int]bool {
	rd, err := decode.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	type dir struct{ src, dst netip.AddrPort }
	high := map[dir]uint32{}
	out := map[int]bool{}
	var p decode.Packet
	for rd.Next(&p) == nil {
		if p.Status != decode.StatusTCP || p.Flags&0x10 == 0 {
			continue
		}
		d := dir{p.Src, p.Dst}
		if h, ok := high[d]; ok && int32(p.Ack-h) < 0 {
			out[p.Frame] = true
			continue
		}
		high[d] = p.Ack
	}
	return out
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
