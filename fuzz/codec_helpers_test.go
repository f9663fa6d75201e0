package fuzz

import (
	"github.com/umptcp/umptcp/options"
)

// builder is what every typed option value implements.
type builder interface {
	Len() int
	Append([]byte) []byte
}

// decoded returns the typed value of a well-formed option of a subtype RFC
// 8684 gives a layout, or nil.
func decoded(o *options.Option) builder {
	switch o.Subtype {
	case options.SubtypeMPCapable:
		return o.MPCapable()
	case options.SubtypeMPJoin:
		return o.MPJoin()
	case options.SubtypeDSS:
		return o.DSS()
	case options.SubtypeAddAddr:
		return o.AddAddr()
	case options.SubtypeRemoveAddr:
		return o.RemoveAddr()
	case options.SubtypeMPPrio:
		return o.MPPrio()
	case options.SubtypeMPFail:
		return o.MPFail()
	case options.SubtypeMPFastClose:
		return o.MPFastClose()
	case options.SubtypeMPTCPRst:
		return o.MPTCPRst()
	}
	return nil
}

// accessors calls every typed accessor of o, in subtype order, so that a
// test can check that those of other subtypes return zero values.
func accessors(o *options.Option) [9]builder {
	return [9]builder{o.MPCapable(), o.MPJoin(), o.DSS(), o.AddAddr(), o.RemoveAddr(),
		o.MPPrio(), o.MPFail(), o.MPFastClose(), o.MPTCPRst()}
}

// zeroAccessors is what accessors returns for an option of no known subtype.
var zeroAccessors = [9]builder{options.MPCapable{}, options.MPJoin{}, options.DSS{}, options.AddAddr{},
	options.RemoveAddr{}, options.MPPrio{}, options.MPFail{}, options.MPFastClose{}, options.MPTCPRst{}}

// canonical returns a copy of the well-formed option raw with the bits the
// encoder cannot reproduce cleared: the reserved bits of each layout
// (RFC 8684 figures), and in a DSS the a and m bits when A and M, which
// give them a meaning, are clear. Append of the decoded value must give
// exactly these bytes.
func canonical(raw []byte) []byte {
	c := append([]byte(nil), raw...)
	switch options.Subtype(c[2] >> 4) {
	case options.SubtypeMPJoin:
		if len(c) == int(options.JoinACK) {
			c[2] &^= 0x0f // 12 reserved bits (§3.2, Figure 7)
			c[3] = 0
		} else {
			c[2] &^= 0x0e // backup flag only (Figures 5, 6)
		}
	case options.SubtypeDSS:
		c[2] &^= 0x0f
		c[3] &= 0x1f
		if c[3]&options.DSSFlagAck == 0 {
			c[3] &^= options.DSSFlagAck64
		}
		if c[3]&options.DSSFlagMapping == 0 {
			c[3] &^= options.DSSFlagDSN64
		}
	case options.SubtypeAddAddr, options.SubtypeMPPrio:
		c[2] &^= 0x0e // E (ADD_ADDR) or B (MP_PRIO) only
	case options.SubtypeRemoveAddr:
		c[2] &^= 0x0f
	case options.SubtypeMPFail, options.SubtypeMPFastClose:
		c[2] &^= 0x0f // 12 reserved bits (§3.7, §3.5)
		c[3] = 0
	}
	// MP_CAPABLE: version nibble and eight flag bits, all kept.
	// MP_TCPRST: U V W T and the reason, all kept.
	return c
}
