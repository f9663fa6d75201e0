//go:build !linux

package tun

import (
	"os"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// platformState is empty off Linux: there are no network namespaces to remember.
type platformState struct{}

func (p *platformState) init() error              { return nil }
func (p *platformState) close()                   {}
func (p *platformState) do(fn func() error) error { return fn() }

// createWireGuard uses wireguard-go's CreateTUN. Off Linux there is no virtio-net header,
// so no offloads and no file for the offload path (untested here: only Linux is tested).
func createWireGuard(name string, mtu int, p *platformState) (wgtun.Device, *os.File, error) {
	dev, err := wgtun.CreateTUN(name, mtu)
	if err != nil {
		return nil, nil, err
	}
	return dev, nil, nil
}
