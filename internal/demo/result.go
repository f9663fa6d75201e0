package demo

import (
	"math"
	"strconv"
	"time"
)

// Result is what a run found. It is also the --json output: the field tags
// are its schema. Durations are in seconds (fields ending in _s) or
// milliseconds (_ms), rates in bits per second (_bps), sizes in bytes.
type Result struct {
	// Size is the number of bytes each side sent (or meant to send).
	Size int64 `json:"size"`
	// Paths are the emulated paths, in --path order.
	Paths []Path `json:"paths"`
	// Checksum is true when the connection used DSS checksums.
	Checksum bool   `json:"checksum"`
	Seed     uint64 `json:"seed"`
	// Client and Server are the connection's two ends (ip:port).
	Client string `json:"client"`
	Server string `json:"server"`
	// MPTCP is true when the connection spoke MPTCP to the end on both
	// sides; FallbackReason says why not (the client's reason, or the
	// server's if only the server fell back).
	MPTCP          bool   `json:"mptcp"`
	FallbackReason string `json:"fallback_reason"`
	// Connect is the time the handshake took; Duration the time from the
	// first byte written to the last byte read, both ways.
	Connect  Seconds `json:"connect_s"`
	Duration Seconds `json:"duration_s"`
	Up       Flow    `json:"up"`   // client to server
	Down     Flow    `json:"down"` // server to client
	// Subflows are the connection's subflows, in the client's order.
	Subflows []Subflow `json:"subflows"`
	// SHA256OK is true when both directions arrived intact.
	SHA256OK bool `json:"sha256_ok"`
	// Error says why the transfer failed, if it did.
	Error string `json:"error,omitempty"`
	// Counters are each stack's non-zero MPTCP counters (nstat names).
	Counters Counters `json:"counters"`
}

// Flow is one direction of the transfer.
type Flow struct {
	Sent     int64 `json:"sent"`     // bytes written by the sender
	Received int64 `json:"received"` // bytes read by the receiver
	// Duration runs from the start of the transfer to the receiver's EOF
	// (or to the end of the run, if it never came).
	Duration Seconds `json:"duration_s"`
	// Goodput is Received over Duration: application bytes delivered.
	Goodput float64 `json:"goodput_bps"`
	// Retrans counts payload bytes the sender's subflows sent again.
	Retrans uint64 `json:"retrans_bytes"`
	// The SHA-256 of the bytes sent and of the bytes received, in hex.
	SHA256Sent     string `json:"sha256_sent"`
	SHA256Received string `json:"sha256_received"`
	// SHA256OK is true when Received == Size and the digests are equal.
	SHA256OK bool `json:"sha256_ok"`
	// DifferingBytes counts received bytes that differ from the ones sent
	// at the same offset; FirstDifference is the first such offset, or -1.
	DifferingBytes  int64 `json:"differing_bytes"`
	FirstDifference int64 `json:"first_difference"`
}

// Subflow is one subflow of the connection, seen from both ends.
type Subflow struct {
	// Path is the 1-based index of the path it runs over (0: unknown).
	Path   int    `json:"path"`
	Client string `json:"client"`
	Server string `json:"server"`
	// State is the client end's TCP state when the transfer ended.
	State string `json:"state"`
	// RTT is the client's smoothed RTT (measured on the data it sends),
	// ServerRTT the server's.
	RTT       Millis `json:"rtt_ms"`
	ServerRTT Millis `json:"server_rtt_ms"`
	// Bytes read from this subflow by the receiver of each direction and
	// the resulting goodput; payload bytes the sender sent on it,
	// retransmissions included, and of those the bytes sent again.
	UpBytes     uint64  `json:"up_bytes"`
	DownBytes   uint64  `json:"down_bytes"`
	UpGoodput   float64 `json:"up_goodput_bps"`
	DownGoodput float64 `json:"down_goodput_bps"`
	UpSent      uint64  `json:"up_sent_bytes"`
	DownSent    uint64  `json:"down_sent_bytes"`
	UpRetrans   uint64  `json:"up_retrans_bytes"`
	DownRetrans uint64  `json:"down_retrans_bytes"`
	// Cwnd is the client's congestion window in segments, ServerCwnd the
	// server's.
	Cwnd       uint32 `json:"cwnd"`
	ServerCwnd uint32 `json:"server_cwnd"`
}

// Path is one emulated path and what it did to the packets.
type Path struct {
	// Spec is the path as --path writes it (seeds left out).
	Spec string  `json:"spec"`
	Up   LinkDir `json:"up"`   // client to server
	Down LinkDir `json:"down"` // server to client
}

// LinkDir is one direction of a path.
type LinkDir struct {
	// Seed is the direction's effective random seed ("seed=" in a spec
	// replays it).
	Seed             uint64 `json:"seed"`
	SentPackets      uint64 `json:"sent_packets"`
	DeliveredPackets uint64 `json:"delivered_packets"`
	DroppedPackets   uint64 `json:"dropped_packets"`
	// Summary is emu's one-line account: drops by cause, corruption...
	Summary string `json:"summary"`
}

// Counters are the non-zero MIB counters of the two stacks.
type Counters struct {
	Client map[string]uint64 `json:"client"`
	Server map[string]uint64 `json:"server"`
}

// OK reports whether the transfer completed and every byte matched.
func (r *Result) OK() bool { return r.Error == "" && r.SHA256OK }

// Seconds is a duration that JSON renders as a number of seconds.
type Seconds time.Duration

// D returns s as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Seconds(), 'f', -1, 64), nil
}

func (s *Seconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	*s = Seconds(math.Round(f * float64(time.Second)))
	return err
}

// Millis is a duration that JSON renders as a number of milliseconds.
type Millis time.Duration

// D returns m as a time.Duration.
func (m Millis) D() time.Duration { return time.Duration(m) }

func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/float64(time.Millisecond), 'f', -1, 64), nil
}

func (m *Millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	*m = Millis(math.Round(f * float64(time.Millisecond)))
	return err
}
