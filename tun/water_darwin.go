package tun

import "github.com/songgao/water"

func setWaterNameOS(c *water.Config, name string) { c.Name = name }
