package emu

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/bits"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// diff returns the positions where a and b (equal length) differ and the
// number of differing bits.
func diff(a, b []byte) (pos []int, nbits int) {
	for i := range a {
		if a[i] != b[i] {
			pos = append(pos, i)
			nbits += bits.OnesCount8(a[i] ^ b[i])
		}
	}
	return pos, nbits
}

// TestCorruptRewritePackets checks the two payload impairments on single
// segments: corrupt flips exactly one payload bit and leaves the checksum
// wrong; rewrite changes exactly one payload byte and fixes the checksum.
// Payload lengths cover the odd last byte, which the checksum pads.
func TestCorruptRewritePackets(t *testing.T) {
	for _, kind := range []string{"corrupt", "rewrite"} {
		for _, v6 := range []bool{false, true} {
			for _, n := range []int{1, 2, 3, 7, 100, 1400} {
				cfg := Config{Seed: uint64(n)}
				if kind == "corrupt" {
					cfg.Corrupt = 1
				} else {
					cfg.Rewrite = 1
				}
				l, clk, _, capB := fakeLink(t, cfg, Config{})
				payload := bytes.Repeat([]byte{0x5a}, n)
				var sent [][]byte
				for i := range 20 {
					s := seg{v6: v6, flags: header.TCPFlagAck, seq: uint32(i * n), options: optTimestamp, payload: payload}
					sent = append(sent, buildTCP(s))
				}
				inject(t, l.A(), sent...)
				clk.Advance(0)
				got := capB.wait(t, len(sent))
				for i := range sent {
					pos, nbits := diff(sent[i], got[i].b)
					tinfo, _ := locateTCP(sent[i])
					payloadStart := tinfo.off + tinfo.hdrLen
					csumAt := tinfo.off + header.TCPChecksumOffset
					var inPayload []int
					for _, p := range pos {
						if p >= payloadStart {
							inPayload = append(inPayload, p)
						} else if p != csumAt && p != csumAt+1 {
							t.Fatalf("%s n=%d: header byte %d changed", kind, n, p)
						}
					}
					if len(inPayload) != 1 {
						t.Fatalf("%s n=%d v6=%v: %d payload bytes changed, want 1", kind, n, v6, len(inPayload))
					}
					ok := tcpChecksumOK(t, got[i].b)
					switch kind {
					case "corrupt":
						if nbits != 1 || ok {
							t.Errorf("corrupt n=%d: %d bits flipped, checksum valid %v; want 1 bit, invalid", n, nbits, ok)
						}
					case "rewrite":
						if !ok {
							t.Errorf("rewrite n=%d: checksum invalid", n)
						}
					}
				}
				s := l.Stats(AToB)
				if kind == "corrupt" && s.Corrupted != 20 || kind == "rewrite" && s.Rewritten != 20 {
					t.Errorf("%s: stats %+v", kind, s)
				}
			}
		}
	}
}

// TestCorruptSkipsPayloadless checks that segments without payload (and
// packets that are not TCP) pass untouched even at probability 1.
func TestCorruptSkipsPayloadless(t *testing.T) {
	l, clk, _, capB := fakeLink(t, Config{Corrupt: 1, Rewrite: 1}, Config{})
	ack := buildTCP(seg{flags: header.TCPFlagAck, options: optTimestamp})
	notTCP := buildTCP(seg{flags: header.TCPFlagAck, payload: []byte("abc")})
	notTCP[9] = uint8(header.UDPProtocolNumber) // still a valid-looking IPv4 packet
	inject(t, l.A(), ack, notTCP)
	clk.Advance(0)
	got := capB.wait(t, 2)
	if !bytes.Equal(got[0].b, ack) || !bytes.Equal(got[1].b, notTCP) {
		t.Errorf("payload-less or non-TCP packet modified")
	}
}

// readAll reads the whole stream from server and returns it, with the writer
// running on client.
func sendAndRead(t *testing.T, client, server io.ReadWriteCloser, data []byte) []byte {
	t.Helper()
	go func() {
		client.Write(data)
		client.Close()
	}()
	var got bytes.Buffer
	if _, err := io.Copy(&got, server); err != nil {
		t.Fatalf("read: %v", err)
	}
	return got.Bytes()
}

// TestCorruptCaughtByTCP: the receiving stack counts checksum errors and the
// data still arrives intact (TCP retransmits what it dropped).
func TestCorruptCaughtByTCP(t *testing.T) {
	l, p := newLinkPair(t, Config{Corrupt: 0.02, Seed: 1, Delay: time.Millisecond}, Config{})
	c, s := p.connect(t, false)
	transfer(t, c, s, 4<<20, 3)
	st := l.Stats(AToB)
	errs := p.b.Stats().TCP.ChecksumErrors.Value()
	if st.Corrupted == 0 || errs == 0 {
		t.Fatalf("corrupted %d segments, receiver counted %d checksum errors; want both > 0", st.Corrupted, errs)
	}
	if errs != st.Corrupted {
		t.Errorf("receiver counted %d checksum errors for %d corrupted segments", errs, st.Corrupted)
	}
}

// TestRewriteNotCaughtByTCP: rewritten payload passes TCP (valid checksum, no
// checksum error) and reaches the application changed, one byte per
// rewritten segment. This is the damage the MPTCP DSS checksum exists for.
func TestRewriteNotCaughtByTCP(t *testing.T) {
	l, p := newLinkPair(t, Config{Rewrite: 0.01, Seed: 2}, Config{})
	c, s := p.connect(t, false)
	data := make([]byte, 4<<20)
	newRandReader(9).Read(data)
	got := sendAndRead(t, c, s, data)
	if len(got) != len(data) {
		t.Fatalf("received %d bytes, want %d", len(got), len(data))
	}
	pos, _ := diff(data, got)
	st := l.Stats(AToB)
	if errs := p.b.Stats().TCP.ChecksumErrors.Value(); errs != 0 {
		t.Errorf("receiver counted %d checksum errors; rewrite must fix the checksum", errs)
	}
	if st.Rewritten == 0 || uint64(len(pos)) != st.Rewritten {
		t.Errorf("%d bytes differ for %d rewritten segments; want equal and > 0", len(pos), st.Rewritten)
	}
	if sha256.Sum256(got) == sha256.Sum256(data) {
		t.Error("data arrived intact despite rewriting")
	}
}
