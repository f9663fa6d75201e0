package options

import "errors"

// Errors from Fit.
var (
	// ErrNoRoom: the options that must go out on this segment (handshake,
	// mapping, signals of a reset) do not fit next to the TCP options.
	ErrNoRoom = errors.New("options: MPTCP options do not fit in the TCP option space")
	// ErrBadOptions: an input option area or option list could not be walked.
	ErrBadOptions = errors.New("options: malformed option bytes")
)

const sackBlockLen = 8

// required reports whether an MPTCP option must not be left out of a
// segment: handshake options, every DSS (it carries the mapping of the
// segment's bytes and the data ACK) and the options of a failure or reset.
// ADD_ADDR, REMOVE_ADDR and MP_PRIO can wait for another segment (Linux
// sends them on whichever segment has room, or on a pure ACK).
func required(st Subtype) bool {
	switch st {
	case SubtypeAddAddr, SubtypeRemoveAddr, SubtypeMPPrio, SubtypeExperimental:
		return false
	}
	return st.Known()
}

// Fit appends to dst the option area of a segment: the TCP options tcpOpts
// as the TCP stack built them (timestamps, SACK blocks, ...), then the MPTCP
// options in mptcp (encoded back to back, in order of preference), padded
// with NOPs to a multiple of four bytes and never longer than
// MaxTCPOptionsLen. It returns the extended dst and a bitmask of the MPTCP
// options it left out (bit i for the i-th option).
//
// When everything does not fit, Fit first trims SACK blocks, keeping the
// first ones (the first block reports the most recent data, RFC 2018 §4),
// then leaves out optional MPTCP options (ADD_ADDR, REMOVE_ADDR, MP_PRIO)
// from the last back. It never leaves out a DSS or a handshake option: if
// those do not fit it returns ErrNoRoom and dst unchanged. The common case,
// where everything fits as given, copies the bytes once.
func Fit(dst, tcpOpts, mptcp []byte) (out []byte, omitted uint16, err error) {
	tcpLen, ok := trimPadding(tcpOpts)
	if !ok {
		// An option area that cannot be walked would swallow what follows
		// it (a truncated option's length covering our DSS).
		return dst, 0, ErrBadOptions
	}
	if tcpLen+len(mptcp) <= MaxTCPOptionsLen {
		if !walkable(mptcp) {
			return dst, 0, ErrBadOptions
		}
		out = append(dst, tcpOpts[:tcpLen]...)
		out = append(out, mptcp...)
		return padNOP(out, len(dst)), 0, nil
	}
	return fitSlow(dst, tcpOpts[:tcpLen], mptcp)
}

// fitSlow lays the area out again without alignment NOPs: the non-SACK TCP
// options, the required MPTCP options, as many SACK blocks as fit, then the
// optional MPTCP options that still fit.
func fitSlow(dst, tcpOpts, mptcp []byte) ([]byte, uint16, error) {
	var (
		fixed, sackBlocks int
		sack              []byte
	)
	w := NewWalker(tcpOpts)
	for {
		kind, opt, ok := w.Next()
		if !ok {
			break
		}
		if kind == TCPOptionSACK {
			if (len(opt)-2)%sackBlockLen != 0 || sack != nil {
				return dst, 0, ErrBadOptions
			}
			sack = opt
			sackBlocks = (len(opt) - 2) / sackBlockLen
			continue
		}
		fixed += len(opt)
	}
	if w.Status() != WalkOK {
		return dst, 0, ErrBadOptions
	}

	var n, opts int
	mw := NewWalker(mptcp)
	for {
		kind, opt, ok := mw.Next()
		if !ok {
			break
		}
		if kind != Kind || opts == MaxPerSegment {
			return dst, 0, ErrBadOptions
		}
		if required(Subtype(opt[2] >> 4)) {
			n += len(opt)
		}
		opts++
	}
	if mw.Status() != WalkOK {
		return dst, 0, ErrBadOptions
	}
	if roundUp4(fixed+n) > MaxTCPOptionsLen {
		return dst, 0, ErrNoRoom
	}
	used := fixed + n
	keep := sackBlocks
	for keep > 0 && roundUp4(used+2+keep*sackBlockLen) > MaxTCPOptionsLen {
		keep--
	}
	if keep > 0 {
		used += 2 + keep*sackBlockLen
	}

	out := dst
	w = NewWalker(tcpOpts)
	for {
		kind, opt, ok := w.Next()
		if !ok {
			break
		}
		if kind != TCPOptionSACK {
			out = append(out, opt...)
		}
	}
	var omitted uint16
	i := 0
	mw = NewWalker(mptcp)
	for {
		_, opt, ok := mw.Next()
		if !ok {
			break
		}
		switch {
		case required(Subtype(opt[2] >> 4)):
			out = append(out, opt...)
		case roundUp4(used+len(opt)) <= MaxTCPOptionsLen:
			used += len(opt)
			out = append(out, opt...)
		default:
			omitted |= 1 << i
		}
		i++
	}
	if keep > 0 {
		out = append(out, TCPOptionSACK, byte(2+keep*sackBlockLen))
		out = append(out, sack[2:2+keep*sackBlockLen]...)
	}
	return padNOP(out, len(dst)), omitted, nil
}

// trimPadding returns the length of opts without trailing NOP/EOL padding,
// which Fit adds back once at the end, and whether opts can be walked.
func trimPadding(opts []byte) (int, bool) {
	// Walk to find where the last real option ends; padding in the middle
	// (NOP NOP before a timestamp) is kept.
	end := 0
	w := NewWalker(opts)
	for {
		_, _, ok := w.Next()
		if !ok {
			break
		}
		end = w.off
	}
	return end, w.Status() == WalkOK
}

func walkable(b []byte) bool {
	w := NewWalker(b)
	for {
		kind, _, ok := w.Next()
		if !ok {
			return w.Status() == WalkOK
		}
		if kind != Kind {
			return false
		}
	}
}

func roundUp4(n int) int { return (n + 3) &^ 3 }

// padNOP pads the area that starts at start in b with NOPs to a multiple of
// four bytes.
func padNOP(b []byte, start int) []byte {
	for (len(b)-start)%4 != 0 {
		b = append(b, TCPOptionNOP)
	}
	return b
}

// PadNOP appends NOPs to b until len(b) is a multiple of four, the
// granularity of the TCP data offset.
func PadNOP(b []byte) []byte { return padNOP(b, 0) }
