package bench

import (
	"net/netip"

	"github.com/umptcp/umptcp/options"
)

// maxFieldOpts bounds the MPTCP options a segFields records; a real segment
// carries at most three (DSS + ADD_ADDR + MP_PRIO, or MP_FASTCLOSE +
// MP_TCPRST on a RST).
const maxFieldOpts = 4

// segFields is what both sides of the parse comparison extract from a TCP
// segment: the header fields a stack needs to interpret the options, the
// timestamps, and every field of every well-formed MPTCP option. Filling
// the same struct keeps the two sides doing the same work.
type segFields struct {
	Flags        uint8 // TCP flags byte (FIN .. CWR)
	PayloadLen   int
	HasTS        bool
	TSVal, TSEcr uint32
	N            int
	Opts         [maxFieldOpts]optFields
}

// optFields holds the fields of one MPTCP option; which are set depends on
// the subtype.
type optFields struct {
	Subtype uint8
	Len     uint8
	// MP_CAPABLE
	Version, CapFlags      uint8
	SenderKey, ReceiverKey uint64
	// MP_JOIN
	Backup       bool // also MP_PRIO
	AddrID       uint8
	Token, Nonce uint32
	HMAC         [options.JoinHMACLen]byte
	// DSS (DataLen and Checksum also MP_CAPABLE's)
	DSSFlags     uint8
	DataAck, DSN uint64 // DSN also MP_FAIL's
	SubflowSeq   uint32
	DataLen      uint16
	HasChecksum  bool
	Checksum     uint16
	// ADD_ADDR (AddrID above), REMOVE_ADDR (first ID in AddrID, count in NIDs)
	Echo     bool
	Addr     netip.Addr
	HasPort  bool
	Port     uint16
	AddrHMAC uint64
	NIDs     uint8
	// MP_FASTCLOSE (ReceiverKey above), MP_TCPRST
	RstFlags, Reason uint8
}

// parseOurs is the umptcp way: the minimal TCP header parse (data offset,
// flags, payload length), Segment.Parse over the option area, then the
// typed values of the options.
func parseOurs(seg []byte, s *options.Segment, f *segFields) bool {
	if len(seg) < 20 {
		return false
	}
	hdr := int(seg[12]>>4) * 4
	if hdr < 20 || hdr > len(seg) {
		return false
	}
	f.Flags = seg[13]
	f.PayloadLen = len(seg) - hdr
	s.Parse(seg[20:hdr], options.ContextOf(seg[13], f.PayloadLen))
	f.HasTS, f.TSVal, f.TSEcr = s.HasTimestamp, s.TSVal, s.TSEcr
	f.N = 0
	for i := range s.N {
		o := &s.Options[i]
		if o.Malformed || f.N == maxFieldOpts {
			continue
		}
		of := &f.Opts[f.N]
		*of = optFields{Subtype: uint8(o.Subtype), Len: uint8(o.Len())}
		switch o.Subtype {
		case options.SubtypeMPCapable:
			c := o.MPCapable()
			of.Version, of.CapFlags, of.SenderKey, of.ReceiverKey = c.Version, c.Flags, c.SenderKey, c.ReceiverKey
			of.DataLen, of.Checksum = c.DataLen, c.Checksum
		case options.SubtypeMPJoin:
			j := o.MPJoin()
			of.Backup, of.AddrID, of.Token, of.Nonce, of.HMAC = j.Backup, j.AddrID, j.Token, j.Nonce, j.HMAC
		case options.SubtypeDSS:
			var d options.DSS
			o.DecodeDSS(&d)
			of.DSSFlags, of.DataAck, of.DSN, of.SubflowSeq = d.Flags(), d.DataAck, d.DSN, d.SubflowSeq
			of.DataLen, of.HasChecksum, of.Checksum = d.DataLen, d.HasChecksum, d.Checksum
		case options.SubtypeAddAddr:
			a := o.AddAddr()
			of.Echo, of.AddrID, of.Addr, of.HasPort, of.Port, of.AddrHMAC = a.Echo, a.AddrID, a.Addr, a.HasPort, a.Port, a.HMAC
		case options.SubtypeRemoveAddr:
			r := o.RemoveAddr()
			of.NIDs, of.AddrID = r.N, r.IDs[0]
		case options.SubtypeMPPrio:
			of.Backup = o.MPPrio().Backup
		case options.SubtypeMPFail:
			of.DSN = o.MPFail().DSN
		case options.SubtypeMPFastClose:
			of.ReceiverKey = o.MPFastClose().ReceiverKey
		case options.SubtypeMPTCPRst:
			r := o.MPTCPRst()
			of.RstFlags, of.Reason = r.Flags, r.Reason
		default:
			continue // MP_EXPERIMENTAL, undefined subtypes: not recorded
		}
		f.N++
	}
	return true
}
