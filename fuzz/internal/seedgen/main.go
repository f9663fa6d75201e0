// Command seedgen writes the generated seed corpora of the fuzz targets in
// package fuzz (fuzz/testdata/fuzz/<Target>/) and fuzz/pcapfuzz: every
// option variant built with Append, every MPTCP option and option-area shape
// of the Linux kernel captures (testdata/captures), the Fit layouts the
// option shim meets, the DSS checksums Linux sent, and small capture files.
// Run it through go generate ./fuzz. It replaces only the files it generates
// (named append-*, capture-*, synthetic-*, pcap-*) and leaves the rest:
// inputs the fuzzer found, regress-* cases.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/umptcp/umptcp/fuzz"
	"github.com/umptcp/umptcp/options"
)

// A seed is one corpus entry: a file name and the target's arguments.
type seed struct {
	name string
	args []any
}

// Prefixes of generated seed files: seedgen replaces these and leaves every
// other file alone.
var generatedPrefixes = []string{"capture-", "append-", "synthetic-", "pcap-"}

// corpusFile encodes args in the native corpus format ("go test fuzz v1"),
// as the fuzzer itself writes it.
func corpusFile(args ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		default:
			panic(fmt.Sprintf("corpusFile: unsupported %T", a))
		}
	}
	return b.Bytes()
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Segment contexts, as options' tests name them.
const (
	synCtx    = options.ContextSYN
	synackCtx = options.ContextSYN | options.ContextACK
	ackCtx    = options.ContextACK
	dataCtx   = options.ContextACK | options.ContextPayload
	rstCtx    = options.ContextRST | options.ContextACK
)

// builder is what every typed option value implements.
type builder interface {
	Len() int
	Append([]byte) []byte
}

// namedOption is an option value built with Append and the context of a
// segment that carries it.
type namedOption struct {
	name string
	v    builder
	ctx  options.Context
}

// appendVariants lists every variant of every option type, built with its
// Append: each MP_CAPABLE and MP_JOIN layout, every DSS flag combination,
// all eight ADD_ADDR layouts, and the signalling options.
func appendVariants() []namedOption {
	const keyA, keyB = 0x0102030405060708, 0x1112131415161718
	var hmac [options.JoinHMACLen]byte
	copy(hmac[:], mustHex("53037f2899475529844115fd07e665d23d3554fb"))
	var out []namedOption
	capCtx := map[options.CapableVariant]options.Context{options.CapableSYN: synCtx, options.CapableSYNACK: synackCtx,
		options.CapableACK: ackCtx, options.CapableData: dataCtx, options.CapableDataChecksum: dataCtx}
	for _, v := range []options.CapableVariant{options.CapableSYN, options.CapableSYNACK, options.CapableACK,
		options.CapableData, options.CapableDataChecksum} {
		flags := uint8(options.CapableFlagHMACSHA256)
		if v == options.CapableDataChecksum {
			flags |= options.CapableFlagChecksum
		}
		c := options.MPCapable{Variant: v, Version: 1, Flags: flags, SenderKey: keyA, ReceiverKey: keyB, DataLen: 1460, Checksum: 0xbeef}
		out = append(out, namedOption{fmt.Sprintf("mp-capable-%d", v), c, capCtx[v]})
	}
	out = append(out,
		namedOption{"mp-join-syn", options.MPJoin{Variant: options.JoinSYN, Backup: true, AddrID: 5, Token: 0x66840dda, Nonce: 0xa1a2a3a4}, synCtx},
		namedOption{"mp-join-synack", options.MPJoin{Variant: options.JoinSYNACK, AddrID: 2, HMAC: [20]byte{0x86, 0x4b, 0x40, 0x42, 0x87, 0x62, 0xfd, 0x06}, Nonce: 0xb1b2b3b4}, synackCtx},
		namedOption{"mp-join-ack", options.MPJoin{Variant: options.JoinACK, HMAC: hmac}, ackCtx},
	)
	for flags := 0; flags < 64; flags++ {
		d := options.DSS{HasAck: flags&1 != 0, Ack64: flags&2 != 0, HasMapping: flags&4 != 0, DSN64: flags&8 != 0,
			DataFIN: flags&16 != 0, HasChecksum: flags&32 != 0}
		if (!d.HasAck && d.Ack64) || (!d.HasMapping && (d.DSN64 || d.HasChecksum)) {
			continue // the same bytes as another combination
		}
		if d.HasAck {
			d.DataAck = 0x1122334455667788
			if !d.Ack64 {
				d.DataAck &= 0xffffffff
			}
		}
		ctx := ackCtx
		if d.HasMapping {
			d.DSN, d.SubflowSeq, d.DataLen, d.Checksum = 0x99aabbccddeeff00, 1, 1448, 0x1234
			if !d.DSN64 {
				d.DSN &= 0xffffffff
			}
			if !d.HasChecksum {
				d.Checksum = 0
			}
			ctx = dataCtx
		}
		out = append(out, namedOption{fmt.Sprintf("dss-%02x", flags), d, ctx})
	}
	for _, addr := range []string{"10.0.2.2", "fd00:2::2"} {
		for i := 0; i < 4; i++ {
			a := options.AddAddr{Echo: i&1 != 0, HasPort: i&2 != 0, AddrID: 1, Addr: netip.MustParseAddr(addr)}
			if a.HasPort {
				a.Port = 10100
			}
			if !a.Echo {
				a.HMAC = 0x4e42b6a25d2d16fb
			}
			out = append(out, namedOption{fmt.Sprintf("add-addr-%d-%d", a.Len(), i), a, ackCtx})
		}
	}
	r1, _ := options.NewRemoveAddr(3)
	r8, _ := options.NewRemoveAddr(1, 2, 3, 4, 5, 6, 7, 8)
	out = append(out,
		namedOption{"remove-addr-1", r1, ackCtx},
		namedOption{"remove-addr-8", r8, ackCtx},
		namedOption{"mp-prio", options.MPPrio{}, ackCtx},
		namedOption{"mp-prio-backup", options.MPPrio{Backup: true}, ackCtx},
		namedOption{"mp-fail", options.MPFail{DSN: 0x99aabbccddeeff00}, ackCtx},
		namedOption{"mp-fastclose", options.MPFastClose{ReceiverKey: keyB}, rstCtx},
		namedOption{"mp-tcprst", options.MPTCPRst{Flags: options.TCPRstFlagTransient, Reason: options.TCPRstMiddlebox}, rstCtx},
	)
	return out
}

// capturedArea is the option area of a captured segment and its context.
type capturedArea struct {
	name string
	area []byte
	ctx  options.Context
	seg  capturedSegment
}

// captureAreas returns one option area per shape (the kinds and lengths of
// its options, and its context) found in the captures, so that thousands of
// data segments give a handful of seeds.
func captureAreas(segs []capturedSegment) []capturedArea {
	var out []capturedArea
	seen := map[string]bool{}
	for _, cs := range segs {
		hdr := int(cs.seg[12]>>4) * 4
		area := cs.seg[20:hdr]
		ctx := options.ContextOf(cs.seg[13], len(cs.seg)-hdr)
		shape := fmt.Sprintf("%d", ctx)
		w := options.NewWalker(area)
		for {
			kind, opt, ok := w.Next()
			if !ok {
				break
			}
			shape += fmt.Sprintf(" %d/%d", kind, len(opt))
			if kind == options.Kind {
				shape += fmt.Sprintf("/%x", opt[2:min(4, len(opt))]) // subtype and flags
			}
		}
		if seen[shape] {
			continue
		}
		seen[shape] = true
		name := fmt.Sprintf("capture-%s-%d", strings.TrimSuffix(cs.file, filepath.Ext(cs.file)), cs.index)
		out = append(out, capturedArea{name, append([]byte(nil), area...), ctx, cs})
	}
	return out
}

// splitArea separates a captured area into its TCP options (with their
// NOPs, in order) and its MPTCP options (back to back).
func splitArea(area []byte) (tcp, mp []byte) {
	i := 0
	for i < len(area) {
		k := area[i]
		if k == options.TCPOptionEOL {
			break
		}
		if k == options.TCPOptionNOP {
			tcp = append(tcp, k)
			i++
			continue
		}
		if i+1 >= len(area) || area[i+1] < 2 || i+int(area[i+1]) > len(area) {
			tcp = append(tcp, area[i:]...)
			break
		}
		opt := area[i : i+int(area[i+1])]
		if k == options.Kind {
			mp = append(mp, opt...)
		} else {
			tcp = append(tcp, opt...)
		}
		i += len(opt)
	}
	return tcp, mp
}

// seedCorpora builds every generated seed, per target directory.
func seedCorpora(segs []capturedSegment, capturesDir string) (map[string][]seed, error) {
	corpora := map[string][]seed{}
	add := func(target, name string, args ...any) {
		corpora[target] = append(corpora[target], seed{name, args})
	}

	// Every variant of every option, and every captured option shape.
	for _, v := range appendVariants() {
		add("FuzzParseOption", "append-"+v.name, v.v.Append(nil), byte(v.ctx))
	}
	areas := captureAreas(segs)
	seenOpt := map[string]bool{}
	for _, a := range areas {
		w := options.NewWalker(a.area)
		for i := 0; ; i++ {
			kind, opt, ok := w.Next()
			if !ok {
				break
			}
			key := fmt.Sprintf("%d %x %d", a.ctx, opt[:min(4, len(opt))], len(opt))
			if kind != options.Kind || seenOpt[key] {
				continue
			}
			seenOpt[key] = true
			add("FuzzParseOption", fmt.Sprintf("%s-%d", a.name, i), append([]byte(nil), opt...), byte(a.ctx))
		}
	}
	for _, h := range []string{"1e05 9012 34", "1e06 f0aa bbcc", "1e0d 1105 66840dda a1a2a3a4 00", "1e03 20"} {
		add("FuzzParseOption", "synthetic-"+strings.ReplaceAll(h, " ", ""), mustHex(h), byte(options.AnyContext))
	}

	// Option areas: every captured shape, and edge cases of the walk.
	for _, a := range areas {
		add("FuzzWalkOptionArea", a.name, a.area, byte(a.ctx))
	}
	for i, h := range []string{
		"0101 080a 00000001 00000002 1e1a 200f 0102030405060708 1112131415161718 00000001 05b4 0101",
		"1e08 2001 01020304 1e10 3001 0a000002 4e42b6a25d2d16fb 1e03 51 01",
		"1e0c 7000 1112131415161718 1e04 8106",
		"1e08 2001 01020304 00 1e08 2001 01020304",
		"0101 1e08 2001 0102",
		"1e08 2001 01020304 05",
		"0500 1e08 2001 01020304",
		"1e02 1e08 2001 01020304",
		"1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50 1e03 50",
		"080a 00000001 00000002 080a 00000003 00000004",
	} {
		add("FuzzWalkOptionArea", fmt.Sprintf("synthetic-%d", i), mustHex(h), byte(dataCtx))
	}

	// Fit: every captured area split into its TCP and MPTCP parts, and the
	// layouts the shim meets.
	for _, a := range areas {
		tcp, mp := splitArea(a.area)
		add("FuzzFit", a.name, fuzz.RawTCPSpec(tcp), fuzz.RawMPTCPSpec(mp), byte(0))
	}
	ts := []byte{fuzz.TCPOpNOPNOPTS, 0, 0, 0, 1, 0, 0, 0, 2}
	sack := func(n byte) []byte { return append([]byte{fuzz.TCPOpSACK, n}, make([]byte, int(n)*8)...) }
	dss := func(flags byte) []byte { return append([]byte{fuzz.MPOpDSS, flags}, bytes.Repeat([]byte{0x5a}, 24)...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	synOpts := []byte{fuzz.TCPOpMSS, 0x05, 0xb4, fuzz.TCPOpSACKPerm, fuzz.TCPOpTS, 0, 0, 0, 1, 0, 0, 0, 0, fuzz.TCPOpWS, 7}
	fitSeeds := []struct {
		name    string
		tcp, mp []byte
	}{
		{"linux-data", ts, dss(0x0d)},
		{"gvisor-data", ts, dss(0x0f)},
		{"data-checksum", ts, dss(0x2f)},
		{"ack-sack3", cat(ts, sack(3)), dss(0x03)},
		{"ack-sack4-no-ts", sack(4), dss(0x03)},
		{"ack-sack3-add-addr-prio", cat(ts, sack(3)), cat(dss(0x01), []byte{fuzz.MPOpAddAddr, 0x06, 1}, make([]byte, 26), []byte{fuzz.MPOpPrio, 1})},
		{"data-add-addr-v6-port", ts, cat(dss(0x0d), []byte{fuzz.MPOpAddAddr, 0x06, 1}, make([]byte, 26))},
		{"syn-capable", synOpts, []byte{fuzz.MPOpCapable, 0, 0x81}},
		{"syn-join", synOpts, cat([]byte{fuzz.MPOpJoin, 0, 1, 5}, make([]byte, 28))},
		{"ack-join", ts, cat([]byte{fuzz.MPOpJoin, 2, 0, 0}, make([]byte, 28))},
		{"rst-fastclose-tcprst", nil, cat([]byte{fuzz.MPOpFastClose}, make([]byte, 8), []byte{fuzz.MPOpTCPRst, 1, 6})},
		{"no-room", synOpts, cat([]byte{fuzz.MPOpCapable, 4, 0x81}, make([]byte, 20), []byte{fuzz.MPOpJoin, 2}, make([]byte, 29))},
		{"remove-addr-prio-fail", ts, cat([]byte{fuzz.MPOpRemoveAddr, 7}, make([]byte, 8), []byte{fuzz.MPOpPrio, 0, fuzz.MPOpFail}, make([]byte, 8))},
		{"unknown-subtype", ts, []byte{fuzz.MPOpUnknown, 5, 3, 1, 2, 3, 4, 5}},
		{"non-mptcp-in-list", ts, fuzz.RawMPTCPSpec([]byte{2, 4, 5, 0xb4})},
		{"eol-in-tcp", cat(ts, []byte{fuzz.TCPOpEOL}, fuzz.RawTCPSpec([]byte{0xff, 0xff})), dss(0x05)},
	}
	for _, s := range fitSeeds {
		add("FuzzFit", "synthetic-"+s.name, s.tcp, s.mp, byte(0))
	}
	// Fit's known bug (see fitAcceptsUnwalkableTCP in fit_test.go).
	add("FuzzFit", "synthetic-unwalkable-tcp-area", fuzz.RawTCPSpec([]byte{options.TCPOptionTimestamp}), dss(0x05), byte(3))

	// DSS checksum: the mappings of v1-checksum whose payload is all in the
	// capture, with the checksum Linux sent as the "other" value (so that
	// Verify is exercised on a real, valid checksum), and edge cases.
	n := 0
	for _, cs := range segs {
		if !strings.HasPrefix(cs.file, "v1-checksum") || !cs.complete || n >= 8 {
			continue
		}
		hdr := int(cs.seg[12]>>4) * 4
		payload := cs.seg[hdr:]
		var s options.Segment
		s.Parse(cs.seg[20:hdr], options.ContextOf(cs.seg[13], len(payload)))
		o := s.Find(options.SubtypeDSS)
		if o == nil || len(payload) == 0 {
			continue
		}
		d := o.DSS()
		if !d.HasMapping || !d.HasChecksum || !d.DSN64 || int(d.DataLen) != len(payload) {
			continue
		}
		cuts := []byte{0x80 | 7, 13, 0x80 | 64, 1}
		add("FuzzDSSChecksum", fmt.Sprintf("capture-%s-%d", strings.TrimSuffix(cs.file, filepath.Ext(cs.file)), cs.index),
			append([]byte(nil), payload...), cuts, d.DSN, d.SubflowSeq, d.DataLen, d.Checksum)
		n++
	}
	mss := make([]byte, 1448)
	for i := range mss {
		mss[i] = byte(i*31 + 7)
	}
	add("FuzzDSSChecksum", "synthetic-empty", []byte{}, []byte{}, uint64(0), uint32(0), uint16(0), uint16(0))
	add("FuzzDSSChecksum", "synthetic-one-byte", []byte{0xff}, []byte{}, uint64(1), uint32(1), uint16(1), uint16(0xffff))
	add("FuzzDSSChecksum", "synthetic-data-fin", []byte{}, []byte{}, uint64(0x99aabbccddeeff00), uint32(0), uint16(1), uint16(0))
	add("FuzzDSSChecksum", "synthetic-mss-odd-cuts", mss, []byte{0x81, 3, 0xff, 0x7f, 0, 5, 0x85}, uint64(0x99aabbccddeeff00), uint32(1), uint16(1448), uint16(0))
	add("FuzzDSSChecksum", "synthetic-all-ones", bytes.Repeat([]byte{0xff}, 1447), []byte{0x83, 0x83}, ^uint64(0), ^uint32(0), ^uint16(0), uint16(0))
	pcaps, err := pcapSeeds(capturesDir)
	if err != nil {
		return nil, err
	}
	for _, s := range pcaps {
		add("pcapfuzz/FuzzDecodePcap", s.name, s.file)
	}
	return corpora, nil
}

type pcapSeed struct {
	name string
	file []byte
}

// pcapSeeds are small capture files for FuzzDecodePcap: the smallest
// captures whole, the first frames of every capture (handshake, ADD_ADDR,
// MP_JOIN, the first data), the same re-encoded as pcapng, as raw IP and
// gzip-compressed, and a file cut inside a record.
func pcapSeeds(capturesDir string) ([]pcapSeed, error) {
	files, _ := filepath.Glob(filepath.Join(capturesDir, "*.pcap"))
	if len(files) == 0 {
		return nil, fmt.Errorf("no captures in %s", capturesDir)
	}
	var out []pcapSeed
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if len(raw) <= 10<<10 {
			out = append(out, pcapSeed{"pcap-" + name, raw})
		}
		prefix, ok := pcapPrefix(raw, 16)
		if !ok {
			return nil, fmt.Errorf("%s: not a pcap file", path)
		}
		out = append(out, pcapSeed{"pcap-" + name + "-16-frames", prefix})
		if name != "v1-basic" {
			continue
		}
		frames, err := captureFrames(prefix)
		if err != nil {
			return nil, err
		}
		ng, err := ngFile(frames, false)
		if err != nil {
			return nil, err
		}
		rawIP, err := ngFile(frames, true)
		if err != nil {
			return nil, err
		}
		out = append(out,
			pcapSeed{"pcap-v1-basic-16-frames-pcapng", ng},
			pcapSeed{"pcap-v1-basic-16-frames-raw-ip", rawIP},
			pcapSeed{"pcap-v1-basic-16-frames-gzip", gzipped(prefix)},
			pcapSeed{"pcap-v1-basic-cut-in-record", prefix[:len(prefix)-7]},
		)
	}
	return out, nil
}

// pcapPrefix returns the file header and the first n records of a pcap
// file, byte for byte.
func pcapPrefix(raw []byte, n int) ([]byte, bool) {
	if len(raw) < 24 {
		return nil, false
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(raw) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, false
	}
	off := 24
	for i := 0; i < n && off+16 <= len(raw); i++ {
		off += 16 + int(order.Uint32(raw[off+8:]))
	}
	return raw[:min(off, len(raw))], true
}

// ngFile re-encodes Ethernet frames as a pcapng file, or as raw IP frames
// (the Ethernet header stripped) when rawIP is set.
func ngFile(frames []frame, rawIP bool) ([]byte, error) {
	var b bytes.Buffer
	link := layers.LinkTypeEthernet
	if rawIP {
		link = layers.LinkTypeRaw
	}
	w, err := pcapgo.NewNgWriter(&b, link)
	if err != nil {
		return nil, err
	}
	for i, fr := range frames {
		data := fr.data
		if rawIP {
			data = data[14:]
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b) // a bytes.Buffer does not fail
	zw.Close()
	return out.Bytes()
}

func main() {
	captures := flag.String("captures", "../testdata/captures", "directory of the kernel captures")
	out := flag.String("out", ".", "the fuzz package's directory")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("seedgen: ")

	segs, err := loadCaptures(*captures)
	if err != nil {
		log.Fatal(err)
	}
	corpora, err := seedCorpora(segs, *captures)
	if err != nil {
		log.Fatal(err)
	}
	for target, seeds := range corpora {
		dir := filepath.Join(*out, "testdata", "fuzz", target)
		if pkg, t, ok := strings.Cut(target, "/"); ok {
			dir = filepath.Join(*out, pkg, "testdata", "fuzz", t)
		}
		if err := writeCorpus(dir, seeds); err != nil {
			log.Fatal(err)
		}
		log.Printf("%s: %d seeds", dir, len(seeds))
	}
}

// writeCorpus replaces the generated seeds in dir.
func writeCorpus(dir string, seeds []seed) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := os.ReadDir(dir)
	for _, e := range old {
		for _, p := range generatedPrefixes {
			if strings.HasPrefix(e.Name(), p) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	names := map[string]bool{}
	for _, s := range seeds {
		if names[s.name] {
			return fmt.Errorf("%s: two seeds named %s", dir, s.name)
		}
		names[s.name] = true
		if err := os.WriteFile(filepath.Join(dir, s.name), corpusFile(s.args...), 0o644); err != nil {
			return err
		}
	}
	return nil
}
