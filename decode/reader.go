package decode

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Magic numbers of the first four bytes of a capture file.
const (
	magicPcapMicro = 0xa1b2c3d4
	magicPcapNano  = 0xa1b23c4d
	magicPcapng    = 0x0a0d0d0a // section header block type, a palindrome
	magicGzip      = 0x1f8b
)

// ErrNotCapture is returned by NewReader for input that is neither pcap nor
// pcapng (nor either of them gzip-compressed).
var ErrNotCapture = errors.New("not a pcap or pcapng file")

// ErrEmpty is returned by NewReader for empty input.
var ErrEmpty = errors.New("empty file")

// FileError is an error reading a capture file's records. Frame is the
// 1-based number of the frame the reader was at when it failed.
type FileError struct {
	Frame int
	// Truncated is set when the file ends inside a record.
	Truncated bool
	Err       error
}

func (e *FileError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("truncated packet record at frame %d", e.Frame)
	}
	return fmt.Sprintf("bad packet record at frame %d: %v", e.Frame, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// packetSource is what pcapgo's two readers have in common.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Reader reads the frames of a pcap or pcapng capture file, possibly
// gzip-compressed, and decodes each (see Decode). Reading a frame does not
// allocate beyond the growth of its buffers (pcapgo caps a record at
// 256 KiB, or at the file's snap length for records it grows as their bytes
// arrive).
type Reader struct {
	src    packetSource
	ng     *pcapgo.NgReader
	link   LinkType
	format string
	frame  int
}

// NewReader reads the file header of a pcap or pcapng capture from r and
// returns a Reader positioned at the first frame.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := peekMagic(br)
	if err != nil {
		return nil, err
	}
	if len(head) >= 2 && binary.BigEndian.Uint16(head) == magicGzip {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
		if head, err = peekMagic(br); err != nil {
			return nil, err
		}
	}
	if len(head) < 4 {
		return nil, ErrNotCapture
	}
	le, be := binary.LittleEndian.Uint32(head), binary.BigEndian.Uint32(head)
	switch {
	case le == magicPcapMicro || be == magicPcapMicro || le == magicPcapNano || be == magicPcapNano:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, headerError("pcap", err)
		}
		return &Reader{src: pr, link: LinkType(pr.LinkType()), format: "pcap"}, nil
	case le == magicPcapng:
		// Several interfaces may have different link types; take every
		// frame (so that frame numbers match Wireshark's) and each one's own
		// link type.
		nr, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, headerError("pcapng", err)
		}
		return &Reader{src: nr, ng: nr, format: "pcapng"}, nil
	}
	return nil, fmt.Errorf("%w (magic %08x)", ErrNotCapture, be)
}

// peekMagic returns the first (up to) four bytes of the input.
func peekMagic(br *bufio.Reader) ([]byte, error) {
	head, err := br.Peek(4)
	if len(head) < 4 && err != nil && err != io.EOF {
		return nil, err
	}
	if len(head) == 0 {
		return nil, ErrEmpty
	}
	return head, nil
}

func headerError(format string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s file header", format)
	}
	return fmt.Errorf("bad %s file header: %v", format, err)
}

// Format returns "pcap" or "pcapng".
func (r *Reader) Format() string { return r.format }

// LinkType returns the link type of a pcap file, or of the first interface
// of a pcapng file (0 before any frame was read from a pcapng file).
func (r *Reader) LinkType() LinkType {
	if r.ng != nil {
		return LinkType(r.ng.LinkType())
	}
	return r.link
}

// Next reads the next frame into p and decodes it. It returns io.EOF after
// the last frame, and a *FileError for a damaged file. A frame that is not
// an MPTCP-capable TCP segment is not an error: see p.Status.
func (r *Reader) Next(p *Packet) error {
	data, ci, err := r.src.ZeroCopyReadPacketData()
	if err != nil {
		if err == io.EOF {
			return io.EOF
		}
		fe := &FileError{Frame: r.frame + 1, Err: err}
		fe.Truncated = errors.Is(err, io.ErrUnexpectedEOF)
		return fe
	}
	r.frame++
	lt := r.link
	if r.ng != nil {
		lt = LinkType(r.ng.LinkType())
		if len(ci.AncillaryData) > 0 {
			if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				lt = LinkType(l)
			}
		}
	}
	p.Frame = r.frame
	p.Timestamp = ci.Timestamp
	Decode(lt, data, ci.Length, p)
	return nil
}
