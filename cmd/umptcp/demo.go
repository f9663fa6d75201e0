package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/internal/demo"
)

const demoUsage = `Usage: umptcp demo [flags]

Run two umptcp stacks in this process, joined by an emulated path, open one
MPTCP connection between them and send data both ways at once. Show the
progress while it runs (on standard error), then per-subflow and total
goodput, RTT and retransmissions, whether the connection used MPTCP (or why
it fell back to TCP), and check that every byte arrived intact (SHA-256 of
the bytes sent and received, both ways). Needs no root and no network.

Flags:
  --size SIZE    bytes to send each way (default 100MB): 100MB, 1G, 500k
                 are powers of 1000, 64KiB, 1GiB powers of 1024
  --path SPEC    the emulated path, the same both ways (default
                 "` + demo.DefaultPath + `"), e.g. rate=100mbit,delay=10ms,loss=1%
                 Keys: rate queue delay jitter loss burst reorder dup corrupt
                 rewrite strip mtu seed (go doc github.com/umptcp/umptcp/emu).
                 One path for now: a --path per subflow comes with MP_JOIN
  --checksum     ask for DSS checksums (RFC 8684 §3.3.1)
  --pcap FILE    write what crosses the path, both ways, as a pcap file that
                 Wireshark and "umptcp decode" read
  --snaplen N    bytes kept of each packet in the pcap (default 0: whole
                 packets; 128 keeps the headers of large transfers)
  --json         print the summary as one JSON object on standard output
  --seed N       seed of the data, of the path's random decisions and of
                 the MPTCP keys (default 1)
  --timeout D    give up after D, e.g. 30s or 5m (default 10m, 0 for none)
  --quiet        no progress reports
  -h, --help     show this help

Exit status: 0 every byte arrived intact, 1 the bytes differ or the transfer
failed, 2 bad usage.
`

// pathList is the repeatable --path flag.
type pathList struct {
	specs []string
	cfgs  []emu.Config
}

func (p *pathList) String() string { return strings.Join(p.specs, " ") }

func (p *pathList) Set(s string) error {
	c, err := emu.ParsePath(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "emu: "))
	}
	p.specs = append(p.specs, s)
	p.cfgs = append(p.cfgs, c)
	return nil
}

// sizeFlag is --size.
type sizeFlag struct{ n int64 }

func (s *sizeFlag) String() string { return demo.FormatBytes(s.n) }

func (s *sizeFlag) Set(v string) (err error) {
	s.n, err = demo.ParseSize(v)
	return err
}

// runDemo is "umptcp demo".
func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("umptcp demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	size := sizeFlag{demo.DefaultSize}
	var paths pathList
	fs.Var(&size, "size", "")
	fs.Var(&paths, "path", "")
	checksum := fs.Bool("checksum", false, "")
	pcap := fs.String("pcap", "", "")
	snaplen := fs.Int("snaplen", 0, "")
	jsonOut := fs.Bool("json", false, "")
	seed := fs.Uint64("seed", 1, "")
	timeout := fs.Duration("timeout", demo.DefaultTimeout, "")
	quiet := fs.Bool("quiet", false, "")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, demoUsage)
		return exitOK
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(stderr, "umptcp demo: %v\n", err)
	}
	if err != nil {
		fmt.Fprint(stderr, "Run \"umptcp demo -h\" for the flags.\n")
		return exitUsage
	}

	cfg := demo.Config{
		Size:     size.n,
		Paths:    paths.cfgs,
		Checksum: *checksum,
		Seed:     *seed,
		Timeout:  *timeout,
		Snaplen:  *snaplen,
	}
	if !*quiet {
		cfg.Progress = stderr
		cfg.ProgressStyle = demo.ProgressLines
		if isTerminal(stderr) {
			cfg.ProgressStyle = demo.ProgressLive
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "umptcp demo: %v\n", err)
		return exitUsage
	}
	if *pcap != "" {
		f, err := os.Create(*pcap)
		if err != nil {
			fmt.Fprintf(stderr, "umptcp demo: --pcap: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		cfg.Pcap = f
	}

	// Ctrl-C ends the run with a summary of what got through (the
	// cause, "interrupt signal received", is the failure it reports).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := demo.Run(ctx, cfg)
	if res == nil {
		fmt.Fprintf(stderr, "umptcp demo: %v\n", err)
		var ue *demo.UsageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	if *jsonOut {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "umptcp demo: writing the summary: %v\n", err)
		return exitFailure
	}
	if f, ok := cfg.Pcap.(*os.File); ok {
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "umptcp demo: --pcap: %v\n", err)
			return exitFailure
		}
	}
	if !res.OK() {
		if *jsonOut { // the table says it; JSON readers get it on stderr
			fmt.Fprintf(stderr, "umptcp demo: FAILED: %s\n", res.Verdict())
		}
		return exitFailure
	}
	return exitOK
}

// isTerminal reports whether w is a terminal that understands the carriage
// returns and erase sequences of the live progress line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
