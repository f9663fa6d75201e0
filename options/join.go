package options

// JoinVariant names the layout of an MP_JOIN option; its value is the
// option's length (RFC 8684 §3.2, Figures 5–7).
type JoinVariant uint8

// The MP_JOIN variants.
const (
	// JoinSYN: backup flag, address ID, the receiver's token, the sender's
	// random nonce.
	JoinSYN JoinVariant = 12
	// JoinSYNACK: backup flag, address ID, the leftmost 64 bits of the
	// responder's HMAC, the responder's nonce.
	JoinSYNACK JoinVariant = 16
	// JoinACK: the leftmost 160 bits of the initiator's HMAC.
	JoinACK JoinVariant = 24
)

const (
	joinFlagBackup = 0x01
	// JoinTruncatedHMACLen is the HMAC length in a JoinSYNACK.
	JoinTruncatedHMACLen = 8
	// JoinHMACLen is the HMAC length in a JoinACK.
	JoinHMACLen = 20
)

// MPJoin is the MP_JOIN option (§3.2). Backup and AddrID are carried by the
// SYN and SYN/ACK, Token only by the SYN, Nonce by the SYN and SYN/ACK. HMAC
// holds the bytes on the wire: the first 8 in a SYN/ACK (see TruncatedHMAC),
// all 20 in the third ACK.
type MPJoin struct {
	Variant JoinVariant
	Backup  bool
	AddrID  uint8
	Token   uint32
	Nonce   uint32
	HMAC    [JoinHMACLen]byte
}

// Len returns the option's length on the wire.
func (j MPJoin) Len() int { return int(j.Variant) }

// TruncatedHMAC returns the 64-bit HMAC of a SYN/ACK as a number.
func (j MPJoin) TruncatedHMAC() uint64 { return be64(j.HMAC[:]) }

// HMACBytes returns the HMAC bytes the variant carries (8 or 20; none in a
// SYN). The slice aliases j.
func (j *MPJoin) HMACBytes() []byte {
	switch j.Variant {
	case JoinSYNACK:
		return j.HMAC[:JoinTruncatedHMACLen]
	case JoinACK:
		return j.HMAC[:]
	}
	return nil
}

// Append appends the option to b. An invalid Variant appends nothing.
func (j MPJoin) Append(b []byte) []byte {
	var flags uint8
	if j.Backup {
		flags = joinFlagBackup
	}
	switch j.Variant {
	case JoinSYN:
		b = header(b, j.Len(), SubtypeMPJoin, flags)
		b = append(b, j.AddrID)
		b = append32(b, j.Token)
		return append32(b, j.Nonce)
	case JoinSYNACK:
		b = header(b, j.Len(), SubtypeMPJoin, flags)
		b = append(b, j.AddrID)
		b = append(b, j.HMAC[:JoinTruncatedHMACLen]...)
		return append32(b, j.Nonce)
	case JoinACK:
		// 12 reserved bits after the subtype (§3.2, Figure 7).
		b = header(b, j.Len(), SubtypeMPJoin, 0)
		b = append(b, 0)
		return append(b, j.HMAC[:]...)
	}
	return b
}

// joinLenOK: the SYN carries 12, the SYN/ACK 16, any later segment 24. Linux
// decides by length alone and checks the segment later; deciding here keeps
// a SYN-sized join on an ACK from being taken for something it is not.
func joinLenOK(l int, ctx Context) bool {
	switch JoinVariant(l) {
	case JoinSYN:
		return ctx.any() || (ctx.syn() && !ctx.ack())
	case JoinSYNACK:
		return ctx.any() || (ctx.syn() && ctx.ack())
	case JoinACK:
		return ctx.any() || !ctx.syn()
	}
	return false
}

func decodeMPJoin(b []byte) MPJoin {
	j := MPJoin{Variant: JoinVariant(len(b))}
	switch j.Variant {
	case JoinSYN:
		j.Backup = b[2]&joinFlagBackup != 0
		j.AddrID = b[3]
		j.Token = be32(b[4:])
		j.Nonce = be32(b[8:])
	case JoinSYNACK:
		j.Backup = b[2]&joinFlagBackup != 0
		j.AddrID = b[3]
		copy(j.HMAC[:], b[4:12])
		j.Nonce = be32(b[12:])
	case JoinACK:
		copy(j.HMAC[:], b[4:24])
	default:
		return MPJoin{}
	}
	return j
}
