package stack

import (
	"net/netip"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// handleEvents applies to the connection what an incoming segment's
// options said. It runs on the packet path: it never blocks and never
// calls into gVisor endpoints (work that does is queued for the worker).
func (s *Stack) handleEvents(f *flow, c *Conn, v *tcpView, seg subflow.Segment, ev *subflow.Events) {
	ctr := &s.counters
	if ev.Malformed > 0 {
		ctr.UmptcpMalformedOptions.Add(uint64(ev.Malformed))
	}
	if ev.Established {
		if f.sf.Role() == subflow.Initiator {
			ctr.MPCapableSYNACKRX.Add(1)
			if c != nil {
				c.onEstablished(ev.RemoteKey, ev.Checksum)
			}
		} else {
			ctr.MPCapableACKRX.Add(1)
			c = s.newResponderConn(f, ev)
		}
	}
	if ev.Fallback != subflow.NoFallback {
		switch ev.Fallback {
		case subflow.FallbackNoMPCOnSYNACK:
			ctr.MPCapableFallbackSYNACK.Add(1)
		case subflow.FallbackNoMPCOnACK:
			ctr.MPCapableFallbackACK.Add(1)
			s.flows.settle(f)
		case subflow.FallbackInfiniteMapping:
			ctr.InfiniteMapRx.Add(1)
		}
		if c != nil {
			c.onFallback(ev.Fallback)
		}
	}
	if c == nil {
		return
	}
	if ev.AckWithoutDSS && !c.fellBack() && c.canFallback() && !c.dataFINAcked() {
		// §3.7: our data was acknowledged without a DSS: the peer will not
		// send DATA_ACKs (it fell back, or a middlebox strips them), and
		// waiting for them would block our sender and our DATA_FIN for
		// good. Linux does this only before the subflow is fully
		// established (check_fully_established); later it waits for the
		// peer's data without DSS, which a one-way transfer never sends.
		// Counted as Linux counts a missing DSS. Not once our DATA_FIN
		// was acknowledged: we send nothing more at the data level, and
		// Linux's subflows then finish as plain TCP.
		if f.sf.Role() == subflow.Initiator && !f.sf.FullyEstablished() {
			ctr.MPCapableDataFallback.Add(1)
		} else {
			ctr.DssFallback.Add(1)
		}
		c.onFallback(subflow.FallbackNoDSS)
	}
	if ev.HasDataAck {
		c.onDataAck(ev.DataAck, uint64(seg.Window)<<f.peerWindowShift())
	}
	if ev.HasDataFIN {
		c.onPeerDataFIN(ev.DataFINSeq)
	}
	if ev.HasMapping {
		switch ev.Mapping {
		case subflow.RXConflict:
			ctr.DSSNotMatching.Add(1)
		case subflow.RXFull:
			ctr.UmptcpRXMappingsDropped.Add(1)
		}
		if ev.MappingMisfit {
			ctr.DSSNoMatchTCP.Add(1)
		}
	}
	if ev.ChecksumMismatch {
		// §3.3: a checksum present without negotiation, or missing with
		// it, means the peer is broken: reset the subflow.
		ctr.UmptcpChecksumPresence.Add(1)
		f.sf.SetResetReason(options.TCPRstMPTCPError)
		c.queueWork(workReset)
	}
	if ev.FastClose {
		ctr.MPFastcloseRx.Add(1)
		c.setErr(ErrFastClosed)
		c.queueWork(workReset)
	}
	if ev.BadFastClose {
		ctr.UmptcpBadFastClose.Add(1)
	}
	if ev.HasReset {
		ctr.MPRstRx.Add(1)
		c.onPeerReset(f, ev.ResetReason, ev.ResetFlags)
	}
	if seg.Flags&subflow.FlagRST != 0 && f.peerReset.Load() && !ev.FastClose {
		c.onSubflowReset(f)
	}
	if ev.HasMPFail {
		ctr.MPFailRx.Add(1)
		c.onMPFail(f, ev.MPFailDSN)
	}
}

// onMPFail handles the peer's MP_FAIL (§3.7). If we sent MP_FAIL first,
// this is the peer's answer. Otherwise our data failed the peer's checksum:
// answer with MP_FAIL, as Linux does (the peer resets the subflow if no
// answer comes), and fall back with an infinite mapping on our next data.
func (c *Conn) onMPFail(f *flow, dsn uint64) {
	c.stateMu.Lock()
	ours := c.failPending
	c.stateMu.Unlock()
	if ours || !c.canFallback() {
		return
	}
	f.sf.RequestMPFail(dsn)
	f.sf.RequestInfiniteMapping()
	c.queueWork(workPureACK)
}

// passiveSYN sees a SYN for which no subflow exists: if it asks for MPTCP
// and a listener of ours waits on its port, it starts a responder's
// handshake. A peer can send SYNs at will, so the number of these half-open
// handshakes is bounded; past the bound the SYN gets a plain TCP answer.
func (s *Stack) passiveSYN(v *tcpView, seg subflow.Segment, opts *options.Segment) {
	o := opts.Find(options.SubtypeMPCapable)
	if o == nil {
		return
	}
	mpc := o.MPCapable()
	if mpc.Variant != options.CapableSYN || !mpc.Usable() {
		return
	}
	s.mu.Lock()
	_, listening := s.listeners[v.tcp.DestinationPort()]
	s.mu.Unlock()
	if !listening {
		return
	}
	s.counters.MPCapableSYNRX.Add(1)
	key, token, err := s.newKey()
	if err != nil {
		return
	}
	local := netip.AddrPortFrom(addrFromBytes(v.dst), v.tcp.DestinationPort())
	remote := netip.AddrPortFrom(addrFromBytes(v.src), v.tcp.SourcePort())
	sf := subflow.New(subflow.Config{Role: subflow.Responder, LocalKey: key, WantChecksum: s.cfg.Checksum,
		MaxRXMappings: s.cfg.MaxRXMappings})
	sf.AcceptSYN(seg.Seq, mpc)
	f := newFlow(local, remote, sf)
	f.token = token
	f.peerWS.Store(findWindowScale(v.tcp.Options()))
	if !s.flows.addPending(f, s.cfg.MaxHalfOpen) {
		s.counters.UmptcpPendingDropped.Add(1)
		s.releaseToken(token)
	}
}

func addrFromBytes(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a
}

// newResponderConn creates the connection of a responder's handshake that
// just completed; the listener hands it out with its gVisor endpoint.
func (s *Stack) newResponderConn(f *flow, ev *subflow.Events) *Conn {
	key, _, _ := f.sf.Keys()
	c := newConn(s, subflow.Responder, f.local, f.remote, key, f.token)
	c.addSub(&sub{flow: f, sf: f.sf})
	c.onEstablished(ev.RemoteKey, ev.Checksum)
	if !s.addConn(c) {
		return nil
	}
	f.conn.Store(c)
	s.flows.settle(f)
	return c
}
