package stack

import (
	"sync/atomic"
	"time"

	"github.com/umptcp/umptcp/options"
	"github.com/umptcp/umptcp/subflow"
)

// ofoQueue holds data that arrived ahead of the next expected data
// sequence number (from another subflow, or a checksummed mapping read
// whole), in DSN order, bounded by the receive buffer. Only the reader
// touches it.
type ofoQueue struct {
	segs []ofoSeg
	// size is the bytes held. The reader changes the queue (readMu held);
	// the workers read size without that lock (unreadData).
	size atomic.Int64
}

type ofoSeg struct {
	dsn uint64
	b   []byte
}

func (q *ofoQueue) room(limit int) int { return limit - int(q.size.Load()) }

// insert adds b at dsn, dropping what is before next or already held.
func (q *ofoQueue) insert(dsn uint64, b []byte, next uint64) {
	if d := int64(next - dsn); d > 0 {
		if d >= int64(len(b)) {
			return
		}
		b, dsn = b[d:], next
	}
	i := 0
	for ; i < len(q.segs); i++ {
		s := &q.segs[i]
		end := s.dsn + uint64(len(s.b))
		if int64(dsn-end) >= 0 {
			continue // wholly after s
		}
		if int64(dsn-s.dsn) >= 0 {
			// Starts inside s: keep only what goes beyond it.
			over := int64(end - dsn)
			if over >= int64(len(b)) {
				return
			}
			b, dsn = b[over:], end
			continue
		}
		// Starts before s: keep the part before s here, the rest later.
		if gap := int64(s.dsn - dsn); gap < int64(len(b)) {
			q.insertAt(i, dsn, b[:gap])
			q.insert(s.dsn, b[gap:], next)
			return
		}
		break
	}
	q.insertAt(i, dsn, b)
}

func (q *ofoQueue) insertAt(i int, dsn uint64, b []byte) {
	q.segs = append(q.segs, ofoSeg{})
	copy(q.segs[i+1:], q.segs[i:])
	q.segs[i] = ofoSeg{dsn: dsn, b: b}
	q.size.Add(int64(len(b)))
}

// take copies in-sequence data at *next into p and advances *next.
func (q *ofoQueue) take(p []byte, next *atomic.Uint64) int {
	n := 0
	for len(q.segs) > 0 && n < len(p) {
		s := &q.segs[0]
		nx := next.Load()
		if int64(s.dsn-nx) > 0 {
			break
		}
		skip := int(nx - s.dsn)
		if skip >= len(s.b) {
			q.size.Add(-int64(len(s.b)))
			q.segs = q.segs[1:]
			continue
		}
		k := copy(p[n:], s.b[skip:])
		n += k
		next.Store(nx + uint64(k))
		if skip+k == len(s.b) {
			q.size.Add(-int64(len(s.b)))
			q.segs[0] = ofoSeg{}
			q.segs = q.segs[1:]
		}
	}
	return n
}

// csumStage collects one mapping's bytes when DSS checksums are in use: no
// byte of a mapping reaches the application before the checksum of the
// whole mapping verified (RFC 8684 §3.3.1).
type csumStage struct {
	active bool
	m      subflow.RXMapping
	buf    []byte
}

// readChecked reads the mapping m of subflow s into its stage and, once the
// mapping is complete and its checksum right, queues it for the reader.
func (c *Conn) readChecked(s *sub, p []byte, m subflow.RXMapping, rel uint32) (int, bool) {
	st := &s.stage
	if !st.active || st.m.SSN != m.SSN || st.m.DSN != m.DSN {
		if rel != m.SSN {
			// The reader is inside a mapping it did not start: cannot
			// checksum it. Treat as a failed checksum.
			c.checksumFailure(s, m)
			return 0, true
		}
		if cap(st.buf) < int(m.Len) {
			st.buf = make([]byte, 0, subflow.MaxMappingLen)
		}
		st.active, st.m, st.buf = true, m, st.buf[:0]
	}
	need := int(m.Len) - len(st.buf)
	got := c.readEP(s, st.buf[len(st.buf):len(st.buf)+need])
	if got == 0 {
		return 0, false
	}
	s.sf.Consumed(got)
	st.buf = st.buf[:len(st.buf)+got]
	if len(st.buf) < int(m.Len) {
		return 0, true
	}
	st.active = false
	var sum options.DSSChecksum
	sum.Add(st.buf)
	if !sum.Verify(m.DSN, m.SSN, m.WireLen, m.Checksum) {
		c.checksumFailure(s, m)
		return 0, true
	}
	s.csumSeen = true
	// Verified: the mapping's bytes are received data. Copy them, since
	// the stage is reused for the next mapping.
	next := c.rcvNxt.Load()
	if int64(m.DSN+uint64(m.Len)-next) <= 0 {
		c.st.counters.DuplicateData.Add(1)
		return 0, true
	}
	c.ofo.insert(m.DSN, append([]byte(nil), st.buf...), next)
	return c.ofo.take(p, &c.rcvNxt), true
}

// checksumFailure applies RFC 8684 §3.7 to a mapping whose DSS checksum
// failed: its data is dropped; on a connection that never had another
// subflow, MP_FAIL asks the peer to fall back with an infinite mapping;
// otherwise the subflow is reset with MP_TCPRST (middlebox interference).
func (c *Conn) checksumFailure(s *sub, m subflow.RXMapping) {
	c.st.counters.DataCsumErr.Add(1)
	if c.canFallback() {
		c.st.counters.DSSCorruptionFallback.Add(1)
		c.stateMu.Lock()
		if !c.failPending {
			c.failPending, c.failDSN = true, m.DSN
		}
		c.stateMu.Unlock()
		s.sf.RequestMPFail(m.DSN)
		c.sendPureACK()
		// Neither Linux nor umptcp sends the failed data again: the peer's
		// infinite mapping will leave a gap, which the reader then reports.
		// If no infinite mapping comes (the peer has no new data to carry
		// it), give up after failTimeout rather than wait forever (Linux
		// resets the subflow after its own MP_FAIL timeout).
		time.AfterFunc(c.st.failTimeout, func() {
			c.stateMu.Lock()
			pending := c.failPending && c.err == nil
			c.stateMu.Unlock()
			if pending {
				c.setErr(ErrCorrupted)
				c.queueWork(workReset)
			}
		})
		return
	}
	c.st.counters.DSSCorruptionReset.Add(1)
	s.sf.SetResetReason(options.TCPRstMiddlebox)
	s.rxErr.store(ErrCorrupted)
	s.ep.Abort()
	c.onSubflowLost(ErrCorrupted)
}
