package subflow

import (
	"testing"

	"github.com/umptcp/umptcp/options"
)

// These tests drive the mapping tables directly: no handshake, no options.

func TestTXTableFind(t *testing.T) {
	for _, base := range []uint32{1, 0xffff_ff00} { // the second wraps the sequence space
		var tx txTable
		// Mappings of 100, 1, 65535 and 7 bytes, back to back.
		lens := []uint16{100, 1, 0xffff, 7}
		ssn, dsn := base, uint64(1000)
		for _, l := range lens {
			tx.push(TXMapping{SSN: ssn, DSN: dsn, Len: l})
			ssn += uint32(l)
			dsn += uint64(l) + 10 // DSNs need not be contiguous
		}
		end := ssn
		cases := []struct {
			ssn  uint32
			want int // index of the mapping, -1 for none
		}{
			{base - 1, -1},
			{base, 0},
			{base + 99, 0},
			{base + 100, 1},
			{base + 101, 2},
			{base + 101 + 0xfffe, 2},
			{base + 101 + 0xffff, 3},
			{end - 1, 3},
			{end, -1},
			{end + 1<<20, -1},
		}
		for _, c := range cases {
			// Twice: once through the search, once through the hint.
			for range 2 {
				m := tx.find(c.ssn)
				switch {
				case c.want < 0 && m != nil:
					t.Errorf("base %#x: find(%#x) = %+v, want none", base, c.ssn, *m)
				case c.want >= 0 && m != tx.at(c.want):
					t.Errorf("base %#x: find(%#x) = %v, want mapping %d", base, c.ssn, m, c.want)
				}
			}
		}
		// Pruning: an ACK inside a mapping keeps it; past it drops it.
		tx.ackedTo(base + 50)
		if tx.len() != 4 {
			t.Errorf("ACK inside the first mapping pruned it: %d left", tx.len())
		}
		tx.ackedTo(base + 100)
		if tx.len() != 3 || tx.find(base+99) != nil || tx.find(base+100) == nil {
			t.Errorf("ACK at the end of the first mapping: %d left", tx.len())
		}
		tx.ackedTo(base + 101 + 10)
		if tx.len() != 2 || tx.find(base+101+10) == nil {
			t.Errorf("ACK inside the third mapping: %d left", tx.len())
		}
		tx.ackedTo(end)
		if tx.len() != 0 || tx.find(end-1) != nil || tx.last() != nil {
			t.Errorf("everything acknowledged: %d left", tx.len())
		}
	}
}

// TestTXTableRing pushes and prunes many mappings through the ring so
// that it grows and wraps, checking every lookup against a model.
func TestTXTableRing(t *testing.T) {
	var tx txTable
	type m struct {
		ssn uint32
		l   uint16
	}
	var model []m
	ssn := uint32(0xffff_0000)
	for round := 0; round < 50; round++ {
		for i := 0; i < 7+round%5; i++ {
			l := uint16(1 + (round*31+i*17)%3000)
			tx.push(TXMapping{SSN: ssn, DSN: uint64(ssn) << 8, Len: l})
			model = append(model, m{ssn, l})
			ssn += uint32(l)
		}
		// Acknowledge about half.
		una := model[len(model)/2].ssn + 1
		tx.ackedTo(una)
		for len(model) > 0 && options.SubflowSeq(model[0].ssn+uint32(model[0].l)).LessThanEq(options.SubflowSeq(una)) {
			model = model[1:]
		}
		if tx.len() != len(model) {
			t.Fatalf("round %d: %d mappings, model has %d", round, tx.len(), len(model))
		}
		for _, x := range model {
			for _, probe := range []uint32{x.ssn, x.ssn + uint32(x.l) - 1} {
				got := tx.find(probe)
				if got == nil || got.SSN != x.ssn || got.Len != x.l || got.DSN != uint64(x.ssn)<<8 {
					t.Fatalf("round %d: find(%#x) = %v, want ssn %#x len %d", round, probe, got, x.ssn, x.l)
				}
			}
		}
	}
}

func TestRXTableAdd(t *testing.T) {
	mk := func(ssn uint32, dsn uint64, l uint32) RXMapping {
		return RXMapping{SSN: ssn, DSN: dsn, Len: l, WireLen: uint16(l)}
	}
	rx := rxTable{limit: 4}
	steps := []struct {
		name     string
		m        RXMapping
		consumed uint32
		want     RXResult
	}{
		{"first", mk(1000, 5000, 100), 1, RXAdded},
		{"before it, out of order", mk(1, 4000, 999), 1, RXAdded},
		{"identical retransmission", mk(1000, 5000, 100), 1, RXDuplicate},
		{"same bytes, other DSN", mk(1000, 5001, 100), 1, RXConflict},
		{"same bytes, other length", mk(1000, 5000, 99), 1, RXConflict},
		{"overlapping the end", mk(1050, 5050, 100), 1, RXConflict},
		{"overlapping the start", mk(950, 4950, 100), 1, RXConflict},
		{"same, checksum differs", RXMapping{SSN: 1000, DSN: 5000, Len: 100, HasChecksum: true, Checksum: 1}, 1, RXConflict},
		{"adjacent after", mk(1100, 5100, 50), 1, RXAdded},
		{"far after", mk(100000, 9000, 10), 1, RXAdded},
		{"over the limit", mk(5000, 9000, 10), 1, RXFull},
		{"already consumed", mk(1, 4000, 999), 1000, RXConsumed},
	}
	for _, s := range steps {
		if got := rx.add(s.m, s.consumed); got != s.want {
			t.Errorf("%s: add = %d, want %d", s.name, got, s.want)
		}
	}
	// Ordered by SSN.
	for i := 1; i < rx.count; i++ {
		if !options.SubflowSeq(rx.at(i - 1).SSN).LessThan(options.SubflowSeq(rx.at(i).SSN)) {
			t.Errorf("mappings out of order at %d", i)
		}
	}
	for _, c := range []struct {
		ssn  uint32
		want uint32 // SSN of the mapping, 0 for none
	}{{0, 0}, {1, 1}, {999, 1}, {1000, 1000}, {1149, 1100}, {1150, 0}, {99999, 0}, {100009, 100000}, {100010, 0}} {
		m := rx.find(c.ssn)
		if (m == nil) != (c.want == 0) || (m != nil && m.SSN != c.want) {
			t.Errorf("find(%d) = %v, want ssn %d", c.ssn, m, c.want)
		}
	}
	rx.consumedTo(1000)
	if rx.count != 3 || rx.find(999) != nil {
		t.Errorf("consumedTo(1000): %d left", rx.count)
	}
	rx.consumedTo(1120)
	if rx.count != 2 || rx.find(1120) == nil {
		t.Errorf("consumedTo(1120): %d left", rx.count)
	}
	// Room again after consuming.
	if got := rx.add(mk(5000, 9000, 10), 1120); got != RXAdded {
		t.Errorf("add after consuming: %d", got)
	}
}

// TestRXTableWrap stores mappings across the wrap of the 32-bit sequence
// space.
func TestRXTableWrap(t *testing.T) {
	rx := rxTable{limit: 100}
	start := uint32(0xffff_fff0)
	for i := 0; i < 8; i++ {
		ssn := start + uint32(i)*10
		if r := rx.add(RXMapping{SSN: ssn, DSN: uint64(i) * 10, Len: 10}, start); r != RXAdded {
			t.Fatalf("mapping %d at %#x: %d", i, ssn, r)
		}
	}
	for i := 0; i < 80; i++ {
		m := rx.find(start + uint32(i))
		if m == nil || m.DSN != uint64(i/10)*10 {
			t.Fatalf("find(%#x) = %v", start+uint32(i), m)
		}
	}
	if r := rx.add(RXMapping{SSN: start + 5, DSN: 5, Len: 10}, start); r != RXConflict {
		t.Errorf("overlap across the wrap: %d, want conflict", r)
	}
	rx.consumedTo(start + 40)
	if rx.count != 4 || rx.find(start+39) != nil || rx.find(start+40) == nil {
		t.Errorf("consumedTo across the wrap: %d left", rx.count)
	}
}

func TestOverlaps(t *testing.T) {
	m := func(ssn, l uint32) *RXMapping { return &RXMapping{SSN: ssn, Len: l} }
	cases := []struct {
		a, b *RXMapping
		want bool
	}{
		{m(10, 10), m(20, 10), false},
		{m(10, 10), m(19, 10), true},
		{m(10, 10), m(0, 10), false},
		{m(10, 10), m(0, 11), true},
		{m(10, 10), m(12, 2), true},
		{m(0xffff_fffa, 10), m(2, 5), true},
		{m(0xffff_fffa, 10), m(4, 5), false},
		{m(10, 0), m(10, 0), true},
		{m(10, 0), m(10, 5), false},
	}
	for _, c := range cases {
		if got := overlaps(c.a, c.b); got != c.want {
			t.Errorf("overlaps(%+v, %+v) = %v", *c.a, *c.b, got)
		}
		if got := overlaps(c.b, c.a); got != c.want {
			t.Errorf("overlaps(%+v, %+v) = %v (swapped)", *c.b, *c.a, got)
		}
	}
}

// TestNextRXRun: the reader's run covers the mappings that continue one
// another at both levels, and stops at a gap in either, at a DATA_FIN, at
// an infinite mapping and at the cap; it starts at the reader's position.
func TestNextRXRun(t *testing.T) {
	s := New(Config{Role: Responder})
	for _, m := range []RXMapping{
		{SSN: 1, DSN: 1000, Len: 100},
		{SSN: 101, DSN: 1100, Len: 100}, // continues
		{SSN: 201, DSN: 1300, Len: 100}, // DSN jumps: a new run
		{SSN: 301, DSN: 1400, Len: 50, DataFIN: true},
		{SSN: 351, DSN: 1451, Len: 10}, // after a DATA_FIN: never joined
		{SSN: 400, DSN: 1461, Len: 10}, // subflow gap
	} {
		if r := s.rx.add(m, s.rcvRead); r != RXAdded {
			t.Fatalf("add %+v: %d", m, r)
		}
	}
	for _, c := range []struct {
		read      int // bytes consumed before
		limit     int
		wantSSN   uint32
		wantRun   int
		wantFound bool
	}{
		{0, 1 << 20, 1, 200, true},
		{50, 1 << 20, 1, 150, true}, // from inside the first mapping
		{50, 70, 1, 70, true},       // capped
		{200, 1 << 20, 201, 150, true},
		{350, 1 << 20, 351, 10, true},
		{360, 1 << 20, 0, 0, false}, // bytes 361..399 have no mapping
	} {
		s.rcvRead = 1 + uint32(c.read)
		m, rel, run, ok := s.NextRXRun(c.limit)
		if ok != c.wantFound || (ok && (m.SSN != c.wantSSN || run != c.wantRun || rel != s.rcvRead)) {
			t.Errorf("after %d bytes, limit %d: mapping at %d, run %d, ok %v; want %d, %d, %v",
				c.read, c.limit, m.SSN, run, ok, c.wantSSN, c.wantRun, c.wantFound)
		}
	}
	// An infinite mapping is never joined to what precedes it.
	s = New(Config{Role: Responder})
	s.rx.add(RXMapping{SSN: 1, DSN: 10, Len: 100}, 1)
	s.rx.add(RXMapping{SSN: 101, DSN: 110, Len: 1 << 30, Infinite: true}, 1)
	if _, _, run, ok := s.NextRXRun(1 << 20); !ok || run != 100 {
		t.Errorf("run into an infinite mapping: %d, %v; want 100", run, ok)
	}
}
