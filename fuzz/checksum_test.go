package fuzz

import (
	"encoding/binary"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// naiveDSSSum is RFC 1071 done the slow, obvious way over the DSS checksum's
// input laid out in one buffer (RFC 8684 §3.3.1): the pseudo-header {DSN as
// 64 bits, subflow sequence number, data-level length, checksum field}
// followed by the whole payload, summed as 16-bit big-endian words with an
// odd last byte padded with zero, carries folded back in. It returns the
// folded sum, not complemented.
func naiveDSSSum(dsn uint64, ssn uint32, dataLen, csum uint16, payload []byte) uint16 {
	buf := make([]byte, 16, 16+len(payload)+1)
	binary.BigEndian.PutUint64(buf[0:], dsn)
	binary.BigEndian.PutUint32(buf[8:], ssn)
	binary.BigEndian.PutUint16(buf[12:], dataLen)
	binary.BigEndian.PutUint16(buf[14:], csum)
	buf = append(buf, payload...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var sum uint32
	for i := 0; i < len(buf); i += 2 {
		sum += uint32(buf[i])<<8 | uint32(buf[i+1])
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// FuzzDSSChecksum splits a payload at arbitrary points and feeds the pieces
// to options.DSSChecksum, some through Add, some through AddPartial with
// PartialSum (as a stack that reuses the TCP checksum's sum would). The
// result must equal the naive RFC 1071 sum over pseudo-header and whole
// payload, and Verify must agree with the naive check for the right
// checksum and for an arbitrary other one.
func FuzzDSSChecksum(f *testing.F) {
	var c options.DSSChecksum // reused across inputs through Reset
	f.Fuzz(func(t *testing.T, payload, cuts []byte, dsn uint64, ssn uint32, dataLen, other uint16) {
		if len(payload) > 4096 || len(cuts) > 64 {
			t.Skip("input too long") // long inputs only slow minimization (quadratic)
		}
		c.Reset()
		rest := payload
		for _, cut := range cuts {
			n := min(int(cut&0x7f), len(rest))
			if cut&0x80 != 0 {
				c.AddPartial(options.PartialSum(rest[:n]), n)
			} else {
				c.Add(rest[:n])
			}
			rest = rest[n:]
		}
		c.Add(rest)

		want := ^naiveDSSSum(dsn, ssn, dataLen, 0, payload)
		got := c.Sum(dsn, ssn, dataLen)
		if got != want {
			t.Fatalf("Sum = %#04x, naive %#04x (payload %d bytes, cuts %x)", got, want, len(payload), cuts)
		}
		if !c.Verify(dsn, ssn, dataLen, got) {
			t.Fatalf("Verify rejects its own Sum %#04x", got)
		}
		wantOK := naiveDSSSum(dsn, ssn, dataLen, other, payload) == 0xffff
		if ok := c.Verify(dsn, ssn, dataLen, other); ok != wantOK {
			t.Fatalf("Verify(%#04x) = %v, naive %v (right sum %#04x)", other, ok, wantOK, got)
		}
		var whole options.DSSChecksum
		whole.Add(payload)
		if s := whole.Sum(dsn, ssn, dataLen); s != got {
			t.Fatalf("one Add gives %#04x, pieces %#04x", s, got)
		}
		if p, n := options.PartialSum(payload), naiveDSSSum(0, 0, 0, 0, payload); p != n && !(p == 0xffff && n == 0) && !(p == 0 && n == 0xffff) {
			t.Fatalf("PartialSum = %#04x, naive %#04x", p, n)
		}
	})
}
