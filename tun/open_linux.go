package tun

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// maxNameLen is IFNAMSIZ-1: the kernel keeps a terminating NUL (include/uapi/linux/if.h).
const maxNameLen = unix.IFNAMSIZ - 1

const cloneDevice = "/dev/net/tun"

// tunOffloads are the offloads announced with TUNSETOFFLOAD: partial checksums and TCP
// segmentation both ways. wireguard-go also turns on USO (UDP GSO, Linux 6.2+); this package
// turns it off again because gVisor cannot take UDP super-packets, so the kernel segments
// UDP before handing it over (drivers/net/tun.c: set_offload maps these to the device's
// NETIF_F_* features, and the stack segments what the device does not take).
const tunOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6

// platformState remembers the network namespace the device was opened in, so that host
// configuration reaches the right namespace whatever OS thread the caller is on later.
type platformState struct {
	nsFD int // an open /proc/thread-self/ns/net, or -1
}

func (p *platformState) init() error {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Without /proc we still work in the caller's namespace.
		p.nsFD = -1
		return nil
	}
	p.nsFD = fd
	return nil
}

func (p *platformState) close() {
	if p.nsFD >= 0 {
		unix.Close(p.nsFD)
		p.nsFD = -1
	}
}

// do runs fn on a fresh OS thread that has joined the device's network namespace. The
// thread stays locked and is destroyed when the goroutine ends (runtime.LockOSThread
// documents that a goroutine exiting while locked terminates its thread), so no other
// goroutine ever runs in a namespace it did not ask for.
func (p *platformState) do(fn func() error) error {
	if p.nsFD < 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(p.nsFD, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// createWireGuard opens /dev/net/tun and issues TUNSETIFF itself (the same flags as
// wireguard-go's CreateTUN: IFF_TUN|IFF_NO_PI|IFF_VNET_HDR) so that each failure gets its own
// error, then hands the file to wireguard-go's CreateTUNFromFile, which reads the flags back,
// enables the offloads and sets the MTU.
func createWireGuard(name string, mtu int, p *platformState) (wgtun.Device, *os.File, error) {
	nfd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &Error{Op: "open", Name: name, Err: fmt.Errorf("%s: %w", cloneDevice, err),
			Kind: kindOfOpen(err), Hint: hintOfOpen(err)}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(nfd)
		return nil, nil, &Error{Op: "open", Name: name, Kind: ErrNameTooLong, Err: err}
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(nfd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(nfd)
		e := classify("open", name, fmt.Errorf("TUNSETIFF: %w", err)).(*Error)
		if errors.Is(err, unix.EINVAL) {
			e.Kind = ErrBusy
			e.Hint = "the name belongs to an interface that is not a TUN device"
		}
		return nil, nil, e
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, nil, err
	}
	// From here the file is registered with Go's poller, as wireguard-go requires.
	file := os.NewFile(uintptr(nfd), cloneDevice)
	dev, err := wgtun.CreateTUNFromFile(file, mtu)
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	if dev.BatchSize() == 1 {
		// No IFF_VNET_HDR (wireguard-go fell back): plain packets, no offloads.
		return dev, nil, nil
	}
	var offErr error
	if err := withFD(file, func(fd int) { offErr = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunOffloads) }); err != nil || offErr != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("TUNSETOFFLOAD: %w", errors.Join(err, offErr))
	}
	return dev, file, nil
}

func kindOfOpen(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return ErrNoDevice
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return ErrPermission
	}
	return nil
}

func hintOfOpen(err error) string {
	switch kindOfOpen(err) {
	case ErrNoDevice:
		return "load the tun module (modprobe tun); in a container, pass the device /dev/net/tun"
	case ErrPermission:
		return "needs read/write access to /dev/net/tun and CAP_NET_ADMIN (run as root)"
	}
	return ""
}

// withFD calls fn with the file's descriptor without putting the file into blocking mode,
// which (*os.File).Fd would do.
func withFD(f *os.File, fn func(fd int)) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return sc.Control(func(fd uintptr) { fn(int(fd)) })
}

func setWaterName(c *water.Config, name string) { c.Name = name }
