//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/qdisc/fifo"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	umptcp "github.com/umptcp/umptcp/stack"
)

// Userspace is a userspace TCP/IP stack measured over the TUN endpoint. Plain gVisor is
// one; the umptcp stack (MPTCP, the option shim over the same endpoint) is meant to be
// another: add a file to this package with
//
//	func init() { registerUserspace("umptcp", newUmptcp) }
//
// and its row appears in the table with ratios against kernel TCP and plain gVisor.
type Userspace interface {
	// Dial connects to the kernel server. The connection must be able to half-close
	// (CloseWrite() error), as net.TCPConn and gonet.TCPConn can.
	Dial(ctx context.Context, remote netip.AddrPort) (net.Conn, error)
	// Close releases the stack. The harness closes the link endpoint itself afterwards.
	Close() error
}

// UserspaceFactory builds a stack on link (this harness's tun.Endpoint over a fresh TUN
// device) with local as its address and the kernel behind the TUN as its next hop for
// everything. A gVisor-based stack should call tuneGVisor on its stack.Stack so that rows
// compare like with like.
type UserspaceFactory func(link stack.LinkEndpoint, local netip.Prefix, opts Options) (Userspace, error)

// Options are the harness settings a factory should honour.
type Options struct {
	// Queue asks for writes to the link from a queue's goroutine (gVisor: its fifo
	// queueing discipline on the NIC; umptcp: its shim's transmit queue) instead of
	// writes in the goroutine that sends, which holds TCP's endpoint lock meanwhile.
	Queue bool
}

type userspaceRow struct {
	name    string
	factory UserspaceFactory
	generic bool // measure over the endpoint's generic path (no offloads)
	mptcp   bool // talk to the kernel's MPTCP server instead of its TCP one
}

var userspaceRows []userspaceRow

// registerUserspace adds a row measured over the TUN endpoint's offload path.
func registerUserspace(name string, f UserspaceFactory) {
	userspaceRows = append(userspaceRows, userspaceRow{name: name, factory: f})
}

// registerUserspaceMPTCP adds a row whose stack speaks MPTCP: it talks to the
// kernel's MPTCP server.
func registerUserspaceMPTCP(name string, f UserspaceFactory) {
	userspaceRows = append(userspaceRows, userspaceRow{name: name, factory: f, mptcp: true})
}

func init() {
	registerUserspace("gvisor-tcp", newGVisor)
	userspaceRows = append(userspaceRows, userspaceRow{name: "gvisor-tcp-generic", factory: newGVisor, generic: true})
}

// tuneGVisor applies the settings every gVisor-based row uses: SACK, CUBIC like Linux,
// receive-buffer auto-tuning, and buffers as large as Linux's defaults allow
// (net.ipv4.tcp_rmem/tcp_wmem max 6 MiB / 4 MiB).
func tuneGVisor(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	cc := tcpip.CongestionControlOption("cubic")
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &cc, &mod, &rcv, &snd} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("gVisor option %T: %v", o, err)
		}
	}
	return nil
}

type gvisorStack struct {
	s *stack.Stack
}

// newGVisor is plain gVisor TCP on the link: the baseline umptcp is held to.
func newGVisor(link stack.LinkEndpoint, local netip.Prefix, opts Options) (Userspace, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := tuneGVisor(s); err != nil {
		s.Destroy()
		return nil, err
	}
	nicOpts := stack.NICOptions{}
	if opts.Queue {
		// The length umptcp's transmit queue gets (umptcp.go).
		nicOpts.QDisc = fifo.New(link, 1, umptcp.DefaultTxQueueLen)
	}
	if err := s.CreateNICWithOptions(1, link, nicOpts); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("CreateNIC: %v", err)
	}
	proto := ipv4.ProtocolNumber
	if local.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{
		Protocol:          proto,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(local.Addr().AsSlice()), PrefixLen: local.Bits()},
	}, stack.AddressProperties{}); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("AddProtocolAddress: %v", err)
	}
	any4, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes(make([]byte, 4)))
	any6, _ := tcpip.NewSubnet(tcpip.AddrFrom16([16]byte{}), tcpip.MaskFromBytes(make([]byte, 16)))
	s.SetRouteTable([]tcpip.Route{{Destination: any4, NIC: 1}, {Destination: any6, NIC: 1}})
	return &gvisorStack{s: s}, nil
}

func (g *gvisorStack) Dial(ctx context.Context, remote netip.AddrPort) (net.Conn, error) {
	proto := ipv4.ProtocolNumber
	if remote.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return gonet.DialContextTCP(ctx, g.s, tcpip.FullAddress{
		NIC: 1, Addr: tcpip.AddrFromSlice(remote.Addr().AsSlice()), Port: remote.Port(),
	}, proto)
}

// Close tears the stack down; removing the NIC closes the link endpoint, whose read
// goroutine then stops (the harness waits for it).
func (g *gvisorStack) Close() error {
	g.s.Close()
	g.s.RemoveNIC(1)
	g.s.Wait()
	return nil
}
