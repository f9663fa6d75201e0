//go:build linux

package netns

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func nsInode(t *testing.T) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestTopology(t *testing.T) {
	a := New(t, "a")
	b := New(t, "b")
	if !strings.HasPrefix(a.Name, Prefix+"a-TestTopology-") || a.Name == b.Name {
		t.Fatalf("names %q %q", a.Name, b.Name)
	}
	err := Veth(VethEnd{NS: a, Dev: "va", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.9.1/24"), netip.MustParsePrefix("fd75:6d70:6e73::1/64")}},
		VethEnd{NS: b, Dev: "vb", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.9.2/24"), netip.MustParsePrefix("fd75:6d70:6e73::2/64")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if out := a.MustRun(t, "sysctl", "-n", "net.ipv4.ip_forward"); strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward in a = %q", out)
	}
	// Do runs in the namespace, on a thread nobody else will use.
	outside := nsInode(t)
	var ln net.Listener
	if err := b.Do(func() error {
		if nsInode(t) == outside {
			t.Error("Do did not enter the namespace")
		}
		var err error
		ln, err = net.Listen("tcp6", "[fd75:6d70:6e73::2]:0") // works at once: nodad
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var got []byte
	if err := a.Do(func() error {
		c, err := net.DialTimeout("tcp6", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		n, err := c.Read(buf)
		got = buf[:n]
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hi" {
		t.Errorf("got %q over the veth", got)
	}
	m, err := a.Nstat("TcpActiveOpens")
	if err != nil {
		t.Fatal(err)
	}
	if m["TcpActiveOpens"] != 1 {
		t.Errorf("nstat TcpActiveOpens = %d, want 1 (%v)", m["TcpActiveOpens"], m)
	}
	if _, err := a.SS("-tna"); err != nil {
		t.Error(err)
	}
}

func TestCloseKillsAndDeletes(t *testing.T) {
	Require(t)
	ns, err := Create("close")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := ns.Start(nil, nil, "sleep", "60")
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState == nil {
		t.Error("process not reaped")
	}
	if _, err := os.Stat("/run/netns/" + ns.Name); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists", ns.Name)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSweepStaleSparesOthers(t *testing.T) {
	Require(t)
	// A name of ours whose creator is alive (this process) must survive; a name without
	// the prefix is never looked at (not created here: we only check our own survives).
	ns := New(t, "sweep")
	SweepStale()
	if _, err := os.Stat("/run/netns/" + ns.Name); err != nil {
		t.Errorf("SweepStale removed a live namespace: %v", err)
	}
}

func TestParseNstat(t *testing.T) {
	j := parseNstatJSON(`{"kernel":{"MPTcpExtMPCapableSYNRX":3,"TcpExtTCPHPAcks":12}}`)
	if j["MPTcpExtMPCapableSYNRX"] != 3 || j["TcpExtTCPHPAcks"] != 12 {
		t.Errorf("json: %v", j)
	}
	x := parseNstatText("#kernel\nMPTcpExtMPCapableSYNRX          3                  0.0\n")
	if x["MPTcpExtMPCapableSYNRX"] != 3 {
		t.Errorf("text: %v", x)
	}
}
