package tun

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// linuxState is the offload path's state.
type linuxState struct {
	// fd is the device's descriptor, used for writev without going through os.File (whose
	// Write cannot gather and whose RawConn.Write would allocate a closure per packet). It
	// stays valid while Endpoint.mu is held for reading and the endpoint is not closed.
	fd int
}

func (e *Endpoint) initOffload() error {
	return withFD(e.dev.file, func(fd int) { e.linux.fd = fd })
}

// maxIovecs bounds the gather list of one writev kept on the stack; a packet with more
// views than that (rare: gVisor's payload chunks are large) is flattened first.
const maxIovecs = 32

// writeOffload writes each packet with its own virtio-net header (VirtioNetHdrFor) in one
// writev(2): a GSO super-segment of up to 64 KiB crosses into the kernel in one call and is
// segmented there (or not at all, when it is forwarded to a device with TSO, such as veth).
// wireguard-go's Write cannot do this: it takes whole packets with complete checksums and
// builds the virtio-net header itself from its own GRO (tun/offload_linux.go), so it has
// no way to pass gVisor's partial checksum and MSS.
func (e *Endpoint) writeOffload(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	var hdr [VirtioNetHdrLen]byte
	var iov [maxIovecs]unix.Iovec
	for i, pkt := range pkts {
		h := VirtioNetHdrFor(pkt)
		h.Encode(hdr[:])
		iov[0].Base = &hdr[0]
		iov[0].SetLen(len(hdr))
		n := 1
		views, off := pkt.AsViewList()
		for v := views.Front(); v != nil; v = v.Next() {
			b := v.AsSlice()
			if off >= len(b) {
				off -= len(b)
				continue
			}
			b = b[off:]
			off = 0
			if n == len(iov) {
				n = -1
				break
			}
			iov[n].Base = &b[0]
			iov[n].SetLen(len(b))
			n++
		}
		var errno unix.Errno
		if n < 0 {
			errno = e.writeFlat(hdr[:], pkt)
		} else {
			_, _, errno = unix.Syscall(unix.SYS_WRITEV, uintptr(e.linux.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		}
		switch errno {
		case 0:
			e.Stats.TxPackets.Add(1)
			if h.GSOType != VirtioNetHdrGSONone {
				e.Stats.TxGSOPackets.Add(1)
			}
		case unix.EBADF, unix.EBADFD:
			return i, &tcpip.ErrClosedForSend{}
		default:
			// EAGAIN (socket buffer full), EIO (interface down), EINVAL (a packet the
			// kernel rejects): dropped like a NIC drops, TCP recovers.
			e.Stats.TxWriteErrors.Add(1)
			e.Stats.TxDropped.Add(1)
		}
	}
	return len(pkts), nil
}

// writeFlat copies a packet with too many views into one pooled buffer and writes it.
func (e *Endpoint) writeFlat(hdr []byte, pkt *stack.PacketBuffer) unix.Errno {
	gb := genericPool.Get().(*genericBuf)
	defer genericPool.Put(gb)
	n := copy(gb[:], hdr)
	n += CopyPacket(gb[n:], pkt)
	_, _, errno := unix.Syscall(unix.SYS_WRITE, uintptr(e.linux.fd), uintptr(unsafe.Pointer(&gb[0])), uintptr(n))
	return errno
}

// rxViewSizes are the buffers one read(2) scatters into (after the virtio-net header):
// 64 KiB in all, the first small enough that an ACK takes only 512 bytes of pooled memory.
// Filled views go to gVisor as the packet's payload without a copy and are replaced from
// gVisor's chunk pool, the scheme of gVisor's link/fdbased readVDispatcher.
var rxViewSizes = [...]int{512, 512, 1024, 2048, 4096, 8192, 16384, 32768}

// rxState is the read goroutine's scatter list; only routineReadFromTUN touches it.
type rxState struct {
	hdr   [VirtioNetHdrLen]byte
	views [len(rxViewSizes)]*buffer.View
	iov   [1 + len(rxViewSizes)]unix.Iovec
	n     int        // bytes read by the last readv
	errno unix.Errno // its error
	flat  []byte     // scratch for verifying checksums of unflagged packets
	readv func(uintptr) bool
}

func (r *rxState) fill(i int) {
	v := buffer.NewViewSize(rxViewSizes[i])
	r.views[i] = v
	b := v.AsSlice()
	r.iov[1+i].Base = &b[0]
	r.iov[1+i].SetLen(len(b))
}

// readLoopOffload reads one packet per readv(2), with its virtio-net header, through Go's
// poller (RawConn.Read parks the goroutine on EAGAIN; Close wakes it). Super-packets (the
// kernel's TSO/GRO output, up to 64 KiB) go to gVisor whole instead of being split and
// checksummed per segment as wireguard-go's Read does: one trip through gVisor per 64 KiB.
// See the package documentation for what a wrapper sees.
func (e *Endpoint) readLoopOffload() {
	sc, err := e.dev.file.SyscallConn()
	if err != nil {
		return
	}
	r := &rxState{flat: make([]byte, maxPacket)}
	r.iov[0].Base = &r.hdr[0]
	r.iov[0].SetLen(len(r.hdr))
	for i := range rxViewSizes {
		r.fill(i)
	}
	defer func() {
		for _, v := range r.views {
			v.Release()
		}
	}()
	// Bound once: RawConn.Read takes a func, and a fresh closure per read would allocate.
	r.readv = func(fd uintptr) bool {
		n, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&r.iov[0])), uintptr(len(r.iov)))
		r.n, r.errno = int(n), errno
		return errno != unix.EAGAIN
	}
	for {
		err := sc.Read(r.readv)
		if err == nil && r.errno != 0 {
			err = r.errno
		}
		if err != nil {
			if errors.Is(err, unix.EBADFD) || errors.Is(err, unix.EBADF) {
				err = os.ErrClosed
			}
			if e.readFailed(err) {
				return
			}
			continue
		}
		e.deliverScattered(r)
	}
}

// deliverScattered turns the last readv into a packet: the filled views become its payload.
func (e *Endpoint) deliverScattered(r *rxState) {
	var h VirtioNetHdr
	if r.n < VirtioNetHdrLen || !h.Decode(r.hdr[:]) {
		e.Stats.RxDropped.Add(1)
		return
	}
	size := r.n - VirtioNetHdrLen
	if !e.acceptOffload(&h, r.views[0].AsSlice()[:min(size, rxViewSizes[0])]) {
		return
	}
	if h.Flags&(VirtioNetHdrFNeedsCsum|VirtioNetHdrFDataValid) == 0 {
		off := 0
		for i := 0; off < size; i++ {
			off += copy(r.flat[off:size], r.views[i].AsSlice())
		}
		if !verifyChecksums(r.flat[:size]) {
			e.Stats.RxBadChecksum.Add(1)
			return
		}
	}
	proto, ok := ipProto(r.views[0].AsSlice())
	d := e.getDispatcher()
	if !ok || d == nil {
		e.Stats.RxDropped.Add(1)
		return
	}
	var payload buffer.Buffer
	for i, rem := 0, size; rem > 0; i++ {
		v := r.views[i]
		if rem < v.Size() {
			v.CapLength(rem)
		}
		rem -= v.Size()
		payload.Append(v)
		r.fill(i)
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
	e.Stats.RxPackets.Add(1)
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// acceptOffload checks the virtio-net header of a read packet whose first bytes are
// first, counting what it drops.
func (e *Endpoint) acceptOffload(h *VirtioNetHdr, first []byte) bool {
	switch h.GSOType &^ VirtioNetHdrGSOECN {
	case VirtioNetHdrGSONone:
	case VirtioNetHdrGSOTCPv4, VirtioNetHdrGSOTCPv6:
		e.Stats.RxGSOPackets.Add(1)
	default:
		// UDP GSO is not enabled (tunOffloads), so the kernel should not send it.
		e.Stats.RxDropped.Add(1)
		return false
	}
	if len(first) == 0 {
		e.Stats.RxDropped.Add(1)
		return false
	}
	return true
}

// deliverOffload checks one packet read with its virtio-net header, in one contiguous
// buffer, and delivers it (a copy). The read loop uses deliverScattered instead; this is
// the same logic for callers holding a flat frame (tests).
func (e *Endpoint) deliverOffload(b []byte) {
	var h VirtioNetHdr
	if !h.Decode(b) {
		e.Stats.RxDropped.Add(1)
		return
	}
	p := b[VirtioNetHdrLen:]
	if !e.acceptOffload(&h, p) {
		return
	}
	// NEEDS_CSUM: built by this host's stack, never crossed a wire; the checksum field
	// holds the pseudo-header sum. DATA_VALID: the kernel verified it. Otherwise we verify,
	// because the endpoint tells gVisor not to (CapabilityRXChecksumOffload).
	if h.Flags&(VirtioNetHdrFNeedsCsum|VirtioNetHdrFDataValid) == 0 && !verifyChecksums(p) {
		e.Stats.RxBadChecksum.Add(1)
		return
	}
	e.deliver(p)
}
