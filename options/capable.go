package options

// CapableVariant names the layout of an MP_CAPABLE option; its value is the
// option's length (RFC 8684 §3.1, Figure 4).
type CapableVariant uint8

// The MP_CAPABLE variants of MPTCP v1.
const (
	// CapableSYN is sent on the SYN: version and flags only (v1 sends no key
	// in the SYN).
	CapableSYN CapableVariant = 4
	// CapableSYNACK is sent on the SYN/ACK: the responder's key.
	CapableSYNACK CapableVariant = 12
	// CapableACK is the third ACK: the initiator's key, then the responder's.
	CapableACK CapableVariant = 20
	// CapableData is the initiator's first data: both keys and the data-level
	// length of the mapping DSN = IDSN+1, subflow sequence 1.
	CapableData CapableVariant = 22
	// CapableDataChecksum is CapableData with the DSS checksum, when
	// checksums were negotiated.
	CapableDataChecksum CapableVariant = 24
)

// MP_CAPABLE flag bits (§3.1): A B C D E F G H, most significant first.
const (
	CapableFlagChecksum       = 0x80 // A: checksum required
	CapableFlagExtensibility  = 0x40 // B: must be 0 in v1
	CapableFlagNoJoinToSource = 0x20 // C: do not join to my source address (Linux: deny join id 0)
	CapableFlagHMACSHA256     = 0x01 // H: HMAC-SHA256, the only algorithm defined
	capableFlagCryptoMask     = 0x1f // C..H as Linux masks them (MPTCP_CAP_FLAG_MASK)
	capableVersionMask        = 0x0f
	capableSupportedVersion   = 1
)

// MPCapable is the MP_CAPABLE option (§3.1). Which fields are on the wire
// depends on Variant: SenderKey from CapableSYNACK on, ReceiverKey from
// CapableACK on, DataLen from CapableData on, Checksum only in
// CapableDataChecksum. The sender of a SYN/ACK is the responder, so its
// SenderKey is the responder's key; on the third ACK SenderKey is the
// initiator's key and ReceiverKey the responder's.
type MPCapable struct {
	Variant     CapableVariant
	Version     uint8
	Flags       uint8
	SenderKey   uint64
	ReceiverKey uint64
	DataLen     uint16
	Checksum    uint16
}

// Len returns the option's length on the wire.
func (c MPCapable) Len() int { return int(c.Variant) }

// Append appends the option to b. Fields the variant does not carry are not
// written. An invalid Variant appends nothing.
func (c MPCapable) Append(b []byte) []byte {
	if !c.Variant.valid() {
		return b
	}
	b = header(b, c.Len(), SubtypeMPCapable, c.Version)
	b = append(b, c.Flags)
	if c.Variant >= CapableSYNACK {
		b = append64(b, c.SenderKey)
	}
	if c.Variant >= CapableACK {
		b = append64(b, c.ReceiverKey)
	}
	if c.Variant >= CapableData {
		b = append16(b, c.DataLen)
	}
	if c.Variant == CapableDataChecksum {
		b = append16(b, c.Checksum)
	}
	return b
}

// ChecksumRequired reports flag A.
func (c MPCapable) ChecksumRequired() bool { return c.Flags&CapableFlagChecksum != 0 }

// Usable reports whether a host may act on this option, by Linux's rules
// (mptcp_parse_option): version 1 (a SYN may offer a higher version, the
// answer then is version 1), H set and the other crypto bits clear, B clear.
// An MP_CAPABLE that is not usable is treated as absent, which leads to
// fallback to TCP (§3.1: "If ... B is set ... the receiver ... MUST fall
// back"; an unknown crypto algorithm cannot be agreed on).
func (c MPCapable) Usable() bool {
	if c.Variant == CapableSYN {
		if c.Version < capableSupportedVersion {
			return false
		}
	} else if c.Version != capableSupportedVersion {
		return false
	}
	return c.Flags&capableFlagCryptoMask == CapableFlagHMACSHA256 && c.Flags&CapableFlagExtensibility == 0
}

func (v CapableVariant) valid() bool {
	switch v {
	case CapableSYN, CapableSYNACK, CapableACK, CapableData, CapableDataChecksum:
		return true
	}
	return false
}

// capableLenOK implements Linux's strict size check: the segment decides the
// one length it may carry (a SYN 4, a SYN/ACK 12, an ACK without payload 20,
// one with payload 22 or 24).
func capableLenOK(l int, ctx Context) bool {
	if !CapableVariant(l).valid() {
		return false
	}
	if ctx.any() {
		return true
	}
	switch {
	case ctx.syn() && ctx.ack():
		return l == int(CapableSYNACK)
	case ctx.syn():
		return l == int(CapableSYN)
	case ctx.payload():
		return l == int(CapableData) || l == int(CapableDataChecksum)
	}
	return l == int(CapableACK)
}

func decodeMPCapable(b []byte) MPCapable {
	c := MPCapable{Variant: CapableVariant(len(b)), Version: b[2] & capableVersionMask}
	if len(b) < int(CapableSYN) {
		return MPCapable{}
	}
	c.Flags = b[3]
	if len(b) >= int(CapableSYNACK) {
		c.SenderKey = be64(b[4:])
	}
	if len(b) >= int(CapableACK) {
		c.ReceiverKey = be64(b[12:])
	}
	if len(b) >= int(CapableData) {
		c.DataLen = be16(b[20:])
	}
	if len(b) == int(CapableDataChecksum) {
		c.Checksum = be16(b[22:])
	}
	return c
}
