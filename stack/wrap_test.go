package stack

import (
	"testing"
	"time"

	"github.com/umptcp/umptcp/emu"
	"github.com/umptcp/umptcp/subflow"
)

// TestSubflowSequenceWrap moves more than 4 GiB one way on one subflow, so
// that its relative sequence numbers wrap (the subflow's mapping tables and
// ACK handling count from 1, in 32 bits), and checks every byte. A bug
// there stalled transfers after exactly 4 GiB against the kernel.
func TestSubflowSequenceWrap(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("moves 4.3 GB: not in -short or -race runs")
	}
	const n = 1<<32 + 256<<20
	// Some loss, so that TCP retransmits around the wrap too.
	p := newTPair(t, pairOpts{ab: emu.Config{Loss: 0.0005, Seed: 3}, noRecord: true})
	cli, srv := connect(t, p.pair, 'a', 4900)
	d := time.Now().Add(2 * time.Minute)
	cli.SetDeadline(d)
	srv.SetDeadline(d)
	up, _ := transfer(cli, srv, n, 0, 256<<10)
	checkResult(t, "up", up, stream{1}, n)
	if st, _ := cli.sub0Stats().(subflow.Stats); st.TXNoMapping != 0 {
		t.Errorf("TXNoMapping = %d", st.TXNoMapping)
	}
	if in := cli.Info(); len(in.Subflows) != 1 || in.Subflows[0].BytesAcked < n {
		t.Errorf("subflow acknowledged %d bytes of %d: %v", in.Subflows[0].BytesAcked, int64(n), in)
	}
	cli.Close()
	srv.Close()
}
