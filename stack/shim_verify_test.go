package stack

import (
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestShimVerifiesWhatGVisorSkips: the shim claims receive checksum
// offload, so gVisor checks no checksum the link did not; the shim must
// drop, and count, every packet gVisor would have dropped for a checksum,
// and the fragments whose checksum nobody could check.
func TestShimVerifiesWhatGVisorSkips(t *testing.T) {
	fx := newShimFixture(t, true)
	if fx.sh.Capabilities()&gstack.CapabilityRXChecksumOffload == 0 {
		t.Fatal("the shim does not claim receive checksum offload")
	}
	src6 := tcpip.AddrFrom16([16]byte{0xfd, 15: 1})
	dst6 := tcpip.AddrFrom16([16]byte{0xfd, 15: 2})
	tcpSeg := func(src, dst tcpip.Address, payload []byte) []byte {
		b := make([]byte, header.TCPMinimumSize+len(payload))
		th := header.TCP(b)
		th.Encode(&header.TCPFields{SrcPort: 9, DstPort: 10, SeqNum: 1, AckNum: 1, DataOffset: header.TCPMinimumSize,
			Flags: header.TCPFlagAck, WindowSize: 1000})
		copy(b[header.TCPMinimumSize:], payload)
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(b)))
		th.SetChecksum(^checksum.Checksum(b, xsum))
		return b
	}
	v4 := func(proto uint8, frag bool, body []byte) []byte {
		b := make([]byte, header.IPv4MinimumSize+len(body))
		ip := header.IPv4(b)
		f := &header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: proto,
			SrcAddr: tcpip.AddrFrom4(fixRemote.Addr().As4()), DstAddr: tcpip.AddrFrom4(fixLocal.Addr().As4())}
		if frag {
			f.Flags = header.IPv4FlagMoreFragments
		}
		ip.Encode(f)
		ip.SetChecksum(^ip.CalculateChecksum())
		copy(b[header.IPv4MinimumSize:], body)
		return b
	}
	// v6 puts body behind the extension headers ext (each: next header
	// filled in here), the last of which is followed by proto.
	v6 := func(proto uint8, ext [][]byte, extTypes []uint8, body []byte) []byte {
		n := header.IPv6MinimumSize
		for _, e := range ext {
			n += len(e)
		}
		b := make([]byte, n+len(body))
		first := proto
		if len(ext) > 0 {
			first = extTypes[0]
		}
		header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(len(b) - header.IPv6MinimumSize),
			TransportProtocol: tcpip.TransportProtocolNumber(first), HopLimit: 64, SrcAddr: src6, DstAddr: dst6})
		off := header.IPv6MinimumSize
		for i, e := range ext {
			next := proto
			if i+1 < len(ext) {
				next = extTypes[i+1]
			}
			copy(b[off:], e)
			b[off] = next
			off += len(e)
		}
		copy(b[off:], body)
		return b
	}
	tcp4 := tcpSeg(tcpip.AddrFrom4(fixRemote.Addr().As4()), tcpip.AddrFrom4(fixLocal.Addr().As4()), []byte("payload"))
	tcp6 := tcpSeg(src6, dst6, []byte("payload"))
	corrupt := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		return c
	}
	destOpts := make([]byte, 8) // next header, length 0, PadN
	destOpts[2], destOpts[3] = 1, 4
	longOpts := make([]byte, 48) // length field 5: (5+1)*8 bytes, one PadN
	longOpts[1], longOpts[2], longOpts[3] = 5, 1, 44
	fragHdr := make([]byte, 8)
	fragHdr[3] = 1 // M flag
	icmp := []byte{8, 0, 0, 0, 0, 0, 0, 0}

	for _, tc := range []struct {
		name    string
		pkt     []byte
		deliver bool
		counter string
	}{
		{"IPv4 TCP", v4(6, false, tcp4), true, ""},
		{"IPv4 header checksum wrong", corrupt(v4(6, false, tcp4), 8), false, "UmptcpBadIPChecksum"},
		{"IPv4 TCP checksum wrong", corrupt(v4(6, false, tcp4), 45), false, "UmptcpBadTCPChecksum"},
		{"IPv4 TCP fragment", v4(6, true, tcp4), false, "UmptcpFragmentsDropped"},
		{"IPv4 UDP fragment", v4(17, true, icmp), false, "UmptcpFragmentsDropped"},
		{"IPv4 ICMP (gVisor checks it)", v4(1, false, icmp), true, ""},
		{"IPv4 ICMP, header checksum wrong", corrupt(v4(1, false, icmp), 10), false, "UmptcpBadIPChecksum"},
		{"IPv6 TCP", v6(6, nil, nil, tcp6), true, ""},
		{"IPv6 TCP checksum wrong", corrupt(v6(6, nil, nil, tcp6), 60), false, "UmptcpBadTCPChecksum"},
		{"IPv6 TCP behind destination options", v6(6, [][]byte{destOpts}, []uint8{60}, tcp6), true, ""},
		{"IPv6 TCP behind destination options, checksum wrong", corrupt(v6(6, [][]byte{destOpts}, []uint8{60}, tcp6), 70), false, "UmptcpBadTCPChecksum"},
		{"IPv6 TCP fragment", v6(6, [][]byte{fragHdr}, []uint8{44}, tcp6), false, "UmptcpFragmentsDropped"},
		{"IPv6 TCP behind more extension headers than the shim reads", v6(6, [][]byte{longOpts, longOpts, longOpts}, []uint8{60, 60, 60}, tcp6), false, "UmptcpFragmentsDropped"},
		{"IPv6 ICMPv6 behind hop-by-hop (gVisor checks it)", v6(58, [][]byte{destOpts}, []uint8{0}, icmp), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fx.st.counters.Snapshot()
			pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(tc.pkt)})
			defer pkt.DecRef()
			if got := fx.sh.inbound(pkt); got != tc.deliver {
				t.Errorf("delivered %v, want %v", got, tc.deliver)
			}
			after := fx.st.counters.Snapshot()
			for name, v := range after {
				d := v - before[name]
				want := uint64(0)
				if name == tc.counter {
					want = 1
				}
				if d != want {
					t.Errorf("counter %s went up by %d, want %d", name, d, want)
				}
			}
		})
	}
}
