package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/umptcp/umptcp/decode"
)

const decodeUsage = `Usage: umptcp decode [--json] [--verify] FILE|-

Print every MPTCP option of every TCP segment in a pcap or pcapng capture
(gzip-compressed or not), one line per option, in frame order. FILE "-"
reads standard input.

Flags:
  --json     one JSON object per option and line; the fields are described
             by "go doc github.com/umptcp/umptcp/decode"
  --verify   instead of the options, follow the MPTCP connections and check
             them: keys, join tokens, MP_JOIN and ADD_ADDR HMACs, DSS
             checksums, data sequence numbers, data ACKs and DATA_FINs.
             Print each mismatch on a line, then a summary of the checks
             (as JSON lines with --json)
  -h, --help show this help

Exit status: 0 success, 1 --verify found a mismatch, 2 bad usage or a file
that cannot be read (missing, not a capture, truncated or corrupt).
`

// runDecode is "umptcp decode".
func runDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("umptcp decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	jsonOut := fs.Bool("json", false, "")
	verify := fs.Bool("verify", false, "")
	files, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, decodeUsage)
		return exitOK
	}
	if err == nil && len(files) != 1 {
		err = errors.New("want exactly one FILE (or - for standard input)")
		fmt.Fprintf(stderr, "umptcp decode: %v\n", err)
	}
	if err != nil {
		fmt.Fprint(stderr, decodeUsage)
		return exitUsage
	}
	name := files[0]
	in := stdin
	if name == "-" {
		name = "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "umptcp decode: %s: %v\n", name, pathless(err))
			return exitUsage
		}
		defer f.Close()
		in = f
	}

	rd, err := decode.NewReader(in)
	if err != nil {
		fmt.Fprintf(stderr, "umptcp decode: %s: %v\n", name, pathless(err))
		return exitUsage
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	var an *decode.Analyzer
	if *verify {
		an = decode.NewAnalyzer(decode.Limits{})
	}
	var (
		p           decode.Packet
		line        []byte
		readErr     error
		frames      int
		unsupported int // frames of a link type we cannot decode
	)
	for {
		if err := rd.Next(&p); err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
		frames++
		if p.Status == decode.StatusUnsupportedLink {
			unsupported++
		}
		if an != nil {
			an.Add(&p)
			continue
		}
		for i := range p.Options {
			if *jsonOut {
				line = decode.AppendJSON(line[:0], &p, i)
			} else {
				line = decode.AppendText(line[:0], &p, i)
			}
			w.Write(line)
		}
	}
	status := exitOK
	if an != nil {
		res := an.Result()
		if *jsonOut {
			err = res.WriteJSON(w)
		} else {
			err = res.WriteText(w)
		}
		if !res.OK() {
			status = exitFailure
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "umptcp decode: writing output: %v\n", err)
		return exitUsage
	}
	if readErr != nil {
		fmt.Fprintf(stderr, "umptcp decode: %s: %v\n", name, readErr)
		return exitUsage
	}
	if unsupported > 0 && unsupported == frames {
		fmt.Fprintf(stderr, "umptcp decode: %s: link type %d is not supported (see go doc github.com/umptcp/umptcp/decode)\n", name, p.LinkType)
		return exitUsage
	}
	return status
}

// parseInterspersed parses flags wherever they are among the arguments
// ("decode x.pcap --json" as well as "decode --json x.pcap") and returns
// the others; after "--" every argument is a positional one.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// pathless drops the "open FILE: " of an *os.PathError: the message names
// the file already.
func pathless(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
