// Package kernelpeer runs one end of a Linux kernel MPTCP connection using the Go standard
// library (net.Dialer.SetMultipathTCP, net.ListenConfig.SetMultipathTCP): the reference
// peer that umptcp is tested against, and the traffic generator behind
// scripts/capture-kernel-mptcp.sh.
//
// A peer accepts or dials one connection and then, as its Config says, writes a
// deterministic payload (in chunks of chosen sizes, with pauses), reads everything to EOF,
// or echoes; it reports byte counts, SHA-256 digests and the kernel's MPTCP_INFO in a
// Result. Closing with Linger0 while unread data is pending makes the kernel send
// MP_FASTCLOSE.
//
// The cmd/mptcp-peer command is a thin wrapper that prints a Result as one JSON line.
package kernelpeer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config says what a peer does on its connection. The zero value sends nothing, reads
// nothing and closes at once.
type Config struct {
	// Addr is the address to listen on (server) or to dial (client), as host:port.
	Addr string
	// Local is the client's local address, as host or host:port; empty lets the kernel
	// choose. Servers ignore it.
	Local string

	// Send is the number of payload bytes to write. After the last one the peer shuts
	// down its write side (the kernel sends DATA_FIN), unless Linger0 is set.
	Send int64
	// Seed selects the payload: Payload(Seed). Two peers with different seeds send
	// different bytes.
	Seed uint64
	// Writes gives the size of each Write call; the zero value writes 32 KiB at a time.
	Writes SizeRange
	// WriteDelay is a pause after each Write, so that small writes leave as separate
	// segments.
	WriteDelay time.Duration
	// StartDelay is a pause between the connection coming up and the first Write, for
	// example to let the path managers announce addresses and open subflows before the
	// data flows.
	StartDelay time.Duration

	// Sink reads until EOF (the peer's DATA_FIN), hashing what it reads.
	Sink bool
	// Echo writes back everything it reads, and shuts down the write side at EOF. It
	// excludes Send and Sink.
	Echo bool

	// Linger0 closes with SO_LINGER 0 (an abortive close). Without Sink or Echo the peer
	// first waits until the other side's data is pending in its receive buffer and does
	// not read it, so that the kernel aborts with MP_FASTCLOSE.
	Linger0 bool
	// Hold keeps the connection open this long after the transfers, before closing.
	Hold time.Duration

	// RequireMPTCP fails the run when the connection is not MPTCP (the kernel has
	// MPTCP disabled, or the connection fell back to TCP).
	RequireMPTCP bool
}

// Validate reports a configuration that cannot run.
func (c *Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("kernelpeer: no address")
	case c.Send < 0:
		return fmt.Errorf("kernelpeer: negative send size %d", c.Send)
	case c.Echo && (c.Sink || c.Send > 0):
		return errors.New("kernelpeer: echo excludes send and sink")
	case c.WriteDelay < 0 || c.StartDelay < 0 || c.Hold < 0:
		return errors.New("kernelpeer: negative duration")
	}
	return c.Writes.Validate()
}

// SizeRange is a range of write sizes, Min to Max bytes inclusive. Sizes inside the range
// are drawn from a generator seeded by Config.Seed, so a run repeats exactly.
type SizeRange struct {
	Min, Max int
}

// defaultWrite is the write size when none is configured.
const defaultWrite = 32 << 10

// IsZero reports whether no range is set.
func (r SizeRange) IsZero() bool { return r.Min == 0 && r.Max == 0 }

// Validate reports an empty or negative range.
func (r SizeRange) Validate() error {
	if r.IsZero() {
		return nil
	}
	if r.Min <= 0 || r.Max < r.Min {
		return fmt.Errorf("kernelpeer: bad write size range %d-%d", r.Min, r.Max)
	}
	return nil
}

// String formats the range as Set accepts it.
func (r SizeRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}

// Set parses "SIZE" or "MIN-MAX" (each as ParseSize accepts); it makes *SizeRange a
// flag.Value.
func (r *SizeRange) Set(s string) error {
	lo, hi, found := strings.Cut(s, "-")
	first, err := ParseSize(lo)
	if err != nil {
		return err
	}
	last := first
	if found {
		if last, err = ParseSize(hi); err != nil {
			return err
		}
	}
	if first <= 0 || last > 1<<30 {
		return fmt.Errorf("kernelpeer: bad write size %q", s)
	}
	v := SizeRange{Min: int(first), Max: int(last)}
	if err := v.Validate(); err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseSize parses a byte count: a decimal number with an optional binary suffix
// K, M or G (KiB, MiB, GiB; "KiB" and "k" are accepted too).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "IB"), "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("kernelpeer: bad size %q", s)
	}
	return n * mult, nil
}

// Result is what a peer did, as the command prints it.
type Result struct {
	Role   string `json:"role"` // "client" or "server"
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
	// MPTCP reports whether the connection used MPTCP when it was set up
	// (net.TCPConn.MultipathTCP): false means MPTCP was unavailable or fell back.
	MPTCP bool `json:"mptcp"`

	Sent           int64  `json:"sent"`
	SentSHA256     string `json:"sent_sha256"`
	Received       int64  `json:"received"`
	ReceivedSHA256 string `json:"received_sha256"`

	// Info is the kernel's MPTCP_INFO just before the close; nil if unavailable
	// (fallback, or not Linux).
	Info *Info `json:"info,omitempty"`
	// Aborted is set when the peer closed with SO_LINGER 0.
	Aborted bool `json:"aborted,omitempty"`
	// Error is the run's error, if any, as text.
	Error string `json:"error,omitempty"`
}

// Info is the part of Linux's struct mptcp_info (SOL_MPTCP, MPTCP_INFO) that the tests
// use. Counters that a kernel too old to report them leaves out stay zero.
type Info struct {
	// Subflows is the number of subflows besides the initial one (mptcpi_subflows).
	Subflows        uint8 `json:"subflows"`
	AddAddrSignal   uint8 `json:"add_addr_signal"`
	AddAddrAccepted uint8 `json:"add_addr_accepted"`
	// SubflowsTotal is mptcpi_subflows_total (Linux 6.8+): the additional subflows plus
	// the initial one while that is still established.
	SubflowsTotal     uint8  `json:"subflows_total"`
	Fallback          bool   `json:"fallback"`
	RemoteKeyReceived bool   `json:"remote_key_received"`
	ChecksumEnabled   bool   `json:"checksum_enabled"`
	Token             uint32 `json:"token"`
	WriteSeq          uint64 `json:"write_seq"`
	SndUna            uint64 `json:"snd_una"`
	RcvNxt            uint64 `json:"rcv_nxt"`
}
