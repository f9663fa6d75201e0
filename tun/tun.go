package tun

import (
	"errors"
	"os"
	"strconv"
	"sync"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Driver selects the library that opens the device.
type Driver string

const (
	// DriverWireGuard uses wireguard-go's tun package (the default). On Linux it opens the
	// device with IFF_VNET_HDR and TSO offloads, which the Endpoint uses for GSO.
	DriverWireGuard Driver = "wireguard"
	// DriverWater uses github.com/songgao/water: one packet per read or write, no offloads.
	DriverWater Driver = "water"
)

// DefaultMTU is the MTU used when Config.MTU is zero.
const DefaultMTU = 1500

// Config says which TUN device to open.
type Config struct {
	// Name of the interface. Empty lets the OS choose (Linux "tunN", macOS "utunN").
	// Linux creates the interface if it does not exist, or attaches to an existing
	// persistent one; macOS accepts only "utun" or "utunN"; OpenBSD only "tunN".
	Name string
	// Driver is DriverWireGuard when empty.
	Driver Driver
	// MTU of the interface; DefaultMTU when zero.
	MTU int
}

// batchDevice is what the Endpoint needs from a driver. wireguard-go's tun.Device has these
// methods; water is adapted to them with a batch of one.
type batchDevice interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	Close() error
}

// Device is an open TUN device. It is safe for concurrent use. Close it when done, or
// close the Endpoint made from it, which closes it.
type Device struct {
	name   string
	mtu    int
	driver Driver
	dev    batchDevice
	// file is the device's file on Linux when it was opened with IFF_VNET_HDR and TSO
	// offloads (wireguard driver); nil otherwise. See Offloads.
	file *os.File
	plat platformState

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Open opens (on Linux: creates or attaches to) the TUN device cfg names and sets its MTU.
// It does not configure addresses or bring the interface up: see ConfigureHost. On Linux
// the device is created in the network namespace of the calling OS thread; ConfigureHost
// later acts in that same namespace, whatever thread it runs on.
func Open(cfg Config) (*Device, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 0 || cfg.MTU > 65535 {
		return nil, &Error{Op: "open", Name: cfg.Name, Err: errors.New("MTU out of range 1..65535")}
	}
	if len(cfg.Name) > maxNameLen {
		return nil, &Error{Op: "open", Name: cfg.Name, Kind: ErrNameTooLong,
			Hint: "at most " + strconv.Itoa(maxNameLen) + " bytes on this OS"}
	}
	d := &Device{mtu: cfg.MTU, closed: make(chan struct{})}
	if err := d.plat.init(); err != nil {
		return nil, classify("open", cfg.Name, err)
	}
	var err error
	switch cfg.Driver {
	case "", DriverWireGuard:
		d.driver = DriverWireGuard
		err = openWireGuard(d, cfg)
	case DriverWater:
		d.driver = DriverWater
		err = openWater(d, cfg)
	default:
		return nil, &Error{Op: "open", Name: cfg.Name, Kind: ErrNotSupported, Err: errors.New("unknown driver " + string(cfg.Driver))}
	}
	if err != nil {
		d.plat.close()
		return nil, classify("open", cfg.Name, err)
	}
	return d, nil
}

// Name is the interface name the OS gave the device.
func (d *Device) Name() string { return d.name }

// MTU is the interface MTU set at Open or by ConfigureHost.
func (d *Device) MTU() int { return d.mtu }

// Driver is the driver that opened the device.
func (d *Device) Driver() Driver { return d.driver }

// Offloads reports whether the device exchanges packets with a virtio-net header and lets
// the kernel segment TCP (TSO4/TSO6) in both directions (Linux, wireguard driver). An
// Endpoint over such a device advertises host GSO to gVisor.
func (d *Device) Offloads() bool { return d.file != nil }

// BatchSize is the number of packets the driver reads or writes per call.
func (d *Device) BatchSize() int { return d.dev.BatchSize() }

// Close closes the device. A blocked read returns; the interface disappears unless it is
// persistent. Close is idempotent.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.closeErr = d.dev.Close()
		d.plat.close()
	})
	return d.closeErr
}

func openWireGuard(d *Device, cfg Config) error {
	dev, file, err := createWireGuard(cfg.Name, cfg.MTU, &d.plat)
	if err != nil {
		return err
	}
	name, err := dev.Name()
	if err != nil {
		dev.Close()
		return err
	}
	d.dev, d.name, d.file = dev, name, file
	return nil
}

var _ batchDevice = wgtun.Device(nil)
