package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/umptcp/umptcp/tun"
)

// The flags "umptcp connect" and "umptcp listen" share.
const netcatCommonFlags = `  --tun NAME=ADDR/PREFIX
                 create (or attach to) the TUN device NAME; the stack owns
                 ADDR, the host side gets the first other address of PREFIX
                 (see --host-addr). NAME may be empty (=ADDR/PREFIX) to let
                 the OS choose. Required. One device for now: a second
                 --tun is refused until subflows can use several devices
  --host-addr ADDR
                 the host side's address on the device (default: the first
                 address of the prefix that is not the network address nor
                 the stack's)
  --mtu N        MTU of the device (default 1500)
  --checksum     ask the peer for DSS checksums (RFC 8684 §3.3.1)
  --pcap FILE    write every packet that crosses the TUN device, both ways,
                 to FILE as a pcap capture (Wireshark, "umptcp decode").
                 On Linux TCP crosses the device in segments of up to 64 KiB
                 that the kernel cuts and joins (TSO, GRO), as tcpdump on the
                 host side shows them too
  --stats-json FILE
                 at exit, write what Conn.Info said about the connection
                 as a JSON object: mptcp, fallback_reason, token,
                 remote_token, checksum, local, remote, bytes_sent,
                 bytes_received, duration_s, subflows (local, remote,
                 state, rtt_ms, bytes_sent, bytes_retrans, bytes_received),
                 error. With --keep: {"connections": [...], "error": ...}
  -v             show a progress line on standard error (bytes and rate
                 each way, a few times a second) and a summary at the end
  --tun-driver wireguard|water
                 the library that opens the device (default wireguard:
                 batched, with TSO/GRO offloads on Linux)
  --no-host-config
                 do not configure the host side of the device: print the
                 commands that would (for this OS) and leave them to you
  -h, --help     show this help
`

const connectUsage = `Usage: umptcp connect [flags] HOST:PORT

Netcat over Multipath TCP: open a TUN device, run a umptcp stack on it,
connect to HOST:PORT with MPTCP (falling back to TCP if the peer does not
speak it), send standard input to the connection and write what arrives to
standard output. At the end of standard input it half-closes the connection
(DATA_FIN); it exits once the peer has closed its side and everything it
sent is written out. HOST is an IP address, or a name the host resolves.

The stack reaches HOST through the host side of the device: the host itself,
or anything the host routes to (forwarding, and NAT for the stack's address,
are up to you). With -v, standard error says when the connection is up
and whether it speaks MPTCP.

Flags:
` + netcatCommonFlags + `  --connect-timeout D
                 give up when the peer does not answer within D (default
                 30s)

Exit status: 0 both directions finished, 1 a failure (no permission, device
busy, address in use, connection refused, no route, reset...), 2 bad usage.
SIGINT and SIGTERM end the command (status 1); --stats-json is still written.
`

const listenUsage = `Usage: umptcp listen [flags] [ADDR]:PORT

Netcat over Multipath TCP, listening: open a TUN device, run a umptcp stack on
it and accept one MPTCP (or TCP) connection on PORT, from the host or
through it. Standard input goes to the connection, and at its end a DATA_FIN;
what arrives goes to standard output; the command exits once the peer has
closed its side and everything is written. ADDR, if given, must be the
stack's address (--tun); empty means every address of the stack. A line on
standard error says when it listens.

Flags:
` + netcatCommonFlags + `  --keep         accept any number of connections, each served on its own
                 (concurrently), until SIGINT or SIGTERM; needs --sink or
                 --echo, since standard input can feed only one connection
  --sink         discard what arrives; report bytes per connection on
                 standard error when it ends
  --echo         send back what arrives; half-close after the peer does

Exit status: 0 the connection finished (with --keep: stopped by SIGINT or
SIGTERM), 1 a failure (no permission, device busy, address in use, reset...),
2 bad usage. SIGINT and SIGTERM end a single-connection listen with status 1;
--stats-json is still written.
`

// defaultConnectTimeout bounds the MPTCP handshake of "connect".
const defaultConnectTimeout = 30 * time.Second

// tunSpec is one --tun flag: NAME=ADDR/PREFIX.
type tunSpec struct {
	name   string       // may be empty: the OS chooses
	prefix netip.Prefix // the stack's address and the prefix length, not masked
}

func (s tunSpec) String() string { return s.name + "=" + s.prefix.String() }

// tunList is the repeatable --tun flag.
type tunList []tunSpec

func (l *tunList) String() string {
	var s []string
	for _, t := range *l {
		s = append(s, t.String())
	}
	return strings.Join(s, " ")
}

func (l *tunList) Set(v string) error {
	s, err := parseTunSpec(v)
	if err != nil {
		return err
	}
	*l = append(*l, s)
	return nil
}

// parseTunSpec parses NAME=ADDR/PREFIX (or ADDR/PREFIX, or =ADDR/PREFIX: the
// OS names the device).
func parseTunSpec(v string) (tunSpec, error) {
	name, addr, found := strings.Cut(v, "=")
	if !found {
		name, addr = "", v
	}
	if strings.ContainsAny(name, "/ \t") {
		return tunSpec{}, fmt.Errorf("bad device name %q: want NAME=ADDR/PREFIX, e.g. umptcp0=10.9.0.2/24", name)
	}
	if addr == "" {
		return tunSpec{}, errors.New("want NAME=ADDR/PREFIX, e.g. umptcp0=10.9.0.2/24")
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil {
		if _, aerr := netip.ParseAddr(addr); aerr == nil {
			return tunSpec{}, fmt.Errorf("the address needs a prefix length, e.g. %s/24", addr)
		}
		return tunSpec{}, errors.New("want NAME=ADDR/PREFIX, e.g. umptcp0=10.9.0.2/24")
	}
	if p.Addr().Zone() != "" {
		return tunSpec{}, errors.New("no zone in the stack's address")
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	a := p.Addr()
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return tunSpec{}, fmt.Errorf("%s cannot be the stack's address", a)
	}
	return tunSpec{name: name, prefix: p}, nil
}

// addrFlag is --host-addr.
type addrFlag struct{ a netip.Addr }

func (f *addrFlag) String() string {
	if !f.a.IsValid() {
		return ""
	}
	return f.a.String()
}

func (f *addrFlag) Set(v string) error {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return fmt.Errorf("%q is not an IP address", v)
	}
	f.a = a.Unmap()
	return nil
}

// ncOptions are the parsed and checked flags and argument of "connect" or
// "listen".
type ncOptions struct {
	cmd            string // "connect" or "listen"
	tun            tunSpec
	host           netip.Addr // the host side's address
	mtu            int
	checksum       bool
	pcap           string
	statsJSON      string
	verbose        bool
	driver         tun.Driver
	noHostConfig   bool
	connectTimeout time.Duration

	// connect
	target string // HOST:PORT as given
	// listen
	listen           netip.AddrPort // the address may be invalid: every address
	keep, sink, echo bool
}

// usageError is a bad flag or argument: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// parseNetcat parses the arguments of "umptcp connect" (cmd "connect") or
// "umptcp listen". It returns flag.ErrHelp for -h, or a *usageError.
func parseNetcat(cmd string, args []string) (*ncOptions, error) {
	fs := flag.NewFlagSet("umptcp "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o := &ncOptions{cmd: cmd}
	var tuns tunList
	var host addrFlag
	fs.Var(&tuns, "tun", "")
	fs.Var(&host, "host-addr", "")
	fs.IntVar(&o.mtu, "mtu", tun.DefaultMTU, "")
	fs.BoolVar(&o.checksum, "checksum", false, "")
	fs.StringVar(&o.pcap, "pcap", "", "")
	fs.StringVar(&o.statsJSON, "stats-json", "", "")
	fs.BoolVar(&o.verbose, "v", false, "")
	driver := fs.String("tun-driver", string(tun.DriverWireGuard), "")
	fs.BoolVar(&o.noHostConfig, "no-host-config", false, "")
	if cmd == "connect" {
		fs.DurationVar(&o.connectTimeout, "connect-timeout", defaultConnectTimeout, "")
	} else {
		fs.BoolVar(&o.keep, "keep", false, "")
		fs.BoolVar(&o.sink, "sink", false, "")
		fs.BoolVar(&o.echo, "echo", false, "")
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, &usageError{err.Error()}
	}

	what := "HOST:PORT"
	if cmd == "listen" {
		what = "[ADDR]:PORT"
	}
	switch {
	case len(pos) == 0:
		return nil, usagef("want %s", what)
	case len(pos) > 1:
		return nil, usagef("want one %s, got %d arguments: %s", what, len(pos), strings.Join(pos, " "))
	}
	switch len(tuns) {
	case 0:
		return nil, usagef("--tun NAME=ADDR/PREFIX is required (e.g. --tun umptcp0=10.9.0.2/24): the stack needs a device")
	case 1:
		o.tun = tuns[0]
	default:
		return nil, usagef("a second --tun (%s) is not supported yet: one device per stack for now", tuns[1])
	}
	if o.host, err = hostAddrFor(o.tun.prefix, host.a); err != nil {
		return nil, &usageError{err.Error()}
	}
	if err := checkMTU(o.mtu, o.tun.prefix.Addr()); err != nil {
		return nil, err
	}
	switch tun.Driver(*driver) {
	case tun.DriverWireGuard, tun.DriverWater:
		o.driver = tun.Driver(*driver)
	default:
		return nil, usagef("--tun-driver %q: want wireguard or water", *driver)
	}
	if o.connectTimeout < 0 {
		return nil, usagef("--connect-timeout must not be negative")
	}

	if cmd == "connect" {
		if err := checkTarget(pos[0]); err != nil {
			return nil, err
		}
		o.target = pos[0]
		return o, nil
	}
	switch {
	case o.sink && o.echo:
		return nil, usagef("--sink and --echo exclude each other")
	case o.keep && !o.sink && !o.echo:
		return nil, usagef("--keep needs --sink or --echo: standard input and output can serve only one connection")
	}
	if o.listen, err = parseListenAddr(pos[0], o.tun.prefix.Addr()); err != nil {
		return nil, err
	}
	return o, nil
}

// hostAddrFor returns the host side's address: want if valid, else the
// first address of p that is neither p's network address (or, in IPv4,
// its broadcast address; RFC 3021 and RFC 6164 make both usable in /31 and
// /127) nor the stack's own.
func hostAddrFor(p netip.Prefix, want netip.Addr) (netip.Addr, error) {
	stackAddr := p.Addr()
	if want.IsValid() {
		switch {
		case want.Is4() != stackAddr.Is4():
			return netip.Addr{}, fmt.Errorf("--host-addr %s and the stack's address %s are of different IP versions", want, stackAddr)
		case want == stackAddr:
			return netip.Addr{}, fmt.Errorf("--host-addr %s is the stack's own address: the two ends need different addresses", want)
		case want.IsUnspecified() || want.IsMulticast():
			return netip.Addr{}, fmt.Errorf("--host-addr %s cannot be an interface address", want)
		}
		return want, nil
	}
	full := stackAddr.BitLen()
	bits := p.Bits()
	if bits >= full {
		return netip.Addr{}, fmt.Errorf("--tun %s: a /%d has no address left for the host side; use a shorter prefix or --host-addr", p, bits)
	}
	edges := bits < full-1 // /31 and /127 have no network or broadcast address
	a := p.Masked().Addr()
	if edges {
		a = a.Next() // skip the network address (IPv6: the subnet-router anycast)
	}
	for ; a.IsValid() && p.Contains(a); a = a.Next() {
		if a == stackAddr {
			continue
		}
		if edges && stackAddr.Is4() && !p.Contains(a.Next()) {
			break // the broadcast address
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("--tun %s: no address left in the prefix for the host side; use a shorter prefix or --host-addr", p)
}

// checkMTU checks --mtu: IPv4 needs 576 bytes for a useful TCP segment with
// MPTCP options (RFC 791's minimum reassembly size), IPv6 its minimum link
// MTU (RFC 8200 §5).
func checkMTU(mtu int, a netip.Addr) error {
	lo := 576
	if a.Is6() {
		lo = 1280
	}
	if mtu < lo || mtu > 65535 {
		return usagef("--mtu %d out of range %d..65535", mtu, lo)
	}
	return nil
}

// checkTarget checks the form of HOST:PORT; names are resolved when the
// command runs.
func checkTarget(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return usagef("%q: want HOST:PORT, e.g. 10.9.0.1:5000 or [fd00::1]:5000", s)
	}
	if host == "" {
		return usagef("%q: no host", s)
	}
	if _, err := parsePort(port); err != nil {
		return usagef("%q: %v", s, err)
	}
	if a, err := netip.ParseAddr(host); err == nil && (a.IsUnspecified() || a.IsMulticast()) {
		return usagef("%q: cannot connect to %s", s, a)
	}
	return nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("bad port %q: want 1..65535", s)
	}
	return uint16(p), nil
}

// parseListenAddr parses [ADDR]:PORT (":5000", "10.9.0.2:5000",
// "[fd00::2]:5000", or a bare port). ADDR must be the stack's address or
// unspecified; the result's address is invalid for "every address".
func parseListenAddr(s string, stackAddr netip.Addr) (netip.AddrPort, error) {
	host, port := "", s
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return netip.AddrPort{}, usagef("%q: want [ADDR]:PORT, e.g. :5000 or 10.9.0.2:5000", s)
		}
	}
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, usagef("%q: %v (port 0 is not supported: the port must be known to connect to it)", s, err)
	}
	if host == "" {
		return netip.AddrPortFrom(netip.Addr{}, p), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, usagef("%q: %q is not an IP address", s, host)
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified() && a.Is4() != stackAddr.Is4():
		return netip.AddrPort{}, usagef("%q: the stack has no %s address (--tun gives it %s)", s, family(a), stackAddr)
	case a.IsUnspecified():
		return netip.AddrPortFrom(netip.Addr{}, p), nil
	case a != stackAddr:
		return netip.AddrPort{}, usagef("%q: %s is not the stack's address; --tun gives it %s (or leave ADDR out: \":%d\")", s, a, stackAddr, p)
	}
	return netip.AddrPortFrom(a, p), nil
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// runConnect is "umptcp connect".
func runConnect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runNetcat("connect", connectUsage, args, stdin, stdout, stderr)
}

// runListen is "umptcp listen".
func runListen(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runNetcat("listen", listenUsage, args, stdin, stdout, stderr)
}

func runNetcat(cmd, usageText string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseNetcat(cmd, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "umptcp %s: %v\nRun \"umptcp %s -h\" for the flags.\n", cmd, err, cmd)
		return exitUsage
	}
	// Files first: a path that cannot be written is bad usage, found before
	// any device is touched.
	var statsFile, pcapFile *os.File
	if o.statsJSON != "" {
		if statsFile, err = os.Create(o.statsJSON); err != nil {
			fmt.Fprintf(stderr, "umptcp %s: --stats-json: %v\n", cmd, err)
			return exitUsage
		}
		defer statsFile.Close()
	}
	if o.pcap != "" {
		if pcapFile, err = os.Create(o.pcap); err != nil {
			fmt.Fprintf(stderr, "umptcp %s: --pcap: %v\n", cmd, err)
			return exitUsage
		}
		defer pcapFile.Close()
	}

	// The first SIGINT or SIGTERM ends the run in order; after it the
	// signals are the default again, so a second one kills the process at
	// once if the orderly end takes too long.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	r := newNCRun(o, stdin, stdout, stderr)
	status := r.run(ctx, pcapFile)

	if pcapFile != nil {
		if err := pcapFile.Close(); err != nil {
			r.con.printf("umptcp %s: --pcap: %v\n", cmd, err)
			status = max(status, exitFailure)
		}
	}
	if statsFile != nil {
		err := r.writeStats(statsFile)
		if cerr := statsFile.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			r.con.printf("umptcp %s: --stats-json: %v\n", cmd, err)
			status = max(status, exitFailure)
		}
	}
	return status
}
