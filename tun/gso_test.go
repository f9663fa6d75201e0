package tun

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	src4 = tcpip.AddrFrom4([4]byte{198, 18, 0, 2})
	dst4 = tcpip.AddrFrom4([4]byte{198, 18, 0, 1})
	src6 = tcpip.AddrFrom16([16]byte{0xfd, 0x75, 15: 2})
	dst6 = tcpip.AddrFrom16([16]byte{0xfd, 0x75, 15: 1})
)

// tsOption is gVisor's usual 12 bytes of options on data segments: NOP NOP TS.
var tsOption = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}

// hostGSO is what gVisor sets on a segment of a connection over a host-GSO link
// (transport/tcp/endpoint.go initHostGSO).
func hostGSO(v6 bool, mss uint16) stack.GSO {
	g := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: header.TCPChecksumOffset, MSS: mss, L3HdrLen: header.IPv4MinimumSize, MaxSize: MaxGSOSize}
	if v6 {
		g.Type, g.L3HdrLen = stack.GSOTCPv6, header.IPv6MinimumSize
	}
	return g
}

// buildTCP builds a segment the way gVisor does: payload, then TCP header with opts pushed,
// then the IP header; the TCP checksum is partial when gso asks for it, else complete.
func buildTCP(v6 bool, payload, opts []byte, gso stack.GSO) *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.IPv6MinimumSize + header.TCPHeaderMaximumSize,
		Payload:            buffer.MakeWithData(payload),
	})
	tcpLen := header.TCPMinimumSize + len(opts)
	th := header.TCP(pkt.TransportHeader().Push(tcpLen))
	th.Encode(&header.TCPFields{SrcPort: 40000, DstPort: 80, SeqNum: 1000, AckNum: 77,
		DataOffset: uint8(tcpLen), Flags: header.TCPFlagAck | header.TCPFlagPsh, WindowSize: 512})
	copy(th[header.TCPMinimumSize:], opts)
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	src, dst := src4, dst4
	if v6 {
		src, dst = src6, dst6
		ip := header.IPv6(pkt.NetworkHeader().Push(header.IPv6MinimumSize))
		ip.Encode(&header.IPv6Fields{PayloadLength: uint16(tcpLen + len(payload)),
			TransportProtocol: header.TCPProtocolNumber, HopLimit: 64, SrcAddr: src, DstAddr: dst})
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	} else {
		ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + tcpLen + len(payload)),
			TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
		ip.SetChecksum(^ip.CalculateChecksum())
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	}
	pkt.GSOOptions = gso
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(payload)))
	if IsPartialChecksum(pkt) {
		th.SetChecksum(xsum)
	} else {
		th.SetChecksum(^th.CalculateChecksum(checksum.Combine(xsum, checksum.Checksum(payload, 0))))
	}
	return pkt
}

func flat(pkt *stack.PacketBuffer) []byte {
	b := make([]byte, pkt.Size())
	return b[:CopyPacket(b, pkt)]
}

func TestVirtioNetHdrRoundTrip(t *testing.T) {
	in := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, GSOType: VirtioNetHdrGSOTCPv6, HdrLen: 72, GSOSize: 1428, CsumStart: 40, CsumOffset: 16}
	var b [VirtioNetHdrLen]byte
	in.Encode(b[:])
	// Native byte order: on the little-endian hosts umptcp builds for (amd64, arm64),
	// hdr_len 72 is 48 00 (include/uapi/linux/virtio_net.h, __virtio16 in legacy mode).
	if binary.NativeEndian.Uint16(b[2:]) != 72 || b[0] != 1 || b[1] != 4 {
		t.Fatalf("encoded % x", b)
	}
	var out VirtioNetHdr
	if !out.Decode(b[:]) || out != in {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
	if out.Decode(b[:VirtioNetHdrLen-1]) {
		t.Fatal("decoded a truncated header")
	}
}

func TestVirtioNetHdrFor(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, 10000)
	for _, tc := range []struct {
		name string
		v6   bool
		size int
		gso  stack.GSO
		want VirtioNetHdr
	}{
		{"v4 super-segment", false, 10000, hostGSO(false, 1448),
			VirtioNetHdr{Flags: 1, GSOType: VirtioNetHdrGSOTCPv4, HdrLen: 52, GSOSize: 1448, CsumStart: 20, CsumOffset: 16}},
		{"v6 super-segment", true, 10000, hostGSO(true, 1428),
			VirtioNetHdr{Flags: 1, GSOType: VirtioNetHdrGSOTCPv6, HdrLen: 72, GSOSize: 1428, CsumStart: 40, CsumOffset: 16}},
		{"v4 at most one MSS: checksum only", false, 1448, hostGSO(false, 1448),
			VirtioNetHdr{Flags: 1, HdrLen: 52, CsumStart: 20, CsumOffset: 16}},
		{"pure ACK: checksum only", false, 0, hostGSO(false, 1448),
			VirtioNetHdr{Flags: 1, HdrLen: 52, CsumStart: 20, CsumOffset: 16}},
		{"no GSO (SYN): zero header", false, 0, stack.GSO{}, VirtioNetHdr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buildTCP(tc.v6, payload[:tc.size], tsOption, tc.gso)
			defer pkt.DecRef()
			if got := VirtioNetHdrFor(pkt); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// segment cuts a partial-checksum super-segment the way the kernel does
// (tcp_gso_segment, net/ipv4/tcp_offload.c): the whole header, options included, is copied
// onto each segment; seq advances; PSH/FIN stay on the last one only; the checksum of each
// segment starts from the partial sum with the length term swapped for the segment's own
// length, then is completed over the segment.
func segment(t *testing.T, pkt []byte, h VirtioNetHdr) [][]byte {
	t.Helper()
	l3 := int(h.CsumStart)
	th := header.TCP(pkt[l3:])
	hl := l3 + int(th.DataOffset())
	payload := pkt[hl:]
	total := uint16(len(pkt) - l3)
	var segs [][]byte
	seq := th.SequenceNumber()
	for off := 0; off < len(payload); off += int(h.GSOSize) {
		end := min(off+int(h.GSOSize), len(payload))
		s := append(append([]byte(nil), pkt[:hl]...), payload[off:end]...)
		sth := header.TCP(s[l3:])
		sth.SetSequenceNumber(seq + uint32(off))
		if end != len(payload) {
			sth.SetFlags(uint8(sth.Flags() &^ (header.TCPFlagPsh | header.TCPFlagFin)))
		}
		segLen := uint16(len(s) - l3)
		// Swap the length term: subtract the old length, add the new one (ones' complement).
		partial := checksum.Combine(checksum.Combine(th.Checksum(), ^total), segLen)
		sth.SetChecksum(partial)
		if err := CompletePartialChecksum(s, l3, int(h.CsumOffset)); err != nil {
			t.Fatal(err)
		}
		if s[0]>>4 == 4 {
			ip := header.IPv4(s)
			ip.SetTotalLength(uint16(len(s)))
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
		} else {
			header.IPv6(s).SetPayloadLength(segLen)
		}
		segs = append(segs, s)
	}
	return segs
}

// TestFinalizeTCPGrownOptions follows the contract: a wrapper rebuilds a partial-checksum
// super-segment with 28 more option bytes (a DSS), calls FinalizeTCP; the kernel's
// segmentation of it must give valid segments, each with the same options, each fitting
// the MTU.
func TestFinalizeTCPGrownOptions(t *testing.T) {
	const mtu = 1500
	dss := append(append([]byte(nil), tsOption...), 30, 28, 0x20, 0x0f) // kind 30, len 28, DSS
	dss = append(dss, make([]byte, 24)...)
	payload := make([]byte, 30000)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	for _, v6 := range []bool{false, true} {
		l3 := header.IPv4MinimumSize
		if v6 {
			l3 = header.IPv6MinimumSize
		}
		mss := uint16(mtu - l3 - header.TCPMinimumSize - len(tsOption))
		orig := buildTCP(v6, payload, tsOption, hostGSO(v6, mss))
		// The wrapper's rebuild: same payload, bigger TCP header, then FinalizeTCP. It
		// starts from stale lengths and a stale checksum on purpose.
		pkt := buildTCP(v6, payload, dss, orig.GSOOptions)
		orig.DecRef()
		header.TCP(pkt.TransportHeader().Slice()).SetChecksum(0x1234)
		if err := FinalizeTCP(pkt, mtu); err != nil {
			t.Fatal(err)
		}
		wantMSS := uint16(mtu - l3 - header.TCPMinimumSize - len(dss))
		if pkt.GSOOptions.MSS != wantMSS {
			t.Errorf("v6=%v: MSS %d, want %d (lowered for the grown header)", v6, pkt.GSOOptions.MSS, wantMSS)
		}
		b := flat(pkt)
		h := VirtioNetHdrFor(pkt)
		pkt.DecRef()
		var src, dst tcpip.Address
		if v6 {
			ip := header.IPv6(b)
			src, dst = ip.SourceAddress(), ip.DestinationAddress()
			if int(ip.PayloadLength()) != len(b)-l3 {
				t.Errorf("v6 payload length %d, want %d", ip.PayloadLength(), len(b)-l3)
			}
		} else {
			ip := header.IPv4(b)
			src, dst = ip.SourceAddress(), ip.DestinationAddress()
			if int(ip.TotalLength()) != len(b) || !ip.IsChecksumValid() {
				t.Errorf("v4 total length %d (want %d) or header checksum wrong", ip.TotalLength(), len(b))
			}
		}
		th := header.TCP(b[l3:])
		if int(th.DataOffset()) != header.TCPMinimumSize+len(dss) {
			t.Errorf("data offset %d", th.DataOffset())
		}
		if want := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(b)-l3)); th.Checksum() != want {
			t.Errorf("partial checksum %#04x, want pseudo-header sum with full length %#04x", th.Checksum(), want)
		}
		segs := segment(t, b, h)
		if want := (len(payload) + int(wantMSS) - 1) / int(wantMSS); len(segs) != want {
			t.Fatalf("%d segments, want %d", len(segs), want)
		}
		var got []byte
		for i, s := range segs {
			if len(s) > mtu {
				t.Errorf("segment %d is %d bytes > MTU", i, len(s))
			}
			sth := header.TCP(s[l3:])
			if !bytes.Equal(sth.Options(), dss) {
				t.Errorf("segment %d options % x, want the DSS replicated", i, sth.Options())
			}
			pl := s[l3+int(sth.DataOffset()):]
			if !sth.IsChecksumValid(src, dst, checksum.Checksum(pl, 0), uint16(len(pl))) {
				t.Errorf("segment %d: TCP checksum invalid", i)
			}
			got = append(got, pl...)
		}
		if !bytes.Equal(got, payload) {
			t.Error("reassembled payload differs")
		}
	}
}

func TestFinalizeTCPComplete(t *testing.T) {
	// A SYN-like packet without GSO gets a complete checksum.
	payload := []byte("hello")
	pkt := buildTCP(false, payload, []byte{2, 4, 5, 0xb4, 1, 1, 4, 2}, stack.GSO{})
	defer pkt.DecRef()
	header.TCP(pkt.TransportHeader().Slice()).SetChecksum(0)
	if err := FinalizeTCP(pkt, 1500); err != nil {
		t.Fatal(err)
	}
	b := flat(pkt)
	th := header.TCP(b[20:])
	if !th.IsChecksumValid(src4, dst4, checksum.Checksum(payload, 0), uint16(len(payload))) {
		t.Error("complete checksum invalid")
	}
	if !verifyChecksums(b) {
		t.Error("verifyChecksums rejects a valid packet")
	}
}

func TestFinalizeTCPRejects(t *testing.T) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData([]byte{1, 2, 3})})
	defer pkt.DecRef()
	if err := FinalizeTCP(pkt, 1500); err == nil {
		t.Error("FinalizeTCP accepted a packet without headers")
	}
}

func TestVerifyChecksums(t *testing.T) {
	payload := bytes.Repeat([]byte("umptcp"), 100)
	for _, v6 := range []bool{false, true} {
		pkt := buildTCP(v6, payload, tsOption, stack.GSO{})
		b := flat(pkt)
		pkt.DecRef()
		if !verifyChecksums(b) {
			t.Errorf("v6=%v: valid packet rejected", v6)
		}
		b[len(b)-1] ^= 0xff
		if verifyChecksums(b) {
			t.Errorf("v6=%v: corrupted payload accepted", v6)
		}
		b[len(b)-1] ^= 0xff
		if !v6 {
			b[8] ^= 1 // TTL: IPv4 header checksum now wrong
			if verifyChecksums(b) {
				t.Error("corrupted IPv4 header accepted")
			}
			b[8] ^= 1
		}
		if verifyChecksums(b[:len(b)-10]) {
			t.Errorf("v6=%v: truncated packet accepted", v6)
		}
	}
	if verifyChecksums([]byte{0x45}) || verifyChecksums(nil) {
		t.Error("garbage accepted")
	}
}

func TestCompletePartialChecksumBounds(t *testing.T) {
	if CompletePartialChecksum(make([]byte, 30), 20, 16) == nil {
		t.Error("accepted a checksum field past the end")
	}
}

// TestGSOHelpersDoNotAllocate pins the per-packet helpers of the write path at zero
// allocations.
func TestGSOHelpersDoNotAllocate(t *testing.T) {
	pkt := buildTCP(false, make([]byte, 5000), tsOption, hostGSO(false, 1448))
	defer pkt.DecRef()
	var b [VirtioNetHdrLen]byte
	allocs := testing.AllocsPerRun(100, func() {
		h := VirtioNetHdrFor(pkt)
		h.Encode(b[:])
		if err := FinalizeTCP(pkt, 1500); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
}
