package decode

import (
	"bytes"
	"io"
	"testing"
)

// FuzzDecode: any bytes of any link type decode without panic, and what
// Decode reports stays inside the frame.
func FuzzDecode(f *testing.F) {
	s4, s6 := dataSeg(cli4, srv4), dataSeg(cli6, srv6)
	f.Add(uint8(LinkEthernet), frame4(s4))
	f.Add(uint8(LinkEthernet), frame6(s6))
	f.Add(uint8(LinkRaw), ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6), hbh(ipv6HopByHop, 1), fragHdr(0, true), ahHdr()))
	f.Add(uint8(LinkLinuxSLL), sllBytes(etherTypeVLAN, append([]byte{0, 7, 8, 0}, ipv4Bytes(cli4.Addr(), srv4.Addr(), ipProtoTCP, []byte{1, 1, 1, 0}, tcpBytes(s4))...)))
	f.Add(uint8(LinkNull), nullBytes(afInet6Darwin, false, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(s6))))
	for _, fr := range scenario("").frames {
		f.Add(uint8(LinkEthernet), fr)
	}
	f.Fuzz(func(t *testing.T, lt uint8, data []byte) {
		var p Packet
		link := LinkType(lt)
		if lt == 255 {
			link = LinkLinuxSLL2
		}
		Decode(link, data, 0, &p)
		if p.Status != StatusTCP {
			if len(p.Options) != 0 || p.Payload != nil {
				t.Fatalf("status %v with fields set", p.Status)
			}
			return
		}
		if len(p.Payload) > p.PayloadLen || p.PayloadLen < 0 || len(p.Options) > maxOptions {
			t.Fatalf("payload %d/%d, %d options", len(p.Payload), p.PayloadLen, len(p.Options))
		}
		for i := range p.Options {
			AppendText(nil, &p, i)
			AppendJSON(nil, &p, i)
		}
	})
}

// FuzzAnalyze: any capture file reads and analyzes without panic.
func FuzzAnalyze(f *testing.F) {
	file, _ := benchCapture(f)
	f.Add(file)
	f.Add(pcapngFile(f, []LinkType{LinkEthernet, LinkRaw}, ngFrame{0, frame4(dataSeg(cli4, srv4))}, ngFrame{1, ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(dataSeg(cli6, srv6)))}))
	f.Fuzz(func(t *testing.T, file []byte) {
		res, err := Analyze(bytes.NewReader(file), Limits{MaxSubflows: 16, MaxConnections: 8, MaxMismatches: 16})
		if err == io.EOF {
			t.Fatal("io.EOF leaked")
		}
		if len(res.Mismatches) > 16 {
			t.Fatalf("%d mismatches listed", len(res.Mismatches))
		}
		res.WriteText(io.Discard)
		res.WriteJSON(io.Discard)
	})
}
