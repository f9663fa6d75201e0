package options

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// referenceDSSChecksum computes the DSS checksum the plain way: RFC 1071
// over the pseudo-header followed by the whole payload.
func referenceDSSChecksum(dsn uint64, ssn uint32, dataLen, csum uint16, payload []byte) uint16 {
	b := make([]byte, 16, 16+len(payload))
	binary.BigEndian.PutUint64(b, dsn)
	binary.BigEndian.PutUint32(b[8:], ssn)
	binary.BigEndian.PutUint16(b[12:], dataLen)
	binary.BigEndian.PutUint16(b[14:], csum)
	b = append(b, payload...)
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestDSSChecksumAcrossSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 500; iter++ {
		payload := make([]byte, rng.IntN(3000))
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		dsn, ssn, l := rng.Uint64(), rng.Uint32(), uint16(len(payload))
		want := referenceDSSChecksum(dsn, ssn, l, 0, payload)

		// Feed the payload in random pieces, odd lengths included.
		var c DSSChecksum
		for p := payload; len(p) > 0; {
			n := 1 + rng.IntN(len(p))
			c.Add(p[:n])
			p = p[n:]
		}
		got := c.Sum(dsn, ssn, l)
		if got != want {
			t.Fatalf("iter %d: Sum = %04x, want %04x (len %d)", iter, got, want, len(payload))
		}
		if !c.Verify(dsn, ssn, l, got) {
			t.Fatalf("iter %d: Verify rejects its own sum", iter)
		}
		if c.Verify(dsn, ssn, l, got^0x0100) || c.Verify(dsn+1, ssn, l, got) {
			t.Fatalf("iter %d: Verify accepts a wrong sum", iter)
		}
		// The receiver's check over everything including the checksum
		// is the complement of zero.
		if referenceDSSChecksum(dsn, ssn, l, got, payload) != 0 {
			t.Fatalf("iter %d: full check not zero", iter)
		}
	}
}

func TestPartialSumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 200; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		var s uint32
		for i := 0; i+1 < n; i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if n%2 == 1 {
			s += uint32(b[n-1]) << 8
		}
		for s > 0xffff {
			s = s&0xffff + s>>16
		}
		if got := PartialSum(b); got != uint16(s) && !(got == 0xffff && s == 0) && !(got == 0 && s == 0xffff) {
			t.Fatalf("PartialSum(%d bytes) = %04x, want %04x", n, got, s)
		}
	}
	// All-ones data: the carries must wrap around.
	b := make([]byte, 4096)
	for i := range b {
		b[i] = 0xff
	}
	if PartialSum(b) != 0xffff {
		t.Fatalf("PartialSum(ones) = %04x", PartialSum(b))
	}
}

func TestDSSChecksumReset(t *testing.T) {
	var c DSSChecksum
	c.Add([]byte{1, 2, 3})
	c.Reset()
	if c != (DSSChecksum{}) {
		t.Fatal("Reset")
	}
}
