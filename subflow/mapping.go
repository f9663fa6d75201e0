package subflow

import (
	"github.com/umptcp/umptcp/options"
)

// MaxMappingLen is the longest mapping a DSS can describe: the data-level
// length is 16 bits, and 0 means the infinite mapping (RFC 8684 §3.3.1).
const MaxMappingLen = 0xffff

// TXMapping says that the subflow bytes [SSN, SSN+Len) carry the data
// bytes [DSN, DSN+Len). SSN is relative to the subflow's initial sequence
// number: the first data byte is 1 (§3.3.1).
type TXMapping struct {
	SSN uint32
	DSN uint64
	Len uint16
	// Sum is the one's-complement sum of the mapped payload, for the DSS
	// checksum; only kept when checksums are in use.
	Sum options.DSSChecksum
}

// End returns the relative subflow sequence number after the mapping.
func (m *TXMapping) End() uint32 { return m.SSN + uint32(m.Len) }

// txTable is the ordered list of mappings of the bytes a subflow has been
// given to send and that its peer has not acknowledged at the subflow level
// yet: gVisor retransmits from its own buffer and the shim must stamp every
// retransmission with the same mapping (§3.3.1). It is a ring that reuses its
// storage.
type txTable struct {
	ring  []TXMapping
	head  int
	count int
	hint  int // index (from head) of the mapping find returned last
	// released is the last mapping ackedTo dropped: it still tells the
	// DSN of the last acknowledged bytes (for a window probe).
	released TXMapping
}

func (t *txTable) len() int { return t.count }

func (t *txTable) at(i int) *TXMapping { return &t.ring[(t.head+i)%len(t.ring)] }

func (t *txTable) last() *TXMapping {
	if t.count == 0 {
		return nil
	}
	return t.at(t.count - 1)
}

func (t *txTable) push(m TXMapping) {
	if t.count == len(t.ring) {
		n := max(16, 2*len(t.ring))
		ring := make([]TXMapping, n)
		for i := 0; i < t.count; i++ {
			ring[i] = *t.at(i)
		}
		t.ring, t.head = ring, 0
	}
	t.ring[(t.head+t.count)%len(t.ring)] = m
	t.count++
}

// insertAt puts m at index i, moving the mappings from i on back by one.
func (t *txTable) insertAt(i int, m TXMapping) {
	t.push(TXMapping{})
	for k := t.count - 1; k > i; k-- {
		*t.at(k) = *t.at(k - 1)
	}
	*t.at(i) = m
}

// removeAt drops the mapping at index i, moving the ones after it forward.
func (t *txTable) removeAt(i int) {
	for k := i; k < t.count-1; k++ {
		*t.at(k) = *t.at(k + 1)
	}
	*t.at(t.count - 1) = TXMapping{}
	t.count--
}

// recut makes the mapping at index i, with the bytes of the mappings after
// it that continue it, cover exactly n bytes (fewer where they stop
// continuing it), and the next mapping start after them. The caller makes
// sure that TCP sent none of these bytes yet, so no segment carried these
// mappings: every segment of a mapping must carry it unchanged (§3.3.1),
// and no peer has seen them. Their checksums are not kept: checksums must
// be off.
func (t *txTable) recut(i, n int) {
	m := t.at(i)
	n = min(n, MaxMappingLen)
	for int(m.Len) < n && i+1 < t.count {
		next := t.at(i + 1)
		if next.SSN != m.End() || next.DSN != m.DSN+uint64(m.Len) {
			break
		}
		k := min(n-int(m.Len), int(next.Len))
		m.Len += uint16(k)
		next.SSN += uint32(k)
		next.DSN += uint64(k)
		next.Len -= uint16(k)
		if next.Len == 0 {
			t.removeAt(i + 1)
		}
	}
	if int(m.Len) > n {
		rest := TXMapping{SSN: m.SSN + uint32(n), DSN: m.DSN + uint64(n), Len: m.Len - uint16(n)}
		m.Len = uint16(n)
		t.insertAt(i+1, rest)
	}
	t.hint = i
}

// find returns the mapping that holds relative sequence number ssn, or nil.
// New data is sent from the last mappings and retransmissions from the
// first: try the hint (the last one found), then search: the table holds a
// send buffer's worth of mappings, ordered by SSN.
func (t *txTable) find(ssn uint32) *TXMapping {
	if t.count == 0 {
		return nil
	}
	if t.hint < t.count {
		if m := t.at(t.hint); options.SubflowSeq(ssn).InWindow(options.SubflowSeq(m.SSN), uint32(m.Len)) {
			return m
		}
	}
	first := t.at(0).SSN
	lo, hi := 0, t.count
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		// Offsets from the first mapping order the ring without wrap issues.
		if t.at(mid).SSN-first <= ssn-first {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil
	}
	m := t.at(lo - 1)
	if !options.SubflowSeq(ssn).InWindow(options.SubflowSeq(m.SSN), uint32(m.Len)) {
		return nil
	}
	t.hint = lo - 1
	return m
}

// findReleased returns the last released mapping if it holds relative
// sequence number ssn, or nil.
func (t *txTable) findReleased(ssn uint32) *TXMapping {
	if r := &t.released; r.Len > 0 && options.SubflowSeq(ssn).InWindow(options.SubflowSeq(r.SSN), uint32(r.Len)) {
		return r
	}
	return nil
}

// ackedTo drops the mappings wholly before relative sequence number una.
func (t *txTable) ackedTo(una uint32) {
	for t.count > 0 {
		m := t.at(0)
		if options.SubflowSeq(una).LessThan(options.SubflowSeq(m.End())) {
			return
		}
		t.released = *m
		*m = TXMapping{}
		t.head = (t.head + 1) % len(t.ring)
		t.count--
		if t.hint > 0 {
			t.hint--
		}
	}
}

// RXMapping is a mapping received from the peer: subflow bytes
// [SSN, SSN+Len) carry data bytes [DSN, DSN+Len). A DATA_FIN that ends the
// mapping takes one more data sequence number but no subflow byte, so Len
// here excludes it (§3.3.3).
type RXMapping struct {
	SSN         uint32
	DSN         uint64
	Len         uint32
	DataFIN     bool
	HasChecksum bool
	Checksum    uint16
	// WireLen is the data-level length as on the wire (including a DATA_FIN),
	// which the DSS checksum's pseudo-header covers.
	WireLen uint16
	// Infinite marks the mapping of a fallback (§3.7): every byte from SSN
	// on, plain TCP, never checksummed.
	Infinite bool
}

// End returns the relative subflow sequence number after the mapping.
func (m *RXMapping) End() uint32 { return m.SSN + m.Len }

// same reports whether two mappings describe the same bytes the same way,
// as retransmissions must (Linux accepts only an identical map over the
// current one: subflow.c get_mapping_status).
func (m *RXMapping) same(o *RXMapping) bool {
	return m.SSN == o.SSN && m.DSN == o.DSN && m.Len == o.Len && m.DataFIN == o.DataFIN &&
		m.HasChecksum == o.HasChecksum && (!m.HasChecksum || m.Checksum == o.Checksum)
}

// rxTable holds received mappings not yet consumed by the reader, ordered by
// subflow sequence number, bounded by a limit the peer cannot raise.
type rxTable struct {
	ring  []RXMapping
	head  int
	count int
	limit int
}

func (t *rxTable) at(i int) *RXMapping { return &t.ring[(t.head+i)%len(t.ring)] }

// RXResult says what became of a received mapping.
type RXResult uint8

// Outcomes of adding a received mapping.
const (
	RXAdded     RXResult = iota // new mapping stored
	RXDuplicate                 // identical to one already stored (a retransmission)
	RXConsumed                  // covers only bytes the reader already took
	RXConflict                  // overlaps a stored mapping differently: dropped (DSSNotMatching)
	RXFull                      // table full: dropped (the peer maps in tiny pieces)
)

// add inserts m in order. It refuses a mapping that overlaps a stored one
// without being identical to it.
func (t *rxTable) add(m RXMapping, consumed uint32) RXResult {
	if m.Len > 0 && options.SubflowSeq(m.End()).LessThanEq(options.SubflowSeq(consumed)) {
		return RXConsumed
	}
	// Find the insertion point, checking overlaps on the way. Most
	// mappings repeat the last one (every segment of a mapping carries it)
	// or start after it (new data in order): no need to walk the table.
	i := 0
	if t.count > 0 {
		last := t.at(t.count - 1)
		if last.same(&m) {
			return RXDuplicate
		}
		if m.Len > 0 && last.Len > 0 && !options.SubflowSeq(m.SSN).LessThan(options.SubflowSeq(last.End())) {
			i = t.count // after every mapping, overlapping none (they are ordered and disjoint)
		}
	}
	for ; i < t.count; i++ {
		o := t.at(i)
		if o.same(&m) {
			return RXDuplicate
		}
		if o.SSN == m.SSN && o.DSN == m.DSN && o.Len == m.Len && o.DataFIN != m.DataFIN {
			// The same bytes, once with the DATA_FIN and once without:
			// Linux sets the DATA_FIN on a mapping it sends again once
			// the application closed (mptcp_write_data_fin). The
			// DATA_FIN is reported on its own; the bytes are the same.
			o.DataFIN = o.DataFIN || m.DataFIN
			return RXDuplicate
		}
		if overlaps(o, &m) {
			return RXConflict
		}
		if options.SubflowSeq(m.SSN).LessThan(options.SubflowSeq(o.SSN)) {
			break
		}
	}
	if t.count >= t.limit {
		return RXFull
	}
	if t.count == len(t.ring) {
		n := min(max(16, 2*len(t.ring)), t.limit)
		ring := make([]RXMapping, n)
		for j := 0; j < t.count; j++ {
			ring[j] = *t.at(j)
		}
		t.ring, t.head = ring, 0
	}
	// Shift the tail up by one and insert.
	for j := t.count; j > i; j-- {
		*t.at(j) = *t.at(j - 1)
	}
	*t.at(i) = m
	t.count++
	return RXAdded
}

func overlaps(a, b *RXMapping) bool {
	if a.Len == 0 || b.Len == 0 {
		return a.SSN == b.SSN && a.Len == 0 && b.Len == 0
	}
	return options.SubflowSeq(a.SSN).LessThan(options.SubflowSeq(b.End())) &&
		options.SubflowSeq(b.SSN).LessThan(options.SubflowSeq(a.End()))
}

// find returns the mapping holding relative sequence number ssn, or nil.
func (t *rxTable) find(ssn uint32) *RXMapping {
	if i := t.index(ssn); i >= 0 {
		return t.at(i)
	}
	return nil
}

// index returns the index of the mapping holding relative sequence number
// ssn, or -1. Mappings are ordered by SSN and do not overlap: binary
// search, with offsets from the first one so that sequence wrap does not
// matter.
func (t *rxTable) index(ssn uint32) int {
	if t.count == 0 {
		return -1
	}
	first := t.at(0).SSN
	lo, hi := 0, t.count
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.at(mid).SSN-first <= ssn-first {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return -1
	}
	m := t.at(lo - 1)
	if !options.SubflowSeq(ssn).InWindow(options.SubflowSeq(m.SSN), m.Len) {
		return -1
	}
	return lo - 1
}

// consumedTo drops the mappings wholly before relative sequence number ssn.
func (t *rxTable) consumedTo(ssn uint32) {
	for t.count > 0 {
		m := t.at(0)
		if options.SubflowSeq(ssn).LessThan(options.SubflowSeq(m.End())) {
			return
		}
		*m = RXMapping{}
		t.head = (t.head + 1) % len(t.ring)
		t.count--
	}
}
