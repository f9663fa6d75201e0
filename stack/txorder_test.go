package stack

import (
	"io"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestSynthesisedACKKeepsWireOrder holds a synthesised pure ACK in the link
// while the peer sends data that the stack's TCP acknowledges, then lets it
// go. A pure ACK built from the state of one moment must leave before any
// segment TCP sends later (the shim's txMu): otherwise its DATA_ACK, TCP
// acknowledgment and timestamp go backwards on the wire (seen against the
// kernel: decode --verify "data ACK went backwards on this subflow").
func TestSynthesisedACKKeepsWireOrder(t *testing.T) {
	noLeaks(t)
	p := newTPair(t, pairOpts{})
	cli, srv := connect(t, p.pair, 'a', 5900)
	defer cli.Close()
	defer srv.Close()
	d := time.Now().Add(slack(20 * time.Second))
	cli.SetDeadline(d)
	srv.SetDeadline(d)

	const chunk = 64 << 10
	buf := make([]byte, chunk)
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(cli, make([]byte, 2*chunk))
		read <- err
	}()
	if _, err := srv.Write(buf); err != nil {
		t.Fatal(err)
	}

	h := p.ta.holdNextWrite()
	sent := make(chan bool, 1)
	go func() { sent <- cli.sendPureACK() }()
	select {
	case <-h.held:
	case <-time.After(slack(10 * time.Second)):
		t.Fatal("the pure ACK never reached the link")
	}
	// While the pure ACK waits in the link, more data arrives; TCP's ACKs
	// of it carry a higher DATA_ACK. Give them time to be sent.
	if _, err := srv.Write(buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(h.release)
	if !<-sent {
		t.Fatal("no pure ACK was sent")
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}

	var lastDataAck uint64
	var lastAck uint32
	var n, acks int
	for _, w := range p.cap.snapshot() {
		if w.from != 'a' || !w.is(uint8(header.TCPFlagAck)) {
			continue
		}
		n++
		if n > 1 && int32(w.ack-lastAck) < 0 {
			t.Errorf("TCP ack went backwards: %d after %d", w.ack, lastAck)
		}
		lastAck = w.ack
		dss, ok := w.dss()
		if !ok || !dss.HasAck {
			continue
		}
		if !dss.Ack64 {
			t.Fatalf("a 32-bit DATA_ACK: %+v", dss)
		}
		if dss.DataAck < lastDataAck {
			t.Errorf("DATA_ACK went backwards: %d after %d", dss.DataAck, lastDataAck)
		}
		lastDataAck = dss.DataAck
		acks++
	}
	if acks < 3 {
		t.Fatalf("only %d segments with a DATA_ACK from the client", acks)
	}
}

// TestWriteTrimmedBySendBuffer shrinks and grows the subflow's send buffer
// while the connection writes: gVisor then queues less of a write than it
// read (it copies without its endpoint lock), and the mappings of the bytes
// it did not take must be taken back, or the peer would get wrong DSNs.
// The stream must arrive intact both ways.
func TestWriteTrimmedBySendBuffer(t *testing.T) {
	noLeaks(t)
	p := newTPair(t, pairOpts{noRecord: true})
	// Each run moves 32 MiB each way; a run trims some twenty writes.
	for run := 0; run < 5 && p.a.Counters().UmptcpWritesTrimmed.Load() == 0; run++ {
		trimmedTransfer(t, p, uint16(5901+run))
	}
	if p.a.Counters().UmptcpWritesTrimmed.Load() == 0 {
		t.Fatal("no write was trimmed in five runs: the test did not test")
	}
	t.Logf("writes trimmed: %d", p.a.Counters().UmptcpWritesTrimmed.Load())
}

func trimmedTransfer(t *testing.T, p *tpair, port uint16) {
	cli, srv := connect(t, p.pair, 'a', port)
	defer cli.Close()
	defer srv.Close()
	d := time.Now().Add(slack(60 * time.Second))
	cli.SetDeadline(d)
	srv.SetDeadline(d)
	ep := cli.subList()[0].ep
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			size := int64(1 << 20)
			if i%2 == 1 {
				size = 16 << 10
			}
			ep.SocketOptions().SetSendBufferSize(size, true)
			runtime.Gosched()
		}
	}()
	const n = 32 << 20
	toS, toC := transfer(cli, srv, n, n, 256<<10)
	close(stop)
	<-done
	checkResult(t, "up", toS, stream{1}, n)
	checkResult(t, "down", toC, stream{2}, n)
}
