//go:build linux

package interop

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
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

// snapWhole is the snap length of captures of whole packets: the largest
// GSO super-packet (64 KiB of payload) with its headers.
const snapWhole = 66000

// captureFilter selects what the captures keep.
const captureFilter = "tcp"

// capture is a tcpdump running in a namespace.
type capture struct {
	ns       *netns.NS
	dev      string
	path     string
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	stopped  bool
	captured int // packets tcpdump wrote
	received int // packets the kernel's filter passed to tcpdump
	dropped  int // packets the kernel dropped before tcpdump read them
}

// startCapture captures TCP on dev in ns into dir/name.pcap with the given
// snap length (0: whole packets) and returns once tcpdump is capturing.
func startCapture(t *testing.T, ns *netns.NS, dev, dir, name string, snaplen int) *capture {
	t.Helper()
	c := &capture{ns: ns, dev: dev, path: filepath.Join(dir, name+".pcap")}
	// -U makes tcpdump write the file header at once, which tells that the
	// capture is running (the filter is set before the file is opened).
	// --immediate-mode: without it packets wait in the ring for a block
	// timeout (up to a second) and those still there when tcpdump is
	// stopped are lost. -B: the kernel's buffer, large since transfers run
	// at Gbit/s, larger for whole packets.
	// In immediate mode libpcap uses fixed ring slots of the snap length:
	// "whole packets" is the largest packet here (a 64 KiB GSO or GRO
	// super-packet with headers), not tcpdump's 256 KiB default, so that
	// the ring holds thousands of packets.
	buf := "32768"
	if snaplen == 0 {
		snaplen, buf = snapWhole, "524288"
	}
	cmd, err := ns.Start(nil, &c.stderr, "tcpdump", "-i", dev, "-s", strconv.Itoa(snaplen),
		"-B", buf, "--immediate-mode", "-U", "-w", c.path, captureFilter)
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

var tcpdumpStats = regexp.MustCompile(`(\d+) packets? (captured|received by filter|dropped by kernel)`)

// stop ends the capture (SIGINT makes tcpdump flush and print its counts)
// and reads its statistics. It is idempotent. tcpdump drops what is still
// in the kernel's ring when it is interrupted, so stop first waits (bounded)
// for the file to stop growing: the traffic is over, tcpdump catches up.
func (c *capture) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	var size int64 = -1
	stableSince := time.Now()
	waitFor(3*time.Second, func() bool {
		fi, err := os.Stat(c.path)
		if err != nil {
			return true
		}
		if fi.Size() != size {
			size, stableSince = fi.Size(), time.Now()
		}
		return time.Since(stableSince) >= 50*time.Millisecond
	})
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
		switch m[2] {
		case "captured":
			c.captured = n
		case "received by filter":
			c.received = n
		default:
			c.dropped = n
		}
	}
}

// markerPort is the closed port of the end-of-capture marker: a plain TCP
// SYN from the kernel's namespace to the TUN's host address, and the RST
// that refuses it, which cross every captured veth after the session's
// last segment.
const markerPort = 9

// sendMarker sends the marker of the family from peer.
func sendMarker(tp *Topology, v6 bool) {
	host := tunHost4.Addr()
	if v6 {
		host = tunHost6.Addr()
	}
	_ = tp.Peer.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(host, markerPort).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return nil
	})
}

// hasMarker reports whether tcpdump has written the marker: tcpdump writes
// packets in order, so everything captured before it is in the file too.
func (c *capture) hasMarker() bool {
	f, err := os.Open(c.path)
	if err != nil {
		return false
	}
	defer f.Close()
	rd, err := decode.NewReader(f)
	if err != nil {
		return false
	}
	var p decode.Packet
	for rd.Next(&p) == nil {
		if p.Status == decode.StatusTCP && (p.Dst.Port() == markerPort || p.Src.Port() == markerPort) {
			return true
		}
	}
	return false
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
func (c *capture) verify(t testing.TB, want captureWant) decode.Result {
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
	t.Logf("capture %s: %d frames (tcpdump: %d received, %d dropped), %d MPTCP options, %d MPTCP connections, checks%s",
		c.dev, res.Frames, c.received, c.dropped, res.MPTCPOptions, res.Connections, checkSummary(res))
	switch {
	case c.dropped > 0:
		// decode's checks assume every segment is there (a data ACK beyond
		// what the capture shows mapped, for one).
		t.Errorf("capture %s: the kernel dropped %d packets before tcpdump read them: the capture is incomplete, mismatches may be artefacts",
			c.dev, c.dropped)
	case c.captured < c.received:
		// tcpdump reads the ring in order: what it had not read when it
		// was stopped is the end of the capture, nothing in the middle.
		t.Logf("capture %s: the last %d packets arrived as tcpdump stopped and are not in the capture",
			c.dev, c.received-c.captured)
	}
	var reordered map[int]bool
	for _, m := range res.Mismatches {
		if m.Check == decode.CheckDataAck && reordered == nil {
			reordered = c.reorderedSegments(t)
		}
	}
	shown, pathReordered := 0, 0
	for _, m := range res.Mismatches {
		if m.Check == decode.CheckDataAck && strings.Contains(m.What, "backwards") && reordered[m.Frame] {
			// The segment is older than one before it: reordered on the
			// way to the capture, not sent with a regressing DATA_ACK (see
			// reorderedSegments).
			pathReordered++
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
		t.Logf("capture %s: %d segments reordered on the path (data-ack check: a DATA_ACK older than before on an older segment); not errors",
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
	unmapped := c.unmappedData(t)
	var unmappedNew []string
	for _, f := range slices.Sorted(maps.Keys(unmapped)) {
		if u := unmapped[f]; u.newData {
			who := "the kernel"
			if u.fromUs {
				who = "umptcp"
			}
			unmappedNew = append(unmappedNew, fmt.Sprintf("frame %d from %s (seq %d, %d bytes)", u.frame, who, u.seq, u.payload))
		}
	}
	if len(unmappedNew) > 0 {
		t.Errorf("capture %s: %d data segments carry new bytes under a DSS without a mapping (Linux falls back on them): %s",
			c.dev, len(unmappedNew), strings.Join(unmappedNew[:min(len(unmappedNew), 5)], ", "))
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
// algorithm; data segments without a mapping (or with the infinite one)
// are allowed only after a fallback. One tshark run does both.
//
// Wireshark 4.0's MPTCP mapping analysis fails an assertion
// (mptcp_map_relssn_to_rawdsn in mptcp_analysis_dsn_lookup), which it
// reports as a malformed packet, when the mapping it looks up for a segment
// does not hold the segment's first byte. Its interval tree of mappings
// keeps one node per start (the first mapping's range, the last one's data)
// and its lookup returns the first overlapping node it visits, not the one
// holding the byte: it fails on data segments without a mapping (umptcp's
// one-byte window probes of a byte the peer has) and on mapped segments
// once two mappings of different lengths started at one subflow byte
// (TestCaptureChecksWiresharkLookup builds one). It failed so in a CI run
// on 32 data segments of both senders in TestTransfer/bulk; the capture is
// gone, so logMappingsAround logs what the lookup chose from. decode checks
// what the assertion is about on every segment (payload inside its own
// mapping, mappings agreeing on the DSN of every byte they share, new data
// mapped: unmappedData), so the assertion alone is logged, not an error.
func (c *capture) tshark(t testing.TB, fallback bool) {
	t.Helper()
	bad := []string{"_ws.malformed", "tcp.option.len.invalid", "mptcp.connection.echoed_key_mismatch",
		"mptcp.connection.missing_algorithm", "mptcp.connection.unsupported_algorithm"}
	mapping := []string{"mptcp.dss.missing_mapping", "mptcp.dss.infinite_mapping"}
	filter := fmt.Sprintf("tcp and ((%s) or (tcp.len > 0 and (%s)))", strings.Join(bad, " or "), strings.Join(mapping, " or "))
	args := []string{"-n", "-r", c.path,
		"-o", "tcp.analyze_sequence_numbers:TRUE", "-o", "mptcp.analyze_mptcp:TRUE", "-o", "mptcp.analyze_mappings:TRUE",
		"-Y", filter, "-T", "fields", "-E", "occurrence=f", "-e", "frame.number", "-e", "tcp.len"}
	// An FT_NONE field prints as "1" when the segment has it.
	for _, f := range append(bad, mapping...) {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Errorf("capture %s: tshark: %v: %s", c.dev, err, stderr)
		return
	}
	var errs, noMapping, lookupBug []string
	var lookupFrames []int
	for _, line := range strings.Split(string(out), "\n") {
		// Not TrimSpace: empty fields at the end of a line are tabs.
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 2+len(bad)+len(mapping) {
			errs = append(errs, "unexpected tshark output: "+line)
			continue
		}
		var which []string
		for i, name := range bad {
			if f[2+i] != "" {
				which = append(which, name)
			}
		}
		switch {
		case len(which) == 1 && which[0] == "_ws.malformed" && strings.Contains(f[2], `failed assertion "mptcp_map_relssn_to_rawdsn(`):
			lookupBug = append(lookupBug, "frame "+f[0])
			if n, err := strconv.Atoi(f[0]); err == nil && len(lookupFrames) < 3 {
				lookupFrames = append(lookupFrames, n)
			}
		case len(which) > 0:
			e := fmt.Sprintf("frame %s (%s bytes): %s", f[0], f[1], strings.Join(which, ", "))
			if f[2] != "" && f[2] != "_ws.malformed" {
				e += ": " + f[2] // the dissector's message
			}
			errs = append(errs, e)
		default:
			noMapping = append(noMapping, "frame "+f[0])
		}
	}
	if len(lookupBug) > 0 {
		t.Logf("capture %s: tshark's MPTCP mapping lookup fails its assertion on %d segments (Wireshark's bug; decode checked their mappings): %s",
			c.dev, len(lookupBug), firstLines(strings.Join(lookupBug, "\n"), 10))
		c.logMappingsAround(t, lookupFrames)
	}
	if len(errs) > 0 {
		t.Errorf("capture %s: tshark: %d malformed segments or MPTCP analysis errors:\n%s",
			c.dev, len(errs), firstLines(strings.Join(errs, "\n"), 10))
	}
	switch {
	case len(noMapping) > 0 && !fallback:
		t.Errorf("capture %s: tshark: %d data segments without a mapping or with the infinite one: %s",
			c.dev, len(noMapping), firstLines(strings.Join(noMapping, "\n"), 10))
	case len(noMapping) > 0:
		t.Logf("capture %s: tshark: %d data segments without a mapping (fallback)", c.dev, len(noMapping))
	}
}

// logMappingsAround logs, for each of the frames, the DSS mappings of the
// capture (in capture order) that overlap its payload on its subflow: what
// Wireshark's lookup chose from when it failed.
func (c *capture) logMappingsAround(t testing.TB, frames []int) {
	type dir struct{ src, dst netip.AddrPort }
	isn := map[dir]uint32{}
	want := map[int]segment{}
	for _, s := range c.segments(t) {
		if s.flags&decode.FlagSYN != 0 {
			isn[dir{s.src, s.dst}] = s.seq
		}
		if slices.Contains(frames, s.frame) {
			want[s.frame] = s
		}
	}
	maps := c.find(t, func(_ *decode.Packet, o *options.Option) bool {
		return o.Subtype == options.SubtypeDSS && o.DSS().HasMapping
	})
	for _, f := range frames {
		s, ok := want[f]
		if !ok {
			continue
		}
		d := dir{s.src, s.dst}
		rel := s.seq - isn[d]
		var b strings.Builder
		for _, m := range maps {
			ds := m.opt.DSS()
			if m.src != s.src || m.dst != s.dst || ds.DataLen == 0 || m.frame > f {
				continue
			}
			if rel-ds.SubflowSeq < uint32(ds.DataLen) || ds.SubflowSeq-rel < uint32(s.payload) {
				fmt.Fprintf(&b, "\n    frame %d: subflow seq %d len %d DSN %d", m.frame, ds.SubflowSeq, ds.DataLen, ds.DSN)
			}
		}
		t.Logf("capture %s: frame %d (subflow seq %d, %d bytes) and the mappings before it that overlap it:%s", c.dev, f, rel, s.payload, b.String())
	}
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
	at       time.Time // capture time
	src, dst netip.AddrPort
	payload  int   // TCP payload length (from the IP header)
	flags    uint8 // TCP flags
	seq, ack uint32
	mptcp    bool // carries an MPTCP option
}

func (s segment) rst() bool { return s.flags&decode.FlagRST != 0 }

// scan calls fn for every TCP segment of the (stopped) capture.
func (c *capture) scan(t testing.TB, fn func(p *decode.Packet)) {
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
	return segment{frame: p.Frame, at: p.Timestamp, src: p.Src, dst: p.Dst, payload: p.PayloadLen, flags: p.Flags,
		seq: p.Seq, ack: p.Ack, mptcp: len(p.Options) > 0}
}

// segments returns every TCP segment of the capture.
func (c *capture) segments(t testing.TB) []segment {
	var out []segment
	c.scan(t, func(p *decode.Packet) { out = append(out, segmentOf(p)) })
	return out
}

// find returns the MPTCP options of the capture for which match is true,
// with their segments. Option bytes are copied.
func (c *capture) find(t testing.TB, match func(p *decode.Packet, o *options.Option) bool) []sighting {
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

// reorderedSegments returns the frames of segments that reached the
// capture after a segment of the same direction and connection that their
// sender built later:
//
//   - their TCP ACK is below one seen before, or
//   - they carry new data (never seen before) starting below the sequence
//     number of a segment seen before: that segment was built when these
//     bytes were already sequenced (a pure ACK carries the sender's next
//     sequence number).
//
// pathReordering: this topology reorders segments. A veth hands a packet to
// the other namespace on the backlog of the CPU that sent it (veth_xmit →
// __netif_rx), and a TUN device processes a write on the writing thread's
// CPU, so two segments sent from two CPUs (a data segment from a process,
// an ACK from a softirq; two of umptcp's goroutines) can swap places on the
// way. Seen with the kernel's own segments: in order on its veth, swapped
// after one hop (captures on umpt0 and vo). decode's data-ack check then
// sees a DATA_ACK go backwards on such an older segment; the suite does not
// count those.
func (c *capture) reorderedSegments(t testing.TB) map[int]bool {
	type dir struct{ src, dst netip.AddrPort }
	type high struct {
		ack, seq, end uint32 // highest TCP ACK, sequence number, end of data
		ok, endOK     bool
	}
	highs := map[dir]*high{}
	out := map[int]bool{}
	after := func(a, b uint32) bool { return int32(a-b) > 0 }
	c.scan(t, func(p *decode.Packet) {
		if p.Flags&decode.FlagACK == 0 || p.Flags&(decode.FlagSYN|decode.FlagRST) != 0 {
			return
		}
		d := dir{p.Src, p.Dst}
		h := highs[d]
		if h == nil {
			h = &high{}
			highs[d] = h
		}
		end := p.Seq + uint32(p.PayloadLen)
		if h.ok {
			newData := p.PayloadLen > 0 && (!h.endOK || after(end, h.end))
			if after(h.ack, p.Ack) || (newData && after(h.seq, p.Seq)) {
				out[p.Frame] = true
			}
		}
		if !h.ok || after(p.Ack, h.ack) {
			h.ack = p.Ack
		}
		if !h.ok || after(p.Seq, h.seq) {
			h.seq = p.Seq
		}
		if p.PayloadLen > 0 && (!h.endOK || after(end, h.end)) {
			// The highest data sent, not a pure ACK's position.
			h.end, h.endOK = end, true
		}
		h.ok = true
	})
	return out
}

// unmappedSeg is a data segment with a DSS but no mapping.
type unmappedSeg struct {
	frame, payload int
	seq            uint32
	fromUs         bool // umptcp sent it
	// newData: some of its bytes are beyond every ACK the receiver sent
	// before (else the receiver's TCP drops it whole, as with umptcp's
	// one-byte window probes of a byte the peer has).
	newData bool
}

// unmappedData returns the data segments that carry a DSS without a
// mapping (and no MP_CAPABLE with one), by frame. RFC 8684 lets a mapping
// cover later segments, but Linux keeps a mapping per received segment: new
// bytes that come without one are data without DSS to it
// (get_mapping_status: MAPPING_INVALID), and it falls back or resets. Linux
// and umptcp map every segment of new data (DESIGN.md: "every segment
// carries a mapping that covers it").
func (c *capture) unmappedData(t testing.TB) map[int]unmappedSeg {
	type dir struct{ src, dst netip.AddrPort }
	acked := map[dir]uint32{} // highest ACK from dst to src
	out := map[int]unmappedSeg{}
	c.scan(t, func(p *decode.Packet) {
		if p.Flags&decode.FlagACK != 0 {
			back := dir{p.Dst, p.Src}
			if a, ok := acked[back]; !ok || int32(p.Ack-a) > 0 {
				acked[back] = p.Ack
			}
		}
		if p.PayloadLen == 0 || p.Flags&(decode.FlagSYN|decode.FlagRST) != 0 {
			return
		}
		dss, mapped := false, false
		for i := range p.Options {
			o := &p.Options[i]
			switch {
			case o.Malformed:
			case o.Subtype == options.SubtypeDSS:
				dss = true
				mapped = mapped || o.DSS().HasMapping
			case o.Subtype == options.SubtypeMPCapable:
				mapped = true
			}
		}
		if dss && !mapped {
			a, ok := acked[dir{p.Src, p.Dst}]
			out[p.Frame] = unmappedSeg{frame: p.Frame, payload: p.PayloadLen, seq: p.Seq,
				fromUs:  p.Src.Addr() == StackAddr(false) || p.Src.Addr() == StackAddr(true),
				newData: !ok || int32(p.Seq+uint32(p.PayloadLen)-a) > 0}
		}
	})
	return out
}

// dataFINs returns the segments that carry a DATA_FIN.
func (c *capture) dataFINs(t testing.TB) []sighting {
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
