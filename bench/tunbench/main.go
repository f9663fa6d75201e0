//go:build linux

// Command tunbench measures TCP throughput, both directions, over one veth topology:
// kernel TCP and kernel MPTCP (both ends kernel), and userspace stacks on a TUN device
// through this project's tun.Endpoint (plain gVisor; umptcp once it registers itself, see
// userspace.go). It prints Gbit/s and ratios. Needs root; see bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/umptcp/umptcp/tun"
)

type row struct {
	name     string
	up, down result
	err      error
	note     string
}

func main() {
	dur := flag.Duration("duration", 4*time.Second, "time each direction of each row sends")
	only := flag.String("rows", "", "comma-separated row names to run (default: all)")
	queue := flag.Bool("queue", true, "userspace rows write to the TUN from a queue's goroutine: gVisor's fifo qdisc on gvisor rows' NIC, umptcp's transmit queue (Link.TxQueueLen); false: in the sending goroutine")
	driver := flag.String("driver", "wireguard", "TUN driver for userspace rows: wireguard or water")
	dirs := flag.String("dirs", "both", "directions to measure: up, down or both")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (go tool pprof) to `file`")
	flag.Parse()
	if *dirs != "up" && *dirs != "down" && *dirs != "both" {
		fmt.Fprintln(os.Stderr, "tunbench: -dirs must be up, down or both")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "tunbench: needs root (network namespaces, veth, TUN)")
		os.Exit(2)
	}
	want := func(name string) bool {
		if *only == "" {
			return true
		}
		for _, n := range strings.Split(*only, ",") {
			if strings.TrimSpace(n) == name {
				return true
			}
		}
		return false
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tunbench:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}

	topo, err := newTopology()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunbench:", err)
		os.Exit(1)
	}
	defer topo.close()

	// The kernel servers, in "peer": one TCP listener and one MPTCP listener.
	var lnTCP, lnMPTCP net.Listener
	if err := topo.peer.Do(func() error {
		// Explicitly plain TCP: since Go 1.24 a listener is MPTCP by
		// default, and a plain TCP client of it gets the kernel's MPTCP
		// socket in fallback mode, which is slower than TCP's.
		var plain, mptcp net.ListenConfig
		plain.SetMultipathTCP(false)
		mptcp.SetMultipathTCP(true)
		var err error
		if lnTCP, err = plain.Listen(context.Background(), "tcp4", vethPeer.Addr().String()+":0"); err != nil {
			return err
		}
		lnMPTCP, err = mptcp.Listen(context.Background(), "tcp4", vethPeer.Addr().String()+":0")
		return err
	}); err != nil {
		fmt.Fprintln(os.Stderr, "tunbench: listen:", err)
		os.Exit(1)
	}
	defer lnTCP.Close()
	defer lnMPTCP.Close()
	go serve(lnTCP)
	go serve(lnMPTCP)
	tcpAddr := netip.MustParseAddrPort(lnTCP.Addr().String())
	mptcpAddr := netip.MustParseAddrPort(lnMPTCP.Addr().String())

	var rows []row
	measure := func(name string, dial func() (net.Conn, error)) row {
		r := row{name: name}
		if *dirs != "down" {
			r.up, r.err = run(dial, true, *dur)
		}
		if r.err == nil && *dirs != "up" {
			r.down, r.err = run(dial, false, *dur)
		}
		return r
	}

	kernelDial := func(mptcp bool, to netip.AddrPort) func() (net.Conn, error) {
		return func() (net.Conn, error) {
			var c net.Conn
			err := topo.ours.Do(func() error {
				d := net.Dialer{Timeout: 5 * time.Second}
				d.SetMultipathTCP(mptcp)
				var err error
				c, err = d.Dial("tcp4", to.String())
				return err
			})
			if err == nil && mptcp {
				if ok, _ := c.(*net.TCPConn).MultipathTCP(); !ok {
					c.Close()
					return nil, fmt.Errorf("kernel fell back to TCP")
				}
			}
			return c, err
		}
	}
	if want("kernel-tcp") {
		rows = append(rows, measure("kernel-tcp", kernelDial(false, tcpAddr)))
	}
	if want("kernel-mptcp") {
		rows = append(rows, measure("kernel-mptcp", kernelDial(true, mptcpAddr)))
	}

	for _, u := range userspaceRows {
		if !want(u.name) {
			continue
		}
		to := tcpAddr
		if u.mptcp {
			to = mptcpAddr
		}
		rows = append(rows, measureUserspace(topo, u, tun.Driver(*driver), Options{Queue: *queue}, to, measure))
	}

	printTable(os.Stdout, rows, *dur, *queue, *driver)
}

// measureUserspace runs one userspace row on a fresh TUN device and endpoint.
func measureUserspace(topo *topology, u userspaceRow, driver tun.Driver, opts Options, to netip.AddrPort,
	measure func(string, func() (net.Conn, error)) row) row {
	fail := func(err error) row { return row{name: u.name, err: err} }
	dev, err := topo.openTUN(driver)
	if err != nil {
		return fail(err)
	}
	ep, err := tun.NewEndpoint(dev, tun.EndpointOptions{DisableOffload: u.generic})
	if err != nil {
		dev.Close()
		return fail(err)
	}
	us, err := u.factory(ep, tunStack, opts)
	if err != nil {
		ep.Close()
		return fail(err)
	}
	r := measure(u.name, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return us.Dial(ctx, to)
	})
	us.Close()
	ep.Close()
	ep.Wait()
	path := "generic"
	if ep.Offload() {
		path = "offload"
	}
	r.note = fmt.Sprintf("%s path; tx %d pkts (%d GSO), rx %d pkts (%d GSO)", path,
		ep.Stats.TxPackets.Load(), ep.Stats.TxGSOPackets.Load(), ep.Stats.RxPackets.Load(), ep.Stats.RxGSOPackets.Load())
	return r
}

func printTable(w *os.File, rows []row, dur time.Duration, queue bool, driver string) {
	var kernel, gv *row
	for i := range rows {
		switch rows[i].name {
		case "kernel-tcp":
			kernel = &rows[i]
		case "gvisor-tcp":
			gv = &rows[i]
		}
	}
	ratio := func(a, b result, base *row) string {
		if base == nil || base.err != nil || b.gbps() == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a.gbps()/b.gbps())
	}
	fmt.Fprintf(w, "tunbench: %v per direction per row, driver %s, transmit queue %v, MTU 1500, veth + TUN in namespaces\n", dur, driver, queue)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "row\tupload Gbit/s\tdownload Gbit/s\tup/kernel\tdown/kernel\tup/gvisor\tdown/gvisor\t")
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\terror: %v\t\t\t\t\t\t\n", r.name, r.err)
			continue
		}
		var ku, kd, gu, gd string = "-", "-", "-", "-"
		if kernel != nil {
			ku, kd = ratio(r.up, kernel.up, kernel), ratio(r.down, kernel.down, kernel)
		}
		if gv != nil {
			gu, gd = ratio(r.up, gv.up, gv), ratio(r.down, gv.down, gv)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t\n", r.name, r.up.gbps(), r.down.gbps(), ku, kd, gu, gd)
	}
	tw.Flush()
	for _, r := range rows {
		if r.note != "" {
			fmt.Fprintf(w, "  %s: %s\n", r.name, r.note)
		}
	}
}
