package decode

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Check names one kind of consistency check the Analyzer performs.
type Check uint8

// The checks, in the order the summary lists them.
const (
	// CheckWellFormed: every MPTCP option matches a variant of its subtype
	// for the segment it travels in (MP_TCPRST off a RST is CheckTCPRst's).
	CheckWellFormed Check = iota
	// CheckCapableKeys: the keys of a connection's MP_CAPABLE options agree:
	// the third ACK and the first data echo the SYN/ACK's key, and repeat
	// the initiator's key.
	CheckCapableKeys
	// CheckJoinToken: the token of an MP_JOIN SYN is the token of a key seen
	// in an MP_CAPABLE handshake.
	CheckJoinToken
	// CheckJoinSYNACKHMAC: the truncated HMAC of an MP_JOIN SYN/ACK.
	CheckJoinSYNACKHMAC
	// CheckJoinACKHMAC: the 160-bit HMAC of an MP_JOIN third ACK.
	CheckJoinACKHMAC
	// CheckAddAddrHMAC: the HMAC of an ADD_ADDR, keyed by its sender.
	CheckAddAddrHMAC
	// CheckAddAddrEcho: an ADD_ADDR echo answers an announcement of the
	// same address ID, address and port from the other side.
	CheckAddAddrEcho
	// CheckDSN: a mapping's DSN, expanded to 64 bits, is at or after the
	// sender's IDSN+1, a segment's payload lies inside the subflow range
	// of the mapping it carries, and a mapping ties the subflow bytes it
	// shares with earlier mappings of the subflow to the same DSNs.
	CheckDSN
	// CheckDataAck: a data ACK, expanded to 64 bits, lies between the
	// acknowledged side's IDSN+1 and the end of what that side has mapped,
	// and does not go backwards on a subflow.
	CheckDataAck
	// CheckDataFIN: a DATA_FIN carries a mapping, every DATA_FIN of a side
	// has the same DSN, and no data is mapped past it.
	CheckDataFIN
	// CheckDSSChecksum: the DSS checksum of a mapping whose every byte was
	// captured (DSS, or MP_CAPABLE on the first data).
	CheckDSSChecksum
	// CheckFastCloseKey: MP_FASTCLOSE carries the receiver's key.
	CheckFastCloseKey
	// CheckTCPRst: MP_TCPRST travels on a RST.
	CheckTCPRst

	// NumChecks is the number of Check kinds.
	NumChecks
)

var checkNames = [NumChecks]string{
	CheckWellFormed:     "well-formed",
	CheckCapableKeys:    "capable-keys",
	CheckJoinToken:      "join-token",
	CheckJoinSYNACKHMAC: "join-synack-hmac",
	CheckJoinACKHMAC:    "join-ack-hmac",
	CheckAddAddrHMAC:    "add-addr-hmac",
	CheckAddAddrEcho:    "add-addr-echo",
	CheckDSN:            "dsn",
	CheckDataAck:        "data-ack",
	CheckDataFIN:        "data-fin",
	CheckDSSChecksum:    "dss-checksum",
	CheckFastCloseKey:   "fastclose-key",
	CheckTCPRst:         "tcprst-on-rst",
}

// String returns the check's name as the report prints it.
func (c Check) String() string {
	if c < NumChecks {
		return checkNames[c]
	}
	return "check-" + strconv.Itoa(int(c))
}

// CheckCount counts one kind of check: how many held, how many did not, and
// how many could not be made (a key, a nonce, an ISN or payload bytes were
// not in the capture).
type CheckCount struct {
	OK, Mismatch, Skipped int
}

// Performed returns the number of checks made.
func (c CheckCount) Performed() int { return c.OK + c.Mismatch }

// Mismatch is one check that did not hold.
type Mismatch struct {
	Frame int
	Check Check
	// Conn is the 1-based number of the MPTCP connection, in order of
	// appearance, or 0 when the segment belongs to none.
	Conn     int
	Src, Dst netip.AddrPort
	// What the check is about, and what it expected and saw.
	What, Expected, Seen string
}

func (m Mismatch) String() string {
	s := fmt.Sprintf("frame %d", m.Frame)
	if m.Conn > 0 {
		s += fmt.Sprintf(" conn %d", m.Conn)
	}
	s += fmt.Sprintf(" %v > %v: %v: %s", m.Src, m.Dst, m.Check, m.What)
	if m.Expected != "" || m.Seen != "" {
		s += fmt.Sprintf(": expected %s, seen %s", m.Expected, m.Seen)
	}
	return s
}

// Result is what an Analyzer found.
type Result struct {
	Frames       int // frames fed
	TCPSegments  int // of which TCP segments
	MPTCPOptions int // MPTCP options in them
	Connections  int // MPTCP connections seen (MP_CAPABLE handshakes)
	Subflows     int // TCP connections tracked
	Joins        int // subflows attached to a connection by MP_JOIN
	// Untracked counts the segments that would have started tracking a
	// subflow (a SYN, a SYN/ACK, an MP_CAPABLE third ACK) or a connection
	// but did not because a limit was reached.
	Untracked int

	Checks [NumChecks]CheckCount
	// Mismatches lists the first Limits.MaxMismatches mismatches in frame
	// order; MismatchesDropped counts the rest.
	Mismatches        []Mismatch
	MismatchesDropped int
}

// MismatchCount returns the number of mismatches found, listed or not.
func (r *Result) MismatchCount() int { return len(r.Mismatches) + r.MismatchesDropped }

// OK reports whether no check failed.
func (r *Result) OK() bool { return r.MismatchCount() == 0 }

// WriteText writes the verification report: one line per listed mismatch,
// then a summary with the count of each check.
func (r *Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, m := range r.Mismatches {
		fmt.Fprintln(bw, m.String())
	}
	if r.MismatchesDropped > 0 {
		fmt.Fprintf(bw, "... and %s more\n", plural(r.MismatchesDropped, "mismatch"))
	}
	fmt.Fprintf(bw, "%s, %s, %s; %s, %s (%d joined)",
		plural(r.Frames, "frame"), plural(r.TCPSegments, "TCP segment"), plural(r.MPTCPOptions, "MPTCP option"),
		plural(r.Connections, "MPTCP connection"), plural(r.Subflows, "subflow"), r.Joins)
	if r.Untracked > 0 {
		fmt.Fprintf(bw, ", %d untracked (limits reached)", r.Untracked)
	}
	fmt.Fprintf(bw, "\n%-18s %9s %9s %9s\n", "check", "ok", "mismatch", "skipped")
	for c := Check(0); c < NumChecks; c++ {
		n := r.Checks[c]
		fmt.Fprintf(bw, "%-18s %9d %9d %9d\n", c, n.OK, n.Mismatch, n.Skipped)
	}
	if r.OK() {
		fmt.Fprintln(bw, "verify: ok, no mismatch")
	} else {
		fmt.Fprintf(bw, "verify: %s\n", plural(r.MismatchCount(), "mismatch"))
	}
	return bw.Flush()
}

type jsonMismatch struct {
	Frame    int    `json:"frame"`
	Conn     int    `json:"conn,omitempty"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Check    string `json:"check"`
	What     string `json:"what"`
	Expected string `json:"expected,omitempty"`
	Seen     string `json:"seen,omitempty"`
}

type jsonCount struct {
	OK       int `json:"ok"`
	Mismatch int `json:"mismatch"`
	Skipped  int `json:"skipped"`
}

type jsonSummary struct {
	Frames       int `json:"frames"`
	TCPSegments  int `json:"tcp_segments"`
	MPTCPOptions int `json:"mptcp_options"`
	Connections  int `json:"connections"`
	Subflows     int `json:"subflows"`
	Joins        int `json:"joins"`
	Untracked    int `json:"untracked"`
	Mismatches   int `json:"mismatches"`
	// Checks is an object keyed by check name, in Check order.
	Checks json.RawMessage `json:"checks"`
}

// WriteJSON writes the verification report as JSON lines: one object per
// listed mismatch ({"mismatch": {...}}), then {"summary": {...}} with the
// count of each check.
func (r *Result) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, m := range r.Mismatches {
		jm := jsonMismatch{Frame: m.Frame, Conn: m.Conn, Src: m.Src.String(), Dst: m.Dst.String(),
			Check: m.Check.String(), What: m.What, Expected: m.Expected, Seen: m.Seen}
		if err := enc.Encode(struct {
			M jsonMismatch `json:"mismatch"`
		}{jm}); err != nil {
			return err
		}
	}
	checks := []byte{'{'}
	for c := Check(0); c < NumChecks; c++ {
		if c > 0 {
			checks = append(checks, ',')
		}
		n := r.Checks[c]
		b, _ := json.Marshal(jsonCount{n.OK, n.Mismatch, n.Skipped})
		checks = strconv.AppendQuote(checks, c.String())
		checks = append(checks, ':')
		checks = append(checks, b...)
	}
	checks = append(checks, '}')
	s := jsonSummary{Frames: r.Frames, TCPSegments: r.TCPSegments, MPTCPOptions: r.MPTCPOptions,
		Connections: r.Connections, Subflows: r.Subflows, Joins: r.Joins, Untracked: r.Untracked,
		Mismatches: r.MismatchCount(), Checks: checks}
	if err := enc.Encode(struct {
		S jsonSummary `json:"summary"`
	}{s}); err != nil {
		return err
	}
	return bw.Flush()
}

// plural returns "1 frame", "2 frames", "2 mismatches".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
