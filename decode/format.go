package decode

import (
	"strconv"

	"github.com/umptcp/umptcp/options"
)

// AppendFlags appends the TCP flags the way tcpdump prints them, in its
// order F S R P . U E W, "." standing for ACK ("S." is a SYN/ACK), or
// "none".
func AppendFlags(b []byte, flags uint8) []byte {
	n := len(b)
	for _, f := range [...]struct {
		bit uint8
		c   byte
	}{{FlagFIN, 'F'}, {FlagSYN, 'S'}, {FlagRST, 'R'}, {FlagPSH, 'P'}, {FlagACK, '.'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'W'}} {
		if flags&f.bit != 0 {
			b = append(b, f.c)
		}
	}
	if len(b) == n {
		b = append(b, "none"...)
	}
	return b
}

// AppendText appends one line (with its newline) for the i-th MPTCP option
// of p, in the style of tcpdump's MPTCP printer:
//
//	5 10.0.0.1:43672 > 10.0.0.2:8080 [P.] length 1448 mptcp dss ack 1509162187 seq 15682291843750388447 subseq 1 len 1448
func AppendText(b []byte, p *Packet, i int) []byte {
	o := &p.Options[i]
	b = strconv.AppendInt(b, int64(p.Frame), 10)
	b = append(b, ' ')
	b = p.Src.AppendTo(b)
	b = append(b, " > "...)
	b = p.Dst.AppendTo(b)
	b = append(b, " ["...)
	b = AppendFlags(b, p.Flags)
	b = append(b, "] length "...)
	b = strconv.AppendInt(b, int64(p.PayloadLen), 10)
	b = append(b, " mptcp "...)
	b = AppendOptionText(b, o)
	return append(b, '\n')
}

// textName is the option's name in text output, as tcpdump spells it where
// it has one.
func textName(st options.Subtype) string {
	switch st {
	case options.SubtypeMPCapable:
		return "capable"
	case options.SubtypeMPJoin:
		return "join"
	case options.SubtypeDSS:
		return "dss"
	case options.SubtypeAddAddr:
		return "add-addr"
	case options.SubtypeRemoveAddr:
		return "remove-addr"
	case options.SubtypeMPPrio:
		return "prio"
	case options.SubtypeMPFail:
		return "fail"
	case options.SubtypeMPFastClose:
		return "fast-close"
	case options.SubtypeMPTCPRst:
		return "tcprst"
	case options.SubtypeExperimental:
		return "experimental"
	}
	return "unknown"
}

func appendHex(b []byte, v uint64) []byte {
	b = append(b, "0x"...)
	return strconv.AppendUint(b, v, 16)
}

func appendUint(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) }

const hexDigits = "0123456789abcdef"

func appendHexBytes(b []byte, v []byte) []byte {
	for _, c := range v {
		b = append(b, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return b
}

// appendHex64 appends v as 16 lowercase hex digits.
func appendHex64(b []byte, v uint64) []byte {
	for s := 60; s >= 0; s -= 4 {
		b = append(b, hexDigits[v>>uint(s)&0x0f])
	}
	return b
}

// AppendOptionText appends the text rendering of one MPTCP option, without
// the frame prefix: e.g. "dss ack 123 seq 456 subseq 1 len 1448 csum 0xbeef".
func AppendOptionText(b []byte, o *options.Option) []byte {
	st, known := OptionSubtype(o)
	if o.Malformed {
		if known {
			b = append(b, textName(st)...)
			b = append(b, ' ')
		}
		b = append(b, "malformed"...)
		if l, ok := OptionLen(o); ok {
			b = append(b, " len "...)
			b = appendUint(b, uint64(l))
		}
		return b
	}
	b = append(b, textName(st)...)
	switch st {
	case options.SubtypeMPCapable:
		c := o.MPCapable()
		b = append(b, " v"...)
		b = appendUint(b, uint64(c.Version))
		b = append(b, " flags "...)
		b = appendHex(b, uint64(c.Flags))
		if c.Variant >= options.CapableSYNACK {
			b = append(b, " {"...)
			b = appendHex(b, c.SenderKey)
			if c.Variant >= options.CapableACK {
				b = append(b, ',')
				b = appendHex(b, c.ReceiverKey)
			}
			b = append(b, '}')
		}
		if c.Variant >= options.CapableData {
			b = append(b, " data_len "...)
			b = appendUint(b, uint64(c.DataLen))
		}
		if c.Variant == options.CapableDataChecksum {
			b = append(b, " csum "...)
			b = appendHex(b, uint64(c.Checksum))
		}
	case options.SubtypeMPJoin:
		j := o.MPJoin()
		if j.Variant != options.JoinACK {
			if j.Backup {
				b = append(b, " backup"...)
			}
			b = append(b, " id "...)
			b = appendUint(b, uint64(j.AddrID))
		}
		switch j.Variant {
		case options.JoinSYN:
			b = append(b, " token "...)
			b = appendHex(b, uint64(j.Token))
			b = append(b, " nonce "...)
			b = appendHex(b, uint64(j.Nonce))
		case options.JoinSYNACK:
			b = append(b, " hmac 0x"...)
			b = appendHexBytes(b, j.HMACBytes())
			b = append(b, " nonce "...)
			b = appendHex(b, uint64(j.Nonce))
		case options.JoinACK:
			b = append(b, " hmac 0x"...)
			b = appendHexBytes(b, j.HMACBytes())
		}
	case options.SubtypeDSS:
		d := o.DSS()
		if d.DataFIN {
			b = append(b, " fin"...)
		}
		if d.HasAck {
			b = append(b, " ack "...)
			b = appendUint(b, d.DataAck)
		}
		if d.HasMapping {
			b = append(b, " seq "...)
			b = appendUint(b, d.DSN)
			b = append(b, " subseq "...)
			b = appendUint(b, uint64(d.SubflowSeq))
			b = append(b, " len "...)
			b = appendUint(b, uint64(d.DataLen))
			if d.HasChecksum {
				b = append(b, " csum "...)
				b = appendHex(b, uint64(d.Checksum))
			}
		}
	case options.SubtypeAddAddr:
		a := o.AddAddr()
		if a.Echo {
			b = append(b, " echo"...)
		}
		b = append(b, " id "...)
		b = appendUint(b, uint64(a.AddrID))
		b = append(b, ' ')
		b = appendAddr(b, &a)
		if !a.Echo {
			b = append(b, " hmac 0x"...)
			b = appendHex64(b, a.HMAC)
		}
	case options.SubtypeRemoveAddr:
		r := o.RemoveAddr()
		b = append(b, " id"...)
		for _, id := range r.List() {
			b = append(b, ' ')
			b = appendUint(b, uint64(id))
		}
	case options.SubtypeMPPrio:
		if o.MPPrio().Backup {
			b = append(b, " backup"...)
		} else {
			b = append(b, " non-backup"...)
		}
	case options.SubtypeMPFail:
		b = append(b, " seq "...)
		b = appendUint(b, o.MPFail().DSN)
	case options.SubtypeMPFastClose:
		b = append(b, " key "...)
		b = appendHex(b, o.MPFastClose().ReceiverKey)
	case options.SubtypeMPTCPRst:
		r := o.MPTCPRst()
		b = append(b, " flags "...)
		b = appendHex(b, uint64(r.Flags))
		if r.Transient() {
			b = append(b, " transient"...)
		}
		b = append(b, " reason "...)
		b = appendUint(b, uint64(r.Reason))
		b = append(b, " ("...)
		b = append(b, options.TCPRstReasonString(r.Reason)...)
		b = append(b, ')')
	default:
		if st != options.SubtypeExperimental {
			b = append(b, " subtype "...)
			b = appendUint(b, uint64(st))
		}
		b = append(b, " len "...)
		b = appendUint(b, uint64(len(o.Raw)))
	}
	return b
}

// appendAddr appends an ADD_ADDR's address as tcpdump and Go write host and
// port: "10.0.0.2", "10.0.0.2:8080", "fd00::2", "[fd00::2]:8080".
func appendAddr(b []byte, a *options.AddAddr) []byte {
	if !a.HasPort {
		return a.Addr.AppendTo(b)
	}
	if a.Addr.Is6() {
		b = append(b, '[')
		b = a.Addr.AppendTo(b)
		b = append(b, ']')
	} else {
		b = a.Addr.AppendTo(b)
	}
	b = append(b, ':')
	return appendUint(b, uint64(a.Port))
}

// jsonObj builds one JSON object by appending; keys and string values are
// known not to need escaping.
type jsonObj struct{ b []byte }

func (j *jsonObj) key(k string) {
	if j.b[len(j.b)-1] != '{' {
		j.b = append(j.b, ',')
	}
	j.b = append(j.b, '"')
	j.b = append(j.b, k...)
	j.b = append(j.b, '"', ':')
}

func (j *jsonObj) uint(k string, v uint64) { j.key(k); j.b = strconv.AppendUint(j.b, v, 10) }
func (j *jsonObj) bool(k string, v bool)   { j.key(k); j.b = strconv.AppendBool(j.b, v) }
func (j *jsonObj) str(k, v string) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = append(j.b, v...)
	j.b = append(j.b, '"')
}

// AppendJSON appends one JSON object (with its newline) for the i-th MPTCP
// option of p. The fields are described in the package documentation.
func AppendJSON(b []byte, p *Packet, i int) []byte {
	o := &p.Options[i]
	j := jsonObj{b: append(b, '{')}
	j.uint("frame", uint64(p.Frame))
	j.key("src")
	j.b = append(j.b, '"')
	j.b = p.Src.AppendTo(j.b)
	j.b = append(j.b, '"')
	j.key("dst")
	j.b = append(j.b, '"')
	j.b = p.Dst.AppendTo(j.b)
	j.b = append(j.b, '"')
	j.appendOption(o)
	return append(j.b, '}', '\n')
}

func (j *jsonObj) appendOption(o *options.Option) {
	st, known := OptionSubtype(o)
	if known {
		j.str("subtype", st.String())
	}
	if l, ok := OptionLen(o); ok {
		j.uint("len", uint64(l))
	}
	if o.Malformed {
		j.bool("malformed", true)
		return
	}
	switch st {
	case options.SubtypeMPCapable:
		c := o.MPCapable()
		j.uint("version", uint64(c.Version))
		j.uint("flags", uint64(c.Flags))
		if c.Variant >= options.CapableSYNACK {
			j.uint("sender_key", c.SenderKey)
		}
		if c.Variant >= options.CapableACK {
			j.uint("receiver_key", c.ReceiverKey)
		}
		if c.Variant >= options.CapableData {
			j.uint("data_len", uint64(c.DataLen))
		}
		if c.Variant == options.CapableDataChecksum {
			j.uint("checksum", uint64(c.Checksum))
		}
	case options.SubtypeMPJoin:
		m := o.MPJoin()
		if m.Variant != options.JoinACK {
			j.bool("backup", m.Backup)
			j.uint("addr_id", uint64(m.AddrID))
		}
		if m.Variant == options.JoinSYN {
			j.uint("token", uint64(m.Token))
		}
		if m.Variant != options.JoinACK {
			j.uint("nonce", uint64(m.Nonce))
		}
		if h := m.HMACBytes(); len(h) > 0 {
			j.key("hmac")
			j.b = append(j.b, '"')
			j.b = appendHexBytes(j.b, h)
			j.b = append(j.b, '"')
		}
	case options.SubtypeDSS:
		d := o.DSS()
		j.bool("data_fin", d.DataFIN)
		if d.HasAck {
			j.uint("data_ack", d.DataAck)
			j.bool("data_ack_64", d.Ack64)
		}
		if d.HasMapping {
			j.uint("dsn", d.DSN)
			j.bool("dsn_64", d.DSN64)
			j.uint("ssn", uint64(d.SubflowSeq))
			j.uint("data_len", uint64(d.DataLen))
			if d.HasChecksum {
				j.uint("checksum", uint64(d.Checksum))
			}
		}
	case options.SubtypeAddAddr:
		a := o.AddAddr()
		j.bool("echo", a.Echo)
		j.uint("addr_id", uint64(a.AddrID))
		j.key("addr")
		j.b = append(j.b, '"')
		j.b = a.Addr.AppendTo(j.b)
		j.b = append(j.b, '"')
		if a.HasPort {
			j.uint("port", uint64(a.Port))
		}
		if !a.Echo {
			j.key("hmac")
			j.b = append(j.b, '"')
			j.b = appendHex64(j.b, a.HMAC)
			j.b = append(j.b, '"')
		}
	case options.SubtypeRemoveAddr:
		r := o.RemoveAddr()
		j.key("addr_ids")
		j.b = append(j.b, '[')
		for k, id := range r.List() {
			if k > 0 {
				j.b = append(j.b, ',')
			}
			j.b = appendUint(j.b, uint64(id))
		}
		j.b = append(j.b, ']')
	case options.SubtypeMPPrio:
		j.bool("backup", o.MPPrio().Backup)
	case options.SubtypeMPFail:
		j.uint("dsn", o.MPFail().DSN)
	case options.SubtypeMPFastClose:
		j.uint("receiver_key", o.MPFastClose().ReceiverKey)
	case options.SubtypeMPTCPRst:
		r := o.MPTCPRst()
		j.uint("reason", uint64(r.Reason))
		j.bool("transient", r.Transient())
		j.uint("flags", uint64(r.Flags))
	}
}
