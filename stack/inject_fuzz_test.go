package stack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/options"
)

// tapLink sits between a link endpoint and a stack: it remembers the last
// TCP header the stack received and lets a test inject packets as if they
// came from the link.
type tapLink struct {
	gstack.LinkEndpoint
	mu   sync.Mutex
	disp gstack.NetworkDispatcher
	last []byte // IP+TCP header of the last TCP segment delivered
	// drop, when set, withholds the packets it returns true for (the
	// whole IP packet), before they are seen or recorded.
	drop func([]byte) bool
}

func (t *tapLink) Attach(d gstack.NetworkDispatcher) {
	t.mu.Lock()
	t.disp = d
	t.mu.Unlock()
	if d == nil {
		t.LinkEndpoint.Attach(nil)
		return
	}
	t.LinkEndpoint.Attach(t)
}

func (t *tapLink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	b := pkt.Data().AsRange().ToSlice()
	if t.drop != nil && t.drop(b) {
		return
	}
	if len(b) >= header.IPv4MinimumSize+header.TCPMinimumSize && b[0]>>4 == 4 && b[9] == 6 {
		ihl := int(b[0]&0xf) * 4
		if off := int(b[ihl+12]>>4) * 4; len(b) >= ihl+off && b[ihl+13]&0x10 != 0 {
			t.mu.Lock()
			t.last = append(t.last[:0], b[:ihl+off]...)
			t.mu.Unlock()
		}
	}
	t.mu.Lock()
	d := t.disp
	t.mu.Unlock()
	if d != nil {
		d.DeliverNetworkPacket(proto, pkt)
	}
}

func (t *tapLink) DeliverLinkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	t.disp.DeliverLinkPacket(proto, pkt)
}

// inject delivers a segment built from the last one seen, with the
// fuzzer's flags, sequence offsets, TCP options and payload, and a valid
// checksum: it reaches the shim and gVisor as a real peer's segment would.
func (t *tapLink) inject(flags uint8, dSeq, dAck int16, opts, payload []byte) {
	t.mu.Lock()
	tmpl := append([]byte(nil), t.last...)
	d := t.disp
	t.mu.Unlock()
	if len(tmpl) == 0 || d == nil {
		return
	}
	opts = options.PadNOP(append([]byte(nil), opts[:min(len(opts), options.MaxTCPOptionsLen)]...))
	if len(opts) > options.MaxTCPOptionsLen {
		opts = opts[:options.MaxTCPOptionsLen]
	}
	ihl := int(tmpl[0]&0xf) * 4
	tcpLen := header.TCPMinimumSize + len(opts)
	b := make([]byte, ihl+tcpLen+len(payload))
	copy(b, tmpl[:ihl+header.TCPMinimumSize])
	ip := header.IPv4(b)
	ip.SetTotalLength(uint16(len(b)))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	th := header.TCP(b[ihl:])
	th.SetSequenceNumber(th.SequenceNumber() + uint32(int32(dSeq)))
	th.SetAckNumber(th.AckNumber() + uint32(int32(dAck)))
	th.SetFlags(flags | uint8(header.TCPFlagAck))
	th[header.TCPDataOffset] = byte(tcpLen/4) << 4
	copy(th[header.TCPMinimumSize:], opts)
	copy(th[tcpLen:], payload)
	th.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(tcpLen+len(payload)))
	th.SetChecksum(^th.CalculateChecksum(checksum.Combine(xsum, checksum.Checksum(payload, 0))))
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	d.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
	pkt.DecRef()
}

// FuzzShimInject runs a live MPTCP connection and injects segments built
// from the fuzzer's bytes into the receiver's shim while data flows, with
// valid TCP checksums and the connection's 4-tuple, near its sequence
// numbers. The stack must not panic, must not hold more than its limits
// allow, and every byte the application reads must be the byte the sender
// wrote: the connection may fail, never deliver wrong data.
//
// The connection uses DSS checksums. Without them nothing can tell injected
// in-window data (or a forged mapping of real data) from the peer's, in
// MPTCP as in TCP (RFC 8684 §5: no less secure than TCP, not more); with
// them a mapping's checksum covers its DSN and its bytes, and no byte is
// delivered unverified.
func FuzzShimInject(f *testing.F) {
	// Seeds: a DSS with a conflicting mapping, a DATA_FIN, an
	// MP_FASTCLOSE with a wrong key, an infinite mapping, garbage options.
	seed := func(flags uint8, dSeq int16, opts, payload []byte) []byte {
		var b []byte
		b = append(b, flags)
		b = binary.BigEndian.AppendUint16(b, uint16(dSeq))
		b = append(b, byte(len(opts)))
		b = append(b, opts...)
		b = append(b, byte(len(payload)))
		return append(b, payload...)
	}
	f.Add(seed(0, 0, options.DSS{HasMapping: true, DSN64: true, DSN: 1, SubflowSeq: 1, DataLen: 100}.Append(nil), bytes.Repeat([]byte{'X'}, 100)))
	f.Add(seed(0, 1000, options.DSS{HasAck: true, Ack64: true, DataAck: 12345, HasMapping: true, DSN64: true, DSN: 99, SubflowSeq: 0, DataLen: 1, DataFIN: true}.Append(nil), nil))
	f.Add(seed(uint8(header.TCPFlagRst), 0, options.MPFastClose{ReceiverKey: 7}.Append(nil), nil))
	f.Add(seed(0, 0, options.DSS{HasMapping: true, DSN64: true, DSN: 5, SubflowSeq: 3}.Append(nil), []byte("infinite")))
	f.Add(seed(0, -5, []byte{30, 3, 0x50, 30, 2, 0, 30, 40}, []byte("trunc")))
	f.Add(seed(0, 200, options.DSS{HasMapping: true, DSN: 0xffffffff, SubflowSeq: 0x7fffffff, DataLen: 0xffff, HasChecksum: true}.Append(nil), bytes.Repeat([]byte{0}, 200)))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2048 {
			t.Skip()
		}
		runInjection(t, data)
	})
}

func runInjection(t *testing.T, data []byte) {
	l, err := emu.NewLink(emu.Config{}, emu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tap := &tapLink{LinkEndpoint: l.B()}
	pa, pb := netip.MustParsePrefix("10.7.0.1/24"), netip.MustParsePrefix("10.7.0.2/24")
	a, err := New(Config{Links: []Link{{Name: "a", Endpoint: l.A(), Addrs: []netip.Prefix{pa}}}, MaxRXMappings: 64, ReceiveBuffer: 1 << 20, Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Links: []Link{{Name: "b", Endpoint: tap, Addrs: []netip.Prefix{pb}}}, MaxRXMappings: 64, ReceiveBuffer: 1 << 20, Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A failed DSS checksum (injected data) ends the connection after the
	// MP_FAIL timeout: keep it short here.
	a.failTimeout, b.failTimeout = 100*time.Millisecond, 100*time.Millisecond
	ln, err := b.Listen("tcp", ":5000")
	if err != nil {
		t.Fatal(err)
	}
	acc := make(chan *Conn, 1)
	go func() { c, _ := ln.AcceptMPTCP(); acc <- c }()
	c, err := a.Dial("tcp", netip.AddrPortFrom(pb.Addr(), 5000).String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	const size = 256 << 10
	want := payload(size, 9)
	deadline := time.Now().Add(3 * time.Second)
	c.SetDeadline(deadline)
	s.SetDeadline(deadline)
	go func() {
		c.Write(want)
		c.CloseWrite()
	}()

	// Read a little so that the connection is live, inject, read the rest.
	got := make([]byte, 0, size)
	buf := make([]byte, 16<<10)
	readSome := func(limit int) error {
		for len(got) < limit {
			n, err := s.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				return err
			}
		}
		return nil
	}
	rerr := readSome(32 << 10)
	for p := data; rerr == nil && len(p) >= 4; {
		flags, dSeq := p[0]&uint8(header.TCPFlagFin|header.TCPFlagRst|header.TCPFlagPsh), int16(binary.BigEndian.Uint16(p[1:]))
		ol := int(p[3])
		p = p[4:]
		ol = min(ol, len(p))
		opts := p[:ol]
		p = p[ol:]
		pl := 0
		if len(p) > 0 {
			pl = min(int(p[0]), len(p)-1)
			p = p[1:]
		}
		tap.inject(flags, dSeq, dSeq/2, opts, p[:pl])
		p = p[pl:]
	}
	if rerr == nil {
		rerr = readSome(size + 1)
	}
	if len(got) > size || !bytes.Equal(got, want[:len(got)]) {
		t.Fatalf("delivered stream corrupted: %d bytes read, first difference at %d", len(got), firstDiff(got, want))
	}
	if rerr != nil && rerr != io.EOF && !errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Logf("connection ended: %v", rerr) // allowed: the peer broke the protocol
	}
	// Bounded state: the mapping table never exceeds its limit, and the
	// out-of-order queue stays within the receive buffer.
	for _, sb := range s.subList() {
		if sb.sf != nil && sb.sf.RXMappingCount() > 64 {
			t.Fatalf("%d mappings held, limit 64", sb.sf.RXMappingCount())
		}
	}
	if s.ofo.size.Load() > 1<<20 {
		t.Fatalf("out-of-order queue holds %d bytes, limit 1 MiB", s.ofo.size.Load())
	}
	c.Close()
	s.Close()
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
