package tun

import (
	"encoding/binary"
	"errors"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// VirtioNetHdrLen is the size of struct virtio_net_hdr (include/uapi/linux/virtio_net.h),
// the header a Linux TUN device opened with IFF_VNET_HDR puts in front of every packet in
// both directions. The default TUNSETVNETHDRSZ is this size (drivers/net/tun.c).
const VirtioNetHdrLen = 10

// Flag and GSO type values of struct virtio_net_hdr (include/uapi/linux/virtio_net.h).
const (
	VirtioNetHdrFNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum is partial (CHECKSUM_PARTIAL)
	VirtioNetHdrFDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: checksum already verified (CHECKSUM_UNNECESSARY)

	VirtioNetHdrGSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	VirtioNetHdrGSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	VirtioNetHdrGSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP (UFO, obsolete)
	VirtioNetHdrGSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	VirtioNetHdrGSOUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4 (USO, Linux 6.2+)
	VirtioNetHdrGSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN
)

// MaxGSOSize is the GSO size this package advertises to gVisor (stack.GSOEndpoint). gVisor
// sizes a GSO segment's payload as GSOMaxSize - header.TCPTotalHeaderMaximumSize - 1
// (transport/tcp/snd.go), so with this value a segment is at most
// 65454 + 20 (IPv4) + 60 (TCP with the full 40 bytes of options) = 65534 bytes: an IPv4 total
// length that still fits 16 bits after a wrapper fills the TCP option space, and within the
// 64 KiB GSO limit of a TUN device (GSO_LEGACY_MAX_SIZE, include/linux/netdevice.h).
const MaxGSOSize = 0xffff - header.IPv4MinimumSize

// VirtioNetHdr is struct virtio_net_hdr. On a TUN device it is in the host's byte order
// unless TUNSETVNETLE/TUNSETVNETBE was used (tun_is_little_endian in drivers/net/tun.c
// falls back to virtio_legacy_is_little_endian()); this package never sets those, so it
// encodes in native order, like wireguard-go's tun/offload_linux.go does.
type VirtioNetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // bytes of IP + transport headers (a hint; Linux recomputes it)
	GSOSize    uint16 // payload bytes per segment when GSOType != GSONone (the MSS)
	CsumStart  uint16 // offset of the transport header, where the checksum sum starts
	CsumOffset uint16 // offset of the checksum field from CsumStart (16 for TCP, 6 for UDP)
}

// Encode writes h into b, which must hold VirtioNetHdrLen bytes.
func (h *VirtioNetHdr) Encode(b []byte) {
	_ = b[VirtioNetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}

// Decode reads h from b; it reports false when b is shorter than VirtioNetHdrLen.
func (h *VirtioNetHdr) Decode(b []byte) bool {
	if len(b) < VirtioNetHdrLen {
		return false
	}
	h.Flags = b[0]
	h.GSOType = b[1]
	h.HdrLen = binary.NativeEndian.Uint16(b[2:])
	h.GSOSize = binary.NativeEndian.Uint16(b[4:])
	h.CsumStart = binary.NativeEndian.Uint16(b[6:])
	h.CsumOffset = binary.NativeEndian.Uint16(b[8:])
	return true
}

// IsPartialChecksum reports whether pkt's transport checksum field holds only the
// pseudo-header sum (Linux's CHECKSUM_PARTIAL) rather than a complete checksum. gVisor does
// this for every TCP segment of a connection whose route has host GSO (buildTCPHdr in
// transport/tcp/connect.go), data or not, big or not. See the package documentation.
func IsPartialChecksum(pkt *stack.PacketBuffer) bool {
	return pkt.GSOOptions.Type != stack.GSONone && pkt.GSOOptions.NeedsCsum
}

// IsGSO reports whether pkt is a super-segment that the kernel will cut into segments of
// pkt.GSOOptions.MSS payload bytes: its TCP payload is larger than the MSS.
func IsGSO(pkt *stack.PacketBuffer) bool {
	switch pkt.GSOOptions.Type {
	case stack.GSOTCPv4, stack.GSOTCPv6:
		return pkt.GSOOptions.MSS != 0 && pkt.Data().Size() > int(pkt.GSOOptions.MSS)
	}
	return false
}

// VirtioNetHdrFor returns the virtio-net header that hands pkt to a Linux TUN device: for a
// partial-checksum packet NEEDS_CSUM with the TCP checksum location, and for a super-segment
// the TCPv4/TCPv6 GSO type and the MSS. Offsets come from the packet's bytes (IP header
// length, TCP data offset), not from its header views: a wrapper may grow the TCP header in
// place (see HeadersFromBytes).
// Like gVisor's link/fdbased (writePacket), a packet without GSO options gets a zero header:
// its checksums are complete.
func VirtioNetHdrFor(pkt *stack.PacketBuffer) VirtioNetHdr {
	var h VirtioNetHdr
	if pkt.GSOOptions.Type == stack.GSONone || pkt.GSOOptions.Type == stack.GSOGvisor {
		return h
	}
	l3, l4, ok := headerLens(pkt)
	if !ok {
		return h
	}
	h.HdrLen = l3 + l4
	if pkt.GSOOptions.NeedsCsum {
		h.Flags = VirtioNetHdrFNeedsCsum
		h.CsumStart = l3
		h.CsumOffset = pkt.GSOOptions.CsumOffset
	}
	if IsGSO(pkt) {
		if pkt.GSOOptions.Type == stack.GSOTCPv4 {
			h.GSOType = VirtioNetHdrGSOTCPv4
		} else {
			h.GSOType = VirtioNetHdrGSOTCPv6
		}
		h.GSOSize = pkt.GSOOptions.MSS
	}
	return h
}

// CompletePartialChecksum finishes a CHECKSUM_PARTIAL packet in b (starting at the IP
// header) the way the kernel's skb_checksum_help does: the ones' complement sum from
// csumStart to the end of b, whose field at csumStart+csumOffset already holds the
// pseudo-header sum, folded, complemented and stored in that field.
func CompletePartialChecksum(b []byte, csumStart, csumOffset int) error {
	at := csumStart + csumOffset
	if csumStart < 0 || csumOffset < 0 || at+2 > len(b) {
		return errors.New("tun: partial checksum offsets outside the packet")
	}
	sum := checksum.Checksum(b[csumStart:], 0)
	binary.BigEndian.PutUint16(b[at:], ^sum)
	return nil
}

// errNotTCP is returned by FinalizeTCP for a packet that is not a well-formed TCP/IP packet.
var errNotTCP = errors.New("tun: packet is not TCP over IPv4/IPv6 with its headers set")

// FinalizeTCP makes a TCP segment whose headers a wrapper (the MPTCP option shim) rewrote
// consistent again, following the contract in the package documentation. pkt's
// NetworkHeader and TransportHeader must hold the IP header and the whole TCP header with
// its options (as after Push); pkt.Data() is the payload. It sets:
//
//   - the TCP data offset to the TCP header's length;
//   - the IPv4 total length and header checksum, or the IPv6 payload length;
//   - the TCP checksum: the pseudo-header sum including the new TCP length when the segment
//     is partial-checksum (IsPartialChecksum), else the complete checksum;
//   - pkt.GSOOptions.MSS, lowered when the header grew so that every segment the kernel cuts
//     (headers + MSS) still fits mtu. Pass mtu 0 to leave the MSS alone.
//
// It allocates nothing and reads the payload only for a complete checksum.
func FinalizeTCP(pkt *stack.PacketBuffer, mtu uint32) error {
	nh := pkt.NetworkHeader().Slice()
	th := pkt.TransportHeader().Slice()
	if len(th) < header.TCPMinimumSize || len(th) > header.TCPHeaderMaximumSize || len(th)%4 != 0 {
		return errNotTCP
	}
	tcpLen := len(th) + pkt.Data().Size()
	var src, dst tcpip.Address
	switch {
	case len(nh) >= header.IPv4MinimumSize && nh[0]>>4 == 4:
		ip := header.IPv4(nh)
		if int(ip.HeaderLength()) != len(nh) || len(nh)+tcpLen > 0xffff {
			return errNotTCP
		}
		ip.SetTotalLength(uint16(len(nh) + tcpLen))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	case len(nh) >= header.IPv6MinimumSize && nh[0]>>4 == 6:
		ip := header.IPv6(nh)
		if len(nh)-header.IPv6MinimumSize+tcpLen > 0xffff {
			return errNotTCP
		}
		ip.SetPayloadLength(uint16(len(nh) - header.IPv6MinimumSize + tcpLen))
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return errNotTCP
	}
	tcp := header.TCP(th)
	tcp.SetDataOffset(uint8(len(th)))
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))
	if IsPartialChecksum(pkt) {
		tcp.SetChecksum(xsum)
	} else {
		tcp.SetChecksum(0)
		xsum = checksum.Combine(xsum, pkt.Data().Checksum())
		tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	}
	if mtu != 0 && pkt.GSOOptions.Type != stack.GSONone && pkt.GSOOptions.MSS != 0 {
		if room := int(mtu) - len(nh) - len(th); room > 0 && int(pkt.GSOOptions.MSS) > room {
			pkt.GSOOptions.MSS = uint16(room)
		}
	}
	return nil
}

// verifyChecksums checks the IPv4 header checksum and the TCP or UDP checksum of the packet
// in b (starting at the IP header), the checks a NIC with RX checksum offload does for the
// stack. Packets of other protocols pass: gVisor checks ICMP itself whatever the link says.
// It is used for packets the kernel did not flag as locally built (NEEDS_CSUM) or verified
// (DATA_VALID), because this endpoint advertises stack.CapabilityRXChecksumOffload.
func verifyChecksums(b []byte) bool {
	var (
		proto    uint8
		l4       []byte
		src, dst tcpip.Address
	)
	switch {
	case len(b) >= header.IPv4MinimumSize && b[0]>>4 == 4:
		ip := header.IPv4(b)
		hl := int(ip.HeaderLength())
		tl := int(ip.TotalLength())
		if hl < header.IPv4MinimumSize || tl < hl || tl > len(b) || !ip.IsChecksumValid() {
			return false
		}
		if ip.FragmentOffset() != 0 || ip.Flags()&header.IPv4FlagMoreFragments != 0 {
			return true // reassembled and checked by gVisor
		}
		proto, l4 = ip.Protocol(), b[hl:tl]
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	case len(b) >= header.IPv6MinimumSize && b[0]>>4 == 6:
		ip := header.IPv6(b)
		pl := int(ip.PayloadLength())
		if header.IPv6MinimumSize+pl > len(b) {
			return false
		}
		// Only the common case without extension headers is checked here; anything else
		// is left to gVisor's own parsing, which drops what it cannot make sense of.
		proto, l4 = ip.NextHeader(), b[header.IPv6MinimumSize:header.IPv6MinimumSize+pl]
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return false
	}
	switch tcpip.TransportProtocolNumber(proto) {
	case header.TCPProtocolNumber:
		if len(l4) < header.TCPMinimumSize {
			return false
		}
		return checksum.Checksum(l4, header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(l4)))) == 0xffff
	case header.UDPProtocolNumber:
		if len(l4) < header.UDPMinimumSize {
			return false
		}
		if header.UDP(l4).Checksum() == 0 && b[0]>>4 == 4 {
			return true // no checksum (allowed over IPv4 only, RFC 768)
		}
		return checksum.Checksum(l4, header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, dst, uint16(len(l4)))) == 0xffff
	}
	return true
}

// headerLens reads the IP and TCP header lengths of an outgoing TCP packet from its first
// bytes. The IP and TCP headers of a packet gVisor built are contiguous at its start.
func headerLens(pkt *stack.PacketBuffer) (l3, l4 uint16, ok bool) {
	views, off := pkt.AsViewList()
	v := views.Front()
	if v == nil {
		return 0, 0, false
	}
	b := v.AsSlice()
	if off > len(b) {
		return 0, 0, false
	}
	b = b[off:]
	if len(b) < 1 {
		return 0, 0, false
	}
	switch b[0] >> 4 {
	case 4:
		l3 = uint16(b[0]&0x0f) * 4
	case 6:
		l3 = header.IPv6MinimumSize
	default:
		return 0, 0, false
	}
	if len(b) < int(l3)+header.TCPMinimumSize {
		return 0, 0, false
	}
	l4 = uint16(b[int(l3)+12]>>4) * 4
	return l3, l4, l4 >= header.TCPMinimumSize
}
