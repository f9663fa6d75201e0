package decode

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"

	"github.com/umptcp/umptcp/options"
)

// Limits bound the memory an Analyzer uses, whatever the capture holds.
// A zero field takes its default.
type Limits struct {
	// MaxSubflows is the most TCP connections tracked at once (default
	// 65536). When it is reached, closed ones (RST, or FIN both ways) are
	// forgotten first; after that new ones are not tracked.
	MaxSubflows int
	// MaxConnections is the most MPTCP connections tracked at once (default
	// 32768), with the same policy.
	MaxConnections int
	// MaxAnnouncements is the most ADD_ADDR announcements remembered per
	// connection and side for matching echoes (default 16; Linux accepts 8).
	MaxAnnouncements int
	// MaxMismatches is the most mismatches listed in the Result (default
	// 10000); the rest are only counted.
	MaxMismatches int
}

func (l Limits) withDefaults() Limits {
	if l.MaxSubflows <= 0 {
		l.MaxSubflows = 1 << 16
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = 1 << 15
	}
	if l.MaxAnnouncements <= 0 {
		l.MaxAnnouncements = 16
	}
	if l.MaxMismatches <= 0 {
		l.MaxMismatches = 10000
	}
	return l
}

// An MPTCP connection has two sides: the client, which sent the SYN of the
// first subflow (MP_CAPABLE), and the server. Each side has a key, a token
// and an IDSN, and sends data in its own DSN space.
const (
	client = 0
	server = 1
)

// Directions of a subflow: from the host that sent its SYN (the subflow's
// initiator) to the other, and back.
const (
	fromInitiator = 0
	fromResponder = 1
)

type flowKey struct{ a, b netip.AddrPort }

func keyOf(src, dst netip.AddrPort) flowKey {
	if src.Compare(dst) < 0 {
		return flowKey{src, dst}
	}
	return flowKey{dst, src}
}

// conn is an MPTCP connection.
type conn struct {
	id     int
	key    [2]uint64
	hasKey [2]bool
	token  [2]uint32
	idsn   [2]uint64
	tx     [2]dataState // by sending side
	ann    [2][]announcement
	// subflows counts the tracked subflows attached to the connection.
	subflows int
	queued   bool // on the Analyzer's closed queue
}

// dataState is what one side of a connection has sent at the data level.
type dataState struct {
	mapped    bool
	mappedEnd uint64 // end (exclusive) of the highest mapping
	infinite  bool   // an infinite mapping: the end is unknown from then on
	ackSeen   bool
	ack       uint64 // highest data ACK this side sent
	fin       bool
	finDSN    uint64
}

type announcement struct {
	id      uint8
	addr    netip.Addr
	hasPort bool
	port    uint16
}

// subflow is a TCP connection, MPTCP or not.
type subflow struct {
	key       flowKey
	initiator netip.AddrPort // sender of the SYN
	isn       [2]uint32      // by direction
	hasISN    [2]bool
	conn      *conn
	initSide  int // the MPTCP side of the initiator
	join      bool
	nonce     [2]uint32 // MP_JOIN nonces, by direction
	hasNonce  [2]bool
	ackMax    [2]uint64 // highest data ACK sent on this subflow, by direction
	hasAck    [2]bool
	csum      [2]mapTrack // mapping being checksummed, by direction
	// ranges are the subflow bytes earlier mappings tied to DSNs, by
	// direction, for the consistency part of CheckDSN.
	ranges [2][]mappedRange
	fin    [2]bool
	queued bool // closed (RST, or FIN both ways) and on the queue to forget
}

// mappedRange is a run of subflow bytes that earlier mappings tied to
// DSNs: relative subflow sequence number n carries a DSN whose low 32 bits
// are n+offset. The offset is kept mod 2^32, as subflow sequence numbers
// are: a run of contiguous mappings keeps one offset across the wrap of
// the subflow's sequence space, where the 64-bit DSN goes on.
type mappedRange struct {
	start, end uint32 // relative subflow sequence numbers, end exclusive
	offset     uint32 // DSN - subflow sequence number, mod 2^32
}

// maxRunLen bounds a run: serial comparisons of subflow sequence numbers
// hold within 2^31, and no retransmission reaches a gigabyte back.
const maxRunLen = 1 << 30

// maxMappedRanges bounds the runs remembered per subflow and direction (512
// bytes a direction). Mappings that continue each other on a subflow share
// an offset and merge into one run, so a connection with one subflow needs
// one; a new run starts where the DSN jumps (data sent on another subflow
// in between, a reinjection). The oldest run is forgotten first.
const maxMappedRanges = 16

// mapTrack follows one mapping's payload, in order, for its DSS checksum.
type mapTrack struct {
	active  bool
	dsn     uint64
	ssn     uint32
	dataLen uint16
	csum    uint16
	plen    uint32 // payload bytes the mapping covers (dataLen without a DATA_FIN)
	filled  uint32 // bytes added to sum so far, from the start of the mapping
	sum     options.DSSChecksum
	// done is the last mapping finished, so that segments repeating it (the
	// mapping is on every segment it covers, and on retransmissions) do not
	// start it again.
	done    bool
	doneDSN uint64
	doneSSN uint32
	doneLen uint16
}

// Analyzer follows the MPTCP connections of a capture and checks them the
// way Wireshark's MPTCP analysis and the Linux receiver do (see the package
// documentation). Feed it every frame in order with Add, then call Result.
// Its memory is bounded by its Limits. An Analyzer is not safe for
// concurrent use.
type Analyzer struct {
	lim    Limits
	res    Result
	flows  map[flowKey]*subflow
	tokens map[uint32]tokenRef
	nconns int
	// Closed subflows and connections, oldest first: forgotten first when a
	// limit is reached.
	closedFlows []*subflow
	closedConns []*conn
}

type tokenRef struct {
	c    *conn
	side int
}

// NewAnalyzer returns an Analyzer with the given limits.
func NewAnalyzer(lim Limits) *Analyzer {
	return &Analyzer{
		lim:    lim.withDefaults(),
		flows:  make(map[flowKey]*subflow),
		tokens: make(map[uint32]tokenRef),
	}
}

// Analyze reads a capture file from r and analyzes every frame. It returns
// the result so far together with a read error.
func Analyze(r io.Reader, lim Limits) (Result, error) {
	a := NewAnalyzer(lim)
	rd, err := NewReader(r)
	if err != nil {
		return a.Result(), err
	}
	var p Packet
	for {
		if err := rd.Next(&p); err != nil {
			if err == io.EOF {
				err = nil
			}
			return a.Result(), err
		}
		a.Add(&p)
	}
}

// Result returns what the Analyzer found so far. Mappings whose payload is
// still incomplete count as skipped checksum checks.
func (a *Analyzer) Result() Result {
	r := a.res
	r.Mismatches = append([]Mismatch(nil), a.res.Mismatches...)
	for _, sf := range a.flows {
		for d := range sf.csum {
			if sf.csum[d].active {
				r.Checks[CheckDSSChecksum].Skipped++
			}
		}
	}
	return r
}

func (a *Analyzer) ok(c Check)   { a.res.Checks[c].OK++ }
func (a *Analyzer) skip(c Check) { a.res.Checks[c].Skipped++ }

func (a *Analyzer) mismatch(c Check, p *Packet, cn *conn, what, expected, seen string) {
	a.res.Checks[c].Mismatch++
	if len(a.res.Mismatches) >= a.lim.MaxMismatches {
		a.res.MismatchesDropped++
		return
	}
	m := Mismatch{Frame: p.Frame, Check: c, Src: p.Src, Dst: p.Dst, What: what, Expected: expected, Seen: seen}
	if cn != nil {
		m.Conn = cn.id
	}
	a.res.Mismatches = append(a.res.Mismatches, m)
}

func hex64(v uint64) string { return fmt.Sprintf("0x%016x", v) }

// Add analyzes the next frame of the capture.
func (a *Analyzer) Add(p *Packet) {
	a.res.Frames++
	if p.Status != StatusTCP {
		return
	}
	a.res.TCPSegments++
	a.res.MPTCPOptions += len(p.Options)
	sf := a.subflowOf(p)
	dir := fromInitiator
	if sf != nil {
		if p.Src != sf.initiator {
			dir = fromResponder
		}
		if p.Flags&FlagSYN != 0 {
			sf.isn[dir], sf.hasISN[dir] = p.Seq, true
		}
	}
	for i := range p.Options {
		a.option(p, &p.Options[i], sf, dir)
	}
	if sf == nil {
		return
	}
	a.checksumPayload(p, sf, dir)
	if p.Flags&FlagFIN != 0 {
		sf.fin[dir] = true
	}
	if p.Flags&FlagRST != 0 || (sf.fin[0] && sf.fin[1]) {
		if !sf.queued {
			sf.queued = true
			a.queueClosed(sf)
		}
	}
}

// subflowOf finds or creates the subflow of p. A subflow is created by a
// SYN, a SYN/ACK, or an MP_CAPABLE third ACK (a capture that missed the
// handshake's start); other segments of unknown subflows are not tracked.
func (a *Analyzer) subflowOf(p *Packet) *subflow {
	k := keyOf(p.Src, p.Dst)
	sf := a.flows[k]
	syn, ack := p.Flags&FlagSYN != 0, p.Flags&FlagACK != 0
	var initiator netip.AddrPort
	switch {
	case syn && !ack:
		if sf != nil && sf.initiator == p.Src && (!sf.hasISN[fromInitiator] || sf.isn[fromInitiator] == p.Seq) {
			return sf // a retransmitted SYN
		}
		initiator = p.Src
	case syn && ack:
		if sf != nil {
			return sf
		}
		initiator = p.Dst
	case sf != nil:
		return sf
	default:
		o := findValid(p, options.SubtypeMPCapable)
		if o == nil || o.MPCapable().Variant < options.CapableACK {
			return nil
		}
		initiator = p.Src
	}
	if sf != nil {
		// The 4-tuple is reused by a new connection.
		a.forgetFlow(sf)
	}
	if len(a.flows) >= a.lim.MaxSubflows && !a.evictFlow() {
		a.res.Untracked++
		return nil
	}
	sf = &subflow{key: k, initiator: initiator}
	a.flows[k] = sf
	a.res.Subflows++
	return sf
}

func findValid(p *Packet, st options.Subtype) *options.Option {
	for i := range p.Options {
		if p.Options[i].Valid(st) {
			return &p.Options[i]
		}
	}
	return nil
}

// queueClosed remembers a closed subflow as the first to forget. Subflows
// forgotten because their 4-tuple was reused stay in the queue until it is
// compacted, which keeps it no longer than the subflow limit.
func (a *Analyzer) queueClosed(sf *subflow) {
	if len(a.closedFlows) >= a.lim.MaxSubflows {
		live := a.closedFlows[:0]
		for _, x := range a.closedFlows {
			if a.flows[x.key] == x {
				live = append(live, x)
			}
		}
		clear(a.closedFlows[len(live):])
		a.closedFlows = live
	}
	a.closedFlows = append(a.closedFlows, sf)
}

// evictFlow forgets the oldest closed subflow; false if there is none.
func (a *Analyzer) evictFlow() bool {
	for len(a.closedFlows) > 0 {
		sf := a.closedFlows[0]
		a.closedFlows[0] = nil
		a.closedFlows = a.closedFlows[1:]
		if a.flows[sf.key] == sf {
			a.forgetFlow(sf)
			return true
		}
	}
	return false
}

func (a *Analyzer) forgetFlow(sf *subflow) {
	for d := range sf.csum {
		if sf.csum[d].active {
			a.skip(CheckDSSChecksum)
		}
	}
	delete(a.flows, sf.key)
	if c := sf.conn; c != nil {
		c.subflows--
		if c.subflows == 0 && !c.queued {
			c.queued = true
			a.closedConns = append(a.closedConns, c)
		}
	}
}

// evictConn forgets the oldest connection left without subflows.
func (a *Analyzer) evictConn() bool {
	for len(a.closedConns) > 0 {
		c := a.closedConns[0]
		a.closedConns[0] = nil
		a.closedConns = a.closedConns[1:]
		c.queued = false
		if c.subflows > 0 {
			continue // a join came back to it
		}
		for s := range c.token {
			if c.hasKey[s] && a.tokens[c.token[s]].c == c {
				delete(a.tokens, c.token[s])
			}
		}
		a.nconns--
		return true
	}
	return false
}

func (a *Analyzer) newConn(sf *subflow) *conn {
	if a.nconns >= a.lim.MaxConnections && !a.evictConn() {
		a.res.Untracked++
		return nil
	}
	a.nconns++
	a.res.Connections++
	c := &conn{id: a.res.Connections, subflows: 1}
	sf.conn = c
	sf.initSide = client
	return c
}

// side returns the MPTCP side that sent a segment in direction dir.
func (sf *subflow) side(dir int) int { return sf.initSide ^ dir }

func (a *Analyzer) option(p *Packet, o *options.Option, sf *subflow, dir int) {
	if o.Malformed {
		if l, _ := OptionLen(o); o.Subtype == options.SubtypeMPTCPRst && l == 4 && len(o.Raw) == 4 {
			// Well formed but off a RST: the codec calls it malformed.
			a.mismatch(CheckTCPRst, p, connOf(sf), "MP_TCPRST on a segment without RST", "RST", flagString(p.Flags))
			return
		}
		a.mismatch(CheckWellFormed, p, connOf(sf), fmt.Sprintf("malformed %v option", o.Subtype),
			"a variant of its subtype for this segment", fmt.Sprintf("length %d", len(o.Raw)))
		return
	}
	a.ok(CheckWellFormed)
	switch o.Subtype {
	case options.SubtypeMPCapable:
		a.capable(p, o.MPCapable(), sf, dir)
	case options.SubtypeMPJoin:
		a.joinOpt(p, o.MPJoin(), sf, dir)
	case options.SubtypeDSS:
		a.dss(p, o.DSS(), sf, dir)
	case options.SubtypeAddAddr:
		a.addAddr(p, o.AddAddr(), sf, dir)
	case options.SubtypeMPFastClose:
		c := connOf(sf)
		if c == nil || !c.hasKey[sf.side(dir)^1] {
			a.skip(CheckFastCloseKey)
			return
		}
		want, got := c.key[sf.side(dir)^1], o.MPFastClose().ReceiverKey
		if want != got {
			a.mismatch(CheckFastCloseKey, p, c, "MP_FASTCLOSE key is not the receiver's key", hex64(want), hex64(got))
			return
		}
		a.ok(CheckFastCloseKey)
	case options.SubtypeMPTCPRst:
		if p.Flags&FlagRST == 0 {
			a.mismatch(CheckTCPRst, p, connOf(sf), "MP_TCPRST on a segment without RST", "RST", flagString(p.Flags))
			return
		}
		a.ok(CheckTCPRst)
	}
}

func connOf(sf *subflow) *conn {
	if sf == nil {
		return nil
	}
	return sf.conn
}

func flagString(f uint8) string { return string(AppendFlags(nil, f)) }

// capable handles MP_CAPABLE: the SYN/ACK gives the server's key, the third
// ACK and the first data both keys (§3.1).
func (a *Analyzer) capable(p *Packet, c options.MPCapable, sf *subflow, dir int) {
	if sf == nil || sf.join {
		return
	}
	switch c.Variant {
	case options.CapableSYN:
		return
	case options.CapableSYNACK:
		if sf.conn == nil && a.newConn(sf) == nil {
			return
		}
		a.learnKey(p, sf.conn, server, c.SenderKey, "SYN/ACK key")
		return
	}
	if dir != fromInitiator {
		a.mismatch(CheckCapableKeys, p, sf.conn, "MP_CAPABLE with keys from the responder", "initiator", "responder")
		return
	}
	if sf.conn == nil && a.newConn(sf) == nil {
		return
	}
	cn := sf.conn
	a.learnKey(p, cn, server, c.ReceiverKey, "server key echoed by the client")
	a.learnKey(p, cn, client, c.SenderKey, "client key")
	if c.Variant >= options.CapableData {
		// The first data's mapping: DSN = IDSN+1, subflow sequence 1 (§3.1).
		a.mapping(p, sf, dir, mapping{
			dsn: cn.idsn[client] + 1, dsn64: true, ssn: 1, dataLen: c.DataLen,
			hasCsum: c.Variant == options.CapableDataChecksum, csum: c.Checksum,
		})
	}
}

// learnKey records a side's key, or checks it against the one recorded.
func (a *Analyzer) learnKey(p *Packet, c *conn, side int, key uint64, what string) {
	if c.hasKey[side] {
		if c.key[side] != key {
			a.mismatch(CheckCapableKeys, p, c, "MP_CAPABLE "+what+" differs from the handshake's", hex64(c.key[side]), hex64(key))
			return
		}
		a.ok(CheckCapableKeys)
		return
	}
	c.key[side], c.hasKey[side] = key, true
	c.token[side], c.idsn[side] = options.TokenIDSN(key)
	if len(a.tokens) < 2*a.lim.MaxConnections {
		a.tokens[c.token[side]] = tokenRef{c, side}
	}
}

// joinOpt handles MP_JOIN (§3.2): the SYN's token names the connection and
// the side that receives the join; the SYN/ACK and third ACK carry HMACs
// over both keys and both nonces.
func (a *Analyzer) joinOpt(p *Packet, j options.MPJoin, sf *subflow, dir int) {
	if sf == nil {
		switch j.Variant {
		case options.JoinSYN:
			a.joinToken(p, j)
		case options.JoinSYNACK:
			a.skip(CheckJoinSYNACKHMAC)
		case options.JoinACK:
			a.skip(CheckJoinACKHMAC)
		}
		return
	}
	switch j.Variant {
	case options.JoinSYN:
		sf.join = true
		sf.nonce[fromInitiator], sf.hasNonce[fromInitiator] = j.Nonce, true
		ref, found := a.joinToken(p, j)
		if !found {
			return
		}
		if sf.conn != ref.c {
			if sf.conn != nil {
				sf.conn.subflows--
			}
			sf.conn = ref.c
			ref.c.subflows++
			a.res.Joins++
		}
		// The token is the receiver's: the initiator is the other side.
		sf.initSide = ref.side ^ 1
	case options.JoinSYNACK:
		sf.nonce[fromResponder], sf.hasNonce[fromResponder] = j.Nonce, true
		c := sf.conn
		if c == nil || !c.hasKey[client] || !c.hasKey[server] || !sf.hasNonce[fromInitiator] {
			a.skip(CheckJoinSYNACKHMAC)
			return
		}
		ki, kr := c.key[sf.initSide], c.key[sf.initSide^1]
		if !options.VerifyJoinSYNACK(j, ki, kr, sf.nonce[fromInitiator]) {
			want := options.TruncatedJoinHMAC(kr, ki, j.Nonce, sf.nonce[fromInitiator])
			a.mismatch(CheckJoinSYNACKHMAC, p, c, "MP_JOIN SYN/ACK truncated HMAC", fmt.Sprintf("%016x", want), hex.EncodeToString(j.HMACBytes()))
			return
		}
		a.ok(CheckJoinSYNACKHMAC)
	case options.JoinACK:
		c := sf.conn
		if c == nil || !c.hasKey[client] || !c.hasKey[server] || !sf.hasNonce[fromInitiator] || !sf.hasNonce[fromResponder] {
			a.skip(CheckJoinACKHMAC)
			return
		}
		ki, kr := c.key[sf.initSide], c.key[sf.initSide^1]
		ni, nr := sf.nonce[fromInitiator], sf.nonce[fromResponder]
		if !options.VerifyJoinACK(j, ki, kr, ni, nr) {
			want := options.JoinHMAC(ki, kr, ni, nr)
			a.mismatch(CheckJoinACKHMAC, p, c, "MP_JOIN third ACK HMAC", hex.EncodeToString(want[:options.JoinHMACLen]), hex.EncodeToString(j.HMACBytes()))
			return
		}
		a.ok(CheckJoinACKHMAC)
	}
}

// joinToken looks up the connection of an MP_JOIN SYN's token.
func (a *Analyzer) joinToken(p *Packet, j options.MPJoin) (tokenRef, bool) {
	ref, found := a.tokens[j.Token]
	if !found {
		a.mismatch(CheckJoinToken, p, nil, "MP_JOIN token matches no key of an MP_CAPABLE handshake", "a known token", fmt.Sprintf("0x%08x", j.Token))
		return ref, false
	}
	a.ok(CheckJoinToken)
	return ref, true
}

// addAddr checks an announcement's HMAC with its sender's key first
// (§3.4.1) and matches echoes to announcements of the other side.
func (a *Analyzer) addAddr(p *Packet, ad options.AddAddr, sf *subflow, dir int) {
	c := connOf(sf)
	check := CheckAddAddrHMAC
	if ad.Echo {
		check = CheckAddAddrEcho
	}
	if c == nil {
		a.skip(check)
		return
	}
	s := sf.side(dir)
	an := announcement{id: ad.AddrID, addr: ad.Addr, hasPort: ad.HasPort, port: ad.Port}
	if ad.Echo {
		for _, x := range c.ann[s^1] {
			if x == an {
				a.ok(CheckAddAddrEcho)
				return
			}
		}
		a.mismatch(CheckAddAddrEcho, p, c, "ADD_ADDR echo of an address the peer did not announce", "an earlier announcement", fmt.Sprintf("id %d %s", ad.AddrID, string(appendAddr(nil, &ad))))
		return
	}
	known := false
	for _, x := range c.ann[s] {
		known = known || x == an
	}
	if !known && len(c.ann[s]) < a.lim.MaxAnnouncements {
		c.ann[s] = append(c.ann[s], an)
	}
	if !c.hasKey[client] || !c.hasKey[server] {
		a.skip(CheckAddAddrHMAC)
		return
	}
	if !options.VerifyAddAddr(ad, c.key[s], c.key[s^1]) {
		want := options.AddAddrHMAC(c.key[s], c.key[s^1], ad.AddrID, ad.Addr, ad.Port)
		a.mismatch(CheckAddAddrHMAC, p, c, "ADD_ADDR HMAC", fmt.Sprintf("%016x", want), fmt.Sprintf("%016x", ad.HMAC))
		return
	}
	a.ok(CheckAddAddrHMAC)
}

// mapping is a DSS mapping as carried by a DSS or an MP_CAPABLE.
type mapping struct {
	dsn     uint64
	dsn64   bool
	ssn     uint32
	dataLen uint16
	hasCsum bool
	csum    uint16
	fin     bool
}

func (a *Analyzer) dss(p *Packet, d options.DSS, sf *subflow, dir int) {
	c := connOf(sf)
	if c == nil {
		if d.HasMapping {
			a.skip(CheckDSN)
		}
		if d.HasAck {
			a.skip(CheckDataAck)
		}
		return
	}
	if d.HasMapping {
		a.mapping(p, sf, dir, mapping{dsn: d.DSN, dsn64: d.DSN64, ssn: d.SubflowSeq, dataLen: d.DataLen,
			hasCsum: d.HasChecksum, csum: d.Checksum, fin: d.DataFIN})
	} else if d.DataFIN {
		a.mismatch(CheckDataFIN, p, c, "DATA_FIN without a mapping", "M flag", "none")
	}
	if d.HasAck {
		a.dataAck(p, sf, dir, d)
	}
}

// mapping checks a mapping's DSN and DATA_FIN, records how far the sender
// has mapped, and starts following its payload for the checksum.
func (a *Analyzer) mapping(p *Packet, sf *subflow, dir int, m mapping) {
	c := sf.conn
	s := sf.side(dir)
	if !c.hasKey[s] {
		a.skip(CheckDSN)
		if m.hasCsum {
			a.skip(CheckDSSChecksum)
		}
		return
	}
	st := &c.tx[s]
	start := c.idsn[s] + 1
	dsn := m.dsn
	if !m.dsn64 {
		ref := start
		if st.mapped {
			ref = st.mappedEnd
		}
		dsn = options.ExpandSeq(ref, uint32(m.dsn))
	}
	if options.DSN(dsn).LessThan(options.DSN(start)) {
		a.mismatch(CheckDSN, p, c, "mapping before the sender's IDSN+1", fmt.Sprintf(">= %d", start), fmt.Sprint(dsn))
	} else {
		a.ok(CheckDSN)
	}
	if m.dataLen == 0 {
		st.infinite = true // fallback (§3.7): nothing more to check
		return
	}
	plen := uint32(m.dataLen)
	if m.fin {
		plen--
	}
	if p.PayloadLen > 0 && plen > 0 && sf.hasISN[dir] {
		// The segment's payload must lie inside the mapping it carries.
		off := p.Seq - sf.isn[dir] - m.ssn
		if off >= plen || uint32(p.PayloadLen) > plen-off {
			a.mismatch(CheckDSN, p, c, "segment payload outside the mapping it carries",
				fmt.Sprintf("subflow seq %d..%d", m.ssn, m.ssn+plen), fmt.Sprintf("%d..%d", p.Seq-sf.isn[dir], p.Seq-sf.isn[dir]+uint32(p.PayloadLen)))
		} else {
			a.ok(CheckDSN)
		}
	}
	if plen > 0 && !a.consistentMapping(p, sf, dir, m.ssn, plen, dsn) {
		if m.hasCsum {
			a.skip(CheckDSSChecksum)
		}
		return
	}
	end := dsn + uint64(m.dataLen)
	if m.fin {
		fin := end - 1
		switch {
		case st.fin && st.finDSN != fin:
			a.mismatch(CheckDataFIN, p, c, "DATA_FIN moved", fmt.Sprint(st.finDSN), fmt.Sprint(fin))
		case !st.fin && st.mapped && options.DSN(fin).LessThan(options.DSN(st.mappedEnd)):
			a.mismatch(CheckDataFIN, p, c, "DATA_FIN before data already mapped", fmt.Sprintf(">= %d", st.mappedEnd), fmt.Sprint(fin))
		default:
			a.ok(CheckDataFIN)
		}
		if !st.fin {
			st.fin, st.finDSN = true, fin
		}
	} else if st.fin && options.DSN(st.finDSN).LessThan(options.DSN(end)) {
		a.mismatch(CheckDataFIN, p, c, "data mapped after the DATA_FIN", fmt.Sprintf("<= %d", st.finDSN), fmt.Sprint(end))
	}
	if !st.mapped || options.DSN(st.mappedEnd).LessThan(options.DSN(end)) {
		st.mappedEnd = end
	}
	st.mapped = true
	if m.hasCsum {
		a.checksumMapping(p, sf, dir, dsn, m, plen)
	}
}

// consistentMapping checks that a mapping of n subflow bytes from relative
// sequence number ssn to DSN dsn ties the bytes earlier mappings on the
// subflow covered to the same DSNs (§3.3.1: a retransmission carries the
// same mapping; Linux counts a disagreement as DSSNotMatching), and
// remembers it. A mapping may cover more or fewer bytes than an earlier
// one from the same start: RFC 8684 asks only that they agree.
func (a *Analyzer) consistentMapping(p *Packet, sf *subflow, dir int, ssn, n uint32, dsn uint64) bool {
	off := uint32(dsn) - ssn
	rs := sf.ranges[dir]
	merged := -1
	for i := range rs {
		r := &rs[i]
		// Overlap and adjacency in serial arithmetic: one range starts
		// inside (or right at the end of) the other.
		touches := ssn-r.start <= r.end-r.start || r.start-ssn <= n
		if !touches {
			continue
		}
		overlaps := ssn-r.start < r.end-r.start || r.start-ssn < n
		if overlaps && r.offset != off {
			at := ssn
			if ssn-r.start >= r.end-r.start {
				at = r.start // the earlier run starts inside this mapping
			}
			now := dsn + uint64(at-ssn)
			before := now + uint64(int64(int32(r.offset-off)))
			a.mismatch(CheckDSN, p, sf.conn, "mapping ties subflow bytes to other DSNs than an earlier mapping",
				fmt.Sprintf("subflow seq %d at DSN %d", at, before), fmt.Sprintf("DSN %d", now))
			return false
		}
		if r.offset == off && merged < 0 {
			merged = i
		}
	}
	if merged >= 0 {
		r := &rs[merged]
		if int32(ssn-r.start) < 0 {
			r.start = ssn
		}
		if end := ssn + n; int32(end-r.end) > 0 {
			r.end = end
		}
		if r.end-r.start > maxRunLen {
			r.start = r.end - maxRunLen // forget the oldest bytes
		}
		return true
	}
	if rs == nil {
		rs = make([]mappedRange, 0, maxMappedRanges)
	}
	if len(rs) == maxMappedRanges {
		rs = append(rs[:0], rs[1:]...)
	}
	sf.ranges[dir] = append(rs, mappedRange{start: ssn, end: ssn + n, offset: off})
	return true
}

// dataAck checks a data ACK against the acknowledged side's data (§3.3.2).
func (a *Analyzer) dataAck(p *Packet, sf *subflow, dir int, d options.DSS) {
	c := sf.conn
	s := sf.side(dir)
	peer := s ^ 1
	if !c.hasKey[peer] {
		a.skip(CheckDataAck)
		return
	}
	st := &c.tx[s]
	start := c.idsn[peer] + 1
	ack := d.DataAck
	if !d.Ack64 {
		ref := start
		if st.ackSeen {
			ref = st.ack
		}
		ack = options.ExpandSeq(ref, uint32(ack))
	}
	pt := &c.tx[peer]
	limit := start
	if pt.mapped && options.DSN(limit).LessThan(options.DSN(pt.mappedEnd)) {
		limit = pt.mappedEnd
	}
	// A data ACK that fails a check does not move the state, so that one
	// bad value is one mismatch, not one per later segment.
	switch {
	case options.DSN(ack).LessThan(options.DSN(start)):
		a.mismatch(CheckDataAck, p, c, "data ACK before the peer's IDSN+1", fmt.Sprintf(">= %d", start), fmt.Sprint(ack))
		return
	case !pt.infinite && options.DSN(limit).LessThan(options.DSN(ack)):
		a.mismatch(CheckDataAck, p, c, "data ACK beyond what the peer has mapped", fmt.Sprintf("<= %d", limit), fmt.Sprint(ack))
		return
	case sf.hasAck[dir] && options.DSN(ack).LessThan(options.DSN(sf.ackMax[dir])):
		a.mismatch(CheckDataAck, p, c, "data ACK went backwards on this subflow", fmt.Sprintf(">= %d", sf.ackMax[dir]), fmt.Sprint(ack))
		return
	}
	a.ok(CheckDataAck)
	if !sf.hasAck[dir] || options.DSN(sf.ackMax[dir]).LessThan(options.DSN(ack)) {
		sf.ackMax[dir], sf.hasAck[dir] = ack, true
	}
	if !st.ackSeen || options.DSN(st.ack).LessThan(options.DSN(ack)) {
		st.ack, st.ackSeen = ack, true
	}
}

// checksumMapping starts following a mapping's payload, unless the segment
// repeats the mapping being followed or the one just finished.
func (a *Analyzer) checksumMapping(p *Packet, sf *subflow, dir int, dsn uint64, m mapping, plen uint32) {
	t := &sf.csum[dir]
	if t.active && t.dsn == dsn && t.ssn == m.ssn && t.dataLen == m.dataLen {
		return
	}
	if t.done && t.doneDSN == dsn && t.doneSSN == m.ssn && t.doneLen == m.dataLen {
		return
	}
	if t.active {
		a.skip(CheckDSSChecksum) // a new mapping before the old one's bytes were all seen
		t.active = false
	}
	if plen > 0 && !sf.hasISN[dir] {
		a.skip(CheckDSSChecksum)
		return
	}
	*t = mapTrack{active: true, dsn: dsn, ssn: m.ssn, dataLen: m.dataLen, csum: m.csum, plen: plen}
	if plen == 0 {
		a.finishChecksum(p, sf, t)
	}
}

// checksumPayload adds the bytes of p that continue the mapping being
// followed. Segments out of order are left for their retransmission.
func (a *Analyzer) checksumPayload(p *Packet, sf *subflow, dir int) {
	t := &sf.csum[dir]
	if !t.active || p.PayloadLen == 0 || p.FirstFragment || p.Flags&FlagSYN != 0 {
		return
	}
	rel := p.Seq - sf.isn[dir]
	next := t.ssn + t.filled
	off := next - rel
	if off >= uint32(p.PayloadLen) {
		return // before or after the next byte needed
	}
	n := min(uint32(p.PayloadLen)-off, t.plen-t.filled)
	if uint64(off)+uint64(n) > uint64(len(p.Payload)) {
		return // cut by the snap length; a retransmission may bring the bytes
	}
	t.sum.Add(p.Payload[off : off+n])
	t.filled += n
	if t.filled == t.plen {
		a.finishChecksum(p, sf, t)
	}
}

func (a *Analyzer) finishChecksum(p *Packet, sf *subflow, t *mapTrack) {
	t.active = false
	t.done, t.doneDSN, t.doneSSN, t.doneLen = true, t.dsn, t.ssn, t.dataLen
	if !t.sum.Verify(t.dsn, t.ssn, t.dataLen, t.csum) {
		want := t.sum.Sum(t.dsn, t.ssn, t.dataLen)
		a.mismatch(CheckDSSChecksum, p, sf.conn, fmt.Sprintf("DSS checksum of mapping dsn %d subflow seq %d len %d", t.dsn, t.ssn, t.dataLen),
			fmt.Sprintf("0x%04x", want), fmt.Sprintf("0x%04x", t.csum))
		return
	}
	a.ok(CheckDSSChecksum)
}
