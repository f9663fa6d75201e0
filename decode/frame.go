package decode

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/umptcp/umptcp/options"
)

// LinkType is a capture file's link-layer header type (the LINKTYPE_ values
// of https://www.tcpdump.org/linktypes.html).
type LinkType uint32

// The link types Decode understands.
const (
	LinkNull      LinkType = 0   // BSD loopback: 4-byte address family, host byte order
	LinkEthernet  LinkType = 1   // Ethernet II, 802.1Q / 802.1ad tags
	LinkRawDLT12  LinkType = 12  // DLT_RAW as most systems number it: bare IPv4 or IPv6
	LinkRawDLT14  LinkType = 14  // DLT_RAW as OpenBSD numbers it
	LinkRaw       LinkType = 101 // LINKTYPE_RAW: bare IPv4 or IPv6
	LinkLoop      LinkType = 108 // OpenBSD loopback: 4-byte address family, network byte order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkIPv4      LinkType = 228 // bare IPv4
	LinkIPv6      LinkType = 229 // bare IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

// Status says what Decode made of a frame. Only a StatusTCP frame has its
// TCP fields and options filled in.
type Status uint8

// Frame statuses.
const (
	// StatusTCP: an IPv4 or IPv6 TCP segment whose IP and TCP headers were
	// captured whole.
	StatusTCP Status = iota
	// StatusUnsupportedLink: a link type Decode does not know.
	StatusUnsupportedLink
	// StatusNotIP: a link-layer frame that does not carry IPv4 or IPv6
	// (ARP, LLDP, another address family...).
	StatusNotIP
	// StatusNotTCP: an IP packet that is not TCP (or whose transport header is
	// behind ESP, which cannot be read).
	StatusNotTCP
	// StatusFragment: a non-first IP fragment: no TCP header.
	StatusFragment
	// StatusTruncated: the capture ends inside the link, IP or TCP header
	// (snap length too short).
	StatusTruncated
	// StatusMalformed: a header that cannot be right: a bad IP version, an
	// IHL below 5, a TCP data offset below 5, lengths that contradict each
	// other, too many IPv6 extension headers.
	StatusMalformed
)

func (s Status) String() string {
	switch s {
	case StatusTCP:
		return "tcp"
	case StatusUnsupportedLink:
		return "unsupported link type"
	case StatusNotIP:
		return "not IP"
	case StatusNotTCP:
		return "not TCP"
	case StatusFragment:
		return "IP fragment"
	case StatusTruncated:
		return "truncated headers"
	case StatusMalformed:
		return "malformed headers"
	}
	return "unknown"
}

// TCP flag bits of the 14th byte of the TCP header.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
	FlagECE = 0x40
	FlagCWR = 0x80
)

// maxOptions is the most MPTCP options a 40-byte option area holds, plus
// one for an MPTCP option cut short at its end.
const maxOptions = options.MaxPerSegment + 1

// Packet is one frame of a capture, decoded down to its MPTCP options.
// Decode and Reader.Next fill it in place and reuse its storage: Payload and
// the options alias the frame's bytes, valid until the next call.
type Packet struct {
	Frame     int       // 1-based index of the frame in the file
	Timestamp time.Time // capture time
	LinkType  LinkType
	// CaptureLength is the number of bytes captured, Length the frame's length
	// on the wire (more when the capture was cut at a snap length).
	CaptureLength, Length int
	// Data is the captured bytes of the frame, link header included.
	Data []byte

	Status Status // the fields below are meaningful only for StatusTCP

	IPVersion uint8 // 4 or 6
	// FirstFragment is set when the segment is the first fragment of a
	// fragmented IP packet: its payload is incomplete.
	FirstFragment bool
	Src, Dst      netip.AddrPort
	Seq, Ack      uint32
	Flags         uint8 // TCP flags byte (FlagSYN, ...)
	Window        uint16
	// PayloadLen is the TCP payload length from the IP header's lengths, which
	// holds even when the capture cut the payload short.
	PayloadLen int
	// Payload is the part of the payload that was captured (at most
	// PayloadLen bytes).
	Payload []byte
	// Options are the segment's MPTCP options, in order, parsed for the
	// segment's context (options.ContextOf). An MPTCP option whose length byte
	// is below 3 or runs past the option area ends the walk; it is the last
	// option, Malformed, and its Raw holds only the bytes present (see
	// OptionLen and OptionSubtype).
	Options []options.Option
	// OptionStatus is how the walk over the TCP option area ended.
	OptionStatus options.WalkStatus

	opts [maxOptions]options.Option
}

// Context returns the options.Context of the segment.
func (p *Packet) Context() options.Context { return options.ContextOf(p.Flags, p.PayloadLen) }

// OptionLen returns the length byte of an MPTCP option as found in a
// packet, and false when the option area ended before it.
func OptionLen(o *options.Option) (int, bool) {
	if len(o.Raw) < 2 {
		return 0, false
	}
	return int(o.Raw[1]), true
}

// OptionSubtype returns the subtype of an MPTCP option as found in a
// packet, and false when the option's bytes do not include it (a length
// byte below 3, or an area that ends first).
func OptionSubtype(o *options.Option) (options.Subtype, bool) {
	if len(o.Raw) < 3 || o.Raw[1] < 3 {
		return 0, false
	}
	return options.Subtype(o.Raw[2] >> 4), true
}

// Decode decodes one frame of link type lt: data is the captured bytes and
// length the frame's length on the wire (0 when unknown: taken as
// len(data)). It never allocates and never fails; what it could not decode
// is in p.Status. It does not touch p.Frame or p.Timestamp.
func Decode(lt LinkType, data []byte, length int, p *Packet) {
	p.LinkType = lt
	p.Data = data
	p.CaptureLength = len(data)
	if length < len(data) {
		length = len(data)
	}
	p.Length = length
	p.reset()
	p.Status = p.decodeLink(lt, data, length)
	if p.Status != StatusTCP {
		p.reset()
	}
}

func (p *Packet) reset() {
	p.IPVersion = 0
	p.FirstFragment = false
	p.Src, p.Dst = netip.AddrPort{}, netip.AddrPort{}
	p.Seq, p.Ack, p.Flags, p.Window = 0, 0, 0, 0
	p.PayloadLen = 0
	p.Payload = nil
	p.Options = p.opts[:0]
	p.OptionStatus = options.WalkOK
}

// Ethernet types.
const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88a8
	etherTypeQinQ2 = 0x9100 // pre-standard 802.1ad
	maxVLANTags    = 8
)

// Address families in the 4-byte header of DLT_NULL and DLT_LOOP: AF_INET is
// 2 everywhere, AF_INET6 differs by system.
const (
	afInet          = 2
	afInet6Linux    = 10
	afInet6BSD      = 24 // NetBSD, OpenBSD, BSD/OS
	afInet6FreeBSD  = 28
	afInet6Darwin   = 30
	afInet6Windows  = 23
	nullHeaderLen   = 4
	ethHeaderLen    = 14
	sllHeaderLen    = 16
	sll2HeaderLen   = 20
	ipv4MinHdrLen   = 20
	ipv6HdrLen      = 40
	tcpMinHdrLen    = 20
	maxIPv6ExtHdrs  = 16
	ipProtoTCP      = 6
	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6AH          = 51
	ipv6NoNext      = 59
	ipv6DestOpts    = 60
	ipv6Mobility    = 135
	ipv6HIP         = 139
	ipv6Shim6       = 140
	ipv6FragHdrLen  = 8
	ipv4FlagMF      = 0x2000
	ipv4FragOffMask = 0x1fff
)

func (p *Packet) decodeLink(lt LinkType, b []byte, length int) Status {
	switch lt {
	case LinkEthernet:
		if len(b) < ethHeaderLen {
			return StatusTruncated
		}
		return p.decodeEtherType(binary.BigEndian.Uint16(b[12:]), b[ethHeaderLen:], length-ethHeaderLen)
	case LinkLinuxSLL:
		if len(b) < sllHeaderLen {
			return StatusTruncated
		}
		return p.decodeEtherType(binary.BigEndian.Uint16(b[14:]), b[sllHeaderLen:], length-sllHeaderLen)
	case LinkLinuxSLL2:
		if len(b) < sll2HeaderLen {
			return StatusTruncated
		}
		return p.decodeEtherType(binary.BigEndian.Uint16(b[0:]), b[sll2HeaderLen:], length-sll2HeaderLen)
	case LinkNull, LinkLoop:
		// Either byte order for either type: DLT_NULL is in the capturing
		// host's order, DLT_LOOP in network order, and files travel.
		if len(b) < nullHeaderLen {
			return StatusTruncated
		}
		le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b)
		b, length = b[nullHeaderLen:], length-nullHeaderLen
		switch {
		case le == afInet || be == afInet:
			return p.decodeIPv4(b, length)
		case isAFInet6(le) || isAFInet6(be):
			return p.decodeIPv6(b, length)
		}
		return StatusNotIP
	case LinkRaw, LinkRawDLT12, LinkRawDLT14:
		if len(b) < 1 {
			return StatusTruncated
		}
		switch b[0] >> 4 {
		case 4:
			return p.decodeIPv4(b, length)
		case 6:
			return p.decodeIPv6(b, length)
		}
		return StatusNotIP
	case LinkIPv4:
		return p.decodeIPv4(b, length)
	case LinkIPv6:
		return p.decodeIPv6(b, length)
	}
	return StatusUnsupportedLink
}

func isAFInet6(f uint32) bool {
	switch f {
	case afInet6Linux, afInet6BSD, afInet6FreeBSD, afInet6Darwin, afInet6Windows:
		return true
	}
	return false
}

// decodeEtherType follows VLAN tags to the IP header. b starts after the
// link header that carried etype; length is what the wire had from there.
func (p *Packet) decodeEtherType(etype uint16, b []byte, length int) Status {
	for i := 0; ; i++ {
		switch etype {
		case etherTypeIPv4:
			return p.decodeIPv4(b, length)
		case etherTypeIPv6:
			return p.decodeIPv6(b, length)
		case etherTypeVLAN, etherTypeQinQ, etherTypeQinQ2:
			if i == maxVLANTags {
				return StatusMalformed
			}
			if len(b) < 4 {
				return StatusTruncated
			}
			etype = binary.BigEndian.Uint16(b[2:])
			b, length = b[4:], length-4
		default:
			return StatusNotIP
		}
	}
}

// decodeIPv4 decodes an IPv4 header at the start of b; length is the number
// of bytes the frame had on the wire from there.
func (p *Packet) decodeIPv4(b []byte, length int) Status {
	if len(b) < ipv4MinHdrLen {
		return StatusTruncated
	}
	if b[0]>>4 != 4 {
		return StatusMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < ipv4MinHdrLen {
		return StatusMalformed
	}
	if ihl > len(b) {
		return StatusTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total == 0 {
		// Linux BIG TCP and TSO super-packets seen by a capture on the
		// sender leave the total length 0: the frame length tells.
		total = length
	}
	if total > length {
		total = length
	}
	if total < ihl {
		return StatusMalformed
	}
	frag := binary.BigEndian.Uint16(b[6:])
	if frag&ipv4FragOffMask != 0 {
		return StatusFragment
	}
	if b[9] != ipProtoTCP {
		return StatusNotTCP
	}
	p.IPVersion = 4
	p.FirstFragment = frag&ipv4FlagMF != 0
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	return p.decodeTCP(src, dst, b[ihl:min(total, len(b))], total-ihl)
}

// decodeIPv6 decodes an IPv6 header and its extension headers at the start
// of b; length is the number of bytes the frame had on the wire from there.
func (p *Packet) decodeIPv6(b []byte, length int) Status {
	if len(b) < ipv6HdrLen {
		return StatusTruncated
	}
	if b[0]>>4 != 6 {
		return StatusMalformed
	}
	total := ipv6HdrLen + int(binary.BigEndian.Uint16(b[4:]))
	if total == ipv6HdrLen {
		// A jumbogram (RFC 2675) or a BIG TCP / TSO super-packet: the payload
		// length field is 0 and the frame length tells.
		total = length
	}
	if total > length {
		total = length
	}
	if total < ipv6HdrLen {
		return StatusMalformed
	}
	nh := b[6]
	off := ipv6HdrLen
	for i := 0; nh != ipProtoTCP; i++ {
		if i == maxIPv6ExtHdrs {
			return StatusMalformed
		}
		var hl int
		switch nh {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts, ipv6Mobility, ipv6HIP, ipv6Shim6:
			if off+2 > len(b) {
				return p.ipv6Short(off, total)
			}
			hl = (int(b[off+1]) + 1) * 8
		case ipv6Fragment:
			if off+ipv6FragHdrLen > len(b) {
				return p.ipv6Short(off, total)
			}
			fo := binary.BigEndian.Uint16(b[off+2:])
			if fo>>3 != 0 {
				return StatusFragment
			}
			if fo&1 != 0 {
				p.FirstFragment = true
			}
			hl = ipv6FragHdrLen
		case ipv6AH:
			if off+2 > len(b) {
				return p.ipv6Short(off, total)
			}
			hl = (int(b[off+1]) + 2) * 4
		default:
			// No Next Header, ESP (opaque), UDP, ICMPv6, ...
			return StatusNotTCP
		}
		nh = b[off]
		off += hl
		if off > total {
			return StatusMalformed
		}
	}
	if off > len(b) {
		return StatusTruncated
	}
	p.IPVersion = 6
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	return p.decodeTCP(src, dst, b[off:min(total, len(b))], total-off)
}

// ipv6Short classifies an extension header that does not fit: cut by the
// snap length, or beyond the packet's own length.
func (p *Packet) ipv6Short(off, total int) Status {
	if off+2 > total {
		return StatusMalformed
	}
	return StatusTruncated
}

// decodeTCP decodes the TCP header at the start of b, the captured part of
// a TCP segment of segLen bytes.
func (p *Packet) decodeTCP(src, dst netip.Addr, b []byte, segLen int) Status {
	if segLen < tcpMinHdrLen {
		if len(b) < segLen {
			return StatusTruncated
		}
		return StatusMalformed
	}
	if len(b) < tcpMinHdrLen {
		return StatusTruncated
	}
	doff := int(b[12]>>4) * 4
	if doff < tcpMinHdrLen || doff > segLen {
		return StatusMalformed
	}
	if doff > len(b) {
		return StatusTruncated
	}
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:]))
	p.Seq = binary.BigEndian.Uint32(b[4:])
	p.Ack = binary.BigEndian.Uint32(b[8:])
	p.Flags = b[13]
	p.Window = binary.BigEndian.Uint16(b[14:])
	p.PayloadLen = segLen - doff
	p.Payload = b[doff:min(len(b), segLen)]
	p.parseOptions(b[tcpMinHdrLen:doff], options.ContextOf(p.Flags, p.PayloadLen))
	return StatusTCP
}

// parseOptions collects the MPTCP options of a TCP option area the way
// options.Segment.Parse does (and Linux's mptcp_get_options: NOPs skipped,
// the walk ends at EOL or at an option whose length cannot be trusted), but
// keeps an MPTCP option that ends the walk as a last, malformed option so
// that a decoder can show it.
func (p *Packet) parseOptions(area []byte, ctx options.Context) {
	p.Options = p.opts[:0]
	p.OptionStatus = options.WalkOK
	for off := 0; off < len(area); {
		kind := area[off]
		switch kind {
		case options.TCPOptionEOL:
			return
		case options.TCPOptionNOP:
			off++
			continue
		}
		rest := area[off:]
		if kind == options.Kind {
			o, n, ok := options.Parse(rest, ctx)
			if !ok {
				p.OptionStatus = options.WalkTruncated
				if len(rest) >= 2 && rest[1] < 3 {
					p.OptionStatus = options.WalkBadLength
					rest = rest[:2]
				}
				o = options.Option{Malformed: true, Raw: rest}
				if st, ok := OptionSubtype(&o); ok {
					o.Subtype = st
				}
				p.Options = append(p.Options, o)
				return
			}
			if len(p.Options) < cap(p.Options)-1 {
				p.Options = append(p.Options, o)
			}
			off += n
			continue
		}
		if len(rest) < 2 {
			p.OptionStatus = options.WalkTruncated
			return
		}
		l := int(rest[1])
		if l < 2 {
			p.OptionStatus = options.WalkBadLength
			return
		}
		if l > len(rest) {
			p.OptionStatus = options.WalkTruncated
			return
		}
		off += l
	}
}
