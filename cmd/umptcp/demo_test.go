package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/internal/demo"
)

// startSignalLoop starts os/signal's goroutine, which the first
// signal.Notify starts for the life of the process, so that it does not
// count as a leak of the first run.
var startSignalLoop = sync.OnceFunc(func() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	signal.Stop(c)
})

// runCmd runs the command line and checks that the run left no goroutine
// behind.
func runCmd(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	startSignalLoop()
	base := runtime.NumGoroutine()
	var out, errOut bytes.Buffer
	status = run(args, strings.NewReader(""), &out, &errOut)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after %v, %d before:\n%s", runtime.NumGoroutine(), args, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	return status, out.String(), errOut.String()
}

// A clean path (no drop) and a short timeout that only catches a stuck run.
var demoArgs = []string{"demo", "--path", "delay=1ms", "--timeout", "2m"}

func TestDemoSmall(t *testing.T) {
	status, out, errOut := runCmd(t, append(demoArgs, "--size", "1MB")...)
	if status != exitOK {
		t.Fatalf("status %d\n%s\n%s", status, out, errOut)
	}
	for _, want := range []string{
		"umptcp demo: 1.00 MB each way, seed 1, client 198.18.0.1:",
		"path 1: delay=1ms, both ways",
		"MPTCP:    yes, DSS checksums off",
		"subflow  path  client",
		"total",
		"OK: 1.00 MB each way arrived intact",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, dir := range []string{"up", "down"} {
		if !regexp.MustCompile(`(?m)^` + dir + ` +1\.00 MB .* ok [0-9a-f]{16}$`).MatchString(out) {
			t.Errorf("no intact %s line:\n%s", dir, out)
		}
	}
	// Standard error is not a terminal here: plain lines, or none for a
	// run shorter than a report interval; never the live line's escapes.
	if strings.ContainsAny(errOut, "\r\x1b") {
		t.Errorf("terminal escapes on a non-terminal: %q", errOut)
	}
}

func TestDemoQuiet(t *testing.T) {
	// Slow enough for several report intervals (1 s) without --quiet.
	args := []string{"demo", "--size", "3MB", "--path", "rate=10mbit,queue=8mb", "--timeout", "2m"}
	status, out, errOut := runCmd(t, args...)
	if status != exitOK || !strings.Contains(errOut, "MPTCP, 1 subflow\n") {
		t.Fatalf("status %d, progress %q\n%s", status, errOut, out)
	}
	status, out, errOut = runCmd(t, append(args, "--quiet")...)
	if status != exitOK || errOut != "" {
		t.Fatalf("--quiet: status %d, stderr %q\n%s", status, errOut, out)
	}
}

func TestDemoChecksumAndLoss(t *testing.T) {
	status, out, errOut := runCmd(t, "demo", "--size", "1MB", "--checksum", "--path", "delay=1ms,loss=2%", "--quiet", "--timeout", "1m")
	if status != exitOK {
		t.Fatalf("status %d\n%s\n%s", status, out, errOut)
	}
	for _, want := range []string{"MPTCP:    yes, DSS checksums on", "dropped loss=", "OK: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoJSON(t *testing.T) {
	status, out, errOut := runCmd(t, append(demoArgs, "--size", "300k", "--json", "--seed", "7")...)
	if status != exitOK {
		t.Fatalf("status %d\n%s\n%s", status, out, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", out)
	}
	var res demo.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.MPTCP || !res.SHA256OK || res.Size != 300_000 || res.Seed != 7 || res.Up.Received != 300_000 ||
		res.Down.Received != 300_000 || len(res.Subflows) != 1 || len(res.Paths) != 1 || res.Paths[0].Spec != "delay=1ms" {
		t.Errorf("%+v", res)
	}
}

// The capture decodes as MPTCP and passes "umptcp decode --verify".
func TestDemoPcap(t *testing.T) {
	file := filepath.Join(t.TempDir(), "demo.pcap")
	// With DSS checksums, which the capture's whole packets let verify check.
	status, out, errOut := runCmd(t, append(demoArgs, "--size", "200k", "--checksum", "--pcap", file, "--quiet")...)
	if status != exitOK {
		t.Fatalf("status %d\n%s\n%s", status, out, errOut)
	}
	status, out, errOut = runCmd(t, "decode", "--verify", file)
	if status != exitOK || !strings.Contains(out, "verify: ok, no mismatch") || !strings.Contains(out, "1 MPTCP connection") {
		t.Fatalf("decode --verify: status %d\n%s\n%s", status, out, errOut)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := decode.Analyze(f, decode.Limits{})
	if err != nil || !res.OK() || res.MPTCPOptions == 0 || res.Checks[decode.CheckDSSChecksum].OK == 0 {
		t.Fatalf("%v: %+v", err, res)
	}
}

// A path that rewrites payload bytes (TCP checksum fixed) corrupts the
// stream undetectably without DSS checksums: the demo must say so and fail.
func TestDemoCorruptionFails(t *testing.T) {
	status, out, errOut := runCmd(t, "demo", "--size", "1MB", "--path", "rewrite=1%", "--quiet", "--timeout", "2m")
	if status != exitFailure {
		t.Fatalf("status %d, want %d\n%s\n%s", status, exitFailure, out, errOut)
	}
	for _, want := range []string{"MISMATCH", "bytes differ, the first at offset", "rewritten=", "FAILED: the bytes received differ from the bytes sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// With --json the verdict is in the object, and on stderr.
	status, out, errOut = runCmd(t, "demo", "--size", "1MB", "--path", "rewrite=1%", "--quiet", "--json", "--timeout", "2m")
	var res demo.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || status != exitFailure || res.SHA256OK || res.Up.SHA256OK {
		t.Fatalf("status %d, err %v, %+v", status, err, res)
	}
	if !strings.Contains(errOut, "FAILED: the bytes received differ") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestDemoTimeout(t *testing.T) {
	status, out, errOut := runCmd(t, "demo", "--size", "100MB", "--path", "rate=10mbit,queue=8mb", "--timeout", "300ms", "--quiet")
	if status != exitFailure || !strings.Contains(out, "FAILED: timed out after 300ms (--timeout)") {
		t.Fatalf("status %d\n%s\n%s", status, out, errOut)
	}
}

func TestDemoUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--size", "lots"}, `invalid value "lots" for flag -size`},
		{[]string{"--size", "0"}, "at least one byte"},
		{[]string{"--path", "loss=1"}, "the % is required"},
		{[]string{"--path", "bogus=1"}, "-path"},
		{[]string{"--path", "delay=1ms", "--path", "delay=2ms"}, "multipath comes later"},
		{[]string{"--timeout", "-1s"}, "timeout must not be negative"},
		{[]string{"--snaplen", "-1"}, "snaplen must not be negative"},
		{[]string{"--pcap", filepath.Join(t.TempDir(), "no", "such", "dir.pcap")}, "--pcap"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--nosuchflag"}, "flag provided but not defined"},
	} {
		status, out, errOut := runCmd(t, append([]string{"demo"}, tc.args...)...)
		if status != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want status %d and %q", tc.args, status, out, errOut, exitUsage, tc.want)
		}
	}
}

func TestDemoHelp(t *testing.T) {
	for _, args := range [][]string{{"demo", "-h"}, {"demo", "--help"}, {"help", "demo"}} {
		status, out, _ := runCmd(t, args...)
		if status != exitOK || !strings.HasPrefix(out, "Usage: umptcp demo") || !strings.Contains(out, "--path SPEC") {
			t.Errorf("%v: status %d\n%s", args, status, out)
		}
	}
	status, out, _ := runCmd(t, "help")
	if status != exitOK || !strings.Contains(out, "  demo ") {
		t.Errorf("umptcp help does not list demo:\n%s", out)
	}
}
