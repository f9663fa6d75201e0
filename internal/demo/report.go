package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// WriteJSON writes r as one JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// handshakeCounters are the counters every MPTCP connection moves; the text
// summary leaves them out to show only the events worth a look.
var handshakeCounters = map[string]bool{
	"MPTcpExtMPCapableSYNTX":    true,
	"MPTcpExtMPCapableSYNRX":    true,
	"MPTcpExtMPCapableSYNACKRX": true,
	"MPTcpExtMPCapableACKRX":    true,
	"MPTcpExtMPCurrEstab":       true,
	"UmptcpPureACKsSent":        true,
}

// WriteText writes r as the summary table a person reads.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "umptcp demo: %s each way, seed %d", FormatBytes(r.Size), r.Seed)
	if r.Client != "" {
		fmt.Fprintf(&b, ", client %s, server %s", r.Client, r.Server)
	}
	b.WriteString("\n")
	for i, p := range r.Paths {
		spec := p.Spec
		if spec == "" {
			spec = "ideal (no limit, no delay, no loss)"
		}
		fmt.Fprintf(&b, "path %d: %s, both ways\n", i+1, spec)
	}
	if r.Client == "" { // never connected
		return r.finish(w, &b)
	}

	b.WriteString("\n")
	switch {
	case r.MPTCP:
		fmt.Fprintf(&b, "MPTCP:    yes, DSS checksums %s\n", onOff(r.Checksum))
	case r.FallbackReason != "":
		fmt.Fprintf(&b, "MPTCP:    no, fell back to TCP: %s\n", r.FallbackReason)
	default:
		b.WriteString("MPTCP:    no\n")
	}
	fmt.Fprintf(&b, "connect:  %s\n", formatDuration(r.Connect.D()))
	fmt.Fprintf(&b, "transfer: %s\n\n", formatDuration(r.Duration.D()))

	t := table{align: "llllrrrrrr"}
	t.add("subflow", "path", "client", "server", "rtt", "cwnd", "up", "down", "retrans up", "retrans down")
	for i, s := range r.Subflows {
		t.add(fmt.Sprint(i+1), fmt.Sprint(s.Path), s.Client, s.Server,
			formatDuration(s.RTT.D()), fmt.Sprint(s.Cwnd), FormatRate(s.UpGoodput), FormatRate(s.DownGoodput),
			retrans(s.UpRetrans, s.UpSent), retrans(s.DownRetrans, s.DownSent))
	}
	var upSent, downSent uint64
	for _, s := range r.Subflows {
		upSent += s.UpSent
		downSent += s.DownSent
	}
	t.add("total", "", "", "", "", "", FormatRate(r.Up.Goodput), FormatRate(r.Down.Goodput),
		retrans(r.Up.Retrans, upSent), retrans(r.Down.Retrans, downSent))
	t.write(&b)
	b.WriteString("\n")

	t = table{align: "lrrrl"}
	t.add("", "received", "time", "goodput", "sha-256")
	t.add("up", FormatBytes(r.Up.Received), formatDuration(r.Up.Duration.D()), FormatRate(r.Up.Goodput), r.verdict(r.Up))
	t.add("down", FormatBytes(r.Down.Received), formatDuration(r.Down.Duration.D()), FormatRate(r.Down.Goodput), r.verdict(r.Down))
	t.write(&b)

	if len(r.Paths) > 0 {
		b.WriteString("\n")
		for i, p := range r.Paths {
			fmt.Fprintf(&b, "path %d up:   %s\n", i+1, p.Up.Summary)
			fmt.Fprintf(&b, "path %d down: %s\n", i+1, p.Down.Summary)
		}
	}
	for _, side := range []struct {
		name string
		m    map[string]uint64
	}{{"client", r.Counters.Client}, {"server", r.Counters.Server}} {
		var ev []string
		for k, v := range side.m {
			if !handshakeCounters[k] {
				ev = append(ev, fmt.Sprintf("%s=%d", k, v))
			}
		}
		if len(ev) > 0 {
			slices.Sort(ev)
			fmt.Fprintf(&b, "%s counters: %s\n", side.name, strings.Join(ev, " "))
		}
	}
	return r.finish(w, &b)
}

// finish appends the verdict line and writes b.
func (r *Result) finish(w io.Writer, b *strings.Builder) error {
	if r.OK() {
		fmt.Fprintf(b, "\nOK: %s each way arrived intact (SHA-256 of the bytes received equals that of the bytes sent)\n", FormatBytes(r.Size))
	} else {
		fmt.Fprintf(b, "\nFAILED: %s\n", r.Verdict())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Verdict says in one line why the run failed, or "ok".
func (r *Result) Verdict() string {
	switch {
	case r.Error != "":
		return r.Error
	case !r.SHA256OK:
		var dirs []string
		if !r.Up.SHA256OK {
			dirs = append(dirs, "up")
		}
		if !r.Down.SHA256OK {
			dirs = append(dirs, "down")
		}
		return fmt.Sprintf("the bytes received differ from the bytes sent (%s)", strings.Join(dirs, ", "))
	}
	return "ok"
}

// verdict is the sha-256 column of one direction.
func (r *Result) verdict(f Flow) string {
	if f.SHA256OK {
		return "ok " + abbrev(f.SHA256Received)
	}
	if f.SHA256Sent == "" {
		return "not checked: the sender did not finish"
	}
	var why []string
	if f.Received != r.Size {
		why = append(why, fmt.Sprintf("%d of %d bytes", f.Received, r.Size))
	}
	if f.DifferingBytes > 0 {
		why = append(why, fmt.Sprintf("%d bytes differ, the first at offset %d", f.DifferingBytes, f.FirstDifference))
	} else if f.FirstDifference >= 0 {
		why = append(why, fmt.Sprintf("extra bytes from offset %d", f.FirstDifference))
	}
	return fmt.Sprintf("MISMATCH sent %s received %s: %s", abbrev(f.SHA256Sent), abbrev(f.SHA256Received), strings.Join(why, "; "))
}

// abbrev shortens a hex digest for the table, as git shortens hashes (the
// JSON has it whole).
func abbrev(h string) string {
	if len(h) <= 16 {
		return h
	}
	return h[:16]
}

// table lays out rows in columns two spaces apart, each column aligned left
// ('l') or right ('r') as align says, without trailing blanks.
type table struct {
	align string
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.align))
	for _, row := range t.rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if t.align[i] == 'r' {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteString("\n")
	}
}

// retrans renders retransmitted bytes and their share of the bytes sent.
func retrans(n, of uint64) string {
	if n == 0 {
		return "0"
	}
	if of == 0 {
		return FormatBytes(int64(n))
	}
	return fmt.Sprintf("%s (%.2f%%)", FormatBytes(int64(n)), 100*float64(n)/float64(of))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
