package decode

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapFile writes frames as a pcap file of link type lt.
func pcapFile(t testing.TB, lt LinkType, frames ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkType(lt)); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// ngFrame is a frame on one interface of a pcapng file.
type ngFrame struct {
	iface int
	data  []byte
}

// pcapngFile writes a pcapng file with one interface per link type.
func pcapngFile(t testing.TB, lts []LinkType, frames ...ngFrame) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{LinkType: layers.LinkType(lts[0]), SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range lts[1:] {
		if _, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkType(lt), SnapLength: 65535}); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(f.data), Length: len(f.data), InterfaceIndex: f.iface}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// readAll returns the status and frame number of every frame.
func readAll(t *testing.T, file []byte) ([]Packet, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	var out []Packet
	for {
		var p Packet
		if err := r.Next(&p); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, p)
	}
}

func TestReaderFormats(t *testing.T) {
	tcp4 := frame4(dataSeg(cli4, srv4))
	raw6 := ipv6Bytes(cli6.Addr(), srv6.Addr(), ipProtoTCP, tcpBytes(dataSeg(cli6, srv6)))
	arp := ethBytes(0x0806, make([]byte, 28))
	pcap := pcapFile(t, LinkEthernet, tcp4, arp, tcp4)
	// A big-endian, nanosecond pcap, written by hand.
	be := binary.BigEndian.AppendUint32(nil, magicPcapNano)
	be = binary.BigEndian.AppendUint16(be, 2)
	be = binary.BigEndian.AppendUint16(be, 4)
	be = append(be, make([]byte, 8)...)
	be = binary.BigEndian.AppendUint32(be, 65535)
	be = binary.BigEndian.AppendUint32(be, uint32(LinkRaw))
	for range 2 {
		be = binary.BigEndian.AppendUint32(be, 1)
		be = binary.BigEndian.AppendUint32(be, 2)
		be = binary.BigEndian.AppendUint32(be, uint32(len(raw6)))
		be = binary.BigEndian.AppendUint32(be, uint32(len(raw6)))
		be = append(be, raw6...)
	}
	ng := pcapngFile(t, []LinkType{LinkEthernet, LinkRaw}, ngFrame{0, tcp4}, ngFrame{1, raw6}, ngFrame{0, arp}, ngFrame{1, raw6})
	tests := []struct {
		name   string
		file   []byte
		format string
		want   []Status
	}{
		{"pcap", pcap, "pcap", []Status{StatusTCP, StatusNotIP, StatusTCP}},
		{"pcap big-endian nanosecond", be, "pcap", []Status{StatusTCP, StatusTCP}},
		{"pcapng mixed link types", ng, "pcapng", []Status{StatusTCP, StatusTCP, StatusNotIP, StatusTCP}},
		{"gzip pcap", gzipped(pcap), "pcap", []Status{StatusTCP, StatusNotIP, StatusTCP}},
		{"gzip pcapng", gzipped(ng), "pcapng", []Status{StatusTCP, StatusTCP, StatusNotIP, StatusTCP}},
		{"pcap no frames", pcap[:24], "pcap", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != tt.format {
				t.Errorf("format %q, want %q", r.Format(), tt.format)
			}
			ps, err := readAll(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("%d frames, want %d", len(ps), len(tt.want))
			}
			for i, p := range ps {
				if p.Frame != i+1 || p.Status != tt.want[i] {
					t.Errorf("frame %d: number %d status %v, want %v", i+1, p.Frame, p.Status, tt.want[i])
				}
				if p.Status == StatusTCP && len(p.Options) != 1 {
					t.Errorf("frame %d: %d options", i+1, len(p.Options))
				}
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	tcp4 := frame4(dataSeg(cli4, srv4))
	pcap := pcapFile(t, LinkEthernet, tcp4, tcp4, tcp4)
	ng := pcapngFile(t, []LinkType{LinkEthernet}, ngFrame{0, tcp4}, ngFrame{0, tcp4})
	recLen := 16 + len(tcp4)
	badCapLen := bytes.Clone(pcap)
	binary.LittleEndian.PutUint32(badCapLen[24+recLen+8:], 1<<30) // frame 2 longer than its snap length
	tests := []struct {
		name     string
		file     []byte
		frames   int    // frames read before the error
		err      string // the error's text
		truncErr bool   // a *FileError with Truncated
	}{
		{"empty", nil, 0, "empty file", false},
		{"not a capture", []byte("hello, world\n"), 0, "not a pcap or pcapng file (magic 68656c6c)", false},
		{"three bytes", []byte{0xd4, 0xc3, 0xb2}, 0, "not a pcap or pcapng file", false},
		{"pcap header cut", pcap[:20], 0, "truncated pcap file header", false},
		{"pcapng header cut", ng[:10], 0, "truncated pcapng file header", false},
		{"gzip of nothing", gzipped(nil), 0, "empty file", false},
		{"gzip cut", gzipped(pcap)[:30], 0, "", false},
		{"pcap record header cut", pcap[:24+recLen+10], 1, "truncated packet record at frame 2", true},
		{"pcap record data cut", pcap[:24+2*recLen+20], 2, "truncated packet record at frame 3", true},
		{"pcap huge record", badCapLen, 1, "bad packet record at frame 2: capture length exceeds snap length: 1073741824 > 65535", false},
		{"pcapng block cut", ng[:len(ng)-5], 1, "truncated packet record at frame 2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := readAll(t, tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			if len(ps) != tt.frames {
				t.Errorf("%d frames before the error, want %d", len(ps), tt.frames)
			}
			if tt.err != "" && !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("error %q, want %q", err, tt.err)
			}
			var fe *FileError
			if errors.As(err, &fe) != tt.truncErr && tt.truncErr {
				t.Errorf("error %v: not a *FileError", err)
			} else if tt.truncErr && !fe.Truncated {
				t.Errorf("error %v: Truncated not set", err)
			}
		})
	}
}

// Reading and decoding a frame does not allocate.
func TestReaderAllocs(t *testing.T) {
	tcp4 := frame4(dataSeg(cli4, srv4))
	frames := make([][]byte, 200)
	for i := range frames {
		frames[i] = tcp4
	}
	for _, tt := range []struct {
		name string
		file []byte
	}{
		{"pcap", pcapFile(t, LinkEthernet, frames...)},
		{"pcapng", pcapngFile(t, []LinkType{LinkEthernet}, func() (f []ngFrame) {
			for range frames {
				f = append(f, ngFrame{0, tcp4})
			}
			return f
		}()...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var p Packet
			r.Next(&p) // sizes the buffers
			allocs := testing.AllocsPerRun(100, func() {
				if err := r.Next(&p); err != nil || p.Status != StatusTCP {
					t.Fatalf("%v %v", err, p.Status)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
		})
	}
}
