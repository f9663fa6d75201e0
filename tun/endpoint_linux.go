package tun

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
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
	n += copyPacket(gb[n:], pkt)
	_, _, errno := unix.Syscall(unix.SYS_WRITE, uintptr(e.linux.fd), uintptr(unsafe.Pointer(&gb[0])), uintptr(n))
	return errno
}

// readLoopOffload reads one packet per read(2) with its virtio-net header. Super-packets
// (the kernel's TSO/GRO output, up to 64 KiB) go to gVisor whole instead of being split
// and checksummed per segment as wireguard-go's Read does: one trip through gVisor per
// 64 KiB. See the package documentation for what a wrapper sees.
func (e *Endpoint) readLoopOffload() {
	buf := make([]byte, VirtioNetHdrLen+maxPacket)
	for {
		n, err := e.dev.file.Read(buf)
		if err != nil {
			if errors.Is(err, unix.EBADFD) {
				err = os.ErrClosed
			}
			if e.readFailed(err) {
				return
			}
			continue
		}
		e.deliverOffload(buf[:n])
	}
}

// deliverOffload checks one packet read with its virtio-net header and delivers it.
func (e *Endpoint) deliverOffload(b []byte) {
	var h VirtioNetHdr
	if !h.Decode(b) {
		e.Stats.RxDropped.Add(1)
		return
	}
	p := b[VirtioNetHdrLen:]
	switch h.GSOType &^ VirtioNetHdrGSOECN {
	case VirtioNetHdrGSONone:
	case VirtioNetHdrGSOTCPv4, VirtioNetHdrGSOTCPv6:
		e.Stats.RxGSOPackets.Add(1)
	default:
		// UDP GSO is not enabled (tunOffloads), so the kernel should not send it.
		e.Stats.RxDropped.Add(1)
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
