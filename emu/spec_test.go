package emu

import (
	"strings"
	"testing"
	"time"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		spec string
		want Config
	}{
		{"", Config{}},
		{"  ", Config{}},
		{"rate=100mbit", Config{Rate: 100_000_000}},
		{"rate=1.5gbit", Config{Rate: 1_500_000_000}},
		{"rate=800kbit", Config{Rate: 800_000}},
		{"rate=64000", Config{Rate: 64000}},
		{"rate=64000bit", Config{Rate: 64000}},
		{"rate=0", Config{}},
		{"RATE=10MBit", Config{Rate: 10_000_000}},
		{"delay=20ms", Config{Delay: 20 * time.Millisecond}},
		{"delay=1.5ms", Config{Delay: 1500 * time.Microsecond}},
		{"delay=0", Config{}},
		{"jitter=2ms", Config{Jitter: 2 * time.Millisecond}},
		{"jitter=2ms/reorder", Config{Jitter: 2 * time.Millisecond, JitterReorders: true}},
		{"loss=0.5%", Config{Loss: 0.005}},
		{"loss=100%", Config{Loss: 1}},
		{"loss=0%", Config{}},
		{"loss = 1 %", Config{Loss: 0.01}},
		{"burst=1%/30%", Config{Burst: Burst{P: 0.01, R: 0.3}}},
		{"burst=1%/30%/80%", Config{Burst: Burst{P: 0.01, R: 0.3, BadLoss: 0.8}}},
		{"burst=1%/30%/100%/0.1%", Config{Burst: Burst{P: 0.01, R: 0.3, GoodLoss: 0.001}}},
		{"burst=1%/30%/100%", Config{Burst: Burst{P: 0.01, R: 0.3}}},
		{"reorder=1%", Config{Reorder: 0.01}},
		{"reorder=1%/5ms", Config{Reorder: 0.01, ReorderDelay: 5 * time.Millisecond}},
		{"dup=0.1%", Config{Duplicate: 0.001}},
		{"corrupt=0.1%", Config{Corrupt: 0.001}},
		{"rewrite=2%", Config{Rewrite: 0.02}},
		{"strip=synack", Config{Strip: StripSYNACK}},
		{"strip=syn", Config{Strip: StripSYN}},
		{"strip=data", Config{Strip: StripData}},
		{"strip=other", Config{Strip: StripOther}},
		{"strip=all", Config{Strip: StripAll}},
		{"strip=none", Config{}},
		{"strip=syn+synack", Config{Strip: StripSYN | StripSYNACK}},
		{"queue=64kb", Config{QueueBytes: 64 << 10}},
		{"queue=100p", Config{QueuePackets: 100}},
		{"queue=1mb/100p", Config{QueueBytes: 1 << 20, QueuePackets: 100}},
		{"queue=100p/1500", Config{QueueBytes: 1500, QueuePackets: 100}},
		{"mtu=1280", Config{MTU: 1280}},
		{"seed=42", Config{Seed: 42}},
		{"seed=0x2a", Config{Seed: 42}},
		{"offload=on", Config{ChecksumOffload: true}},
		{"gso=max", Config{GSOMaxSize: MaxGSOSize}},
		{"gso=32768", Config{GSOMaxSize: 32768}},
		{"rate=100mbit,delay=20ms,jitter=2ms,loss=0.5%,reorder=1%,dup=0.1%,corrupt=0.1%,strip=synack,queue=256kb,mtu=1500",
			Config{Rate: 100_000_000, Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.005,
				Reorder: 0.01, Duplicate: 0.001, Corrupt: 0.001, Strip: StripSYNACK, QueueBytes: 256 << 10, MTU: 1500}},
		{" delay=1ms , loss=1% ", Config{Delay: time.Millisecond, Loss: 0.01}},
	}
	for _, tc := range cases {
		got, err := ParsePath(tc.spec)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.spec, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePath(%q) =\n%+v, want\n%+v", tc.spec, got, tc.want)
		}
		back, err := ParsePath(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q via %q: %+v, %v", tc.spec, got.String(), back, err)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	cases := []struct {
		spec    string
		wantErr string // a substring the message must contain
	}{
		{"rate", "want key=value"},
		{"=5", "want key=value"},
		{"speed=1mbit", `unknown key "speed"`},
		{"rate=1mbps", "unknown rate unit"},
		{"rate=fast", `unknown rate unit "fast"`},
		{"rate=1.2.3mbit", "want a rate"},
		{"rate=-1mbit", "want a rate"},
		{"rate=0.1bit", "below 1 bit/s"},
		{"rate=1e30gbit", "too large"},
		{"delay=20", "want a duration"},
		{"delay=-5ms", "negative"},
		{"jitter=1ms/wobble", "unknown jitter flag"},
		{"loss=1", "the % is required"},
		{"loss=101%", "between 0% and 100%"},
		{"loss=-1%", "between 0% and 100%"},
		{"loss=nan%", "between 0% and 100%"},
		{"loss=%", "between 0% and 100%"},
		{"burst=1%", "want P%/R%"},
		{"burst=1%/2%/3%/4%/5%", "want P%/R%"},
		{"burst=1%/0%", "never end"},
		{"burst=1%/30%/0%", "lose nothing"},
		{"reorder=1%/soon", "want a duration"},
		{"strip=sometimes", "unknown strip class"},
		{"strip=syn+", "unknown strip class"},
		{"queue=big", "unknown size unit"},
		{"queue=0p", "positive number of packets"},
		{"queue=0kb", "positive size"},
		{"queue=1p/2p", "packet bound given twice"},
		{"queue=1kb/2kb", "byte bound given twice"},
		{"queue=1kb/2p/3", "want SIZE"},
		{"queue=2000gb", "outside"},
		{"mtu=9", "outside"},
		{"mtu=100000", "outside"},
		{"mtu=1e9", "whole number"},
		{"mtu=big", "whole number"},
		{"seed=-1", "unsigned"},
		{"offload=maybe", "on or off"},
		{"gso=65536", "up to"},
		{"loss=1%,loss=2%", "loss given twice"},
		{"loss=1%,", "empty item"},
		{",loss=1%", "empty item"},
		{"loss=1%,,delay=1ms", "empty item"},
	}
	for _, tc := range cases {
		_, err := ParsePath(tc.spec)
		if err == nil {
			t.Errorf("ParsePath(%q) succeeded, want an error containing %q", tc.spec, tc.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParsePath(%q) error %q, want it to contain %q", tc.spec, err, tc.wantErr)
		}
	}
}

func TestConfigString(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{Config{}, ""},
		{Config{Rate: 1_500_000_000}, "rate=1500mbit"},
		{Config{Rate: 1_000_001}, "rate=1000001bit"},
		{Config{Loss: 0.07}, "loss=7%"},
		{Config{Loss: 0.005}, "loss=0.5%"},
		{Config{QueueBytes: 1536}, "queue=1536b"},
		{Config{Loss: 1}, "loss=100%"},
		{Config{Loss: 1e-8}, "loss=0.000001%"},
		{Config{Loss: 1e-12}, "loss=1e-10%"},
		{Config{QueueBytes: 2 << 20, QueuePackets: 10}, "queue=2mb/10p"},
		{Config{Burst: Burst{P: 0.01, R: 0.25, GoodLoss: 0.001}}, "burst=1%/25%/100%/0.1%"},
		{Config{Jitter: 0, JitterReorders: true}, "jitter=0s/reorder"},
		{Config{Strip: StripSYN | StripData}, "strip=syn+data"},
		{Config{Delay: 20 * time.Millisecond, Seed: 7, ChecksumOffload: true}, "delay=20ms,seed=7,offload=on"},
	}
	for _, tc := range cases {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		back, err := ParsePath(tc.c.String())
		if err != nil || back != tc.c {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.c.String(), back, err, tc.c)
		}
	}
}

// TestPercentRoundTrip checks the promise that probabilities set in code come
// back within an ulp, and exactly for all those ParsePath produces.
func TestPercentRoundTrip(t *testing.T) {
	for _, p := range []float64{1.0 / 3, 0.1, 0.123456789, 1e-9, 0.999999, 2.0 / 7} {
		back, err := ParsePath(Config{Loss: p}.String())
		if err != nil {
			t.Fatal(err)
		}
		if d := back.Loss - p; d > 1e-16 || d < -1e-16 {
			t.Errorf("loss %v came back as %v", p, back.Loss)
		}
	}
}

func TestStripString(t *testing.T) {
	if got := Strip(0x30).String(); got != "0x30" {
		t.Errorf("unknown bits: %q", got)
	}
	if got := (StripAll | 0x10).String(); !strings.Contains(got, "0x10") {
		t.Errorf("unknown bits with known ones: %q", got)
	}
	if err := (Config{Strip: 0x40}).Validate(); err == nil {
		t.Error("Validate accepted unknown strip bits")
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"", "rate=100mbit,delay=20ms,jitter=2ms,loss=0.5%",
		"burst=1%/30%/80%/0.1%,reorder=1%/5ms,dup=0.1%,corrupt=0.1%,rewrite=1%",
		"strip=syn+synack,queue=64kb/100p,mtu=1500,seed=0x2a,offload=on",
		"gso=max,mtu=9000",
		"jitter=1ms/reorder", "rate=1e3kbit", "loss=1e-5%", "queue=1.5mb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := ParsePath(spec)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParsePath(%q) returned an invalid config: %v", spec, err)
		}
		s := c.String()
		back, err := ParsePath(s)
		if err != nil {
			t.Fatalf("ParsePath(%q).String() = %q does not parse: %v", spec, s, err)
		}
		if back != c {
			t.Fatalf("round trip of %q via %q:\n%+v\n%+v", spec, s, c, back)
		}
		if back.String() != s {
			t.Fatalf("String not stable: %q then %q", s, back.String())
		}
	})
}
