package kernelpeer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mptcpInfo is MPTCP_INFO from include/uapi/linux/mptcp.h (the standard library and
// x/sys know only SOL_MPTCP).
const mptcpInfo = 1

// Offsets into struct mptcp_info. The kernel copies min(optlen, its size) bytes and
// reports how many; fields past that length are left zero.
const (
	offSubflows        = 0
	offAddAddrSignal   = 1
	offAddAddrAccepted = 2
	offFlags           = 8  // __u32
	offToken           = 12 // __u32
	offWriteSeq        = 16 // __u64
	offSndUna          = 24 // __u64
	offRcvNxt          = 32 // __u64
	offCsumEnabled     = 42
	offSubflowsTotal   = 80 // added in Linux 6.8
	infoSize           = 96 // sizeof(struct mptcp_info) in Linux 6.10+

	flagFallback          = 1 << 0 // MPTCP_INFO_FLAG_FALLBACK
	flagRemoteKeyReceived = 1 << 1 // MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED
)

// readInfo reads the connection's MPTCP_INFO. It fails on a connection that fell back to
// TCP (the kernel answers EOPNOTSUPP or ENOPROTOOPT).
func readInfo(c *net.TCPConn) (*Info, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var buf [infoSize]byte
	n := uint32(len(buf))
	var serr error
	err = rc.Control(func(fd uintptr) {
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_MPTCP, mptcpInfo,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno != 0 {
			serr = errno
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("getsockopt MPTCP_INFO: %w", err)
	}
	if n <= offCsumEnabled {
		return nil, fmt.Errorf("getsockopt MPTCP_INFO: short answer (%d bytes)", n)
	}
	b := buf[:n]
	ne := binary.NativeEndian
	flags := ne.Uint32(b[offFlags:])
	info := &Info{
		Subflows:          b[offSubflows],
		AddAddrSignal:     b[offAddAddrSignal],
		AddAddrAccepted:   b[offAddAddrAccepted],
		Fallback:          flags&flagFallback != 0,
		RemoteKeyReceived: flags&flagRemoteKeyReceived != 0,
		ChecksumEnabled:   b[offCsumEnabled] != 0,
		Token:             ne.Uint32(b[offToken:]),
		WriteSeq:          ne.Uint64(b[offWriteSeq:]),
		SndUna:            ne.Uint64(b[offSndUna:]),
		RcvNxt:            ne.Uint64(b[offRcvNxt:]),
	}
	if len(b) > offSubflowsTotal {
		info.SubflowsTotal = b[offSubflowsTotal]
	}
	return info, nil
}

// waitPending blocks until the peer's data is pending in the receive buffer, without
// reading it (MSG_PEEK), so that closing afterwards leaves unread data behind. It
// returns early, without error, at EOF.
func waitPending(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// Returning false makes the runtime poller wait for readability and call again.
		return !errors.Is(perr, unix.EAGAIN)
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("wait for pending data: %w", err)
	}
	return nil
}
