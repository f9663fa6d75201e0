package emu

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// readPcap reads every packet of a pcap stream.
func readPcap(t *testing.T, r io.Reader) (*pcapgo.Reader, [][]byte, []time.Time, []int) {
	t.Helper()
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	var data [][]byte
	var ts []time.Time
	var lens []int
	for {
		b, ci, err := pr.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadPacketData: %v", err)
		}
		data = append(data, b)
		ts = append(ts, ci.Timestamp)
		lens = append(lens, ci.Length)
	}
	return pr, data, ts, lens
}

func TestTap(t *testing.T) {
	var file bytes.Buffer
	l, clk, capA, capB := fakeLink(t, Config{Delay: time.Millisecond, Strip: StripAll}, Config{})
	if err := l.Tap(&file, 0); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	segs := stripSegments(false)
	inject(t, l.A(), buildTCP(segs[StripSYN]))
	inject(t, l.B(), buildTCP(stripSegments(true)[StripSYNACK]))
	clk.Advance(time.Millisecond)
	inject(t, l.A(), buildTCP(segs[StripData]))
	clk.Advance(time.Millisecond)
	l.Close()

	pr, data, ts, _ := readPcap(t, &file)
	if pr.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw IP", pr.LinkType())
	}
	// B→A had no delay, so its SYN/ACK was delivered first.
	want := [][]byte{capA.packets()[0].b, capB.packets()[0].b, capB.packets()[1].b}
	if len(data) != len(want) {
		t.Fatalf("capture has %d packets, want %d", len(data), len(want))
	}
	wantTS := []time.Duration{0, time.Millisecond, 2 * time.Millisecond}
	for i := range want {
		if !bytes.Equal(data[i], want[i]) {
			t.Errorf("packet %d: captured %x, delivered %x", i, data[i], want[i])
		}
		if got := ts[i].Sub(start); got != wantTS[i] {
			t.Errorf("packet %d at %v, want %v", i, got, wantTS[i])
		}
	}
}

func TestTapSnaplen(t *testing.T) {
	var file bytes.Buffer
	l, clk, _, _ := fakeLink(t, Config{}, Config{})
	if err := l.Tap(&file, 64); err != nil {
		t.Fatal(err)
	}
	inject(t, l.A(), numbered(0, 1000), numbered(1, 40))
	clk.Advance(0)
	l.Close()
	_, data, _, lens := readPcap(t, &file)
	if len(data) != 2 || len(data[0]) != 64 || lens[0] != 1000 || len(data[1]) != 40 || lens[1] != 40 {
		t.Errorf("captured lengths %d/%d and %d/%d, want 64/1000 and 40/40", len(data[0]), lens[0], len(data[1]), lens[1])
	}
	if _, err := NewPcap(io.Discard, -1); err == nil {
		t.Error("NewPcap accepted a negative snaplen")
	}
}

// TestPcapShared writes two links, both directions, from many goroutines
// into one file (run with -race), and reads back every packet.
func TestPcapShared(t *testing.T) {
	var file bytes.Buffer
	p, err := NewPcap(&file, 0)
	if err != nil {
		t.Fatal(err)
	}
	var links []*Link
	for range 2 {
		l, err := NewLink(Config{}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		l.SetPcap(p)
		l.A().Attach(newCapture(l.clock))
		l.B().Attach(newCapture(l.clock))
		links = append(links, l)
	}
	const perWriter = 200
	var wg sync.WaitGroup
	for _, l := range links {
		for _, ep := range []interface {
			WritePacketsTo(tb testing.TB, n int)
		}{epWriter{l, AToB}, epWriter{l, BToA}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ep.WritePacketsTo(t, perWriter)
			}()
		}
	}
	wg.Wait()
	for _, l := range links {
		l.Close()
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	_, data, _, _ := readPcap(t, &file)
	if want := 2 * 2 * perWriter; len(data) != want {
		t.Errorf("capture has %d packets, want %d", len(data), want)
	}
	for i, b := range data {
		if len(b) != 100 {
			t.Fatalf("packet %d has %d bytes, want 100", i, len(b))
		}
	}
}

type epWriter struct {
	l *Link
	d Dir
}

func (w epWriter) WritePacketsTo(tb testing.TB, n int) {
	ep := w.l.A()
	if w.d == BToA {
		ep = w.l.B()
	}
	for i := range n {
		inject(tb, ep, numbered(i, 100))
	}
	// Delivery is asynchronous: wait until this direction has delivered
	// everything (bounded), so Close does not count packets as detached.
	deadline := time.Now().Add(10 * time.Second)
	for w.l.Stats(w.d).DeliveredPackets < uint64(n) {
		if time.Now().After(deadline) {
			tb.Errorf("%v delivered %d of %d", w.d, w.l.Stats(w.d).DeliveredPackets, n)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestPcapWriteError(t *testing.T) {
	if _, err := NewPcap(failWriter{}, 0); err == nil {
		t.Error("NewPcap on a failing writer succeeded")
	}
}
