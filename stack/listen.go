package stack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/umptcp/umptcp/subflow"
)

// Listener accepts MPTCP connections (and TCP ones from peers without
// MPTCP, which come out with MultipathTCP false). It is a net.Listener.
type Listener struct {
	st    *Stack
	port  uint16
	addr  netip.AddrPort
	eps   []tcpip.Endpoint
	wqs   []*waiter.Queue
	ready chan struct{}

	closeOnce sync.Once
	done      chan struct{}
}

var _ net.Listener = (*Listener)(nil)

// Listen listens on address ("[ip]:port"; an empty or unspecified IP
// listens on every address of the stack, both families for "tcp").
func (s *Stack) Listen(network, address string) (*Listener, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("umptcp: bad port %q (port 0 is not supported)", portStr)}
	}
	var ip netip.Addr
	if host != "" {
		if ip, err = netip.ParseAddr(host); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
		ip = ip.Unmap()
	}
	var families []tcpip.NetworkProtocolNumber
	switch {
	case ip.IsValid() && !ip.IsUnspecified():
		families = append(families, protoOf(ip))
	case network == "tcp4" || (ip.IsValid() && ip.Is4()):
		families = append(families, protoOf(netip.IPv4Unspecified()))
	case network == "tcp6":
		families = append(families, protoOf(netip.IPv6Unspecified()))
	case network == "tcp":
		families = append(families, protoOf(netip.IPv4Unspecified()), protoOf(netip.IPv6Unspecified()))
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}

	l := &Listener{st: s, port: uint16(port), addr: netip.AddrPortFrom(ip, uint16(port)),
		ready: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	if _, used := s.listeners[l.port]; used {
		s.mu.Unlock()
		return nil, &net.OpError{Op: "listen", Net: network, Err: errAddrInUse}
	}
	s.listeners[l.port] = l
	s.mu.Unlock()

	for _, fam := range families {
		wq := new(waiter.Queue)
		ep, terr := s.gs.NewEndpoint(tcp.ProtocolNumber, fam, wq)
		if terr != nil {
			l.Close()
			return nil, errors.New(terr.String())
		}
		ep.SocketOptions().SetReuseAddress(true)
		if fam == protoOf(netip.IPv6Unspecified()) && network == "tcp" && !ip.IsValid() {
			ep.SocketOptions().SetV6Only(true)
		}
		var bind tcpip.FullAddress
		bind.Port = l.port
		if ip.IsValid() && !ip.IsUnspecified() {
			bind.Addr = toTCPIP(ip)
		}
		if terr := ep.Bind(bind); terr != nil {
			ep.Close()
			l.Close()
			return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New(terr.String())}
		}
		if terr := ep.Listen(1024); terr != nil {
			ep.Close()
			l.Close()
			return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New(terr.String())}
		}
		e := waiter.NewFunctionEntry(waiter.ReadableEvents, func(waiter.EventMask) { notify(l.ready) })
		wq.EventRegister(&e)
		l.eps = append(l.eps, ep)
		l.wqs = append(l.wqs, wq)
	}
	return l, nil
}

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptMPTCP() }

// AcceptMPTCP is Accept returning the concrete type.
func (l *Listener) AcceptMPTCP() (*Conn, error) {
	for {
		for _, ep := range l.eps {
			var peer tcpip.FullAddress
			nep, wq, terr := ep.Accept(&peer)
			if terr != nil {
				if _, wb := terr.(*tcpip.ErrWouldBlock); wb {
					continue
				}
				select {
				case <-l.done:
					return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
				default:
				}
				return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: errors.New(terr.String())}
			}
			c, err := l.st.accepted(nep, wq)
			if err != nil {
				nep.Abort()
				continue
			}
			return c, nil
		}
		select {
		case <-l.ready:
		case <-l.done:
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
		}
	}
}

// accepted turns an endpoint gVisor accepted into a connection: the one
// whose MP_CAPABLE handshake the shim completed, or a plain TCP one.
func (s *Stack) accepted(ep tcpip.Endpoint, wq *waiter.Queue) (*Conn, error) {
	la, e1 := ep.GetLocalAddress()
	ra, e2 := ep.GetRemoteAddress()
	if e1 != nil || e2 != nil {
		return nil, errors.New("umptcp: accepted endpoint has no address")
	}
	local, remote := fromFull(la), fromFull(ra)
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	f := s.flows.get(keyOf(local, remote))
	if f != nil {
		if c := f.conn.Load(); c != nil {
			c.attach(c.subList()[0], ep, wq)
			if r := f.sf.Fallback(); r != subflow.NoFallback {
				c.onFallback(r)
			}
			return c, nil
		}
		// The handshake fell back (no MP_CAPABLE on the third ACK).
		s.flows.remove(f)
		s.releaseToken(f.token)
	}
	reason := subflow.FallbackNoMPCOnSYN
	if f != nil {
		reason = f.sf.Fallback()
	}
	c := newConn(s, subflow.Responder, local, remote, 0, 0)
	c.plain.Store(true)
	c.fallback.Store(uint32(reason))
	if !s.addConn(c) {
		return nil, net.ErrClosed
	}
	sb := &sub{}
	c.addSub(sb)
	c.attach(sb, ep, wq)
	return c, nil
}

// Close stops listening. Connections already accepted stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.st.mu.Lock()
		if l.st.listeners[l.port] == l {
			delete(l.st.listeners, l.port)
		}
		l.st.mu.Unlock()
		for _, ep := range l.eps {
			ep.Close()
		}
	})
	return nil
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return tcpAddr(l.addr) }
