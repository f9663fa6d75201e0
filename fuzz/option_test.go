package fuzz

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/umptcp/umptcp/options"
)

// FuzzParseOption feeds arbitrary bytes and an arbitrary segment context to
// options.Parse. Parse must never panic and must return either nothing or
// an option that is exactly the prefix its length byte names. A well-formed
// option must survive decode → Append → Parse → decode: equal values, equal
// bytes, Len equal to what Append wrote, and the canonical form of the
// input (reserved bits cleared) rebuilt byte for byte.
func FuzzParseOption(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, ctxByte byte) {
		if len(data) > 260 {
			t.Skip("longer than any option") // the length byte counts at most 255
		}
		ctx := options.Context(ctxByte)
		// A full slice expression: reading past len(data) would panic.
		data = data[:len(data):len(data)]
		o, n, ok := options.Parse(data, ctx)
		if !ok {
			if n != 0 || o.Raw != nil || o.Subtype != 0 || o.Malformed {
				t.Fatalf("failed Parse returned %+v, %d", o, n)
			}
			wantOK := len(data) >= 3 && data[0] == options.Kind && data[1] >= 3 && int(data[1]) <= len(data)
			if wantOK {
				t.Fatalf("Parse refused a readable option %x", data)
			}
			return
		}
		if len(data) < 3 || data[0] != options.Kind || n != int(data[1]) || n < 3 || n > len(data) {
			t.Fatalf("Parse(%x) spans %d bytes", data, n)
		}
		if len(o.Raw) != n || o.Len() != n || unsafe.SliceData(o.Raw) != unsafe.SliceData(data) {
			t.Fatalf("Raw %x is not the first %d bytes of the input", o.Raw, n)
		}
		if cap(o.Raw) != n {
			t.Fatalf("Raw lets a caller write past the option: cap %d, len %d", cap(o.Raw), n)
		}
		if o.Subtype != options.Subtype(data[2]>>4) {
			t.Fatalf("subtype %v, want %v", o.Subtype, data[2]>>4)
		}
		if o.Malformed && !o.Subtype.Known() {
			t.Fatalf("unknown subtype %v reported malformed", o.Subtype)
		}

		// Accessors of other subtypes, and every accessor of a malformed
		// option, return zero values.
		acc := accessors(&o)
		for i, v := range acc {
			if (o.Malformed || options.Subtype(i) != o.Subtype) && v != zeroAccessors[i] {
				t.Fatalf("accessor %d of %v (malformed %v) returned %#v", i, o.Subtype, o.Malformed, v)
			}
		}
		if o.Malformed {
			if o.Valid(o.Subtype) {
				t.Fatal("Valid() on a malformed option")
			}
			return
		}
		v := decoded(&o)
		if v == nil {
			return // MP_EXPERIMENTAL or a subtype without a layout: reported as is
		}
		checkRoundTrip(t, v, data[:n], ctx)
	})
}

// checkRoundTrip checks the round trip of the decoded value v of the
// well-formed option raw, parsed in ctx.
func checkRoundTrip(t *testing.T, v builder, raw []byte, ctx options.Context) {
	t.Helper()
	b1 := v.Append(nil)
	if len(b1) != v.Len() {
		t.Fatalf("%#v: Len %d, Append wrote %d bytes", v, v.Len(), len(b1))
	}
	if len(b1) != len(raw) {
		t.Fatalf("%#v decoded from %d bytes re-encodes to %d: %x → %x", v, len(raw), len(b1), raw, b1)
	}
	if want := canonical(raw); !bytes.Equal(b1, want) {
		t.Fatalf("rebuilt %x, want the canonical input %x (input %x, value %#v)", b1, want, raw, v)
	}
	prefixed := v.Append([]byte{0xee, 0xdd})
	if !bytes.Equal(prefixed[:2], []byte{0xee, 0xdd}) || !bytes.Equal(prefixed[2:], b1) {
		t.Fatalf("Append after a prefix wrote %x", prefixed)
	}
	o2, n2, ok := options.Parse(b1, ctx)
	if !ok || n2 != len(b1) || o2.Malformed || o2.Subtype != options.Subtype(raw[2]>>4) {
		t.Fatalf("rebuilt %x does not parse in ctx %#x: %+v %d %v", b1, ctx, o2, n2, ok)
	}
	v2 := decoded(&o2)
	if v2 != v {
		t.Fatalf("second decode differs:\n first %#v\nsecond %#v", v, v2)
	}
	if b2 := v2.Append(nil); !bytes.Equal(b1, b2) {
		t.Fatalf("second build differs: %x vs %x", b1, b2)
	}
}
