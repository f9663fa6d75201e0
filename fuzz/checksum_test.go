package fuzz

import (
	"encoding/binary"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// naiveDSSSum is RFC 1071 done the slow, obvious way over the DSS checksum's
// input laid out in one buffer (RFC 8684 §3.3.1): the pseudo-header {DSN as
// 64 bits, subflow sequence number, data-level length, checksum field}
// followed by the whole payload, summed as 16-bit big-endian words with an
// odd last byte padded with zero, carries folded back in. It returns the
// folded sum, not complemented.
func naiveDSSSum(dsn uint64, ssn uint32, dataLen, csum uint16, payload []byte) uint16 {
	buf := make([]byte, 16, 16+len(payload)+1)
	binary.BigEndian.PutUint64(buf[0:], dsn)
	binary.BigEndian.PutUint32(buf[8:], ssn)
	binary.BigEndian.PutUint16(buf[12:], dataLen)
	binary.BigEndian.PutUint16(buf[14:], csum)
	buf = append(buf, payload...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var sum uint32
	for i := 0; i < len(buf); i += 2 {
		sum += uint32(buf[i])<<8 | uint32(buf[i+1])
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// FuzzDSSChecksum splits a payload at arbitrary points and feeds the pieces
// to options.DSSChecksum, some through Add, some through AddPartial with
// PartialSum (as a stack that reuses the TCP checksum's sum would). The
// result must equal the naive RFC 1071 sum over pseudo-header and whole
// payload, and Verify must agree with the naive check for the right
// checksum and for an arbitrary other one.
func FuzzDSSChecksum(f *testing.F) {
	var c options.DSSChecksum // reused across inputs through Reset
	f.Fuzz(func(t *testing.T, payload, cuts []byte, dsn uint64, ssn uint32, dataLen, other uint16) {
		c.Reset()
		rest := payload
		for _, cut := range cuts {
			n := min(int(cut&0x7f), len(rest))
			if cut&0x80 != 0 {
				c.AddPartial(options.PartialSum(rest[:n]), n)
			} else {
				c.Add(rest[:n])
			}
			rest = rest[n:]
		}
		c.Add(rest)

		want := ^naiveDSSSum(dsn, ssn, dataLen, 0, payload)
		got := c.Sum(dsn, ssn, dataLen)
		if got != want {
			t.Fatalf("Sum = %#04x, naive %#04x (payload %d bytes, cuts %x)", got, want, len(payload), cuts)
		}
		if !c.Verify(dsn, ssn, dataLen, got) {
			t.Fatalf("Verify rejects its own Sum %#04x", got)
		}
		wantOK := naiveDSSSum(dsn, ssn, dataLen, other, payload) == 0xffff
		if ok := c.Verify(dsn, ssn, dataLen, other); ok != wantOK {
			t.Fatalf("Verify(%#04x) = %v, naive %v (right sum %#04x)", other, ok, wantOK, got)
		}
		var whole options.DSSChecksum
		whole.Add(payload)
		if s := whole.Sum(dsn, ssn, dataLen); s != got {
			t.Fatalf("one Add gives %#04x, pieces %#04x", s, got)
		}
		if p, n := options.PartialSum(payload), naiveDSSSum(0, 0, 0, 0, payload); p != n && !(p == 0xffff && n == 0) && !(p == 0 && n == 0xffff) {
			t.Fatalf("PartialSum = %#04x, naive %#04x", p, n)
		}
	})
}

// TestCaptureDSSChecksums checks options.DSSChecksum and the naive sum of
// FuzzDSSChecksum against the checksums Linux computed: every DSS mapping
// of v1-checksum that covers one wholly captured segment must verify.
func TestCaptureDSSChecksums(t *testing.T) {
	var s options.Segment
	n := 0
	for _, cs := range loadCaptures(t) {
		if cs.file != "v1-checksum.pcap" || !cs.complete {
			continue
		}
		hdr := int(cs.seg[12]>>4) * 4
		payload := cs.seg[hdr:]
		s.Parse(cs.seg[20:hdr], options.ContextOf(cs.seg[13], len(payload)))
		o := s.Find(options.SubtypeDSS)
		if o == nil || len(payload) == 0 {
			continue
		}
		d := o.DSS()
		if !d.HasMapping || !d.HasChecksum || !d.DSN64 || int(d.DataLen) != len(payload) {
			continue
		}
		var c options.DSSChecksum
		c.Add(payload)
		if !c.Verify(d.DSN, d.SubflowSeq, d.DataLen, d.Checksum) || c.Sum(d.DSN, d.SubflowSeq, d.DataLen) != d.Checksum {
			t.Errorf("frame %d: Linux sent %#04x, we compute %#04x", cs.index, d.Checksum, c.Sum(d.DSN, d.SubflowSeq, d.DataLen))
		}
		if naiveDSSSum(d.DSN, d.SubflowSeq, d.DataLen, d.Checksum, payload) != 0xffff {
			t.Errorf("frame %d: the naive sum does not verify Linux's checksum", cs.index)
		}
		n++
	}
	if n == 0 {
		t.Skip("no wholly captured DSS mapping with a checksum in v1-checksum.pcap")
	}
	t.Logf("%d Linux DSS checksums verified", n)
}
