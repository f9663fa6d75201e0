package demo

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"1", 1},
		{"100MB", 100_000_000},
		{"100mb", 100_000_000},
		{"1G", 1_000_000_000},
		{"500k", 500_000},
		{"500 kB", 500_000},
		{"1.5GB", 1_500_000_000},
		{"64KiB", 64 << 10},
		{"1gi", 1 << 30},
		{"2TiB", 2 << 40},
		{"7b", 7},
		{" 3M ", 3_000_000},
		{"9223372036854775807", 1<<63 - 1},
	}
	for _, tc := range good {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []string{"", "MB", "0", "0.0001", "-1", "1x", "1..5M", "1.5.5", "10000000T", "9223372036854775808", "1e6"}
	for _, in := range bad {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{FormatBytes(0), "0 B"},
		{FormatBytes(999), "999 B"},
		{FormatBytes(1000), "1.00 kB"},
		{FormatBytes(100_000_000), "100 MB"},
		{FormatBytes(1_500_000_000), "1.50 GB"},
		{FormatBytes(99_960_000), "100 MB"},
		{FormatRate(935e6), "935 Mbit/s"},
		{FormatRate(1.84e9), "1.84 Gbit/s"},
		{FormatRate(12.34e3), "12.3 kbit/s"},
		{formatDuration(1763 * time.Millisecond), "1.76s"},
		{formatDuration(3456 * time.Microsecond), "3.5ms"},
		{formatDuration(42 * time.Second), "42s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestPatternFill(t *testing.T) {
	p := pattern{42}
	whole := make([]byte, 1000)
	p.fill(whole, 0)
	if bytes.Count(whole, []byte{0}) > 20 {
		t.Fatalf("pattern looks empty: %x", whole[:32])
	}
	// Every (offset, length) gives the same bytes as the whole stream.
	for off := range 24 {
		for n := range 40 {
			b := make([]byte, n)
			p.fill(b, int64(off))
			if !bytes.Equal(b, whole[off:off+n]) {
				t.Fatalf("fill(%d bytes at %d) = %x, want %x", n, off, b, whole[off:off+n])
			}
		}
	}
	other := make([]byte, 1000)
	pattern{43}.fill(other, 0)
	if bytes.Equal(whole, other) {
		t.Fatal("two seeds give the same stream")
	}
}

func TestVerifier(t *testing.T) {
	p := pattern{7}
	data := make([]byte, 10_000)
	p.fill(data, 0)

	check := func(name string, data []byte, wantDiffer, wantFirst int64) {
		t.Helper()
		v := newVerifier(p, 256) // a scratch smaller than the writes
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 333)
			v.add(rest[:n])
			rest = rest[n:]
		}
		if v.n != int64(len(data)) || v.differ != wantDiffer || v.firstDiff != wantFirst {
			t.Errorf("%s: n %d differ %d first %d; want %d %d %d", name, v.n, v.differ, v.firstDiff, len(data), wantDiffer, wantFirst)
		}
	}
	check("intact", data, 0, -1)
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	bad[7777] ^= 0x80
	check("two flips", bad, 2, 5000)
	// Bytes at the wrong offset are differences too (not only flips).
	swapped := bytes.Clone(data)
	copy(swapped[2000:3000], data[3000:4000])
	copy(swapped[3000:4000], data[2000:3000])
	v := newVerifier(p, 4096)
	v.add(swapped)
	if v.differ < 1900 || v.firstDiff != 2000 {
		t.Errorf("swapped: differ %d first %d", v.differ, v.firstDiff)
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Elapsed: 1500 * time.Millisecond, Up: 45_200_000, Down: 44_000_000,
		UpRate: 1.84e9, DownRate: 1.79e9, Subflows: 1, MPTCP: true}
	if s, want := p.String(), "  1.5s  up 1.84 Gbit/s  45.2 MB  down 1.79 Gbit/s  44.0 MB  MPTCP, 1 subflow"; s != want {
		t.Errorf("got  %q\nwant %q", s, want)
	}
	// The widest line still fits 80 columns.
	p = Progress{Elapsed: 9999 * time.Second, Up: 999_999_999_999, Down: 999_999_999_999,
		UpRate: 12.3e3, DownRate: 12.3e3, Subflows: 8}
	if s := p.String(); len(s) > 79 || !strings.HasSuffix(s, "TCP, 8 subflows") {
		t.Errorf("%d columns: %q", len(s), s)
	}
}

// Seconds and Millis come back from JSON to the nanosecond.
func TestDurationJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 10000 {
		d := time.Duration(r.Int64N(int64(24 * time.Hour)))
		if i < 3 {
			d = []time.Duration{0, 4054053, 145_812_345_678}[i]
		}
		var s Seconds
		var m Millis
		bs, _ := Seconds(d).MarshalJSON()
		bm, _ := Millis(d).MarshalJSON()
		if err := json.Unmarshal(bs, &s); err != nil || s.D() != d {
			t.Fatalf("%v as seconds %s -> %v (%v)", d, bs, s.D(), err)
		}
		if err := json.Unmarshal(bm, &m); err != nil || m.D() != d {
			t.Fatalf("%v as milliseconds %s -> %v (%v)", d, bm, m.D(), err)
		}
	}
}
