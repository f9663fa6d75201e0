package tun

import (
	"github.com/songgao/water"
)

// waterDevice adapts a water.Interface (one packet per Read or Write, no offloads) to
// batchDevice with a batch of one.
type waterDevice struct {
	ifce *water.Interface
}

func (w *waterDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := w.ifce.Read(bufs[0][offset:])
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

func (w *waterDevice) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if _, err := w.ifce.Write(b[offset:]); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

func (w *waterDevice) BatchSize() int { return 1 }

func (w *waterDevice) Close() error { return w.ifce.Close() }

func openWater(d *Device, cfg Config) error {
	wc := water.Config{DeviceType: water.TUN}
	setWaterName(&wc, cfg.Name)
	ifce, err := water.New(wc)
	if err != nil {
		return err
	}
	d.dev = &waterDevice{ifce: ifce}
	d.name = ifce.Name()
	// water leaves the MTU alone; set it the way ConfigureHost does.
	if err := d.setMTU(cfg.MTU); err != nil {
		ifce.Close()
		return err
	}
	return nil
}
