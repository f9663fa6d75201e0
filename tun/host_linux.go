package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// configureHost does with rtnetlink what `ip addr add`, `ip link set mtu N up` and
// `ip route add` do (include/uapi/linux/rtnetlink.h, if_addr.h), in the device's namespace.
func configureHost(d *Device, h HostConfig) error {
	return d.plat.do(func() error {
		ifi, err := net.InterfaceByName(d.name)
		if err != nil {
			return err
		}
		idx := int32(ifi.Index)
		if h.MTU != 0 {
			if err := nlSetLink(idx, h.MTU, false); err != nil {
				return fmt.Errorf("set MTU %d: %w", h.MTU, err)
			}
		}
		for _, a := range h.Addresses {
			if err := nlAddAddr(idx, a); err != nil {
				return fmt.Errorf("add address %v: %w", a.Prefix, err)
			}
		}
		if err := nlSetLink(idx, 0, true); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
		for _, r := range h.Routes {
			if err := nlAddRoute(idx, r); err != nil {
				return fmt.Errorf("add route %v: %w", r, err)
			}
		}
		return nil
	})
}

func (d *Device) setMTU(mtu int) error {
	return d.plat.do(func() error {
		ifi, err := net.InterfaceByName(d.name)
		if err != nil {
			return err
		}
		return nlSetLink(int32(ifi.Index), mtu, false)
	})
}

// nlMsg builds one rtnetlink request: nlmsghdr, a fixed family header, attributes.
type nlMsg struct{ b []byte }

func newNLMsg(typ, flags uint16, fixed []byte) *nlMsg {
	m := &nlMsg{b: make([]byte, unix.SizeofNlMsghdr, 128)}
	binary.NativeEndian.PutUint16(m.b[4:], typ)
	binary.NativeEndian.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(m.b[8:], 1) // sequence number
	m.b = append(m.b, fixed...)
	return m
}

func (m *nlMsg) attr(typ uint16, data []byte) {
	l := unix.SizeofRtAttr + len(data)
	var h [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(l))
	binary.NativeEndian.PutUint16(h[2:], typ)
	m.b = append(m.b, h[:]...)
	m.b = append(m.b, data...)
	for len(m.b)%unix.NLMSG_ALIGNTO != 0 {
		m.b = append(m.b, 0)
	}
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// exec sends the request and waits for the kernel's acknowledgement (NLMSG_ERROR with
// error 0, or a negative errno).
func (m *nlMsg) exec() error {
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("malformed netlink reply")
			}
			if typ == unix.NLMSG_ERROR && l >= unix.SizeofNlMsghdr+4 {
				if errno := int32(binary.NativeEndian.Uint32(b[unix.SizeofNlMsghdr:])); errno != 0 {
					return unix.Errno(-errno)
				}
				return nil
			}
			l = (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
			if l > len(b) {
				break
			}
			b = b[l:]
		}
	}
}

func nlSetLink(idx int32, mtu int, up bool) error {
	var ifi unix.IfInfomsg
	ifi.Family = unix.AF_UNSPEC
	ifi.Index = idx
	if up {
		ifi.Flags = unix.IFF_UP
		ifi.Change = unix.IFF_UP
	}
	m := newNLMsg(unix.RTM_NEWLINK, 0, (*[unix.SizeofIfInfomsg]byte)(unsafe.Pointer(&ifi))[:])
	if mtu != 0 {
		m.attr(unix.IFLA_MTU, u32(uint32(mtu)))
	}
	return m.exec()
}

func nlAddAddr(idx int32, a Address) error {
	addr := a.Prefix.Addr()
	ifa := unix.IfAddrmsg{
		Family:    unix.AF_INET6,
		Prefixlen: uint8(a.Prefix.Bits()),
		Index:     uint32(idx),
	}
	if addr.Is4() {
		ifa.Family = unix.AF_INET
	}
	m := newNLMsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE,
		(*[unix.SizeofIfAddrmsg]byte)(unsafe.Pointer(&ifa))[:])
	// IFA_LOCAL is our address; IFA_ADDRESS is the peer on a point-to-point link and our
	// own address otherwise (see the comment in include/uapi/linux/if_addr.h).
	m.attr(unix.IFA_LOCAL, addr.AsSlice())
	if a.Peer.IsValid() {
		m.attr(unix.IFA_ADDRESS, a.Peer.AsSlice())
	} else {
		m.attr(unix.IFA_ADDRESS, addr.AsSlice())
	}
	if addr.Is6() {
		m.attr(unix.IFA_FLAGS, u32(unix.IFA_F_NODAD))
	}
	return m.exec()
}

func nlAddRoute(idx int32, p netip.Prefix) error {
	p = p.Masked()
	rt := unix.RtMsg{
		Family:   unix.AF_INET6,
		Dst_len:  uint8(p.Bits()),
		Table:    unix.RT_TABLE_MAIN,
		Protocol: unix.RTPROT_BOOT,
		Scope:    unix.RT_SCOPE_LINK,
		Type:     unix.RTN_UNICAST,
	}
	if p.Addr().Is4() {
		rt.Family = unix.AF_INET
	}
	m := newNLMsg(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE,
		(*[unix.SizeofRtMsg]byte)(unsafe.Pointer(&rt))[:])
	m.attr(unix.RTA_DST, p.Addr().AsSlice())
	m.attr(unix.RTA_OIF, u32(uint32(idx)))
	return m.exec()
}
