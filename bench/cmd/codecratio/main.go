// Command codecratio summarises the codec benchmarks of package bench: it
// reads `go test -bench` output (from files or standard input), takes the
// median of repeated runs (-count), and prints ns/op, B/op and allocs/op of
// every Codec benchmark and, for the parse benchmarks, how many times faster
// umptcp is than the two gopacket ways on the same captured segment.
//
//	go test ./bench -run='^$' -bench='Codec' -benchmem -count=5 | tee codec.txt
//	go run ./bench/cmd/codecratio codec.txt
//
// With -check-allocs it exits with status 1 when a umptcp benchmark (every
// one but the gopacket references) allocates; with -min-speedup X, when
// umptcp parses the data segment (data-dss-ts) less than X times faster than
// gopacket's fastest way (DecodeFromBytes). These are for CI on a quiet
// machine: ratios of medians are steadier than times, but not immune to a
// noisy neighbour.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// result collects the runs of one benchmark.
type result struct {
	nsPerOp, bytesPerOp, allocsPerOp, mbPerS []float64
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchmark lines: name, iterations, then value/unit pairs.
func parse(r io.Reader, results map[string]*result, order *[]string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "BenchmarkCodec") {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "BenchmarkCodec"), "")
		res := results[name]
		if res == nil {
			res = &result{}
			results[name] = res
			*order = append(*order, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "ns/op":
				res.nsPerOp = append(res.nsPerOp, v)
			case "B/op":
				res.bytesPerOp = append(res.bytesPerOp, v)
			case "allocs/op":
				res.allocsPerOp = append(res.allocsPerOp, v)
			case "MB/s":
				res.mbPerS = append(res.mbPerS, v)
			}
		}
	}
	return sc.Err()
}

func num(v float64) string {
	switch {
	case v < 0:
		return "-"
	case v == float64(int64(v)):
		return strconv.FormatInt(int64(v), 10)
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func main() {
	minSpeedup := flag.Float64("min-speedup", 0, "exit 1 if umptcp parses the data segment less than this many times faster than gopacket's DecodeFromBytes")
	checkAllocs := flag.Bool("check-allocs", false, "exit 1 if a umptcp benchmark allocates")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: codecratio [-check-allocs] [-min-speedup X] [bench-output-file ...]")
		flag.PrintDefaults()
	}
	flag.Parse()

	results := map[string]*result{}
	var order []string
	if flag.NArg() == 0 {
		if err := parse(os.Stdin, results, &order); err != nil {
			fmt.Fprintln(os.Stderr, "codecratio:", err)
			os.Exit(2)
		}
	}
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err == nil {
			err = parse(f, results, &order)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "codecratio:", err)
			os.Exit(2)
		}
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "codecratio: no BenchmarkCodec results in the input")
		os.Exit(2)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\truns\tns/op\tMB/s\tB/op\tallocs/op\t")
	for _, name := range order {
		r := results[name]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, len(r.nsPerOp), num(median(r.nsPerOp)),
			num(median(r.mbPerS)), num(median(r.bytesPerOp)), num(median(r.allocsPerOp)))
	}
	tw.Flush()

	// Parse/<case>/<way>: ratios against ours.
	var cases []string
	for _, name := range order {
		if c, ok := strings.CutSuffix(name, "/ours"); ok && strings.HasPrefix(c, "Parse/") {
			cases = append(cases, strings.TrimPrefix(c, "Parse/"))
		}
	}
	failed := false
	if len(cases) > 0 {
		fmt.Println()
		fmt.Println("parse speedup: gopacket ns/op ÷ umptcp ns/op on the same captured segment")
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "segment\tumptcp ns/op\tgopacket ns/op\tspeedup\tNewPacket ns/op\tspeedup\t")
		for _, c := range cases {
			ours := median(results["Parse/"+c+"/ours"].nsPerOp)
			gp, np := -1.0, -1.0
			if r := results["Parse/"+c+"/gopacket"]; r != nil {
				gp = median(r.nsPerOp)
			}
			if r := results["Parse/"+c+"/gopacket-newpacket"]; r != nil {
				np = median(r.nsPerOp)
			}
			ratio := func(v float64) string {
				if v < 0 || ours <= 0 {
					return "-"
				}
				return strconv.FormatFloat(v/ours, 'f', 1, 64) + "×"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", c, num(ours), num(gp), ratio(gp), num(np), ratio(np))
			if *minSpeedup > 0 && c == "data-dss-ts" && (gp < 0 || gp/ours < *minSpeedup) {
				fmt.Fprintf(os.Stderr, "codecratio: data segment speedup %.1f× is below %.1f×\n", gp/ours, *minSpeedup)
				failed = true
			}
		}
		tw.Flush()
	}
	if *checkAllocs {
		for _, name := range order {
			if strings.HasSuffix(name, "/gopacket") || strings.HasSuffix(name, "/gopacket-newpacket") {
				continue
			}
			if len(results[name].allocsPerOp) == 0 {
				fmt.Fprintf(os.Stderr, "codecratio: %s has no allocs/op (run with -benchmem)\n", name)
				failed = true
			} else if a := median(results[name].allocsPerOp); a > 0 {
				fmt.Fprintf(os.Stderr, "codecratio: %s allocates %v times per op\n", name, a)
				failed = true
			}
		}
	}
	if *minSpeedup > 0 {
		if _, ok := results["Parse/data-dss-ts/ours"]; !ok {
			fmt.Fprintln(os.Stderr, "codecratio: no Parse/data-dss-ts result")
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
