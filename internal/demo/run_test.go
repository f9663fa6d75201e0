package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/emu"
)

// clean is a path that drops nothing (no bottleneck, no loss), for the
// tests whose subject is not loss.
const clean = "delay=1ms"

// path parses a path spec or fails the test.
func path(t *testing.T, spec string) emu.Config {
	t.Helper()
	c, err := emu.ParsePath(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkGoroutines fails if the number of goroutines does not come back to
// base within a bounded wait: everything Run started must be gone.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the run:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustRun runs cfg, checks that nothing leaked, and returns the result.
func mustRun(t *testing.T, cfg Config) (*Result, error) {
	t.Helper()
	base := runtime.NumGoroutine()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute // only catches a stuck run
	}
	res, err := Run(context.Background(), cfg)
	checkGoroutines(t, base)
	if res == nil && err == nil {
		t.Fatal("Run returned neither a result nor an error")
	}
	return res, err
}

// checkOK checks the result of a run that must have succeeded with MPTCP.
func checkOK(t *testing.T, res *Result, err error, size int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.OK() || !res.SHA256OK || res.Error != "" {
		t.Fatalf("not OK: %s\n%+v", res.Verdict(), res)
	}
	if !res.MPTCP || res.FallbackReason != "" {
		t.Errorf("MPTCP %v, fallback %q", res.MPTCP, res.FallbackReason)
	}
	for name, f := range map[string]Flow{"up": res.Up, "down": res.Down} {
		if f.Sent != size || f.Received != size || !f.SHA256OK || f.SHA256Sent != f.SHA256Received ||
			f.DifferingBytes != 0 || f.FirstDifference != -1 || len(f.SHA256Sent) != 64 {
			t.Errorf("%s: %+v", name, f)
		}
		if f.Goodput <= 0 || f.Duration <= 0 {
			t.Errorf("%s: goodput %v over %v", name, f.Goodput, f.Duration.D())
		}
	}
	if res.Up.SHA256Sent == res.Down.SHA256Sent {
		t.Error("both directions sent the same bytes")
	}
	if len(res.Subflows) != 1 {
		t.Fatalf("%d subflows, want 1", len(res.Subflows))
	}
	sf := res.Subflows[0]
	if sf.Path != 1 || sf.UpBytes < uint64(size) || sf.DownBytes < uint64(size) || sf.RTT <= 0 {
		t.Errorf("subflow: %+v", sf)
	}
	if !strings.HasPrefix(sf.Client, "198.18.0.1:") || sf.Server != "198.18.0.2:5201" {
		t.Errorf("subflow addresses %s -> %s", sf.Client, sf.Server)
	}
	if len(res.Paths) != 1 || res.Paths[0].Up.SentPackets == 0 || res.Paths[0].Down.SentPackets == 0 {
		t.Errorf("paths: %+v", res.Paths)
	}
}

func TestRunDefaultPath(t *testing.T) {
	res, err := mustRun(t, Config{Size: 1 << 20, Seed: 1})
	checkOK(t, res, err, 1<<20)
	if res.Paths[0].Spec != DefaultPath {
		t.Errorf("path %q, want %q", res.Paths[0].Spec, DefaultPath)
	}
	if res.Checksum {
		t.Error("checksums on without --checksum")
	}
	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MPTCP:    yes", "subflow", "total", "ok " + res.Up.SHA256Sent[:16], "OK: 1.05 MB each way arrived intact"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
}

// The same seed sends the same bytes; another seed other bytes.
func TestRunSeed(t *testing.T) {
	p := []emu.Config{path(t, clean)}
	a, err := mustRun(t, Config{Size: 100_000, Seed: 5, Paths: p})
	checkOK(t, a, err, 100_000)
	b, err := mustRun(t, Config{Size: 100_000, Seed: 5, Paths: p})
	checkOK(t, b, err, 100_000)
	c, err := mustRun(t, Config{Size: 100_000, Seed: 6, Paths: p})
	checkOK(t, c, err, 100_000)
	if a.Up.SHA256Sent != b.Up.SHA256Sent || a.Down.SHA256Sent != b.Down.SHA256Sent {
		t.Error("same seed, different data")
	}
	if a.Up.SHA256Sent == c.Up.SHA256Sent {
		t.Error("different seeds, same data")
	}
	if a.Paths[0].Up.Seed != b.Paths[0].Up.Seed || a.Paths[0].Up.Seed == a.Paths[0].Down.Seed {
		t.Errorf("path seeds %+v / %+v", a.Paths[0], b.Paths[0])
	}
}

func TestRunLossy(t *testing.T) {
	res, err := mustRun(t, Config{Size: 2 << 20, Seed: 1, Timeout: time.Minute, Paths: []emu.Config{path(t, "delay=1ms,loss=2%")}})
	checkOK(t, res, err, 2<<20)
	p := res.Paths[0]
	if p.Up.DroppedPackets == 0 || p.Down.DroppedPackets == 0 {
		t.Errorf("a 2%% lossy path dropped nothing: %+v", p)
	}
	if res.Up.Retrans+res.Down.Retrans == 0 {
		t.Errorf("nothing retransmitted over a lossy path: %+v", res.Subflows)
	}
}

func TestRunChecksum(t *testing.T) {
	res, err := mustRun(t, Config{Size: 1 << 20, Seed: 1, Checksum: true, Paths: []emu.Config{path(t, clean)}})
	checkOK(t, res, err, 1<<20)
	if !res.Checksum {
		t.Error("DSS checksums not in use with Checksum")
	}
}

// The capture decodes as MPTCP and passes every check decode --verify
// makes, DSS checksums included when the whole packets are there.
func TestRunPcap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int64
		snaplen  int
		checksum bool
	}{
		{"whole packets, clean path", 300_000, 0, true},
		{"headers only, default path", 3 << 20, 128, false},
		{"headers only, default path, checksums", 3 << 20, 128, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pcap bytes.Buffer
			cfg := Config{Size: tc.size, Seed: 1, Checksum: tc.checksum, Pcap: &pcap, Snaplen: tc.snaplen}
			if tc.snaplen == 0 {
				// Every mapping whole in the capture: no drop to skip one.
				cfg.Paths = []emu.Config{path(t, clean)}
			}
			res, err := mustRun(t, cfg)
			checkOK(t, res, err, tc.size)
			an, err := decode.Analyze(bytes.NewReader(pcap.Bytes()), decode.Limits{})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(an.Mismatches) > 0 || an.MismatchesDropped > 0 {
				var rep strings.Builder
				an.WriteText(&rep)
				t.Fatalf("decode --verify found mismatches:\n%s", rep.String())
			}
			if an.Connections != 1 || an.MPTCPOptions < an.TCPSegments/2 || an.Frames != an.TCPSegments {
				t.Errorf("frames %d, TCP %d, MPTCP options %d, connections %d", an.Frames, an.TCPSegments, an.MPTCPOptions, an.Connections)
			}
			for _, c := range []decode.Check{decode.CheckCapableKeys, decode.CheckDSN, decode.CheckDataAck, decode.CheckDataFIN} {
				if an.Checks[c].OK == 0 {
					t.Errorf("no %v check made", c)
				}
			}
			// Some checksums are skipped: the DATA_FIN, sent on option-only
			// ACKs while data is still in flight, interrupts the one mapping
			// per direction the analyzer follows.
			if dss := an.Checks[decode.CheckDSSChecksum]; tc.snaplen == 0 && dss.OK < 4 {
				t.Errorf("DSS checksums: %+v", dss)
			}
			sent := res.Paths[0].Up.DeliveredPackets + res.Paths[0].Down.DeliveredPackets
			if uint64(an.Frames) < sent {
				t.Errorf("%d frames captured, %d packets delivered", an.Frames, sent)
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	res, err := mustRun(t, Config{Size: 200_000, Seed: 3, Paths: []emu.Config{path(t, clean)}})
	checkOK(t, res, err, 200_000)
	var out bytes.Buffer
	if err := res.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 1 || !bytes.HasSuffix(out.Bytes(), []byte("}\n")) {
		t.Fatalf("not one JSON object on one line: %q", out.String())
	}
	// Field names, as a script reads them.
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"size", "paths", "mptcp", "fallback_reason", "duration_s", "up", "down", "subflows", "sha256_ok", "counters", "checksum", "seed"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, out.String())
		}
	}
	if m["mptcp"] != true || m["sha256_ok"] != true || m["size"] != 200000.0 {
		t.Errorf("mptcp %v sha256_ok %v size %v", m["mptcp"], m["sha256_ok"], m["size"])
	}
	up := m["up"].(map[string]any)
	for _, k := range []string{"goodput_bps", "duration_s", "sha256_sent", "sha256_received", "sha256_ok", "retrans_bytes"} {
		if _, ok := up[k]; !ok {
			t.Errorf("no up.%s", k)
		}
	}
	sf := m["subflows"].([]any)[0].(map[string]any)
	for _, k := range []string{"rtt_ms", "up_goodput_bps", "down_goodput_bps", "up_retrans_bytes", "down_retrans_bytes"} {
		if _, ok := sf[k]; !ok {
			t.Errorf("no subflows[0].%s", k)
		}
	}
	// And back into a Result, equal to the original.
	var back Result
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(res)
	b, _ := json.Marshal(&back)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip differs:\n%s\n%s", a, b)
	}
	if back.Duration.D() != res.Duration.D() || back.Subflows[0].RTT.D() != res.Subflows[0].RTT.D() {
		t.Errorf("durations: %v %v, %v %v", back.Duration.D(), res.Duration.D(), back.Subflows[0].RTT.D(), res.Subflows[0].RTT.D())
	}
}

// A path that rewrites payload bytes and fixes the TCP checksum corrupts
// the stream where TCP cannot see it; without DSS checksums MPTCP cannot
// either. The demo's own verification must catch it.
func TestRunCorruptionDetected(t *testing.T) {
	const size = 1 << 20
	res, err := mustRun(t, Config{Size: size, Seed: 1, Paths: []emu.Config{path(t, "rewrite=1%")}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.OK() || res.SHA256OK {
		t.Fatalf("rewritten bytes went unnoticed: %+v", res)
	}
	if res.Error != "" {
		t.Errorf("the transfer itself should complete: %s", res.Error)
	}
	for name, f := range map[string]Flow{"up": res.Up, "down": res.Down} {
		if f.SHA256OK || f.SHA256Sent == f.SHA256Received || f.DifferingBytes == 0 ||
			f.FirstDifference < 0 || f.FirstDifference >= size || f.Received != size {
			t.Errorf("%s: %+v", name, f)
		}
	}
	if res.Paths[0].Up.Summary == "" || !strings.Contains(res.Paths[0].Up.Summary, "rewritten=") {
		t.Errorf("path summary %q does not show the rewrites", res.Paths[0].Up.Summary)
	}
	var text bytes.Buffer
	res.WriteText(&text)
	for _, want := range []string{"MISMATCH", "bytes differ, the first at offset", "FAILED: the bytes received differ from the bytes sent (up, down)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
}

// With DSS checksums the same rewriting path cannot corrupt the stream
// silently: the stack detects it (MPTcpExtDataCsumErr) and either every
// byte arrives intact or the transfer fails with an error; never a
// difference without an error, never a hang.
func TestRunRewriteWithChecksum(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		res, err := mustRun(t, Config{Size: 1 << 20, Seed: seed, Checksum: true, Timeout: time.Minute,
			Paths: []emu.Config{path(t, "rewrite=1%")}})
		if res == nil {
			t.Fatalf("Run: %v", err)
		}
		t.Logf("seed %d: %s", seed, res.Verdict())
		if err != nil && strings.Contains(err.Error(), "timed out") {
			t.Errorf("seed %d: the connection stalled: %v (up %d, down %d bytes)", seed, err, res.Up.Received, res.Down.Received)
		}
		if err == nil && !res.SHA256OK {
			t.Errorf("seed %d: DSS checksums on, yet corrupted bytes reached the application without an error: up %+v down %+v",
				seed, res.Up, res.Down)
		}
		if res.Counters.Client["MPTcpExtDataCsumErr"]+res.Counters.Server["MPTcpExtDataCsumErr"] == 0 {
			t.Errorf("seed %d: no DSS checksum error counted: %v", seed, res.Counters)
		}
	}
}

// A middlebox that strips every MPTCP option: the connection falls back to
// TCP in the handshake, and the demo says so while the data still arrives.
func TestRunFallback(t *testing.T) {
	res, err := mustRun(t, Config{Size: 1 << 20, Seed: 1, Paths: []emu.Config{path(t, "delay=1ms,strip=all")}})
	if err != nil || !res.OK() {
		t.Fatalf("err %v, %s", err, res.Verdict())
	}
	if res.MPTCP || res.FallbackReason == "" {
		t.Errorf("MPTCP %v, fallback %q", res.MPTCP, res.FallbackReason)
	}
	if len(res.Subflows) != 1 || res.Subflows[0].UpBytes == 0 || res.Subflows[0].DownBytes == 0 {
		t.Errorf("subflows %+v", res.Subflows)
	}
	var text bytes.Buffer
	res.WriteText(&text)
	if !strings.Contains(text.String(), "MPTCP:    no, fell back to TCP: "+res.FallbackReason) {
		t.Errorf("summary:\n%s", text.String())
	}
}

func TestRunTimeout(t *testing.T) {
	res, err := mustRun(t, Config{Size: 10 << 20, Seed: 1, Timeout: 300 * time.Millisecond, Paths: []emu.Config{path(t, "rate=10mbit,queue=8mb")}})
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err %v, want a timeout", err)
	}
	if res == nil || res.OK() || !strings.Contains(res.Error, "timed out") {
		t.Fatalf("result %+v", res)
	}
	if res.Up.Received >= res.Size || res.Up.SHA256OK {
		t.Errorf("up: %+v", res.Up)
	}
	var text bytes.Buffer
	res.WriteText(&text)
	if !strings.Contains(text.String(), "FAILED: ") || !strings.Contains(text.String(), "timed out") {
		t.Errorf("summary:\n%s", text.String())
	}
}

func TestRunCancel(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancelCause(context.Background())
	cfg := Config{Size: 10 << 20, Seed: 1, Paths: []emu.Config{path(t, "rate=10mbit,queue=8mb")}}
	var progress safeBuffer
	cfg.Progress, cfg.ProgressStyle, cfg.ProgressInterval = &progress, ProgressLines, time.Millisecond
	go func() {
		// Cancel once the transfer is under way.
		for !strings.Contains(progress.String(), "subflow") {
			time.Sleep(time.Millisecond)
		}
		cancel(errors.New("interrupt signal received"))
	}()
	res, err := Run(ctx, cfg)
	checkGoroutines(t, base)
	if err == nil || err.Error() != "interrupt signal received" || res == nil || res.Error != err.Error() {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

func TestRunProgress(t *testing.T) {
	for _, style := range []ProgressStyle{ProgressLive, ProgressLines} {
		var out safeBuffer
		// 50 Mbit/s with a queue that holds every packet in flight: the
		// transfer lasts about 0.35 s, many report intervals, with no drop.
		res, err := mustRun(t, Config{Size: 2 << 20, Seed: 1, Paths: []emu.Config{path(t, "rate=50mbit,queue=8mb")},
			Progress: &out, ProgressStyle: style, ProgressInterval: 20 * time.Millisecond})
		checkOK(t, res, err, 2<<20)
		s := out.String()
		if !strings.Contains(s, "MPTCP, 1 subflow") || !strings.Contains(s, " down ") {
			t.Errorf("style %d: progress %q", style, s)
		}
		switch style {
		case ProgressLive:
			if strings.Contains(s, "\n") || !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\r\x1b[K") {
				t.Errorf("live progress %q: want redrawn lines, erased at the end", s)
			}
		case ProgressLines:
			if strings.Contains(s, "\r") || strings.Contains(s, "\x1b") || !strings.HasSuffix(s, "\n") {
				t.Errorf("plain progress %q", s)
			}
		}
	}
	// No writer, no reports (and no reporter goroutine).
	res, err := mustRun(t, Config{Size: 1000, Seed: 1, ProgressStyle: ProgressLive, Paths: []emu.Config{path(t, clean)}})
	checkOK(t, res, err, 1000)
}

func TestConfigUsageErrors(t *testing.T) {
	two := []emu.Config{{}, {}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"two paths", Config{Paths: two}, "multipath comes later"},
		{"negative size", Config{Size: -1}, "size"},
		{"bad path", Config{Paths: []emu.Config{{Loss: 2}}}, "path 1"},
		{"negative timeout", Config{Timeout: -time.Second}, "timeout"},
		{"negative snaplen", Config{Snaplen: -1}, "snaplen"},
	} {
		err := tc.cfg.Validate()
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a UsageError about %q", tc.name, err, tc.want)
		}
		res, rerr := Run(context.Background(), tc.cfg)
		if res != nil || rerr == nil || rerr.Error() != err.Error() {
			t.Errorf("%s: Run = %v, %v", tc.name, res, rerr)
		}
	}
	if err := (Config{Paths: two}).Validate(); !errors.Is(err, ErrMultipathLater) {
		t.Errorf("two paths: %v is not ErrMultipathLater", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

// safeBuffer is a bytes.Buffer that the reporter writes while a test reads.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
