//go:build linux

package interop

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/internal/netns"
	"github.com/umptcp/umptcp/options"
)

// snapHeaders is the default snap length: Ethernet 14 + IPv6 40 + TCP with
// 40 bytes of options 60 = 114 bytes hold every option. Cutting the payload
// keeps tcpdump up with multi-Gbit/s transfers (it drops packets otherwise);
// the DSS checksum check is then skipped, not failed.
const snapHeaders = 128

// captureFilter selects what the captures keep.
var captureFilter = "tcp"

// capture is a tcpdump running in a namespace.
type capture struct {
	ns       *netns.NS
	dev      string
	path     string
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	stopped  bool
	received int // packets tcpdump got from the kernel
	dropped  int // packets the kernel dropped before tcpdump read them
}

// startCapture captures TCP on dev in ns into dir/name.pcap with the given
// snap length (0: whole packets) and returns once tcpdump is capturing.
func startCapture(t *testing.T, ns *netns.NS, dev, dir, name string, snaplen int) *capture {
	t.Helper()
	c := &capture{ns: ns, dev: dev, path: filepath.Join(dir, name+".pcap")}
	// -U makes tcpdump write the file header at once, which tells that the
	// capture is running (the filter is set before the file is opened).
	// -B: a 32 MiB buffer, since transfers run at Gbit/s.
	cmd, err := ns.Start(nil, &c.stderr, "tcpdump", "-i", dev, "-s", strconv.Itoa(snaplen),
		"-B", "32768", "--immediate-mode", "-U", "-w", c.path, captureFilter)
	if err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	c.cmd = cmd
	t.Cleanup(func() { c.stop() })
	const pcapHeader = 24
	ok := waitFor(10*time.Second, func() bool {
		fi, err := os.Stat(c.path)
		return err == nil && fi.Size() >= pcapHeader
	})
	if !ok {
		c.stop()
		t.Fatalf("tcpdump on %s did not start: %s", dev, c.stderr.String())
	}
	return c
}

var tcpdumpStats = regexp.MustCompile(`(\d+) packets? (received by filter|dropped by kernel)`)

// stop ends the capture (SIGINT makes tcpdump flush and print its counts)
// and reads its statistics. It is idempotent.
func (c *capture) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	for _, m := range tcpdumpStats.FindAllStringSubmatch(c.stderr.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		if m[2] == "dropped by kernel" {
			c.dropped = n
		} else {
			c.received = n
		}
	}
}

// captureWant says what a capture must show.
type captureWant struct {
	// none: no MPTCP option at all (stripped before this point, or a
	// kernel without MPTCP).
	none bool
	// handshake: a complete MP_CAPABLE handshake, one MPTCP connection.
	// Without it (and without none) some MPTCP options must be there.
	handshake bool
	// fallback: the connection fell back to TCP, so data without a
	// mapping is expected.
	fallback bool
	// csumChecked: DSS checksums were negotiated and the capture holds
	// payloads: some checksum checks must have been made.
	csumChecked bool
}

// verify checks a stopped capture with umptcp's analyzer (like `umptcp
// decode --verify`) and Wireshark's dissector, and returns the analysis.
func (c *capture) verify(t *testing.T, want captureWant) decode.Result {
	t.Helper()
	c.stop()
	f, err := os.Open(c.path)
	if err != nil {
		t.Fatalf("capture %s: %v", c.dev, err)
	}
	defer f.Close()
	res, err := decode.Analyze(f, decode.Limits{})
	if err != nil {
		t.Errorf("capture %s: decode: %v", c.dev, err)
	}
	t.Logf("capture %s: %d frames (tcpdump: %d received, %d dropped), %d MPTCP options, %d MPTCP connections, checks %s",
		c.dev, res.Frames, c.received, c.dropped, res.MPTCPOptions, res.Connections, checkSummary(res))
	var reordered map[int]bool
	for _, m := range res.Mismatches {
		if m.Check == decode.CheckDataAck && reordered == nil {
			reordered = c.ackRegressions(t)
		}
	}
	shown, pathReordered := 0, 0
	for _, m := range res.Mismatches {
		if m.Check == decode.CheckDataAck && strings.Contains(m.What, "backwards") && reordered[m.Frame] {
			// The whole segment is older than one before it, TCP ACK
			// included: reordered on the way to the capture, not sent with
			// a regressing DATA_ACK (see pathReordering).
			pathReordered++
			continue
		}
		if bug := knownBugOf(m); bug != "" {
			t.Logf("capture %s: known umptcp bug %s (run with -bugs to fail on it): %v", c.dev, bug, m)
			continue
		}
		if shown++; shown > 20 {
			continue
		}
		t.Errorf("capture %s: mismatch: %v", c.dev, m)
	}
	if shown > 20 || res.MismatchesDropped > 0 {
		t.Errorf("capture %s: ... %d more mismatches", c.dev, shown-20+res.MismatchesDropped)
	}
	if pathReordered > 0 {
		t.Logf("capture %s: %d segments reordered on the path (data-ack check: DATA_ACK and TCP ACK older than before); not errors",
			c.dev, pathReordered)
	}
	if res.TCPSegments == 0 {
		t.Errorf("capture %s: no TCP segments", c.dev)
	}
	if ok := res.Checks[decode.CheckWellFormed]; ok.Mismatch > 0 {
		t.Errorf("capture %s: %d malformed MPTCP options", c.dev, ok.Mismatch)
	}
	switch {
	case want.none && res.MPTCPOptions != 0:
		t.Errorf("capture %s: want no MPTCP option, got %d", c.dev, res.MPTCPOptions)
	case want.handshake && res.Connections != 1:
		t.Errorf("capture %s: want one MPTCP connection, got %d (%d MPTCP options)", c.dev, res.Connections, res.MPTCPOptions)
	case !want.none && res.MPTCPOptions == 0:
		t.Errorf("capture %s: want MPTCP options, got none", c.dev)
	}
	if want.csumChecked && res.Checks[decode.CheckDSSChecksum].OK == 0 {
		t.Errorf("capture %s: no DSS checksum was verified: %+v", c.dev, res.Checks[decode.CheckDSSChecksum])
	}
	c.tshark(t, want.fallback)
	return res
}

func checkSummary(res decode.Result) string {
	var b strings.Builder
	for i := range decode.NumChecks {
		cc := res.Checks[i]
		if cc.Performed()+cc.Skipped == 0 {
			continue
		}
		fmt.Fprintf(&b, " %s=%d", i, cc.OK)
		if cc.Mismatch > 0 {
			fmt.Fprintf(&b, "/%d!", cc.Mismatch)
		}
		if cc.Skipped > 0 {
			fmt.Fprintf(&b, "(%d skipped)", cc.Skipped)
		}
	}
	return b.String()
}

// tshark runs Wireshark's dissector, with its MPTCP analysis on, over the
// capture: no TCP segment may be malformed or carry an option of a bad
// length, and the MPTCP analysis may not find a key mismatch or a bad
// algorithm; missing or infinite mappings are allowed only after fallback.
func (c *capture) tshark(t *testing.T, fallback bool) {
	t.Helper()
	always := "_ws.malformed or tcp.option.len.invalid or mptcp.connection.echoed_key_mismatch" +
		" or mptcp.connection.missing_algorithm or mptcp.connection.unsupported_algorithm"
	mapping := "tcp.len > 0 and (mptcp.dss.missing_mapping or mptcp.dss.infinite_mapping)"
	if n, out := c.tsharkCount(t, "tcp and ("+always+")"); n > 0 {
		t.Errorf("capture %s: tshark: %d malformed segments or MPTCP analysis errors:\n%s", c.dev, n, out)
	}
	n, out := c.tsharkCount(t, mapping)
	switch {
	case n > 0 && !fallback:
		t.Errorf("capture %s: tshark: %d segments with missing or infinite mappings:\n%s", c.dev, n, out)
	case n > 0:
		t.Logf("capture %s: tshark: %d segments without a mapping (fallback)", c.dev, n)
	}
}

// tsharkCount returns how many frames match filter, and the first of them.
func (c *capture) tsharkCount(t *testing.T, filter string) (int, string) {
	t.Helper()
	args := []string{"-n", "-r", c.path,
		"-o", "tcp.analyze_sequence_numbers:TRUE", "-o", "mptcp.analyze_mptcp:TRUE", "-o", "mptcp.analyze_mappings:TRUE",
		"-Y", filter}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Errorf("capture %s: tshark %q: %v: %s", c.dev, filter, err, stderr)
		return 0, ""
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return 0, ""
	}
	return strings.Count(s, "\n") + 1, firstLines(s, 10)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines[n] = "..."
	}
	return strings.Join(lines, "\n")
}

// sighting is an MPTCP option of a capture that matched a search, with
// its segment.
type sighting struct {
	segment
	opt options.Option
}

// segment is a TCP segment of a capture.
type segment struct {
	frame    int
	src, dst netip.AddrPort
	payload  int   // TCP payload length (from the IP header)
	flags    uint8 // TCP flags
}

func (s segment) rst() bool { return s.flags&decode.FlagRST != 0 }

// scan calls fn for every TCP segment of the (stopped) capture.
func (c *capture) scan(t *testing.T, fn func(p *decode.Packet)) {
	t.Helper()
	c.stop()
	f, err := os.Open(c.path)
	if err != nil {
		t.Fatalf("capture %s: %v", c.dev, err)
	}
	defer f.Close()
	rd, err := decode.NewReader(f)
	if err != nil {
		t.Fatalf("capture %s: %v", c.dev, err)
	}
	var p decode.Packet
	for {
		if err := rd.Next(&p); err != nil {
			if err != io.EOF {
				t.Errorf("capture %s: %v", c.dev, err)
			}
			return
		}
		if p.Status == decode.StatusTCP {
			fn(&p)
		}
	}
}

func segmentOf(p *decode.Packet) segment {
	return segment{frame: p.Frame, src: p.Src, dst: p.Dst, payload: p.PayloadLen, flags: p.Flags}
}

// segments returns every TCP segment of the capture.
func (c *capture) segments(t *testing.T) []segment {
	var out []segment
	c.scan(t, func(p *decode.Packet) { out = append(out, segmentOf(p)) })
	return out
}

// find returns the MPTCP options of the capture for which match is true,
// with their segments. Option bytes are copied.
func (c *capture) find(t *testing.T, match func(p *decode.Packet, o *options.Option) bool) []sighting {
	var out []sighting
	c.scan(t, func(p *decode.Packet) {
		for i := range p.Options {
			o := &p.Options[i]
			if o.Malformed || !match(p, o) {
				continue
			}
			cp := *o
			cp.Raw = slices.Clone(o.Raw)
			out = append(out, sighting{segment: segmentOf(p), opt: cp})
		}
	})
	return out
}

// ackRegressions returns the frames whose TCP acknowledgment number is
// below one sent before in the same direction of the same TCP connection:
// segments that arrive at the capture in another order than they were
// built.
//
// pathReordering: this topology reorders segments. A veth hands a packet to
// the other namespace on the backlog of the CPU that sent it (veth_xmit →
// __netif_rx), and so does a TUN device written from several threads, so
// two segments sent from two CPUs (a data segment from a process, an ACK
// from a softirq; gVisor's goroutines) can swap places on the way. Seen
// with the kernel's own segments: in order on its veth, swapped after one
// hop (TestTransfer, captures on umpt0 and vo). decode's data-ack check then
// sees a DATA_ACK go backwards; when the segment's TCP ACK went backwards
// too, the segment is simply older, and the suite does not count it.
func (c *capture) ackRegressions(t *testing.T) map[int]bool {
	type dir struct{ src, dst netip.AddrPort }
	high := map[dir]uint32{}
	out := map[int]bool{}
	c.scan(t, func(p *decode.Packet) {
		if p.Flags&decode.FlagACK == 0 || p.Flags&decode.FlagSYN != 0 {
			return
		}
		d := dir{p.Src, p.Dst}
		h, ok := high[d]
		switch {
		case !ok || int32(p.Ack-h) > 0:
			high[d] = p.Ack
		case int32(p.Ack-h) < 0:
			out[p.Frame] = true
		}
	})
	return out
}

// dataFINs returns the segments that carry a DATA_FIN.
func (c *capture) dataFINs(t *testing.T) []sighting {
	return c.find(t, func(_ *decode.Packet, o *options.Option) bool {
		return o.Subtype == options.SubtypeDSS && o.DSS().DataFIN
	})
}

// waitFor polls cond every few milliseconds until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	end := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
