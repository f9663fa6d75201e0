package options

// TCP option kinds the walker and the fitter need (RFC 9293 §3.1, RFC 2018,
// RFC 7323).
const (
	TCPOptionEOL       = 0
	TCPOptionNOP       = 1
	TCPOptionMSS       = 2
	TCPOptionWS        = 3
	TCPOptionSACKPerm  = 4
	TCPOptionSACK      = 5
	TCPOptionTimestamp = 8
)

// WalkStatus says how a walk over a TCP option area ended.
type WalkStatus uint8

// Ways a walk ends.
const (
	// WalkOK: the option area was consumed up to its end or an EOL.
	WalkOK WalkStatus = iota
	// WalkTruncated: an option's length ran past the end of the area, or
	// the area ended after a kind byte.
	WalkTruncated
	// WalkBadLength: an option had a length below 2 (or below 3 for MPTCP),
	// which makes the rest of the area unreadable.
	WalkBadLength
)

func (s WalkStatus) String() string {
	switch s {
	case WalkOK:
		return "ok"
	case WalkTruncated:
		return "truncated option"
	case WalkBadLength:
		return "bad option length"
	}
	return "unknown"
}

// Walker steps through a TCP header's option area one option at a time,
// skipping NOPs and stopping at EOL, as Linux's tcp_parse_options and
// mptcp_get_options do. It never reads past the area and never allocates.
type Walker struct {
	b      []byte
	off    int
	status WalkStatus
}

// NewWalker returns a Walker over opts, the bytes between the fixed TCP
// header and the data offset.
func NewWalker(opts []byte) Walker { return Walker{b: opts} }

// Next returns the next option that is neither NOP nor EOL: its kind and its
// bytes (kind and length included), aliasing the area. ok is false at the end
// of the area, at an EOL, or at an option whose length cannot be trusted;
// Status tells which.
func (w *Walker) Next() (kind uint8, opt []byte, ok bool) {
	for w.off < len(w.b) {
		kind = w.b[w.off]
		switch kind {
		case TCPOptionEOL:
			w.off = len(w.b)
			return 0, nil, false
		case TCPOptionNOP:
			w.off++
			continue
		}
		if w.off+1 >= len(w.b) {
			w.status = WalkTruncated
			w.off = len(w.b)
			return 0, nil, false
		}
		l := int(w.b[w.off+1])
		if l < 2 || (kind == Kind && l < 3) {
			// "Silly options" (Linux): nothing after them can be read.
			w.status = WalkBadLength
			w.off = len(w.b)
			return 0, nil, false
		}
		if w.off+l > len(w.b) {
			w.status = WalkTruncated
			w.off = len(w.b)
			return 0, nil, false
		}
		opt = w.b[w.off : w.off+l : w.off+l]
		w.off += l
		return kind, opt, true
	}
	return 0, nil, false
}

// Status reports how the walk ended (meaningful once Next returned false).
func (w *Walker) Status() WalkStatus { return w.status }

// MaxPerSegment is the most MPTCP options one segment can hold: 40 bytes of
// option space and a 3-byte minimum (MP_PRIO).
const MaxPerSegment = MaxTCPOptionsLen / mpPrioLen

// Segment holds every MPTCP option of one segment, in order. Reuse one
// Segment per goroutine: Parse does not allocate, and the options alias the
// parsed buffer.
type Segment struct {
	Options [MaxPerSegment]Option
	N       int
	// Status is how the walk over the option area ended.
	Status WalkStatus
	// Timestamp is set when the area carried a TCP timestamp option, with
	// its value and echo reply (useful to tell retransmissions apart).
	HasTimestamp bool
	TSVal, TSEcr uint32
}

// Parse collects every MPTCP option in opts, the option area of a segment
// described by ctx, in one pass. It keeps the order of the options. It walks
// the area itself rather than through a Walker: this runs on every segment.
func (s *Segment) Parse(opts []byte, ctx Context) {
	s.N = 0
	s.Status = WalkOK
	s.HasTimestamp = false
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case TCPOptionEOL:
			return
		case TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			s.Status = WalkTruncated
			return
		}
		l := int(opts[i+1])
		if l < 2 || (kind == Kind && l < 3) {
			s.Status = WalkBadLength
			return
		}
		if i+l > len(opts) {
			s.Status = WalkTruncated
			return
		}
		opt := opts[i : i+l : i+l]
		i += l
		switch kind {
		case Kind:
			if s.N == MaxPerSegment {
				continue // cannot happen within 40 bytes; bounds the work anyway
			}
			st := Subtype(opt[2] >> 4)
			s.Options[s.N] = Option{Subtype: st, Malformed: !wellFormed(st, opt, ctx), Raw: opt}
			s.N++
		case TCPOptionTimestamp:
			if l == 10 {
				s.HasTimestamp = true
				s.TSVal = be32(opt[2:6])
				s.TSEcr = be32(opt[6:10])
			}
		}
	}
}

// List returns the options found. The slice aliases s.
func (s *Segment) List() []Option { return s.Options[:s.N] }

// Find returns the first well-formed option of subtype st, or nil.
func (s *Segment) Find(st Subtype) *Option {
	for i := 0; i < s.N; i++ {
		if s.Options[i].Valid(st) {
			return &s.Options[i]
		}
	}
	return nil
}
