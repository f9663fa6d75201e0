package options

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// randomOption builds a random well-formed option value and the context of
// a segment that may carry it.
func randomOption(r *rand.Rand) (builder, Context) {
	switch r.IntN(9) {
	case 0:
		vs := []CapableVariant{CapableSYN, CapableSYNACK, CapableACK, CapableData, CapableDataChecksum}
		v := vs[r.IntN(len(vs))]
		c := MPCapable{Variant: v, Version: uint8(r.IntN(16)), Flags: uint8(r.Uint32())}
		if v >= CapableSYNACK {
			c.SenderKey = r.Uint64()
		}
		if v >= CapableACK {
			c.ReceiverKey = r.Uint64()
		}
		if v >= CapableData {
			c.DataLen = uint16(r.Uint32())
		}
		if v == CapableDataChecksum {
			c.Checksum = uint16(r.Uint32())
		}
		return c, AnyContext
	case 1:
		vs := []JoinVariant{JoinSYN, JoinSYNACK, JoinACK}
		j := MPJoin{Variant: vs[r.IntN(3)]}
		switch j.Variant {
		case JoinSYN:
			j.Backup, j.AddrID, j.Token, j.Nonce = r.IntN(2) == 0, uint8(r.Uint32()), r.Uint32(), r.Uint32()
		case JoinSYNACK:
			j.Backup, j.AddrID, j.Nonce = r.IntN(2) == 0, uint8(r.Uint32()), r.Uint32()
			for i := 0; i < JoinTruncatedHMACLen; i++ {
				j.HMAC[i] = byte(r.Uint32())
			}
		case JoinACK:
			for i := range j.HMAC {
				j.HMAC[i] = byte(r.Uint32())
			}
		}
		return j, AnyContext
	case 2:
		d := DSS{DataFIN: r.IntN(4) == 0, HasAck: r.IntN(2) == 0, HasMapping: r.IntN(2) == 0}
		if d.HasAck {
			d.Ack64 = r.IntN(2) == 0
			d.DataAck = r.Uint64()
			if !d.Ack64 {
				d.DataAck &= 0xffffffff
			}
		}
		if d.HasMapping {
			d.DSN64 = r.IntN(2) == 0
			d.DSN = r.Uint64()
			if !d.DSN64 {
				d.DSN &= 0xffffffff
			}
			d.SubflowSeq, d.DataLen = r.Uint32(), uint16(r.Uint32())
			d.HasChecksum = r.IntN(2) == 0
			if d.HasChecksum {
				d.Checksum = uint16(r.Uint32())
			}
		}
		return d, dataCtx
	case 3:
		a := AddAddr{Echo: r.IntN(2) == 0, AddrID: uint8(r.Uint32()), HasPort: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			a.Addr = netip.AddrFrom4([4]byte{byte(r.Uint32()), 1, 2, 3})
		} else {
			a.Addr = netip.AddrFrom16([16]byte{0xfd, byte(r.Uint32()), 15: 1})
		}
		if a.HasPort {
			a.Port = uint16(r.Uint32())
		}
		if !a.Echo {
			a.HMAC = r.Uint64()
		}
		return a, ackCtx
	case 4:
		n := 1 + r.IntN(MaxRemoveAddrIDs)
		var ra RemoveAddr
		ra.N = uint8(n)
		for i := 0; i < n; i++ {
			ra.IDs[i] = uint8(r.Uint32())
		}
		return ra, ackCtx
	case 5:
		return MPPrio{Backup: r.IntN(2) == 0}, ackCtx
	case 6:
		return MPFail{DSN: r.Uint64()}, ackCtx
	case 7:
		return MPFastClose{ReceiverKey: r.Uint64()}, rstCtx
	}
	return MPTCPRst{Flags: uint8(r.IntN(16)), Reason: uint8(r.Uint32())}, rstCtx
}

// TestRoundTrip: build → parse → build gives the same value and bytes, and
// Len always equals the bytes appended.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 20000; i++ {
		v, ctx := randomOption(r)
		b := v.Append(nil)
		if len(b) != v.Len() {
			t.Fatalf("%#v: Len %d, appended %d", v, v.Len(), len(b))
		}
		o, n, ok := Parse(b, ctx)
		if !ok || n != len(b) || o.Malformed {
			t.Fatalf("%#v (%x): Parse %v %d %v", v, b, ok, n, o.Malformed)
		}
		got := decoded(&o)
		if got != v {
			t.Fatalf("round trip\n got %#v\nwant %#v", got, v)
		}
		if b2 := got.Append(nil); !bytes.Equal(b, b2) {
			t.Fatalf("bytes differ: %x vs %x", b, b2)
		}
	}
}
