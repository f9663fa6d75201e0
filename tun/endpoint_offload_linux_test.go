package tun

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// recorder is a stack.NetworkDispatcher that keeps what it is given.
type recorder struct {
	sizes  []int
	protos []tcpip.NetworkProtocolNumber
}

func (r *recorder) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r.protos = append(r.protos, p)
	r.sizes = append(r.sizes, pkt.Size())
}

func (r *recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// TestDeliverOffload feeds the offload read path what the kernel writes: super-packets
// with a partial checksum go to gVisor whole; packets without a kernel flag are verified.
func TestDeliverOffload(t *testing.T) {
	rec := &recorder{}
	e := &Endpoint{offload: true, dispatcher: rec}
	frame := func(h VirtioNetHdr, pkt *stack.PacketBuffer) []byte {
		b := make([]byte, VirtioNetHdrLen+pkt.Size())
		h.Encode(b)
		CopyPacket(b[VirtioNetHdrLen:], pkt)
		pkt.DecRef()
		return b
	}
	// A 40000-byte super-packet from the kernel (TSO), partial checksum.
	super := buildTCP(false, make([]byte, 40000), tsOption, hostGSO(false, 1448))
	superSize := super.Size()
	e.deliverOffload(frame(VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, GSOType: VirtioNetHdrGSOTCPv4,
		HdrLen: 52, GSOSize: 1448, CsumStart: 20, CsumOffset: 16}, super))
	// A plain IPv6 packet with a complete, valid checksum and no flags: verified, delivered.
	plain := buildTCP(true, []byte("data"), nil, stack.GSO{})
	plainSize := plain.Size()
	e.deliverOffload(frame(VirtioNetHdr{}, plain))
	// The same with a broken checksum: dropped.
	bad := frame(VirtioNetHdr{}, buildTCP(true, []byte("data"), nil, stack.GSO{}))
	bad[len(bad)-1] ^= 0x55
	e.deliverOffload(bad)
	// UDP GSO is never enabled; if it came anyway it is dropped, not misdelivered.
	e.deliverOffload(frame(VirtioNetHdr{GSOType: VirtioNetHdrGSOUDPL4}, buildTCP(false, nil, nil, stack.GSO{})))
	// Too short for a virtio-net header.
	e.deliverOffload([]byte{1, 2, 3})

	if len(rec.sizes) != 2 || rec.sizes[0] != superSize || rec.sizes[1] != plainSize {
		t.Fatalf("delivered sizes %v, want [%d %d]", rec.sizes, superSize, plainSize)
	}
	if rec.protos[0] != header.IPv4ProtocolNumber || rec.protos[1] != header.IPv6ProtocolNumber {
		t.Errorf("protocols %v", rec.protos)
	}
	if got := e.Stats.RxGSOPackets.Load(); got != 1 {
		t.Errorf("RxGSOPackets %d, want 1", got)
	}
	if got := e.Stats.RxBadChecksum.Load(); got != 1 {
		t.Errorf("RxBadChecksum %d, want 1", got)
	}
	if got := e.Stats.RxDropped.Load(); got != 2 {
		t.Errorf("RxDropped %d, want 2", got)
	}
}
