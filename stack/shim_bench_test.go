package stack

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// sinkEndpoint is a link endpoint that drops what it is given and delivers
// nothing: the shim's cost alone.
type sinkEndpoint struct {
	n atomic.Int64
}

// bytesSink is a sinkEndpoint that reads packets only as bytes, so the shim
// grows headers in place for it.
type bytesSink struct{ sinkEndpoint }

func (*bytesSink) HeadersFromBytes() bool { return true }

func (e *sinkEndpoint) MTU() uint32                                   { return 1500 }
func (e *sinkEndpoint) SetMTU(uint32)                                 {}
func (e *sinkEndpoint) MaxHeaderLength() uint16                       { return 0 }
func (e *sinkEndpoint) LinkAddress() tcpip.LinkAddress                { return "" }
func (e *sinkEndpoint) SetLinkAddress(tcpip.LinkAddress)              {}
func (e *sinkEndpoint) Capabilities() gstack.LinkEndpointCapabilities { return 0 }
func (e *sinkEndpoint) Attach(gstack.NetworkDispatcher)               {}
func (e *sinkEndpoint) IsAttached() bool                              { return true }
func (e *sinkEndpoint) Wait()                                         {}
func (e *sinkEndpoint) ARPHardwareType() header.ARPHardwareType       { return header.ARPHardwareNone }
func (e *sinkEndpoint) AddHeader(*gstack.PacketBuffer)                {}
func (e *sinkEndpoint) ParseHeader(*gstack.PacketBuffer) bool         { return true }
func (e *sinkEndpoint) Close()                                        {}
func (e *sinkEndpoint) SetOnCloseAction(func())                       {}
func (e *sinkEndpoint) WritePackets(l gstack.PacketBufferList) (int, tcpip.Error) {
	e.n.Add(int64(l.Len()))
	return l.Len(), nil
}

// shimFixture is a shim over a sink with one established initiator
// subflow whose first 1 MB is mapped.
type shimFixture struct {
	st   *Stack
	sh   *shim
	sink *sinkEndpoint
	f    *flow
	c    *Conn
	iss  uint32
}

var (
	fixLocal  = netip.MustParseAddrPort("10.1.0.1:40000")
	fixRemote = netip.MustParseAddrPort("10.1.0.2:80")
)

func newShimFixture(tb testing.TB, inPlace bool) *shimFixture {
	tb.Helper()
	return newShimFixtureQueued(tb, inPlace, 0)
}

// newShimFixtureQueued is newShimFixture with a transmit queue of qlen
// packets (0: none, as Link.TxQueueLen), closed when the test ends.
func newShimFixtureQueued(tb testing.TB, inPlace bool, qlen int) *shimFixture {
	tb.Helper()
	sink := &sinkEndpoint{}
	var child gstack.LinkEndpoint = sink
	if inPlace {
		bs := &bytesSink{}
		sink, child = &bs.sinkEndpoint, bs
	}
	st := &Stack{cfg: Config{}}
	st.cfg.setDefaults()
	st.tokens = map[uint32]struct{}{}
	st.conns = map[*Conn]struct{}{}
	sh := newShim(st, child, qlen, false)
	tb.Cleanup(sh.Close)
	if sh.inPlace != inPlace {
		tb.Fatalf("shim in-place %v, want %v", sh.inPlace, inPlace)
	}
	st.shims = []*shim{sh}
	const localKey, remoteKey = 0x0102030405060708, 0x1112131415161718
	sf := subflow.New(subflow.Config{Role: subflow.Initiator, LocalKey: localKey})
	f := newFlow(fixLocal, fixRemote, sf)
	c := newConn(st, subflow.Initiator, fixLocal, fixRemote, localKey, options.Token(localKey))
	f.conn.Store(c)
	st.flows.add(f)
	const iss, irs = 1000, 5000
	// Handshake as the subflow sees it.
	sf.Outgoing(nil, subflow.Segment{Flags: subflow.FlagSYN, Seq: iss}, subflow.ConnState{})
	var opts options.Segment
	opts.Parse(options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: options.CapableFlagHMACSHA256, SenderKey: remoteKey}.Append(nil),
		options.ContextSYN|options.ContextACK)
	ev := sf.Incoming(subflow.Segment{Flags: subflow.FlagSYN | subflow.FlagACK, Seq: irs, Ack: iss + 1}, &opts, subflow.Refs{})
	if !ev.Established {
		tb.Fatal("fixture handshake did not establish")
	}
	c.onEstablished(remoteKey, false)
	// The responder's DSS makes the initiator fully established.
	opts.Parse(options.DSS{HasAck: true, Ack64: true, DataAck: 1}.Append(nil), options.ContextACK)
	sf.Incoming(subflow.Segment{Flags: subflow.FlagACK, Seq: irs + 1, Ack: iss + 1}, &opts, c.rxRefs())
	_, idsn := options.TokenIDSN(localKey)
	for i := 0; i < 16; i++ {
		sf.AddTXMapping(idsn+1+uint64(i)*65535, 65535, 0, false)
	}
	return &shimFixture{st: st, sh: sh, sink: sink, f: f, c: c, iss: iss}
}

// dataPacket builds a segment as gVisor's TCP hands it to the link: IPv4
// and TCP headers pushed (with timestamps), a 1448-byte payload, a full
// checksum.
func (fx *shimFixture) dataPacket(rel uint32, payload []byte) *gstack.PacketBuffer {
	const tcpLen = header.TCPMinimumSize + 12
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{
		ReserveHeaderBytes: int(fx.sh.MaxHeaderLength()) + header.IPv4MinimumSize + tcpLen,
		Payload:            buffer.MakeWithData(payload),
	})
	th := header.TCP(pkt.TransportHeader().Push(tcpLen))
	th.Encode(&header.TCPFields{SrcPort: fixLocal.Port(), DstPort: fixRemote.Port(), SeqNum: fx.iss + rel, AckNum: 5001,
		DataOffset: tcpLen, Flags: header.TCPFlagAck, WindowSize: 1000})
	copy(th[header.TCPMinimumSize:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	src, dst := tcpip.AddrFrom4(fixLocal.Addr().As4()), tcpip.AddrFrom4(fixRemote.Addr().As4())
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + tcpLen + len(payload)), TTL: 64,
		Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(payload)))
	xsum = checksum.Combine(xsum, checksum.Checksum(payload, 0))
	th.SetChecksum(^th.CalculateChecksum(xsum))
	return pkt
}

// BenchmarkShimOutbound: the shim adding a DSS to an outgoing data
// segment, by copying the packet (links that read header views) and in
// place (emu, tun). "build" is the cost of making the packet alone, to
// subtract.
func BenchmarkShimOutbound(b *testing.B) {
	payload := make([]byte, 1448)
	for _, mode := range []string{"build", "rebuild", "inplace"} {
		b.Run(mode, func(b *testing.B) {
			fx := newShimFixture(b, mode == "inplace")
			b.ReportAllocs()
			for b.Loop() {
				pkt := fx.dataPacket(1449, payload)
				if mode != "build" {
					var list gstack.PacketBufferList
					list.PushBack(pkt)
					fx.sh.WritePackets(list)
				}
				pkt.DecRef()
			}
		})
	}
}

// TestShimOutboundAllocs pins zero allocations per segment in the shim's
// transmit path at steady state (pooled packet buffers), both ways, with
// and without the transmit queue (whose writer's work is counted too:
// AllocsPerRun counts the whole program's allocations).
func TestShimOutboundAllocs(t *testing.T) {
	if raceEnabled {
		// sync.Pool drops items at random under the race detector.
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items on purpose); run without -race")
	}
	payload := make([]byte, 1448)
	for _, c := range []struct {
		inPlace bool
		qlen    int
	}{{false, 0}, {true, 0}, {false, DefaultTxQueueLen}, {true, DefaultTxQueueLen}} {
		inPlace := c.inPlace
		fx := newShimFixtureQueued(t, inPlace, c.qlen)
		pkts := make([]*gstack.PacketBuffer, 1200)
		for i := range pkts {
			pkts[i] = fx.dataPacket(1449, payload)
		}
		i := 0
		var list gstack.PacketBufferList
		list.PushBack(nil)
		send := func() {
			list.AsSlice()[0] = pkts[i]
			i++
			fx.sh.WritePackets(list)
			if q := fx.sh.txq; q != nil && i%32 == 0 {
				// A sender's window bounds what it has in flight; without
				// this, the test could outrun the writer by the whole
				// queue and measure the pools' growth, not a steady
				// state.
				for q.queued() > 0 {
					runtime.Gosched()
				}
			}
		}
		for range 100 {
			send() // warm the pools
		}
		if a := testing.AllocsPerRun(1000, send); a != 0 {
			t.Errorf("in place %v, queue %d: %v allocations per outgoing segment, want 0", inPlace, c.qlen, a)
		}
		for _, p := range pkts {
			p.DecRef()
		}
	}
}

// TestShimInPlaceMatchesRebuild: growing a header in place and rebuilding
// the packet give the same bytes.
func TestShimInPlaceMatchesRebuild(t *testing.T) {
	payload := payload(1448, 3)
	var out [2][]byte
	for i, inPlace := range []bool{false, true} {
		fx := newShimFixture(t, inPlace)
		pkt := fx.dataPacket(1449, payload)
		rec := &recordEndpoint{}
		fx.sh.child = rec
		var list gstack.PacketBufferList
		list.PushBack(pkt)
		fx.sh.WritePackets(list)
		pkt.DecRef()
		if len(rec.pkts) != 1 {
			t.Fatalf("in place %v: %d packets", inPlace, len(rec.pkts))
		}
		out[i] = rec.pkts[0]
	}
	if string(out[0]) != string(out[1]) {
		t.Fatalf("rebuild and in place differ:\n%x\n%x", out[0], out[1])
	}
	// And the result is a valid segment with the DSS.
	ip := header.IPv4(out[0])
	if !ip.IsChecksumValid() || int(ip.TotalLength()) != len(out[0]) {
		t.Fatal("bad IPv4 header")
	}
	th := header.TCP(ip.Payload())
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(th)))
	if th.CalculateChecksum(checksum.Combine(xsum, checksum.Checksum(th.Payload(), 0))) != 0xffff {
		t.Fatal("bad TCP checksum")
	}
	var seg options.Segment
	seg.Parse(th.Options(), options.ContextACK|options.ContextPayload)
	if o := seg.Find(options.SubtypeDSS); o == nil || !o.DSS().HasMapping || !seg.HasTimestamp {
		t.Fatalf("options %x", th.Options())
	}
}

// recordEndpoint keeps a copy of every packet written.
type recordEndpoint struct {
	sinkEndpoint
	pkts [][]byte
}

func (e *recordEndpoint) HeadersFromBytes() bool { return true }
func (e *recordEndpoint) WritePackets(l gstack.PacketBufferList) (int, tcpip.Error) {
	for _, p := range l.AsSlice() {
		e.pkts = append(e.pkts, p.ToView().ToSlice())
	}
	return l.Len(), nil
}

// inboundPacket builds a segment from the peer to the fixture's subflow as
// it arrives from a link: raw bytes, nothing pushed, a DSS with a data ACK.
func (fx *shimFixture) inboundPacket(payload []byte) *gstack.PacketBuffer {
	dss := options.DSS{HasAck: true, Ack64: true, DataAck: 1}.Append(nil)
	opts := append([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, dss...)
	opts = options.PadNOP(opts)
	tcpLen := header.TCPMinimumSize + len(opts)
	b := make([]byte, header.IPv4MinimumSize+tcpLen+len(payload))
	ip := header.IPv4(b)
	src, dst := tcpip.AddrFrom4(fixRemote.Addr().As4()), tcpip.AddrFrom4(fixLocal.Addr().As4())
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	th := header.TCP(b[header.IPv4MinimumSize:])
	th.Encode(&header.TCPFields{SrcPort: fixRemote.Port(), DstPort: fixLocal.Port(), SeqNum: 5001, AckNum: fx.iss + 1,
		DataOffset: uint8(tcpLen), Flags: header.TCPFlagAck, WindowSize: 1000})
	copy(th[header.TCPMinimumSize:], opts)
	copy(th[tcpLen:], payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(payload)))
	th.SetChecksum(^th.CalculateChecksum(checksum.Combine(xsum, checksum.Checksum(payload, 0))))
	return gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
}

// TestShimInboundAllocs pins zero allocations per segment in the shim's
// receive path: headers, checksum, options, subflow state, events.
func TestShimInboundAllocs(t *testing.T) {
	if raceEnabled {
		// sync.Pool drops items at random under the race detector.
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items on purpose); run without -race")
	}
	fx := newShimFixture(t, true)
	pkts := make([]*gstack.PacketBuffer, 1200)
	for i := range pkts {
		pkts[i] = fx.inboundPacket(make([]byte, 1448))
	}
	i := 0
	recv := func() {
		fx.sh.inbound(pkts[i])
		i++
	}
	for range 100 {
		recv()
	}
	if a := testing.AllocsPerRun(1000, recv); a != 0 {
		t.Errorf("%v allocations per incoming segment, want 0", a)
	}
	for _, p := range pkts {
		p.DecRef()
	}
}

// BenchmarkShimInbound: the shim's work on an incoming data segment.
func BenchmarkShimInbound(b *testing.B) {
	fx := newShimFixture(b, true)
	pkt := fx.inboundPacket(make([]byte, 1448))
	defer pkt.DecRef()
	b.ReportAllocs()
	for b.Loop() {
		pkt.RXChecksumValidated = false
		fx.sh.inbound(pkt)
	}
}

// TestIncomingViewSplitHeaders: headers whole in the packet's first view
// are read there; headers cut across views, or a packet with bytes
// consumed, go the PullUp way; all give the same view of the segment.
func TestIncomingViewSplitHeaders(t *testing.T) {
	fx := newShimFixture(t, true)
	whole := fx.inboundPacket(make([]byte, 100))
	defer whole.DecRef()
	raw := whole.ToView().ToSlice()
	want, _, _, ok := incomingView(whole)
	if !ok || packetStart(whole) == nil {
		t.Fatal("contiguous packet: no view, or not read in place")
	}
	for _, cut := range []int{1, 19, 20, 30, 40, 50, 60} {
		var buf buffer.Buffer
		buf.Append(buffer.NewViewWithData(append([]byte(nil), raw[:cut]...)))
		buf.Append(buffer.NewViewWithData(append([]byte(nil), raw[cut:]...)))
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buf})
		got, _, _, ok := incomingView(pkt)
		if !ok || string(got.ipHdr) != string(want.ipHdr) || string(got.tcp) != string(want.tcp) || got.payload != want.payload {
			t.Errorf("headers cut at %d: ok %v, view differs", cut, ok)
		}
		pkt.DecRef()
	}
	// Bytes consumed before the IP header (as a link layer does): the
	// first view starts with them, so it must not be read as the header.
	junk := append([]byte{0xde, 0xad, 0xbe, 0xef}, raw...)
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(junk)})
	defer pkt.DecRef()
	if _, ok := pkt.Data().Consume(4); !ok {
		t.Fatal("consume")
	}
	if packetStart(pkt) != nil {
		t.Error("packetStart reads a packet whose data does not start its first view")
	}
	got, _, _, ok := incomingView(pkt)
	if !ok || string(got.ipHdr) != string(want.ipHdr) || string(got.tcp) != string(want.tcp) || got.payload != want.payload {
		t.Errorf("after consumed bytes: ok %v, view differs", ok)
	}
}
