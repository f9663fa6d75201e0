package options

import "encoding/binary"

// Kind is the TCP option kind assigned to Multipath TCP (RFC 8684 §8).
const Kind = 30

// MaxTCPOptionsLen is the room for options in a TCP header: a 4-bit data
// offset counts at most 60 bytes of header, 20 of which are fixed.
const MaxTCPOptionsLen = 40

// Subtype is the MPTCP option subtype, the high nibble of the option's third
// byte (RFC 8684 §3, Table 1 of §8).
type Subtype uint8

// The subtypes RFC 8684 defines.
const (
	SubtypeMPCapable    Subtype = 0x0
	SubtypeMPJoin       Subtype = 0x1
	SubtypeDSS          Subtype = 0x2
	SubtypeAddAddr      Subtype = 0x3
	SubtypeRemoveAddr   Subtype = 0x4
	SubtypeMPPrio       Subtype = 0x5
	SubtypeMPFail       Subtype = 0x6
	SubtypeMPFastClose  Subtype = 0x7
	SubtypeMPTCPRst     Subtype = 0x8
	SubtypeExperimental Subtype = 0xf
)

// String returns the subtype's name as RFC 8684 and Wireshark spell it, or
// "UNKNOWN" for a subtype the RFC does not define.
func (s Subtype) String() string {
	switch s {
	case SubtypeMPCapable:
		return "MP_CAPABLE"
	case SubtypeMPJoin:
		return "MP_JOIN"
	case SubtypeDSS:
		return "DSS"
	case SubtypeAddAddr:
		return "ADD_ADDR"
	case SubtypeRemoveAddr:
		return "REMOVE_ADDR"
	case SubtypeMPPrio:
		return "MP_PRIO"
	case SubtypeMPFail:
		return "MP_FAIL"
	case SubtypeMPFastClose:
		return "MP_FASTCLOSE"
	case SubtypeMPTCPRst:
		return "MP_TCPRST"
	case SubtypeExperimental:
		return "MP_EXPERIMENTAL"
	}
	return "UNKNOWN"
}

// Known reports whether RFC 8684 defines the subtype.
func (s Subtype) Known() bool { return s <= SubtypeMPTCPRst || s == SubtypeExperimental }

// Context describes the TCP segment an option travels in. RFC 8684 gives
// MP_CAPABLE and MP_JOIN a different layout on the SYN, the SYN/ACK and the
// ACK (§3.1, §3.2), and MP_TCPRST is only meaningful on a RST (§3.6); Linux
// (net/mptcp/options.c, mptcp_parse_option) picks the one layout it accepts
// from the segment's flags and whether it carries payload, and ignores an
// option of any other length. We do the same.
type Context uint8

// Context bits. A Context with AnyContext set accepts every length that some
// segment could carry, which is what a decoder without the segment wants.
const (
	ContextSYN Context = 1 << iota
	ContextACK
	ContextRST
	ContextPayload
	AnyContext
)

// TCP header flag bits, as in the 14th byte of the TCP header.
const (
	tcpFlagFIN = 0x01
	tcpFlagSYN = 0x02
	tcpFlagRST = 0x04
	tcpFlagACK = 0x10
)

// ContextOf returns the Context of a segment with the given TCP flags byte
// (byte 13 of the TCP header) and payload length.
func ContextOf(tcpFlags uint8, payloadLen int) Context {
	var c Context
	if tcpFlags&tcpFlagSYN != 0 {
		c |= ContextSYN
	}
	if tcpFlags&tcpFlagACK != 0 {
		c |= ContextACK
	}
	if tcpFlags&tcpFlagRST != 0 {
		c |= ContextRST
	}
	if payloadLen > 0 {
		c |= ContextPayload
	}
	return c
}

func (c Context) any() bool     { return c&AnyContext != 0 }
func (c Context) syn() bool     { return c&ContextSYN != 0 }
func (c Context) ack() bool     { return c&ContextACK != 0 }
func (c Context) rst() bool     { return c&ContextRST != 0 }
func (c Context) payload() bool { return c&ContextPayload != 0 }

// Option is one MPTCP option as found in a segment: its subtype, whether it
// matched a variant, and its bytes (kind and length included), which alias
// the buffer it was parsed from. The typed accessors (MPCapable, DSS, ...)
// decode the bytes; they are valid only when Subtype says so and Malformed is
// false, and return the zero value otherwise.
type Option struct {
	Subtype Subtype
	// Malformed reports that the option matched no variant of its subtype for
	// its length and segment: it must be ignored (RFC 8684 §3: "ignored",
	// as Linux does). Unknown subtypes are not malformed.
	Malformed bool
	// Raw is the whole option: kind, length, subtype and the rest.
	Raw []byte
}

// Len returns the option's length byte.
func (o *Option) Len() int { return len(o.Raw) }

// Valid reports whether o is of subtype s and well formed.
func (o *Option) Valid(s Subtype) bool { return !o.Malformed && o.Subtype == s && len(o.Raw) >= 3 }

// Parse parses the MPTCP option at the start of b (b[0] must be Kind) sent in
// a segment described by ctx. It returns the option and the number of bytes
// it spans. ok is false when b does not hold a whole option (fewer than three
// bytes, a length byte below 3 or beyond b): the rest of the option area
// cannot be trusted then, as in Linux's mptcp_get_options.
func Parse(b []byte, ctx Context) (o Option, n int, ok bool) {
	if len(b) < 3 || b[0] != Kind {
		return Option{}, 0, false
	}
	l := int(b[1])
	if l < 3 || l > len(b) {
		return Option{}, 0, false
	}
	raw := b[:l:l]
	st := Subtype(raw[2] >> 4)
	return Option{Subtype: st, Malformed: !wellFormed(st, raw, ctx), Raw: raw}, l, true
}

// wellFormed decides whether raw (length already checked against the buffer)
// is one of the variants of st that a segment described by ctx may carry.
func wellFormed(st Subtype, raw []byte, ctx Context) bool {
	l := len(raw)
	switch st {
	case SubtypeMPCapable:
		return capableLenOK(l, ctx)
	case SubtypeMPJoin:
		return joinLenOK(l, ctx)
	case SubtypeDSS:
		return l >= 4 && dssLenOK(raw[3], l)
	case SubtypeAddAddr:
		return addAddrLenOK(raw[2]&addAddrFlagEcho != 0, l)
	case SubtypeRemoveAddr:
		return l >= removeAddrBaseLen+1 && l <= removeAddrBaseLen+MaxRemoveAddrIDs
	case SubtypeMPPrio:
		return l == mpPrioLen
	case SubtypeMPFail:
		return l == mpFailLen
	case SubtypeMPFastClose:
		return l == mpFastCloseLen
	case SubtypeMPTCPRst:
		// Linux ignores MP_TCPRST on a segment without RST (§3.6).
		return l == mpTCPRstLen && (ctx.any() || ctx.rst())
	}
	// MP_EXPERIMENTAL and subtypes the RFC does not define: reported as they
	// are, for the caller to ignore (§3: unknown options are ignored).
	return true
}

// MPCapable decodes an MP_CAPABLE option.
func (o *Option) MPCapable() MPCapable {
	if !o.Valid(SubtypeMPCapable) {
		return MPCapable{}
	}
	return decodeMPCapable(o.Raw)
}

// MPJoin decodes an MP_JOIN option.
func (o *Option) MPJoin() MPJoin {
	if !o.Valid(SubtypeMPJoin) {
		return MPJoin{}
	}
	return decodeMPJoin(o.Raw)
}

// DSS decodes a DSS option. Hot paths use DecodeDSS.
func (o *Option) DSS() (d DSS) {
	o.DecodeDSS(&d)
	return d
}

// DecodeDSS decodes a DSS option into d and reports whether o is a
// well-formed DSS (d is zero otherwise). It is DSS for the paths that run
// on every segment: a DSS returned by value is copied with wide loads
// right after the narrow stores that built it, which stalls the CPU
// (about 3 ns a segment in the codec benchmark).
func (o *Option) DecodeDSS(d *DSS) bool {
	*d = DSS{}
	if !o.Valid(SubtypeDSS) {
		return false
	}
	b := o.Raw
	flags := b[3] & dssFlagMask
	d.DataFIN = flags&DSSFlagDataFIN != 0
	p := dssBaseLen
	if flags&DSSFlagAck != 0 {
		d.HasAck = true
		if flags&DSSFlagAck64 != 0 {
			d.Ack64 = true
			d.DataAck = be64(b[p : p+8])
			p += dssAck64Len
		} else {
			d.DataAck = uint64(be32(b[p : p+4]))
			p += dssAck32Len
		}
	}
	if flags&DSSFlagMapping == 0 {
		return true
	}
	d.HasMapping = true
	if flags&DSSFlagDSN64 != 0 {
		d.DSN64 = true
		d.DSN = be64(b[p : p+8])
		p += dssDSN64Len
	} else {
		d.DSN = uint64(be32(b[p : p+4]))
		p += dssDSN32Len
	}
	m := b[p : p+dssMapTailLen]
	d.SubflowSeq = be32(m)
	d.DataLen = be16(m[4:])
	p += dssMapTailLen
	if len(b) >= p+dssChecksumLen {
		d.HasChecksum = true
		d.Checksum = be16(b[p : p+2])
	}
	return true
}

// AddAddr decodes an ADD_ADDR option.
func (o *Option) AddAddr() AddAddr {
	if !o.Valid(SubtypeAddAddr) {
		return AddAddr{}
	}
	return decodeAddAddr(o.Raw)
}

// RemoveAddr decodes a REMOVE_ADDR option.
func (o *Option) RemoveAddr() RemoveAddr {
	if !o.Valid(SubtypeRemoveAddr) {
		return RemoveAddr{}
	}
	return decodeRemoveAddr(o.Raw)
}

// MPPrio decodes an MP_PRIO option.
func (o *Option) MPPrio() MPPrio {
	if !o.Valid(SubtypeMPPrio) {
		return MPPrio{}
	}
	return decodeMPPrio(o.Raw)
}

// MPFail decodes an MP_FAIL option.
func (o *Option) MPFail() MPFail {
	if !o.Valid(SubtypeMPFail) {
		return MPFail{}
	}
	return decodeMPFail(o.Raw)
}

// MPFastClose decodes an MP_FASTCLOSE option.
func (o *Option) MPFastClose() MPFastClose {
	if !o.Valid(SubtypeMPFastClose) {
		return MPFastClose{}
	}
	return decodeMPFastClose(o.Raw)
}

// MPTCPRst decodes an MP_TCPRST option.
func (o *Option) MPTCPRst() MPTCPRst {
	if !o.Valid(SubtypeMPTCPRst) {
		return MPTCPRst{}
	}
	return decodeMPTCPRst(o.Raw)
}

// header appends the three bytes every MPTCP option starts with: kind,
// length, and the subtype in the high nibble with low the low nibble.
func header(b []byte, length int, st Subtype, low uint8) []byte {
	return append(b, Kind, byte(length), byte(st)<<4|low&0x0f)
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func append16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }
func append32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func append64(b []byte, v uint64) []byte { return append32(append32(b, uint32(v>>32)), uint32(v)) }
