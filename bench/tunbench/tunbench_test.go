//go:build linux

package main

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/umptcp/umptcp/internal/netns"
	"github.com/umptcp/umptcp/tun"
)

// TestSmoke builds the topology and runs kernel TCP and every userspace row for a short
// time in both directions, so CI notices when the harness or a registered stack breaks.
// Numbers from so short a run mean nothing; run the command for those.
func TestSmoke(t *testing.T) {
	netns.Require(t)
	topo, err := newTopology()
	if err != nil {
		t.Fatal(err)
	}
	defer topo.close()
	// One listener for every row: MPTCP, as Go makes listeners by default
	// since 1.24, so that the umptcp row negotiates MPTCP (TCP clients get
	// the kernel's fallback socket).
	var ln net.Listener
	if err := topo.peer.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", vethPeer.Addr().String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln)
	to := netip.MustParseAddrPort(ln.Addr().String())
	const d = 300 * time.Millisecond
	measure := func(name string, dial func() (net.Conn, error)) row {
		r := row{name: name}
		if r.up, r.err = run(dial, true, d); r.err == nil {
			r.down, r.err = run(dial, false, d)
		}
		return r
	}
	check := func(r row) {
		t.Helper()
		if r.err != nil || r.up.bytes == 0 || r.down.bytes == 0 {
			t.Errorf("%s: err %v, up %d bytes, down %d bytes", r.name, r.err, r.up.bytes, r.down.bytes)
			return
		}
		t.Logf("%s: up %.2f down %.2f Gbit/s (%s)", r.name, r.up.gbps(), r.down.gbps(), r.note)
	}
	check(measure("kernel-tcp", func() (net.Conn, error) {
		var c net.Conn
		err := topo.ours.Do(func() error {
			var err error
			c, err = net.DialTimeout("tcp4", to.String(), 5*time.Second)
			return err
		})
		return c, err
	}))
	for _, u := range userspaceRows {
		check(measureUserspace(topo, u, tun.DriverWireGuard, Options{}, to, measure))
	}
}
