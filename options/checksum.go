package options

import (
	"encoding/binary"
	"math/bits"
)

// DSSChecksum accumulates the DSS checksum of one mapping (RFC 8684 §3.3.1):
// the one's-complement sum (RFC 1071) of the mapped payload, which may
// arrive in several segments of any length, and, at the end, of a
// pseudo-header {DSN (always 64 bits), subflow sequence number, data-level
// length, zero}. The zero value is ready to use.
type DSSChecksum struct {
	sum uint64
	odd bool // an odd number of bytes has been added so far
}

// Reset starts a new mapping.
func (c *DSSChecksum) Reset() { *c = DSSChecksum{} }

// Add adds the next payload bytes of the mapping.
func (c *DSSChecksum) Add(b []byte) {
	c.AddPartial(PartialSum(b), len(b))
}

// AddPartial adds n payload bytes whose one's-complement sum, taken as if
// they started at an even offset, is partial (as PartialSum returns, or as
// a TCP stack computed it for the segment's own checksum). It lets the
// payload be summed once for both the TCP and the DSS checksum.
func (c *DSSChecksum) AddPartial(partial uint16, n int) {
	p := uint64(partial)
	if c.odd {
		// Bytes that start at an odd offset land in the other half of each
		// 16-bit word: the sum of the same bytes, byte-swapped (RFC 1071 §2).
		p = uint64(bits.ReverseBytes16(partial))
	}
	c.sum += p
	if n%2 == 1 {
		c.odd = !c.odd
	}
}

// Sum returns the checksum to send for a mapping of the bytes added so far:
// the complement of the sum of the pseudo-header (checksum field zero) and
// the payload. dataLen counts a DATA_FIN (§3.3.3, as Linux does).
func (c *DSSChecksum) Sum(dsn uint64, subflowSeq uint32, dataLen uint16) uint16 {
	return ^fold(c.sum + pseudoSum(dsn, subflowSeq, dataLen, 0))
}

// Verify reports whether csum, received with the mapping, matches the bytes
// added so far: the sum over pseudo-header (with csum in place) and payload
// must be all ones (Linux: validate_data_csum).
func (c *DSSChecksum) Verify(dsn uint64, subflowSeq uint32, dataLen, csum uint16) bool {
	return fold(c.sum+pseudoSum(dsn, subflowSeq, dataLen, csum)) == 0xffff
}

func pseudoSum(dsn uint64, subflowSeq uint32, dataLen, csum uint16) uint64 {
	return dsn>>48 + dsn>>32&0xffff + dsn>>16&0xffff + dsn&0xffff +
		uint64(subflowSeq>>16) + uint64(subflowSeq&0xffff) + uint64(dataLen) + uint64(csum)
}

// PartialSum returns the one's-complement sum of b as 16-bit big-endian
// words (an odd last byte is padded with zero), folded but not complemented.
func PartialSum(b []byte) uint16 {
	var s, carry uint64
	for len(b) >= 32 {
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b), carry)
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b[8:]), carry)
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b[16:]), carry)
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	s, carry = bits.Add64(s, carry, 0)
	// 64-bit words fold to 16 bits because 2^16 ≡ 1 (mod 2^16-1).
	t := s>>48 + s>>32&0xffff + s>>16&0xffff + s&0xffff + carry
	for len(b) >= 2 {
		t += uint64(be16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		t += uint64(b[0]) << 8
	}
	return fold(t)
}

func fold(s uint64) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
