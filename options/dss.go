package options

// DSS flag bits (RFC 8684 §3.3, Figure 9): the low five bits of the fourth
// byte; the three above them are reserved.
const (
	DSSFlagDataFIN  = 0x10 // F
	DSSFlagDSN64    = 0x08 // m: DSN is 8 bytes
	DSSFlagMapping  = 0x04 // M: mapping present
	DSSFlagAck64    = 0x02 // a: data ACK is 8 bytes
	DSSFlagAck      = 0x01 // A: data ACK present
	dssFlagMask     = 0x1f
	dssBaseLen      = 4
	dssChecksumLen  = 2
	dssMapTailLen   = 6 // subflow sequence number (4) + data-level length (2)
	DSSMaxLen       = dssBaseLen + 8 + 8 + dssMapTailLen + dssChecksumLen
	dssAck32Len     = 4
	dssAck64Len     = 8
	dssDSN32Len     = 4
	dssDSN64Len     = 8
	dssMapping64Len = dssDSN64Len + dssMapTailLen
)

// DSS is the Data Sequence Signal option (§3.3): a data ACK, a mapping of
// subflow bytes to data sequence numbers, or both, and the DATA_FIN flag.
//
// DataAck and DSN hold the values as on the wire: when Ack64 or DSN64 is
// false only their low 32 bits are meaningful and the receiver expands them
// (see ExpandSeq). SubflowSeq is relative to the subflow's initial sequence
// number (the first data byte is 1). A DataLen of 0 is the infinite mapping
// (§3.7). DataLen includes the DATA_FIN, which takes one data sequence number;
// a DATA_FIN with no data has SubflowSeq 0 and DataLen 1 (§3.3.3).
type DSS struct {
	// Fields ordered by size: a DSS is decoded and copied on every segment.
	DataAck     uint64
	DSN         uint64
	SubflowSeq  uint32
	DataLen     uint16
	Checksum    uint16
	DataFIN     bool
	HasAck      bool
	Ack64       bool
	HasMapping  bool
	DSN64       bool
	HasChecksum bool
}

// Flags returns the flags byte the option carries. (A pointer receiver
// that inlines: copying a DSS just decoded to call it stalled on the
// bytes its fields had just been stored as.)
func (d *DSS) Flags() uint8 {
	var f uint8
	if d.HasAck {
		f = DSSFlagAck
		if d.Ack64 {
			f |= DSSFlagAck64
		}
	}
	if d.HasMapping {
		f |= DSSFlagMapping
		if d.DSN64 {
			f |= DSSFlagDSN64
		}
	}
	if d.DataFIN {
		f |= DSSFlagDataFIN
	}
	return f
}

// Len returns the option's length on the wire.
func (d DSS) Len() int {
	l := dssBaseLen
	if d.HasAck {
		l += dssAck32Len
		if d.Ack64 {
			l += dssAck64Len - dssAck32Len
		}
	}
	if d.HasMapping {
		l += dssDSN32Len + dssMapTailLen
		if d.DSN64 {
			l += dssDSN64Len - dssDSN32Len
		}
		if d.HasChecksum {
			l += dssChecksumLen
		}
	}
	return l
}

// Append appends the option to b. Without HasMapping, DSN, SubflowSeq,
// DataLen and the checksum are not written.
func (d DSS) Append(b []byte) []byte {
	b = header(b, d.Len(), SubtypeDSS, 0)
	b = append(b, d.Flags())
	if d.HasAck {
		if d.Ack64 {
			b = append64(b, d.DataAck)
		} else {
			b = append32(b, uint32(d.DataAck))
		}
	}
	if d.HasMapping {
		if d.DSN64 {
			b = append64(b, d.DSN)
		} else {
			b = append32(b, uint32(d.DSN))
		}
		b = append32(b, d.SubflowSeq)
		b = append16(b, d.DataLen)
		if d.HasChecksum {
			b = append16(b, d.Checksum)
		}
	}
	return b
}

// InfiniteMapping reports whether the DSS carries the infinite mapping of a
// fallback (§3.7: data-level length 0).
func (d DSS) InfiniteMapping() bool { return d.HasMapping && d.DataLen == 0 }

// dssLen is the length a DSS's flags call for, without a checksum, indexed
// by the flags' low four bits (M, m, a, A; F does not change the layout).
var dssLen = func() (t [16]uint8) {
	for f := range t {
		d := DSS{HasAck: f&DSSFlagAck != 0, Ack64: f&DSSFlagAck64 != 0,
			HasMapping: f&DSSFlagMapping != 0, DSN64: f&DSSFlagDSN64 != 0}
		t[f] = uint8(d.Len())
	}
	return t
}()

// dssLenOK accepts the length the flags call for, plus two bytes of checksum
// when a mapping is present. Linux also accepts the two extra bytes on a
// DSS without a mapping and ignores them; no variant of §3.3 has them, so we
// report that as malformed.
func dssLenOK(flags uint8, l int) bool {
	want := int(dssLen[flags&0x0f])
	return l == want || (flags&DSSFlagMapping != 0 && l == want+dssChecksumLen)
}
