//go:build linux

package main

import (
	"context"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	umptcp "github.com/umptcp/umptcp/stack"
)

func init() {
	registerUserspaceMPTCP("umptcp", newUmptcp)
	// The endpoint's generic path, as on macOS and the BSDs: no offloads, so
	// the stack cuts gVisor's super-segments itself (software GSO).
	userspaceRows = append(userspaceRows, userspaceRow{name: "umptcp-generic", factory: newUmptcp, generic: true, mptcp: true})
}

// umptcpStack is umptcp on the harness's TUN endpoint, talking MPTCP to the
// kernel's MPTCP server, with the same gVisor TCP settings as the
// gvisor-tcp row.
type umptcpStack struct{ s *umptcp.Stack }

func newUmptcp(link stack.LinkEndpoint, local netip.Prefix, opts Options) (Userspace, error) {
	qlen := 0 // write in the sending goroutine
	if opts.Queue {
		qlen = umptcp.DefaultTxQueueLen
	}
	s, err := umptcp.New(umptcp.Config{Links: []umptcp.Link{{Name: "tun", Endpoint: link, Addrs: []netip.Prefix{local}, Default: true, TxQueueLen: qlen}}})
	if err != nil {
		return nil, err
	}
	if err := tuneGVisor(s.GVisor()); err != nil {
		s.Close()
		return nil, err
	}
	return &umptcpStack{s: s}, nil
}

func (u *umptcpStack) Dial(ctx context.Context, remote netip.AddrPort) (net.Conn, error) {
	return u.s.DialContext(ctx, "tcp", remote.String())
}

func (u *umptcpStack) Close() error { return u.s.Close() }
