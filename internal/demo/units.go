package demo

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sizeUnits are the suffixes ParseSize accepts, lower case. Without "i" they
// are SI (powers of 1000, like the rates the demo prints); with it, powers
// of 1024.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
}

// ParseSize parses a byte count such as "100MB", "1G", "500k", "1.5GB" or
// "64KiB". Units are case-insensitive: k, M, G, T (optionally followed by B)
// are powers of 1000; Ki, Mi, Gi, Ti (optionally followed by B) powers of
// 1024; a bare number or B is bytes. The result must be at least one byte.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, such as 100MB, 1G, 500k or 64KiB", s)
	}
	var n int64
	if !strings.Contains(num, ".") {
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q: too large", s)
		}
		n = v * mult
	} else {
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("size %q: want a number with an optional unit, such as 100MB, 1G, 500k or 64KiB", s)
		}
		f := math.Round(v * float64(mult))
		if f >= math.MaxInt64 {
			return 0, fmt.Errorf("size %q: too large", s)
		}
		n = int64(f)
	}
	if n < 1 {
		return 0, errors.New("size must be at least one byte")
	}
	return n, nil
}

// FormatBytes renders n bytes with SI prefixes and three significant digits:
// "999 B", "1.50 kB", "100 MB".
func FormatBytes(n int64) string {
	return siFormat(float64(n), "B")
}

// FormatRate renders a rate in bits per second the way iperf does:
// "935 Mbit/s", "1.84 Gbit/s".
func FormatRate(bps float64) string {
	return siFormat(bps, "bit/s")
}

func siFormat(v float64, unit string) string {
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	for math.Abs(v) >= 999.5 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	sep := " "
	switch {
	case i == 0 && v == math.Trunc(v):
		return fmt.Sprintf("%.0f%s%s", v, sep, unit)
	case math.Abs(v) >= 99.95:
		return fmt.Sprintf("%.0f%s%s%s", v, sep, prefixes[i], unit)
	case math.Abs(v) >= 9.995:
		return fmt.Sprintf("%.1f%s%s%s", v, sep, prefixes[i], unit)
	default:
		return fmt.Sprintf("%.2f%s%s%s", v, sep, prefixes[i], unit)
	}
}

// formatDuration rounds d for humans: "2.35s", "812ms", "1.2ms", "85µs".
func formatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// rate returns bytes over d in bits per second, 0 when d is not positive.
func rate(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds()
}
