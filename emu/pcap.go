package emu

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"gvisor.dev/gvisor/pkg/buffer"
)

// DefaultSnaplen is the capture length used when a snaplen of 0 is given:
// whole packets up to the largest IP packet.
const DefaultSnaplen = 65535

// Pcap is a pcap capture of packets crossing one or more links, in
// LINKTYPE_RAW (IPv4 and IPv6 packets without link header, which Wireshark
// and tcpdump decode directly) with nanosecond timestamps from the link's
// clock. Packets are recorded as delivered, after every impairment, in both
// directions, so a file shows what each stack received.
//
// A Pcap is safe for concurrent use: several links may share one. Writes are
// buffered; Flush (or Close of a link using it) pushes them to the writer.
// The first write error stops the capture and is kept for Err.
type Pcap struct {
	mu      sync.Mutex
	bw      *bufio.Writer
	w       *pcapgo.Writer
	snaplen int
	scratch []byte
	err     error
}

// NewPcap writes a pcap file header to w and returns a capture that records at
// most snaplen bytes of each packet (0 means DefaultSnaplen).
func NewPcap(w io.Writer, snaplen int) (*Pcap, error) {
	if snaplen < 0 {
		return nil, errors.New("emu: negative snaplen")
	}
	if snaplen == 0 || snaplen > DefaultSnaplen {
		snaplen = DefaultSnaplen
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(uint32(snaplen), layers.LinkTypeRaw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return &Pcap{bw: bw, w: pw, snaplen: snaplen, scratch: make([]byte, snaplen)}, nil
}

// write records one packet.
func (p *Pcap) write(ts time.Time, b *buffer.Buffer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	size := int(b.Size())
	n, _ := b.ReadAt(p.scratch[:min(size, p.snaplen)], 0)
	p.err = p.w.WritePacket(gopacket.CaptureInfo{
		Timestamp:     ts,
		CaptureLength: n,
		Length:        size,
	}, p.scratch[:n])
}

// Flush writes buffered packets to the underlying writer.
func (p *Pcap) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.err = p.bw.Flush()
	return p.err
}

// Err returns the first write error, if any.
func (p *Pcap) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// SetPcap starts recording the link's packets into p, or stops with nil.
// Packets delivered after the call are recorded.
func (l *Link) SetPcap(p *Pcap) { l.pcap.Store(p) }

// Tap records the link's packets, both directions, into a new pcap stream on
// w; snaplen 0 means DefaultSnaplen. Close flushes it; to read the capture
// while the link is running, or to share one file between links, use NewPcap
// and SetPcap.
func (l *Link) Tap(w io.Writer, snaplen int) error {
	p, err := NewPcap(w, snaplen)
	if err != nil {
		return err
	}
	l.SetPcap(p)
	return nil
}
