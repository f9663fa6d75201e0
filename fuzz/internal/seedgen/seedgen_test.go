package main

import (
	"encoding/binary"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// naiveDSSSum is RFC 1071 the slow, obvious way over pseudo-header
// {DSN, subflow sequence, data-level length, checksum} and payload
// (RFC 8684 §3.3.1), folded, not complemented.
func naiveDSSSum(dsn uint64, ssn uint32, dataLen, csum uint16, payload []byte) uint16 {
	buf := make([]byte, 16, 17+len(payload))
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

// TestCaptureDSSChecksums checks that the checksums the FuzzDSSChecksum
// seeds carry are real: options.DSSChecksum and a naive sum both verify
// every DSS mapping Linux sent in v1-checksum that covers one wholly
// captured segment.
func TestCaptureDSSChecksums(t *testing.T) {
	var s options.Segment
	n := 0
	segs, err := loadCaptures("../../../testdata/captures")
	if err != nil {
		t.Skip(err)
	}
	for _, cs := range segs {
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
