package stack

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// shim sits between a gVisor NIC and its link endpoint and owns the MPTCP
// options on the wire (DESIGN.md): on the way out it adds the options each
// segment of a subflow needs, cutting a segment in two where it spans two
// mappings; on the way in it parses them and updates the subflow and its
// connection before gVisor sees the segment. Options stay in the packet:
// gVisor skips the unknown kind 30.
//
// gVisor computes the TCP checksum of outgoing segments; the shim updates it
// for the bytes it adds without touching the payload again. On a link
// without segmentation offload the shim offers gVisor its own (gso.go):
// gVisor then sends super-segments with partial checksums, and the shim
// cuts them and sums each segment once. On the way in it verifies the
// checksum once, before trusting any option, and tells gVisor not to
// verify it again.
type shim struct {
	nested.Endpoint
	st    *Stack
	child stack.LinkEndpoint
	// inPlace: the child reads outgoing packets only as bytes, so the shim
	// may grow a TCP header in the packet's headroom (see growInPlace).
	inPlace bool
	// swGSO: the shim offers gVisor segmentation offload the child lacks
	// and cuts super-segments itself (gso.go). Only on inPlace links.
	swGSO   bool
	lastOut atomic.Pointer[flow]
	lastIn  atomic.Pointer[flow]

	// txMu orders what leaves through the child: a segment's options are
	// chosen and the segment written under it, so a synthesised ACK can
	// never pass a segment gVisor sent after it or be passed by one sent
	// before (its DATA_ACK, TCP ACK and timestamp would go backwards on
	// the wire). Lock order: txMu, then a subflow's or connection's locks.
	txMu sync.Mutex
	// txq, when not nil, takes what the shim sends to the child, in
	// txMu's order, and writes it from a goroutine of its own (see
	// txQueue); nil writes to the child in the sender's goroutine.
	txq      *txQueue
	stopOnce sync.Once

	// batch is WritePackets' scratch list, under txMu (which every send
	// holds throughout anyway).
	batch txBatch
}

// headersFromBytes is implemented by link endpoints that read outgoing
// packets only as bytes (PacketBuffer.ToView, AsViewList), never through
// their header views: umptcp's emu and tun endpoints.
type headersFromBytes interface{ HeadersFromBytes() bool }

var _ stack.LinkEndpoint = (*shim)(nil)
var _ stack.NetworkDispatcher = (*shim)(nil)

// Capabilities implements stack.LinkEndpoint. The shim hides transmit
// checksum offload from gVisor: it needs gVisor's checksum of each segment
// to update it for the options it adds without reading the payload again.
// Segmentation offload (GSO) is kept: such segments carry a partial
// checksum that the shim keeps partial. It claims receive checksum
// offload: it must verify an arriving segment's checksum itself before it
// trusts its options, and with the claim gVisor does not sum every
// segment a second time (the shim checks whatever gVisor then skips; see
// inbound).
func (sh *shim) Capabilities() stack.LinkEndpointCapabilities {
	return sh.child.Capabilities()&^stack.CapabilityTXChecksumOffload | stack.CapabilityRXChecksumOffload
}

// MaxHeaderLength implements stack.LinkEndpoint: the child's, plus room
// for the MPTCP options the shim adds in front of the payload.
func (sh *shim) MaxHeaderLength() uint16 {
	return sh.child.MaxHeaderLength() + options.MaxTCPOptionsLen
}

// newShim wraps child. With queueLen > 0, a transmit queue of that many
// packets and its writer goroutine stand between the shim and the child
// until Close. softGSO lets the shim do segmentation offload for a child
// that has none.
func newShim(st *Stack, child stack.LinkEndpoint, queueLen int, softGSO bool) *shim {
	sh := &shim{st: st, child: child}
	if queueLen > 0 {
		sh.txq = newTxQueue(queueLen, child.WritePackets, &st.counters)
	}
	if hb, ok := child.(headersFromBytes); ok && hb.HeadersFromBytes() && child.ARPHardwareType() == header.ARPHardwareNone {
		sh.inPlace = true
	}
	sh.swGSO = softGSO && sh.inPlace && !childHasGSO(child)
	sh.Endpoint.Init(child, sh)
	return sh
}

// txBatch is the list handed to the child for one WritePackets call, with
// the index of the original packet each entry came from. Every entry holds
// a reference the shim owns, so Reset releases exactly what it took.
type txBatch struct {
	list   stack.PacketBufferList
	origin []int
	flows  []*flow // each entry's MPTCP subflow, or nil
}

// WritePackets implements stack.LinkWriter. It owns the list, not the
// packets: originals passed through are referenced once more and released
// with the batch.
func (sh *shim) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	sh.txMu.Lock()
	defer sh.txMu.Unlock()
	b := &sh.batch
	for i, pkt := range pkts.AsSlice() {
		sh.outbound(pkt, b, i)
	}
	n, err := sh.emitLocked(b.list, b.flows)
	written := pkts.Len()
	if n < b.list.Len() {
		written = b.origin[n]
	}
	b.list.Reset()
	b.origin = b.origin[:0]
	clear(b.flows)
	b.flows = b.flows[:0]
	return written, err
}

// emitLocked sends list to the child, through the transmit queue if
// there is one (every packet is then accepted unless the shim is closing);
// flows has each packet's MPTCP subflow or nil. The caller holds txMu and
// keeps its references.
func (sh *shim) emitLocked(list stack.PacketBufferList, flows []*flow) (int, tcpip.Error) {
	if sh.txq == nil {
		return sh.child.WritePackets(list)
	}
	if !sh.txq.push(list, flows) {
		return 0, &tcpip.ErrClosedForSend{}
	}
	return list.Len(), nil
}

// Close implements stack.LinkEndpoint: what the transmit queue holds is
// written to the child, then the child is closed.
func (sh *shim) Close() {
	sh.stopQueue()
	sh.Endpoint.Close()
}

// stopQueue writes out what the transmit queue holds and stops its
// goroutine; later sends are refused. The child stays open.
func (sh *shim) stopQueue() {
	sh.stopOnce.Do(func() {
		if sh.txq != nil {
			sh.txq.close()
		}
	})
}

func (b *txBatch) push(pkt *stack.PacketBuffer, origin int, f *flow) {
	b.list.PushBack(pkt)
	b.origin = append(b.origin, origin)
	b.flows = append(b.flows, f)
}

// tcpView is an IP packet's TCP segment as the shim sees it.
type tcpView struct {
	ipHdr    []byte
	tcp      header.TCP
	v6       bool
	src, dst []byte // address bytes inside ipHdr
	payload  int
}

func (v *tcpView) segment() subflow.Segment {
	seg := subflow.Segment{
		Flags:      uint8(v.tcp.Flags()),
		Seq:        v.tcp.SequenceNumber(),
		Ack:        v.tcp.AckNumber(),
		PayloadLen: v.payload,
		Window:     v.tcp.WindowSize(),
	}
	seg.HasTimestamp, seg.TSVal, seg.TSEcr = findTimestamp(v.tcp.Options())
	return seg
}

func findTimestamp(opts []byte) (ok bool, val, ecr uint32) {
	// gVisor and Linux put NOP NOP TS first.
	if len(opts) >= 12 && opts[0] == options.TCPOptionNOP && opts[1] == options.TCPOptionNOP &&
		opts[2] == options.TCPOptionTimestamp && opts[3] == 10 {
		return true, binary.BigEndian.Uint32(opts[4:]), binary.BigEndian.Uint32(opts[8:])
	}
	w := options.NewWalker(opts)
	for {
		kind, opt, more := w.Next()
		if !more {
			return false, 0, 0
		}
		if kind == options.TCPOptionTimestamp && len(opt) == 10 {
			return true, binary.BigEndian.Uint32(opt[2:]), binary.BigEndian.Uint32(opt[6:])
		}
	}
}

func findWindowScale(opts []byte) int32 {
	w := options.NewWalker(opts)
	for {
		kind, opt, more := w.Next()
		if !more {
			return -1
		}
		if kind == options.TCPOptionWS && len(opt) == 3 {
			return int32(opt[2])
		}
	}
}

// outgoingView reads an outgoing packet's headers as gVisor pushed them.
// On a raw IP link (rawIP) the packet starts with its IP header, so the
// headers are read from the first bytes, which is much cheaper than going
// through the header views.
func outgoingView(pkt *stack.PacketBuffer, rawIP bool) (v tcpView, ok bool) {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return v, false
	}
	if rawIP {
		views, off := pkt.AsViewList()
		first := views.Front()
		if first == nil {
			return v, false
		}
		b := first.AsSlice()
		if off >= len(b) {
			return v, false
		}
		b = b[off:]
		ipLen := header.IPv6MinimumSize
		if b[0]>>4 == 4 {
			ipLen = int(b[0]&0x0f) * 4
		}
		if len(b) < ipLen+header.TCPMinimumSize {
			return v, false
		}
		tcpLen := int(b[ipLen+header.TCPDataOffset]>>4) * 4
		if tcpLen < header.TCPMinimumSize || len(b) < ipLen+tcpLen {
			return v, false
		}
		v.ipHdr = b[:ipLen]
		v.tcp = header.TCP(b[ipLen : ipLen+tcpLen])
	} else {
		v.ipHdr = pkt.NetworkHeader().Slice()
		v.tcp = header.TCP(pkt.TransportHeader().Slice())
	}
	if len(v.tcp) < header.TCPMinimumSize || int(v.tcp.DataOffset()) > len(v.tcp) {
		return v, false
	}
	switch {
	case len(v.ipHdr) >= header.IPv4MinimumSize && v.ipHdr[0]>>4 == 4:
		v.src, v.dst = v.ipHdr[12:16], v.ipHdr[16:20]
	case len(v.ipHdr) >= header.IPv6MinimumSize && v.ipHdr[0]>>4 == 6:
		v.v6 = true
		v.src, v.dst = v.ipHdr[8:24], v.ipHdr[24:40]
	default:
		return v, false
	}
	v.payload = pkt.Data().Size()
	return v, true
}

func (v *tcpView) keyOut() flowKey {
	return flowKey{local: addr16(v.src), remote: addr16(v.dst), lport: v.tcp.SourcePort(), rport: v.tcp.DestinationPort()}
}

func (v *tcpView) keyIn() flowKey {
	return flowKey{local: addr16(v.dst), remote: addr16(v.src), lport: v.tcp.DestinationPort(), rport: v.tcp.SourcePort()}
}

// outbound adds the MPTCP options of pkt's subflow, if any, and pushes the
// packet or its replacements onto b.
func (sh *shim) outbound(pkt *stack.PacketBuffer, b *txBatch, origin int) {
	v, ok := outgoingView(pkt, sh.inPlace)
	if !ok {
		sh.push(b, pkt.IncRef(), origin, nil)
		return
	}
	f := sh.flowOut(v.keyOut())
	if f == nil {
		sh.push(b, pkt.IncRef(), origin, nil)
		return
	}
	if f.peerReset.Load() {
		// The peer reset this subflow: nothing more goes out on it, least
		// of all a RST answering its RST (RFC 9293 §3.10.7.4), which
		// aborting the endpoint would send.
		sh.st.counters.UmptcpDroppedAfterReset.Add(1)
		return
	}
	seg := v.segment()
	if seg.Flags&subflow.FlagSYN != 0 {
		f.ourWS.Store(findWindowScale(v.tcp.Options()))
	}
	if pkt.GSOOptions.Type != stack.GSONone && pkt.GSOOptions.MSS != 0 {
		seg.MSS = int(pkt.GSOOptions.MSS)
	} else if v.payload > 0 && pkt.GSOOptions.Type == stack.GSONone {
		// Full-sized segments tell the segment size; smaller ones (the
		// tail of a write) do not, but never exceed it.
		seen := int(f.mssSeen.Load())
		seg.MSS = max(v.payload, seen)
		if seg.MSS != seen {
			f.mssSeen.Store(int32(seg.MSS)) // rarely: a store per segment would dirty the flow's line for every reader
		}
	}
	cs := f.connState()
	var buf [options.MaxTCPOptionsLen]byte
	mp, split, sent := f.sf.Outgoing(buf[:0], seg, cs)
	if len(mp) == 0 && split == 0 {
		sh.push(b, pkt.IncRef(), origin, f)
		return
	}
	sh.countTX(f, sent)
	if split == 0 {
		if sh.inPlace && sh.growInPlace(pkt, &v, mp) {
			sh.push(b, pkt.IncRef(), origin, f)
			return
		}
		sh.push(b, sh.rebuild(pkt, &v, mp, 0, v.payload, seg.Flags), origin, f)
		return
	}
	// The payload spans mappings: one segment per mapping (DESIGN.md).
	// A negative split drops bytes the peer acknowledged already.
	off := 0
	for {
		if split < 0 {
			k := min(-split, v.payload-off)
			sh.st.counters.UmptcpAckedBytesTrimmed.Add(uint64(k))
			off += k
			if off == v.payload {
				if seg.Flags&subflow.FlagFIN == 0 {
					return // all acknowledged: nothing to send
				}
				// A FIN after acknowledged bytes: it goes alone.
				rest := seg
				rest.Seq, rest.PayloadLen, rest.Rest = seg.Seq+uint32(off), 0, true
				mp, _, sent = f.sf.Outgoing(buf[:0], rest, cs)
				sh.countTX(f, sent)
				sh.push(b, sh.rebuild(pkt, &v, mp, off, 0, seg.Flags), origin, f)
				return
			}
		} else if split > 0 && off+split < v.payload {
			sh.st.counters.UmptcpSegmentsSplit.Add(1)
			flags := seg.Flags &^ (subflow.FlagFIN | subflow.FlagPSH)
			sh.push(b, sh.rebuild(pkt, &v, mp, off, split, flags), origin, f)
			off += split
		} else {
			break
		}
		rest := seg
		rest.Seq = seg.Seq + uint32(off)
		rest.PayloadLen = v.payload - off
		rest.Rest = true
		mp, split, sent = f.sf.Outgoing(buf[:0], rest, cs)
		sh.countTX(f, sent)
	}
	sh.push(b, sh.rebuild(pkt, &v, mp, off, v.payload-off, seg.Flags), origin, f)
}

func (f *flow) connState() subflow.ConnState {
	if c := f.conn.Load(); c != nil {
		return c.txState()
	}
	return subflow.ConnState{}
}

// countTX bumps the counters of the options about to be sent on f, and
// tells f's connection when they make it plain TCP.
func (sh *shim) countTX(f *flow, sent subflow.Sent) {
	if sent == 0 {
		return
	}
	if sent&subflow.SentInfiniteMapping != 0 {
		// The subflow is plain TCP from this segment on; so is the
		// connection (§3.7).
		if conn := f.conn.Load(); conn != nil {
			conn.onFallback(subflow.FallbackChecksum)
		}
	}
	c := &sh.st.counters
	if sent&subflow.SentCapableSYN != 0 {
		c.MPCapableSYNTX.Add(1)
	}
	if sent&subflow.SentMPFail != 0 {
		c.MPFailTx.Add(1)
	}
	if sent&subflow.SentFastClose != 0 {
		c.MPFastcloseTx.Add(1)
	}
	if sent&subflow.SentTCPRst != 0 {
		c.MPRstTx.Add(1)
	}
	if sent&subflow.SentInfiniteMapping != 0 {
		c.InfiniteMapTx.Add(1)
	}
}

// flowOut finds the flow of an outgoing segment, trying the last one found
// first: a bulk transfer sends runs of segments of one subflow.
func (sh *shim) flowOut(k flowKey) *flow { return sh.cachedFlow(&sh.lastOut, k) }

// flowIn finds the flow of an arriving segment the same way.
func (sh *shim) flowIn(k flowKey) *flow { return sh.cachedFlow(&sh.lastIn, k) }

// cachedFlow looks k up, trying the flow in last first and keeping the
// one found there. A flow removed from the table is marked retired, so a
// cache never returns it.
func (sh *shim) cachedFlow(last *atomic.Pointer[flow], k flowKey) *flow {
	if f := last.Load(); f != nil && f.key == k && f.retired.Load() == 0 {
		return f
	}
	f := sh.st.flows.get(k)
	if f != nil {
		last.Store(f)
	}
	return f
}

// growInPlace adds mp to pkt's TCP options without copying the packet: it
// takes the bytes it needs from the packet's headroom (the shim asks gVisor
// for 40 more with MaxHeaderLength), moves the IP and TCP headers back into
// them and writes the new option area where the old one ended. The packet's
// header views then no longer match its bytes, which is why this is done
// only for links that read packets as bytes (headersFromBytes). It reports
// false, having changed nothing, when it cannot.
func (sh *shim) growInPlace(pkt *stack.PacketBuffer, v *tcpView, mp []byte) bool {
	var areaBuf [options.MaxTCPOptionsLen]byte
	area, _, err := options.Fit(areaBuf[:0], v.tcp.Options(), mp)
	if err != nil {
		return false
	}
	ipLen, oldTCP := len(v.ipHdr), len(v.tcp)
	newTCP := header.TCPMinimumSize + len(area)
	grow := newTCP - oldTCP
	// Nothing but the IP and TCP headers pushed: no link header yet.
	if grow <= 0 || pkt.AvailableHeaderBytes() < grow || pkt.HeaderSize() != ipLen+oldTCP {
		return false
	}
	// The IP and TCP headers must be contiguous (gVisor pushes both into
	// the one reserved view), or moving them as one block would be wrong.
	if unsafe.Pointer(unsafe.SliceData(v.tcp)) != unsafe.Add(unsafe.Pointer(unsafe.SliceData(v.ipHdr)), ipLen) ||
		cap(v.ipHdr) < ipLen+oldTCP {
		return false
	}
	partial := pkt.GSOOptions.Type != stack.GSONone && pkt.GSOOptions.NeedsCsum
	oldOpts := len(v.tcp) - header.TCPMinimumSize
	// Fit's common case keeps the old options where they were and appends:
	// then the checksums change only by the appended bytes, the data offset
	// and the lengths (RFC 1624), and nothing else needs summing.
	appended := len(area) >= oldOpts && string(area[:oldOpts]) == string(v.tcp[header.TCPMinimumSize:])
	oldDoff := binary.BigEndian.Uint16(v.tcp[header.TCPDataOffset:])
	oldCsum := v.tcp.Checksum()
	var payloadSum uint16
	if !partial && !appended {
		// The payload's sum, taken out of the checksum gVisor computed,
		// before the header moves.
		oldPseudo := pseudoSum(v.src, v.dst, oldTCP+v.payload)
		payloadSum = checksum.Combine(^oldCsum, ^checksum.Combine(oldPseudo, headerSumWithoutChecksum(v.tcp)))
	}
	var addrs [32]byte
	srcLen := copy(addrs[:], v.src)
	copy(addrs[srcLen:], v.dst)
	src, dst := addrs[:srcLen], addrs[srcLen:2*srcLen]

	ext := pkt.LinkHeader().Push(grow)
	if cap(ext) < grow+ipLen+oldTCP || unsafe.Add(unsafe.Pointer(unsafe.SliceData(ext)), grow) != unsafe.Pointer(unsafe.SliceData(v.ipHdr)) {
		// Cannot happen after the checks above; the packet now has a link
		// header it should not: not ours to repair, drop nothing, count.
		sh.st.counters.UmptcpOptionsNoRoom.Add(1)
		return true
	}
	full := ext[:grow+ipLen+oldTCP]
	copy(full, full[grow:])
	nh := full[:ipLen]
	th := header.TCP(full[ipLen : ipLen+newTCP])
	copy(th[header.TCPMinimumSize:], area)
	th[header.TCPDataOffset] = byte(newTCP/4)<<4 | th[header.TCPDataOffset]&0x0f
	if !appended || partial {
		sh.finishTCP(pkt, nh, th, src, dst, v.payload, partial, payloadSum)
		return true
	}
	// Incremental: HC' = ~(~HC + ~m + m') for each changed word m → m'.
	newDoff := binary.BigEndian.Uint16(th[header.TCPDataOffset:])
	d := checksum.Combine(^oldDoff, newDoff)
	d = checksum.Combine(d, uint16(grow)) // the pseudo-header's TCP length
	d = checksum.Checksum(th[header.TCPMinimumSize+oldOpts:], d)
	th.SetChecksum(^checksum.Combine(^oldCsum, d))
	sh.fixIPLength(pkt, nh, grow, len(th)+v.payload)
	return true
}

// fixIPLength sets the IP length field of a packet whose TCP header grew by
// grow bytes to a TCP length of tcpLen, updating the IPv4 header checksum
// incrementally, and keeps a super-segment's cuts within the MTU.
func (sh *shim) fixIPLength(pkt *stack.PacketBuffer, nh []byte, grow, tcpLen int) {
	if nh[0]>>4 == 6 {
		header.IPv6(nh).SetPayloadLength(uint16(len(nh) - header.IPv6MinimumSize + tcpLen))
	} else {
		ip := header.IPv4(nh)
		old := ip.TotalLength()
		ip.SetTotalLength(uint16(len(nh) + tcpLen))
		ip.SetChecksum(^checksum.Combine(checksum.Combine(^ip.Checksum(), ^old), ip.TotalLength()))
	}
	sh.capMSS(pkt, len(nh), tcpLen-pkt.Data().Size())
}

// capMSS keeps header + MSS of a super-segment within the MTU: each segment
// the kernel cuts from it carries the whole header.
func (sh *shim) capMSS(pkt *stack.PacketBuffer, ipLen, tcpHdrLen int) {
	if g := &pkt.GSOOptions; g.Type != stack.GSONone && g.MSS != 0 {
		if room := int(sh.child.MTU()) - ipLen - tcpHdrLen; room > 0 && int(g.MSS) > room {
			g.MSS = uint16(room)
		}
	}
}

// finishTCP fixes the IP length fields and the TCP checksum of a segment
// whose TCP header became th, and keeps a super-segment's cuts within the
// MTU.
func (sh *shim) finishTCP(pkt *stack.PacketBuffer, nh []byte, th header.TCP, src, dst []byte, payload int, partial bool, payloadSum uint16) {
	setIPLength(nh, len(th)+payload)
	if partial {
		// CHECKSUM_PARTIAL: the field holds the pseudo-header sum, with the
		// TCP length, and whoever segments the packet completes it.
		th.SetChecksum(pseudoSum(src, dst, len(th)+payload))
	} else {
		setTCPChecksum(src, dst, th, payload, payloadSum)
	}
	sh.capMSS(pkt, len(nh), len(th))
}

// rebuild returns a new packet carrying payload bytes [off, off+n) of pkt
// with the TCP options of pkt plus mp, laid out by options.Fit. flags
// replaces the TCP flags (a cut segment's first part has no FIN or PSH).
func (sh *shim) rebuild(pkt *stack.PacketBuffer, v *tcpView, mp []byte, off, n int, flags uint8) *stack.PacketBuffer {
	var areaBuf [options.MaxTCPOptionsLen]byte
	area, _, err := options.Fit(areaBuf[:0], v.tcp.Options(), mp)
	if err != nil {
		// Cannot happen with gVisor's own options (timestamps, SACK blocks
		// are trimmed); send the segment without MPTCP options rather
		// than not at all, and count it.
		sh.st.counters.UmptcpOptionsNoRoom.Add(1)
		area = append(areaBuf[:0], v.tcp.Options()...)
	}
	tcpLen := header.TCPMinimumSize + len(area)

	payload := pkt.Data().ToBuffer()
	if off > 0 {
		payload.TrimFront(int64(off))
	}
	if int(payload.Size()) > n {
		payload.Truncate(int64(n))
	}
	np := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: int(sh.child.MaxHeaderLength()) + len(v.ipHdr) + tcpLen,
		Payload:            payload,
	})
	th := header.TCP(np.TransportHeader().Push(tcpLen))
	copy(th, v.tcp[:header.TCPMinimumSize])
	copy(th[header.TCPMinimumSize:], area)
	th[header.TCPDataOffset] = byte(tcpLen/4)<<4 | th[header.TCPDataOffset]&0x0f
	th.SetFlags(flags)
	th.SetSequenceNumber(v.tcp.SequenceNumber() + uint32(off))

	nh := np.NetworkHeader().Push(len(v.ipHdr))
	copy(nh, v.ipHdr)
	setIPLength(nh, tcpLen+n)
	inheritTx(np, pkt)
	np.GSOOptions = pkt.GSOOptions

	switch {
	case pkt.GSOOptions.Type != stack.GSONone && pkt.GSOOptions.NeedsCsum:
		// CHECKSUM_PARTIAL: the field holds the pseudo-header sum, with the
		// TCP length, and whoever segments the packet completes it.
		th.SetChecksum(pseudoSum(v.src, v.dst, tcpLen+n))
	case off == 0 && n == v.payload:
		// Same payload: take its sum out of the checksum gVisor computed
		// (RFC 1624) instead of reading the payload again.
		old := v.tcp.Checksum()
		oldPseudo := pseudoSum(v.src, v.dst, len(v.tcp)+v.payload)
		hdrOld := headerSumWithoutChecksum(v.tcp)
		setTCPChecksum(v.src, v.dst, th, n, checksum.Combine(^old, ^checksum.Combine(oldPseudo, hdrOld)))
	default:
		setTCPChecksum(v.src, v.dst, th, n, np.Data().Checksum())
	}
	return np
}

// setIPLength sets the length field of the IP header nh for a TCP segment
// of tcpLen bytes behind it and, for IPv4, computes the header checksum.
func setIPLength(nh []byte, tcpLen int) {
	if nh[0]>>4 == 6 {
		header.IPv6(nh).SetPayloadLength(uint16(len(nh) - header.IPv6MinimumSize + tcpLen))
		return
	}
	ip := header.IPv4(nh)
	ip.SetTotalLength(uint16(len(nh) + tcpLen))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
}

// setTCPChecksum computes th's checksum for a payload of n bytes summing to
// payloadSum.
func setTCPChecksum(src, dst []byte, th header.TCP, n int, payloadSum uint16) {
	th.SetChecksum(0)
	sum := checksum.Combine(pseudoSum(src, dst, len(th)+n), checksum.Checksum(th, 0))
	th.SetChecksum(^checksum.Combine(sum, payloadSum))
}

// inheritTx gives np, a packet the shim sends in place of pkt (or of part
// of it), pkt's protocol numbers, route, hash and owner.
func inheritTx(np, pkt *stack.PacketBuffer) {
	np.NetworkProtocolNumber = pkt.NetworkProtocolNumber
	np.TransportProtocolNumber = header.TCPProtocolNumber
	np.EgressRoute = pkt.EgressRoute
	np.Hash = pkt.Hash
	np.Owner = pkt.Owner
}

// headerSumWithoutChecksum is the one's-complement sum of a TCP header with
// its checksum field taken as zero.
func headerSumWithoutChecksum(t header.TCP) uint16 {
	s := checksum.Checksum(t[:header.TCPChecksumOffset], 0)
	return checksum.Checksum(t[header.TCPChecksumOffset+2:], s)
}

// pseudoSum is the TCP pseudo-header's one's-complement sum (RFC 9293
// §3.1, RFC 8200 §8.1).
func pseudoSum(src, dst []byte, tcpLen int) uint16 {
	s := checksum.Checksum(src, 0)
	s = checksum.Checksum(dst, s)
	return checksum.Combine(s, uint16(header.TCPProtocolNumber)+uint16(tcpLen))
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: every packet
// from the link passes here before gVisor's network layer.
func (sh *shim) DeliverNetworkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if !sh.inbound(pkt) {
		return
	}
	sh.Endpoint.DeliverNetworkPacket(protocol, pkt)
}

// incomingView parses the IP and TCP headers of an arriving packet. It
// refuses fragments and anything it cannot bound-check.
func incomingView(pkt *stack.PacketBuffer) (v tcpView, ipLen, total int, ok bool) {
	// A link hands over a packet whose headers usually sit whole in its
	// first view: read them there. PullUp, the general way, costs a walk
	// of the views each time, and one that reaches past the first view
	// merges it with the next: a copy of the payload.
	first := packetStart(pkt)
	pullUp := func(n int) ([]byte, bool) {
		if n <= len(first) {
			return first[:n], true
		}
		return pkt.Data().PullUp(n)
	}
	hdr, _ := pullUp(min(pkt.Data().Size(), header.IPv4MinimumSize))
	if len(hdr) < header.IPv4MinimumSize {
		return v, 0, 0, false
	}
	switch hdr[0] >> 4 {
	case 4:
		ip := header.IPv4(hdr)
		ipLen = int(ip.HeaderLength())
		total = int(ip.TotalLength())
		if ipLen < header.IPv4MinimumSize || ip.Protocol() != uint8(header.TCPProtocolNumber) ||
			ip.More() || ip.FragmentOffset() != 0 {
			return v, 0, 0, false
		}
	case 6:
		if hdr, ok = pullUp(header.IPv6MinimumSize); !ok {
			return v, 0, 0, false
		}
		ip := header.IPv6(hdr)
		// Extension headers are not walked: TCP segments from MPTCP
		// peers do not carry them; such packets go to gVisor untouched.
		if ip.TransportProtocol() != header.TCPProtocolNumber {
			return v, 0, 0, false
		}
		ipLen = header.IPv6MinimumSize
		total = ipLen + int(ip.PayloadLength())
		v.v6 = true
	default:
		return v, 0, 0, false
	}
	if total > pkt.Data().Size() || total < ipLen+header.TCPMinimumSize {
		return v, 0, 0, false
	}
	hdr, ok = pullUp(ipLen + header.TCPMinimumSize)
	if !ok {
		return v, 0, 0, false
	}
	off := int(header.TCP(hdr[ipLen:]).DataOffset())
	if off < header.TCPMinimumSize || ipLen+off > total {
		return v, 0, 0, false
	}
	hdr, ok = pullUp(ipLen + off)
	if !ok {
		return v, 0, 0, false
	}
	v.ipHdr = hdr[:ipLen]
	v.tcp = header.TCP(hdr[ipLen : ipLen+off])
	if v.v6 {
		v.src, v.dst = v.ipHdr[8:24], v.ipHdr[24:40]
	} else {
		v.src, v.dst = v.ipHdr[12:16], v.ipHdr[16:20]
	}
	v.payload = total - ipLen - off
	return v, ipLen, total, true
}

// packetStart returns the bytes of pkt's first view when its data starts
// there (nothing reserved, pushed or consumed: a packet as a link delivers
// it), or nil. They are for reading only: PullUp is what makes bytes safe
// to write to.
func packetStart(pkt *stack.PacketBuffer) []byte {
	if pkt.ReservedHeaderBytes() != 0 || pkt.HeaderSize() != 0 {
		return nil
	}
	views, off := pkt.AsViewList()
	if v := views.Front(); v != nil && off == 0 {
		return v.AsSlice()
	}
	return nil
}

// checksumOK verifies the TCP checksum of an arriving segment.
func checksumOK(pkt *stack.PacketBuffer, v *tcpView, ipLen, total int) bool {
	var sum uint16
	if pkt.Data().Size() == total && pkt.HeaderSize() == 0 && pkt.ReservedHeaderBytes() == 0 {
		sum = pkt.Data().ChecksumAtOffset(ipLen)
	} else {
		// Trailing bytes after the IP datagram (padding) or a packet that
		// does not start at its data: sum the exact range.
		r := pkt.Data().AsRange().SubRange(ipLen).Capped(total - ipLen)
		sum = checksum.Checksum(r.ToSlice(), 0)
	}
	return checksum.Combine(sum, pseudoSum(v.src, v.dst, total-ipLen)) == 0xffff
}

// inbound processes an arriving packet's MPTCP options and reports whether
// gVisor may have it. Since the shim claims receive checksum offload,
// gVisor trusts every packet's checksums: the shim verifies them here
// unless the link below did.
func (sh *shim) inbound(pkt *stack.PacketBuffer) bool {
	verified := pkt.RXChecksumValidated || sh.child.Capabilities()&stack.CapabilityRXChecksumOffload != 0
	v, ipLen, total, ok := incomingView(pkt)
	if !ok {
		return verified || sh.verifyOther(pkt)
	}
	if !verified {
		if !v.v6 && !header.IPv4(v.ipHdr).IsChecksumValid() {
			sh.st.counters.UmptcpBadIPChecksum.Add(1)
			return false
		}
		if !checksumOK(pkt, &v, ipLen, total) {
			sh.st.counters.UmptcpBadTCPChecksum.Add(1)
			return false
		}
		pkt.RXChecksumValidated = true
	}

	f := sh.flowIn(v.keyIn())
	seg := v.segment()
	isSYN := seg.Flags&subflow.FlagSYN != 0 && seg.Flags&subflow.FlagACK == 0
	if f == nil && !isSYN {
		return true // not ours: plain TCP, or gVisor will answer with a RST
	}
	var opts options.Segment
	opts.Parse(v.tcp.Options(), options.ContextOf(seg.Flags, seg.PayloadLen))
	if f == nil {
		sh.st.passiveSYN(&v, seg, &opts)
		return true
	}
	if seg.Flags&subflow.FlagSYN != 0 {
		f.peerWS.Store(findWindowScale(v.tcp.Options()))
		if isSYN && f.sf.Role() == subflow.Responder {
			// A retransmitted SYN of a handshake in progress.
			if o := opts.Find(options.SubtypeMPCapable); o != nil && o.MPCapable().Usable() {
				f.sf.AcceptSYN(seg.Seq, o.MPCapable())
			}
			return true
		}
	}
	c := f.conn.Load()
	var refs subflow.Refs
	if c != nil {
		refs = c.rxRefs()
	}
	ev := f.sf.Incoming(seg, &opts, refs) // applies the ACK too
	if seg.Flags&subflow.FlagRST != 0 && f.sf.AcceptableRST(seg.Seq) {
		f.sf.MarkReset()
		f.peerReset.Store(true)
	}
	sh.st.handleEvents(f, c, &v, seg, &ev)
	return true
}

// verifyOther checks a packet that incomingView did not take as a TCP
// segment for what gVisor skips under the shim's claim of receive checksum
// offload: the IPv4 header checksum and the checksum of TCP behind IPv6
// extension headers. It drops fragments of TCP and UDP: their transport
// checksum can only be checked after reassembly, which gVisor would skip
// (a reassembled packet inherits the validated flag of its first
// fragment), and the shim must see every TCP segment's options whole. TCP
// senders set DF and discover the path MTU, and routers never fragment
// IPv6, so TCP arrives in fragments only when something is broken. ICMP
// gVisor checks itself; umptcp's stack has no UDP.
func (sh *shim) verifyOther(pkt *stack.PacketBuffer) bool {
	size := pkt.Data().Size()
	b, _ := pkt.Data().PullUp(min(size, 128))
	if len(b) < 1 {
		return true // gVisor drops what it cannot parse
	}
	var proto uint8
	var off int
	frag := false
	switch b[0] >> 4 {
	case 4:
		if len(b) < header.IPv4MinimumSize {
			return true
		}
		ip := header.IPv4(b)
		ipLen := int(ip.HeaderLength())
		if ipLen < header.IPv4MinimumSize || ipLen > len(b) {
			return true
		}
		if !ip.IsChecksumValid() {
			sh.st.counters.UmptcpBadIPChecksum.Add(1)
			return false
		}
		proto, frag = ip.Protocol(), ip.More() || ip.FragmentOffset() != 0
	case 6:
		if len(b) < header.IPv6MinimumSize {
			return true
		}
		// Walk the extension headers (RFC 8200 §4) to the upper layer.
		proto, off = b[6], header.IPv6MinimumSize
		for walked := false; ; walked = true {
			var next uint8
			var n int
			switch proto {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if off+2 > len(b) {
					return sh.unverifiable(walked)
				}
				next, n = b[off], (int(b[off+1])+1)*8
			case 44: // fragment
				if off+8 > len(b) {
					return sh.unverifiable(walked)
				}
				next, n, frag = b[off], 8, true
			default:
				if !walked {
					return true // nothing in front of the upper layer
				}
				if proto == uint8(header.TCPProtocolNumber) && !frag {
					return sh.checksumAt(pkt, b, off, size)
				}
				if frag && (proto == uint8(header.TCPProtocolNumber) || proto == uint8(header.UDPProtocolNumber)) {
					sh.st.counters.UmptcpFragmentsDropped.Add(1)
					return false
				}
				return true
			}
			proto, off = next, off+n
		}
	default:
		return true
	}
	if frag && (proto == uint8(header.TCPProtocolNumber) || proto == uint8(header.UDPProtocolNumber)) {
		sh.st.counters.UmptcpFragmentsDropped.Add(1)
		return false
	}
	return true
}

// unverifiable handles an IPv6 packet whose extension headers run past
// what verifyOther looks at: a packet cut short in its first one gVisor
// drops as malformed; a longer chain is dropped here and counted, since
// what follows it could be TCP.
func (sh *shim) unverifiable(walked bool) bool {
	if !walked {
		return true
	}
	sh.st.counters.UmptcpFragmentsDropped.Add(1)
	return false
}

// checksumAt verifies the checksum of an IPv6 TCP segment that starts off
// bytes into the packet (behind extension headers), b being the packet's
// first bytes. The shim does not look at such a segment's options.
func (sh *shim) checksumAt(pkt *stack.PacketBuffer, b []byte, off, size int) bool {
	total := header.IPv6MinimumSize + int(header.IPv6(b).PayloadLength())
	if total > size || off > total {
		return true // gVisor drops it as malformed
	}
	r := pkt.Data().AsRange().SubRange(off).Capped(total - off)
	sum := checksum.Checksum(r.ToSlice(), 0)
	if checksum.Combine(sum, pseudoSum(b[8:24], b[24:40], total-off)) != 0xffff {
		sh.st.counters.UmptcpBadTCPChecksum.Add(1)
		return false
	}
	return true
}

// sendPureACK synthesises an ACK on f carrying only options: the DATA_ACK
// or DATA_FIN when TCP has nothing to send (§3.3). Its sequence number,
// acknowledgment, window and timestamps are those of TCP's last segment, so
// TCP's peer treats it as a duplicate ACK at worst. They are read under
// txMu, so no segment TCP sends later can leave before it.
func (sh *shim) sendPureACK(f *flow) bool {
	sh.txMu.Lock()
	defer sh.txMu.Unlock()
	return sh.sendPureACKLocked(f)
}

func (sh *shim) sendPureACKLocked(f *flow) bool {
	seg, ok := f.sf.PureACK()
	if !ok || !sh.sendSynthesisedLocked(f, seg, nil) {
		return false
	}
	sh.st.counters.UmptcpPureACKsSent.Add(1)
	return true
}

// sendProbe synthesises the window probe of Subflow.Probe on f, with the
// byte it retransmits copied by byteAt (false when the send buffer no
// longer holds it: the probe goes empty), or a pure ACK before the peer
// acknowledged any data.
func (sh *shim) sendProbe(f *flow, byteAt func(dsn uint64, b []byte) bool) {
	sh.txMu.Lock()
	defer sh.txMu.Unlock()
	seg, dsn, dsnOK, ok := f.sf.Probe()
	if !ok {
		sh.sendPureACKLocked(f)
		return
	}
	var b [1]byte
	data := b[:0]
	if dsnOK && byteAt(dsn, b[:]) {
		data = b[:]
	}
	if sh.sendSynthesisedLocked(f, seg, data) {
		sh.st.counters.UmptcpWindowProbes.Add(1)
	}
}

// sendSynthesisedLocked builds seg, an ACK with data as payload, with the
// options Outgoing gives it, and writes it to the link. It reports false
// when there were no options to send or the link refused. The caller holds
// txMu from the moment it read seg's TCP fields.
func (sh *shim) sendSynthesisedLocked(f *flow, seg subflow.Segment, data []byte) bool {
	seg.PayloadLen = len(data)
	var buf [options.MaxTCPOptionsLen]byte
	mp, split, sent := f.sf.Outgoing(buf[:0], seg, f.connState())
	if split != 0 {
		// The probe's byte lost its mapping meanwhile: send no byte.
		data, seg.PayloadLen = nil, 0
		mp, _, sent = f.sf.Outgoing(buf[:0], seg, f.connState())
	}
	payload := len(data)
	if len(mp) == 0 {
		return false
	}
	var tsBuf [12]byte
	var ts []byte
	if seg.HasTimestamp {
		tsBuf[0], tsBuf[1], tsBuf[2], tsBuf[3] = options.TCPOptionNOP, options.TCPOptionNOP, options.TCPOptionTimestamp, 10
		binary.BigEndian.PutUint32(tsBuf[4:], seg.TSVal)
		binary.BigEndian.PutUint32(tsBuf[8:], seg.TSEcr)
		ts = tsBuf[:]
	}
	var areaBuf [options.MaxTCPOptionsLen]byte
	area, _, err := options.Fit(areaBuf[:0], ts, mp)
	if err != nil {
		return false
	}
	sh.countTX(f, sent)
	tcpLen := header.TCPMinimumSize + len(area)
	ipLen := header.IPv4MinimumSize
	v6 := !f.local.Addr().Is4()
	if v6 {
		ipLen = header.IPv6MinimumSize
	}
	opts := stack.PacketBufferOptions{ReserveHeaderBytes: int(sh.child.MaxHeaderLength()) + ipLen + tcpLen}
	if payload > 0 {
		opts.Payload = buffer.MakeWithData(data)
	}
	pkt := stack.NewPacketBuffer(opts)
	defer pkt.DecRef()
	th := header.TCP(pkt.TransportHeader().Push(tcpLen))
	th.Encode(&header.TCPFields{
		SrcPort: f.local.Port(), DstPort: f.remote.Port(), SeqNum: seg.Seq, AckNum: seg.Ack,
		DataOffset: uint8(tcpLen), Flags: header.TCPFlagAck, WindowSize: seg.Window,
	})
	copy(th[header.TCPMinimumSize:], area)
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	src, dst := f.local.Addr(), f.remote.Addr()
	nh := pkt.NetworkHeader().Push(ipLen)
	if v6 {
		header.IPv6(nh).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tcpLen + payload), TransportProtocol: header.TCPProtocolNumber, HopLimit: 64,
			SrcAddr: toTCPIP(src), DstAddr: toTCPIP(dst),
		})
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	} else {
		ip := header.IPv4(nh)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(ipLen + tcpLen + payload), Flags: header.IPv4FlagDontFragment, TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: toTCPIP(src), DstAddr: toTCPIP(dst),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	}
	s16, d16 := src.As16(), dst.As16()
	sb, db := s16[:], d16[:]
	if !v6 {
		sb, db = sb[12:], db[12:]
	}
	setTCPChecksum(sb, db, th, payload, checksum.Checksum(data, 0))

	var list stack.PacketBufferList
	list.PushBack(pkt)
	flows := [1]*flow{f}
	_, werr := sh.emitLocked(list, flows[:])
	return werr == nil
}
