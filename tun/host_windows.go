package tun

import "github.com/songgao/water"

// maxNameLen on Windows: wintun adapter names are limited to MAX_ADAPTER_NAME-1 characters.
const maxNameLen = 127

func setWaterName(c *water.Config, name string) { c.InterfaceName = name }

// configureHost is not implemented on Windows (netsh or the IP Helper API would be the
// way); umptcp's supported hosts are Linux, macOS and the BSDs.
func configureHost(d *Device, h HostConfig) error { return ErrNotSupported }

// setMTU leaves the adapter's MTU alone on Windows (see configureHost).
func (d *Device) setMTU(mtu int) error { return nil }
