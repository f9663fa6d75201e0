package kernelpeer

import (
	"bytes"
	"encoding/hex"
	"io"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1500", 1500, true},
		{"16K", 16 << 10, true},
		{"16k", 16 << 10, true},
		{"16KiB", 16 << 10, true},
		{"2M", 2 << 20, true},
		{"1G", 1 << 30, true},
		{"", 0, false},
		{"K", 0, false},
		{"-1", 0, false},
		{"1.5K", 0, false},
		{"99999999999G", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSizeRangeSet(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want SizeRange
		ok   bool
	}{
		{"100", SizeRange{100, 100}, true},
		{"20-200", SizeRange{20, 200}, true},
		{"1K-4K", SizeRange{1024, 4096}, true},
		{"0", SizeRange{}, false},
		{"200-20", SizeRange{}, false},
		{"20-", SizeRange{}, false},
		{"2G", SizeRange{}, false},
	} {
		var r SizeRange
		err := r.Set(tc.in)
		if (err == nil) != tc.ok || r != tc.want {
			t.Errorf("Set(%q) = %+v, %v; want %+v, ok %v", tc.in, r, err, tc.want, tc.ok)
		}
		if tc.ok {
			var back SizeRange
			if err := back.Set(r.String()); err != nil || back != r {
				t.Errorf("Set(%q).String() = %q does not parse back", tc.in, r.String())
			}
		}
	}
}

// TestPayloadPinned pins the payload bytes: captures and interop tests recompute digests
// from the seed, so the stream must never change.
func TestPayloadPinned(t *testing.T) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(Payload(1), b); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(b), "4dc34f24ccccb04dc468af6c1f271e16"; got != want {
		t.Errorf("Payload(1) starts %s, want %s", got, want)
	}
	if got, want := PayloadSHA256(2, 1000),
		"462a09cea9b5e6bc75abb6edb9937357e9699009a0d75bb8683cb52565811f48"; got != want {
		t.Errorf("PayloadSHA256(2, 1000) = %s, want %s", got, want)
	}
	other := make([]byte, 16)
	io.ReadFull(Payload(2), other)
	if bytes.Equal(b, other) {
		t.Error("seeds 1 and 2 give the same payload")
	}
}

func TestWriteSizes(t *testing.T) {
	w := newWriteSizes(SizeRange{Min: 20, Max: 200}, 1)
	seen := map[int]bool{}
	for range 2000 {
		n := w.next()
		if n < 20 || n > 200 {
			t.Fatalf("size %d outside 20-200", n)
		}
		seen[n] = true
	}
	if !seen[20] || !seen[200] || len(seen) < 150 {
		t.Errorf("sizes do not cover 20-200: %d distinct", len(seen))
	}
	if n := newWriteSizes(SizeRange{}, 1).next(); n != defaultWrite {
		t.Errorf("default write size %d, want %d", n, defaultWrite)
	}
	a, b := newWriteSizes(SizeRange{Min: 1, Max: 1 << 20}, 9), newWriteSizes(SizeRange{Min: 1, Max: 1 << 20}, 9)
	for range 100 {
		if a.next() != b.next() {
			t.Fatal("write sizes are not deterministic for a seed")
		}
	}
}
