package bench

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/umptcp/umptcp/options"
)

// A codecCase is a segment of the kernel captures that the parse benchmarks
// run on, found by what it carries.
type codecCase struct {
	name string
	file string
	pick func(f *segFields) bool
}

const (
	flagSYN = 0x02
	flagACK = 0x10
)

// opt returns the first recorded option of subtype st, or nil.
func (f *segFields) opt(st options.Subtype) *optFields {
	for i := range f.N {
		if f.Opts[i].Subtype == uint8(st) {
			return &f.Opts[i]
		}
	}
	return nil
}

func hasOpt(st options.Subtype, length int) func(*segFields) bool {
	return func(f *segFields) bool {
		o := f.opt(st)
		return o != nil && (length == 0 || int(o.Len) == length)
	}
}

var codecCases = []codecCase{
	{"syn-mp-capable", "v1-basic.pcap", func(f *segFields) bool {
		return f.Flags == flagSYN && hasOpt(options.SubtypeMPCapable, int(options.CapableSYN))(f)
	}},
	{"data-dss-ts", "v1-basic.pcap", func(f *segFields) bool {
		o := f.opt(options.SubtypeDSS)
		return f.PayloadLen > 0 && f.HasTS && o != nil && o.DSSFlags&options.DSSFlagMapping != 0
	}},
	{"ack-dss", "v1-basic.pcap", func(f *segFields) bool {
		return f.PayloadLen == 0 && f.Flags == flagACK && hasOpt(options.SubtypeDSS, 0)(f)
	}},
	{"add-addr", "add-addr-join.pcap", func(f *segFields) bool {
		o := f.opt(options.SubtypeAddAddr)
		return o != nil && !o.Echo
	}},
	{"join-syn", "add-addr-join.pcap", hasOpt(options.SubtypeMPJoin, int(options.JoinSYN))},
	{"join-synack", "add-addr-join.pcap", hasOpt(options.SubtypeMPJoin, int(options.JoinSYNACK))},
	{"join-ack", "add-addr-join.pcap", hasOpt(options.SubtypeMPJoin, int(options.JoinACK))},
}

var (
	captureOnce sync.Once
	captureSegs map[string][]capturedSegment // by file name
	captureErr  error
)

// caseSegment returns the first segment of c's capture that c picks.
func caseSegment(tb testing.TB, c codecCase) []byte {
	tb.Helper()
	captureOnce.Do(func() {
		captureSegs = map[string][]capturedSegment{}
		for _, name := range []string{"v1-basic.pcap", "add-addr-join.pcap"} {
			segs, err := readCapture(capturesDir + "/" + name)
			if err != nil {
				captureErr = err
				return
			}
			captureSegs[name] = segs
		}
	})
	if captureErr != nil {
		tb.Skipf("kernel captures not available: %v", captureErr)
	}
	var s options.Segment
	var f segFields
	for _, cs := range captureSegs[c.file] {
		if parseOurs(cs.seg, &s, &f) && c.pick(&f) {
			return cs.seg
		}
	}
	tb.Fatalf("%s: no segment in %s", c.name, c.file)
	return nil
}

// TestCodecSidesAgree makes sure the parse benchmarks compare the same
// work: on every TCP segment of every capture, the umptcp way and both
// gopacket ways extract the same fields.
func TestCodecSidesAgree(t *testing.T) {
	segs := loadCaptures(t)
	var s options.Segment
	var tcp layers.TCP
	var ours, gp, np segFields
	var nOpts int
	for _, cs := range segs {
		if !parseOurs(cs.seg, &s, &ours) {
			t.Fatalf("%s #%d: not a TCP segment", cs.file, cs.index)
		}
		if err := tcp.DecodeFromBytes(cs.seg, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("%s #%d: gopacket: %v", cs.file, cs.index, err)
		}
		extractGopacket(&tcp, &gp)
		p := gopacket.NewPacket(cs.seg, layers.LayerTypeTCP, gopacket.NoCopy)
		ptcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("%s #%d: NewPacket found no TCP layer: %v", cs.file, cs.index, p.ErrorLayer())
		}
		extractGopacket(ptcp, &np)
		if ours != gp || ours != np {
			t.Fatalf("%s #%d disagree:\n    ours %+v\ngopacket %+v\nNewPacket %+v", cs.file, cs.index, ours, gp, np)
		}
		if s.N != ours.N {
			t.Fatalf("%s #%d: %d MPTCP options, %d recorded (malformed or undefined subtype in a kernel capture?)",
				cs.file, cs.index, s.N, ours.N)
		}
		nOpts += ours.N
	}
	if nOpts == 0 {
		t.Fatal("no MPTCP option in the captures")
	}
	t.Logf("%d segments, %d MPTCP options: both sides agree", len(segs), nOpts)
}

// TestCodecZeroAllocs pins what the benchmarks report: parsing a captured
// segment the umptcp way, and building and fitting options, allocate
// nothing (STYLE.md: pinned in a test, not only in benchmarks).
func TestCodecZeroAllocs(t *testing.T) {
	var s options.Segment
	var f segFields
	for _, c := range codecCases {
		seg := caseSegment(t, c)
		if n := testing.AllocsPerRun(100, func() { parseOurs(seg, &s, &f) }); n != 0 {
			t.Errorf("parse %s: %v allocs per run", c.name, n)
		}
	}
	buf := make([]byte, 0, options.MaxTCPOptionsLen)
	area := make([]byte, 0, options.MaxTCPOptionsLen)
	dss := linuxDataDSS()
	ts := timestampOption()
	var sum options.DSSChecksum
	payload := make([]byte, 1448)
	builds := map[string]func(){
		"DSS":        func() { buf = dss.Append(buf[:0]) },
		"MP_CAPABLE": func() { buf = options.MPCapable{Variant: options.CapableDataChecksum, Version: 1}.Append(buf[:0]) },
		"MP_JOIN":    func() { buf = options.MPJoin{Variant: options.JoinACK}.Append(buf[:0]) },
		"ADD_ADDR":   func() { buf = addAddr().Append(buf[:0]) },
		"Fit":        func() { area, _, _ = options.Fit(area[:0], ts, dss.Append(buf[:0])) },
		"checksum":   func() { sum.Reset(); sum.Add(payload); _ = sum.Sum(1, 1, 1448) },
	}
	for name, fn := range builds {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per run", name, n)
		}
	}
}

// linuxDataDSS is the DSS Linux puts on a data segment: 64-bit data ACK,
// 64-bit DSN, a mapping of one MSS (28 bytes).
func linuxDataDSS() options.DSS {
	return options.DSS{HasAck: true, Ack64: true, DataAck: 0x1122334455667788, HasMapping: true, DSN64: true,
		DSN: 0x99aabbccddeeff00, SubflowSeq: 1, DataLen: 1448}
}

// timestampOption is NOP NOP TS as Linux and gVisor send it.
func timestampOption() []byte {
	return []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
}

func addAddr() options.AddAddr {
	return options.AddAddr{AddrID: 1, Addr: netip.AddrFrom4([4]byte{10, 0, 2, 1}), HMAC: 0x4e42b6a25d2d16fb}
}

var (
	sinkFields segFields
	sinkBytes  []byte
	sinkU64    uint64
	sinkU16    uint16
)

// BenchmarkCodecParse parses captured segments three ways: umptcp's
// Segment.Parse behind a minimal TCP header parse; gopacket's
// layers.TCP.DecodeFromBytes into a reused layer (its fastest way) with the
// MPTCP fields then read by hand from tcp.Options; and gopacket.NewPacket
// with the same extraction.
func BenchmarkCodecParse(b *testing.B) {
	for _, c := range codecCases {
		seg := caseSegment(b, c)
		b.Run(c.name+"/ours", func(b *testing.B) {
			var s options.Segment
			b.ReportAllocs()
			for b.Loop() {
				parseOurs(seg, &s, &sinkFields)
			}
		})
		b.Run(c.name+"/gopacket", func(b *testing.B) {
			var tcp layers.TCP
			b.ReportAllocs()
			for b.Loop() {
				if err := tcp.DecodeFromBytes(seg, gopacket.NilDecodeFeedback); err != nil {
					b.Fatal(err)
				}
				extractGopacket(&tcp, &sinkFields)
			}
		})
		b.Run(c.name+"/gopacket-newpacket", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := gopacket.NewPacket(seg, layers.LayerTypeTCP, gopacket.NoCopy)
				tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if !ok {
					b.Fatal("no TCP layer")
				}
				extractGopacket(tcp, &sinkFields)
			}
		})
	}
}

// BenchmarkCodecBuildDSS appends Linux's data-segment DSS into a reused
// buffer.
func BenchmarkCodecBuildDSS(b *testing.B) {
	d := linuxDataDSS()
	buf := make([]byte, 0, options.MaxTCPOptionsLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = d.Append(buf[:0])
	}
	sinkBytes = buf
}

// BenchmarkCodecFitTimestamps fits that DSS next to NOP NOP TS, the option
// area of every data segment (the common case: everything fits).
func BenchmarkCodecFitTimestamps(b *testing.B) {
	mp := linuxDataDSS().Append(nil)
	ts := timestampOption()
	area := make([]byte, 0, options.MaxTCPOptionsLen)
	b.ReportAllocs()
	for b.Loop() {
		area, _, _ = options.Fit(area[:0], ts, mp)
	}
	sinkBytes = area
}

// BenchmarkCodecFitTrimSACK fits a DSS with a data ACK next to timestamps
// and three SACK blocks: the slow path that trims SACK blocks.
func BenchmarkCodecFitTrimSACK(b *testing.B) {
	mp := options.DSS{HasAck: true, Ack64: true, DataAck: 1}.Append(nil)
	tcp := append(timestampOption(), 1, 1, 5, 26)
	tcp = append(tcp, make([]byte, 24)...)
	area := make([]byte, 0, options.MaxTCPOptionsLen)
	b.ReportAllocs()
	for b.Loop() {
		area, _, _ = options.Fit(area[:0], tcp, mp)
	}
	sinkBytes = area
}

func BenchmarkCodecTokenIDSN(b *testing.B) {
	b.ReportAllocs()
	key := uint64(0x0102030405060708)
	for b.Loop() {
		t, idsn := options.TokenIDSN(key)
		sinkU64 += uint64(t) + idsn
	}
}

func BenchmarkCodecJoinHMAC(b *testing.B) {
	const keyA, keyB, nonceA, nonceB = 0x0102030405060708, 0x1112131415161718, 0xa1a2a3a4, 0xb1b2b3b4
	b.Run("truncated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkU64 += options.TruncatedJoinHMAC(keyB, keyA, nonceB, nonceA)
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := options.JoinHMAC(keyA, keyB, nonceA, nonceB)
			sinkU64 += uint64(h[0])
		}
	})
}

func BenchmarkCodecAddAddrHMAC(b *testing.B) {
	a := addAddr()
	b.ReportAllocs()
	for b.Loop() {
		sinkU64 += options.AddAddrHMAC(0x0102030405060708, 0x1112131415161718, a.AddrID, a.Addr, 0)
	}
}

// BenchmarkCodecDSSChecksum sums one MSS of payload and the pseudo-header.
func BenchmarkCodecDSSChecksum(b *testing.B) {
	payload := make([]byte, 1448)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var c options.DSSChecksum
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		c.Add(payload)
		sinkU16 += c.Sum(0x99aabbccddeeff00, 1, 1448)
	}
}
