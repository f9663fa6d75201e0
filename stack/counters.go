package stack

import (
	"reflect"
	"sort"
	"sync/atomic"
)

// Counters count MPTCP events the way Linux's MIB does (nstat -az
// 'MPTcpExt*'); each field is named after the Linux counter it mirrors, so
// a test can compare our view with the kernel's. Only events umptcp
// implements are here. umptcp-specific counters follow, marked as such.
type Counters struct {
	MPCapableSYNRX          atomic.Uint64 // MP_CAPABLE SYN received (responder)
	MPCapableSYNTX          atomic.Uint64 // MP_CAPABLE SYN sent (initiator)
	MPCapableSYNACKRX       atomic.Uint64 // MP_CAPABLE SYN/ACK received (initiator)
	MPCapableACKRX          atomic.Uint64 // MP_CAPABLE third ACK received (responder)
	MPCapableFallbackACK    atomic.Uint64 // responder fell back: no MP_CAPABLE on the third ACK
	MPCapableFallbackSYNACK atomic.Uint64 // initiator fell back: no MP_CAPABLE on the SYN/ACK
	MPFallbackTokenInit     atomic.Uint64 // could not allocate a unique token
	MPTCPRetrans            atomic.Uint64 // data sent again at the data level (window probes, reinjections)
	DSSNotMatching          atomic.Uint64 // a mapping conflicting with an earlier one
	DSSCorruptionFallback   atomic.Uint64 // fell back after a DSS checksum failure
	DSSCorruptionReset      atomic.Uint64 // reset a subflow after a DSS checksum failure
	InfiniteMapTx           atomic.Uint64
	InfiniteMapRx           atomic.Uint64
	DSSNoMatchTCP           atomic.Uint64 // a mapping that does not cover its segment
	DataCsumErr             atomic.Uint64
	OFOQueue                atomic.Uint64 // data queued out of order at the data level
	NoDSSInWindow           atomic.Uint64 // a mapping far outside the subflow's window
	DuplicateData           atomic.Uint64 // data received twice at the data level
	MPFailTx                atomic.Uint64
	MPFailRx                atomic.Uint64
	MPFastcloseTx           atomic.Uint64
	MPFastcloseRx           atomic.Uint64
	MPRstTx                 atomic.Uint64
	MPRstRx                 atomic.Uint64
	MPCurrEstab             atomic.Uint64 // MPTCP connections not yet gone from the stack, closing ones included (a gauge; Linux counts ESTABLISHED and CLOSE_WAIT only)
	DssFallback             atomic.Uint64 // fell back: data, or an acknowledgment of ours, without DSS (options stripped)
	MPCapableDataFallback   atomic.Uint64 // initiator fell back: no DSS from the peer before our keys were confirmed

	// umptcp-specific: not in Linux's MIB.
	UmptcpMalformedOptions  atomic.Uint64 // MPTCP options that matched no variant (ignored)
	UmptcpBadTCPChecksum    atomic.Uint64 // TCP segments with a bad checksum (options not trusted)
	UmptcpBadIPChecksum     atomic.Uint64 // IPv4 packets with a bad header checksum
	UmptcpFragmentsDropped  atomic.Uint64 // IP fragments of TCP or UDP, and IPv6 packets behind more extension headers than the shim checks
	UmptcpBadFastClose      atomic.Uint64 // MP_FASTCLOSE with a key that is not ours (ignored)
	UmptcpPendingDropped    atomic.Uint64 // MP_CAPABLE SYNs refused: too many half-open handshakes
	UmptcpSegmentsSplit     atomic.Uint64 // outgoing segments cut at a mapping boundary
	UmptcpGSOSuperSegments  atomic.Uint64 // super-segments cut by the stack's software segmentation offload
	UmptcpPureACKsSent      atomic.Uint64 // option-only ACKs we synthesised (DATA_ACK, DATA_FIN)
	UmptcpRXMappingsDropped atomic.Uint64 // received mappings over the per-subflow limit
	UmptcpChecksumPresence  atomic.Uint64 // DSS checksum present without negotiation, or missing with it
	UmptcpOptionsNoRoom     atomic.Uint64 // MPTCP options that could not fit next to TCP's
	UmptcpWindowProbes      atomic.Uint64 // data-level window probes sent (a duplicate byte asking for the DATA_ACK)
	UmptcpWritesTrimmed     atomic.Uint64 // writes gVisor read in full but queued only in part (its send buffer shrank); their mappings taken back
	UmptcpAckedBytesTrimmed atomic.Uint64 // retransmitted bytes dropped because the peer had acknowledged them
	UmptcpDroppedAfterReset atomic.Uint64 // segments not sent on a subflow the peer reset
	UmptcpTxDropped         atomic.Uint64 // packets the link refused when the transmit queue wrote them
}

// Snapshot returns every counter by name, prefixed with "MPTcpExt" for the
// Linux ones like nstat prints them, and "Umptcp" for ours.
func (c *Counters) Snapshot() map[string]uint64 {
	m := make(map[string]uint64)
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Name
		if len(name) < 6 || name[:6] != "Umptcp" {
			name = "MPTcpExt" + name
		}
		m[name] = v.Field(i).Addr().Interface().(*atomic.Uint64).Load()
	}
	return m
}

// Names returns the counter names of Snapshot in a stable order.
func (c *Counters) Names() []string {
	snap := c.Snapshot()
	names := make([]string, 0, len(snap))
	for n := range snap {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
