package emu

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Stats are the counters of one direction of a Link. Every packet sent is
// either delivered, dropped for exactly one cause, or still on its way, so
// after the link is idle (or closed):
//
//	SentPackets + Duplicated == DeliveredPackets + Dropped()
type Stats struct {
	SentPackets, SentBytes           uint64 // written by the sending stack
	DeliveredPackets, DeliveredBytes uint64 // handed to the receiving stack

	DroppedQueue     uint64 // bottleneck queue full (drop-tail)
	DroppedLoss      uint64 // random loss (Config.Loss)
	DroppedBurst     uint64 // Gilbert–Elliott loss (Config.Burst)
	DroppedBlackhole uint64 // sent while the blackhole was on
	DroppedMTU       uint64 // larger than the direction's MTU
	DroppedDetached  uint64 // receiving endpoint not attached, or the link closed under it

	Corrupted  uint64 // a payload bit flipped, checksum left wrong
	Rewritten  uint64 // a payload byte changed, checksum fixed
	Duplicated uint64 // extra copies sent
	Reordered  uint64 // held back by Config.Reorder so that others overtake it
	Stripped   uint64 // segments whose MPTCP options were replaced by NOPs
}

// Dropped returns the packets dropped for any cause.
func (s Stats) Dropped() uint64 {
	return s.DroppedQueue + s.DroppedLoss + s.DroppedBurst + s.DroppedBlackhole +
		s.DroppedMTU + s.DroppedDetached
}

// String returns a one-line summary naming only the non-zero drop causes
// and events, e.g. "sent 1200/1.7MiB delivered 1188/1.7MiB dropped loss=12".
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d/%s delivered %d/%s", s.SentPackets, bytesString(s.SentBytes),
		s.DeliveredPackets, bytesString(s.DeliveredBytes))
	list := func(title string, kv ...any) {
		first := true
		for i := 0; i < len(kv); i += 2 {
			if n := kv[i+1].(uint64); n != 0 {
				if first {
					b.WriteString(" " + title)
					first = false
				}
				fmt.Fprintf(&b, " %s=%d", kv[i], n)
			}
		}
	}
	list("dropped", "queue", s.DroppedQueue, "loss", s.DroppedLoss, "burst", s.DroppedBurst,
		"blackhole", s.DroppedBlackhole, "mtu", s.DroppedMTU, "detached", s.DroppedDetached)
	list("events", "corrupted", s.Corrupted, "rewritten", s.Rewritten, "duplicated", s.Duplicated,
		"reordered", s.Reordered, "stripped", s.Stripped)
	return b.String()
}

// bytesString writes n bytes with a binary-prefixed unit.
func bytesString(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// counters is the live, lock-free form of Stats.
type counters struct {
	sentPackets, sentBytes           atomic.Uint64
	deliveredPackets, deliveredBytes atomic.Uint64
	droppedQueue                     atomic.Uint64
	droppedLoss                      atomic.Uint64
	droppedBurst                     atomic.Uint64
	droppedBlackhole                 atomic.Uint64
	droppedMTU                       atomic.Uint64
	droppedDetached                  atomic.Uint64
	corrupted                        atomic.Uint64
	rewritten                        atomic.Uint64
	duplicated                       atomic.Uint64
	reordered                        atomic.Uint64
	stripped                         atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		SentPackets:      c.sentPackets.Load(),
		SentBytes:        c.sentBytes.Load(),
		DeliveredPackets: c.deliveredPackets.Load(),
		DeliveredBytes:   c.deliveredBytes.Load(),
		DroppedQueue:     c.droppedQueue.Load(),
		DroppedLoss:      c.droppedLoss.Load(),
		DroppedBurst:     c.droppedBurst.Load(),
		DroppedBlackhole: c.droppedBlackhole.Load(),
		DroppedMTU:       c.droppedMTU.Load(),
		DroppedDetached:  c.droppedDetached.Load(),
		Corrupted:        c.corrupted.Load(),
		Rewritten:        c.rewritten.Load(),
		Duplicated:       c.duplicated.Load(),
		Reordered:        c.reordered.Load(),
		Stripped:         c.stripped.Load(),
	}
}
