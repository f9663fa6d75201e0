// Command mptcp-peer is one end of a Linux kernel MPTCP connection, for captures and
// interop tests. It serves or dials one connection, does what its flags say and prints
// the result as one JSON line on stdout (see kernelpeer.Result).
//
//	mptcp-peer server [flags] ADDR     listen on ADDR (host:port), serve one connection
//	mptcp-peer client [flags] ADDR     dial ADDR
//
// A server prints "listening on ADDR" on stderr once it accepts connections. The exit
// status is 0 on success, 1 if the run failed (the JSON line says why), 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/umptcp/umptcp/internal/kernelpeer"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// sizeFlag is an int64 flag that accepts kernelpeer.ParseSize suffixes.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return fmt.Sprint(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := kernelpeer.ParseSize(s)
	if err == nil {
		*f.n = n
	}
	return err
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || (args[0] != "server" && args[0] != "client") {
		fmt.Fprintln(stderr, "usage: mptcp-peer server|client [flags] ADDR (-h for flags)")
		return 2
	}
	role := args[0]
	fs := flag.NewFlagSet("mptcp-peer "+role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg kernelpeer.Config
	seed := uint64(1)
	if role == "server" {
		seed = 2
	}
	fs.Var(sizeFlag{&cfg.Send}, "send", "write `N` payload bytes (suffixes K, M, G), then send DATA_FIN")
	fs.Uint64Var(&cfg.Seed, "seed", seed, "payload seed (client 1, server 2 by default)")
	fs.Var(&cfg.Writes, "writes", "size of each write: `SIZE` or MIN-MAX (default 32K)")
	fs.DurationVar(&cfg.WriteDelay, "write-delay", 0, "pause after each write")
	fs.DurationVar(&cfg.StartDelay, "start-delay", 0, "pause before the first write (e.g. for subflows to come up)")
	fs.BoolVar(&cfg.Sink, "sink", false, "read everything until the peer's DATA_FIN")
	fs.BoolVar(&cfg.Echo, "echo", false, "write back everything read")
	fs.BoolVar(&cfg.Linger0, "linger0", false, "close with SO_LINGER 0; without --sink/--echo, wait for unread data first (MP_FASTCLOSE)")
	fs.DurationVar(&cfg.Hold, "hold", 0, "keep the connection open this long before closing")
	fs.StringVar(&cfg.Local, "bind", "", "client: local address, host or host:port")
	fs.BoolVar(&cfg.RequireMPTCP, "require-mptcp", true, "fail if the connection is not MPTCP")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")

	// Allow flags after ADDR as well as before.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "mptcp-peer %s: want one ADDR, got %d\n", role, len(pos))
		return 2
	}
	cfg.Addr = pos[0]
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "mptcp-peer %s: %v\n", role, err)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, *timeout)
	defer cancelT()

	var res kernelpeer.Result
	var err error
	if role == "server" {
		res, err = serve(ctx, cfg, stderr)
	} else {
		res, err = kernelpeer.RunClient(ctx, cfg)
	}
	line, jerr := json.Marshal(res)
	if jerr != nil {
		fmt.Fprintf(stderr, "mptcp-peer %s: %v\n", role, jerr)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", line)
	if err != nil {
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg kernelpeer.Config, stderr io.Writer) (kernelpeer.Result, error) {
	ln, err := kernelpeer.Listen(ctx, cfg.Addr)
	if err != nil {
		return kernelpeer.Result{Role: "server", Error: err.Error()}, err
	}
	defer ln.Close()
	fmt.Fprintf(stderr, "listening on %s\n", ln.Addr())
	return kernelpeer.Serve(ctx, ln, cfg)
}
