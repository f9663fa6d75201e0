package options

import (
	"bytes"
	"errors"
	"testing"
)

// checkArea asserts the basic laws of an option area: at most 40 bytes, a
// multiple of four, walkable to the end.
func checkArea(t *testing.T, area []byte) {
	t.Helper()
	if len(area) > MaxTCPOptionsLen || len(area)%4 != 0 {
		t.Fatalf("area of %d bytes: %x", len(area), area)
	}
	w := NewWalker(area)
	for {
		if _, _, ok := w.Next(); !ok {
			break
		}
	}
	if w.Status() != WalkOK {
		t.Fatalf("area does not walk: %v: %x", w.Status(), area)
	}
}

func TestFitCommonCase(t *testing.T) {
	ts := mustHex(t, "0101080a 00000001 00000002")
	dss := DSS{HasAck: true, Ack64: true, DataAck: 1, HasMapping: true, DSN64: true, DSN: 2, SubflowSeq: 1, DataLen: 1448}.Append(nil)
	area, omitted, err := Fit(nil, ts, dss)
	if err != nil || omitted != 0 {
		t.Fatal(err, omitted)
	}
	checkArea(t, area)
	want := append(append(append([]byte{}, ts...), dss...), 1, 1)
	if !bytes.Equal(area, want) {
		t.Fatalf("area %x\nwant %x", area, want)
	}
}

func TestFitTrimsSACKFirst(t *testing.T) {
	ts := mustHex(t, "0101080a 00000001 00000002")
	sack3 := mustHex(t, "0101 051a 00000010 00000020 00000030 00000040 00000050 00000060")
	tcp := append(append([]byte{}, ts...), sack3...)              // 12 + 28 = 40 bytes
	dss := DSS{HasAck: true, Ack64: true, DataAck: 1}.Append(nil) // 12 bytes
	area, omitted, err := Fit(nil, tcp, dss)
	if err != nil || omitted != 0 {
		t.Fatal(err, omitted)
	}
	checkArea(t, area)
	var s Segment
	s.Parse(area, ackCtx)
	if s.N != 1 || !s.HasTimestamp {
		t.Fatalf("lost the DSS or the timestamp: %x", area)
	}
	// 10 (TS) + 12 (DSS) leaves 18: two SACK blocks (2 + 16 bytes).
	w := NewWalker(area)
	for {
		k, opt, ok := w.Next()
		if !ok {
			break
		}
		if k == TCPOptionSACK {
			if len(opt) != 18 || !bytes.Equal(opt[2:], sack3[4:20]) {
				t.Fatalf("SACK kept %x; want the first two blocks", opt)
			}
			return
		}
	}
	t.Fatalf("no SACK block left although two fit: %x", area)
}

func TestFitLeavesOutOptionalOptions(t *testing.T) {
	ts := mustHex(t, "0101080a 00000001 00000002")
	dss := DSS{HasAck: true, Ack64: true, DataAck: 1, HasMapping: true, DSN64: true, DSN: 2, SubflowSeq: 1, DataLen: 1448}.Append(nil)
	mp := append(append([]byte{}, dss...), AddAddr{AddrID: 1, Addr: mustAddr("10.0.0.2"), HMAC: 5}.Append(nil)...)
	mp = MPPrio{Backup: true}.Append(mp)
	area, omitted, err := Fit(nil, ts, mp)
	if err != nil {
		t.Fatal(err)
	}
	checkArea(t, area)
	if omitted != 0b011 && omitted != 0b010 {
		t.Fatalf("omitted %03b: the ADD_ADDR cannot fit next to a full DSS", omitted)
	}
	var s Segment
	s.Parse(area, dataCtx)
	if s.Find(SubtypeDSS) == nil {
		t.Fatal("mapping dropped")
	}
	if omitted&0b100 == 0 && s.Find(SubtypeMPPrio) == nil {
		t.Fatal("MP_PRIO reported kept but missing")
	}
}

func TestFitNoRoom(t *testing.T) {
	tcp := mustHex(t, "0204 05b4 0402 080a 00000001 00000000 0103 0307") // SYN options, 20 bytes
	join := MPJoin{Variant: JoinACK}.Append(nil)
	join2 := MPJoin{Variant: JoinACK}.Append(nil)
	_, _, err := Fit([]byte{9}, tcp, append(join, join2...))
	if !errors.Is(err, ErrNoRoom) {
		t.Fatalf("err = %v, want ErrNoRoom", err)
	}
	if _, _, err := Fit(nil, tcp, []byte{0x1e, 0x09, 0x20}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("truncated MPTCP option: err = %v", err)
	}
	if _, _, err := Fit(nil, tcp, []byte{2, 4, 5, 0xb4}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("non-MPTCP option in the MPTCP list: err = %v", err)
	}
}

func TestFitKeepsDstPrefix(t *testing.T) {
	area, _, err := Fit([]byte{0xaa, 0xbb}, nil, MPPrio{}.Append(nil))
	if err != nil || !bytes.Equal(area, mustHex(t, "aabb 1e0350 01")) {
		t.Fatalf("%x %v", area, err)
	}
}

// TestFitRefusesUnwalkableArea: a TCP option area whose last option runs
// past its end would swallow the MPTCP options appended after it (found by
// FuzzFit).
func TestFitRefusesUnwalkableArea(t *testing.T) {
	dss := DSS{HasAck: true, DataAck: 1}.Append(nil)
	for _, area := range [][]byte{{0x08, 0x0a, 0, 0}, {0x08}, {0x05, 0x01}} {
		if out, _, err := Fit(nil, area, dss); !errors.Is(err, ErrBadOptions) {
			t.Errorf("Fit(%x) = %x, %v; want ErrBadOptions", area, out, err)
		}
	}
}
