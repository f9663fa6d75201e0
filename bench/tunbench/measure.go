//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The wire protocol between the client (the side under test: a kernel socket in "ours"
// or a userspace stack) and the kernel server in "peer":
//
//	client → server: 1 byte mode ('U' upload, 'D' download) + 8 bytes duration (ns)
//	upload:   client sends for the duration, then half-closes; the server counts bytes
//	          from the first byte to EOF and replies 16 bytes: bytes, nanoseconds.
//	download: the server sends for the duration, then closes; the client counts.
//
// Throughput is always measured at the receiver, from its first byte to EOF.

const chunk = 256 << 10

type result struct {
	bytes int64
	dur   time.Duration
}

func (r result) gbps() float64 {
	if r.dur <= 0 {
		return 0
	}
	return float64(r.bytes) * 8 / r.dur.Seconds() / 1e9
}

// closeWriter is what net.TCPConn, gonet.TCPConn and a umptcp Conn have in common.
type closeWriter interface {
	CloseWrite() error
}

// serve answers clients on ln until it is closed.
func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if err := serveConn(c); err != nil {
				fmt.Printf("server: %v\n", err)
			}
		}()
	}
}

func serveConn(c net.Conn) error {
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	d := time.Duration(binary.BigEndian.Uint64(hdr[1:]))
	switch hdr[0] {
	case 'U':
		r, err := receive(c)
		if err != nil {
			return err
		}
		var out [16]byte
		binary.BigEndian.PutUint64(out[:], uint64(r.bytes))
		binary.BigEndian.PutUint64(out[8:], uint64(r.dur))
		_, err = c.Write(out[:])
		return err
	case 'D':
		return send(c, d)
	}
	return errors.New("bad mode")
}

// send writes for d, then half-closes.
func send(c net.Conn, d time.Duration) error {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return errors.New("connection cannot half-close")
}

// receive reads to EOF and times from the first byte.
func receive(c net.Conn) (result, error) {
	buf := make([]byte, chunk)
	var (
		r     result
		start time.Time
	)
	for {
		n, err := c.Read(buf)
		if n > 0 && r.bytes == 0 {
			start = time.Now()
		}
		r.bytes += int64(n)
		if err == io.EOF {
			r.dur = time.Since(start)
			return r, nil
		}
		if err != nil {
			return r, err
		}
	}
}

// run measures one direction on a fresh connection from dial.
func run(dial func() (net.Conn, error), upload bool, d time.Duration) (result, error) {
	c, err := dial()
	if err != nil {
		return result{}, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 30*time.Second))
	var hdr [9]byte
	hdr[0] = 'D'
	if upload {
		hdr[0] = 'U'
	}
	binary.BigEndian.PutUint64(hdr[1:], uint64(d))
	if _, err := c.Write(hdr[:]); err != nil {
		return result{}, err
	}
	if !upload {
		return receive(c)
	}
	if err := send(c, d); err != nil {
		return result{}, err
	}
	var out [16]byte
	if _, err := io.ReadFull(c, out[:]); err != nil {
		return result{}, fmt.Errorf("reading the server's count: %w", err)
	}
	return result{bytes: int64(binary.BigEndian.Uint64(out[:])), dur: time.Duration(binary.BigEndian.Uint64(out[8:]))}, nil
}
