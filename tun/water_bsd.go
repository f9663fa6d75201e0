//go:build freebsd || openbsd

package tun

import "github.com/songgao/water"

// water has no FreeBSD or OpenBSD support (its Open returns an error there), and no name
// parameter to set.
func setWaterNameOS(c *water.Config, name string) {}
