package emu

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// This file holds the byte-level impairments. They work on a flat copy of a
// whole IP packet (no link header) that the caller owns; they never trust a
// length field and leave a packet they cannot parse untouched.

// optionMPTCP is the TCP option kind of MPTCP (RFC 8684 §2).
const optionMPTCP = 30

// tcpInfo locates the TCP segment in an IP packet.
type tcpInfo struct {
	off     int // offset of the TCP header in the packet
	hdrLen  int // TCP header length, options included
	payload int // payload length
	flags   header.TCPFlags
}

// locateTCP parses an IPv4 or IPv6 packet carrying an unfragmented TCP
// segment. IPv6 extension headers are not walked (gVisor does not send them
// on TCP); such packets, fragments and anything malformed report ok=false.
func locateTCP(pkt []byte) (t tcpInfo, ok bool) {
	if len(pkt) < 1 {
		return t, false
	}
	var end int // end of the IP payload
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < header.IPv4MinimumSize {
			return t, false
		}
		ip := header.IPv4(pkt)
		ihl := int(ip.HeaderLength())
		total := int(ip.TotalLength())
		if ihl < header.IPv4MinimumSize || total < ihl || total > len(pkt) {
			return t, false
		}
		if ip.TransportProtocol() != header.TCPProtocolNumber || ip.More() || ip.FragmentOffset() != 0 {
			return t, false
		}
		t.off, end = ihl, total
	case 6:
		if len(pkt) < header.IPv6MinimumSize {
			return t, false
		}
		ip := header.IPv6(pkt)
		end = header.IPv6MinimumSize + int(ip.PayloadLength())
		if end > len(pkt) || ip.NextHeader() != uint8(header.TCPProtocolNumber) {
			return t, false
		}
		t.off = header.IPv6MinimumSize
	default:
		return t, false
	}
	if end-t.off < header.TCPMinimumSize {
		return t, false
	}
	tcp := header.TCP(pkt[t.off:end])
	t.hdrLen = int(tcp.DataOffset())
	if t.hdrLen < header.TCPMinimumSize || t.off+t.hdrLen > end {
		return t, false
	}
	t.payload = end - t.off - t.hdrLen
	t.flags = tcp.Flags()
	return t, true
}

// stripClass returns the Strip class a TCP segment belongs to.
func stripClass(t tcpInfo) Strip {
	switch {
	case t.flags.Contains(header.TCPFlagSyn | header.TCPFlagAck):
		return StripSYNACK
	case t.flags.Contains(header.TCPFlagSyn):
		return StripSYN
	case t.payload > 0:
		return StripData
	default:
		return StripOther
	}
}

// stripMPTCP replaces every MPTCP option of the TCP header tcp with NOPs and
// fixes the checksum incrementally, as Linux's xt_TCPOPTSTRIP does: same
// option walk (stop at EOL or at the first malformed length), same NOP
// filling, so the segment keeps its length and sequence space. It reports
// whether anything changed.
func stripMPTCP(tcp header.TCP) bool {
	opts := tcp[header.TCPMinimumSize:tcp.DataOffset()]
	// The options start at an even offset and span whole 32-bit words, so
	// their one's-complement sum can be swapped as a block (RFC 1624).
	before := checksum.Checksum(opts, 0)
	changed := false
	for i := 0; i < len(opts); {
		kind := opts[i]
		if kind == header.TCPOptionEOL {
			break
		}
		if kind == header.TCPOptionNOP {
			i++
			continue
		}
		if i+1 >= len(opts) {
			break
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			break
		}
		if kind == optionMPTCP {
			for j := i; j < i+l; j++ {
				opts[j] = header.TCPOptionNOP
			}
			changed = true
		}
		i += l
	}
	if changed {
		fixChecksum(tcp, before, checksum.Checksum(opts, 0))
	}
	return changed
}

// fixChecksum updates tcp's checksum after a region whose one's-complement
// sum was oldSum became newSum: HC' = ~(~HC + ~m + m'), RFC 1624 eqn. 3.
func fixChecksum(tcp header.TCP, oldSum, newSum uint16) {
	hc := ^tcp.Checksum()
	hc = checksum.Combine(hc, ^oldSum)
	hc = checksum.Combine(hc, newSum)
	tcp.SetChecksum(^hc)
}

// word16 returns the 16-bit word of the checksum that covers byte i of b:
// the word at the even offset at or below i, zero-padded past the end
// (RFC 1071). The sum of a single word is the word itself.
func word16(b []byte, i int) uint16 {
	w := i &^ 1
	if w+1 < len(b) {
		return binary.BigEndian.Uint16(b[w:])
	}
	return uint16(b[w]) << 8
}

// corruptPayload flips bit (0..7) of payload byte at in the TCP segment seg
// (header and payload) and leaves the checksum alone. A single bit flip
// changes one word by ±2^k, never a multiple of 0xffff, so the one's-complement
// sum always changes and the receiver must catch it.
func corruptPayload(seg []byte, hdrLen, at int, bit uint) {
	seg[hdrLen+at] ^= 1 << bit
}

// rewritePayload XORs payload byte at of the TCP segment seg with x (non-zero)
// and fixes the TCP checksum, as a payload-rewriting middlebox does.
func rewritePayload(seg []byte, hdrLen, at int, x byte) {
	// The TCP header has an even length, so offsets relative to seg have the
	// parity the checksum sees.
	i := hdrLen + at
	old := word16(seg, i)
	seg[i] ^= x
	fixChecksum(header.TCP(seg), old, word16(seg, i))
}

// networkProtocol returns the network protocol of a raw IP packet from its
// version nibble, for packets whose sender did not set it.
func networkProtocol(first byte) tcpip.NetworkProtocolNumber {
	switch first >> 4 {
	case 4:
		return header.IPv4ProtocolNumber
	case 6:
		return header.IPv6ProtocolNumber
	}
	return 0
}
