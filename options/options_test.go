package options

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// builder is what every option type implements.
type builder interface {
	Len() int
	Append([]byte) []byte
}

// decoded returns the typed value of a well-formed option.
func decoded(o *Option) builder {
	switch o.Subtype {
	case SubtypeMPCapable:
		return o.MPCapable()
	case SubtypeMPJoin:
		return o.MPJoin()
	case SubtypeDSS:
		return o.DSS()
	case SubtypeAddAddr:
		return o.AddAddr()
	case SubtypeRemoveAddr:
		return o.RemoveAddr()
	case SubtypeMPPrio:
		return o.MPPrio()
	case SubtypeMPFail:
		return o.MPFail()
	case SubtypeMPFastClose:
		return o.MPFastClose()
	case SubtypeMPTCPRst:
		return o.MPTCPRst()
	}
	return nil
}

func zeroOf(s Subtype) builder {
	var o Option
	o.Subtype = s
	return decoded(&o)
}

var (
	synCtx     = ContextSYN
	synackCtx  = ContextSYN | ContextACK
	ackCtx     = ContextACK
	dataCtx    = ContextACK | ContextPayload
	rstCtx     = ContextRST | ContextACK
	hmacA20, _ = hex.DecodeString("53037f2899475529844115fd07e665d23d3554fb")
)

func join20() (h [20]byte) { copy(h[:], hmacA20); return }
func join8() (h [20]byte) {
	copy(h[:], mustHexNoT("864b40428762fd06"))
	return
}
func mustHexNoT(s string) []byte { b, _ := hex.DecodeString(s); return b }

// codecCases are the well-formed variants, as inline hex with the value
// they decode to.
var codecCases = []struct {
	name string
	hex  string
	ctx  Context
	want builder
}{
	{"MP_CAPABLE SYN", "1e04 0181", synCtx, MPCapable{Variant: CapableSYN, Version: 1, Flags: 0x81}},
	{"MP_CAPABLE SYN no csum", "1e04 0101", synCtx, MPCapable{Variant: CapableSYN, Version: 1, Flags: 0x01}},
	{"MP_CAPABLE SYN/ACK", "1e0c 0101 0102030405060708", synackCtx,
		MPCapable{Variant: CapableSYNACK, Version: 1, Flags: 0x01, SenderKey: keyA}},
	{"MP_CAPABLE third ACK", "1e14 0121 0102030405060708 1112131415161718", ackCtx,
		MPCapable{Variant: CapableACK, Version: 1, Flags: 0x21, SenderKey: keyA, ReceiverKey: keyB}},
	{"MP_CAPABLE first data", "1e16 0101 0102030405060708 1112131415161718 05b4", dataCtx,
		MPCapable{Variant: CapableData, Version: 1, Flags: 0x01, SenderKey: keyA, ReceiverKey: keyB, DataLen: 1460}},
	{"MP_CAPABLE first data csum", "1e18 0181 0102030405060708 1112131415161718 0010 beef", dataCtx,
		MPCapable{Variant: CapableDataChecksum, Version: 1, Flags: 0x81, SenderKey: keyA, ReceiverKey: keyB, DataLen: 16, Checksum: 0xbeef}},
	{"MP_JOIN SYN", "1e0c 1105 66840dda a1a2a3a4", synCtx,
		MPJoin{Variant: JoinSYN, Backup: true, AddrID: 5, Token: 0x66840dda, Nonce: nonceA}},
	{"MP_JOIN SYN/ACK", "1e10 1000 864b40428762fd06 b1b2b3b4", synackCtx,
		MPJoin{Variant: JoinSYNACK, AddrID: 0, HMAC: join8(), Nonce: nonceB}},
	{"MP_JOIN ACK", "1e18 1000 53037f2899475529844115fd07e665d23d3554fb", ackCtx,
		MPJoin{Variant: JoinACK, HMAC: join20()}},
	{"DSS ack32", "1e08 2001 01020304", ackCtx, DSS{HasAck: true, DataAck: 0x01020304}},
	{"DSS ack64", "1e0c 2003 0102030405060708", ackCtx, DSS{HasAck: true, Ack64: true, DataAck: keyA}},
	{"DSS map32", "1e0e 2004 aabbccdd 00000001 05b4", dataCtx,
		DSS{HasMapping: true, DSN: 0xaabbccdd, SubflowSeq: 1, DataLen: 1460}},
	{"DSS map32 csum", "1e10 2004 aabbccdd 00000001 05b4 1234", dataCtx,
		DSS{HasMapping: true, DSN: 0xaabbccdd, SubflowSeq: 1, DataLen: 1460, HasChecksum: true, Checksum: 0x1234}},
	{"DSS map64 ack64 (Linux data)", "1e1a 200f 0102030405060708 1112131415161718 00000001 05b4", dataCtx,
		DSS{HasAck: true, Ack64: true, DataAck: keyA, HasMapping: true, DSN64: true, DSN: keyB, SubflowSeq: 1, DataLen: 1460}},
	{"DSS map64 ack64 csum", "1e1c 200f 0102030405060708 1112131415161718 00000001 05b4 abcd", dataCtx,
		DSS{HasAck: true, Ack64: true, DataAck: keyA, HasMapping: true, DSN64: true, DSN: keyB, SubflowSeq: 1, DataLen: 1460, HasChecksum: true, Checksum: 0xabcd}},
	{"DSS map64 ack32", "1e16 200d 01020304 1112131415161718 00000001 05b4", dataCtx,
		DSS{HasAck: true, DataAck: 0x01020304, HasMapping: true, DSN64: true, DSN: keyB, SubflowSeq: 1, DataLen: 1460}},
	{"DSS map32 ack64", "1e16 2007 0102030405060708 11121314 00000001 05b4", dataCtx,
		DSS{HasAck: true, Ack64: true, DataAck: keyA, HasMapping: true, DSN: 0x11121314, SubflowSeq: 1, DataLen: 1460}},
	{"DSS DATA_FIN only (Linux)", "1e16 201d 01020304 1112131415161718 00000000 0001", ackCtx,
		DSS{DataFIN: true, HasAck: true, DataAck: 0x01020304, HasMapping: true, DSN64: true, DSN: keyB, SubflowSeq: 0, DataLen: 1}},
	{"DSS infinite mapping", "1e0e 2004 aabbccdd 00000000 0000", dataCtx,
		DSS{HasMapping: true, DSN: 0xaabbccdd}},
	{"DSS no flags", "1e04 2000", ackCtx, DSS{}},
	{"ADD_ADDR v4", "1e10 3001 0a000002 4e42b6a25d2d16fb", ackCtx,
		AddAddr{AddrID: 1, Addr: netip.MustParseAddr("10.0.0.2"), HMAC: 0x4e42b6a25d2d16fb}},
	{"ADD_ADDR v4 port", "1e12 3002 0a000003 1f90 0102030405060708", ackCtx,
		AddAddr{AddrID: 2, Addr: netip.MustParseAddr("10.0.0.3"), HasPort: true, Port: 8080, HMAC: keyA}},
	{"ADD_ADDR v4 echo", "1e08 3101 0a000002", ackCtx,
		AddAddr{Echo: true, AddrID: 1, Addr: netip.MustParseAddr("10.0.0.2")}},
	{"ADD_ADDR v4 echo port", "1e0a 3102 0a000003 1f90", ackCtx,
		AddAddr{Echo: true, AddrID: 2, Addr: netip.MustParseAddr("10.0.0.3"), HasPort: true, Port: 8080}},
	{"ADD_ADDR v6", "1e1c 3007 fd000000000000000000000000000002 0102030405060708", ackCtx,
		AddAddr{AddrID: 7, Addr: netip.MustParseAddr("fd00::2"), HMAC: keyA}},
	{"ADD_ADDR v6 port", "1e1e 3007 fd000000000000000000000000000002 01bb 0102030405060708", ackCtx,
		AddAddr{AddrID: 7, Addr: netip.MustParseAddr("fd00::2"), HasPort: true, Port: 443, HMAC: keyA}},
	{"ADD_ADDR v6 echo", "1e14 3107 fd000000000000000000000000000002", ackCtx,
		AddAddr{Echo: true, AddrID: 7, Addr: netip.MustParseAddr("fd00::2")}},
	{"ADD_ADDR v6 echo port", "1e16 3107 fd000000000000000000000000000002 01bb", ackCtx,
		AddAddr{Echo: true, AddrID: 7, Addr: netip.MustParseAddr("fd00::2"), HasPort: true, Port: 443}},
	{"REMOVE_ADDR one", "1e04 4003", ackCtx, RemoveAddr{N: 1, IDs: [MaxRemoveAddrIDs]uint8{3}}},
	{"REMOVE_ADDR three", "1e06 4001 0203", ackCtx, RemoveAddr{N: 3, IDs: [MaxRemoveAddrIDs]uint8{1, 2, 3}}},
	{"MP_PRIO backup", "1e03 51", ackCtx, MPPrio{Backup: true}},
	{"MP_PRIO normal", "1e03 50", ackCtx, MPPrio{}},
	{"MP_FAIL", "1e0c 6000 0102030405060708", ackCtx, MPFail{DSN: keyA}},
	{"MP_FASTCLOSE", "1e0c 7000 1112131415161718", rstCtx, MPFastClose{ReceiverKey: keyB}},
	{"MP_TCPRST transient middlebox", "1e04 8106", rstCtx, MPTCPRst{Flags: 1, Reason: TCPRstMiddlebox}},
	{"MP_TCPRST unspecified", "1e04 8000", rstCtx, MPTCPRst{}},
}

func TestCodecCases(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			b := mustHex(t, c.hex)
			for _, ctx := range []Context{c.ctx, AnyContext} {
				o, n, ok := Parse(b, ctx)
				if !ok || n != len(b) || o.Malformed {
					t.Fatalf("Parse(ctx %#x) = %+v, %d, %v", ctx, o, n, ok)
				}
				if got := decoded(&o); got != c.want {
					t.Fatalf("decoded %#v\nwant    %#v", got, c.want)
				}
			}
			if l := c.want.Len(); l != len(b) {
				t.Errorf("Len() = %d, want %d", l, len(b))
			}
			if got := c.want.Append(nil); !bytes.Equal(got, b) {
				t.Errorf("Append = %x, want %x", got, b)
			}
			// Append appends: it must keep what is in front.
			if got := c.want.Append([]byte{0xee}); got[0] != 0xee || !bytes.Equal(got[1:], b) {
				t.Errorf("Append to a non-empty slice = %x", got)
			}
		})
	}
}

// TestTruncationSweep: every proper prefix of a valid option either fails
// to parse or is malformed; it never decodes as a valid option of its
// subtype at a length that cannot be its own.
func TestTruncationSweep(t *testing.T) {
	for _, c := range codecCases {
		b := mustHex(t, c.hex)
		for i := 0; i < len(b); i++ {
			p := append([]byte(nil), b[:i]...)
			if o, _, ok := Parse(p, c.ctx); ok && !o.Malformed {
				// The only way a prefix parses is with its length byte
				// pointing inside it, which cannot be for a prefix of b.
				t.Errorf("%s: prefix of %d bytes parsed as %+v", c.name, i, o)
			}
			// And with the length byte rewritten to fit, the prefix must
			// be judged on its own length, never panic.
			if i >= 2 {
				p[1] = byte(i)
				o, _, _ := Parse(p, c.ctx)
				_ = decoded(&o)
			}
		}
	}
}

// malformedCases match no variant for their length and segment: they must
// be reported as malformed (and ignored by a stack), never guessed.
var malformedCases = []struct {
	name string
	hex  string
	ctx  Context
}{
	{"MP_CAPABLE SYN with key on SYN (v0 layout)", "1e0c 0081 0102030405060708", synCtx},
	{"MP_CAPABLE 4 on SYN/ACK", "1e04 0101", synackCtx},
	{"MP_CAPABLE 20 on data", "1e14 0101 0102030405060708 1112131415161718", dataCtx},
	{"MP_CAPABLE 22 without payload", "1e16 0101 0102030405060708 1112131415161718 05b4", ackCtx},
	{"MP_CAPABLE odd length", "1e05 0101 00", synCtx},
	{"MP_CAPABLE 23", "1e17 0101 0102030405060708 1112131415161718 05b4 00", AnyContext},
	{"MP_JOIN SYN length on ACK", "1e0c 1105 66840dda a1a2a3a4", ackCtx},
	{"MP_JOIN ACK length on SYN", "1e18 1000 53037f2899475529844115fd07e665d23d3554fb", synCtx},
	{"MP_JOIN 13", "1e0d 1105 66840dda a1a2a3a4 00", AnyContext},
	{"DSS length short of flags", "1e08 2004 aabbccdd", dataCtx},
	{"DSS length long", "1e0a 2001 01020304 0000", ackCtx},
	{"DSS checksum without mapping", "1e0a 2001 01020304 1234", ackCtx},
	{"DSS 3 bytes", "1e03 20", ackCtx},
	{"ADD_ADDR 17", "1e11 3001 0a000002 4e42b6a25d2d16fb 00", ackCtx},
	{"ADD_ADDR echo with hmac length", "1e10 3101 0a000002 4e42b6a25d2d16fb", ackCtx},
	{"ADD_ADDR no hmac without echo", "1e08 3001 0a000002", ackCtx},
	{"REMOVE_ADDR empty", "1e03 40", ackCtx},
	{"MP_PRIO 4", "1e04 5100", ackCtx},
	{"MP_FAIL 11", "1e0b 6000 01020304050607", ackCtx},
	{"MP_FASTCLOSE 13", "1e0d 7000 1112131415161718 00", rstCtx},
	{"MP_TCPRST without RST", "1e04 8106", ackCtx},
	{"MP_TCPRST 5", "1e05 8106 00", rstCtx},
}

func TestMalformed(t *testing.T) {
	for _, c := range malformedCases {
		t.Run(c.name, func(t *testing.T) {
			b := mustHex(t, c.hex)
			o, n, ok := Parse(b, c.ctx)
			if !ok || n != len(b) {
				t.Fatalf("Parse = %v, %d; want a parsed (malformed) option of %d bytes", ok, n, len(b))
			}
			if !o.Malformed {
				t.Fatalf("not reported as malformed: %+v", o)
			}
			if o.Valid(o.Subtype) {
				t.Fatal("Valid() true for a malformed option")
			}
			// Typed accessors of a malformed option give zero values.
			if d := decoded(&o); d != zeroOf(o.Subtype) {
				t.Fatalf("typed accessor of a malformed option returned %#v", d)
			}
		})
	}
}

func TestUnknownAndExperimental(t *testing.T) {
	for _, h := range []string{"1e05 9012 34", "1e03 a0", "1e06 f0aa bbcc"} {
		b := mustHex(t, h)
		o, n, ok := Parse(b, ackCtx)
		if !ok || n != len(b) || o.Malformed {
			t.Fatalf("%s: Parse = %+v %d %v; want reported, not malformed", h, o, n, ok)
		}
		if !bytes.Equal(o.Raw, b) {
			t.Fatalf("%s: Raw = %x", h, o.Raw)
		}
	}
	if SubtypeExperimental.String() != "MP_EXPERIMENTAL" || Subtype(9).String() != "UNKNOWN" {
		t.Fatal("subtype names")
	}
}

func TestParseRejectsUnreadable(t *testing.T) {
	for _, h := range []string{"", "1e", "1e02", "1e0220", "1e05 2001", "0204 05b4", "1e00 20"} {
		b := mustHex(t, h)
		if o, n, ok := Parse(b, AnyContext); ok {
			t.Errorf("Parse(%s) = %+v, %d, true; want !ok", h, o, n)
		}
	}
}

func TestCapableUsable(t *testing.T) {
	cases := []struct {
		c    MPCapable
		want bool
	}{
		{MPCapable{Variant: CapableSYN, Version: 1, Flags: 0x01}, true},
		{MPCapable{Variant: CapableSYN, Version: 2, Flags: 0x81}, true}, // a newer version may be offered in the SYN
		{MPCapable{Variant: CapableSYN, Version: 0, Flags: 0x01}, false},
		{MPCapable{Variant: CapableSYNACK, Version: 2, Flags: 0x01}, false},
		{MPCapable{Variant: CapableSYNACK, Version: 1, Flags: 0x00}, false}, // no H
		{MPCapable{Variant: CapableSYNACK, Version: 1, Flags: 0x41}, false}, // B set
		{MPCapable{Variant: CapableSYNACK, Version: 1, Flags: 0x03}, false}, // unknown crypto bit
		{MPCapable{Variant: CapableACK, Version: 1, Flags: 0xa1}, true},     // A and C are fine
		{MPCapable{Variant: CapableDataChecksum, Version: 1, Flags: 0x81}, true},
	}
	for _, c := range cases {
		if got := c.c.Usable(); got != c.want {
			t.Errorf("%+v.Usable() = %v, want %v", c.c, got, c.want)
		}
	}
}

func TestContextOf(t *testing.T) {
	if ContextOf(0x02, 0) != ContextSYN || ContextOf(0x12, 0) != ContextSYN|ContextACK ||
		ContextOf(0x10, 1) != ContextACK|ContextPayload || ContextOf(0x14, 0) != ContextACK|ContextRST {
		t.Fatal("ContextOf")
	}
}

func TestInvalidValuesAppendNothing(t *testing.T) {
	for _, v := range []builder{MPCapable{Variant: 5}, MPJoin{Variant: 13}, AddAddr{}, RemoveAddr{}} {
		if b := v.Append(nil); len(b) != 0 {
			t.Errorf("%#v appended %x", v, b)
		}
	}
	if _, ok := NewRemoveAddr(); ok {
		t.Error("NewRemoveAddr() with no IDs")
	}
	if _, ok := NewRemoveAddr(make([]uint8, MaxRemoveAddrIDs+1)...); ok {
		t.Error("NewRemoveAddr with too many IDs")
	}
	r, ok := NewRemoveAddr(1, 2)
	if !ok || !bytes.Equal(r.Append(nil), mustHex(t, "1e05 40 0102")) {
		t.Errorf("NewRemoveAddr(1,2) = %+v", r)
	}
}

func TestSubtypeKnown(t *testing.T) {
	for s := Subtype(0); s < 16; s++ {
		want := s <= 8 || s == 15
		if s.Known() != want {
			t.Errorf("%d.Known() = %v", s, s.Known())
		}
	}
}

func TestTCPRstReasons(t *testing.T) {
	for r := uint8(0); r <= maxKnownTCPRstReason; r++ {
		if TCPRstReasonString(r) == "unknown reason" {
			t.Errorf("reason %d has no name", r)
		}
	}
	if TCPRstReasonString(200) != "unknown reason" {
		t.Error("reason 200")
	}
	if !(MPTCPRst{Flags: 1}).Transient() || (MPTCPRst{Flags: 8}).Transient() {
		t.Error("Transient")
	}
}

// TestDecodeDSS: DecodeDSS, the hot paths' DSS, decodes every flag
// combination as DSS does and clears its output for an option that is not
// a well-formed DSS.
func TestDecodeDSS(t *testing.T) {
	for flags := 0; flags < 32; flags++ {
		for _, csum := range []bool{false, true} {
			in := DSS{DataFIN: flags&16 != 0, HasAck: flags&1 != 0, Ack64: flags&3 == 3,
				HasMapping: flags&4 != 0, DSN64: flags&12 == 12, DataAck: 0x0102030405060708, DSN: 0x1112131415161718,
				SubflowSeq: 7, DataLen: 1400, HasChecksum: csum && flags&4 != 0, Checksum: 0xbeef}
			if !in.HasAck {
				in.DataAck = 0
			} else if !in.Ack64 {
				in.DataAck &= 0xffffffff
			}
			if !in.HasMapping {
				in.DSN, in.SubflowSeq, in.DataLen, in.Checksum = 0, 0, 0, 0
			} else if !in.DSN64 {
				in.DSN &= 0xffffffff
			}
			if !in.HasChecksum {
				in.Checksum = 0
			}
			o, _, ok := Parse(in.Append(nil), dataCtx)
			if !ok {
				t.Fatalf("%+v: not parsed", in)
			}
			var d DSS
			if !o.DecodeDSS(&d) || d != in || o.DSS() != in || d.Flags() != in.Flags() {
				t.Errorf("flags %#x checksum %v: DecodeDSS %+v, DSS %+v, want %+v", flags, csum, d, o.DSS(), in)
			}
		}
	}
	d := DSS{HasAck: true, DataAck: 9}
	o, _, _ := Parse(MPPrio{Backup: true}.Append(nil), ackCtx)
	if o.DecodeDSS(&d) || d != (DSS{}) {
		t.Errorf("MP_PRIO decoded as DSS: %+v", d)
	}
}
