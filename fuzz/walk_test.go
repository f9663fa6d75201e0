package fuzz

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/umptcp/umptcp/options"
)

// refOption is an option as the reference walk finds it.
type refOption struct {
	kind     uint8
	off, end int
}

// refWalk is a deliberately plain reading of RFC 9293 §3.1 and Linux's
// tcp_parse_options: EOL ends the area, NOP is one byte, every other option
// has a length byte of at least 2 (3 for MPTCP, whose subtype is in the
// third byte) that must stay inside the area. It is the model the Walker is
// checked against.
func refWalk(area []byte) ([]refOption, options.WalkStatus) {
	var opts []refOption
	i := 0
	for i < len(area) {
		switch area[i] {
		case options.TCPOptionEOL:
			return opts, options.WalkOK
		case options.TCPOptionNOP:
			i++
			continue
		}
		if i+2 > len(area) {
			return opts, options.WalkTruncated
		}
		l := int(area[i+1])
		if l < 2 || (area[i] == options.Kind && l < 3) {
			return opts, options.WalkBadLength
		}
		if i+l > len(area) {
			return opts, options.WalkTruncated
		}
		opts = append(opts, refOption{kind: area[i], off: i, end: i + l})
		i += l
	}
	return opts, options.WalkOK
}

// offsetIn returns where sub starts in b, or -1 if it does not lie within b.
func offsetIn(b, sub []byte) int {
	if len(sub) == 0 {
		return -1
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	if p < base || p-base+uintptr(len(sub)) > uintptr(len(b)) {
		return -1
	}
	return int(p - base)
}

// FuzzWalkOptionArea walks arbitrary option areas with options.Walker and
// options.Segment.Parse and checks both against refWalk: no panic, every
// option a sub-slice of the input, in input order, the status the model
// gives, at most MaxPerSegment MPTCP options, each as options.Parse sees
// it, and the timestamp as the last timestamp option carries it.
func FuzzWalkOptionArea(f *testing.F) {
	var seg options.Segment // reused, as a stack would
	f.Fuzz(func(t *testing.T, area []byte, ctxByte byte) {
		if len(area) > 4*options.MaxTCPOptionsLen {
			t.Skip("area too long") // a TCP header holds 40 bytes; longer ones only slow minimization
		}
		area = area[:len(area):len(area)]
		orig := append([]byte(nil), area...)
		want, wantStatus := refWalk(area)

		w := options.NewWalker(area)
		var i int
		for {
			kind, opt, ok := w.Next()
			if !ok {
				if kind != 0 || opt != nil {
					t.Fatalf("Next returned %d %x with ok false", kind, opt)
				}
				break
			}
			if i >= len(want) {
				t.Fatalf("walker returned more options than the model: %x", area)
			}
			off := offsetIn(area, opt)
			if off < 0 {
				t.Fatalf("option %d (%x) does not lie within the input", i, opt)
			}
			if cap(opt) != len(opt) {
				t.Fatalf("option %d lets a caller write past it: cap %d len %d", i, cap(opt), len(opt))
			}
			if r := want[i]; kind != r.kind || off != r.off || off+len(opt) != r.end || opt[0] != kind {
				t.Fatalf("option %d: kind %d at [%d,%d), model: kind %d at [%d,%d); area %x",
					i, kind, off, off+len(opt), r.kind, r.off, r.end, area)
			}
			i++
		}
		if i != len(want) {
			t.Fatalf("walker returned %d options, model %d: %x", i, len(want), area)
		}
		if w.Status() != wantStatus {
			t.Fatalf("status %v, model %v: %x", w.Status(), wantStatus, area)
		}
		// Next after the end stays at the end.
		if _, _, ok := w.Next(); ok || w.Status() != wantStatus {
			t.Fatal("Next after the end of the walk")
		}

		ctx := options.Context(ctxByte)
		seg.Parse(area, ctx)
		if seg.Status != wantStatus {
			t.Fatalf("Segment.Status %v, model %v", seg.Status, wantStatus)
		}
		if seg.N < 0 || seg.N > options.MaxPerSegment || len(seg.List()) != seg.N {
			t.Fatalf("Segment.N = %d", seg.N)
		}
		var mp int
		var hasTS bool
		var tsVal, tsEcr uint32
		for _, r := range want {
			switch r.kind {
			case options.Kind:
				if mp >= options.MaxPerSegment {
					continue
				}
				got := &seg.Options[mp]
				if off := offsetIn(area, got.Raw); off != r.off || len(got.Raw) != r.end-r.off {
					t.Fatalf("MPTCP option %d at %d len %d, model [%d,%d)", mp, off, len(got.Raw), r.off, r.end)
				}
				o, n, ok := options.Parse(area[r.off:r.end], ctx)
				if !ok || n != r.end-r.off || o.Subtype != got.Subtype || o.Malformed != got.Malformed {
					t.Fatalf("MPTCP option %d: Segment has %+v, Parse %+v %d %v", mp, got, o, n, ok)
				}
				mp++
			case options.TCPOptionTimestamp:
				if r.end-r.off == 10 {
					hasTS = true
					tsVal = binary.BigEndian.Uint32(area[r.off+2:])
					tsEcr = binary.BigEndian.Uint32(area[r.off+6:])
				}
			}
		}
		if seg.N != mp {
			t.Fatalf("Segment has %d MPTCP options, model %d: %x", seg.N, mp, area)
		}
		if seg.HasTimestamp != hasTS || (hasTS && (seg.TSVal != tsVal || seg.TSEcr != tsEcr)) {
			t.Fatalf("timestamp %v %d %d, model %v %d %d", seg.HasTimestamp, seg.TSVal, seg.TSEcr, hasTS, tsVal, tsEcr)
		}
		for j := 0; j < seg.N; j++ {
			o := &seg.Options[j]
			if f := seg.Find(o.Subtype); o.Valid(o.Subtype) && (f == nil || offsetIn(area, f.Raw) > offsetIn(area, o.Raw)) {
				t.Fatalf("Find(%v) missed option %d", o.Subtype, j)
			}
		}
		if !bytes.Equal(area, orig) {
			t.Fatal("walking modified the area")
		}
	})
}
