package tun

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// EndpointOptions tune an Endpoint.
type EndpointOptions struct {
	// DisableOffload makes the endpoint use the device's generic batched Read and Write
	// even when the device has offloads (Device.Offloads): no GSO towards gVisor, full
	// checksums from gVisor, and on Linux wireguard-go's own GRO on write and segmentation
	// on read. It exists for comparison; the offload path is faster.
	DisableOffload bool
	// GSOMaxSize caps gVisor's GSO segments on the offload path; 0 means MaxGSOSize.
	GSOMaxSize uint32
}

// Stats are the endpoint's counters. All fields are updated atomically.
type Stats struct {
	RxPackets      atomic.Uint64 // packets handed to gVisor
	RxGSOPackets   atomic.Uint64 // of which super-packets (kernel GSO) not split
	RxBadChecksum  atomic.Uint64 // dropped: checksum wrong (checked on behalf of gVisor)
	RxDropped      atomic.Uint64 // dropped: malformed, unsupported GSO, or no dispatcher
	RxReadErrors   atomic.Uint64 // read errors other than close
	TxPackets      atomic.Uint64 // packets written (a super-segment counts once)
	TxGSOPackets   atomic.Uint64 // of which super-segments the kernel will cut
	TxDropped      atomic.Uint64 // packets the device refused
	TxWriteErrors  atomic.Uint64 // write calls that failed
	TxCsumComplete atomic.Uint64 // partial checksums completed in software (generic path)
}

// Endpoint is a gVisor link endpoint (raw IP, no link header) over a Device. See the
// package documentation for the two data paths and the GSO contract.
//
// Locking: mu guards dispatcher, started and the closed state; the write paths take it for
// reading so that Close cannot release the device's descriptor under a write.
type Endpoint struct {
	dev     *Device
	offload bool // the Linux virtio-net-header path is active
	gsoMax  uint32
	mtu     atomic.Uint32

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	started    bool
	closed     bool
	onClose    func()

	wg sync.WaitGroup

	// linux holds the state of the offload path (endpoint_linux.go).
	linux linuxState

	// Stats count what the endpoint did; read them at any time.
	Stats Stats
}

var (
	_ stack.LinkEndpoint = (*Endpoint)(nil)
	_ stack.GSOEndpoint  = (*Endpoint)(nil)
)

// genericOffset is the headroom left in front of each packet for the generic path:
// wireguard-go writes its virtio-net header (10 bytes, Linux) or address family (4 bytes,
// BSDs and macOS) there, and requires at least that much (tun/tun_linux.go Write).
const genericOffset = 16

// maxPacket bounds a packet read from or written to the device.
const maxPacket = 0xffff

// NewEndpoint returns a link endpoint over dev. The endpoint owns dev from now on: closing
// the endpoint (Close, or gVisor removing the NIC) closes the device. Reading starts when
// gVisor attaches a dispatcher (stack.CreateNIC).
func NewEndpoint(dev *Device, opts EndpointOptions) (*Endpoint, error) {
	e := &Endpoint{dev: dev, gsoMax: opts.GSOMaxSize}
	if e.gsoMax == 0 || e.gsoMax > MaxGSOSize {
		e.gsoMax = MaxGSOSize
	}
	e.mtu.Store(uint32(dev.mtu))
	if dev.Offloads() && !opts.DisableOffload {
		if err := e.initOffload(); err != nil {
			return nil, &Error{Op: "endpoint", Name: dev.name, Err: err}
		}
		e.offload = true
	}
	return e, nil
}

// Device returns the device under the endpoint.
func (e *Endpoint) Device() *Device { return e.dev }

// Offload reports whether the endpoint uses the virtio-net-header path with GSO.
func (e *Endpoint) Offload() bool { return e.offload }

// MTU implements stack.LinkEndpoint. It is the device MTU: gVisor sizes its MSS from it.
func (e *Endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint. It changes what gVisor sees, not the device; use
// Device.ConfigureHost for that.
func (e *Endpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: no link header.
func (*Endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint: a TUN device has none.
func (*Endpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint; it does nothing.
func (*Endpoint) SetLinkAddress(tcpip.LinkAddress) {}

// HeadersFromBytes reports that the endpoint reads an outgoing packet's headers only from
// its bytes, never from its PacketBuffer header views. umptcp's option shim then grows a
// TCP header in place, in the packet's headroom, instead of copying the packet.
func (e *Endpoint) HeadersFromBytes() bool { return true }

// Capabilities implements stack.LinkEndpoint. On the offload path the endpoint verifies
// checksums the kernel did not vouch for before delivery (see verifyChecksums), so it
// advertises RX checksum offload; gVisor then skips its own verification, which matters for
// super-packets whose TCP checksum field holds only a partial sum.
func (e *Endpoint) Capabilities() stack.LinkEndpointCapabilities {
	if e.offload {
		return stack.CapabilityRXChecksumOffload
	}
	return 0
}

// GSOMaxSize implements stack.GSOEndpoint.
func (e *Endpoint) GSOMaxSize() uint32 {
	if e.offload {
		return e.gsoMax
	}
	return 0
}

// SupportedGSO implements stack.GSOEndpoint: host GSO on the offload path (the kernel
// segments, like a NIC with TSO), none otherwise.
func (e *Endpoint) SupportedGSO() stack.SupportedGSO {
	if e.offload {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// ARPHardwareType implements stack.LinkEndpoint.
func (*Endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint: raw IP, nothing to add.
func (*Endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint: raw IP, nothing to parse.
func (*Endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *Endpoint) SetOnCloseAction(f func()) {
	e.mu.Lock()
	e.onClose = f
	e.mu.Unlock()
}

// IsAttached implements stack.LinkEndpoint.
func (e *Endpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

// Attach implements stack.LinkEndpoint. The first non-nil dispatcher starts the read
// goroutine (routineReadFromTUN); Attach(nil) detaches: packets read meanwhile are dropped
// and counted. The goroutine stops only when the endpoint or device is closed.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dispatcher = d
	if d != nil && !e.started && !e.closed {
		e.started = true
		e.wg.Add(1)
		go e.routineReadFromTUN()
	}
}

// Wait implements stack.LinkEndpoint: it waits for the read goroutine to stop, which
// happens after Close.
func (e *Endpoint) Wait() { e.wg.Wait() }

// Close implements stack.LinkEndpoint. It closes the device, which ends the read
// goroutine (its blocked read returns os.ErrClosed), and runs the on-close action. Call
// Wait afterwards to be sure the goroutine is gone.
func (e *Endpoint) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	action := e.onClose
	e.mu.Unlock()
	e.dev.Close()
	if action != nil {
		action()
	}
}

func (e *Endpoint) getDispatcher() stack.NetworkDispatcher {
	e.mu.RLock()
	d := e.dispatcher
	e.mu.RUnlock()
	return d
}

// routineReadFromTUN is the endpoint's only goroutine: it reads from the device and
// delivers to the attached dispatcher until the device is closed.
func (e *Endpoint) routineReadFromTUN() {
	defer e.wg.Done()
	if e.offload {
		e.readLoopOffload()
		return
	}
	e.readLoopGeneric()
}

// readFailed decides what a read error means: true to stop reading. A closed device
// stops the loop; anything else is counted and retried after a short pause, so a device
// that errors persistently (interface down on some OSes) cannot spin a core.
func (e *Endpoint) readFailed(err error) bool {
	select {
	case <-e.dev.closed:
		return true
	default:
	}
	if errors.Is(err, os.ErrClosed) {
		return true
	}
	e.Stats.RxReadErrors.Add(1)
	time.Sleep(time.Millisecond)
	return false
}

// readLoopGeneric reads batches through the driver's Read (wireguard-go splits GSO
// super-packets and completes checksums there; water reads one packet).
func (e *Endpoint) readLoopGeneric() {
	n := e.dev.BatchSize()
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, genericOffset+maxPacket)
	}
	for {
		count, err := e.dev.dev.Read(bufs, sizes, genericOffset)
		for i := 0; i < count; i++ {
			e.deliver(bufs[i][genericOffset : genericOffset+sizes[i]])
		}
		if err != nil && e.readFailed(err) {
			return
		}
	}
}

// deliver copies one IP packet into a pooled gVisor view and hands it to the dispatcher.
func (e *Endpoint) deliver(b []byte) {
	proto, ok := ipProto(b)
	d := e.getDispatcher()
	if !ok || d == nil {
		e.Stats.RxDropped.Add(1)
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithView(buffer.NewViewWithData(b)),
	})
	e.Stats.RxPackets.Add(1)
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// WritePackets implements stack.LinkEndpoint.
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return 0, &tcpip.ErrClosedForSend{}
	}
	if e.offload {
		return e.writeOffload(pkts.AsSlice())
	}
	return e.writeGeneric(pkts.AsSlice())
}

// genericBuf is a pooled packet buffer for the generic write path. wireguard-go's GRO
// appends coalesced payloads to the first buffer of a flow up to its capacity, so each
// buffer has room for a full 64 KiB packet.
type genericBuf [genericOffset + maxPacket]byte

var genericPool = sync.Pool{New: func() any { return new(genericBuf) }}

// writeGeneric flattens packets into pooled buffers and writes them in batches of the
// device's BatchSize. Partial checksums (only if a wrapper asked for them) are completed
// here, since the generic path has no NEEDS_CSUM.
func (e *Endpoint) writeGeneric(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	batch := e.dev.BatchSize()
	var arrs [64]*genericBuf
	var bufArr [64][]byte
	if batch > len(arrs) {
		batch = len(arrs)
	}
	written := 0
	for len(pkts) > 0 {
		n := min(batch, len(pkts))
		bufs := bufArr[:0]
		for i := 0; i < n; i++ {
			pkt := pkts[i]
			gb := genericPool.Get().(*genericBuf)
			arrs[i] = gb
			off := genericOffset + CopyPacket(gb[genericOffset:], pkt)
			b := gb[genericOffset:off]
			if IsPartialChecksum(pkt) {
				start, _, _ := headerLens(pkt)
				if CompletePartialChecksum(b, int(start), int(pkt.GSOOptions.CsumOffset)) == nil {
					e.Stats.TxCsumComplete.Add(1)
				}
			}
			bufs = append(bufs, gb[:off])
		}
		_, err := e.dev.dev.Write(bufs, genericOffset)
		for i := 0; i < n; i++ {
			// Not scrubbed: every byte written later is copied in first.
			genericPool.Put(arrs[i])
			arrs[i] = nil
		}
		if err != nil {
			e.Stats.TxWriteErrors.Add(1)
			e.Stats.TxDropped.Add(uint64(n))
			if errors.Is(err, os.ErrClosed) {
				return written, &tcpip.ErrClosedForSend{}
			}
			// Like a NIC whose queue overflowed: the packets are lost, TCP recovers.
		} else {
			e.Stats.TxPackets.Add(uint64(n))
		}
		written += n
		pkts = pkts[n:]
	}
	return written, nil
}

// CopyPacket copies pkt's bytes (headers and payload, as they go on the
// wire; it reads the bytes, not the header views) into dst without
// allocating, as many as fit, and returns how many it copied.
func CopyPacket(dst []byte, pkt *stack.PacketBuffer) int {
	views, off := pkt.AsViewList()
	n := 0
	for v := views.Front(); v != nil && n < len(dst); v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		n += copy(dst[n:], b[off:])
		off = 0
	}
	return n
}

// ipProto tells IPv4 from IPv6 by the version nibble (a TUN device without IFF_NO_PI
// framing carries nothing else to go by).
func ipProto(b []byte) (tcpip.NetworkProtocolNumber, bool) {
	switch header.IPVersion(b) {
	case header.IPv4Version:
		return header.IPv4ProtocolNumber, true
	case header.IPv6Version:
		return header.IPv6ProtocolNumber, true
	}
	return 0, false
}
