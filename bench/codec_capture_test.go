package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capturesDir holds the Linux kernel MPTCP captures (scripts/capture-kernel-mptcp.sh).
const capturesDir = "../testdata/captures"

// capturedSegment is one TCP segment of a capture: the TCP header and its
// payload, the payload restored to the length the IP header gives with zero
// bytes (the captures keep only the first 200 bytes of each frame; the
// codec never reads the payload, and both sides of a comparison get the
// same bytes).
type capturedSegment struct {
	file  string
	index int // frame number in the file, from 1 as Wireshark counts
	seg   []byte
}

// readCapture returns the TCP segments of a pcap or pcapng file.
func readCapture(path string) ([]capturedSegment, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	frames, err := captureFrames(raw)
	if err != nil {
		return nil, err
	}
	var segs []capturedSegment
	for i, fr := range frames {
		if seg, ok := tcpSegment(fr.data, fr.link); ok {
			segs = append(segs, capturedSegment{file: filepath.Base(path), index: i + 1, seg: seg})
		}
	}
	return segs, nil
}

type frame struct {
	link layers.LinkType
	data []byte
}

// captureFrames reads every frame of a pcap or pcapng file.
func captureFrames(raw []byte) ([]frame, error) {
	var frames []frame
	if len(raw) >= 4 && binary.LittleEndian.Uint32(raw) == 0x0a0d0d0a { // pcapng section header
		r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, err
		}
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return frames, nil
			}
			if err != nil {
				return nil, err
			}
			link := r.LinkType()
			if iface, err := r.Interface(ci.InterfaceIndex); err == nil {
				link = iface.LinkType
			}
			frames = append(frames, frame{link, data})
		}
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		frames = append(frames, frame{r.LinkType(), data})
	}
}

// tcpSegment finds the TCP segment in a frame with a minimal walk of the
// link and IP headers (no IPv6 extension headers: the captures have none).
func tcpSegment(data []byte, link layers.LinkType) ([]byte, bool) {
	var ethertype uint16
	switch link {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return nil, false
		}
		ethertype, data = binary.BigEndian.Uint16(data[12:]), data[14:]
		for ethertype == 0x8100 && len(data) >= 4 { // 802.1Q
			ethertype, data = binary.BigEndian.Uint16(data[2:]), data[4:]
		}
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return nil, false
		}
		ethertype, data = binary.BigEndian.Uint16(data[14:]), data[16:]
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return nil, false
		}
		ethertype, data = binary.BigEndian.Uint16(data[0:]), data[20:]
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(data) == 0 {
			return nil, false
		}
		switch data[0] >> 4 {
		case 4:
			ethertype = 0x0800
		case 6:
			ethertype = 0x86dd
		}
	default:
		return nil, false
	}
	var tcp []byte
	var tcpLen int
	switch ethertype {
	case 0x0800:
		if len(data) < 20 || data[9] != 6 {
			return nil, false
		}
		ihl, total := int(data[0]&0x0f)*4, int(binary.BigEndian.Uint16(data[2:]))
		if ihl < 20 || total < ihl || len(data) < ihl {
			return nil, false
		}
		tcp, tcpLen = data[ihl:], total-ihl
	case 0x86dd:
		if len(data) < 40 || data[6] != 6 {
			return nil, false
		}
		tcp, tcpLen = data[40:], int(binary.BigEndian.Uint16(data[4:]))
	default:
		return nil, false
	}
	if len(tcp) < 20 {
		return nil, false
	}
	hdr := int(tcp[12]>>4) * 4
	if hdr < 20 || hdr > len(tcp) || tcpLen < hdr {
		return nil, false
	}
	seg := make([]byte, tcpLen)
	copy(seg, tcp[:min(len(tcp), tcpLen)])
	return seg, true
}

// loadCaptures reads every capture, skipping the test when none is there
// yet.
func loadCaptures(tb testing.TB) []capturedSegment {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(capturesDir, "*.pcap"))
	ng, _ := filepath.Glob(filepath.Join(capturesDir, "*.pcapng"))
	files = append(files, ng...)
	if len(files) == 0 {
		tb.Skipf("no captures in %s", capturesDir)
	}
	var all []capturedSegment
	for _, f := range files {
		segs, err := readCapture(f)
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		all = append(all, segs...)
	}
	return all
}
