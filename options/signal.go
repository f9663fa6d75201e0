package options

// The fixed-length signalling options of RFC 8684.
const (
	mpPrioLen      = 3
	mpFailLen      = 12
	mpFastCloseLen = 12
	mpTCPRstLen    = 4
	mpPrioBackup   = 0x01
)

// MPPrio is the MP_PRIO option (§3.3.8): it changes the backup priority of
// the subflow it is sent on. Linux sends it with a trailing NOP to keep the
// option space 32-bit aligned; the NOP is not part of the option.
type MPPrio struct {
	Backup bool
}

// Len returns the option's length on the wire.
func (MPPrio) Len() int { return mpPrioLen }

// Append appends the option to b.
func (p MPPrio) Append(b []byte) []byte {
	var flags uint8
	if p.Backup {
		flags = mpPrioBackup
	}
	return header(b, mpPrioLen, SubtypeMPPrio, flags)
}

func decodeMPPrio(b []byte) MPPrio { return MPPrio{Backup: b[2]&mpPrioBackup != 0} }

// MPFail is the MP_FAIL option (§3.7): the 64-bit data sequence number at
// which a checksum failure was detected.
type MPFail struct {
	DSN uint64
}

// Len returns the option's length on the wire.
func (MPFail) Len() int { return mpFailLen }

// Append appends the option to b (12 reserved bits after the subtype).
func (f MPFail) Append(b []byte) []byte {
	b = header(b, mpFailLen, SubtypeMPFail, 0)
	b = append(b, 0)
	return append64(b, f.DSN)
}

func decodeMPFail(b []byte) MPFail { return MPFail{DSN: be64(b[4:])} }

// MPFastClose is the MP_FASTCLOSE option (§3.5): the receiver's key, which
// the receiver checks before it resets the whole connection.
type MPFastClose struct {
	ReceiverKey uint64
}

// Len returns the option's length on the wire.
func (MPFastClose) Len() int { return mpFastCloseLen }

// Append appends the option to b (12 reserved bits after the subtype).
func (f MPFastClose) Append(b []byte) []byte {
	b = header(b, mpFastCloseLen, SubtypeMPFastClose, 0)
	b = append(b, 0)
	return append64(b, f.ReceiverKey)
}

func decodeMPFastClose(b []byte) MPFastClose { return MPFastClose{ReceiverKey: be64(b[4:])} }

// MP_TCPRST flag bits (§3.6): U V W T in the low nibble of the subtype byte.
const (
	TCPRstFlagTransient = 0x01 // T
	tcpRstFlagMask      = 0x0f
)

// Reasons for an MP_TCPRST (§3.6, IANA "MPTCP MP_TCPRST Reason Codes").
const (
	TCPRstUnspecified    uint8 = 0
	TCPRstMPTCPError     uint8 = 1 // MPTCP-specific error
	TCPRstNoResources    uint8 = 2 // lack of resources
	TCPRstProhibited     uint8 = 3 // administratively prohibited
	TCPRstTooMuchData    uint8 = 4 // too much outstanding data
	TCPRstPerformance    uint8 = 5 // unacceptable performance
	TCPRstMiddlebox      uint8 = 6 // middlebox interference
	maxKnownTCPRstReason       = TCPRstMiddlebox
)

// TCPRstReasonString names an MP_TCPRST reason code.
func TCPRstReasonString(r uint8) string {
	switch r {
	case TCPRstUnspecified:
		return "unspecified"
	case TCPRstMPTCPError:
		return "MPTCP-specific error"
	case TCPRstNoResources:
		return "lack of resources"
	case TCPRstProhibited:
		return "administratively prohibited"
	case TCPRstTooMuchData:
		return "too much outstanding data"
	case TCPRstPerformance:
		return "unacceptable performance"
	case TCPRstMiddlebox:
		return "middlebox interference"
	}
	return "unknown reason"
}

// MPTCPRst is the MP_TCPRST option (§3.6), sent on a RST to say why the
// subflow is reset.
type MPTCPRst struct {
	Flags  uint8 // U V W T; only T (TCPRstFlagTransient) is defined
	Reason uint8
}

// Transient reports flag T: the condition is temporary and the sender may
// try again.
func (r MPTCPRst) Transient() bool { return r.Flags&TCPRstFlagTransient != 0 }

// Len returns the option's length on the wire.
func (MPTCPRst) Len() int { return mpTCPRstLen }

// Append appends the option to b.
func (r MPTCPRst) Append(b []byte) []byte {
	b = header(b, mpTCPRstLen, SubtypeMPTCPRst, r.Flags&tcpRstFlagMask)
	return append(b, r.Reason)
}

func decodeMPTCPRst(b []byte) MPTCPRst {
	return MPTCPRst{Flags: b[2] & tcpRstFlagMask, Reason: b[3]}
}
