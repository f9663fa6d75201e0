package stack

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/options"
)

// Software segmentation offload.
//
// gVisor's TCP does most of its work per segment it sends: the sender's
// loop, the TCP and IP headers, the route, the NIC, the queueing
// discipline, and the shim's options. Given a link with segmentation
// offload (GSO) it sends super-segments of up to 64 KiB instead and leaves
// the cutting to the link, as Linux leaves it to the NIC or to its own GSO
// layer. When the link below offers none (emu's default links, TUN devices
// without offloads: macOS, the BSDs, water), the shim offers it itself and
// cuts each super-segment into segments that fit the MTU after the MPTCP
// options were added: one pass of header work per super-segment, a header
// copy and a checksum per segment. Every segment carries the
// super-segment's options, its DSS mapping included, as Linux's TSO
// segments do (a mapping may cover many segments, RFC 8684 §3.3.1).

// softwareGSOMaxSize is the super-segment size the shim asks gVisor for.
// gVisor sizes a super-segment's payload below it minus the largest TCP
// header, so the IPv4 total length still fits 16 bits after the options
// grow (as emu.MaxGSOSize).
const softwareGSOMaxSize = 0xffff - header.IPv4MinimumSize

// GSOMaxSize implements stack.GSOEndpoint.
func (sh *shim) GSOMaxSize() uint32 {
	if sh.swGSO {
		return softwareGSOSize(sh.child.MTU())
	}
	return sh.Endpoint.GSOMaxSize()
}

// softwareGSOSize is the super-segment size to ask gVisor for on a link of
// the given MTU: gVisor's TCP fills a super-segment up to the size less
// its header allowance (header.TCPTotalHeaderMaximumSize) and one byte,
// and when that is not a whole number
// of segments the last one cut is short: one packet more per super-segment
// (at MTU 9000, 8 packets where 7.3 would do). So the size is the largest
// that leaves room for a whole number of IPv4 segments as gVisor sizes
// them (MTU less the IPv4 and TCP headers and 40 bytes of options, with
// SACK permitted). IPv6 segments are 20 bytes shorter and end with a
// partial one.
func softwareGSOSize(mtu uint32) uint32 {
	const fill = header.TCPTotalHeaderMaximumSize + 1
	mss := int(mtu) - header.IPv4MinimumSize - header.TCPMinimumSize - options.MaxTCPOptionsLen
	if mss <= 0 {
		return softwareGSOMaxSize
	}
	k := (softwareGSOMaxSize - fill) / mss
	if k < 2 {
		return softwareGSOMaxSize
	}
	return uint32(k*mss + fill)
}

// SupportedGSO implements stack.GSOEndpoint: the child's, or host GSO done
// by the shim (segment) when the child has none. Host GSO rather than
// gVisor's own kind: with it gVisor leaves the payload's checksum to the
// link, and the shim sums each segment's payload once as it cuts.
func (sh *shim) SupportedGSO() stack.SupportedGSO {
	if sh.swGSO {
		return stack.HostGSOSupported
	}
	return sh.Endpoint.SupportedGSO()
}

// childHasGSO reports whether ep segments super-segments itself.
func childHasGSO(ep stack.LinkEndpoint) bool {
	g, ok := ep.(stack.GSOEndpoint)
	return ok && g.SupportedGSO() != stack.GSONotSupported && g.GSOMaxSize() != 0
}

// push adds pkt, whose reference it takes, to b; with software GSO, a
// super-segment becomes the segments it is cut into and a partial
// checksum is completed.
func (sh *shim) push(b *txBatch, pkt *stack.PacketBuffer, origin int, f *flow) {
	if sh.swGSO && pkt.GSOOptions.Type != stack.GSONone {
		sh.segment(b, pkt, origin, f)
		return
	}
	b.push(pkt, origin, f)
}

// segment cuts pkt, a TCP segment gVisor sent for host GSO (its checksum
// field holding only the pseudo-header's sum), into segments of at most
// its MSS, each with pkt's IP and TCP headers, and pushes them onto b. It
// takes pkt's reference. The link reads packets as bytes (swGSO implies
// inPlace), so the headers are read from pkt's first bytes: a header the
// shim grew in place is there, not in the header views.
func (sh *shim) segment(b *txBatch, pkt *stack.PacketBuffer, origin int, f *flow) {
	v, ok := outgoingView(pkt, true)
	gsoMSS := int(pkt.GSOOptions.MSS)
	pkt.GSOOptions = stack.GSO{}
	if !ok {
		// Not a TCP segment: gVisor asks for GSO on TCP only.
		b.push(pkt, origin, f)
		return
	}
	ipLen, tcpLen := len(v.ipHdr), len(v.tcp)
	mss := int(sh.child.MTU()) - ipLen - tcpLen
	if gsoMSS > 0 && gsoMSS < mss {
		mss = gsoMSS
	}
	if v.payload <= mss || mss <= 0 {
		// One segment: only the checksum is left to do. (mss <= 0 cannot
		// happen with gVisor's headers on an MTU of at least 1280.)
		setTCPChecksum(v.src, v.dst, v.tcp, v.payload, pkt.Data().Checksum())
		b.push(pkt, origin, f)
		return
	}
	sh.st.counters.UmptcpGSOSuperSegments.Add(1)
	payload := pkt.Data().ToBuffer()
	defer payload.Release()
	views := payload.AsViewList()
	cur := views.Front()
	curOff := 0 // bytes of cur already taken
	seq := v.tcp.SequenceNumber()
	flags := v.tcp.Flags()
	var id uint16
	if !v.v6 {
		id = header.IPv4(v.ipHdr).ID()
	}
	reserve := int(sh.child.MaxHeaderLength()) + ipLen + tcpLen
	for off, i := 0, 0; off < v.payload; i++ {
		n := min(mss, v.payload-off)
		// The segment's payload: clones of the views under [off, off+n).
		var data buffer.Buffer
		for left := n; left > 0; {
			take := min(left, cur.Size()-curOff)
			d := cur.Clone()
			d.TrimFront(curOff)
			d.CapLength(take)
			data.Append(d)
			left -= take
			if curOff += take; curOff == cur.Size() {
				cur, curOff = cur.Next(), 0
			}
		}
		sum := data.Checksum(0)
		np := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: reserve, Payload: data})
		th := header.TCP(np.TransportHeader().Push(tcpLen))
		copy(th, v.tcp)
		th.SetSequenceNumber(seq + uint32(off))
		last := off+n == v.payload
		fl := flags
		if !last {
			// FIN and PSH belong to the last segment, CWR to the first
			// (as Linux's tcp_gso_segment).
			fl &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		if i > 0 {
			fl &^= header.TCPFlagCwr
		}
		th.SetFlags(uint8(fl))
		nh := np.NetworkHeader().Push(ipLen)
		copy(nh, v.ipHdr)
		if !v.v6 {
			header.IPv4(nh).SetID(id + uint16(i))
		}
		setIPLength(nh, tcpLen+n)
		setTCPChecksum(v.src, v.dst, th, n, sum)
		inheritTx(np, pkt)
		b.push(np, origin, f)
		off += n
	}
	pkt.DecRef()
}
