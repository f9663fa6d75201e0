package emu

import (
	"runtime"
	"testing"
	"time"
)

// TestCloseStopsGoroutines runs stacks over delayed links (so timers are
// pending and drains running), closes everything, and checks that no emu
// goroutine survives and the goroutine count returns to where it was.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		l, err := NewLink(Config{Delay: 20 * time.Millisecond}, Config{Delay: 20 * time.Millisecond, Rate: 500_000_000})
		if err != nil {
			t.Fatal(err)
		}
		p := &stackPair{a: newStack(t, l.A(), addrA4, addrA6), b: newStack(t, l.B(), addrB4, addrB6)}
		c, s := p.connect(t, false)
		transfer(t, c, s, 1<<20, 1)
		// Packets still in flight: a write whose segments are queued.
		c.Write(make([]byte, 64<<10))
		l.Close() // before the stacks: the path dies under live connections
		c.Close()
		s.Close()
		p.close()
	}()
	checkNoEmuGoroutines(t)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCloseWhileSending closes a link while goroutines write into it with
// packets due now and later, under -race.
func TestCloseWhileSending(t *testing.T) {
	for range 20 {
		l, err := NewLink(Config{}, Config{Delay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l.A().Attach(newCapture(l.clock))
		l.B().Attach(newCapture(l.clock))
		done := make(chan struct{})
		for _, d := range []Dir{AToB, BToA} {
			ep := &l.ends[d]
			// Writers until the link refuses (closed) or the test is done.
			go func() {
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					list := pktList(numbered(i, 100))
					_, err := ep.WritePackets(list)
					list.DecRef()
					if err != nil {
						return
					}
				}
			}()
		}
		for l.Stats(AToB).DeliveredPackets < 10 {
			runtime.Gosched()
		}
		l.Close()
		close(done)
		for _, d := range []Dir{AToB, BToA} {
			if s := l.Stats(d); s.SentPackets+s.Duplicated != s.DeliveredPackets+s.Dropped() {
				t.Fatalf("%v: counters do not balance after Close: %+v", d, s)
			}
		}
	}
	checkNoEmuGoroutines(t)
}
