package stack

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/umptcp/umptcp/emu"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// exchange opens a connection from p.a to p.b, sends up bytes up and down
// bytes down at the same time, half-closes both ways and checks SHA-256 on
// both sides. It returns the two ends (closed).
func exchange(t *testing.T, p *pair, port uint16, up, down int, during func(c, s *Conn)) (*Conn, *Conn) {
	t.Helper()
	ln, err := p.b.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	upData, downData := payload(up, 1), payload(down, 2)
	type side struct {
		conn *Conn
		sum  [32]byte
		n    int64
		err  error
	}
	run := func(c *Conn, out []byte, res *side, wg *sync.WaitGroup) {
		defer wg.Done()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(out)
			if err == nil {
				err = c.CloseWrite()
			}
			werr <- err
		}()
		h := sha256.New()
		res.n, res.err = io.Copy(h, c)
		copy(res.sum[:], h.Sum(nil))
		if err := <-werr; err != nil && res.err == nil {
			res.err = err
		}
	}
	var srv, cli side
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := ln.AcceptMPTCP()
		if err != nil {
			srv.err = err
			accepted <- nil
			return
		}
		accepted <- c
	}()
	addr := p.bAddr
	c, err := p.a.Dial("tcp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal(srv.err)
	}
	cli.conn, srv.conn = c, s
	if during != nil {
		during(c, s)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go run(c, upData, &cli, &wg)
	go run(s, downData, &srv, &wg)
	wg.Wait()
	if cli.err != nil || srv.err != nil {
		t.Fatalf("client: %v, server: %v\nclient %v\nserver %v", cli.err, srv.err, c.Info(), s.Info())
	}
	if srv.n != int64(up) || srv.sum != sha256.Sum256(upData) {
		t.Fatalf("server received %d of %d bytes, digest ok %v", srv.n, up, srv.sum == sha256.Sum256(upData))
	}
	if cli.n != int64(down) || cli.sum != sha256.Sum256(downData) {
		t.Fatalf("client received %d of %d bytes, digest ok %v", cli.n, down, cli.sum == sha256.Sum256(downData))
	}
	c.Close()
	s.Close()
	return c, s
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name   string
		ab, ba emu.Config
		mptcp  bool
	}{
		{"clean", emu.Config{}, emu.Config{}, true},
		{"loss 2%", emu.Config{Loss: 0.02, Seed: 1}, emu.Config{Loss: 0.02, Seed: 2}, true},
		{"loss 5% delay", emu.Config{Loss: 0.05, Delay: 2 * time.Millisecond, Seed: 3}, emu.Config{Loss: 0.05, Delay: 2 * time.Millisecond, Seed: 4}, true},
		{"reorder", emu.Config{Reorder: 0.05, Delay: time.Millisecond, Seed: 5}, emu.Config{Reorder: 0.05, Delay: time.Millisecond, Seed: 6}, true},
		{"duplicate", emu.Config{Duplicate: 0.05, Seed: 7}, emu.Config{Duplicate: 0.05, Seed: 8}, true},
		{"corrupt", emu.Config{Corrupt: 0.02, Seed: 9}, emu.Config{Corrupt: 0.02, Seed: 10}, true},
		{"strip all", emu.Config{Strip: emu.StripAll}, emu.Config{Strip: emu.StripAll}, false},
	}
	for _, tc := range cases {
		for _, v6 := range []bool{false, true} {
			name := tc.name
			if v6 {
				name += "/v6"
			}
			t.Run(name, func(t *testing.T) {
				p := newPair(t, v6, Config{}, Config{}, tc.ab, tc.ba)
				c, s := exchange(t, p, 5000, 4<<20, 4<<20, nil)
				if c.MultipathTCP() != tc.mptcp && !tc.mptcp {
					t.Errorf("client MPTCP %v, want %v (%v)", c.MultipathTCP(), tc.mptcp, c.Info())
				}
				if tc.mptcp && (c.Info().FallbackReason != "" || s.Info().FallbackReason != "") {
					t.Errorf("fell back: %v / %v\na: %v\nb: %v", c.Info(), s.Info(), nonZero(p.a.Counters()), nonZero(p.b.Counters()))
				}
			})
		}
	}
}

func nonZero(c *Counters) map[string]uint64 {
	m := c.Snapshot()
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}
