package main

import (
	"bufio"
	"io"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/umptcp/umptcp/tun"
)

// pcapSnaplen keeps whole packets: a TCP super-segment on a Linux TUN device
// with offloads is up to 64 KiB of IP packet (IPv6: plus its 40-byte
// header), more than the usual 65535.
const pcapSnaplen = 262144

// pcapTap is a link endpoint between the option shim and the TUN endpoint
// that records every packet crossing it in a pcap capture (LINKTYPE_RAW):
// what the shim hands to the device, MPTCP options included, and what the
// device delivers, before the shim parses it. It is only in the path with
// --pcap; without it the shim sits directly on the TUN endpoint.
//
// The tun and stack packages have no capture hook of their own, and gVisor's
// link/sniffer does not fit: it reads packets through their header views,
// which the shim does not keep current when it grows a TCP header in place
// (HeadersFromBytes), it panics on a write error, and it does not lock.
// pcapTap reads packets as bytes only, so it passes HeadersFromBytes on.
//
// Outgoing segments on the offload path carry a partial checksum (the
// kernel completes it); the copy in the capture gets its checksum
// completed, so that Wireshark does not flag every one of them. Incoming
// packets are recorded as the device delivers them: those the kernel built
// may carry partial checksums too, as in a capture on the host side.
//
// Locking: mu guards the writer, the scratch buffer and err; packets come
// from gVisor's senders and from the device's read goroutine at once.
type pcapTap struct {
	nested.Endpoint
	child stack.LinkEndpoint

	mu      sync.Mutex
	bw      *bufio.Writer
	w       *pcapgo.Writer
	scratch []byte
	err     error // the first write error; recording stops there
}

var _ stack.LinkEndpoint = (*pcapTap)(nil)
var _ stack.NetworkDispatcher = (*pcapTap)(nil)

// newPcapTap writes a pcap file header to w and returns a tap over child.
func newPcapTap(child stack.LinkEndpoint, w io.Writer) (*pcapTap, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(pcapSnaplen, layers.LinkTypeRaw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	t := &pcapTap{child: child, bw: bw, w: pw, scratch: make([]byte, pcapSnaplen)}
	t.Endpoint.Init(child, t)
	return t, nil
}

// HeadersFromBytes tells the shim what the child tells: the tap itself
// reads packets only as bytes.
func (t *pcapTap) HeadersFromBytes() bool {
	hb, ok := t.child.(interface{ HeadersFromBytes() bool })
	return ok && hb.HeadersFromBytes()
}

// WritePackets implements stack.LinkEndpoint. The packets are recorded
// and written under one lock, so that the capture has them in the order of
// the device's writes: gVisor's senders and the shim's pure ACKs write
// concurrently, and a packet recorded before its write but written after
// another's would be out of order (a DATA_ACK that seems to go back). This
// serialises the writes, which only a run with --pcap pays for. A packet the
// child then refuses (the device closed) is in the capture all the same.
func (t *pcapTap) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pkt := range pkts.AsSlice() {
		t.recordLocked(pkt, true)
	}
	return t.child.WritePackets(pkts)
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (t *pcapTap) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	t.mu.Lock()
	t.recordLocked(pkt, false)
	t.mu.Unlock()
	t.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// recordLocked appends one packet to the capture. The caller holds mu.
func (t *pcapTap) recordLocked(pkt *stack.PacketBuffer, out bool) {
	if t.err != nil {
		return
	}
	size := pkt.Size()
	n := tun.CopyPacket(t.scratch, pkt)
	b := t.scratch[:n]
	if out && n == size && tun.IsPartialChecksum(pkt) {
		if l3, ok := ipHeaderLen(b); ok {
			// A failure leaves the partial sum, as on the wire.
			_ = tun.CompletePartialChecksum(b, l3, int(pkt.GSOOptions.CsumOffset))
		}
	}
	t.err = t.w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: n, Length: size}, b)
}

// ipHeaderLen returns the IP header length of the packet in b: IHL for
// IPv4, the fixed header for IPv6 (gVisor adds no extension headers to TCP).
func ipHeaderLen(b []byte) (int, bool) {
	if len(b) < 1 {
		return 0, false
	}
	switch b[0] >> 4 {
	case 4:
		return int(b[0]&0x0f) * 4, true
	case 6:
		return 40, true
	}
	return 0, false
}

// flush writes buffered packets out and returns the first error of the
// capture, if any. Call it once the stack is closed.
func (t *pcapTap) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	t.err = t.bw.Flush()
	return t.err
}
