package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// mustGoOut lists the MPTCP subtypes Fit may never leave out: the handshake,
// every DSS (mapping and data ACK) and the options of a failure or reset.
func mustGoOut(st options.Subtype) bool {
	switch st {
	case options.SubtypeMPCapable, options.SubtypeMPJoin, options.SubtypeDSS,
		options.SubtypeMPFail, options.SubtypeMPFastClose, options.SubtypeMPTCPRst:
		return true
	}
	return false
}

func roundUp4(n int) int { return (n + 3) &^ 3 }

// maxSpecLen bounds FuzzFit's specs: 128 bytes build option lists several
// times the 40-byte option space, so longer ones explore nothing new.
const maxSpecLen = 128

// TestFitRejectsUnwalkableTCPOptions pins the fix of a bug FuzzFit found:
// Fit's fast path copied a TCP option area that does not walk in front of
// the MPTCP options, so a truncated option swallowed the DSS.
func TestFitRejectsUnwalkableTCPOptions(t *testing.T) {
	dss := options.DSS{HasAck: true, DataAck: 1}.Append(nil)
	for _, tcp := range [][]byte{
		{options.TCPOptionTimestamp},            // kind byte alone
		{options.TCPOptionTimestamp, 10, 0, 0},  // timestamp cut short: swallows the DSS
		{options.TCPOptionMSS, 1, 0x05, 0xb4},   // length below 2
		{options.TCPOptionSACK, 10, 0, 0, 0, 0}, // runs past the area
	} {
		out, _, err := options.Fit(nil, tcp, dss)
		if !errors.Is(err, options.ErrBadOptions) {
			t.Errorf("Fit(nil, %x, DSS) = %x, %v; want ErrBadOptions", tcp, out, err)
		}
	}
}

// FuzzFit builds a TCP option area and a list of MPTCP options from the
// fuzzer's bytes and checks options.Fit's promises: at most 40 bytes,
// a multiple of four, walkable; the non-SACK TCP options and every
// required MPTCP option kept byte for byte, in order ("never drops a
// mapping"); omitted naming exactly the options left out; SACK blocks trimmed
// only from the end; nothing left out when everything fits; ErrNoRoom only
// when the required options cannot fit; dst and the inputs untouched.
func FuzzFit(f *testing.F) {
	f.Fuzz(func(t *testing.T, tcpSpec, mptcpSpec []byte, dstLen uint8) {
		if len(tcpSpec) > maxSpecLen || len(mptcpSpec) > maxSpecLen {
			t.Skip("spec too long") // builds areas far past 40 bytes, and slows minimization (quadratic)
		}
		tcp := BuildTCPOptions(tcpSpec)
		mp := BuildMPTCPOptions(mptcpSpec)
		checkFit(t, tcp, mp, int(dstLen%8))
	})
}

func checkFit(t *testing.T, tcp, mp []byte, dstLen int) {
	tcpCopy := append([]byte(nil), tcp...)
	mpCopy := append([]byte(nil), mp...)
	dst := make([]byte, dstLen, dstLen+8)
	for i := range dst {
		dst[i] = 0xa5
	}
	dstCopy := append([]byte(nil), dst...)

	out, omitted, err := options.Fit(dst, tcp, mp)

	if !bytes.Equal(tcp, tcpCopy) || !bytes.Equal(mp, mpCopy) {
		t.Fatal("Fit modified its inputs")
	}
	if len(out) < dstLen || !bytes.Equal(out[:dstLen], dstCopy) {
		t.Fatalf("Fit changed dst's prefix: %x", out)
	}

	tcpOpts, tcpStatus := refWalk(tcp)
	mpOpts, mpStatus := refWalk(mp)
	var nonSACK [][]byte
	var sacks [][]byte
	var fixedLen, allLen, badSACK int
	for _, o := range tcpOpts {
		opt := tcp[o.off:o.end]
		allLen += len(opt)
		if o.kind == options.TCPOptionSACK {
			sacks = append(sacks, opt)
			if (len(opt)-2)%sackBlockLen != 0 {
				badSACK++
			}
			continue
		}
		nonSACK = append(nonSACK, opt)
		fixedLen += len(opt)
	}
	requiredLen, nonMPTCP := 0, false
	for _, o := range mpOpts {
		allLen += o.end - o.off
		if o.kind != options.Kind {
			nonMPTCP = true
			continue
		}
		if mustGoOut(options.Subtype(mp[o.off+2] >> 4)) {
			requiredLen += o.end - o.off
		}
	}

	if err != nil {
		if len(out) != dstLen {
			t.Fatalf("Fit returned %v and extended dst to %x", err, out)
		}
		switch {
		case errors.Is(err, options.ErrNoRoom):
			if roundUp4(fixedLen+requiredLen) <= options.MaxTCPOptionsLen {
				t.Fatalf("ErrNoRoom, but the TCP options (%d bytes) and the required MPTCP options (%d) fit: tcp %x mptcp %x",
					fixedLen, requiredLen, tcp, mp)
			}
		case errors.Is(err, options.ErrBadOptions):
			if tcpStatus == options.WalkOK && mpStatus == options.WalkOK && !nonMPTCP &&
				badSACK == 0 && len(sacks) <= 1 && len(mpOpts) <= options.MaxPerSegment {
				t.Fatalf("ErrBadOptions for walkable input: tcp %x mptcp %x", tcp, mp)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		return
	}

	if tcpStatus != options.WalkOK || mpStatus != options.WalkOK || nonMPTCP {
		t.Fatalf("Fit accepted input that does not walk (tcp %v, mptcp %v, non-MPTCP kind %v): tcp %x mptcp %x → %x",
			tcpStatus, mpStatus, nonMPTCP, tcp, mp, out[dstLen:])
	}
	area := out[dstLen:]
	if len(area) > options.MaxTCPOptionsLen || len(area)%4 != 0 {
		t.Fatalf("option area of %d bytes: %x", len(area), area)
	}
	outOpts, outStatus := refWalk(area)
	if outStatus != options.WalkOK {
		t.Fatalf("output does not walk (%v): %x", outStatus, area)
	}
	if omitted>>len(mpOpts) != 0 {
		t.Fatalf("omitted %b names options beyond the %d given", omitted, len(mpOpts))
	}

	// What must come out, SACK aside: the non-SACK TCP options, then the
	// MPTCP options not reported omitted, in order.
	want := append([][]byte(nil), nonSACK...)
	for i, o := range mpOpts {
		opt := mp[o.off:o.end]
		if omitted&(1<<i) != 0 {
			if mustGoOut(options.Subtype(opt[2] >> 4)) {
				t.Fatalf("required option %d (%x) left out", i, opt)
			}
			continue
		}
		want = append(want, opt)
	}
	var got, outSACK [][]byte
	for _, o := range outOpts {
		if o.kind == options.TCPOptionSACK {
			outSACK = append(outSACK, area[o.off:o.end])
			continue
		}
		got = append(got, area[o.off:o.end])
	}
	if len(got) != len(want) {
		t.Fatalf("output has %d options besides SACK, want %d: in tcp %x mptcp %x omitted %b → %x",
			len(got), len(want), tcp, mp, omitted, area)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("option %d is %x, want %x: in tcp %x mptcp %x omitted %b → %x", i, got[i], want[i], tcp, mp, omitted, area)
		}
	}

	// SACK: kept whole, or the one SACK option cut to its first blocks
	// (possibly none).
	sackWhole := len(outSACK) == len(sacks)
	for i := 0; sackWhole && i < len(sacks); i++ {
		sackWhole = bytes.Equal(outSACK[i], sacks[i])
	}
	allBlocks := sackWhole
	if !sackWhole {
		if len(sacks) != 1 || len(outSACK) > 1 {
			t.Fatalf("SACK options %x became %x", sacks, outSACK)
		}
		kept := 2 // none: as if an empty SACK option were kept
		if len(outSACK) == 1 {
			s := outSACK[0]
			if (len(s)-2)%sackBlockLen != 0 || len(s) > len(sacks[0]) || !bytes.Equal(s[:2], []byte{options.TCPOptionSACK, byte(len(s))}) ||
				!bytes.Equal(s[2:], sacks[0][2:len(s)]) {
				t.Fatalf("SACK %x is not a prefix of the blocks of %x", s, sacks[0])
			}
			kept = len(s)
		}
		allBlocks = kept == len(sacks[0])
	}

	// When everything fits, even laid out compactly, nothing is dropped.
	if roundUp4(allLen) <= options.MaxTCPOptionsLen && (omitted != 0 || !allBlocks) {
		t.Fatalf("%d bytes of options fit, yet omitted %b, SACK %x → %x: tcp %x mptcp %x",
			allLen, omitted, sacks, outSACK, tcp, mp)
	}
}
