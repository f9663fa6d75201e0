package options

// DSN is a 64-bit data sequence number (RFC 8684 §3.3). Comparisons are
// wrap-safe like TCP's, although a 64-bit space does not wrap in practice.
type DSN uint64

// LessThan reports whether a comes before b.
func (a DSN) LessThan(b DSN) bool { return int64(a-b) < 0 }

// LessThanEq reports whether a comes before b or equals it.
func (a DSN) LessThanEq(b DSN) bool { return a == b || a.LessThan(b) }

// Add returns a advanced by n.
func (a DSN) Add(n uint64) DSN { return a + DSN(n) }

// Sub returns the distance from b to a (a must not come before b).
func (a DSN) Sub(b DSN) uint64 { return uint64(a - b) }

// InWindow reports whether a lies in [first, first+size).
func (a DSN) InWindow(first DSN, size uint64) bool { return uint64(a-first) < size }

// Max returns the later of a and b.
func (a DSN) Max(b DSN) DSN {
	if a.LessThan(b) {
		return b
	}
	return a
}

// ExpandSeq returns the 64-bit sequence number whose low 32 bits are low and
// that lies closest to ref. A DSS may carry its DSN and data ACK in 32 bits
// (§3.3); the receiver expands them against its 64-bit state: the next
// expected DSN for a mapping, the last data ACK for an ACK (Linux:
// __mptcp_expand_seq).
func ExpandSeq(ref uint64, low uint32) uint64 {
	return ref + uint64(int64(int32(low-uint32(ref))))
}

// SubflowSeq is a 32-bit subflow (TCP) sequence number with wrap-safe
// comparisons (RFC 9293 §3.4).
type SubflowSeq uint32

// LessThan reports whether a comes before b.
func (a SubflowSeq) LessThan(b SubflowSeq) bool { return int32(a-b) < 0 }

// LessThanEq reports whether a comes before b or equals it.
func (a SubflowSeq) LessThanEq(b SubflowSeq) bool { return a == b || a.LessThan(b) }

// Add returns a advanced by n.
func (a SubflowSeq) Add(n uint32) SubflowSeq { return a + SubflowSeq(n) }

// Sub returns the distance from b to a.
func (a SubflowSeq) Sub(b SubflowSeq) uint32 { return uint32(a - b) }

// InWindow reports whether a lies in [first, first+size).
func (a SubflowSeq) InWindow(first SubflowSeq, size uint32) bool { return uint32(a-first) < size }
