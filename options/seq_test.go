package options

import (
	"math"
	"testing"
)

func TestExpandSeq(t *testing.T) {
	cases := []struct {
		ref  uint64
		low  uint32
		want uint64
	}{
		{0x1_0000_0010, 0x20, 0x1_0000_0020},
		{0x1_0000_0010, 0x08, 0x1_0000_0008},
		{0x1_ffff_fff0, 0x10, 0x2_0000_0010},        // forward across a 32-bit wrap
		{0x2_0000_0010, 0xffff_fff0, 0x1_ffff_fff0}, // backward across it
		{0xffff_ffff_ffff_fff0, 0x5, 0x5},           // the 64-bit space wraps too
		{5, 0xffff_fff0, 0xffff_ffff_ffff_fff0},
		{0x7_0000_0000, 0x8000_0000, 0x6_8000_0000}, // exactly half-way goes back
	}
	for _, c := range cases {
		if got := ExpandSeq(c.ref, c.low); got != c.want {
			t.Errorf("ExpandSeq(%#x, %#x) = %#x, want %#x", c.ref, c.low, got, c.want)
		}
	}
	for _, ref := range []uint64{0, 1 << 31, 1 << 32, math.MaxUint64, 0x1234_5678_9abc_def0} {
		for _, d := range []int64{-(1 << 31), -1, 0, 1, 1<<31 - 1} {
			want := ref + uint64(d)
			if got := ExpandSeq(ref, uint32(want)); got != want {
				t.Errorf("ExpandSeq(%#x, low(%#x)) = %#x", ref, want, got)
			}
		}
	}
}

func TestDSNCompare(t *testing.T) {
	if !DSN(1).LessThan(2) || DSN(2).LessThan(1) || DSN(1).LessThan(1) || !DSN(1).LessThanEq(1) {
		t.Fatal("basic order")
	}
	if !DSN(math.MaxUint64).LessThan(0) || !DSN(math.MaxUint64-5).Add(10).InWindow(math.MaxUint64-5, 11) {
		t.Fatal("wrap")
	}
	if DSN(10).Sub(4) != 6 || DSN(3).Max(9) != 9 || DSN(9).Max(3) != 9 {
		t.Fatal("arith")
	}
	if DSN(10).InWindow(10, 0) || !DSN(10).InWindow(10, 1) || DSN(11).InWindow(10, 1) {
		t.Fatal("window")
	}
}

func TestSubflowSeqCompare(t *testing.T) {
	var a SubflowSeq = math.MaxUint32 - 1
	b := a.Add(4)
	if b != 2 || !a.LessThan(b) || b.LessThan(a) || b.Sub(a) != 4 || !a.LessThanEq(a) {
		t.Fatal("wrap")
	}
	if !b.InWindow(a, 5) || b.InWindow(a, 4) {
		t.Fatal("window")
	}
}
