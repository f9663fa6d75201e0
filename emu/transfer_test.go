package emu

import (
	"testing"
)

// transferSize is the payload of each impaired transfer: tens of MB, fewer
// under the race detector, which slows gVisor down about tenfold.
func transferSize() int64 {
	if raceEnabled {
		return 8 << 20
	}
	return 20 << 20
}

// TestTransfer moves data with gVisor TCP over impaired links and checks it
// arrives intact, and that the impairment actually happened.
func TestTransfer(t *testing.T) {
	cases := []struct {
		name string
		spec string // A→B (data)
		// check asserts the impairment was exercised (A→B counters).
		check func(t *testing.T, s Stats)
		back  string // B→A (ACKs); "" means spec
	}{
		{"ideal", "", func(t *testing.T, s Stats) {
			if s.Dropped() != 0 {
				t.Errorf("dropped %d on an ideal path", s.Dropped())
			}
		}, ""},
		{"loss1", "delay=1ms,loss=1%", func(t *testing.T, s Stats) {
			if s.DroppedLoss == 0 {
				t.Error("nothing lost")
			}
		}, ""},
		{"loss5", "delay=1ms,loss=5%", func(t *testing.T, s Stats) {
			if s.DroppedLoss == 0 {
				t.Error("nothing lost")
			}
		}, ""},
		// Burst loss on the data direction only: the chain advances per
		// packet, so on the sparse ACK path a bad state outlasts whole RTO
		// backoffs and the transfer crawls (as it would under netem).
		{"burst", "delay=1ms,burst=0.5%/30%", func(t *testing.T, s Stats) {
			if s.DroppedBurst == 0 {
				t.Error("nothing lost in bursts")
			}
		}, "delay=1ms,loss=0.5%"},
		{"reorder", "delay=1ms,reorder=2%/2ms", func(t *testing.T, s Stats) {
			if s.Reordered == 0 {
				t.Error("nothing reordered")
			}
		}, ""},
		{"jitter-reorders", "delay=2ms,jitter=1ms/reorder", nil, ""},
		{"jitter-fifo", "delay=2ms,jitter=1ms", nil, ""},
		{"dup", "delay=1ms,dup=2%", func(t *testing.T, s Stats) {
			if s.Duplicated == 0 {
				t.Error("nothing duplicated")
			}
		}, ""},
		{"rate", "rate=200mbit,delay=2ms", func(t *testing.T, s Stats) {
			if s.DeliveredBytes < uint64(transferSize()) {
				t.Errorf("delivered %d bytes", s.DeliveredBytes)
			}
		}, ""},
		{"rate-smallqueue", "rate=200mbit,delay=2ms,queue=30p", func(t *testing.T, s Stats) {
			if s.DroppedQueue == 0 {
				t.Error("queue never overflowed")
			}
		}, ""},
		{"corrupt", "delay=1ms,corrupt=1%", func(t *testing.T, s Stats) {
			if s.Corrupted == 0 {
				t.Error("nothing corrupted")
			}
		}, ""},
		{"everything", "rate=300mbit,delay=2ms,jitter=500us,loss=1%,burst=0.2%/40%,reorder=1%,dup=1%,corrupt=0.5%", nil, ""},
	}
	for _, tc := range cases {
		for _, v6 := range []bool{false, true} {
			name := tc.name + "/ipv4"
			if v6 {
				name = tc.name + "/ipv6"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cfg := mustParse(t, tc.spec)
				back := cfg
				if tc.back != "" {
					back = mustParse(t, tc.back)
				}
				cfg.Seed, back.Seed = 42, 43
				l, p := newLinkPair(t, cfg, back)
				c, s := p.connect(t, v6)
				transfer(t, c, s, transferSize(), 7)
				st := l.Stats(AToB)
				if tc.check != nil {
					tc.check(t, st)
				}
				t.Logf("a->b %+v", st)
			})
		}
	}
}
