package tun

import (
	"errors"
	"fmt"
	"syscall"
)

// Kinds of failure, to test with errors.Is. The errors this package returns wrap one of
// these together with the underlying system error, and say what to do about it.
var (
	// ErrPermission: the process may not open /dev/net/tun or create an interface. On
	// Linux that takes CAP_NET_ADMIN (root) and read/write access to /dev/net/tun.
	ErrPermission = errors.New("permission denied")
	// ErrBusy: an interface with this name exists and cannot be attached: another process
	// holds the TUN device, or the name belongs to a non-TUN interface.
	ErrBusy = errors.New("device busy or name in use")
	// ErrNameTooLong: interface names are limited (15 bytes on Linux and the BSDs).
	ErrNameTooLong = errors.New("interface name too long")
	// ErrInvalidName: the OS imposes a pattern (macOS: "utun" or "utunN"; OpenBSD: "tunN").
	ErrInvalidName = errors.New("invalid interface name")
	// ErrNoDevice: the TUN driver is missing (/dev/net/tun absent: load the "tun" module,
	// or pass --device /dev/net/tun to the container).
	ErrNoDevice = errors.New("TUN driver not available")
	// ErrNotSupported: the operation is not implemented on this OS or by this driver.
	ErrNotSupported = errors.New("not supported")
	// ErrClosed: the device or endpoint was closed.
	ErrClosed = errors.New("closed")
)

// Error describes a failed operation on a TUN device.
type Error struct {
	Op   string // "open", "configure", ...
	Name string // interface name as requested or known
	Kind error  // one of the Err* values above, or nil when unclassified
	Err  error  // underlying cause, often a syscall.Errno
	Hint string // what the user can do, may be empty
}

func (e *Error) Error() string {
	s := "tun: " + e.Op
	if e.Name != "" {
		s += fmt.Sprintf(" %q", e.Name)
	}
	if e.Kind != nil {
		s += ": " + e.Kind.Error()
	}
	if e.Err != nil && (e.Kind == nil || e.Err.Error() != e.Kind.Error()) {
		s += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns both the kind and the cause, so errors.Is works with either
// (tun.ErrPermission, os.ErrPermission, syscall.EPERM).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// classify wraps err from opening or creating a device into an *Error with a kind and a
// hint, from the errno values the kernel's tun driver returns (drivers/net/tun.c:
// tun_set_iff returns EPERM without CAP_NET_ADMIN, EBUSY when the queue is attached,
// EINVAL when the name is a non-TUN interface).
func classify(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	e := &Error{Op: op, Name: name, Err: err}
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		e.Kind = ErrPermission
		e.Hint = "run as root or grant CAP_NET_ADMIN, and check access to the TUN device node"
	case errors.Is(err, syscall.EBUSY):
		e.Kind = ErrBusy
		e.Hint = "another process holds this TUN device; pick another name or stop it"
	case errors.Is(err, syscall.EEXIST):
		e.Kind = ErrBusy
		e.Hint = "an interface with this name already exists"
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		e.Kind = ErrNoDevice
		e.Hint = "load the tun kernel module or expose the TUN device node to this process"
	}
	return e
}
