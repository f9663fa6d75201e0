package emu

import (
	"sync"

	"golang.org/x/sys/cpu"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// endpoint is one end of a Link as a gVisor link endpoint. It carries raw IP
// packets: no link header, no link address, no neighbour resolution.
type endpoint struct {
	_    cpu.CacheLinePad
	link *Link
	tx   Dir // the direction this endpoint sends on
	// Every delivery takes mu (a write to its line); link and tx are read
	// for every packet sent: they stay on lines of their own.
	_ cpu.CacheLinePad

	// mu guards the fields below. It is never held while delivering (see
	// direction.deliver).
	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	linkAddr   tcpip.LinkAddress
	onClose    func()
}

var _ stack.LinkEndpoint = (*endpoint)(nil)

// WritePackets implements stack.LinkWriter. It owns the list, not the
// packets: the caller releases them, and what the link queues are its own
// references to the bytes.
func (e *endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	return e.link.dirs[e.tx].send(pkts)
}

// MTU implements stack.LinkEndpoint: the MTU of the direction it sends on.
func (e *endpoint) MTU() uint32 { return e.link.dirs[e.tx].cfg.Load().mtu() }

// SetMTU implements stack.LinkEndpoint; it sets Config.MTU of the direction
// the endpoint sends on.
func (e *endpoint) SetMTU(mtu uint32) { e.link.dirs[e.tx].setMTU(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: there is no link header.
func (*endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (e *endpoint) LinkAddress() tcpip.LinkAddress {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.linkAddr
}

// SetLinkAddress implements stack.LinkEndpoint.
func (e *endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.linkAddr = addr
}

// HeadersFromBytes reports that the endpoint reads outgoing packets only as bytes
// (PacketBuffer.ToView), never through their header views: umptcp's option shim may then
// grow a TCP header in place instead of copying the packet.
func (e *endpoint) HeadersFromBytes() bool { return true }

// Capabilities implements stack.LinkEndpoint. By default none: the sending
// stack computes checksums and the receiving one verifies them, which is what
// makes Config.Corrupt detectable. Config.ChecksumOffload or GSOMaxSize turns
// both off for one direction.
func (e *endpoint) Capabilities() stack.LinkEndpointCapabilities {
	var c stack.LinkEndpointCapabilities
	if tx := e.link.dirs[e.tx].cfg.Load(); tx.ChecksumOffload || tx.GSOMaxSize != 0 {
		c |= stack.CapabilityTXChecksumOffload
	}
	if rx := e.link.dirs[1-e.tx].cfg.Load(); rx.ChecksumOffload || rx.GSOMaxSize != 0 {
		c |= stack.CapabilityRXChecksumOffload
	}
	return c
}

// GSOMaxSize implements stack.GSOEndpoint: Config.GSOMaxSize of the
// direction this endpoint sends in.
func (e *endpoint) GSOMaxSize() uint32 { return e.link.dirs[e.tx].cfg.Load().GSOMaxSize }

// SupportedGSO implements stack.GSOEndpoint: host GSO when the sending
// direction has a GSOMaxSize, the link standing in for the host that would
// cut super-segments (it hands them over whole instead).
func (e *endpoint) SupportedGSO() stack.SupportedGSO {
	if e.GSOMaxSize() != 0 {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// Attach implements stack.LinkEndpoint. Attach(nil) detaches: later
// deliveries are dropped (Stats.DroppedDetached). It does not wait for a
// delivery in progress; see direction.deliver for why it must not.
func (e *endpoint) Attach(dispatcher stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dispatcher = dispatcher
}

// IsAttached implements stack.LinkEndpoint.
func (e *endpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

// Wait implements stack.LinkEndpoint. The endpoint owns no goroutine; the
// link's drains are stopped by Link.Close.
func (*endpoint) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (*endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint: there is no link header.
func (*endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint: there is no link header.
func (*endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.LinkEndpoint; the stack calls it when it removes the
// NIC. It runs the action set by SetOnCloseAction but leaves the Link alone:
// the other end may still be in use. Close the Link with Link.Close.
func (e *endpoint) Close() {
	e.mu.Lock()
	f := e.onClose
	e.onClose = nil
	e.mu.Unlock()
	if f != nil {
		f()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *endpoint) SetOnCloseAction(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onClose = f
}
