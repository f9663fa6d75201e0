package emu

import (
	"bytes"
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	optMSS       = []byte{header.TCPOptionMSS, 4, 0x05, 0xb4}
	optSACKPerm  = []byte{header.TCPOptionSACKPermitted, 2}
	optWS        = []byte{header.TCPOptionWS, 3, 7}
	optTimestamp = []byte{header.TCPOptionTS, 10, 1, 2, 3, 4, 5, 6, 7, 8}
)

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// stripSegments is one segment of each Strip class, each carrying MPTCP
// options among ordinary ones, as a handshake and transfer would.
func stripSegments(v6 bool) map[Strip]seg {
	return map[Strip]seg{
		StripSYN: {v6: v6, flags: header.TCPFlagSyn,
			options: cat(optMSS, optSACKPerm, optTimestamp, optWS, mptcpOpt(4))},
		StripSYNACK: {v6: v6, flags: header.TCPFlagSyn | header.TCPFlagAck,
			options: cat(optMSS, mptcpOpt(12), optSACKPerm, optWS)},
		StripData: {v6: v6, flags: header.TCPFlagAck | header.TCPFlagPsh, seq: 1000,
			options: cat([]byte{1, 1}, optTimestamp, mptcpOpt(16)), payload: []byte("hello, middlebox")},
		StripOther: {v6: v6, flags: header.TCPFlagAck,
			options: cat(mptcpOpt(8), []byte{1, 1}, optTimestamp, mptcpOpt(8))},
	}
}

// nopMPTCP returns the options of s with every MPTCP option turned into NOPs,
// what a stripping middlebox should produce.
func nopMPTCP(s seg) seg {
	o := append([]byte(nil), s.options...)
	for i := 0; i < len(o); {
		switch o[i] {
		case header.TCPOptionNOP:
			i++
			continue
		}
		n := int(o[i+1])
		if o[i] == optionMPTCP {
			for j := i; j < i+n; j++ {
				o[j] = header.TCPOptionNOP
			}
		}
		i += n
	}
	s.options = o
	return s
}

// equalButChecksum compares two IP packets, ignoring the TCP checksum field.
func equalButChecksum(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	t, ok := locateTCP(a)
	if !ok {
		return bytes.Equal(a, b)
	}
	c := t.off + header.TCPChecksumOffset
	return bytes.Equal(a[:c], b[:c]) && bytes.Equal(a[c+2:], b[c+2:])
}

func TestStripModes(t *testing.T) {
	modes := []Strip{StripNone, StripSYN, StripSYNACK, StripData, StripOther, StripSYN | StripSYNACK, StripAll}
	classes := []Strip{StripSYN, StripSYNACK, StripData, StripOther}
	for _, v6 := range []bool{false, true} {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("%v/v6=%v", mode, v6), func(t *testing.T) {
				l, clk, _, capB := fakeLink(t, Config{Strip: mode}, Config{})
				segs := stripSegments(v6)
				for _, c := range classes {
					inject(t, l.A(), buildTCP(segs[c]))
				}
				clk.Advance(0)
				got := capB.wait(t, len(classes))
				wantStripped := 0
				for i, c := range classes {
					in := buildTCP(segs[c])
					want := in
					if mode&c != 0 {
						want = buildTCP(nopMPTCP(segs[c]))
						wantStripped++
					}
					if !equalButChecksum(got[i].b, want) {
						t.Errorf("%v segment:\n got %x\nwant %x", c, got[i].b, want)
					}
					if !tcpChecksumOK(t, got[i].b) {
						t.Errorf("%v segment: TCP checksum invalid after strip", c)
					}
					if mode&c == 0 && !bytes.Equal(got[i].b, in) {
						t.Errorf("%v segment changed though not selected", c)
					}
				}
				if s := l.Stats(AToB); s.Stripped != uint64(wantStripped) {
					t.Errorf("Stripped = %d, want %d", s.Stripped, wantStripped)
				}
			})
		}
	}
}

// TestStripToggle switches stripping on and off under a running flow, as the
// stack's fallback tests do.
func TestStripToggle(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{}, Config{})
	data := stripSegments(false)[StripData]
	send := func() []byte {
		t.Helper()
		n := len(capB.packets())
		inject(t, l.A(), buildTCP(data))
		clk.Advance(0)
		return capB.wait(t, n+1)[n].b
	}
	orig, stripped := buildTCP(data), buildTCP(nopMPTCP(data))
	for i, step := range []struct {
		strip Strip
		want  []byte
	}{{StripNone, orig}, {StripAll, stripped}, {StripNone, orig}, {StripData, stripped}, {StripSYNACK, orig}} {
		if i%2 == 0 {
			c := l.Config(AToB)
			c.Strip = step.strip
			if err := l.SetConfig(AToB, c); err != nil {
				t.Fatal(err)
			}
		} else if err := l.Update(AToB, func(c *Config) { c.Strip = step.strip }); err != nil {
			t.Fatal(err)
		}
		if got := send(); !equalButChecksum(got, step.want) || !tcpChecksumOK(t, got) {
			t.Errorf("step %d (strip=%v): got %x, want %x", i, step.strip, got, step.want)
		}
	}
	if got := l.Stats(AToB).Stripped; got != 2 {
		t.Errorf("Stripped = %d, want 2", got)
	}
}

// TestStripWalk checks the option walk on edge cases against what Linux's
// TCPOPTSTRIP does: stop at EOL and at the first malformed length.
func TestStripWalk(t *testing.T) {
	cases := []struct {
		name      string
		opts      []byte
		want      []byte
		wantStrip bool
	}{
		{"only mptcp", []byte{30, 4, 0, 0x81}, []byte{1, 1, 1, 1}, true},
		{"two", []byte{30, 4, 0x20, 1, 30, 4, 0x20, 2}, []byte{1, 1, 1, 1, 1, 1, 1, 1}, true},
		{"after nops", []byte{1, 1, 30, 6, 0x20, 1, 2, 3}, []byte{1, 1, 1, 1, 1, 1, 1, 1}, true},
		{"none", cat(optMSS, optWS, []byte{1}), cat(optMSS, optWS, []byte{1}), false},
		{"after eol", []byte{0, 0, 30, 2}, []byte{0, 0, 30, 2}, false},
		{"zero length before", []byte{8, 0, 30, 2}, []byte{8, 0, 30, 2}, false},
		{"overlong", []byte{30, 9, 0, 0}, []byte{30, 9, 0, 0}, false},
		{"truncated kind", []byte{1, 1, 1, 30}, []byte{1, 1, 1, 30}, false},
		{"mptcp then bad", []byte{30, 2, 99, 0}, []byte{1, 1, 99, 0}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := buildTCP(seg{flags: header.TCPFlagAck, options: tc.opts, payload: []byte("x")})
			tcp := header.TCP(b[header.IPv4MinimumSize:])
			if got := stripMPTCP(tcp); got != tc.wantStrip {
				t.Errorf("stripMPTCP = %v, want %v", got, tc.wantStrip)
			}
			if got := []byte(tcp.Options()); !bytes.Equal(got, tc.want) {
				t.Errorf("options %x, want %x", got, tc.want)
			}
			if !tcpChecksumOK(t, b) {
				t.Error("checksum invalid")
			}
		})
	}
}

// TestSenderBytesUntouched checks that modifying impairments work on a copy:
// the sender's packet (which its retransmission queue shares) is unchanged.
func TestSenderBytesUntouched(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{Strip: StripAll, Corrupt: 1, Rewrite: 1}, Config{})
	b := buildTCP(stripSegments(true)[StripData])
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	defer pkt.DecRef()
	var list stack.PacketBufferList
	list.PushBack(pkt.IncRef())
	l.A().WritePackets(list)
	list.DecRef()
	clk.Advance(0)
	got := capB.wait(t, 1)[0].b
	if bytes.Equal(got, b) {
		t.Fatal("delivered packet not modified")
	}
	if v := pkt.ToView(); !bytes.Equal(v.AsSlice(), b) {
		t.Errorf("sender's packet modified:\n got %x\nwant %x", v.AsSlice(), b)
	}
}

func TestLocateTCPTruncated(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		b := buildTCP(stripSegments(v6)[StripData])
		if _, ok := locateTCP(b); !ok {
			t.Fatalf("v6=%v: full packet not parsed", v6)
		}
		for n := 0; n < len(b); n++ {
			if _, ok := locateTCP(b[:n]); ok {
				t.Errorf("v6=%v: prefix of %d bytes parsed as TCP", v6, n)
			}
		}
	}
}

func TestStripNoAllocs(t *testing.T) {
	b := buildTCP(stripSegments(false)[StripData])
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	orig := append([]byte(nil), b...)
	allocs := testing.AllocsPerRun(100, func() {
		copy(b, orig)
		if _, ok := locateTCP(b); !ok {
			t.Fatal("not TCP")
		}
		stripMPTCP(tcp)
		rewritePayload(tcp, int(tcp.DataOffset()), 0, 0x55)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
}
