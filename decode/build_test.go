package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/umptcp/umptcp/options"
)

// Builders of synthetic frames for the tests: plain byte slices, so that a
// test can damage any field.

type tcpSeg struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    uint8
	opts     []byte // option area, padded with NOPs by tcpBytes
	payload  []byte
}

// mptcpOpts concatenates encoded MPTCP options (each an Append result).
func mptcpOpts(opts ...interface{ Append([]byte) []byte }) []byte {
	var b []byte
	for _, o := range opts {
		b = o.Append(b)
	}
	return b
}

func tcpBytes(s tcpSeg) []byte {
	opts := options.PadNOP(append([]byte(nil), s.opts...))
	b := make([]byte, 20, 20+len(opts)+len(s.payload))
	binary.BigEndian.PutUint16(b[0:], s.src.Port())
	binary.BigEndian.PutUint16(b[2:], s.dst.Port())
	binary.BigEndian.PutUint32(b[4:], s.seq)
	binary.BigEndian.PutUint32(b[8:], s.ack)
	b[12] = byte((20+len(opts))/4) << 4
	b[13] = s.flags
	binary.BigEndian.PutUint16(b[14:], 64240)
	b = append(b, opts...)
	return append(b, s.payload...)
}

// ipv4Bytes wraps a transport payload in an IPv4 header with ipOpts (a
// multiple of 4 bytes) after the fixed header.
func ipv4Bytes(src, dst netip.Addr, proto byte, ipOpts, payload []byte) []byte {
	hl := 20 + len(ipOpts)
	b := make([]byte, hl, hl+len(payload))
	b[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(payload)))
	b[8] = 64
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], ipOpts)
	return append(b, payload...)
}

// ext is an IPv6 extension header: its protocol number and body (without
// the next-header byte, which ipv6Bytes fills in).
type ext struct {
	proto byte
	body  []byte
}

// hbh returns a generic extension header (hop-by-hop, routing,
// destination options) of n*8 bytes.
func hbh(proto byte, n int) ext {
	body := make([]byte, n*8-1)
	body[0] = byte(n - 1)
	return ext{proto, body}
}

func fragHdr(offset uint16, more bool) ext {
	body := make([]byte, 7)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(body[1:], v)
	return ext{ipv6Fragment, body}
}

func ahHdr() ext {
	body := make([]byte, 15) // 16 bytes: payload len (16/4)-2 = 2
	body[0] = 2
	return ext{ipv6AH, body}
}

func ipv6Bytes(src, dst netip.Addr, proto byte, payload []byte, exts ...ext) []byte {
	b := make([]byte, 40)
	b[0] = 0x60
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	nhPos := 6
	for _, e := range exts {
		b[nhPos] = e.proto
		nhPos = len(b)
		b = append(b, 0)
		b = append(b, e.body...)
	}
	b[nhPos] = proto
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	return b
}

func ethBytes(etype uint16, p []byte, vlans ...uint16) []byte {
	b := make([]byte, 12, 14+4*len(vlans)+len(p))
	for i := range 6 {
		b[i] = 0x02
		b[6+i] = 0x04
	}
	for _, v := range vlans {
		b = binary.BigEndian.AppendUint16(b, v)
		b = binary.BigEndian.AppendUint16(b, 7) // tag
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, p...)
}

func sllBytes(etype uint16, p []byte) []byte {
	b := make([]byte, 16, 16+len(p))
	binary.BigEndian.PutUint16(b[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(b[4:], 6)
	binary.BigEndian.PutUint16(b[14:], etype)
	return append(b, p...)
}

func sll2Bytes(etype uint16, p []byte) []byte {
	b := make([]byte, 20, 20+len(p))
	binary.BigEndian.PutUint16(b[0:], etype)
	binary.BigEndian.PutUint32(b[4:], 3) // ifindex
	binary.BigEndian.PutUint16(b[8:], 1)
	b[11] = 6
	return append(b, p...)
}

func nullBytes(family uint32, bigEndian bool, p []byte) []byte {
	b := make([]byte, 4, 4+len(p))
	if bigEndian {
		binary.BigEndian.PutUint32(b, family)
	} else {
		binary.LittleEndian.PutUint32(b, family)
	}
	return append(b, p...)
}

var (
	cli4 = netip.MustParseAddrPort("10.0.0.1:43672")
	srv4 = netip.MustParseAddrPort("10.0.0.2:8080")
	cli6 = netip.MustParseAddrPort("[fd00::1]:43672")
	srv6 = netip.MustParseAddrPort("[fd00::2]:8080")
)

// frame4 is an Ethernet frame with an IPv4 TCP segment.
func frame4(s tcpSeg) []byte {
	return ethBytes(etherTypeIPv4, ipv4Bytes(s.src.Addr(), s.dst.Addr(), ipProtoTCP, nil, tcpBytes(s)))
}

// frame6 is an Ethernet frame with an IPv6 TCP segment.
func frame6(s tcpSeg) []byte {
	return ethBytes(etherTypeIPv6, ipv6Bytes(s.src.Addr(), s.dst.Addr(), ipProtoTCP, tcpBytes(s)))
}
