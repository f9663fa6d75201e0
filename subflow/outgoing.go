package subflow

import "github.com/umptcp/umptcp/options"

// Segment is the part of a TCP segment the MPTCP layer reads or writes.
type Segment struct {
	Flags      uint8
	Seq, Ack   uint32
	PayloadLen int
	// Window is the raw 16-bit window field (unscaled).
	Window uint16
	// HasTimestamp, TSVal and TSEcr echo the TCP timestamp option.
	HasTimestamp bool
	TSVal, TSEcr uint32
	// Rest marks the second part of a segment cut at a mapping boundary: it
	// is not counted again in the statistics.
	Rest bool
	// MSS is the largest payload of a segment on the wire (the GSO segment
	// size of a super-segment); 0 if unknown.
	MSS int
}

// ConnState is the connection-level state that outgoing options carry. The
// connection reads it without holding any subflow lock.
type ConnState struct {
	// DataAck is the next data sequence number expected from the peer;
	// DataAckOK is false until the peer's key (hence IDSN) is known.
	DataAck   uint64
	DataAckOK bool
	// DataFIN is set while our DATA_FIN (at DataFINSeq) is not acknowledged.
	DataFIN    bool
	DataFINSeq uint64
	// FastClose is set once the connection is being aborted (§3.5).
	FastClose bool
}

// AddTXMapping records that the next n bytes given to TCP on this subflow
// carry data from dsn on; partial is their one's-complement sum (see
// options.PartialSum), kept for the DSS checksum. It must be called before
// TCP can send the bytes. With extend set, the bytes are appended to the
// last mapping when they continue it, which is only allowed while TCP
// cannot have sent any of it: every segment of a mapping must carry it
// unchanged (§3.3.1). The caller keeps mappings within MaxMappingLen: the
// checksum of bytes cut in two could not be split. MapWrite makes these
// decisions itself, under the subflow's lock; writers use it.
func (s *Subflow) AddTXMapping(dsn uint64, n int, partial uint16, extend bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 || n > MaxMappingLen {
		panic("subflow: AddTXMapping with a length outside 1..MaxMappingLen")
	}
	s.addTXMapping(dsn, n, partial, extend)
}

func (s *Subflow) addTXMapping(dsn uint64, n int, partial uint16, extend bool) {
	if last := s.tx.last(); extend && last != nil && last.DSN+uint64(last.Len) == dsn &&
		int(last.Len)+n <= MaxMappingLen {
		last.Len += uint16(n)
		last.Sum.AddPartial(partial, n)
		s.sndWritten += uint32(n)
		return
	}
	m := TXMapping{SSN: s.sndWritten, DSN: dsn, Len: uint16(n)}
	m.Sum.AddPartial(partial, n)
	s.tx.push(m)
	s.sndWritten += uint32(n)
}

// MapWrite records the mappings of data, the next bytes given to TCP on
// this subflow, from dsn on (AddTXMapping, under one lock): it continues
// the last mapping while TCP has sent none of it, so that segments TCP
// coalesces from small writes need not be cut at each write's boundary
// (Linux collapses unsent writes the same way), and cuts mappings at
// mappingSize. With checksum set, each mapping keeps the partial sum of
// its bytes. It may run while TCP sends earlier bytes (gVisor copies a
// non-atomic write without its endpoint lock): deciding to extend and
// extending happen together here.
func (s *Subflow) MapWrite(dsn uint64, data []byte, checksum bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, dsn = s.skipCovered(data, dsn)
	size := s.mappingSize()
	for len(data) > 0 {
		k := min(len(data), size)
		extend := false
		if last := s.tx.last(); last != nil && s.unsent(last) {
			if room := size - int(last.Len); room > 0 {
				k, extend = min(k, room), true
			}
		}
		var partial uint16
		if checksum {
			partial = options.PartialSum(data[:k])
		}
		s.addTXMapping(dsn, k, partial, extend)
		data, dsn = data[k:], dsn+uint64(k)
	}
}

// skipCovered passes over the bytes of data that a mapping sent before
// UnwriteTX covers already: they map to the same DSNs (the writer goes on
// from where TCP's queue ended, at the data level too), and the mapping
// stays as sent (§3.3.1).
func (s *Subflow) skipCovered(data []byte, dsn uint64) ([]byte, uint64) {
	last := s.tx.last()
	if last == nil || !options.SubflowSeq(s.sndWritten).LessThan(options.SubflowSeq(last.End())) {
		return data, dsn
	}
	if want := last.DSN + uint64(s.sndWritten-last.SSN); want != dsn {
		panic("subflow: bytes written after UnwriteTX do not continue the data sequence of the mapping sent for them")
	}
	k := min(len(data), int(last.End()-s.sndWritten))
	s.sndWritten += uint32(k)
	return data[k:], dsn + uint64(k)
}

// UnwriteTX takes back the mappings of the bytes from relative sequence
// number end on, which TCP did not take after all (gVisor trims a
// non-atomic write when its send buffer shrank meanwhile): the next bytes
// given to TCP start at end. A mapping that a segment carried already
// stays as it is (§3.3.1), with the DSNs that the next bytes, the same
// data sequence, fill again (skipCovered). Mappings with checksums cannot
// be cut: writes with checksums are atomic and never trimmed.
func (s *Subflow) UnwriteTX(end uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !options.SubflowSeq(end).LessThan(options.SubflowSeq(s.sndWritten)) {
		return
	}
	s.sndWritten = end
	for s.tx.count > 0 {
		m := s.tx.last()
		if !options.SubflowSeq(end).LessThan(options.SubflowSeq(m.End())) || !s.unsent(m) {
			return
		}
		if options.SubflowSeq(m.SSN).LessThan(options.SubflowSeq(end)) {
			m.Len = uint16(end - m.SSN)
			return
		}
		s.tx.removeAt(s.tx.count - 1)
	}
}

// unsent reports whether no segment carrying bytes of m has passed
// Outgoing.
func (s *Subflow) unsent(m *TXMapping) bool {
	if !s.lastTX.valid {
		return true
	}
	return !options.SubflowSeq(m.SSN).LessThan(options.SubflowSeq(s.lastTX.seqNext - s.iss))
}

// mappingSize is the size a mapping of a long write is cut at: the
// largest multiple of the segment size that fits in MaxMappingLen, so that
// TCP's segments of a write do not straddle two mappings (each would have to
// be cut in two on the wire).
func (s *Subflow) mappingSize() int {
	if s.mss <= 0 || s.mss > MaxMappingLen {
		return MaxMappingLen
	}
	return MaxMappingLen / s.mss * s.mss
}

// NextTXSSN returns the relative sequence number of the next byte TCP will
// be given.
func (s *Subflow) NextTXSSN() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sndWritten
}

// Sent says which counted events the options of an outgoing segment carry,
// so that the caller can count them without parsing the options again.
type Sent uint8

// Events in outgoing options.
const (
	SentCapableSYN Sent = 1 << iota
	SentMPFail
	SentFastClose
	SentTCPRst
	SentInfiniteMapping
)

// Outgoing appends to dst the MPTCP options for a segment TCP is sending
// and returns them. When the segment's payload spans two mappings, split is
// the number of its payload bytes the returned options cover: the caller
// must send those bytes as a segment of their own and ask again for the rest.
// A negative split says that the first -split payload bytes (perhaps all)
// were acknowledged by the peer already and their mapping released (TCP
// retransmits from a view older than the ACK the shim saw): the caller
// drops them, sends nothing for them, and asks again for the rest.
func (s *Subflow) Outgoing(dst []byte, seg Segment, c ConnState) (opts []byte, split int, sent Sent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !seg.Rest {
		s.newFrom, s.newFromOK = s.lastTX.seqNext, s.lastTX.valid
		s.noteTX(&seg)
	}
	if seg.MSS > 0 && seg.MSS != s.mss {
		s.mss = seg.MSS
	}
	if seg.MSS > 0 && seg.PayloadLen > seg.MSS {
		s.gso = true
	}
	s.sent = 0
	opts, split = s.outgoing(dst, seg, c)
	return opts, split, s.sent
}

func (s *Subflow) outgoing(dst []byte, seg Segment, c ConnState) (opts []byte, split int) {
	if seg.Flags&FlagRST != 0 {
		if s.rstSent {
			// TCP answering a stray segment after our reset: a plain RST,
			// as Linux sends for a socket that is gone; the subflow's
			// reset was signalled once.
			return dst, 0
		}
		s.reset, s.rstSent = true, true
		return s.resetOptions(dst, c), 0
	}
	if s.fallback != NoFallback {
		return dst, 0
	}
	if seg.Flags&FlagSYN != 0 {
		s.iss, s.issOK = seg.Seq, true
		return s.synOptions(dst, seg), 0
	}
	if !s.established || !s.issOK {
		return dst, 0
	}

	rel := seg.Seq - s.iss
	// The initiator repeats its keys until the peer shows it has them: on
	// the third ACK (length 20) and, while unconfirmed, on the first data
	// segment and its retransmissions (length 22/24), which carry the
	// first mapping: DSN = IDSN+1, subflow sequence 1 (§3.1). Linux does
	// the same for segments that start at ISN+1 (mptcp_established_options_mp),
	// except that a DATA_FIN or a FIN takes precedence: the segment then
	// carries a DSS, or the DATA_FIN would never be on the wire.
	if s.role == Initiator && !s.fullyEstablished && rel == 1 && !c.DataFIN && seg.Flags&FlagFIN == 0 &&
		(seg.PayloadLen == 0 || s.tx.find(1) != nil) {
		return s.capableACK(dst, seg)
	}
	return s.dssOptions(dst, seg, rel, c)
}

func (s *Subflow) synOptions(dst []byte, seg Segment) []byte {
	flags := uint8(options.CapableFlagHMACSHA256)
	if seg.Flags&FlagACK == 0 {
		if s.role != Initiator {
			return dst
		}
		if s.wantChecksum {
			flags |= options.CapableFlagChecksum
		}
		s.sent |= SentCapableSYN
		return options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: flags}.Append(dst)
	}
	if s.role != Responder {
		return dst
	}
	if s.checksum {
		flags |= options.CapableFlagChecksum
	}
	return options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: flags, SenderKey: s.localKey}.Append(dst)
}

func (s *Subflow) capableFlags() uint8 {
	flags := uint8(options.CapableFlagHMACSHA256)
	if s.checksum {
		flags |= options.CapableFlagChecksum
	}
	return flags
}

func (s *Subflow) capableACK(dst []byte, seg Segment) ([]byte, int) {
	c := options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: s.capableFlags(),
		SenderKey: s.localKey, ReceiverKey: s.remoteKey}
	if seg.PayloadLen == 0 {
		return c.Append(dst), 0
	}
	m := s.tx.find(1)
	if m == nil || m.SSN != 1 {
		s.stats.TXNoMapping++
		return c.Append(dst), 0
	}
	c.Variant, c.DataLen = options.CapableData, m.Len
	if s.checksum {
		c.Variant, c.Checksum = options.CapableDataChecksum, m.Sum.Sum(m.DSN, m.SSN, m.Len)
	}
	return c.Append(dst), splitAt(m, 1, seg.PayloadLen)
}

// mayRecut reports whether the mappings of seg, which starts where mapping
// m does, may be cut again to fit it (txTable.recut, recutLen): seg
// carries only bytes never sent before and checksums are off. gVisor cuts
// GSO super-segments at its own size (about 64 KB, not a multiple of our
// mappings), and a short segment (a writer slower than TCP for a moment)
// shifts the full-sized segments after it against the mappings: fitting
// the mappings to the segments rather than cutting every segment that
// straddles a mapping boundary halves the packets through a TUN device
// with TSO, and keeps the splits to one per shift otherwise. Not before
// the segment size is known.
func (s *Subflow) mayRecut(seg Segment, m *TXMapping) bool {
	if s.checksum || s.infinite || s.mss <= 0 {
		return false
	}
	return !s.newFromOK || !options.SubflowSeq(seg.Seq).LessThan(options.SubflowSeq(s.newFrom))
}

// recutLen is the length to give the mapping of seg (see mayRecut): its
// payload exactly on a subflow whose TCP sends GSO super-segments, since
// the next segment, of any size, starts after it (a short segment mapped
// with more would make the super-segments after it straddle mapping
// boundaries: about one split per short segment). On a link without GSO,
// a segment's payload and as many whole MSS-sized segments after it as
// fit, so that TCP's following full-sized segments end where the mapping
// does rather than straddle its end. (Not one mapping per segment there:
// that would only grow the peer's tables.)
func (s *Subflow) recutLen(seg Segment) int {
	// Outgoing has set s.gso already if seg itself is a super-segment.
	if s.gso || seg.PayloadLen >= MaxMappingLen {
		return seg.PayloadLen
	}
	return seg.PayloadLen + (MaxMappingLen-seg.PayloadLen)/s.mss*s.mss
}

// splitAt returns how many of a segment's payload bytes starting at
// relative sequence rel the mapping m covers, or 0 if it covers them all.
func splitAt(m *TXMapping, rel uint32, payload int) int {
	if covered := int(m.End() - rel); covered < payload {
		return covered
	}
	return 0
}

func (s *Subflow) dssOptions(dst []byte, seg Segment, rel uint32, c ConnState) ([]byte, int) {
	var d options.DSS
	// Linux's receiver takes the data ACK only once it knows our key; we
	// send it once we know the peer's IDSN. We always use 64 bits: the
	// option still fits next to timestamps (12 + 28 bytes).
	if c.DataAckOK {
		d.HasAck, d.Ack64, d.DataAck = true, true, s.dataAck(seg.Ack, c.DataAck)
		// A cumulative acknowledgment never goes back (§3.3.2), even when
		// the unread data it covered is not mapped contiguously any more.
		if s.sentDataAckV && int64(d.DataAck-s.sentDataAck) < 0 {
			d.DataAck = s.sentDataAck
		}
	}
	split := 0
	switch {
	case seg.PayloadLen > 0:
		m := s.tx.find(rel)
		if m == nil {
			m = s.tx.findReleased(rel)
		}
		if m == nil {
			if options.SubflowSeq(rel).LessThan(options.SubflowSeq(s.sndUnaRel)) {
				// TCP sends again bytes whose ACK the shim saw first and
				// whose mapping it released: the caller drops them (every
				// data segment must carry its mapping, §3.3.1; the peer
				// has these bytes).
				upto := s.sndUnaRel
				if r := &s.tx.released; r.Len > 0 && options.SubflowSeq(rel).LessThan(options.SubflowSeq(r.SSN)) &&
					options.SubflowSeq(r.SSN).LessThan(options.SubflowSeq(upto)) {
					upto = r.SSN // the last released mapping still maps its bytes
				}
				return dst, -int(min(upto-rel, uint32(seg.PayloadLen)))
			}
			// Bytes TCP sends that no mapping covers: cannot happen when
			// every write goes through AddTXMapping. Counted, and sent
			// without a mapping rather than with a wrong one.
			s.stats.TXNoMapping++
			break
		}
		if s.infinite && !options.SubflowSeq(rel).LessThan(options.SubflowSeq(s.infFrom)) {
			// The infinite mapping: data length 0, checksum 0 (Linux
			// writes 0 there too), then plain TCP.
			d.HasMapping, d.DSN64, d.DSN, d.SubflowSeq = true, true, m.DSN+uint64(rel-m.SSN), rel
			d.HasChecksum = s.checksum
			s.fallback = FallbackChecksum
			s.sent |= SentInfiniteMapping
			dst = d.Append(dst)
			return dst, 0
		}
		if m.SSN == rel && m != &s.tx.released && s.mayRecut(seg, m) {
			s.tx.recut(s.tx.hint, s.recutLen(seg))
		}
		d.HasMapping, d.DSN64, d.DSN, d.SubflowSeq, d.DataLen = true, true, m.DSN, m.SSN, m.Len
		if s.checksum {
			d.HasChecksum, d.Checksum = true, m.Sum.Sum(m.DSN, m.SSN, m.Len)
		}
		split = splitAt(m, rel, seg.PayloadLen)
		if split > 0 {
			s.stats.SegmentsSplit++
		}
	case c.DataFIN && seg.Flags&FlagFIN == 0:
		// A DATA_FIN without data: subflow sequence 0, length 1 (§3.3.3),
		// on an ACK without FIN, as Linux sends and expects it.
		d.DataFIN, d.HasMapping, d.DSN64, d.DSN, d.DataLen = true, true, true, c.DataFINSeq, 1
		if s.checksum {
			var none options.DSSChecksum
			d.HasChecksum, d.Checksum = true, none.Sum(c.DataFINSeq, 0, 1)
		}
	}
	if d.HasAck || d.HasMapping {
		dst = d.Append(dst)
		if d.HasAck {
			s.sentDataAck, s.sentDataAckV = d.DataAck, true
		}
	}
	if s.mpFail && seg.PayloadLen == 0 && !d.HasMapping {
		// Once, like Linux (mptcp_write_options clears send_mp_fail), and
		// only where it fits for sure: next to a DSS with a mapping and
		// its checksum (28 bytes) and the timestamps (12), MP_FAIL (12)
		// would not, and the segment would lose its DSS. Linux too defers
		// it to a segment with room (mptcp_established_options_mp_fail);
		// the caller sends an option-only ACK for it.
		dst = options.MPFail{DSN: s.mpFailDSN}.Append(dst)
		s.mpFail = false
		s.sent |= SentMPFail
	}
	return dst, split
}

// resetOptions: a RST of an aborted connection carries MP_FASTCLOSE with
// the peer's key (§3.5); every RST carries MP_TCPRST with our reason (§3.6),
// as Linux sends them (mptcp_established_options, RST case).
func (s *Subflow) resetOptions(dst []byte, c ConnState) []byte {
	if s.fallback != NoFallback || !s.established {
		return dst
	}
	if c.FastClose && s.remoteKeyOK {
		dst = options.MPFastClose{ReceiverKey: s.remoteKey}.Append(dst)
		s.sent |= SentFastClose
	} else if s.mpFail {
		dst = options.MPFail{DSN: s.mpFailDSN}.Append(dst)
		s.sent |= SentMPFail
	}
	s.sent |= SentTCPRst
	return options.MPTCPRst{Reason: s.resetReason}.Append(dst)
}

// noteTX keeps the statistics and the template for synthesised ACKs.
func (s *Subflow) noteTX(seg *Segment) {
	end := seg.Seq + uint32(seg.PayloadLen)
	if seg.Flags&(FlagSYN|FlagFIN) != 0 {
		end++
	}
	if seg.PayloadLen > 0 {
		s.stats.BytesSent += uint64(seg.PayloadLen)
		if s.lastTX.valid && options.SubflowSeq(seg.Seq).LessThan(options.SubflowSeq(s.lastTX.seqNext)) {
			s.stats.BytesRetrans += uint64(min(seg.PayloadLen, int(s.lastTX.seqNext-seg.Seq)))
		}
	}
	if !s.lastTX.valid || options.SubflowSeq(s.lastTX.seqNext).LessThan(options.SubflowSeq(end)) {
		s.lastTX.seqNext = end
	}
	if seg.Flags&FlagFIN != 0 {
		s.finSent, s.finSeq = true, end-1
	}
	if seg.Flags&FlagACK != 0 {
		s.lastTX.ack, s.lastTX.ackFlagSet = seg.Ack, true
		s.lastTX.window = seg.Window
	}
	if seg.HasTimestamp {
		s.lastTX.tsOK, s.lastTX.tsVal, s.lastTX.tsEcr = true, seg.TSVal, seg.TSEcr
	}
	s.lastTX.valid = true
}

// PureACK returns the header of an ACK the shim can synthesise to carry
// options when TCP has nothing to send (§3.3.2: DATA_ACK and DATA_FIN must
// reach the peer even then): the sequence number TCP would use, its last
// acknowledgment, window and timestamps. ok is false before TCP has sent an
// ACK on the subflow, after it fell back or was reset.
func (s *Subflow) PureACK() (seg Segment, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastTX.valid || !s.lastTX.ackFlagSet || s.fallback != NoFallback || !s.established || s.reset {
		return Segment{}, false
	}
	return Segment{
		Flags: FlagACK, Seq: s.lastTX.seqNext, Ack: s.lastTX.ack, Window: s.lastTX.window,
		HasTimestamp: s.lastTX.tsOK, TSVal: s.lastTX.tsVal, TSEcr: s.lastTX.tsEcr,
	}, true
}

// Probe returns the header of a window probe the shim can synthesise to
// make the peer send its current DATA_ACK at once: a segment ending at the
// last byte the peer acknowledged, with TCP's last acknowledgment, window
// and timestamps. With that byte as payload (dsn says which data byte it
// is, when known: dsnOK) it is a retransmission like TCP's own, with the
// byte's mapping (Outgoing finds it), which the peer's TCP drops as a
// duplicate and answers with an ACK straight away (Linux: tcp_data_queue's
// retransmission case; gVisor: an out-of-window segment with data). The
// caller sends it so if it still has the byte: the same byte, so that
// nothing on the path sees two contents for one sequence number, and
// PayloadLen set to 1. Otherwise as an empty segment (a keep-alive), which
// peers answer too, at a limited rate (RFC 5961). ok is false before the
// peer acknowledged any data on the subflow, after a fallback or a reset.
func (s *Subflow) Probe() (seg Segment, dsn uint64, dsnOK, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastTX.valid || !s.lastTX.ackFlagSet || s.fallback != NoFallback || !s.established ||
		s.reset || !s.issOK || s.stats.BytesAcked == 0 {
		return Segment{}, 0, false, false
	}
	last := s.sndUnaRel - 1
	m := s.tx.find(last)
	if m == nil {
		m = s.tx.findReleased(last)
	}
	if m != nil {
		dsn, dsnOK = m.DSN+uint64(last-m.SSN), true
	}
	return Segment{
		Flags: FlagACK, Seq: s.iss + last, Ack: s.lastTX.ack, Window: s.lastTX.window,
		HasTimestamp: s.lastTX.tsOK, TSVal: s.lastTX.tsVal, TSEcr: s.lastTX.tsEcr,
	}, dsn, dsnOK, true
}

// SentDataAck returns the last DATA_ACK sent on the subflow.
func (s *Subflow) SentDataAck() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentDataAck, s.sentDataAckV
}

// dataAck returns the DATA_ACK to send with a segment that acknowledges
// subflow data up to ack: the connection's next expected DSN rcvNxt (what
// the application has read), or further when the data TCP holds unread
// on this subflow continues it. Like Linux, which acknowledges data once
// it reaches the connection's receive queue rather than the application, so
// that the data-level window (DATA_ACK + window, §3.3.4) ends where the
// subflow's does: acknowledging only what was read would shrink it by the
// unread data. Not with DSS checksums: unread data is not verified yet.
func (s *Subflow) dataAck(ack uint32, rcvNxt uint64) uint64 {
	if s.checksum || !s.irsOK || s.fallback != NoFallback {
		return rcvNxt
	}
	rel := ack - s.irs
	if !options.SubflowSeq(s.rcvRead).LessThan(options.SubflowSeq(rel)) {
		return rcvNxt
	}
	m := s.rx.find(s.rcvRead)
	if m == nil || m.DSN+uint64(s.rcvRead-m.SSN) != rcvNxt {
		return rcvNxt
	}
	for {
		if options.SubflowSeq(rel).LessThanEq(options.SubflowSeq(m.End())) {
			return m.DSN + uint64(rel-m.SSN)
		}
		next := s.rx.find(m.End())
		if next == nil || next.SSN != m.End() || next.DSN != m.DSN+uint64(m.Len) || m.DataFIN {
			return m.DSN + uint64(m.Len)
		}
		m = next
	}
}
