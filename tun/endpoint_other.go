//go:build !linux

package tun

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// linuxState is empty: the offload path exists only on Linux.
type linuxState struct{}

func (e *Endpoint) initOffload() error { return ErrNotSupported }

func (e *Endpoint) writeOffload(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	return e.writeGeneric(pkts)
}

func (e *Endpoint) readLoopOffload() { e.readLoopGeneric() }
