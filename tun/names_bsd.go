//go:build darwin || freebsd || openbsd

package tun

import "github.com/songgao/water"

// maxNameLen is IFNAMSIZ-1 (net/if.h on macOS, FreeBSD and OpenBSD: IFNAMSIZ is 16).
const maxNameLen = 15

func setWaterName(c *water.Config, name string) { setWaterNameOS(c, name) }
