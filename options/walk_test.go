package options

import (
	"bytes"
	"testing"
)

func TestSegmentParse(t *testing.T) {
	cases := []struct {
		name     string
		hex      string
		ctx      Context
		subtypes []Subtype
		status   WalkStatus
		ts       bool
	}{
		{"gVisor data segment", "0101 080a 00000001 00000002 1e1a 200f 0102030405060708 1112131415161718 00000001 05b4 0101",
			dataCtx, []Subtype{SubtypeDSS}, WalkOK, true},
		{"Linux SYN", "0204 05b4 0402 080a 00000001 00000000 0103 0307 1e04 0181",
			synCtx, []Subtype{SubtypeMPCapable}, WalkOK, true},
		{"DSS + ADD_ADDR + MP_PRIO", "1e08 2001 01020304 1e10 3001 0a000002 4e42b6a25d2d16fb 1e03 51 01",
			ackCtx, []Subtype{SubtypeDSS, SubtypeAddAddr, SubtypeMPPrio}, WalkOK, false},
		{"RST + MP_FASTCLOSE + MP_TCPRST", "1e0c 7000 1112131415161718 1e04 8106",
			rstCtx, []Subtype{SubtypeMPFastClose, SubtypeMPTCPRst}, WalkOK, false},
		{"EOL stops the walk", "1e08 2001 01020304 00 1e08 2001 01020304",
			ackCtx, []Subtype{SubtypeDSS}, WalkOK, false},
		{"truncated last option", "0101 1e08 2001 0102",
			ackCtx, nil, WalkTruncated, false},
		{"kind at the very end", "1e08 2001 01020304 05",
			ackCtx, []Subtype{SubtypeDSS}, WalkTruncated, false},
		{"zero length stops the walk", "0500 1e08 2001 01020304",
			ackCtx, nil, WalkBadLength, false},
		{"MPTCP length 2 stops the walk", "1e02 1e08 2001 01020304",
			ackCtx, nil, WalkBadLength, false},
		{"other kinds skipped", "0402 0303 07 0a05 010203 1e03 50",
			ackCtx, []Subtype{SubtypeMPPrio}, WalkOK, false},
		{"malformed kept in order", "1e05 2000 01 1e03 51",
			ackCtx, []Subtype{SubtypeDSS, SubtypeMPPrio}, WalkOK, false},
	}
	var s Segment
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.Parse(mustHex(t, c.hex), c.ctx)
			if s.Status != c.status {
				t.Errorf("status %v, want %v", s.Status, c.status)
			}
			if s.HasTimestamp != c.ts {
				t.Errorf("timestamp %v, want %v", s.HasTimestamp, c.ts)
			}
			got := s.List()
			if len(got) != len(c.subtypes) {
				t.Fatalf("%d options, want %d: %+v", len(got), len(c.subtypes), got)
			}
			for i, st := range c.subtypes {
				if got[i].Subtype != st {
					t.Errorf("option %d is %v, want %v", i, got[i].Subtype, st)
				}
			}
		})
	}
	s.Parse(mustHex(t, "1e05 2000 01 1e03 51"), ackCtx)
	if !s.List()[0].Malformed || s.Find(SubtypeDSS) != nil || s.Find(SubtypeMPPrio) == nil {
		t.Error("Find must skip malformed options")
	}
	s.Parse(mustHex(t, "0101080a 01020304 0a0b0c0d"), ackCtx)
	if !s.HasTimestamp || s.TSVal != 0x01020304 || s.TSEcr != 0x0a0b0c0d {
		t.Errorf("timestamp %+v", s)
	}
}

func TestSegmentParseMany(t *testing.T) {
	// Thirteen MP_PRIOs fill 39 bytes: the most one segment can carry.
	var b []byte
	for i := 0; i < MaxPerSegment; i++ {
		b = MPPrio{Backup: i%2 == 0}.Append(b)
	}
	var s Segment
	s.Parse(b, ackCtx)
	if s.N != MaxPerSegment {
		t.Fatalf("N = %d", s.N)
	}
	for i, o := range s.List() {
		if o.MPPrio().Backup != (i%2 == 0) {
			t.Fatalf("option %d out of order", i)
		}
	}
	// Longer than any TCP header allows: bounded, no panic.
	s.Parse(bytes.Repeat(b, 3), ackCtx)
	if s.N != MaxPerSegment {
		t.Fatalf("N = %d on an oversized area", s.N)
	}
}

func TestWalker(t *testing.T) {
	w := NewWalker(mustHex(t, "0101 0204 05b4 01 0303 07 00 0402"))
	var kinds []uint8
	for {
		k, opt, ok := w.Next()
		if !ok {
			break
		}
		if int(opt[1]) != len(opt) || opt[0] != k {
			t.Fatalf("option %x", opt)
		}
		kinds = append(kinds, k)
	}
	if !bytes.Equal(kinds, []uint8{TCPOptionMSS, TCPOptionWS}) || w.Status() != WalkOK {
		t.Fatalf("kinds %v status %v", kinds, w.Status())
	}
	for _, st := range []WalkStatus{WalkOK, WalkTruncated, WalkBadLength, 9} {
		if st.String() == "" {
			t.Error("empty status name")
		}
	}
}
