package stack

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/options"
)

// gsoEndpoint is a bytes sink that segments super-segments itself.
type gsoEndpoint struct{ bytesSink }

func (*gsoEndpoint) GSOMaxSize() uint32                { return 1 << 16 }
func (*gsoEndpoint) SupportedGSO() gstack.SupportedGSO { return gstack.HostGSOSupported }

// TestSoftwareGSOChoice: the shim offers segmentation offload only to a
// link that reads packets as bytes and has none of its own, and only when
// the stack's Link allows it.
func TestSoftwareGSOChoice(t *testing.T) {
	st := &Stack{}
	for _, c := range []struct {
		name    string
		child   gstack.LinkEndpoint
		allowed bool
		want    bool                // the shim cuts super-segments itself
		gso     gstack.SupportedGSO // what gVisor is told
	}{
		{"bytes link", &bytesSink{}, true, true, gstack.HostGSOSupported},
		{"bytes link, NoSoftwareGSO", &bytesSink{}, false, false, gstack.GSONotSupported},
		{"link reading header views", &sinkEndpoint{}, true, false, gstack.GSONotSupported},
		{"link with its own GSO", &gsoEndpoint{}, true, false, gstack.HostGSOSupported},
	} {
		sh := newShim(st, c.child, 0, c.allowed)
		if sh.swGSO != c.want {
			t.Errorf("%s: software GSO %v, want %v", c.name, sh.swGSO, c.want)
		}
		if got := sh.SupportedGSO(); got != c.gso {
			t.Errorf("%s: SupportedGSO %v, want %v", c.name, got, c.gso)
		}
	}
}

// superSegment builds a TCP super-segment as gVisor's TCP hands it to a
// link with host GSO: IPv4 and TCP headers with timestamps, the checksum
// field holding the pseudo-header's sum (CHECKSUM_PARTIAL), GSO options
// asking for segments of mss bytes.
func (fx *shimFixture) superSegment(rel uint32, payload []byte, flags header.TCPFlags, mss uint16) *gstack.PacketBuffer {
	const tcpLen = header.TCPMinimumSize + 12
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{
		ReserveHeaderBytes: int(fx.sh.MaxHeaderLength()) + header.IPv4MinimumSize + tcpLen,
		Payload:            buffer.MakeWithData(payload),
	})
	th := header.TCP(pkt.TransportHeader().Push(tcpLen))
	th.Encode(&header.TCPFields{SrcPort: fixLocal.Port(), DstPort: fixRemote.Port(), SeqNum: fx.iss + rel, AckNum: 5001,
		DataOffset: tcpLen, Flags: flags, WindowSize: 1000})
	copy(th[header.TCPMinimumSize:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	src, dst := tcpip.AddrFrom4(fixLocal.Addr().As4()), tcpip.AddrFrom4(fixRemote.Addr().As4())
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + tcpLen + len(payload)), TTL: 64, ID: 7,
		Flags: header.IPv4FlagDontFragment, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	th.SetChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(payload))))
	pkt.GSOOptions = gstack.GSO{Type: gstack.GSOTCPv4, NeedsCsum: true, CsumOffset: header.TCPChecksumOffset,
		MSS: mss, L3HdrLen: header.IPv4MinimumSize, MaxSize: softwareGSOMaxSize}
	return pkt
}

// TestSoftwareGSOSegments cuts super-segments and checks every segment on
// the wire: valid IPv4 and TCP checksums, within the MTU and the MSS,
// sequence numbers contiguous, the payload intact, FIN and PSH on the last
// segment only, IPv4 IDs counting up, and the same DSS mapping, covering
// the whole super-segment, on each.
func TestSoftwareGSOSegments(t *testing.T) {
	for _, c := range []struct {
		name  string
		size  int
		mss   uint16
		flags header.TCPFlags
	}{
		{"many", 20000, 1420, header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin},
		{"exact multiple", 4 * 1000, 1000, header.TCPFlagAck | header.TCPFlagPsh},
		{"mss above the MTU's room", 9000, 9000, header.TCPFlagAck},
		{"one segment", 700, 1420, header.TCPFlagAck | header.TCPFlagPsh},
		{"pure ACK", 0, 1420, header.TCPFlagAck},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newShimFixture(t, true)
			fx.sh.swGSO = true
			rec := &recordEndpoint{}
			fx.sh.child = rec
			data := payload(c.size, 5)
			pkt := fx.superSegment(1, data, c.flags, c.mss)
			var list gstack.PacketBufferList
			list.PushBack(pkt)
			if n, err := fx.sh.WritePackets(list); n != 1 || err != nil {
				t.Fatalf("WritePackets: %d, %v", n, err)
			}
			pkt.DecRef()
			want := max(1, (c.size+int(c.mss)-1)/int(c.mss))
			if room := int(rec.MTU()) - header.IPv4MinimumSize - (header.TCPMinimumSize + options.MaxTCPOptionsLen); int(c.mss) > room {
				want = (c.size + room - 1) / room
			}
			if len(rec.pkts) < want {
				t.Fatalf("%d segments, want at least %d", len(rec.pkts), want)
			}
			var got []byte
			var mapping *options.DSS
			for i, b := range rec.pkts {
				ip := header.IPv4(b)
				if len(b) > int(rec.MTU()) || int(ip.TotalLength()) != len(b) || !ip.IsChecksumValid() {
					t.Fatalf("segment %d: %d bytes, IPv4 header %x", i, len(b), b[:header.IPv4MinimumSize])
				}
				if ip.ID() != 7+uint16(i) {
					t.Errorf("segment %d: IPv4 ID %d, want %d", i, ip.ID(), 7+i)
				}
				th := header.TCP(ip.Payload())
				xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(th)))
				if th.CalculateChecksum(checksum.Combine(xsum, checksum.Checksum(th.Payload(), 0))) != 0xffff {
					t.Fatalf("segment %d: bad TCP checksum", i)
				}
				if len(th.Payload()) > int(c.mss) {
					t.Errorf("segment %d: %d payload bytes, above the MSS %d", i, len(th.Payload()), c.mss)
				}
				if th.SequenceNumber() != fx.iss+1+uint32(len(got)) {
					t.Errorf("segment %d: seq %d, want %d", i, th.SequenceNumber(), fx.iss+1+uint32(len(got)))
				}
				got = append(got, th.Payload()...)
				last := i == len(rec.pkts)-1
				wantFlags := c.flags
				if !last {
					wantFlags &^= header.TCPFlagFin | header.TCPFlagPsh
				}
				if th.Flags() != wantFlags {
					t.Errorf("segment %d: flags %v, want %v", i, th.Flags(), wantFlags)
				}
				var seg options.Segment
				seg.Parse(th.Options(), options.ContextACK|options.ContextPayload)
				o := seg.Find(options.SubtypeDSS)
				if o == nil || !seg.HasTimestamp {
					t.Fatalf("segment %d: options %x", i, th.Options())
				}
				d := o.DSS()
				if c.size == 0 {
					continue
				}
				if mapping == nil {
					mapping = &d
					if !d.HasMapping || d.SubflowSeq != 1 || int(d.DataLen) < c.size {
						t.Fatalf("segment %d: mapping %+v does not cover the super-segment", i, d)
					}
				} else if d != *mapping {
					t.Errorf("segment %d: DSS %+v, first segment's %+v", i, d, *mapping)
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("payload differs: %d bytes, want %d", len(got), len(data))
			}
			wantSuper := uint64(0)
			if len(rec.pkts) > 1 {
				wantSuper = 1
			}
			if n := fx.st.counters.UmptcpGSOSuperSegments.Load(); n != wantSuper {
				t.Errorf("UmptcpGSOSuperSegments %d, want %d", n, wantSuper)
			}
		})
	}
}

// TestSoftwareGSOAllocs pins zero allocations per super-segment cut (and
// so per segment sent) at steady state.
func TestSoftwareGSOAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items on purpose); run without -race")
	}
	fx := newShimFixture(t, true)
	fx.sh.swGSO = true
	data := payload(30*1420, 9)
	pkts := make([]*gstack.PacketBuffer, 1200)
	for i := range pkts {
		pkts[i] = fx.superSegment(1, data, header.TCPFlagAck, 1420)
	}
	i := 0
	var list gstack.PacketBufferList
	list.PushBack(nil)
	send := func() {
		list.AsSlice()[0] = pkts[i]
		i++
		fx.sh.WritePackets(list)
	}
	for range 100 {
		send()
	}
	runtime.GC()
	if a := testing.AllocsPerRun(1000, send); a != 0 {
		t.Errorf("%v allocations per 30-segment super-segment, want 0", a)
	}
	if n := fx.sink.n.Load(); n < 30*1100 {
		t.Errorf("sink saw %d packets, want 30 per super-segment", n)
	}
	for _, p := range pkts {
		p.DecRef()
	}
}

// TestSoftwareGSOOnEmu: over emu's default link (no offloads) the stacks
// cut super-segments themselves, nothing crosses above the MTU, and the
// bytes arrive intact both ways, IPv4 and IPv6, with and without DSS
// checksums; with NoSoftwareGSO no super-segment is cut.
func TestSoftwareGSOOnEmu(t *testing.T) {
	for _, c := range []struct {
		v6, csum, off bool
	}{{false, false, false}, {true, false, false}, {false, true, false}, {false, false, true}} {
		t.Run(fmt.Sprintf("v6=%v/checksum=%v/NoSoftwareGSO=%v", c.v6, c.csum, c.off), func(t *testing.T) {
			noLeaks(t)
			p := newPairWith(t, c.v6, Config{Checksum: c.csum}, Config{}, emu.Config{}, emu.Config{},
				func(l *Link) { l.NoSoftwareGSO = c.off })
			exchange(t, p, 5000, 16<<20, 16<<20, nil)
			for _, d := range []emu.Dir{emu.AToB, emu.BToA} {
				if s := p.link.Stats(d); s.DroppedMTU != 0 || s.DeliveredBytes/s.DeliveredPackets > emu.DefaultMTU {
					t.Errorf("%v: %d packets, %d bytes, %d above the MTU", d, s.DeliveredPackets, s.DeliveredBytes, s.DroppedMTU)
				}
			}
			for _, st := range []*Stack{p.a, p.b} {
				cs := st.Counters().Snapshot()
				for _, name := range []string{"MPTcpExtDSSNotMatching", "MPTcpExtDSSNoMatchTCP", "MPTcpExtDataCsumErr",
					"UmptcpOptionsNoRoom", "UmptcpBadTCPChecksum", "UmptcpBadIPChecksum"} {
					if cs[name] != 0 {
						t.Errorf("%s = %d", name, cs[name])
					}
				}
				super := cs["UmptcpGSOSuperSegments"]
				if c.off && super != 0 {
					t.Errorf("NoSoftwareGSO: %d super-segments cut", super)
				}
				if !c.off && super == 0 {
					t.Error("no super-segment cut")
				}
			}
		})
	}
}
