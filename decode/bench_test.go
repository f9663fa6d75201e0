package decode

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// A capture of the synthetic scenario, repeated 50 times from other
// client ports: 50 connections.
func benchCapture(b testing.TB) ([]byte, int) {
	c := scenario("")
	var frames [][]byte
	for r := range 50 {
		for _, f := range c.frames {
			f = bytes.Clone(f)
			for _, off := range []int{34, 36} { // TCP source and destination ports
				if port := binary.BigEndian.Uint16(f[off:]); port != srv4.Port() {
					binary.BigEndian.PutUint16(f[off:], port+uint16(r))
				}
			}
			frames = append(frames, f)
		}
	}
	return pcapFile(b, LinkEthernet, frames...), len(frames)
}

func BenchmarkDecode(b *testing.B) {
	f := frame4(dataSeg(cli4, srv4))
	var p Packet
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		Decode(LinkEthernet, f, 0, &p)
	}
}

func BenchmarkReaderJSON(b *testing.B) {
	file, n := benchCapture(b)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	var p Packet
	var out []byte
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if err := r.Next(&p); err == io.EOF {
				break
			}
			for i := range p.Options {
				out = AppendJSON(out[:0], &p, i)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
}

func BenchmarkAnalyze(b *testing.B) {
	file, n := benchCapture(b)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(bytes.NewReader(file), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
}
