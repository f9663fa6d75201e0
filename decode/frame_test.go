package decode

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// A data segment with timestamps and a DSS, as Linux sends it.
func dataSeg(src, dst netip.AddrPort) tcpSeg {
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	dss := options.DSS{HasAck: true, DataAck: 0x01020304, HasMapping: true, DSN64: true, DSN: 0x1000, SubflowSeq: 1, DataLen: 5}
	return tcpSeg{src: src, dst: dst, seq: 1000, ack: 2000, flags: FlagACK | FlagPSH,
		opts: append(ts, dss.Append(nil)...), payload: []byte("hello")}
}

func TestDecodeLinkTypes(t *testing.T) {
	s4, s6 := dataSeg(cli4, srv4), dataSeg(cli6, srv6)
	ip4 := ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, nil, tcpBytes(s4))
	ip6 := ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6))
	tests := []struct {
		name string
		lt   LinkType
		data []byte
		v6   bool
	}{
		{"ethernet/ipv4", LinkEthernet, ethBytes(etherTypeIPv4, ip4), false},
		{"ethernet/ipv6", LinkEthernet, ethBytes(etherTypeIPv6, ip6), true},
		{"ethernet/vlan/ipv4", LinkEthernet, ethBytes(etherTypeIPv4, ip4, etherTypeVLAN), false},
		{"ethernet/qinq/ipv6", LinkEthernet, ethBytes(etherTypeIPv6, ip6, etherTypeQinQ, etherTypeVLAN), true},
		{"ethernet/9100/ipv4", LinkEthernet, ethBytes(etherTypeIPv4, ip4, etherTypeQinQ2), false},
		{"ethernet/padded", LinkEthernet, append(ethBytes(etherTypeIPv4, ip4), 0, 0, 0, 0), false},
		{"raw101/ipv4", LinkRaw, ip4, false},
		{"raw101/ipv6", LinkRaw, ip6, true},
		{"raw12/ipv4", LinkRawDLT12, ip4, false},
		{"raw14/ipv6", LinkRawDLT14, ip6, true},
		{"ipv4-228", LinkIPv4, ip4, false},
		{"ipv6-229", LinkIPv6, ip6, true},
		{"sll/ipv4", LinkLinuxSLL, sllBytes(etherTypeIPv4, ip4), false},
		{"sll/ipv6", LinkLinuxSLL, sllBytes(etherTypeIPv6, ip6), true},
		{"sll/vlan/ipv4", LinkLinuxSLL, sllBytes(etherTypeVLAN, append([]byte{0, 7, 8, 0}, ip4...)), false},
		{"sll2/ipv4", LinkLinuxSLL2, sll2Bytes(etherTypeIPv4, ip4), false},
		{"sll2/ipv6", LinkLinuxSLL2, sll2Bytes(etherTypeIPv6, ip6), true},
		{"null-le/ipv4", LinkNull, nullBytes(afInet, false, ip4), false},
		{"null-be/ipv4", LinkNull, nullBytes(afInet, true, ip4), false},
		{"null-le/ipv6-linux", LinkNull, nullBytes(afInet6Linux, false, ip6), true},
		{"null-le/ipv6-bsd", LinkNull, nullBytes(afInet6BSD, false, ip6), true},
		{"null-be/ipv6-freebsd", LinkNull, nullBytes(afInet6FreeBSD, true, ip6), true},
		{"null-le/ipv6-darwin", LinkNull, nullBytes(afInet6Darwin, false, ip6), true},
		{"loop-be/ipv4", LinkLoop, nullBytes(afInet, true, ip4), false},
		{"loop-le/ipv6", LinkLoop, nullBytes(afInet6BSD, false, ip6), true},
		{"ipv4/options", LinkRaw, ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, []byte{1, 1, 1, 0, 0x94, 4, 0, 0}, tcpBytes(s4)), false},
		{"ipv6/hbh", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6), hbh(ipv6HopByHop, 1)), true},
		{"ipv6/hbh-routing-dest", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6),
			hbh(ipv6HopByHop, 2), hbh(ipv6Routing, 3), hbh(ipv6DestOpts, 1)), true},
		{"ipv6/ah", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6), ahHdr()), true},
		{"ipv6/atomic-fragment", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6), fragHdr(0, false)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			Decode(tt.lt, tt.data, 0, &p)
			if p.Status != StatusTCP {
				t.Fatalf("status %v, want tcp", p.Status)
			}
			src, dst, ver := cli4, srv4, uint8(4)
			if tt.v6 {
				src, dst, ver = cli6, srv6, 6
			}
			if p.Src != src || p.Dst != dst || p.IPVersion != ver {
				t.Errorf("got %v > %v v%d, want %v > %v v%d", p.Src, p.Dst, p.IPVersion, src, dst, ver)
			}
			if p.Seq != 1000 || p.Ack != 2000 || p.Flags != FlagACK|FlagPSH || p.Window != 64240 {
				t.Errorf("seq %d ack %d flags %#x win %d", p.Seq, p.Ack, p.Flags, p.Window)
			}
			if p.PayloadLen != 5 || string(p.Payload) != "hello" {
				t.Errorf("payload %d %q", p.PayloadLen, p.Payload)
			}
			if len(p.Options) != 1 || !p.Options[0].Valid(options.SubtypeDSS) {
				t.Fatalf("options %+v", p.Options)
			}
			if d := p.Options[0].DSS(); d.DSN != 0x1000 || d.DataAck != 0x01020304 || d.DataLen != 5 {
				t.Errorf("dss %+v", d)
			}
			if p.FirstFragment {
				t.Error("FirstFragment set")
			}
		})
	}
}

func TestDecodeNotTCP(t *testing.T) {
	s4, s6 := dataSeg(cli4, srv4), dataSeg(cli6, srv6)
	seg4, seg6 := tcpBytes(s4), tcpBytes(s6)
	ip4 := ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, nil, seg4)
	ip6 := ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, seg6)
	mod := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	// Fragments: offset 185*8 in IPv4, and MF on a first fragment.
	frag4 := mod(ip4, func(b []byte) { binary.BigEndian.PutUint16(b[6:], 185) })
	tests := []struct {
		name string
		lt   LinkType
		data []byte
		want Status
		wire int // length on the wire, when longer than data
	}{
		{"unsupported link", 147, ip4, StatusUnsupportedLink, 0},
		{"arp", LinkEthernet, ethBytes(0x0806, make([]byte, 28)), StatusNotIP, 0},
		{"802.3 length", LinkEthernet, ethBytes(100, ip4), StatusNotIP, 0},
		{"too many vlans", LinkEthernet, ethBytes(etherTypeIPv4, ip4, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN,
			etherTypeVLAN, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN), StatusMalformed, 0},
		{"null unknown family", LinkNull, nullBytes(7, false, ip4), StatusNotIP, 0},
		{"raw version 5", LinkRaw, mod(ip4, func(b []byte) { b[0] = 0x55 }), StatusNotIP, 0},
		{"228 with ipv6", LinkIPv4, ip6, StatusMalformed, 0},
		{"229 with ipv4", LinkIPv6, ip4, StatusMalformed, 0},
		{"udp", LinkRaw, ipv4Bytes(cli4.Addr(), srv4.Addr(), 17, nil, make([]byte, 8)), StatusNotTCP, 0},
		{"ipv6 udp", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), 17, make([]byte, 8)), StatusNotTCP, 0},
		{"ipv6 esp", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), 50, make([]byte, 24)), StatusNotTCP, 0},
		{"ipv6 no next header", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipv6NoNext, nil), StatusNotTCP, 0},
		{"ipv4 later fragment", LinkRaw, frag4, StatusFragment, 0},
		{"ipv6 later fragment", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, seg6, fragHdr(185, false)), StatusFragment, 0},
		{"ihl 4", LinkRaw, mod(ip4, func(b []byte) { b[0] = 0x44 }), StatusMalformed, 0},
		{"ihl 0", LinkRaw, mod(ip4, func(b []byte) { b[0] = 0x40 }), StatusMalformed, 0},
		{"ihl beyond capture", LinkRaw, mod(ip4, func(b []byte) { b[0] = 0x4f })[:58], StatusTruncated, 0},
		{"ipv4 total < ihl", LinkRaw, mod(ip4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 19) }), StatusMalformed, 0},
		{"ipv4 total < tcp header", LinkRaw, mod(ip4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 30) }), StatusMalformed, 0},
		{"data offset 4", LinkRaw, mod(ip4, func(b []byte) { b[20+12] = 4 << 4 }), StatusMalformed, 0},
		{"data offset past segment", LinkRaw, mod(ip4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 20+24) }), StatusMalformed, 0},
		{"tcp header cut", LinkRaw, ip4[:20+30], StatusTruncated, len(ip4)},
		{"ipv4 header cut", LinkRaw, ip4[:19], StatusTruncated, 0},
		{"ipv6 header cut", LinkRaw, ip6[:39], StatusTruncated, 0},
		{"ipv6 ext header cut", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, seg6, hbh(ipv6HopByHop, 4))[:41], StatusTruncated, 200},
		{"ipv6 ext header past packet", LinkRaw, mod(ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, seg6, hbh(ipv6HopByHop, 1)),
			func(b []byte) { b[41] = 200 }), StatusMalformed, 0},
		{"ipv6 too many ext headers", LinkRaw, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, seg6,
			hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1),
			hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1),
			hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1),
			hbh(ipv6DestOpts, 1), hbh(ipv6DestOpts, 1)), StatusMalformed, 0},
		{"ipv6 version 4", LinkIPv6, mod(ip6, func(b []byte) { b[0] = 0x40 }), StatusMalformed, 0},
		{"empty", LinkEthernet, nil, StatusTruncated, 0},
		{"sll cut", LinkLinuxSLL, make([]byte, 15), StatusTruncated, 0},
		{"sll2 cut", LinkLinuxSLL2, make([]byte, 19), StatusTruncated, 0},
		{"null cut", LinkNull, make([]byte, 3), StatusTruncated, 0},
		{"vlan cut", LinkEthernet, ethBytes(etherTypeVLAN, []byte{0, 1}), StatusTruncated, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			Decode(tt.lt, tt.data, tt.wire, &p)
			if p.Status != tt.want {
				t.Fatalf("status %v, want %v", p.Status, tt.want)
			}
			if len(p.Options) != 0 || p.Src.IsValid() || p.Payload != nil {
				t.Errorf("fields set on a non-TCP frame: %+v", p)
			}
		})
	}
}

// Every prefix of a valid frame of every link type decodes without panic,
// and a prefix that holds the headers decodes as TCP with a short payload.
func TestDecodeTruncationSweep(t *testing.T) {
	s4, s6 := dataSeg(cli4, srv4), dataSeg(cli6, srv6)
	frames := map[LinkType][]byte{
		LinkEthernet:  frame6(s6),
		LinkLinuxSLL2: sll2Bytes(etherTypeIPv4, ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, nil, tcpBytes(s4))),
		LinkRaw:       ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6), hbh(ipv6HopByHop, 1), fragHdr(0, false)),
		LinkNull:      nullBytes(afInet, false, ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, nil, tcpBytes(s4))),
	}
	for lt, f := range frames {
		hdr := len(f) - len(s4.payload)
		for n := 0; n <= len(f); n++ {
			var p Packet
			Decode(lt, f[:n], len(f), &p)
			switch {
			case n >= hdr:
				if p.Status != StatusTCP || p.PayloadLen != 5 || len(p.Payload) != n-hdr || len(p.Options) != 1 {
					t.Errorf("link %d prefix %d: %v payload %d/%d options %d", lt, n, p.Status, len(p.Payload), p.PayloadLen, len(p.Options))
				}
			case p.Status != StatusTruncated:
				t.Errorf("link %d prefix %d: %v, want truncated", lt, n, p.Status)
			}
		}
	}
}

// The segment context comes from the IP lengths, not from what was
// captured: an MP_CAPABLE of length 22 on a data segment whose payload the
// snap length cut is well formed.
func TestDecodeContextFromIPLength(t *testing.T) {
	mpc := options.MPCapable{Variant: options.CapableData, Version: 1, Flags: 1, SenderKey: 1, ReceiverKey: 2, DataLen: 1000}
	s := tcpSeg{src: cli4, dst: srv4, flags: FlagACK, opts: mpc.Append(nil), payload: make([]byte, 1000)}
	f := frame4(s)
	var p Packet
	Decode(LinkEthernet, f[:14+20+20+24], len(f), &p)
	if p.Status != StatusTCP || p.PayloadLen != 1000 || len(p.Payload) != 0 {
		t.Fatalf("status %v payload %d/%d", p.Status, len(p.Payload), p.PayloadLen)
	}
	if len(p.Options) != 1 || !p.Options[0].Valid(options.SubtypeMPCapable) || p.Options[0].MPCapable().DataLen != 1000 {
		t.Fatalf("options %+v", p.Options)
	}
	if p.Context() != options.ContextACK|options.ContextPayload {
		t.Errorf("context %v", p.Context())
	}
	// The same option on a segment without payload is malformed.
	s.payload = nil
	Decode(LinkEthernet, frame4(s), 0, &p)
	if len(p.Options) != 1 || !p.Options[0].Malformed {
		t.Fatalf("options %+v", p.Options)
	}
}

// An IP length of zero (TSO and BIG TCP super-packets captured on the
// sender, IPv6 jumbograms) is taken from the frame length.
func TestDecodeZeroIPLength(t *testing.T) {
	s4, s6 := dataSeg(cli4, srv4), dataSeg(cli6, srv6)
	f4, f6 := frame4(s4), frame6(s6)
	binary.BigEndian.PutUint16(f4[14+2:], 0)
	binary.BigEndian.PutUint16(f6[14+4:], 0)
	for _, f := range [][]byte{f4, f6} {
		var p Packet
		Decode(LinkEthernet, f[:len(f)-2], len(f), &p)
		if p.Status != StatusTCP || p.PayloadLen != 5 || len(p.Payload) != 3 {
			t.Errorf("status %v payload %d/%d", p.Status, len(p.Payload), p.PayloadLen)
		}
	}
}

func TestDecodeFirstFragment(t *testing.T) {
	s4, s6 := dataSeg(cli4, srv4), dataSeg(cli6, srv6)
	f4 := frame4(s4)
	binary.BigEndian.PutUint16(f4[14+6:], ipv4FlagMF)
	f6 := ethBytes(etherTypeIPv6, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6), fragHdr(0, true)))
	for _, f := range [][]byte{f4, f6} {
		var p Packet
		Decode(LinkEthernet, f, 0, &p)
		if p.Status != StatusTCP || !p.FirstFragment || len(p.Options) != 1 {
			t.Errorf("status %v first fragment %v options %d", p.Status, p.FirstFragment, len(p.Options))
		}
	}
}

func TestDecodeOptionWalk(t *testing.T) {
	dss := options.DSS{HasAck: true, DataAck: 7}.Append(nil) // 8 bytes
	prio := options.MPPrio{Backup: true}.Append(nil)         // 3 bytes
	tests := []struct {
		name   string
		area   []byte
		n      int                // options found
		status options.WalkStatus // how the walk ended
		last   string             // AppendOptionText of the last option
	}{
		{"two options", append(append([]byte{1}, dss...), prio...), 2, options.WalkOK, "prio backup"},
		{"eol stops", append([]byte{0}, dss...), 0, options.WalkOK, ""},
		{"mptcp past area", []byte{30, 12, 0x20, 1, 0, 0}, 1, options.WalkTruncated, "dss malformed len 12"},
		{"mptcp length 2", append([]byte{30, 2}, dss...), 1, options.WalkBadLength, "malformed len 2"},
		{"mptcp kind alone", []byte{1, 1, 1, 30}, 1, options.WalkTruncated, "malformed"},
		{"other past area", append(append([]byte(nil), dss...), 8, 10, 0), 1, options.WalkTruncated, "dss ack 7"},
		{"other length 1", append(append([]byte(nil), dss...), 8, 1, 0, 0), 1, options.WalkBadLength, "dss ack 7"},
		{"unknown subtype", []byte{30, 4, 0x90, 0}, 1, options.WalkOK, "unknown subtype 9 len 4"},
		{"experimental", []byte{30, 4, 0xf0, 0}, 1, options.WalkOK, "experimental len 4"},
		{"dss bad length", []byte{30, 5, 0x20, 0, 0}, 1, options.WalkOK, "dss malformed len 5"},
		{"thirteen prio", bytes.Repeat(prio, 13), 13, options.WalkOK, "prio backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			p.parseOptions(tt.area, options.ContextACK)
			if len(p.Options) != tt.n || p.OptionStatus != tt.status {
				t.Fatalf("%d options, status %v; want %d, %v", len(p.Options), p.OptionStatus, tt.n, tt.status)
			}
			if tt.n > 0 {
				if got := string(AppendOptionText(nil, &p.Options[tt.n-1])); got != tt.last {
					t.Errorf("last option %q, want %q", got, tt.last)
				}
			}
		})
	}
}

func TestDecodeAllocs(t *testing.T) {
	f6 := ethBytes(etherTypeIPv6, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(dataSeg(cli6, srv6)), hbh(ipv6HopByHop, 1)))
	f4 := sll2Bytes(etherTypeIPv4, ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, nil, tcpBytes(dataSeg(cli4, srv4))))
	var p Packet
	var out []byte
	allocs := testing.AllocsPerRun(100, func() {
		Decode(LinkEthernet, f6, 0, &p)
		out = AppendJSON(out[:0], &p, 0)
		out = AppendText(out[:0], &p, 0)
		Decode(LinkLinuxSLL2, f4, 0, &p)
		out = AppendJSON(out[:0], &p, 0)
		out = AppendText(out[:0], &p, 0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame, want 0", allocs)
	}
}
