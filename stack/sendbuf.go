package stack

import "sync"

// sendChunkSize is the unit the send buffer grows and shrinks by.
const sendChunkSize = 64 << 10

var sendChunks = sync.Pool{New: func() any { return new([sendChunkSize]byte) }}

// sendBuffer keeps the data written to the connection, indexed by data
// sequence number, until the peer acknowledges it at the data level
// (DATA_ACK): a subflow that fails has its unacknowledged data sent again on
// another (RFC 8684 §3.3.6). It grows in pooled chunks, so an idle
// connection holds none. Only the connection's writer touches it.
type sendBuffer struct {
	chunks []*[sendChunkSize]byte
	// base is the DSN of the first byte of chunks[0]; head the first byte
	// kept (not yet acknowledged); tail the DSN after the last byte.
	base, head, tail uint64
	limit            int
}

func (b *sendBuffer) init(dsn uint64, limit int) {
	b.base, b.head, b.tail, b.limit = dsn, dsn, dsn, limit
}

// free returns how many more bytes the buffer accepts.
func (b *sendBuffer) free() int { return b.limit - int(b.tail-b.head) }

// buffered returns how many bytes are kept.
func (b *sendBuffer) buffered() int { return int(b.tail - b.head) }

// append copies p at the tail.
func (b *sendBuffer) append(p []byte) {
	for len(p) > 0 {
		off := int(b.tail - b.base)
		ci, co := off/sendChunkSize, off%sendChunkSize
		if ci == len(b.chunks) {
			b.chunks = append(b.chunks, sendChunks.Get().(*[sendChunkSize]byte))
		}
		n := copy(b.chunks[ci][co:], p)
		p = p[n:]
		b.tail += uint64(n)
	}
}

// ackedTo releases everything before dsn.
func (b *sendBuffer) ackedTo(dsn uint64) {
	switch {
	case int64(dsn-b.head) <= 0:
		return
	case int64(dsn-b.tail) > 0:
		dsn = b.tail // a DATA_FIN takes a DSN but no byte
	}
	b.head = dsn
	for len(b.chunks) > 0 && b.head-b.base >= sendChunkSize {
		sendChunks.Put(b.chunks[0])
		b.chunks[0] = nil
		b.chunks = b.chunks[1:]
		b.base += sendChunkSize
	}
	if b.head == b.tail && len(b.chunks) > 0 {
		// Empty: give the last chunk back too, so an idle connection
		// keeps no memory.
		for i, c := range b.chunks {
			sendChunks.Put(c)
			b.chunks[i] = nil
		}
		b.chunks = b.chunks[:0]
		b.base = b.head
	}
}

// byteAt copies the byte at dsn into p[0] and reports whether the buffer
// still held it.
func (b *sendBuffer) byteAt(dsn uint64, p []byte) bool { return b.copyOut(p[:1], dsn) == 1 }

// copyOut copies the bytes from dsn on into p and returns how many it
// copied (for sending them again).
func (b *sendBuffer) copyOut(p []byte, dsn uint64) int {
	if dsn-b.head >= b.tail-b.head {
		return 0
	}
	n := 0
	for n < len(p) && dsn < b.tail {
		off := int(dsn - b.base)
		ci, co := off/sendChunkSize, off%sendChunkSize
		k := copy(p[n:], b.chunks[ci][co:min(sendChunkSize, co+int(b.tail-dsn))])
		n += k
		dsn += uint64(k)
	}
	return n
}

// release returns every chunk to the pool.
func (b *sendBuffer) release() {
	for i, c := range b.chunks {
		sendChunks.Put(c)
		b.chunks[i] = nil
	}
	b.chunks = nil
	b.base, b.head = b.tail, b.tail
}
