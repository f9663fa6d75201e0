package emu

import (
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// seg describes a TCP segment to build.
type seg struct {
	v6      bool
	flags   header.TCPFlags
	seq     uint32
	options []byte // padded with NOPs to a multiple of 4 by buildTCP
	payload []byte
}

// buildTCP returns a whole IP packet carrying s, with valid checksums.
func buildTCP(s seg) []byte {
	opts := append([]byte(nil), s.options...)
	for len(opts)%4 != 0 {
		opts = append(opts, header.TCPOptionNOP)
	}
	tcpLen := header.TCPMinimumSize + len(opts) + len(s.payload)
	ipLen := header.IPv4MinimumSize
	if s.v6 {
		ipLen = header.IPv6MinimumSize
	}
	b := make([]byte, ipLen+tcpLen)
	src, dst := addrA4, addrB4
	if s.v6 {
		src, dst = addrA6, addrB6
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength:     uint16(tcpLen),
			TransportProtocol: header.TCPProtocolNumber,
			HopLimit:          64,
			SrcAddr:           src,
			DstAddr:           dst,
		})
	} else {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)),
			TTL:         64,
			Protocol:    uint8(header.TCPProtocolNumber),
			SrcAddr:     src,
			DstAddr:     dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := header.TCP(b[ipLen:])
	tcp.Encode(&header.TCPFields{
		SrcPort:    40000,
		DstPort:    5001,
		SeqNum:     s.seq,
		AckNum:     1,
		DataOffset: uint8(header.TCPMinimumSize + len(opts)),
		Flags:      s.flags,
		WindowSize: 65535,
	})
	copy(tcp[header.TCPMinimumSize:], opts)
	copy(tcp[header.TCPMinimumSize+len(opts):], s.payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))
	xsum = checksum.Checksum(s.payload, xsum)
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	return b
}

// tcpChecksumOK reports whether the TCP checksum of IP packet b is valid.
func tcpChecksumOK(tb testing.TB, b []byte) bool {
	tb.Helper()
	t, ok := locateTCP(b)
	if !ok {
		tb.Fatalf("not a TCP packet: %x", b)
	}
	var src, dst tcpip.Address
	if b[0]>>4 == 4 {
		src, dst = header.IPv4(b).SourceAddress(), header.IPv4(b).DestinationAddress()
	} else {
		src, dst = header.IPv6(b).SourceAddress(), header.IPv6(b).DestinationAddress()
	}
	tcp := header.TCP(b[t.off : t.off+t.hdrLen+t.payload])
	payload := tcp[t.hdrLen:]
	return tcp.IsChecksumValid(src, dst, checksum.Checksum(payload, 0), uint16(len(payload)))
}

// mptcpOpt is an MPTCP option of the given length (a DSS-like filler).
func mptcpOpt(n int) []byte {
	o := make([]byte, n)
	o[0], o[1], o[2] = optionMPTCP, byte(n), 0x20
	for i := 3; i < n; i++ {
		o[i] = byte(0xa0 + i)
	}
	return o
}

// pktList returns the packets as a list for WritePackets; the caller
// releases it with DecRef.
func pktList(pkts ...[]byte) stack.PacketBufferList {
	var list stack.PacketBufferList
	for _, b := range pkts {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
		pkt.NetworkProtocolNumber = networkProtocol(b[0])
		list.PushBack(pkt)
	}
	return list
}

// inject writes raw IP packets into ep as a stack would, and releases them.
func inject(tb testing.TB, ep stack.LinkEndpoint, pkts ...[]byte) {
	tb.Helper()
	var list stack.PacketBufferList
	for _, b := range pkts {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
		pkt.NetworkProtocolNumber = networkProtocol(b[0])
		list.PushBack(pkt)
	}
	n, err := ep.WritePackets(list)
	if err != nil || n != len(pkts) {
		tb.Fatalf("WritePackets: %d, %v", n, err)
	}
	list.DecRef()
}

// arrival is a packet as delivered: its bytes and the link clock's time.
type arrival struct {
	at    time.Duration // since the capture started
	proto tcpip.NetworkProtocolNumber
	b     []byte
}

// capture is a NetworkDispatcher that records what it is given.
type capture struct {
	clock tcpip.Clock
	start time.Time

	mu   sync.Mutex
	got  []arrival
	more chan struct{} // signalled (non-blocking) on each arrival
}

func newCapture(clock tcpip.Clock) *capture {
	return &capture{clock: clock, start: clock.Now(), more: make(chan struct{}, 1)}
}

func (c *capture) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	v := pkt.ToView()
	a := arrival{at: c.clock.Now().Sub(c.start), proto: proto, b: v.ToSlice()}
	v.Release()
	c.mu.Lock()
	c.got = append(c.got, a)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func (*capture) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (c *capture) packets() []arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]arrival(nil), c.got...)
}

// wait returns once n packets have arrived; it fails the test after a bound
// that only catches a lost packet.
func (c *capture) wait(tb testing.TB, n int) []arrival {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if got := c.packets(); len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-timeout:
			tb.Fatalf("got %d packets, want %d", len(c.packets()), n)
		}
	}
}

// fakeLink returns a link on a manual clock with captures attached to both
// ends: capB receives A→B, capA receives B→A.
func fakeLink(tb testing.TB, aToB, bToA Config) (l *Link, clk *faketime.ManualClock, capA, capB *capture) {
	tb.Helper()
	clk = faketime.NewManualClock()
	l, err := NewLink(aToB, bToA, WithClock(clk))
	if err != nil {
		tb.Fatalf("NewLink: %v", err)
	}
	tb.Cleanup(l.Close)
	capA, capB = newCapture(clk), newCapture(clk)
	l.A().Attach(capA)
	l.B().Attach(capB)
	return l, clk, capA, capB
}
