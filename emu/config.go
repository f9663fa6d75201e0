package emu

import (
	"errors"
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// DefaultMTU is the MTU of a direction whose Config.MTU is zero: an Ethernet
// path, the common case the stack has to fit its options into.
const DefaultMTU = 1500

// minMTU is the IPv6 minimum link MTU (RFC 8200 §5). Anything smaller cannot
// carry IPv6 at all and is almost certainly a typo in a spec.
const minMTU = 1280

// maxMTU is the largest IP packet (IPv4 total length is 16 bits).
const maxMTU = 65535

// defaultReorderDelay is the extra delay of a reordered packet when
// Config.ReorderDelay is zero: long enough for the packets behind it to
// overtake it at any rate worth emulating, short enough not to trigger a TCP
// retransmission timeout.
const defaultReorderDelay = time.Millisecond

// minDefaultQueuePackets scales the default queue floor: a bottleneck buffer
// smaller than a few dozen packets makes even an unloaded path drop slow-start
// bursts, which is not what anyone means by "rate=10mbit".
const minDefaultQueuePackets = 64

// Config is the behaviour of one direction of a Link. The zero value is an
// ideal path: unlimited rate, no delay, no loss, MTU 1500.
//
// Impairments apply in this order, the order of a real path: blackhole, MTU,
// the bottleneck queue (Rate, QueueBytes, QueuePackets), random Loss, Burst
// loss, Duplicate, Corrupt, Rewrite, Strip, then propagation (Delay, Jitter,
// Reorder). A lost packet has therefore still used its share of the
// bottleneck, as on a lossy radio link behind the queue.
type Config struct {
	// Rate is the bottleneck rate in bits per second; 0 means unlimited.
	// Packets are serialised one after another at this rate; those that find
	// the queue full are dropped (drop-tail).
	Rate uint64

	// QueueBytes and QueuePackets bound the bottleneck queue (packets
	// waiting to be serialised). A packet is dropped when either bound
	// would be exceeded; a zero bound is no bound. When both are zero and
	// Rate is set, QueueBytes defaults to one bandwidth-delay product for a
	// round trip of 2×Delay (the classic rule for a bottleneck buffer), and
	// at least 64 packets of MTU size. Ignored when Rate is 0: an unlimited
	// link never queues.
	QueueBytes   int
	QueuePackets int

	// Delay is the one-way propagation delay added after serialisation.
	Delay time.Duration

	// Jitter varies the delay of each packet uniformly in
	// [Delay-Jitter, Delay+Jitter] (clamped at zero). Packets still leave
	// in order (a packet is never delivered before its predecessor)
	// unless JitterReorders is set.
	Jitter         time.Duration
	JitterReorders bool

	// Loss is the probability in [0, 1] that a packet is dropped,
	// independently of every other packet.
	Loss float64

	// Burst is a Gilbert–Elliott loss model, applied after Loss. The zero
	// value disables it.
	Burst Burst

	// Reorder is the probability in [0, 1] that a packet is held back for
	// ReorderDelay more than its neighbours, so that the packets behind it
	// overtake it. ReorderDelay 0 means 1ms.
	Reorder      float64
	ReorderDelay time.Duration

	// Duplicate is the probability in [0, 1] that a packet is delivered
	// twice.
	Duplicate float64

	// Corrupt is the probability in [0, 1] that one bit of a TCP segment's
	// payload is flipped, leaving the TCP checksum as it was: the receiving
	// stack must detect it and drop the segment. Corrupt and Rewrite touch
	// only TCP segments that carry payload; other packets pass unchanged.
	Corrupt float64

	// Rewrite is the probability in [0, 1] that one byte of a TCP segment's
	// payload is changed and the TCP checksum fixed, as a payload-rewriting
	// middlebox does. TCP cannot see it; the MPTCP DSS checksum can.
	Rewrite float64

	// Strip selects the TCP segments whose MPTCP options (kind 30) are
	// replaced by NOPs with the checksum fixed, as a middlebox running
	// iptables TCPOPTSTRIP does (same option walk: it stops at EOL or at a
	// malformed length). IPv6 extension headers are not walked: a segment
	// behind one passes unchanged, as do IP fragments.
	Strip Strip

	// MTU is the largest IP packet this direction carries; 0 means
	// DefaultMTU. The sending endpoint reports it to its stack, and larger
	// packets are dropped (counted in Stats.DroppedMTU).
	MTU uint32

	// Seed seeds this direction's random decisions: the same seed, config
	// and packet sequence give the same decisions. NewLink replaces 0 by a
	// random seed (Link.Config shows which); SetConfig with Seed 0 keeps
	// the current random stream.
	Seed uint64

	// ChecksumOffload makes the sending endpoint advertise TX checksum
	// offload and the receiving one RX checksum offload, so both stacks skip
	// the TCP/UDP checksum in this direction. Only for benchmarks: corruption
	// is then not detected. Stacks read capabilities when the NIC is
	// created, so changing it at run time has no effect on them.
	ChecksumOffload bool

	// GSOMaxSize, when not 0, gives this direction the offloads of a veth
	// pair or a TUN device with them on: the sending endpoint advertises
	// host GSO up to this size (stack.HostGSOSupported) and TX checksum
	// offload, the receiving one RX checksum offload, and a TCP
	// super-segment crosses whole, as one packet the receiving stack takes
	// as it is (on Linux, GRO hands a veth's receiver the same). Only such
	// segments may exceed MTU. Impairments then act on whole super-segments
	// and corruption goes undetected (see ChecksumOffload). Stacks read it
	// when a connection's route is made: set it at NewLink. At most
	// MaxGSOSize.
	GSOMaxSize uint32
}

// MaxGSOSize bounds Config.GSOMaxSize: gVisor sizes a super-segment's payload
// below GSOMaxSize minus the largest headers, so the IPv4 total length of
// the largest one still fits 16 bits after the TCP options grow to 40 bytes.
const MaxGSOSize = 0xffff - header.IPv4MinimumSize

// gsoHeadroom is what a super-segment may carry beyond GSOMaxSize in headers.
const gsoHeadroom = header.TCPTotalHeaderMaximumSize

// Burst is the Gilbert–Elliott two-state loss model (netem's "loss gemodel"):
// in the good state a packet is lost with probability GoodLoss, in the bad
// state with probability BadLoss; after each packet the state flips good→bad
// with probability P and bad→good with probability R. The mean burst length
// is 1/R packets and the share of packets sent in the bad state P/(P+R).
//
// As in netem, the chain moves per packet, not per unit of time: a bad state
// lasts until enough packets have crossed, however long the link stays idle.
// On a sparse path (TCP's ACKs) one burst can therefore swallow several
// retransmission timeouts' worth of packets.
//
// BadLoss 0 means 1: every packet in the bad state is lost (the simple
// Gilbert model). A bad state that loses nothing would be no model at all, so
// nothing is lost by giving the zero value that meaning. The zero Burst
// disables the model.
type Burst struct {
	P, R     float64
	BadLoss  float64
	GoodLoss float64
}

// enabled reports whether the model can ever lose a packet.
func (b *Burst) enabled() bool { return b.P > 0 || b.GoodLoss > 0 }

// badLoss returns the effective loss probability in the bad state.
func (b *Burst) badLoss() float64 {
	if b.BadLoss == 0 {
		return 1
	}
	return b.BadLoss
}

// Strip is a set of TCP segment classes whose MPTCP options are stripped.
// The classes partition TCP segments, so StripAll strips every segment.
type Strip uint8

const (
	// StripSYN selects SYNs without ACK: an MP_CAPABLE or MP_JOIN SYN.
	StripSYN Strip = 1 << iota
	// StripSYNACK selects SYN/ACKs.
	StripSYNACK
	// StripData selects segments that carry payload (and no SYN).
	StripData
	// StripOther selects every other segment: pure ACKs, FINs and RSTs
	// without payload (where the third ACK, DATA_ACKs and ADD_ADDRs ride).
	StripOther

	// StripNone strips nothing.
	StripNone Strip = 0
	// StripAll strips every TCP segment, like TCPOPTSTRIP on all traffic.
	StripAll = StripSYN | StripSYNACK | StripData | StripOther
)

// Dir names one direction of a Link.
type Dir uint8

const (
	// AToB is the direction from endpoint A to endpoint B.
	AToB Dir = 0
	// BToA is the direction from endpoint B to endpoint A.
	BToA Dir = 1
)

// String returns "a->b" or "b->a".
func (d Dir) String() string {
	switch d {
	case AToB:
		return "a->b"
	case BToA:
		return "b->a"
	}
	return fmt.Sprintf("Dir(%d)", uint8(d))
}

// Validate reports the first field of c that is out of range.
func (c Config) Validate() error {
	var errs []error
	prob := func(name string, p float64) {
		// !(p >= 0) also catches NaN.
		if !(p >= 0 && p <= 1) {
			errs = append(errs, fmt.Errorf("%s %v is not a probability in [0, 1]", name, p))
		}
	}
	if c.QueueBytes < 0 {
		errs = append(errs, fmt.Errorf("queue bytes %d is negative", c.QueueBytes))
	}
	if c.QueuePackets < 0 {
		errs = append(errs, fmt.Errorf("queue packets %d is negative", c.QueuePackets))
	}
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %v is negative", c.Delay))
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter %v is negative", c.Jitter))
	}
	if c.ReorderDelay < 0 {
		errs = append(errs, fmt.Errorf("reorder delay %v is negative", c.ReorderDelay))
	}
	prob("loss", c.Loss)
	prob("burst p", c.Burst.P)
	prob("burst r", c.Burst.R)
	prob("burst bad-state loss", c.Burst.BadLoss)
	prob("burst good-state loss", c.Burst.GoodLoss)
	if c.Burst.P > 0 && c.Burst.R == 0 {
		// The chain would enter the bad state and never leave it.
		errs = append(errs, errors.New("burst r is 0: the bad state would never end"))
	}
	prob("reorder", c.Reorder)
	prob("duplicate", c.Duplicate)
	prob("corrupt", c.Corrupt)
	prob("rewrite", c.Rewrite)
	if c.Strip&^StripAll != 0 {
		errs = append(errs, fmt.Errorf("strip %#x has unknown bits", uint8(c.Strip)))
	}
	if c.GSOMaxSize > MaxGSOSize {
		errs = append(errs, fmt.Errorf("gso max size %d is above %d", c.GSOMaxSize, MaxGSOSize))
	}
	if c.MTU != 0 && (c.MTU < minMTU || c.MTU > maxMTU) {
		errs = append(errs, fmt.Errorf("mtu %d is outside [%d, %d]", c.MTU, minMTU, maxMTU))
	}
	return errors.Join(errs...)
}

// mtu returns the effective MTU.
func (c *Config) mtu() uint32 {
	if c.MTU == 0 {
		return DefaultMTU
	}
	return c.MTU
}

// reorderDelay returns the effective extra delay of a reordered packet.
func (c *Config) reorderDelay() time.Duration {
	if c.ReorderDelay == 0 {
		return defaultReorderDelay
	}
	return c.ReorderDelay
}

// queueLimits returns the effective bottleneck queue bounds (0 = none).
func (c *Config) queueLimits() (bytes, packets int) {
	if c.QueueBytes != 0 || c.QueuePackets != 0 {
		return c.QueueBytes, c.QueuePackets
	}
	// One BDP for an RTT of 2×Delay; computed in float to avoid overflow
	// for absurd rates and delays.
	bdp := float64(c.Rate) / 8 * (2 * c.Delay).Seconds()
	floor := float64(minDefaultQueuePackets * c.mtu())
	if bdp < floor {
		bdp = floor
	}
	if bdp > 1<<40 {
		bdp = 1 << 40
	}
	return int(bdp), 0
}

// immediate reports whether packets under c are due the moment they are
// sent: nothing delays them, so the delivery queue behaves as a FIFO
// hand-off.
func (c *Config) immediate() bool {
	return c.Rate == 0 && c.Delay == 0 && c.Jitter == 0 && c.Reorder == 0
}
