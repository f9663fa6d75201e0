package pcapfuzz

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/metrics"
	"testing"
	"unsafe"

	"github.com/umptcp/umptcp/decode"
	"github.com/umptcp/umptcp/options"
)

// decodeLimits are small on purpose: the fuzzer reaches them quickly, and
// with them the eviction paths.
var decodeLimits = decode.Limits{MaxSubflows: 16, MaxConnections: 8, MaxAnnouncements: 4, MaxMismatches: 16}

// allocBudget bounds the bytes the decoder may allocate for an input of n
// bytes that is not gzip-compressed: buffers of fixed size (bufio, pcapgo's
// record buffer, capped at 256 KiB) plus per-frame state proportional to the
// frames in the file. An allocation sized by a length field of the file
// (a record or block length claiming gigabytes) exceeds it.
func allocBudget(n int) uint64 { return 32<<20 + 256*uint64(n) }

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocated() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// checkJSONLines checks that every line of b is one valid JSON value.
func checkJSONLines(t *testing.T, b []byte) {
	t.Helper()
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("invalid JSON line %q", line)
		}
	}
}

// FuzzDecodePcap feeds arbitrary bytes as a capture file to decode's entry
// point (decode.Analyze) and to its building blocks (NewReader, Next, the
// Analyzer, the text and JSON renderings). Errors are fine; panics are not,
// nor io.EOF leaking out, nor memory that grows with a length field rather
// than with the file. Both ways must give the same Result, every packet's
// payload and options must lie inside its frame, frame numbers must count
// up from 1, and the JSON renderings must be valid JSON.
func FuzzDecodePcap(f *testing.F) {
	var p decode.Packet // reused across frames and inputs, as Reader.Next allows
	var line []byte
	f.Fuzz(func(t *testing.T, file []byte) {
		gz := len(file) >= 2 && file[0] == 0x1f && file[1] == 0x8b
		before := heapAllocated()
		res, err := decode.Analyze(bytes.NewReader(file), decodeLimits)
		if used := heapAllocated() - before; !gz && used > allocBudget(len(file)) {
			t.Fatalf("decode.Analyze allocated %d bytes for a %d-byte file (budget %d)", used, len(file), allocBudget(len(file)))
		}
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("io.EOF leaked from Analyze: %v", err)
		}
		if len(res.Mismatches) > decodeLimits.MaxMismatches || res.MismatchesDropped < 0 {
			t.Fatalf("%d mismatches listed, %d dropped", len(res.Mismatches), res.MismatchesDropped)
		}
		var out bytes.Buffer
		if err := res.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := res.WriteJSON(&out); err != nil {
			t.Fatal(err)
		}
		checkJSONLines(t, out.Bytes())

		// The same, step by step.
		rd, rerr := decode.NewReader(bytes.NewReader(file))
		if rerr != nil {
			if err == nil || err.Error() != rerr.Error() || res.Frames != 0 {
				t.Fatalf("NewReader: %v; Analyze: %v after %d frames", rerr, err, res.Frames)
			}
			return
		}
		a := decode.NewAnalyzer(decodeLimits)
		frames := 0
		for {
			nerr := rd.Next(&p)
			if nerr != nil {
				if nerr == io.EOF {
					nerr = nil
				}
				if (nerr == nil) != (err == nil) || (nerr != nil && nerr.Error() != err.Error()) {
					t.Fatalf("Next ended with %v, Analyze with %v", nerr, err)
				}
				var fe *decode.FileError
				if nerr != nil && errors.As(nerr, &fe) && fe.Frame != frames+1 {
					t.Fatalf("FileError at frame %d after %d frames", fe.Frame, frames)
				}
				break
			}
			frames++
			if p.Frame != frames {
				t.Fatalf("frame %d numbered %d", frames, p.Frame)
			}
			checkPacket(t, &p)
			for i := range p.Options {
				line = decode.AppendJSON(line[:0], &p, i)
				checkJSONLines(t, line)
				line = decode.AppendText(line[:0], &p, i)
				if len(line) == 0 || line[len(line)-1] != '\n' || bytes.Count(line, []byte("\n")) != 1 {
					t.Fatalf("text line %q", line)
				}
			}
			a.Add(&p)
		}
		if got := a.Result(); !reflect.DeepEqual(got, res) {
			t.Fatalf("Analyzer step by step:\n%+v\nAnalyze:\n%+v", got, res)
		}
		if res.Frames != frames {
			t.Fatalf("Result.Frames %d, %d frames read", res.Frames, frames)
		}
	})
}

// checkPacket checks that what Decode reports about a frame lies inside it.
func checkPacket(t *testing.T, p *decode.Packet) {
	t.Helper()
	if len(p.Data) > p.CaptureLength && p.CaptureLength != 0 {
		t.Fatalf("%d bytes of data, capture length %d", len(p.Data), p.CaptureLength)
	}
	if p.Status != decode.StatusTCP {
		if len(p.Options) != 0 || len(p.Payload) != 0 {
			t.Fatalf("status %v with %d options and %d payload bytes", p.Status, len(p.Options), len(p.Payload))
		}
		return
	}
	if p.PayloadLen < 0 || len(p.Payload) > p.PayloadLen {
		t.Fatalf("payload %d bytes of %d", len(p.Payload), p.PayloadLen)
	}
	if len(p.Payload) > 0 && offsetIn(p.Data, p.Payload) < 0 {
		t.Fatal("payload outside the frame")
	}
	// At most MaxPerSegment options fit in 40 bytes, plus a cut-short one
	// that ended the walk.
	if len(p.Options) > options.MaxPerSegment+1 {
		t.Fatalf("%d MPTCP options in one segment", len(p.Options))
	}
	for i := range p.Options {
		o := &p.Options[i]
		if len(o.Raw) > 0 && offsetIn(p.Data, o.Raw) < 0 {
			t.Fatalf("option %d (%x) outside the frame", i, o.Raw)
		}
		decode.OptionLen(o)
		decode.OptionSubtype(o)
	}
}

// offsetIn returns where sub starts in b, or -1 if it does not lie within b.
func offsetIn(b, sub []byte) int {
	if len(sub) == 0 {
		return -1
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	if p < base || p-base+uintptr(len(sub)) > uintptr(len(b)) {
		return -1
	}
	return int(p - base)
}

// TestSeedCorpusPresent guards against a lost corpus (regenerate it with
// go generate ./fuzz).
func TestSeedCorpusPresent(t *testing.T) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodePcap", "pcap-*"))
	if err != nil || len(seeds) < 5 {
		t.Fatalf("%d generated seeds (%v); run go generate ./fuzz", len(seeds), err)
	}
	for _, s := range seeds {
		if fi, err := os.Stat(s); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
