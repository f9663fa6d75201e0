package subflow

import (
	"sync"

	"github.com/umptcp/umptcp/options"
)

// Role is which side opened the subflow.
type Role uint8

// Roles.
const (
	Initiator Role = iota // sent the SYN
	Responder             // answered it
)

// TCP flag bits as in the TCP header.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// FallbackReason says why a connection stopped speaking MPTCP (§3.7).
type FallbackReason uint8

// Reasons to fall back to TCP.
const (
	NoFallback FallbackReason = iota
	// FallbackNoMPCOnSYN: the peer's SYN did not ask for MPTCP.
	FallbackNoMPCOnSYN
	// FallbackNoMPCOnSYNACK: the SYN/ACK carried no usable MP_CAPABLE.
	FallbackNoMPCOnSYNACK
	// FallbackNoMPCOnACK: the third ACK or first data from the initiator
	// carried no MP_CAPABLE.
	FallbackNoMPCOnACK
	// FallbackNoDSS: the peer's data, or its acknowledgment of ours,
	// carried no DSS (a middlebox stripped the options, or the peer fell
	// back).
	FallbackNoDSS
	// FallbackInfiniteMapping: the peer sent an infinite mapping.
	FallbackInfiniteMapping
	// FallbackChecksum: a DSS checksum failed and we fell back (MP_FAIL).
	FallbackChecksum
	// FallbackNoToken: no unique token could be found for a new
	// connection (§3.2); it is TCP from the start.
	FallbackNoToken
)

func (r FallbackReason) String() string {
	switch r {
	case NoFallback:
		return ""
	case FallbackNoMPCOnSYN:
		return "peer did not request MPTCP (no MP_CAPABLE on SYN)"
	case FallbackNoMPCOnSYNACK:
		return "no usable MP_CAPABLE on SYN/ACK"
	case FallbackNoMPCOnACK:
		return "no MP_CAPABLE on the initiator's third ACK or first data"
	case FallbackNoDSS:
		return "peer data without DSS (options stripped by a middlebox)"
	case FallbackInfiniteMapping:
		return "peer sent an infinite mapping"
	case FallbackChecksum:
		return "DSS checksum failure (MP_FAIL)"
	case FallbackNoToken:
		return "no unique token for a new connection"
	}
	return "unknown"
}

// Config is what a subflow is created with.
type Config struct {
	Role Role
	// LocalKey is the connection's key (§3.1).
	LocalKey uint64
	// WantChecksum sets flag A in our MP_CAPABLE.
	WantChecksum bool
	// MaxRXMappings bounds the mappings stored for bytes not yet read: a
	// peer that maps its data in tiny pieces cannot make us hold more.
	MaxRXMappings int
}

// DefaultMaxRXMappings bounds stored received mappings by default: one per
// full-sized segment of a 12 MB window.
const DefaultMaxRXMappings = 8192

// Subflow is the MPTCP state of one subflow.
type Subflow struct {
	mu sync.Mutex

	role         Role
	localKey     uint64
	remoteKey    uint64
	remoteKeyOK  bool
	wantChecksum bool
	checksum     bool // negotiated: either side set A (§3.1)

	iss, irs     uint32
	issOK, irsOK bool

	// established: the TCP handshake carried MP_CAPABLE both ways.
	established bool
	// fullyEstablished: the peer has shown it has our key (a DSS from the
	// responder, or the third ACK's MP_CAPABLE at the responder); until
	// then the initiator repeats its keys (§3.1).
	fullyEstablished bool
	fallback         FallbackReason
	peerDataSeen     bool
	// reset: a RST left or arrived on the subflow; nothing may be
	// synthesised on it any more (RFC 9293 §3.10.7.4: never answer a RST).
	reset   bool
	rstSent bool // a RST with our options left

	tx         txTable
	sndWritten uint32 // relative sequence number of the next byte given to TCP
	sndUnaRel  uint32

	rx      rxTable
	rcvRead uint32 // relative sequence number of the next byte the reader takes
	// rcvNxt is the end of the in-order data (and FIN) received, absolute.
	rcvNxt   uint32
	rcvNxtOK bool
	// TCP's closing handshake as the shim saw it: the peer's FIN received
	// in order; our FIN sent (its sequence number) and acknowledged.
	peerFINIn, finSent, finAcked bool
	finSeq                       uint32

	// Signals to put on the next segments.
	mpFail    bool
	mpFailDSN uint64
	// infinite: after the peer's MP_FAIL, the next segment with new data
	// (relative sequence infFrom or later) carries the infinite mapping
	// and the subflow falls back (§3.7).
	infinite     bool
	infFrom      uint32
	resetReason  uint8
	resetSet     bool
	sentDataAck  uint64
	sentDataAckV bool
	lastTX       lastTX
	sent         Sent // what the segment being built carries (Outgoing)
	mss          int  // largest segment payload seen on the wire
	gso          bool // TCP sent a GSO super-segment: the link segments for it
	// newFrom is the sequence number after the highest one TCP had sent
	// before the segment being built: its bytes from there on are new.
	newFrom   uint32
	newFromOK bool

	stats Stats
}

// lastTX is the header of the last segment TCP sent on the subflow: the
// template for a pure ACK the shim synthesises.
type lastTX struct {
	valid      bool
	seqNext    uint32 // highest sequence number sent + its length
	ack        uint32
	window     uint16
	tsOK       bool
	tsVal      uint32
	tsEcr      uint32
	ackFlagSet bool
}

// Stats are per-subflow counters.
type Stats struct {
	BytesSent       uint64 // payload bytes sent, retransmissions included
	BytesRetrans    uint64 // payload bytes sent again
	BytesAcked      uint64 // payload bytes the peer acknowledged at the subflow level
	BytesReceived   uint64 // payload bytes read from the subflow
	SegmentsSplit   uint64 // segments cut in two at a mapping boundary
	TXNoMapping     uint64 // data segments for which no mapping was known (a bug if ever non-zero)
	RXMappings      uint64
	RXMappingsDup   uint64
	RXMappingsDrop  uint64 // conflicting, out of window or over the limit
	ResetReason     uint8
	ResetReasonSeen bool
}

// New returns a subflow in its initial state. An initiator is created
// before its SYN leaves; a responder when its peer's SYN with MP_CAPABLE
// arrives (see AcceptSYN).
func New(c Config) *Subflow {
	if c.MaxRXMappings <= 0 {
		c.MaxRXMappings = DefaultMaxRXMappings
	}
	return &Subflow{
		role:         c.Role,
		localKey:     c.LocalKey,
		wantChecksum: c.WantChecksum,
		sndWritten:   1,
		sndUnaRel:    1,
		rcvRead:      1,
		rx:           rxTable{limit: c.MaxRXMappings},
	}
}

// Role returns the subflow's role.
func (s *Subflow) Role() Role { return s.role }

// Established reports whether the handshake negotiated MPTCP.
func (s *Subflow) Established() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.established && s.fallback == NoFallback
}

// Fallback returns why the subflow fell back to TCP, or NoFallback.
func (s *Subflow) Fallback() FallbackReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fallback
}

// SetFallback makes the subflow plain TCP from now on.
func (s *Subflow) SetFallback(r FallbackReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fallback == NoFallback {
		s.fallback = r
	}
}

// FullyEstablished reports whether the peer has shown it holds our key
// (§3.1): for an initiator, the first DSS acknowledging data.
func (s *Subflow) FullyEstablished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fullyEstablished
}

// MarkReset records that the subflow was reset, by us or by the peer: the
// shim synthesises nothing on it from then on.
func (s *Subflow) MarkReset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset = true
}

// IsReset reports whether MarkReset was called or a RST was sent.
func (s *Subflow) IsReset() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reset
}

// Checksum reports whether DSS checksums were negotiated.
func (s *Subflow) Checksum() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checksum
}

// Keys returns the local key and, once learnt, the remote key.
func (s *Subflow) Keys() (local, remote uint64, remoteOK bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.localKey, s.remoteKey, s.remoteKeyOK
}

// Stats returns a copy of the counters.
func (s *Subflow) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// RequestMPFail asks for MP_FAIL (§3.7) on the next segments, until the peer
// answers with an infinite mapping.
func (s *Subflow) RequestMPFail(dsn uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mpFail, s.mpFailDSN = true, dsn
}

// RequestInfiniteMapping answers the peer's MP_FAIL (§3.7): the next
// segment with data not sent before carries the infinite mapping, at the
// data sequence number of that data, and the subflow is plain TCP after it.
// Like Linux, the sender does not send the failed data again: a Linux
// receiver has delivered it.
func (s *Subflow) RequestInfiniteMapping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.infinite {
		s.infinite, s.infFrom = true, s.sndWritten
	}
}

// SetResetReason sets the MP_TCPRST reason sent with the subflow's RST.
func (s *Subflow) SetResetReason(reason uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetReason, s.resetSet = reason, true
}

// AcceptSYN is the responder's handling of the initiator's SYN: it records
// the initiator's ISN and checksum wish. mpc must be a usable MP_CAPABLE of
// variant CapableSYN.
func (s *Subflow) AcceptSYN(seq uint32, mpc options.MPCapable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.irs, s.irsOK = seq, true
	s.checksum = s.wantChecksum || mpc.ChecksumRequired()
}
