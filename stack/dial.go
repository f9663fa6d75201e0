package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/umptcp/umptcp/subflow"
)

// Dial connects to address ("ip:port") with MPTCP, falling back to TCP if
// the peer does not speak it.
func (s *Stack) Dial(network, address string) (*Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// DialContext connects to address ("ip:port", an IP literal: the stack
// does no name resolution) with MPTCP. network is "tcp", "tcp4" or "tcp6".
// The connection falls back to TCP when the peer does not answer with
// MP_CAPABLE; MultipathTCP tells which.
func (s *Stack) DialContext(ctx context.Context, network, address string) (*Conn, error) {
	remote, err := parseAddrPort(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err := s.dial(ctx, remote)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(remote), Err: err}
	}
	return c, nil
}

func parseAddrPort(network, address string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return ap, fmt.Errorf("umptcp: address %q: want IP:port (no name resolution in the stack): %w", address, err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	switch network {
	case "tcp":
	case "tcp4":
		if !ap.Addr().Is4() {
			return ap, fmt.Errorf("umptcp: %s is not an IPv4 address", ap.Addr())
		}
	case "tcp6":
		if !ap.Addr().Is6() {
			return ap, fmt.Errorf("umptcp: %s is not an IPv6 address", ap.Addr())
		}
	default:
		return ap, net.UnknownNetworkError(network)
	}
	return ap, nil
}

func (s *Stack) dial(ctx context.Context, remote netip.AddrPort) (*Conn, error) {
	proto := protoOf(remote.Addr())
	r, terr := s.gs.FindRoute(0, tcpip.Address{}, toTCPIP(remote.Addr()), proto, false)
	if terr != nil {
		return nil, fmt.Errorf("no route to %s: %s", remote.Addr(), terr)
	}
	localAddr := fromTCPIP(r.LocalAddress())
	r.Release()

	var wq waiter.Queue
	ep, terr := s.gs.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	// Bind before connect, so that the 4-tuple is known to the shim before
	// the SYN leaves (DESIGN.md).
	if terr := ep.Bind(tcpip.FullAddress{Addr: toTCPIP(localAddr)}); terr != nil {
		ep.Close()
		return nil, errors.New(terr.String())
	}
	la, terr := ep.GetLocalAddress()
	if terr != nil {
		ep.Close()
		return nil, errors.New(terr.String())
	}
	local := fromFull(la)

	key, token, err := s.newKey()
	plainTCP := errors.Is(err, errNoUniqueToken)
	if err != nil && !plainTCP {
		ep.Close()
		return nil, err
	}
	c := newConn(s, subflow.Initiator, local, remote, key, token)
	if plainTCP {
		// No token, no MPTCP: the SYN goes out without MP_CAPABLE (no flow
		// for the shim) and the connection is TCP (Linux:
		// MPTcpExtMPFallbackTokenInit).
		c.plain.Store(true)
		c.fallback.Store(uint32(subflow.FallbackNoToken))
	}
	if !s.addConn(c) {
		ep.Close()
		if !plainTCP {
			s.releaseToken(token)
		}
		return nil, net.ErrClosed
	}
	var sf *subflow.Subflow
	var f *flow
	sb := &sub{}
	if !plainTCP {
		sf = subflow.New(subflow.Config{Role: subflow.Initiator, LocalKey: key, WantChecksum: s.cfg.Checksum,
			MaxRXMappings: s.cfg.MaxRXMappings})
		f = newFlow(local, remote, sf)
		f.token = token
		f.conn.Store(c)
		if !s.flows.add(f) {
			ep.Close()
			s.removeConn(c)
			return nil, fmt.Errorf("umptcp: 4-tuple %s-%s in use", local, remote)
		}
		sb.flow, sb.sf = f, sf
	}
	c.addSub(sb)
	forget := func() {
		s.removeConn(c)
		if f != nil {
			s.flows.remove(f)
		}
	}

	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(fullAddr(remote))
	if _, started := terr.(*tcpip.ErrConnectStarted); started {
		select {
		case <-ctx.Done():
			ep.Abort()
			forget()
			return nil, ctx.Err()
		case <-ch:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		forget()
		return nil, connectError(terr)
	}
	if sf != nil {
		if r := sf.Fallback(); r != subflow.NoFallback {
			// TCP from the handshake on: no mapping will ever come, so the
			// reader and writer take the plain path (no fallback of data
			// to count later). Set before anyone else can see c.
			c.plain.Store(true)
			c.onFallback(r)
		}
	}
	c.attach(sb, ep, &wq)
	return c, nil
}

// connectError turns gVisor's connect errors into the errors a Go program
// expects (syscall errors, so errors.Is(err, syscall.ECONNREFUSED) works).
func connectError(e tcpip.Error) error {
	switch e.(type) {
	case *tcpip.ErrConnectionRefused:
		return errConnRefused
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrHostUnreachable:
		return errUnreachable
	case *tcpip.ErrTimeout:
		return errTimedOut
	}
	return errors.New(e.String())
}
