package emu

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file is the text form of a Config, used by `umptcp demo --path`:
//
//	rate=100mbit,delay=20ms,jitter=2ms,loss=0.5%,strip=synack
//
// Items are key=value, separated by commas, in any order, each key at most
// once; keys and units are case-insensitive and blanks around items are
// ignored. The empty spec is the ideal path. Keys:
//
//	rate=N[bit|kbit|mbit|gbit|tbit]  bottleneck rate, SI units; 0 = unlimited
//	queue=SIZE | Np | SIZE/Np        queue bound: bytes (b, kb, mb, gb: powers
//	                                 of 1024, as tc) and/or packets
//	delay=DURATION                   one-way delay (Go syntax: 20ms, 1.5ms)
//	jitter=DURATION[/reorder]        ±jitter; "/reorder" lets it reorder
//	loss=P%                          random loss
//	burst=P%/R%[/BAD%[/GOOD%]]       Gilbert–Elliott: good→bad, bad→good,
//	                                 loss in bad (default 100%), loss in good
//	reorder=P%[/DURATION]            hold back P% by DURATION (default 1ms)
//	dup=P%                           duplication
//	corrupt=P%                       flip a payload bit, checksum left wrong
//	rewrite=P%                       change a payload byte, checksum fixed
//	strip=none|syn|synack|data|other|all, or classes joined by "+"
//	mtu=N                            1280..65535
//	seed=N                           decimal or 0x hex
//	offload=on|off                   advertise checksum offload (benchmarks)
//	gso=N|max|off                    segmentation offload: super-segments up
//	                                 to N bytes cross whole (GSOMaxSize)
//
// Probabilities are always written as percentages, so "loss=1" is an error
// rather than a silent 100% loss.

// ParsePath parses a path spec (see the list above) into a Config.
func ParsePath(spec string) (Config, error) {
	var c Config
	if strings.TrimSpace(spec) == "" {
		return c, nil
	}
	seen := make(map[string]bool)
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			return Config{}, fmt.Errorf("emu: path spec %q: empty item (stray comma?)", spec)
		}
		key, val, ok := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || key == "" {
			return Config{}, fmt.Errorf("emu: path spec item %q: want key=value", item)
		}
		if seen[key] {
			return Config{}, fmt.Errorf("emu: path spec %q: %s given twice", spec, key)
		}
		seen[key] = true
		if err := c.parseItem(key, val); err != nil {
			return Config{}, fmt.Errorf("emu: path spec item %q: %w", item, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("emu: path spec %q: %w", spec, err)
	}
	return c, nil
}

func (c *Config) parseItem(key, val string) error {
	var err error
	switch key {
	case "rate":
		c.Rate, err = parseRate(val)
	case "queue":
		c.QueueBytes, c.QueuePackets, err = parseQueue(val)
	case "delay":
		c.Delay, err = parseDuration(val)
	case "jitter":
		d, flag, hasFlag := strings.Cut(val, "/")
		if hasFlag && flag != "reorder" {
			return fmt.Errorf("unknown jitter flag %q (want reorder)", flag)
		}
		c.Jitter, err = parseDuration(d)
		c.JitterReorders = hasFlag
	case "loss":
		c.Loss, err = parsePercent(val)
	case "burst":
		c.Burst, err = parseBurst(val)
	case "reorder":
		p, d, hasDelay := strings.Cut(val, "/")
		if c.Reorder, err = parsePercent(p); err == nil && hasDelay {
			c.ReorderDelay, err = parseDuration(d)
		}
	case "dup":
		c.Duplicate, err = parsePercent(val)
	case "corrupt":
		c.Corrupt, err = parsePercent(val)
	case "rewrite":
		c.Rewrite, err = parsePercent(val)
	case "strip":
		c.Strip, err = parseStrip(val)
	case "mtu":
		var n uint64
		n, err = strconv.ParseUint(val, 10, 32)
		if err != nil {
			return fmt.Errorf("want a whole number of bytes")
		}
		c.MTU = uint32(n)
	case "seed":
		c.Seed, err = strconv.ParseUint(val, 0, 64)
		if err != nil {
			return fmt.Errorf("want an unsigned 64-bit number")
		}
	case "offload":
		switch val {
		case "on", "true", "1":
			c.ChecksumOffload = true
		case "off", "false", "0":
			c.ChecksumOffload = false
		default:
			return fmt.Errorf("want on or off")
		}
	case "gso":
		switch val {
		case "max":
			c.GSOMaxSize = MaxGSOSize
		case "off", "0":
			c.GSOMaxSize = 0
		default:
			n, perr := strconv.ParseUint(val, 10, 32)
			if perr != nil || n > MaxGSOSize {
				return fmt.Errorf("want max, off or a size up to %d", MaxGSOSize)
			}
			c.GSOMaxSize = uint32(n)
		}
	default:
		return fmt.Errorf("unknown key %q (known: rate, queue, delay, jitter, loss, burst, reorder, dup, corrupt, rewrite, strip, mtu, seed, offload, gso)", key)
	}
	return err
}

// rateUnits are the rate suffixes, largest first so String picks the
// shortest form.
var rateUnits = []struct {
	name string
	mult uint64
}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}

func parseRate(s string) (uint64, error) {
	num, unit := splitUnit(s)
	mult := uint64(0)
	if unit == "" {
		mult = 1
	}
	for _, u := range rateUnits {
		if unit == u.name {
			mult = u.mult
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("unknown rate unit %q (want bit, kbit, mbit, gbit or tbit; tc's \"bps\" units mean bytes and are not accepted)", unit)
	}
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0, fmt.Errorf("want a rate such as 100mbit")
	}
	r := math.Round(x * float64(mult))
	if x > 0 && r < 1 {
		return 0, fmt.Errorf("rate below 1 bit/s")
	}
	if r >= 1<<63 {
		return 0, fmt.Errorf("rate too large")
	}
	return uint64(r), nil
}

// sizeUnits are byte suffixes in powers of 1024, as tc reads them.
var sizeUnits = []struct {
	name string
	mult int
}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"b", 1}}

// maxQueueBytes bounds a queue spec; more is a typo, not a buffer.
const maxQueueBytes = 1 << 40

func parseQueue(s string) (bytes, packets int, err error) {
	parts := strings.Split(s, "/")
	if len(parts) > 2 {
		return 0, 0, fmt.Errorf("want SIZE, Np or SIZE/Np")
	}
	var haveBytes, havePackets bool
	for _, p := range parts {
		num, unit := splitUnit(p)
		if unit == "p" || unit == "pkt" || unit == "pkts" || unit == "packets" {
			if havePackets {
				return 0, 0, fmt.Errorf("packet bound given twice")
			}
			havePackets = true
			n, err := strconv.ParseUint(num, 10, 31)
			if err != nil || n == 0 {
				return 0, 0, fmt.Errorf("want a positive number of packets such as 100p")
			}
			packets = int(n)
			continue
		}
		if haveBytes {
			return 0, 0, fmt.Errorf("byte bound given twice")
		}
		haveBytes = true
		mult := 0
		switch unit {
		case "", "b":
			mult = 1
		case "k":
			mult = 1 << 10
		case "m":
			mult = 1 << 20
		case "g":
			mult = 1 << 30
		default:
			for _, u := range sizeUnits {
				if unit == u.name {
					mult = u.mult
				}
			}
		}
		if mult == 0 {
			return 0, 0, fmt.Errorf("unknown size unit %q (want b, kb, mb, gb, or p for packets)", unit)
		}
		x, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(x) || x <= 0 {
			return 0, 0, fmt.Errorf("want a positive size such as 64kb")
		}
		b := math.Round(x * float64(mult))
		if b < 1 || b > maxQueueBytes {
			return 0, 0, fmt.Errorf("queue size outside 1b..1024gb")
		}
		bytes = int(b)
	}
	return bytes, packets, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 20ms")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return d, nil
}

// parsePercent parses "P%" into the probability P/100.
func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, fmt.Errorf("want a percentage such as 0.5%% (the %% is required)")
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !(x >= 0 && x <= 100) {
		return 0, fmt.Errorf("want a percentage between 0%% and 100%%")
	}
	return x / 100, nil
}

func parseBurst(s string) (Burst, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 4 {
		return Burst{}, fmt.Errorf("want P%%/R%%[/BAD%%[/GOOD%%]], e.g. 1%%/25%%")
	}
	var v [4]float64
	for i, p := range parts {
		x, err := parsePercent(p)
		if err != nil {
			return Burst{}, err
		}
		v[i] = x
	}
	if len(parts) >= 3 && v[2] == 0 {
		return Burst{}, fmt.Errorf("loss in the bad state is 0%%: the bad state would lose nothing (omit it for 100%%)")
	}
	if v[2] == 1 {
		v[2] = 0 // the canonical form of 100%, so String round-trips
	}
	return Burst{P: v[0], R: v[1], BadLoss: v[2], GoodLoss: v[3]}, nil
}

var stripNames = []struct {
	name string
	s    Strip
}{{"syn", StripSYN}, {"synack", StripSYNACK}, {"data", StripData}, {"other", StripOther}}

func parseStrip(s string) (Strip, error) {
	switch s {
	case "none":
		return StripNone, nil
	case "all":
		return StripAll, nil
	}
	var st Strip
	for name := range strings.SplitSeq(s, "+") {
		found := false
		for _, n := range stripNames {
			if name == n.name {
				st |= n.s
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown strip class %q (want none, syn, synack, data, other, all, or classes joined by +)", name)
		}
	}
	return st, nil
}

// splitUnit splits "12.5mbit" into "12.5" and "mbit": the number is the
// longest prefix of characters that can appear in a float (an exponent's
// "e" included; no unit starts with e).
func splitUnit(s string) (num, unit string) {
	i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '.' || r == 'e' || r == '+' || r == '-')
	})
	if i < 0 {
		return s, ""
	}
	return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
}

// String returns c as a path spec that ParsePath turns back into c. Zero
// fields are left out, so the ideal path is "". The round trip is exact for
// every Config that ParsePath returns; a probability set in code that no
// decimal percentage reproduces comes back within one unit in the last place.
func (c Config) String() string {
	var items []string
	add := func(k, v string) { items = append(items, k+"="+v) }
	if c.Rate != 0 {
		add("rate", formatRate(c.Rate))
	}
	if c.QueueBytes != 0 || c.QueuePackets != 0 {
		var q []string
		if c.QueueBytes != 0 {
			q = append(q, formatSize(c.QueueBytes))
		}
		if c.QueuePackets != 0 {
			q = append(q, strconv.Itoa(c.QueuePackets)+"p")
		}
		add("queue", strings.Join(q, "/"))
	}
	if c.Delay != 0 {
		add("delay", c.Delay.String())
	}
	if c.Jitter != 0 || c.JitterReorders {
		v := c.Jitter.String()
		if c.JitterReorders {
			v += "/reorder"
		}
		add("jitter", v)
	}
	if c.Loss != 0 {
		add("loss", formatPercent(c.Loss))
	}
	if b := c.Burst; b != (Burst{}) {
		v := formatPercent(b.P) + "/" + formatPercent(b.R)
		if b.BadLoss != 0 || b.GoodLoss != 0 {
			bad := b.BadLoss
			if bad == 0 {
				bad = 1 // the default, written out because GOOD follows
			}
			v += "/" + formatPercent(bad)
		}
		if b.GoodLoss != 0 {
			v += "/" + formatPercent(b.GoodLoss)
		}
		add("burst", v)
	}
	if c.Reorder != 0 || c.ReorderDelay != 0 {
		v := formatPercent(c.Reorder)
		if c.ReorderDelay != 0 {
			v += "/" + c.ReorderDelay.String()
		}
		add("reorder", v)
	}
	if c.Duplicate != 0 {
		add("dup", formatPercent(c.Duplicate))
	}
	if c.Corrupt != 0 {
		add("corrupt", formatPercent(c.Corrupt))
	}
	if c.Rewrite != 0 {
		add("rewrite", formatPercent(c.Rewrite))
	}
	if c.Strip != StripNone {
		add("strip", c.Strip.String())
	}
	if c.MTU != 0 {
		add("mtu", strconv.FormatUint(uint64(c.MTU), 10))
	}
	if c.Seed != 0 {
		add("seed", strconv.FormatUint(c.Seed, 10))
	}
	if c.ChecksumOffload {
		add("offload", "on")
	}
	switch c.GSOMaxSize {
	case 0:
	case MaxGSOSize:
		add("gso", "max")
	default:
		add("gso", strconv.FormatUint(uint64(c.GSOMaxSize), 10))
	}
	return strings.Join(items, ",")
}

// String returns the strip classes as in a path spec: "none", "all", or the
// classes joined by "+".
func (s Strip) String() string {
	switch s {
	case StripNone:
		return "none"
	case StripAll:
		return "all"
	}
	var names []string
	for _, n := range stripNames {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	if rest := s &^ StripAll; rest != 0 {
		names = append(names, fmt.Sprintf("%#x", uint8(rest)))
	}
	return strings.Join(names, "+")
}

func formatRate(r uint64) string {
	for _, u := range rateUnits {
		if r%u.mult == 0 {
			return strconv.FormatUint(r/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(r, 10) + "bit"
}

func formatSize(b int) string {
	for _, u := range sizeUnits {
		if b%u.mult == 0 {
			return strconv.Itoa(b/u.mult) + u.name
		}
	}
	return strconv.Itoa(b) + "b"
}

// formatPercent writes probability p as the shortest percentage that
// parsePercent reads back as exactly p. Not every float is x/100 for some
// float x, so it searches: shortest decimals of p*100 first, then the floats
// next to it, since ParsePath's result is always reachable from one of them.
func formatPercent(p float64) string {
	// try reports whether x (a float that prints exactly as itself) is read
	// back as p, and how to write it: plain decimals unless that gets long.
	try := func(x float64) (string, bool) {
		if x/100 != p {
			return "", false
		}
		if x == 0 || x >= 1e-6 {
			return strconv.FormatFloat(x, 'f', -1, 64) + "%", true
		}
		return strconv.FormatFloat(x, 'g', -1, 64) + "%", true
	}
	c := p * 100
	for prec := 1; prec <= 17; prec++ {
		x, _ := strconv.ParseFloat(strconv.FormatFloat(c, 'g', prec, 64), 64)
		if s, ok := try(x); ok {
			return s
		}
	}
	lo, hi := c, c
	for range 8 {
		lo, hi = math.Nextafter(lo, math.Inf(-1)), math.Nextafter(hi, math.Inf(1))
		for _, x := range []float64{lo, hi} {
			if s, ok := try(x); ok {
				return s
			}
		}
	}
	return strconv.FormatFloat(c, 'g', -1, 64) + "%"
}
