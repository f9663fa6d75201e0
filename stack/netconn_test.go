package stack

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestNetConn runs x/net/nettest's conformance suite for net.Conn (basic
// I/O, ping-pong, racy reads and writes against deadlines, past, present
// and future deadlines, Close unblocking I/O, concurrent methods) over
// MPTCP connections, IPv4 and IPv6, each side as c1.
func TestNetConn(t *testing.T) {
	testNetConn(t, func(c *Conn) net.Conn { return c })
}

// testNetConn runs nettest.TestConn over connections wrapped by wrap.
func testNetConn(t *testing.T, wrap func(*Conn) net.Conn) {
	for _, v6 := range []bool{false, true} {
		for _, initiatorFirst := range []bool{true, false} {
			t.Run(fmt.Sprintf("v6=%v/c1=initiator:%v", v6, initiatorFirst), func(t *testing.T) {
				noLeaks(t)
				p := newTPair(t, pairOpts{v6: v6, noRecord: true})
				var port atomic.Uint32
				port.Store(6000)
				nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
					cli, srv := connect(t, p.pair, 'a', uint16(port.Add(1)))
					// nettest sets its own deadlines.
					cli.SetDeadline(time.Time{})
					srv.SetDeadline(time.Time{})
					stop = func() {
						cli.Close()
						srv.Close()
					}
					if initiatorFirst {
						return wrap(cli), wrap(srv), stop, nil
					}
					return wrap(srv), wrap(cli), stop, nil
				})
			})
		}
	}
}

// TestDeadlines checks read and write deadlines one behaviour at a time,
// as on a *net.TCPConn: a deadline in the past fails I/O at once even with
// data ready; a future one fails a blocked call once it passes, not
// before; extending or cancelling it while a call is blocked lets the call
// go on; clearing it after a timeout makes the connection usable again;
// a timed-out Write reports exactly what it wrote.
func TestDeadlines(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			noLeaks(t)
			p := newTPair(t, pairOpts{v6: v6, noRecord: true})
			cli, srv := connect(t, p.pair, 'a', 6100)
			cli.SetDeadline(time.Time{})
			srv.SetDeadline(time.Time{})
			buf := make([]byte, 64)

			t.Run("read past, nothing ready", func(t *testing.T) {
				cli.SetReadDeadline(time.Now().Add(-time.Second))
				n, err := cli.Read(buf)
				if n != 0 || !isTimeout(err) {
					t.Errorf("Read: %d, %v; want 0 and a timeout", n, err)
				}
				cli.SetReadDeadline(time.Time{})
			})
			t.Run("read future, then clear and read", func(t *testing.T) {
				d := time.Now().Add(50 * time.Millisecond)
				cli.SetReadDeadline(d)
				n, err := cli.Read(buf)
				if n != 0 || !isTimeout(err) {
					t.Errorf("Read: %d, %v; want 0 and a timeout", n, err)
				}
				if time.Now().Before(d) {
					t.Errorf("Read timed out before its deadline")
				}
				cli.SetReadDeadline(time.Time{})
				srv.Write([]byte("after timeout"))
				n, err = cli.Read(buf)
				if err != nil || string(buf[:n]) != "after timeout" {
					t.Errorf("Read after clearing the deadline: %q, %v", buf[:n], err)
				}
			})
			for _, how := range []string{"extend", "cancel"} {
				t.Run("read deadline "+how+"ed while blocked", func(t *testing.T) {
					d := time.Now().Add(50 * time.Millisecond)
					cli.SetReadDeadline(d)
					type res struct {
						n   int
						err error
					}
					ch := make(chan res, 1)
					go func() {
						n, err := cli.Read(buf)
						ch <- res{n, err}
					}()
					if how == "extend" {
						cli.SetReadDeadline(time.Now().Add(time.Hour))
					} else {
						cli.SetReadDeadline(time.Time{})
					}
					// Let the first deadline pass: the blocked Read must
					// not notice.
					<-time.After(time.Until(d) + 50*time.Millisecond)
					srv.Write([]byte("late data"))
					r := <-ch
					if r.err != nil || string(buf[:r.n]) != "late data" {
						t.Errorf("Read: %q, %v; want the data", buf[:r.n], r.err)
					}
					cli.SetReadDeadline(time.Time{})
				})
			}
			t.Run("read past, data ready", func(t *testing.T) {
				srv.Write([]byte("ready"))
				waitFor(t, "the data to arrive", cli.unreadData)
				cli.SetReadDeadline(time.Now().Add(-time.Second))
				n, err := cli.Read(buf)
				if n != 0 || !isTimeout(err) {
					t.Errorf("Read with an expired deadline and data ready: %d, %v; want 0 and a timeout (net.Conn: after the deadline I/O fails)", n, err)
				}
				cli.SetReadDeadline(time.Time{})
				// Drain what is left.
				for got := 0; got < len("ready")-n; {
					k, err := cli.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					got += k
				}
			})
			t.Run("write past", func(t *testing.T) {
				cli.SetWriteDeadline(time.Now().Add(-time.Second))
				n, err := cli.Write([]byte("never"))
				if n != 0 || !isTimeout(err) {
					t.Errorf("Write with an expired deadline: %d, %v; want 0 and a timeout", n, err)
				}
				cli.SetWriteDeadline(time.Time{})
				// Whatever it wrote must arrive; drain it.
				for got := 0; got < n; {
					k, err := srv.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					got += k
				}
			})
			t.Run("write future, peer not reading", func(t *testing.T) {
				// The peer does not read: Write blocks once every buffer
				// is full, then times out, reporting what it wrote; what
				// it reported is exactly what the peer then reads.
				cli.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				var total int64
				var werr error
				chunk := stream{9}.bytes(0, 1<<20)
				for werr == nil {
					var n int
					n, werr = cli.Write(chunk[:min(len(chunk), 64<<10+int(total%7))])
					total += int64(n)
				}
				if !isTimeout(werr) {
					t.Fatalf("Write: %v after %d bytes; want a timeout", werr, total)
				}
				cli.SetWriteDeadline(time.Time{})
				total++ // the "!" below
				readDone := make(chan error, 1)
				go func() {
					got := int64(0)
					for got < total {
						k, err := srv.Read(make([]byte, 256<<10))
						if err != nil {
							readDone <- fmt.Errorf("peer read after %d of %d bytes: %w", got, total, err)
							return
						}
						got += int64(k)
					}
					readDone <- nil
				}()
				if _, err := cli.Write([]byte("!")); err != nil {
					t.Fatalf("Write after clearing the deadline: %v", err)
				}
				if err := <-readDone; err != nil {
					t.Fatal(err)
				}
				srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if k, err := srv.Read(buf); k != 0 || !isTimeout(err) {
					t.Errorf("peer got %d bytes more than the writes reported", k)
				}
				srv.SetReadDeadline(time.Time{})
			})
			cli.Close()
			srv.Close()
			waitConnsGone(t, p.a, p.b)
		})
	}
}

// TestHTTP serves HTTP over a stack listener and uses it through
// http.Transport with DialContext on the other stack: several requests
// with bodies both ways reuse a keep-alive connection.
func TestHTTP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			noLeaks(t)
			p := newTPair(t, pairOpts{v6: v6, noRecord: true})
			ln, err := p.b.Listen("tcp", ":8080")
			if err != nil {
				t.Fatal(err)
			}
			var mptcpConns atomic.Int32
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, err := io.ReadAll(r.Body)
					if err != nil {
						http.Error(w, err.Error(), 500)
						return
					}
					w.Header().Set("X-Len", fmt.Sprint(len(body)))
					w.Write(stream{7}.bytes(0, len(body)*2+10))
				}),
				ConnState: func(c net.Conn, s http.ConnState) {
					if s == http.StateNew && c.(*Conn).MultipathTCP() {
						mptcpConns.Add(1)
					}
				},
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			var dials atomic.Int32
			tr := &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					return p.a.DialContext(ctx, network, addr)
				},
			}
			client := &http.Client{Transport: tr, Timeout: slack(time.Minute)}
			url := "http://" + netip.AddrPortFrom(p.bAddr, 8080).String() + "/"
			for i, size := range []int{0, 1, 1000, 300000, 70000} {
				body := stream{8}.bytes(0, size)
				resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Len") != fmt.Sprint(size) ||
					!bytes.Equal(got, stream{7}.bytes(0, size*2+10)) {
					t.Fatalf("request %d: status %d, X-Len %s, %d bytes, %v", i, resp.StatusCode, resp.Header.Get("X-Len"), len(got), err)
				}
			}
			if dials.Load() != 1 || mptcpConns.Load() != 1 {
				t.Errorf("%d dials, %d MPTCP connections served; want one kept alive", dials.Load(), mptcpConns.Load())
			}
			tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), slack(30*time.Second))
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
			waitConnsGone(t, p.a, p.b)
		})
	}
}

// selfSigned returns a TLS certificate for name and a pool trusting it.
func selfSigned(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// TestTLS runs TLS 1.3 over a connection (tls.Client on one end,
// tls.Server on the other), moves data both ways through it and closes
// with close_notify, in both roles.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t, "umptcp.test")
	n := sized(4<<20, 8, 256<<10)
	for _, v6 := range []bool{false, true} {
		for _, from := range []byte{'a', 'b'} {
			t.Run(fmt.Sprintf("v6=%v/initiator=%c", v6, from), func(t *testing.T) {
				noLeaks(t)
				p := newTPair(t, pairOpts{v6: v6, noRecord: true})
				cli, srv := connect(t, p.pair, from, 6200)
				tc := tls.Client(cli, &tls.Config{ServerName: "umptcp.test", RootCAs: pool, MinVersion: tls.VersionTLS13})
				ts := tls.Server(srv, &tls.Config{Certificates: []tls.Certificate{cert}})
				var wg sync.WaitGroup
				errs := make(chan error, 4)
				wg.Add(2)
				for _, side := range []struct {
					c      *tls.Conn
					out    stream
					in     stream
					closer func() error
				}{{tc, stream{1}, stream{2}, tc.CloseWrite}, {ts, stream{2}, stream{1}, ts.CloseWrite}} {
					go func() {
						defer wg.Done()
						if err := side.c.Handshake(); err != nil {
							errs <- err
							return
						}
						wdone := make(chan error, 1)
						go func() {
							_, err := io.Copy(side.c, side.out.reader(int64(n)))
							if err == nil {
								err = side.closer()
							}
							wdone <- err
						}()
						ck := newChecker(side.in, int64(n))
						if _, err := io.Copy(ck, side.c); err != nil {
							errs <- err
						}
						if ck.off != int64(n) || ck.bad >= 0 {
							errs <- fmt.Errorf("read %d bytes, first wrong at %d", ck.off, ck.bad)
						}
						if err := <-wdone; err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
				if st := tc.ConnectionState(); st.Version != tls.VersionTLS13 || !st.HandshakeComplete {
					t.Errorf("TLS state %+v", st)
				}
				if !cli.MultipathTCP() || !srv.MultipathTCP() {
					t.Errorf("fell back: %v / %v", cli.Info(), srv.Info())
				}
				tc.Close()
				ts.Close()
				waitConnsGone(t, p.a, p.b)
			})
		}
	}
}
