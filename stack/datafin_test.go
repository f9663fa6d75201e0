package stack

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

// finOrder is who sends the first DATA_FIN.
type finOrder int

const (
	initiatorFirst finOrder = iota // our DATA_FIN first, seen from the initiator
	responderFirst                 // theirs first
	simultaneous                   // both CloseWrite at once
)

func (o finOrder) String() string {
	return [...]string{"initiator-first", "responder-first", "simultaneous"}[o]
}

// readExactlyThenEOF reads n bytes of st from c, then expects EOF twice.
func readExactlyThenEOF(c *Conn, st stream, n int64) error {
	ck := newChecker(st, n)
	got, err := io.CopyBuffer(ck, onlyReader{c}, make([]byte, 64<<10))
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", got, err)
	}
	if got != n || ck.bad >= 0 {
		return fmt.Errorf("read %d bytes, want %d (first wrong byte %d)", got, n, ck.bad)
	}
	// EOF again, and it does not consume anything.
	for i := 0; i < 2; i++ {
		if k, err := c.Read(make([]byte, 10)); k != 0 || err != io.EOF {
			return fmt.Errorf("read after EOF: %d, %v", k, err)
		}
	}
	return nil
}

// TestDataFINOrderings closes a connection in every order with data in
// flight both ways: the initiator's DATA_FIN first while the responder is
// still sending, the responder's first, and both CloseWrite at the same
// moment. Each side reads exactly what the other wrote and then EOF (again
// on every further Read); writing after CloseWrite fails; the DATA_FINs on
// the wire sit at the right DSN and are acknowledged; after Close both
// connections leave their stacks (MPCurrEstab back to 0) and every
// goroutine ends with the stacks.
func TestDataFINOrderings(t *testing.T) {
	small, large := int64(sized(1<<20, 8, 64<<10)), int64(sized(6<<20, 8, 256<<10))
	for _, order := range []finOrder{initiatorFirst, responderFirst, simultaneous} {
		for _, v6 := range []bool{false, true} {
			for _, csum := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/v6=%v/checksum=%v", order, v6, csum), func(t *testing.T) {
					noLeaks(t)
					p := newTPair(t, pairOpts{v6: v6, a: Config{Checksum: csum}})
					cli, srv := connect(t, p.pair, 'a', 4200)
					// The first closer writes little, the other a lot, so
					// that the first DATA_FIN goes out while data still
					// flows the other way.
					first, second := cli, srv
					firstSt, secondSt := stream{1}, stream{2}
					if order == responderFirst {
						first, second = srv, cli
						firstSt, secondSt = stream{2}, stream{1}
					}
					firstN, secondN := small, large
					if order == simultaneous {
						firstN, secondN = large, large
					}
					var wg sync.WaitGroup
					errs := make(chan error, 8)
					written := make(chan struct{}, 2)
					release := make(chan struct{})
					writer := func(c *Conn, st stream, n int64) {
						defer wg.Done()
						if _, err := io.CopyBuffer(onlyWriter{c}, st.reader(n), make([]byte, 32<<10)); err != nil {
							errs <- fmt.Errorf("write: %w", err)
							return
						}
						written <- struct{}{}
						if order == simultaneous {
							<-release // both CloseWrite together
						}
						if err := c.CloseWrite(); err != nil {
							errs <- fmt.Errorf("CloseWrite: %w", err)
						}
						if _, err := c.Write([]byte("late")); err == nil {
							errs <- errors.New("Write after CloseWrite succeeded")
						}
					}
					reader := func(c *Conn, st stream, n int64) {
						defer wg.Done()
						if err := readExactlyThenEOF(c, st, n); err != nil {
							errs <- err
						}
					}
					wg.Add(4)
					go writer(first, firstSt, firstN)
					go writer(second, secondSt, secondN)
					go reader(second, firstSt, firstN)
					go reader(first, secondSt, secondN)
					if order == simultaneous {
						<-written
						<-written
						close(release)
					}
					wg.Wait()
					close(errs)
					for err := range errs {
						t.Error(err)
					}
					if t.Failed() {
						t.Fatalf("initiator %v\nresponder %v", cli.Info(), srv.Info())
					}
					// Both DATA_FINs are acknowledged once each side read EOF.
					waitFor(t, "both DATA_FINs acknowledged", func() bool {
						ci, si := cli.Info(), srv.Info()
						return ci.SndUna == ci.SndNxt && si.SndUna == si.SndNxt
					})
					upN, downN := firstN, secondN
					if order == responderFirst {
						upN, downN = secondN, firstN
					}
					ci, si := cli.Info(), srv.Info()
					if ci.BytesSent != uint64(upN) || ci.BytesAcked != uint64(upN) || ci.BytesReceived != uint64(downN) {
						t.Errorf("initiator info: sent %d acked %d received %d, want %d %d %d", ci.BytesSent, ci.BytesAcked, ci.BytesReceived, upN, upN, downN)
					}
					if si.BytesSent != uint64(downN) || si.BytesAcked != uint64(downN) || si.BytesReceived != uint64(upN) {
						t.Errorf("responder info: sent %d acked %d received %d, want %d %d %d", si.BytesSent, si.BytesAcked, si.BytesReceived, downN, downN, upN)
					}
					cli.Close()
					srv.Close()
					waitConnsGone(t, p.a, p.b)
					for _, c := range []*Conn{cli, srv} {
						if _, err := c.Read(make([]byte, 1)); !errors.Is(err, errClosedConn) {
							t.Errorf("Read after Close: %v, want net.ErrClosed", err)
						}
					}

					f := flowsOf(p.cap.snapshot())[0]
					checkWireBasics(t, p.cap.snapshot())
					finI, okI := checkDataSegments(t, f, dataCheck{side: f.ini, st: stream{1}, checksum: csum})
					finR, okR := checkDataSegments(t, f, dataCheck{side: f.rsp, st: stream{2}, checksum: csum})
					if !okI || finI != f.idsn(f.ini)+1+uint64(upN) {
						t.Errorf("initiator's DATA_FIN seen %v at %d, want %d", okI, finI, f.idsn(f.ini)+1+uint64(upN))
					}
					if !okR || finR != f.idsn(f.rsp)+1+uint64(downN) {
						t.Errorf("responder's DATA_FIN seen %v at %d, want %d", okR, finR, f.idsn(f.rsp)+1+uint64(downN))
					}
					if got := maxDataAck(f, f.rsp); got != finI+1 {
						t.Errorf("responder's highest DATA_ACK %d, want %d", got, finI+1)
					}
					if got := maxDataAck(f, f.ini); got != finR+1 {
						t.Errorf("initiator's highest DATA_ACK %d, want %d", got, finR+1)
					}
				})
			}
		}
	}
}

// TestCloseWithDataInFlight closes (not half-closes) right after a large
// write, before the peer has read anything: Close returns at once, the
// connection finishes in the background and the peer still reads every
// byte, then EOF; both connections then leave the stacks. In both roles.
func TestCloseWithDataInFlight(t *testing.T) {
	n := int64(sized(8<<20, 8, 256<<10))
	for _, v6 := range []bool{false, true} {
		for _, closer := range []string{"initiator", "responder"} {
			t.Run(fmt.Sprintf("v6=%v/%s", v6, closer), func(t *testing.T) {
				noLeaks(t)
				p := newTPair(t, pairOpts{v6: v6, noRecord: true})
				cli, srv := connect(t, p.pair, 'a', 4300)
				w, r := cli, srv
				if closer == "responder" {
					w, r = srv, cli
				}
				done := make(chan error, 1)
				go func() { done <- readExactlyThenEOF(r, stream{3}, n) }()
				if _, err := io.Copy(onlyWriter{w}, stream{3}.reader(n)); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatalf("%v\nwriter %v\nreader %v", err, w.Info(), r.Info())
				}
				r.Close()
				waitConnsGone(t, p.a, p.b)
			})
		}
	}
}

// TestHalfClose half-closes one side and keeps using the other direction:
// the peer reads EOF, then answers with data the half-closed side still
// reads (an echo server that answers after the request ends).
func TestHalfClose(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, from := range []byte{'a', 'b'} {
			t.Run(fmt.Sprintf("v6=%v/initiator=%c", v6, from), func(t *testing.T) {
				noLeaks(t)
				p := newTPair(t, pairOpts{v6: v6, noRecord: true})
				cli, srv := connect(t, p.pair, from, 4400)
				req := int64(sized(2<<20, 8, 64<<10))
				type read struct {
					b   []byte
					err error
				}
				reqCh := make(chan read, 1)
				go func() {
					b, err := readAll(srv)
					reqCh <- read{b, err}
				}()
				if _, err := io.Copy(onlyWriter{cli}, stream{5}.reader(req)); err != nil {
					t.Fatal(err)
				}
				if err := cli.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if err := cli.CloseWrite(); err != nil {
					t.Errorf("second CloseWrite: %v", err)
				}
				// The server reads the whole request, then answers it.
				rd := <-reqCh
				got, err := rd.b, rd.err
				if err != nil || int64(len(got)) != req {
					t.Fatalf("server read %d bytes, %v", len(got), err)
				}
				echo := make(chan error, 1)
				go func() {
					_, err := srv.Write(got)
					if err == nil {
						err = srv.CloseWrite()
					}
					echo <- err
				}()
				if err := readExactlyThenEOF(cli, stream{5}, req); err != nil {
					t.Fatal(err)
				}
				if err := <-echo; err != nil {
					t.Fatal(err)
				}
				if !cli.MultipathTCP() || !srv.MultipathTCP() {
					t.Errorf("fell back: %v / %v", cli.Info(), srv.Info())
				}
				cli.Close()
				srv.Close()
				waitConnsGone(t, p.a, p.b)
			})
		}
	}
}
