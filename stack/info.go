package stack

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// Info describes a connection at one moment, like Linux's MPTCP_INFO and
// `ss -Mni` together.
type Info struct {
	// MPTCP is true while the connection speaks MPTCP.
	MPTCP bool
	// FallbackReason says why it does not, when it fell back to TCP.
	FallbackReason string
	// Token is our token; LocalKey's and RemoteKey's tokens identify the
	// connection in captures (RFC 8684 §3.2).
	Token, RemoteToken uint32
	// Checksum is true when DSS checksums are in use.
	Checksum bool
	// Data-level sequence state: the next DSN we send, the oldest the peer
	// has not acknowledged, and the next one we expect.
	SndNxt, SndUna, RcvNxt uint64
	// BytesSent counts data written and handed to subflows; BytesAcked the
	// part the peer acknowledged at the data level; BytesReceived data read.
	BytesSent, BytesAcked, BytesReceived uint64
	// Resets are the MP_TCPRST reasons the peer sent.
	Resets   []ResetInfo
	Subflows []SubflowInfo
}

// SubflowInfo describes one subflow.
type SubflowInfo struct {
	Local, Remote netip.AddrPort
	// State is the TCP state, as gVisor names it.
	State         string
	RTT, RTTVar   time.Duration
	RTO           time.Duration
	Cwnd          uint32 // congestion window, in segments
	Ssthresh      uint32
	BytesSent     uint64 // payload bytes sent, retransmissions included
	BytesRetrans  uint64
	BytesAcked    uint64 // payload bytes the peer acknowledged (subflow level)
	BytesReceived uint64
	// SegmentsSplit counts segments the shim cut at mapping boundaries.
	SegmentsSplit uint64
	// Timeouts counts the subflow's retransmission timeouts (RTOs).
	Timeouts uint64
}

// Info returns a snapshot of the connection's state.
func (c *Conn) Info() Info {
	in := Info{
		MPTCP:    c.MultipathTCP(),
		Token:    c.token,
		Checksum: c.checksum.Load(),
		SndNxt:   c.sndNxt.Load(), SndUna: c.sndUna.Load(), RcvNxt: c.rcvNxt.Load(),
	}
	if r := subflow.FallbackReason(c.fallback.Load()); r != subflow.NoFallback {
		in.FallbackReason = r.String()
	}
	if rk := c.remoteKey.Load(); rk != 0 {
		in.RemoteToken = options.Token(rk)
	}
	if c.plain.Load() {
		// No data sequence numbers: the counts are of the TCP stream.
		_, idsn := options.TokenIDSN(c.localKey)
		in.BytesSent = in.SndNxt - (idsn + 1)
		in.BytesAcked = in.SndUna - (idsn + 1)
		in.BytesReceived = in.RcvNxt
	} else {
		_, idsn := options.TokenIDSN(c.localKey)
		base := idsn + 1
		in.BytesSent = in.SndNxt - base
		in.BytesAcked = in.SndUna - base
		if c.finSeq.Load() != 0 && int64(in.SndNxt-c.finSeq.Load()) > 0 {
			in.BytesSent-- // the DATA_FIN takes a DSN, not a byte
			if int64(in.SndUna-c.finSeq.Load()) > 0 {
				in.BytesAcked--
			}
		}
		if c.rcvNxtOK.Load() {
			_, ridsn := options.TokenIDSN(c.remoteKey.Load())
			in.BytesReceived = in.RcvNxt - (ridsn + 1)
			c.stateMu.Lock()
			if c.eof {
				in.BytesReceived--
			}
			c.stateMu.Unlock()
		}
	}
	c.stateMu.Lock()
	in.Resets = append([]ResetInfo(nil), c.resets...)
	c.stateMu.Unlock()
	for _, s := range c.subList() {
		si := SubflowInfo{}
		if s.flow != nil {
			si.Local, si.Remote = s.flow.local, s.flow.remote
		} else {
			si.Local, si.Remote = c.local, c.remote
		}
		if s.sf != nil {
			st := s.sf.Stats()
			si.BytesSent, si.BytesRetrans, si.BytesAcked, si.BytesReceived = st.BytesSent, st.BytesRetrans, st.BytesAcked, st.BytesReceived
			si.SegmentsSplit = st.SegmentsSplit
		} else {
			// A listener's plain TCP connection has no subflow state: its
			// one subflow carried what the connection did (retransmissions
			// not counted).
			si.BytesSent, si.BytesAcked, si.BytesReceived = in.BytesSent, in.BytesAcked, in.BytesReceived
		}
		if s.ep != nil {
			var ti tcpip.TCPInfoOption
			if err := s.ep.GetSockOpt(&ti); err == nil {
				si.RTT, si.RTTVar, si.RTO = ti.RTT, ti.RTTVar, ti.RTO
				si.Cwnd, si.Ssthresh = ti.SndCwnd, ti.SndSsthresh
				si.State = tcp.EndpointState(ti.State).String()
			}
			if st, ok := s.ep.Stats().(*tcp.Stats); ok {
				si.Timeouts = st.SendErrors.Timeouts.Value()
			}
		}
		in.Subflows = append(in.Subflows, si)
	}
	return in
}

// String renders the Info for logs.
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mptcp=%v", in.MPTCP)
	if in.FallbackReason != "" {
		fmt.Fprintf(&b, " fallback=%q", in.FallbackReason)
	}
	fmt.Fprintf(&b, " token=%08x remote_token=%08x csum=%v snd_nxt=%d snd_una=%d rcv_nxt=%d sent=%d acked=%d received=%d",
		in.Token, in.RemoteToken, in.Checksum, in.SndNxt, in.SndUna, in.RcvNxt, in.BytesSent, in.BytesAcked, in.BytesReceived)
	for _, r := range in.Resets {
		fmt.Fprintf(&b, " reset(%s, transient=%v)", options.TCPRstReasonString(r.Reason), r.Transient)
	}
	for _, s := range in.Subflows {
		fmt.Fprintf(&b, "\n  subflow %s-%s %s rtt=%v cwnd=%d sent=%d retrans=%d acked=%d recv=%d split=%d rto=%d",
			s.Local, s.Remote, s.State, s.RTT, s.Cwnd, s.BytesSent, s.BytesRetrans, s.BytesAcked, s.BytesReceived, s.SegmentsSplit, s.Timeouts)
	}
	return b.String()
}
