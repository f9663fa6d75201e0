package kernelpeer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
)

// Payload returns the endless deterministic byte stream that a peer with this seed sends:
// the ChaCha8 keystream keyed by the seed. math/rand/v2 fixes ChaCha8's output for a
// given seed, so the same seed gives the same bytes on every Go release, and a receiver
// can recompute the digest of what it should have got (see PayloadSHA256).
func Payload(seed uint64) io.Reader {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	copy(key[8:], "umptcp kernelpeer payload")
	return rand.NewChaCha8(key)
}

// PayloadSHA256 returns the hex SHA-256 of the first n bytes of Payload(seed).
func PayloadSHA256(seed uint64, n int64) string {
	h := sha256.New()
	if _, err := io.CopyN(h, Payload(seed), n); err != nil {
		panic(err) // Payload never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeSizes yields the size of each Write for a range: always r.Max when the range is a
// single size, else uniform in [r.Min, r.Max] from a PCG seeded by seed.
type writeSizes struct {
	r   SizeRange
	rng *rand.Rand
}

func newWriteSizes(r SizeRange, seed uint64) *writeSizes {
	if r.IsZero() {
		r = SizeRange{Min: defaultWrite, Max: defaultWrite}
	}
	return &writeSizes{r: r, rng: rand.New(rand.NewPCG(seed, 0x756d70746370))}
}

func (w *writeSizes) next() int {
	if w.r.Min == w.r.Max {
		return w.r.Max
	}
	return w.r.Min + w.rng.IntN(w.r.Max-w.r.Min+1)
}
