package demo

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/umptcp/umptcp/emu"
)

const (
	// DefaultSize is the number of bytes sent each way when Config.Size is 0.
	DefaultSize = 100_000_000

	// DefaultPath is the path spec used when Config.Paths is empty: fast
	// enough that the default 100 MB each way takes a few seconds on two
	// cores, with a delay that gives TCP a real RTT to show.
	DefaultPath = "rate=1gbit,delay=1ms"

	// DefaultTimeout is the command's default --timeout: long enough for the
	// default size over slow paths, short enough to end a stuck run.
	DefaultTimeout = 10 * time.Minute

	// MaxPaths is how many paths the demo can use. The stack opens one
	// subflow per connection for now; once it joins a subflow per link
	// (MP_JOIN), the demo takes one path per subflow.
	MaxPaths = 1

	// Port is the port the server stack listens on (iperf3's).
	Port = 5201

	// chunk is the size of one write and one read.
	chunk = 128 << 10
)

// ErrMultipathLater is the usage error for more paths than MaxPaths.
var ErrMultipathLater = errors.New("multipath comes later: the stack opens one subflow per connection for now (no MP_JOIN yet), so the demo takes a single --path")

// UsageError is a Config the demo cannot run: the command line was wrong.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ProgressStyle says how Run reports progress.
type ProgressStyle uint8

const (
	// ProgressNone reports nothing.
	ProgressNone ProgressStyle = iota
	// ProgressLive redraws one line in place (for a terminal).
	ProgressLive
	// ProgressLines prints a line now and then (for a log or a pipe).
	ProgressLines
)

// Config is one run of the demo. The zero value is the default demo.
type Config struct {
	// Size is the number of bytes sent each way; 0 means DefaultSize.
	Size int64
	// Paths are the emulated paths, one link (and one day one subflow)
	// each; empty means DefaultPath. Each applies to both directions. A
	// zero Seed in a path is derived from Seed, per direction.
	Paths []emu.Config
	// Checksum asks for DSS checksums (RFC 8684 §3.3.1).
	Checksum bool
	// Seed seeds the data, the paths' random decisions and the MPTCP keys:
	// the same seed gives the same bytes and the same loss pattern.
	Seed uint64
	// Timeout bounds the whole run; 0 means no bound.
	Timeout time.Duration

	// Pcap, if not nil, receives a pcap capture (LINKTYPE_RAW) of what
	// crosses the paths, both ways, Snaplen bytes of each packet (0: whole
	// packets).
	Pcap    io.Writer
	Snaplen int

	// Progress receives progress reports in the given style.
	Progress      io.Writer
	ProgressStyle ProgressStyle
	// ProgressInterval is the time between reports; 0 means 250ms for
	// ProgressLive and 1s for ProgressLines.
	ProgressInterval time.Duration

	// rfc6675 gives both stacks gVisor's RFC 6675 loss recovery instead
	// of its default, RACK, for tests whose subject is not loss recovery:
	// RACK can crawl for minutes after a retransmission timeout (a gVisor
	// flaw, docs/DESIGN.md), which would time such a test out.
	rfc6675 bool
}

// withDefaults returns c with its zero fields set, or a *UsageError.
func (c Config) withDefaults() (Config, error) {
	if c.Size < 0 {
		return c, &UsageError{fmt.Errorf("size %d: must be positive", c.Size)}
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if len(c.Paths) == 0 {
		p, err := emu.ParsePath(DefaultPath)
		if err != nil {
			panic(err) // DefaultPath is a constant that parses
		}
		c.Paths = []emu.Config{p}
	}
	if len(c.Paths) > MaxPaths {
		return c, &UsageError{fmt.Errorf("%d paths given: %w", len(c.Paths), ErrMultipathLater)}
	}
	for i, p := range c.Paths {
		if err := p.Validate(); err != nil {
			return c, &UsageError{fmt.Errorf("path %d: %w", i+1, err)}
		}
	}
	if c.Timeout < 0 {
		return c, &UsageError{errors.New("timeout must not be negative")}
	}
	if c.Snaplen < 0 {
		return c, &UsageError{errors.New("snaplen must not be negative")}
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
		if c.ProgressStyle == ProgressLive {
			c.ProgressInterval = 250 * time.Millisecond
		}
	}
	if c.Progress == nil {
		c.ProgressStyle = ProgressNone
	}
	return c, nil
}

// Validate reports what makes c unusable, as a *UsageError, or nil.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}
