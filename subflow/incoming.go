package subflow

import "github.com/umptcp/umptcp/options"

// Refs are the connection's 64-bit sequence state that 32-bit values on the
// wire are expanded against (§3.3).
type Refs struct {
	// RcvNxt is the next data sequence number we expect (our DATA_ACK).
	RcvNxt uint64
	// SndUna is the oldest data sequence number the peer has not acknowledged.
	SndUna uint64
}

// Events is what an incoming segment asks of the connection. Zero values
// mean nothing happened.
type Events struct {
	// Established: this segment completed an MP_CAPABLE handshake; the
	// peer's key is RemoteKey and Checksum says whether DSS checksums are on.
	Established bool
	RemoteKey   uint64
	Checksum    bool
	// Fallback is set when this segment made the subflow fall back.
	Fallback FallbackReason

	// HasDataAck: the peer acknowledged data up to DataAck (64 bits).
	HasDataAck bool
	DataAck    uint64
	// HasDataFIN: the peer's DATA_FIN is at DataFINSeq.
	HasDataFIN bool
	DataFINSeq uint64

	// Mapping is the outcome of a mapping the segment carried, if any.
	HasMapping bool
	Mapping    RXResult
	// MappingMisfit: the segment's payload is not inside the mapping it
	// carries (Linux: DSSNoMatchTCP).
	MappingMisfit bool
	// ChecksumMismatch: a DSS checksum was present without being
	// negotiated, or missing although negotiated (§3.3: reset the subflow).
	ChecksumMismatch bool
	InfiniteMapping  bool

	// AckWithoutDSS: the peer acknowledged our data with neither a DSS nor
	// an MP_CAPABLE: the path strips our options or the peer fell back
	// (§3.7: "the sender determines that the path is not MPTCP capable").
	AckWithoutDSS bool

	FastClose    bool // MP_FASTCLOSE with our key (§3.5)
	BadFastClose bool // MP_FASTCLOSE with another key: ignored
	HasReset     bool // MP_TCPRST on a RST
	ResetReason  uint8
	ResetFlags   uint8
	HasMPFail    bool
	MPFailDSN    uint64

	// CapableRX counts MP_CAPABLE ACK/data options taken by a responder.
	CapableACKRX bool
	// Malformed counts MPTCP options that matched no variant.
	Malformed int
}

// Incoming processes the MPTCP options of a segment that arrived on the
// subflow, before TCP sees it, and then its acknowledgment (see Acked):
// one lock per segment.
func (s *Subflow) Incoming(seg Segment, opts *options.Segment, refs Refs) Events {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.incoming(seg, opts, refs)
	if seg.Flags&FlagACK != 0 {
		s.acked(seg.Ack)
	}
	return ev
}

func (s *Subflow) incoming(seg Segment, opts *options.Segment, refs Refs) (ev Events) {
	for i := range opts.List() {
		if opts.Options[i].Malformed {
			ev.Malformed++
		}
	}

	if seg.Flags&FlagRST != 0 {
		s.incomingReset(opts, &ev)
		return ev
	}
	if seg.Flags&FlagSYN == 0 {
		s.noteRX(seg)
	}
	if s.fallback != NoFallback {
		return ev
	}
	if seg.Flags&FlagSYN != 0 {
		if seg.Flags&FlagACK != 0 && s.role == Initiator {
			s.incomingSYNACK(seg, opts, &ev)
		}
		return ev
	}
	if !s.established {
		if s.role == Responder {
			s.incomingThirdACK(seg, opts, &ev)
		}
		if !s.established {
			return ev
		}
	}

	if fc := opts.Find(options.SubtypeMPFastClose); fc != nil {
		if fc.MPFastClose().ReceiverKey == s.localKey {
			ev.FastClose = true
		} else {
			ev.BadFastClose = true
		}
	}
	if f := opts.Find(options.SubtypeMPFail); f != nil {
		ev.HasMPFail, ev.MPFailDSN = true, f.MPFail().DSN
	}
	o := opts.Find(options.SubtypeDSS)
	if o == nil && seg.Flags&FlagACK != 0 && s.acksData(seg.Ack) && opts.Find(options.SubtypeMPCapable) == nil {
		ev.AckWithoutDSS = true
	}
	if o != nil {
		var d options.DSS
		o.DecodeDSS(&d)
		s.incomingDSS(seg, &d, refs, &ev)
	} else if s.role == Responder && seg.PayloadLen > 0 {
		// The initiator repeats MP_CAPABLE on its first data until it sees
		// our DSS (§3.1): that data's mapping is in the MP_CAPABLE, also
		// when the third ACK already established the subflow.
		if o := opts.Find(options.SubtypeMPCapable); o != nil {
			if mpc := o.MPCapable(); mpc.Variant >= options.CapableData && mpc.Usable() {
				s.capableMapping(seg, mpc, &ev)
			}
		}
	}
	return ev
}

// acksData reports whether ack acknowledges data we sent (not just our
// SYN), and not our FIN: Linux's last ACKs of a closing subflow carry no
// options. A duplicate ACK counts: a peer that fell back answers a window
// probe with one.
func (s *Subflow) acksData(ack uint32) bool {
	if !s.issOK {
		return false
	}
	rel := ack - s.iss
	return options.SubflowSeq(1).LessThan(options.SubflowSeq(rel)) &&
		options.SubflowSeq(rel).LessThanEq(options.SubflowSeq(s.sndWritten))
}

// AcceptableRST reports whether TCP takes a RST at sequence number seq:
// RFC 5961 §3.2, as gVisor and Linux do it, accepts only a RST at exactly
// the next sequence number expected (a RST elsewhere in the window gets a
// challenge ACK). The subflow knows that number as the acknowledgment of
// TCP's last segment or the end of the in-order data received since. A
// RST it refuses but TCP takes still shows, as the endpoint's reset.
//
// Not in TIME-WAIT (both FINs received and our FIN acknowledged): TCP drops
// a RST there (RFC 1337; gVisor and Linux do), such as the one a peer's
// stack sends for our duplicate ACK of its FIN after it closed: the data
// is complete, and the subflow ended cleanly.
func (s *Subflow) AcceptableRST(seq uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerFINIn && s.finAcked {
		return false
	}
	return (s.lastTX.valid && s.lastTX.ackFlagSet && seq == s.lastTX.ack) || (s.rcvNxtOK && seq == s.rcvNxt)
}

// noteRX follows the in-order end of what the peer sent (for AcceptableRST).
func (s *Subflow) noteRX(seg Segment) {
	if !s.rcvNxtOK {
		if !s.irsOK {
			return
		}
		s.rcvNxt, s.rcvNxtOK = s.irs+1, true
	}
	end := seg.Seq + uint32(seg.PayloadLen)
	if seg.Flags&FlagFIN != 0 {
		end++
	}
	// A segment that starts at or before rcvNxt and reaches past it (a
	// retransmission carrying new bytes too) moves it; one after a gap
	// does not.
	if options.SubflowSeq(seg.Seq).LessThanEq(options.SubflowSeq(s.rcvNxt)) &&
		options.SubflowSeq(s.rcvNxt).LessThan(options.SubflowSeq(end)) {
		s.rcvNxt = end
		if seg.Flags&FlagFIN != 0 {
			s.peerFINIn = true
		}
	}
}

// capableMapping records the mapping an MP_CAPABLE with data carries: its
// data parameters are those of a DSS (§3.1): DSN = IDSN+1, subflow
// sequence 1.
func (s *Subflow) capableMapping(seg Segment, mpc options.MPCapable, ev *Events) {
	if !s.remoteKeyOK || mpc.SenderKey != s.remoteKey || mpc.ReceiverKey != s.localKey {
		return
	}
	if (mpc.Variant == options.CapableDataChecksum) != s.checksum {
		ev.ChecksumMismatch = true
		return
	}
	_, idsn := options.TokenIDSN(s.remoteKey)
	m := RXMapping{SSN: 1, DSN: idsn + 1, Len: uint32(mpc.DataLen), WireLen: mpc.DataLen,
		HasChecksum: mpc.Variant == options.CapableDataChecksum, Checksum: mpc.Checksum}
	s.peerDataSeen = true
	s.addRXMapping(seg, m, ev)
}

func (s *Subflow) incomingReset(opts *options.Segment, ev *Events) {
	if r := opts.Find(options.SubtypeMPTCPRst); r != nil {
		rst := r.MPTCPRst()
		ev.HasReset, ev.ResetReason, ev.ResetFlags = true, rst.Reason, rst.Flags
		s.stats.ResetReason, s.stats.ResetReasonSeen = rst.Reason, true
	}
	if fc := opts.Find(options.SubtypeMPFastClose); fc != nil && s.established {
		if fc.MPFastClose().ReceiverKey == s.localKey {
			ev.FastClose = true
		} else {
			ev.BadFastClose = true
		}
	}
}

// incomingSYNACK: the responder's answer decides whether this is MPTCP
// (§3.1). A SYN/ACK without a usable MP_CAPABLE means plain TCP.
func (s *Subflow) incomingSYNACK(seg Segment, opts *options.Segment, ev *Events) {
	s.irs, s.irsOK = seg.Seq, true
	if s.established {
		return // a retransmitted SYN/ACK
	}
	o := opts.Find(options.SubtypeMPCapable)
	var mpc options.MPCapable
	if o != nil {
		mpc = o.MPCapable()
	}
	if o == nil || mpc.Variant != options.CapableSYNACK || !mpc.Usable() {
		s.fallback = FallbackNoMPCOnSYNACK
		ev.Fallback = s.fallback
		return
	}
	s.remoteKey, s.remoteKeyOK = mpc.SenderKey, true
	s.checksum = s.wantChecksum || mpc.ChecksumRequired()
	s.established = true
	ev.Established, ev.RemoteKey, ev.Checksum = true, s.remoteKey, s.checksum
}

// incomingThirdACK: the responder learns the initiator's key from the third
// ACK, or from its first data if the third ACK was lost (§3.1). Anything
// else on the first segment after the SYN/ACK means a middlebox removed the
// option: fall back, as Linux does (check_fully_established).
func (s *Subflow) incomingThirdACK(seg Segment, opts *options.Segment, ev *Events) {
	o := opts.Find(options.SubtypeMPCapable)
	if o == nil {
		s.fallback = FallbackNoMPCOnACK
		ev.Fallback = s.fallback
		return
	}
	mpc := o.MPCapable()
	if mpc.Variant < options.CapableACK || !mpc.Usable() || mpc.ReceiverKey != s.localKey {
		s.fallback = FallbackNoMPCOnACK
		ev.Fallback = s.fallback
		return
	}
	s.remoteKey, s.remoteKeyOK = mpc.SenderKey, true
	s.established, s.fullyEstablished = true, true
	ev.Established, ev.RemoteKey, ev.Checksum, ev.CapableACKRX = true, s.remoteKey, s.checksum, true
	if mpc.Variant >= options.CapableData && seg.PayloadLen > 0 {
		s.capableMapping(seg, mpc, ev)
	}
}

func (s *Subflow) incomingDSS(seg Segment, d *options.DSS, refs Refs, ev *Events) {
	if s.role == Initiator && !s.fullyEstablished && d.HasAck {
		// The responder acknowledges data: it has our key (§3.1;
		// Linux: check_fully_established).
		s.fullyEstablished = true
	}
	if d.HasAck {
		ack := d.DataAck
		if !d.Ack64 {
			ack = options.ExpandSeq(refs.SndUna, uint32(d.DataAck))
		}
		ev.HasDataAck, ev.DataAck = true, ack
	}
	if !d.HasMapping {
		return
	}
	dsn := d.DSN
	if !d.DSN64 {
		dsn = options.ExpandSeq(refs.RcvNxt, uint32(d.DSN))
	}
	if d.InfiniteMapping() {
		// §3.7: from this subflow sequence number on the subflow is plain
		// TCP carrying data from dsn on.
		ev.InfiniteMapping = true
		s.installInfinite(d.SubflowSeq, dsn)
		s.fallback = FallbackInfiniteMapping
		ev.Fallback = s.fallback
		return
	}
	if d.DataFIN && d.DataLen == 1 && d.SubflowSeq == 0 {
		// DATA_FIN alone (§3.3.3): Linux sends it on an option-only ACK.
		ev.HasDataFIN, ev.DataFINSeq = true, dsn
		return
	}
	if d.HasChecksum != s.checksum {
		ev.ChecksumMismatch = true
		return
	}
	m := RXMapping{SSN: d.SubflowSeq, DSN: dsn, Len: uint32(d.DataLen), WireLen: d.DataLen,
		HasChecksum: d.HasChecksum, Checksum: d.Checksum, DataFIN: d.DataFIN}
	if d.DataFIN {
		m.Len--
		ev.HasDataFIN, ev.DataFINSeq = true, dsn+uint64(m.Len)
	}
	if seg.PayloadLen > 0 {
		s.peerDataSeen = true
	}
	if m.Len > 0 {
		s.addRXMapping(seg, m, ev)
	}
}

// maxRXAhead bounds how far ahead of the reader a mapping may start: a
// mapping far outside any receive window is bogus (Linux drops mappings
// that do not cover their segment; we also refuse ones we could never use).
const maxRXAhead = 1 << 30

func (s *Subflow) addRXMapping(seg Segment, m RXMapping, ev *Events) {
	ev.HasMapping = true
	if !options.SubflowSeq(m.SSN).InWindow(options.SubflowSeq(s.rcvRead), maxRXAhead) &&
		!options.SubflowSeq(m.End()).InWindow(options.SubflowSeq(s.rcvRead+1), maxRXAhead) {
		ev.Mapping = RXConsumed
		if options.SubflowSeq(s.rcvRead).LessThan(options.SubflowSeq(m.SSN)) {
			ev.Mapping = RXConflict
		}
		s.stats.RXMappingsDrop++
		return
	}
	if s.irsOK && seg.PayloadLen > 0 {
		rel := seg.Seq - s.irs
		if !options.SubflowSeq(rel).InWindow(options.SubflowSeq(m.SSN), m.Len) ||
			int(m.End()-rel) < seg.PayloadLen {
			ev.MappingMisfit = true
		}
	}
	ev.Mapping = s.rx.add(m, s.rcvRead)
	switch ev.Mapping {
	case RXAdded:
		s.stats.RXMappings++
	case RXDuplicate, RXConsumed:
		s.stats.RXMappingsDup++
	default:
		s.stats.RXMappingsDrop++
	}
}

// installInfinite maps every subflow byte from ssn on to data from dsn on.
func (s *Subflow) installInfinite(ssn uint32, dsn uint64) {
	if options.SubflowSeq(ssn).LessThan(options.SubflowSeq(s.rcvRead)) {
		// A mapping that starts before the reader (RFC 8684 allows a
		// retroactive one) cannot move it back: start where it is.
		dsn += uint64(s.rcvRead - ssn)
		ssn = s.rcvRead
	}
	// The infinite mapping replaces every mapping at or after ssn; one
	// that straddles ssn keeps only its bytes before it.
	if m := s.rx.find(ssn); m != nil && m.SSN != ssn {
		m.Len = ssn - m.SSN
		m.DataFIN = false
	}
	for i := 0; i < s.rx.count; i++ {
		if !options.SubflowSeq(s.rx.at(i).SSN).LessThan(options.SubflowSeq(ssn)) {
			for j := i; j < s.rx.count; j++ {
				*s.rx.at(j) = RXMapping{}
			}
			s.rx.count = i
			break
		}
	}
	s.rx.add(RXMapping{SSN: ssn, DSN: dsn, Len: maxRXAhead, Infinite: true}, s.rcvRead)
}

// FallBackAt makes the subflow plain TCP for its receiving side from the
// reader's position on, which carries data from dsn on: used when data
// arrives with no mapping on a connection that can fall back (§3.7; Linux
// maps such data to the next expected DSN: subflow_check_data_avail).
func (s *Subflow) FallBackAt(dsn uint64, reason FallbackReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installInfinite(s.rcvRead, dsn)
	if s.fallback == NoFallback {
		s.fallback = reason
	}
}

// PeerDataSeen reports whether the subflow has seen data from the peer.
func (s *Subflow) PeerDataSeen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerDataSeen
}

// NextRX returns the mapping of the next byte the reader will take and the
// reader's relative sequence number. ok is false when no mapping covers it.
func (s *Subflow) NextRX() (m RXMapping, rel uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.rx.find(s.rcvRead)
	if p == nil {
		return RXMapping{}, s.rcvRead, false
	}
	return *p, s.rcvRead, true
}

// NextRXRun is NextRX, and also how many bytes from the reader's position
// on (at most limit) continue one another at the data level too: the rest of
// this mapping and of the mappings after it that start where the one
// before ends, at both levels. The reader can take them with one read
// from TCP instead of one per mapping. A mapping with a DATA_FIN or an
// infinite one ends the run, which is never longer than the mapped bytes.
func (s *Subflow) NextRXRun(limit int) (m RXMapping, rel uint32, run int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.rx.index(s.rcvRead)
	if i < 0 {
		return RXMapping{}, s.rcvRead, 0, false
	}
	m = *s.rx.at(i)
	run = int(m.End() - s.rcvRead)
	if m.Infinite {
		return m, s.rcvRead, run, true
	}
	for prev := &m; run < limit && !prev.DataFIN && i+1 < s.rx.count; i++ {
		next := s.rx.at(i + 1)
		if next.Infinite || next.SSN != prev.End() || next.DSN != prev.DSN+uint64(prev.Len) {
			break
		}
		run += int(next.Len)
		prev = next
	}
	return m, s.rcvRead, min(run, limit), true
}

// Consumed records that the reader took n more bytes from TCP.
func (s *Subflow) Consumed(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcvRead += uint32(n)
	s.stats.BytesReceived += uint64(n)
	s.rx.consumedTo(s.rcvRead)
}

// Acked records the peer's subflow-level acknowledgment ack (absolute)
// and releases the mappings of the bytes it covers.
func (s *Subflow) Acked(ack uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked(ack)
}

func (s *Subflow) acked(ack uint32) {
	if !s.issOK {
		return
	}
	if s.finSent && options.SubflowSeq(s.finSeq).LessThan(options.SubflowSeq(ack)) {
		s.finAcked = true
	}
	rel := ack - s.iss
	// The ACK of our SYN is relative 1; ignore anything outside what we
	// have given TCP (an old or bogus ACK).
	if !options.SubflowSeq(rel).InWindow(options.SubflowSeq(s.sndUnaRel), s.sndWritten-s.sndUnaRel+2) {
		return
	}
	// A FIN takes a sequence number after the data: never count it.
	// (Sequence numbers wrap: compare them, never min them.)
	if options.SubflowSeq(s.sndWritten).LessThan(options.SubflowSeq(rel)) {
		rel = s.sndWritten
	}
	if options.SubflowSeq(s.sndUnaRel).LessThan(options.SubflowSeq(rel)) {
		s.stats.BytesAcked += uint64(rel - s.sndUnaRel)
		s.sndUnaRel = rel
		s.tx.ackedTo(rel)
	}
}

// RXMappingCount returns how many received mappings the subflow holds.
func (s *Subflow) RXMappingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx.count
}
