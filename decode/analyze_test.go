package decode

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// conv builds a synthetic capture, frame by frame.
type conv struct {
	frames [][]byte
}

func (c *conv) add(s tcpSeg) { c.frames = append(c.frames, frame4(s)) }

func (c *conv) analyze(lim Limits) Result {
	a := NewAnalyzer(lim)
	var p Packet
	for i, f := range c.frames {
		Decode(LinkEthernet, f, 0, &p)
		p.Frame = i + 1
		a.Add(&p)
	}
	return a.Result()
}

// csumOf computes the DSS checksum of a mapping.
func csumOf(dsn uint64, ssn uint32, dataLen uint16, payload []byte) uint16 {
	var c options.DSSChecksum
	c.Add(payload)
	return c.Sum(dsn, ssn, dataLen)
}

const (
	keyC = 0x0102030405060708
	keyS = 0x1112131415161718
	isnC = 1000
	isnS = 5000
	isnJ = 7000 // join subflow, initiator
	isnK = 9000 // join subflow, responder
	nA   = 0xa1a2a3a4
	nB   = 0xb1b2b3b4
)

var join4 = netip.MustParseAddrPort("10.0.1.1:50000")

// scenario builds an MPTCP connection with checksums, an ADD_ADDR and its
// echo, a join, data both ways in several mappings, DATA_FIN, MP_FASTCLOSE
// and MP_TCPRST. mut names one thing to break (see TestAnalyzerMismatches).
func scenario(mut string) *conv {
	idsnC, idsnS := options.IDSN(keyC), options.IDSN(keyS)
	var c conv
	flags := uint8(options.CapableFlagChecksum | options.CapableFlagHMACSHA256)
	// 1-3: MP_CAPABLE handshake.
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC, flags: FlagSYN,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: flags})})
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS, ack: isnC + 1, flags: FlagSYN | FlagACK,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: flags, SenderKey: keyS})})
	echoed := uint64(keyS)
	if mut == "capable-key" {
		echoed ^= 1 << 40
	}
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 1, ack: isnS + 1, flags: FlagACK,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: flags, SenderKey: keyC, ReceiverKey: echoed})})
	// 4: first data, MP_CAPABLE with the mapping DSN = IDSN+1, ssn 1.
	d1 := []byte("hello world!")
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 1, ack: isnS + 1, flags: FlagACK | FlagPSH, payload: d1,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableDataChecksum, Version: 1, Flags: flags, SenderKey: keyC, ReceiverKey: keyS,
			DataLen: 12, Checksum: csumOf(idsnC+1, 1, 12, d1)})})
	// 5: data ACK, 64 bits.
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS + 1, ack: isnC + 13, flags: FlagACK,
		opts: mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: idsnC + 13})})
	// 6-7: one mapping over two segments, 32-bit DSN.
	d2 := []byte("0123456789abcdefghij")
	m2 := options.DSS{HasMapping: true, DSN: (idsnC + 13) & 0xffffffff, SubflowSeq: 13, DataLen: 20, HasChecksum: true,
		Checksum: csumOf(idsnC+13, 13, 20, d2)}
	if mut == "checksum" {
		m2.Checksum ^= 0x0100
	}
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 13, ack: isnS + 1, flags: FlagACK, payload: d2[:8], opts: mptcpOpts(m2)})
	m2.Checksum = csumOf(idsnC+13, 13, 20, d2) // later segments repeat the mapping
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 21, ack: isnS + 1, flags: FlagACK, payload: d2[8:], opts: mptcpOpts(m2)})
	// 8-9: ADD_ADDR from the server, with a 32-bit data ACK, and its echo.
	addr := netip.MustParseAddr("10.0.1.2")
	add := options.AddAddr{AddrID: 2, Addr: addr, HMAC: options.AddAddrHMAC(keyS, keyC, 2, addr, 0)}
	if mut == "add-addr-hmac" {
		add.HMAC++
	}
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS + 1, ack: isnC + 33, flags: FlagACK,
		opts: mptcpOpts(options.DSS{HasAck: true, DataAck: (idsnC + 33) & 0xffffffff}, add)})
	echo := options.AddAddr{Echo: true, AddrID: 2, Addr: addr}
	if mut == "add-addr-echo" {
		echo.AddrID = 9
	}
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 33, ack: isnS + 1, flags: FlagACK, opts: mptcpOpts(echo)})
	// 10-13: MP_JOIN from a second client address to the server.
	token := options.Token(keyS)
	if mut == "join-token" {
		token++
	}
	c.add(tcpSeg{src: join4, dst: srv4, seq: isnJ, flags: FlagSYN,
		opts: mptcpOpts(options.MPJoin{Variant: options.JoinSYN, AddrID: 3, Token: token, Nonce: nA})})
	synack := options.MPJoin{Variant: options.JoinSYNACK, Nonce: nB}
	h := options.JoinHMAC(keyS, keyC, nB, nA)
	copy(synack.HMAC[:], h[:8])
	if mut == "join-synack-hmac" {
		synack.HMAC[7] ^= 1
	}
	c.add(tcpSeg{src: srv4, dst: join4, seq: isnK, ack: isnJ + 1, flags: FlagSYN | FlagACK, opts: mptcpOpts(synack)})
	ack3 := options.MPJoin{Variant: options.JoinACK}
	h = options.JoinHMAC(keyC, keyS, nA, nB)
	copy(ack3.HMAC[:], h[:20])
	if mut == "join-ack-hmac" {
		ack3.HMAC[19] ^= 0x80
	}
	c.add(tcpSeg{src: join4, dst: srv4, seq: isnJ + 1, ack: isnK + 1, flags: FlagACK, opts: mptcpOpts(ack3)})
	c.add(tcpSeg{src: srv4, dst: join4, seq: isnK + 1, ack: isnJ + 1, flags: FlagACK,
		opts: mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: idsnC + 33})})
	// 14: data on the join subflow, 64-bit DSN.
	d3 := []byte("on path 2!")
	dsn3 := idsnC + 33
	if mut == "dsn" {
		dsn3 = idsnC - 100
	}
	c.add(tcpSeg{src: join4, dst: srv4, seq: isnJ + 1, ack: isnK + 1, flags: FlagACK, payload: d3,
		opts: mptcpOpts(options.DSS{HasMapping: true, DSN64: true, DSN: dsn3, SubflowSeq: 1, DataLen: 10, HasChecksum: true,
			Checksum: csumOf(dsn3, 1, 10, d3)})})
	// 15: DATA_FIN on subflow 1, with no data: ssn 0, length 1.
	fin := idsnC + 43
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 33, ack: isnS + 1, flags: FlagACK,
		opts: mptcpOpts(options.DSS{DataFIN: true, HasAck: true, Ack64: true, DataAck: idsnS + 1,
			HasMapping: true, DSN64: true, DSN: fin, DataLen: 1, HasChecksum: true, Checksum: csumOf(fin, 0, 1, nil)})})
	// 16: the DATA_FIN again, on subflow 2, as Linux does.
	fin2 := options.DSS{DataFIN: true, HasMapping: true, DSN64: true, DSN: fin, DataLen: 1, HasChecksum: true}
	switch mut {
	case "data-fin-moved":
		fin2.DSN++
	case "data-after-fin":
		fin2.DataFIN = false
		fin2.DSN++
	case "data-fin-no-mapping":
		fin2 = options.DSS{DataFIN: true, HasAck: true, Ack64: true, DataAck: idsnS + 1}
	}
	fin2.Checksum = csumOf(fin2.DSN, 0, 1, nil)
	c.add(tcpSeg{src: join4, dst: srv4, seq: isnJ + 11, ack: isnK + 1, flags: FlagACK, opts: mptcpOpts(fin2)})
	// 17: the server acks everything, DATA_FIN included.
	ack17 := idsnC + 44
	if mut == "data-ack-beyond" {
		ack17++
	}
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS + 1, ack: isnC + 33, flags: FlagACK,
		opts: mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: ack17})})
	// 18: server data, 4 bytes, with the same data ACK.
	d4 := []byte("pong")
	ack18 := idsnC + 44
	if mut == "data-ack-backwards" {
		ack18 = idsnC + 20
	}
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS + 1, ack: isnC + 33, flags: FlagACK, payload: d4,
		opts: mptcpOpts(options.DSS{HasAck: true, DataAck: ack18 & 0xffffffff, HasMapping: true, DSN: (idsnS + 1) & 0xffffffff,
			SubflowSeq: 1, DataLen: 4, HasChecksum: true, Checksum: csumOf(idsnS+1, 1, 4, d4)})})
	// 19: the client acks it and closes abruptly.
	fc := options.MPFastClose{ReceiverKey: keyS}
	if mut == "fastclose-key" {
		fc.ReceiverKey = keyC
	}
	area := mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: idsnS + 5}, fc)
	if mut == "malformed" {
		area = append(area, options.Kind, 5, 0x20, 0, 0)
	}
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 33, ack: isnS + 5, flags: FlagACK, opts: area})
	// 20: the server resets the subflow.
	rstFlags := uint8(FlagRST | FlagACK)
	if mut == "tcprst" {
		rstFlags = FlagACK
	}
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS + 5, flags: rstFlags,
		opts: mptcpOpts(options.MPTCPRst{Reason: options.TCPRstMPTCPError})})
	return &c
}

func TestAnalyzerScenario(t *testing.T) {
	res := scenario("").analyze(Limits{})
	for _, m := range res.Mismatches {
		t.Errorf("mismatch: %v", m)
	}
	want := map[Check]int{
		CheckWellFormed:     22,
		CheckCapableKeys:    3, // frame 3 echoes the server key; frame 4 echoes it and repeats the client's
		CheckJoinToken:      1,
		CheckJoinSYNACKHMAC: 1,
		CheckJoinACKHMAC:    1,
		CheckAddAddrHMAC:    1,
		CheckAddAddrEcho:    1,
		CheckDSN:            12, // 6 mappings, 6 segments with payload inside their mapping
		CheckDataAck:        7,
		CheckDataFIN:        2,
		CheckDSSChecksum:    6, // frame 4, 6-7, 14, 15, 16, 18
		CheckFastCloseKey:   1,
		CheckTCPRst:         1,
	}
	for c := Check(0); c < NumChecks; c++ {
		if got := res.Checks[c]; got.OK != want[c] || got.Skipped != 0 {
			t.Errorf("%v: %+v, want %d ok", c, got, want[c])
		}
	}
	if res.Frames != 20 || res.TCPSegments != 20 || res.Connections != 1 || res.Subflows != 2 || res.Joins != 1 || res.MPTCPOptions != 22 {
		t.Errorf("result %+v", res)
	}
}

func TestAnalyzerMismatches(t *testing.T) {
	tests := []struct {
		mut   string
		check Check
		frame int
		what  string
	}{
		{"capable-key", CheckCapableKeys, 3, "MP_CAPABLE server key echoed by the client differs from the handshake's"},
		{"checksum", CheckDSSChecksum, 7, "DSS checksum of mapping"},
		{"add-addr-hmac", CheckAddAddrHMAC, 8, "ADD_ADDR HMAC"},
		{"add-addr-echo", CheckAddAddrEcho, 9, "ADD_ADDR echo of an address the peer did not announce"},
		{"join-token", CheckJoinToken, 10, "MP_JOIN token matches no key"},
		{"join-synack-hmac", CheckJoinSYNACKHMAC, 11, "MP_JOIN SYN/ACK truncated HMAC"},
		{"join-ack-hmac", CheckJoinACKHMAC, 12, "MP_JOIN third ACK HMAC"},
		{"dsn", CheckDSN, 14, "mapping before the sender's IDSN+1"},
		{"data-fin-moved", CheckDataFIN, 16, "DATA_FIN moved"},
		{"data-after-fin", CheckDataFIN, 16, "data mapped after the DATA_FIN"},
		{"data-fin-no-mapping", CheckDataFIN, 16, "DATA_FIN without a mapping"},
		{"data-ack-beyond", CheckDataAck, 17, "data ACK beyond what the peer has mapped"},
		{"data-ack-backwards", CheckDataAck, 18, "data ACK went backwards on this subflow"},
		{"fastclose-key", CheckFastCloseKey, 19, "MP_FASTCLOSE key is not the receiver's key"},
		{"malformed", CheckWellFormed, 19, "malformed DSS option"},
		{"tcprst", CheckTCPRst, 20, "MP_TCPRST on a segment without RST"},
	}
	for _, tt := range tests {
		t.Run(tt.mut, func(t *testing.T) {
			res := scenario(tt.mut).analyze(Limits{})
			if len(res.Mismatches) != 1 {
				t.Fatalf("%d mismatches, want 1: %v", len(res.Mismatches), res.Mismatches)
			}
			m := res.Mismatches[0]
			if m.Check != tt.check || m.Frame != tt.frame || !strings.HasPrefix(m.What, tt.what) {
				t.Errorf("mismatch %v; want %v at frame %d: %q", m, tt.check, tt.frame, tt.what)
			}
			if res.Checks[tt.check].Mismatch != 1 || res.OK() {
				t.Errorf("counts %+v", res.Checks[tt.check])
			}
			if tt.check != CheckJoinToken && m.Conn != 1 {
				t.Errorf("conn %d, want 1", m.Conn)
			}
		})
	}
}

// A mismatch line says where, what, and expected versus seen.
func TestMismatchText(t *testing.T) {
	res := scenario("join-synack-hmac").analyze(Limits{})
	h := options.JoinHMAC(keyS, keyC, nB, nA)
	bad := bytes.Clone(h[:8])
	bad[7] ^= 1
	want := "frame 11 conn 1 10.0.0.2:8080 > 10.0.1.1:50000: join-synack-hmac: MP_JOIN SYN/ACK truncated HMAC: expected " +
		hexs(h[:8]) + ", seen " + hexs(bad)
	if got := res.Mismatches[0].String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var text, js bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{want + "\n", "join-synack-hmac           0         1         0\n", "verify: 1 mismatch\n"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, text.String())
		}
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines, want 2:\n%s", len(lines), js.String())
	}
	var m struct {
		Mismatch struct {
			Frame int
			Check string
		}
	}
	var s struct {
		Summary struct {
			Mismatches int
			Checks     map[string]CheckCount
		}
	}
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m.Mismatch.Frame != 11 || m.Mismatch.Check != "join-synack-hmac" {
		t.Errorf("mismatch line %s: %v %+v", lines[0], err, m)
	}
	if err := json.Unmarshal([]byte(lines[1]), &s); err != nil || s.Summary.Mismatches != 1 || s.Summary.Checks["dss-checksum"].OK != 6 {
		t.Errorf("summary line %s: %v %+v", lines[1], err, s)
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	var s []byte
	for _, c := range b {
		s = append(s, d[c>>4], d[c&15])
	}
	return string(s)
}

// Segments cut by the snap length leave their mapping unverified: skipped,
// not a mismatch.
func TestAnalyzerChecksumSkipped(t *testing.T) {
	c := scenario("")
	a := NewAnalyzer(Limits{})
	var p Packet
	for i, f := range c.frames {
		if i == 6 { // frame 7, the second segment of the two-segment mapping
			f = f[:len(f)-3]
		}
		Decode(LinkEthernet, f, len(c.frames[i]), &p)
		p.Frame = i + 1
		a.Add(&p)
	}
	res := a.Result()
	if !res.OK() || res.Checks[CheckDSSChecksum].OK != 5 || res.Checks[CheckDSSChecksum].Skipped != 1 {
		t.Errorf("checksum %+v, mismatches %v", res.Checks[CheckDSSChecksum], res.Mismatches)
	}
}

// The analyzer's state stays within its limits whatever the capture holds.
func TestAnalyzerLimits(t *testing.T) {
	var c conv
	for i := range 100 {
		src := netip.AddrPortFrom(cli4.Addr(), uint16(10000+i))
		c.add(tcpSeg{src: src, dst: srv4, seq: 1, flags: FlagSYN,
			opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: 1})})
		c.add(tcpSeg{src: srv4, dst: src, seq: 1, ack: 2, flags: FlagSYN | FlagACK,
			opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: 1, SenderKey: uint64(i)})})
		if i%2 == 0 {
			c.add(tcpSeg{src: src, dst: srv4, seq: 2, flags: FlagRST})
		}
	}
	for i := range 50 { // joins with unknown tokens: one mismatch each, no state
		c.add(tcpSeg{src: join4, dst: srv4, seq: uint32(i), flags: FlagSYN,
			opts: mptcpOpts(options.MPJoin{Variant: options.JoinSYN, Token: uint32(i), Nonce: 1})})
	}
	a := NewAnalyzer(Limits{MaxSubflows: 10, MaxConnections: 5, MaxMismatches: 3})
	var p Packet
	for i, f := range c.frames {
		Decode(LinkEthernet, f, 0, &p)
		p.Frame = i + 1
		a.Add(&p)
		if len(a.flows) > 10 || a.nconns > 5 || len(a.tokens) > 10 {
			t.Fatalf("frame %d: %d flows, %d conns, %d tokens", i+1, len(a.flows), a.nconns, len(a.tokens))
		}
	}
	res := a.Result()
	if res.Untracked == 0 || len(res.Mismatches) != 3 || res.MismatchCount() < 3 {
		t.Errorf("untracked %d, %d mismatches listed of %d", res.Untracked, len(res.Mismatches), res.MismatchCount())
	}
}

// Reusing 4-tuples (a new SYN after a RST) keeps the analyzer's queues
// within the limits.
func TestAnalyzerTupleReuse(t *testing.T) {
	a := NewAnalyzer(Limits{MaxSubflows: 8})
	var p Packet
	syn := frame4(tcpSeg{src: cli4, dst: srv4, flags: FlagSYN})
	rst := frame4(tcpSeg{src: srv4, dst: cli4, flags: FlagRST | FlagACK})
	for i := range 1000 {
		f := bytes.Clone(syn)
		f[14+20+4] = byte(i) // a new ISN each time
		f[14+20+5] = byte(i >> 8)
		for _, fr := range [][]byte{f, rst} {
			Decode(LinkEthernet, fr, 0, &p)
			a.Add(&p)
		}
		if len(a.closedFlows) > 8 || len(a.flows) > 8 {
			t.Fatalf("round %d: %d closed queued, %d flows", i, len(a.closedFlows), len(a.flows))
		}
	}
	if res := a.Result(); res.Subflows != 1000 || res.Untracked != 0 {
		t.Errorf("%+v", res)
	}
}

// Following an established connection does not allocate per segment.
func TestAnalyzerAllocs(t *testing.T) {
	c := scenario("")
	a := NewAnalyzer(Limits{})
	var p Packet
	for i, f := range c.frames[:14] {
		Decode(LinkEthernet, f, 0, &p)
		p.Frame = i + 1
		a.Add(&p)
	}
	// Data and ACKs on both subflows, repeated: retransmissions to the
	// analyzer, which checks them again.
	var pkts []Packet
	for _, f := range [][]byte{c.frames[5], c.frames[6], c.frames[7], c.frames[12], c.frames[13]} {
		var q Packet
		Decode(LinkEthernet, f, 0, &q)
		pkts = append(pkts, q)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range pkts {
			a.Add(&pkts[i])
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
	if res := a.Result(); !res.OK() {
		t.Errorf("mismatches %v", res.Mismatches)
	}
}

// handshake is an MP_CAPABLE handshake without checksums between cli4 and
// srv4, the start of a conv for tests of the data-level checks.
func handshake() *conv {
	var c conv
	flags := uint8(options.CapableFlagHMACSHA256)
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC, flags: FlagSYN,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: flags})})
	c.add(tcpSeg{src: srv4, dst: cli4, seq: isnS, ack: isnC + 1, flags: FlagSYN | FlagACK,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: flags, SenderKey: keyS})})
	c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 1, ack: isnS + 1, flags: FlagACK,
		opts: mptcpOpts(options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: flags, SenderKey: keyC, ReceiverKey: keyS})})
	return &c
}

// TestAnalyzerMappingConsistency: mappings of the same subflow bytes must
// agree on their DSNs, whatever their starts and lengths.
func TestAnalyzerMappingConsistency(t *testing.T) {
	base := options.IDSN(keyC) + 1
	type m struct {
		ssn  uint32
		n    int    // payload and mapping length
		dsn  uint64 // offset from base
		what string // the mismatch expected, or ""
	}
	tests := []struct {
		name string
		maps []m
	}{
		{"retransmission with the same mapping", []m{{1, 100, 0, ""}, {101, 100, 100, ""}, {1, 100, 0, ""}}},
		{"shorter and longer from the same start", []m{{1, 200, 0, ""}, {1, 50, 0, ""}, {1, 300, 0, ""}, {251, 50, 250, ""}}},
		{"overlap from inside", []m{{1, 100, 0, ""}, {51, 100, 50, ""}}},
		{"DSN jump then its retransmission", []m{{1, 100, 0, ""}, {101, 100, 500, ""}, {151, 20, 550, ""}, {1, 100, 0, ""}}},
		{"same start, other DSN", []m{{1, 100, 0, ""}, {1, 100, 1, "mapping ties subflow bytes to other DSNs"}}},
		{"later start inside, other DSN", []m{{1, 100, 0, ""}, {51, 100, 60, "mapping ties subflow bytes to other DSNs"}}},
		{"earlier start covering, other DSN", []m{{101, 100, 100, ""}, {1, 150, 10, "mapping ties subflow bytes to other DSNs"}}},
		{"adjacent, other DSN", []m{{1, 100, 0, ""}, {101, 100, 700, ""}}},
		// The subflow's sequence numbers wrap after 4 GiB, the DSN goes on:
		// bytes after the wrap, mapped again on their own, keep their DSN.
		{"across the subflow sequence wrap", []m{{1<<32 - 150, 100, 1<<32 - 151, ""}, {1<<32 - 50, 100, 1<<32 - 51, ""},
			{10, 20, 1<<32 + 9, ""}, {1<<32 - 50, 100, 1<<32 - 51, ""}}},
		{"across the wrap, other DSN", []m{{1<<32 - 50, 100, 1<<32 - 51, ""}, {10, 20, 1<<32 + 10, "mapping ties subflow bytes to other DSNs"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := handshake()
			var want []string
			for _, mp := range tt.maps {
				d := options.DSS{HasMapping: true, DSN64: true, DSN: base + mp.dsn, SubflowSeq: mp.ssn, DataLen: uint16(mp.n)}
				c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + mp.ssn, ack: isnS + 1, flags: FlagACK,
					payload: make([]byte, mp.n), opts: mptcpOpts(d)})
				if mp.what != "" {
					want = append(want, mp.what)
				}
			}
			res := c.analyze(Limits{})
			if len(res.Mismatches) != len(want) {
				t.Fatalf("mismatches %v, want %q", res.Mismatches, want)
			}
			for i, mm := range res.Mismatches {
				if mm.Check != CheckDSN || !strings.HasPrefix(mm.What, want[i]) {
					t.Errorf("mismatch %v, want %v: %q", mm, CheckDSN, want[i])
				}
			}
		})
	}
}

// TestAnalyzerMappedRangesBounded: a subflow whose DSN jumps on every
// mapping remembers maxMappedRanges runs, the latest ones.
func TestAnalyzerMappedRangesBounded(t *testing.T) {
	c := handshake()
	base := options.IDSN(keyC) + 1
	const n = 100
	for i := range 3 * maxMappedRanges {
		d := options.DSS{HasMapping: true, DSN64: true, DSN: base + uint64(i)*1000, SubflowSeq: 1 + uint32(i)*n, DataLen: n}
		c.add(tcpSeg{src: cli4, dst: srv4, seq: isnC + 1 + uint32(i)*n, ack: isnS + 1, flags: FlagACK,
			payload: make([]byte, n), opts: mptcpOpts(d)})
	}
	a := NewAnalyzer(Limits{})
	var p Packet
	for i, f := range c.frames {
		Decode(LinkEthernet, f, 0, &p)
		p.Frame = i + 1
		a.Add(&p)
	}
	if res := a.Result(); len(res.Mismatches) != 0 {
		t.Fatalf("mismatches %v", res.Mismatches)
	}
	for _, sf := range a.flows {
		for dir, rs := range sf.ranges {
			if len(rs) > maxMappedRanges || cap(rs) > maxMappedRanges {
				t.Errorf("direction %d: %d runs (cap %d), want at most %d", dir, len(rs), cap(rs), maxMappedRanges)
			}
			if dir == 0 && len(rs) > 0 && rs[len(rs)-1].start != 1+uint32(3*maxMappedRanges-1)*n {
				t.Errorf("last run starts at %d, want the last mapping's", rs[len(rs)-1].start)
			}
		}
	}
}
