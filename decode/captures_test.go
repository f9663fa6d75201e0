package decode

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/umptcp/umptcp/options"
)

var (
	captureDir = flag.String("captures", filepath.Join("..", "testdata", "captures"), "directory of the kernel MPTCP captures")
	update     = flag.Bool("update", false, "rewrite the golden files in testdata/")
)

// The kernel captures (testdata/captures/README.md) and what each must
// exercise: the minimum number of checks that held, of options of each
// subtype, and of options that match a predicate; checks that must never
// be skipped; the number of MPTCP connections.
var captures = []struct {
	name     string
	conns    int
	checks   map[Check]int
	subtypes map[options.Subtype]int
	special  []special
	noSkip   []Check
}{
	{name: "v1-basic", conns: 1,
		checks:   map[Check]int{CheckCapableKeys: 11, CheckDataFIN: 2},
		subtypes: map[options.Subtype]int{options.SubtypeMPCapable: 8},
		special:  []special{{"MP_CAPABLE with data", isCapableData, 5}}},
	{name: "v1-checksum", conns: 1,
		checks:  map[Check]int{CheckCapableKeys: 1, CheckDSSChecksum: 105},
		special: []special{{"MP_CAPABLE with data and checksum", isCapableData, 1}},
		noSkip:  []Check{CheckDSSChecksum}},
	{name: "add-addr-join", conns: 1,
		checks:   map[Check]int{CheckJoinToken: 1, CheckJoinSYNACKHMAC: 1, CheckJoinACKHMAC: 1, CheckAddAddrHMAC: 1, CheckAddAddrEcho: 1, CheckDataFIN: 2},
		subtypes: map[options.Subtype]int{options.SubtypeAddAddr: 2, options.SubtypeMPJoin: 3},
		noSkip:   []Check{CheckJoinSYNACKHMAC, CheckJoinACKHMAC, CheckAddAddrHMAC}},
	{name: "add-addr-port", conns: 1,
		checks: map[Check]int{CheckJoinToken: 1, CheckJoinSYNACKHMAC: 1, CheckJoinACKHMAC: 1, CheckAddAddrHMAC: 1, CheckAddAddrEcho: 1},
		special: []special{{"ADD_ADDR with port 10100", func(p *Packet, o *options.Option) bool {
			return o.Valid(options.SubtypeAddAddr) && o.AddAddr().HasPort && o.AddAddr().Port == 10100
		}, 2}},
		noSkip: []Check{CheckJoinSYNACKHMAC, CheckJoinACKHMAC, CheckAddAddrHMAC}},
	{name: "ipv6", conns: 2,
		checks:  map[Check]int{CheckCapableKeys: 2, CheckJoinToken: 1, CheckJoinSYNACKHMAC: 1, CheckJoinACKHMAC: 1, CheckAddAddrHMAC: 1, CheckAddAddrEcho: 1},
		special: []special{{"IPv6 segments", func(p *Packet, o *options.Option) bool { return p.IPVersion == 6 }, 371}},
		noSkip:  []Check{CheckJoinSYNACKHMAC, CheckJoinACKHMAC, CheckAddAddrHMAC}},
	{name: "backup-prio-remove", conns: 1,
		checks:   map[Check]int{CheckJoinToken: 1, CheckJoinSYNACKHMAC: 1, CheckJoinACKHMAC: 1},
		subtypes: map[options.Subtype]int{options.SubtypeMPPrio: 2, options.SubtypeRemoveAddr: 1},
		special: []special{
			{"MP_JOIN SYN with backup", func(p *Packet, o *options.Option) bool {
				return o.Valid(options.SubtypeMPJoin) && o.MPJoin().Variant == options.JoinSYN && o.MPJoin().Backup
			}, 1},
			{"MP_PRIO backup", func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeMPPrio) && o.MPPrio().Backup }, 1},
			{"REMOVE_ADDR id 2", func(p *Packet, o *options.Option) bool {
				r := o.RemoveAddr()
				return o.Valid(options.SubtypeRemoveAddr) && bytes.Equal(r.List(), []byte{2})
			}, 1},
		}},
	{name: "fastclose", conns: 1,
		checks:   map[Check]int{CheckFastCloseKey: 1, CheckTCPRst: 1},
		subtypes: map[options.Subtype]int{options.SubtypeMPFastClose: 1, options.SubtypeMPTCPRst: 1},
		noSkip:   []Check{CheckFastCloseKey}},
}

// special counts the options that match a predicate.
type special struct {
	desc  string
	match func(p *Packet, o *options.Option) bool
	min   int
}

func isCapableData(p *Packet, o *options.Option) bool {
	return o.Valid(options.SubtypeMPCapable) && o.MPCapable().Variant >= options.CapableData
}

// capturePath returns the path of a kernel capture, failing the test (not
// skipping it) when the file is missing.
func capturePath(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(*captureDir, name+".pcap")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kernel capture %s missing (see testdata/captures/README.md): %v", name, err)
	}
	return p
}

// rawFrame is a frame of a capture, kept to be decoded again after a test
// damaged it.
type rawFrame struct {
	lt     LinkType
	data   []byte
	length int
}

func loadFrames(t *testing.T, path string) []rawFrame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []rawFrame
	var p Packet
	for {
		if err := r.Next(&p); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			return out
		}
		out = append(out, rawFrame{p.LinkType, bytes.Clone(p.Data), p.Length})
	}
}

// eachOption calls f for every MPTCP option of every frame, in order.
func eachOption(frames []rawFrame, f func(frame int, p *Packet, i int)) {
	var p Packet
	for i, fr := range frames {
		Decode(fr.lt, fr.data, fr.length, &p)
		p.Frame = i + 1
		for k := range p.Options {
			f(i+1, &p, k)
		}
	}
}

func analyzeFrames(frames []rawFrame) Result {
	a := NewAnalyzer(Limits{})
	var p Packet
	for i, fr := range frames {
		Decode(fr.lt, fr.data, fr.length, &p)
		p.Frame = i + 1
		a.Add(&p)
	}
	return a.Result()
}

// Every MPTCP option of the kernel captures decodes, and the analysis finds
// no mismatch and exercises what each scenario is about.
func TestCaptures(t *testing.T) {
	for _, c := range captures {
		t.Run(c.name, func(t *testing.T) {
			frames := loadFrames(t, capturePath(t, c.name))
			subtypes := map[options.Subtype]int{}
			specials := make([]int, len(c.special))
			eachOption(frames, func(frame int, p *Packet, i int) {
				o := &p.Options[i]
				subtypes[o.Subtype]++
				if o.Malformed || !o.Subtype.Known() {
					t.Errorf("frame %d: %s", frame, AppendOptionText(nil, o))
				}
				for k, sp := range c.special {
					if sp.match(p, o) {
						specials[k]++
					}
				}
			})
			for k, sp := range c.special {
				if specials[k] < sp.min {
					t.Errorf("%d options: %s, want at least %d", specials[k], sp.desc, sp.min)
				}
			}
			res := analyzeFrames(frames)
			for _, m := range res.Mismatches {
				t.Errorf("mismatch: %v", m)
			}
			want := map[Check]int{CheckDSN: 1, CheckDataAck: 1, CheckWellFormed: 1}
			for k, v := range c.checks {
				want[k] = v
			}
			for k, v := range want {
				if res.Checks[k].OK < v {
					t.Errorf("%v: %+v, want at least %d ok", k, res.Checks[k], v)
				}
			}
			for _, k := range c.noSkip {
				if res.Checks[k].Skipped != 0 {
					t.Errorf("%v: %+v, want none skipped", k, res.Checks[k])
				}
			}
			if res.Connections != c.conns || res.Untracked != 0 {
				t.Errorf("%d connections (%d untracked), want %d", res.Connections, res.Untracked, c.conns)
			}
			for st, n := range c.subtypes {
				if subtypes[st] < n {
					t.Errorf("%d %v options, want at least %d", subtypes[st], st, n)
				}
			}
			t.Logf("%d frames, %d options %v; checks %+v", res.Frames, res.MPTCPOptions, subtypes, res.Checks)
		})
	}
}

// Damaging one field of a kernel capture in memory makes the analyzer
// report exactly that mismatch.
func TestCaptureTampering(t *testing.T) {
	tests := []struct {
		name    string
		capture string
		check   Check
		// match selects the option to damage; flip returns the offset of the
		// byte to flip inside it.
		match func(p *Packet, o *options.Option) bool
		flip  int
		all   bool // damage every identical copy of the option (a mapping repeated on each segment)
	}{
		{"join SYN/ACK HMAC", "add-addr-join", CheckJoinSYNACKHMAC,
			func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeMPJoin) && o.Len() == 16 }, 4, false},
		{"join third ACK HMAC", "add-addr-join", CheckJoinACKHMAC,
			func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeMPJoin) && o.Len() == 24 }, 23, false},
		{"ADD_ADDR HMAC", "add-addr-join", CheckAddAddrHMAC,
			func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeAddAddr) && !o.AddAddr().Echo }, -1, false},
		{"ADD_ADDR HMAC with port", "add-addr-port", CheckAddAddrHMAC,
			func(p *Packet, o *options.Option) bool {
				return o.Valid(options.SubtypeAddAddr) && o.AddAddr().HasPort && !o.AddAddr().Echo
			}, -3, false},
		{"echoed server key", "v1-basic", CheckCapableKeys,
			func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeMPCapable) && o.Len() == 20 }, 19, false},
		{"IPv6 join HMAC", "ipv6", CheckJoinACKHMAC,
			func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeMPJoin) && o.Len() == 24 }, 4, false},
		{"DSS checksum", "v1-checksum", CheckDSSChecksum,
			func(p *Packet, o *options.Option) bool {
				d := o.DSS()
				return o.Valid(options.SubtypeDSS) && d.HasChecksum && d.DataLen > 1 && p.PayloadLen > 0
			}, -1, true},
		{"MP_FASTCLOSE key", "fastclose", CheckFastCloseKey,
			func(p *Packet, o *options.Option) bool { return o.Valid(options.SubtypeMPFastClose) }, 11, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames := loadFrames(t, capturePath(t, tt.capture))
			var target []byte // the option's original bytes
			var frame int
			eachOption(frames, func(f int, p *Packet, i int) {
				if o := &p.Options[i]; target == nil && tt.match(p, o) {
					target, frame = bytes.Clone(o.Raw), f
				}
			})
			if target == nil {
				t.Fatalf("no option to damage in %s", tt.capture)
			}
			off := tt.flip
			if off < 0 {
				off += len(target)
			}
			for i := range frames {
				if i+1 != frame && !tt.all {
					continue
				}
				if k := bytes.Index(frames[i].data, target); k >= 0 {
					frames[i].data[k+off] ^= 0x20
				}
			}
			res := analyzeFrames(frames)
			if len(res.Mismatches) != 1 || res.Mismatches[0].Check != tt.check || res.Mismatches[0].Frame != frame {
				t.Fatalf("mismatches %v; want one %v at frame %d", res.Mismatches, tt.check, frame)
			}
			t.Logf("%v", res.Mismatches[0])
		})
	}
}

// The text, JSON and verification output of the smallest capture, against
// golden files (go test -update rewrites them).
func TestGolden(t *testing.T) {
	frames := loadFrames(t, capturePath(t, "v1-basic"))
	var text, js, verify bytes.Buffer
	eachOption(frames, func(_ int, p *Packet, i int) {
		text.Write(AppendText(nil, p, i))
		js.Write(AppendJSON(nil, p, i))
	})
	res := analyzeFrames(frames)
	if err := res.WriteText(&verify); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"v1-basic.txt": text.Bytes(), "v1-basic.json": js.Bytes(), "v1-basic.verify.txt": verify.Bytes()} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the output (go test -update rewrites it); first difference at line %d", path, firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}
