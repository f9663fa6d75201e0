package fuzz

import (
	"net/netip"

	"github.com/umptcp/umptcp/options"
)

// FuzzFit does not take option areas as raw bytes: most random bytes are not
// a TCP option area, and the fuzzer would spend its time there. Its two spec
// arguments are programs in a small grammar instead, one op per byte, the
// following bytes its values: BuildTCPOptions turns one into the TCP options
// a stack sends (plus EOLs and raw bytes, so broken areas are tried too),
// BuildMPTCPOptions the other into MPTCP options built with their Append
// (plus raw bytes, NOPs and undefined subtypes). The seed generator
// (internal/seedgen) writes seeds in this grammar.

// TCP option ops (an op byte is taken modulo TCPOpCount).
const (
	TCPOpNOP      = iota
	TCPOpMSS      // MSS, 2 value bytes
	TCPOpWS       // NOP + window scale, 1 value byte
	TCPOpSACKPerm // SACK permitted
	TCPOpTS       // bare timestamps, 8 value bytes
	TCPOpNOPNOPTS // NOP NOP + timestamps, as Linux and gVisor align them
	TCPOpSACK     // NOP NOP + SACK: next byte % 5 blocks of 8 value bytes
	TCPOpEOL      // end of option list
	TCPOpRaw      // next byte % 41 raw bytes
	TCPOpCount
)

// MPTCP option ops (an op byte is taken modulo MPOpCount).
const (
	MPOpDSS        = iota // flags byte (A a M m F checksum, low bit first), then values
	MPOpCapable           // variant byte % 5, flags, keys, data length, checksum
	MPOpJoin              // variant byte % 3, backup, address ID, token, nonce, HMAC
	MPOpAddAddr           // flags (echo, port, IPv6), address ID, port, HMAC, address
	MPOpRemoveAddr        // 1 + byte % 37 IDs
	MPOpPrio              // backup
	MPOpFail              // DSN
	MPOpFastClose         // key
	MPOpTCPRst            // flags, reason
	MPOpRaw               // next byte % 41 raw bytes
	MPOpUnknown           // an option of an undefined subtype (9..15), 3..10 bytes
	MPOpNOP               // a NOP between options
	MPOpCount
)

const (
	sackBlockLen  = 8
	maxRawSpecLen = options.MaxTCPOptionsLen + 1
)

// RawTCPSpec returns the TCP spec of exactly the bytes b (at most 40).
func RawTCPSpec(b []byte) []byte { return append([]byte{TCPOpRaw, byte(len(b))}, b...) }

// RawMPTCPSpec returns the MPTCP spec of exactly the bytes b (at most 40).
func RawMPTCPSpec(b []byte) []byte { return append([]byte{MPOpRaw, byte(len(b))}, b...) }

// specReader hands out the bytes of a fuzzer input; past the end it returns
// zeros, so every input builds something.
type specReader struct{ b []byte }

func (r *specReader) more() bool { return len(r.b) > 0 }

func (r *specReader) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *specReader) bytes(n int) []byte {
	out := make([]byte, n)
	copy(out, r.b)
	r.b = r.b[min(n, len(r.b)):]
	return out
}

func (r *specReader) u16() uint16 { return uint16(r.next())<<8 | uint16(r.next()) }
func (r *specReader) u32() uint32 { return uint32(r.u16())<<16 | uint32(r.u16()) }
func (r *specReader) u64() uint64 { return uint64(r.u32())<<32 | uint64(r.u32()) }

// BuildTCPOptions turns a spec into a TCP option area.
func BuildTCPOptions(spec []byte) []byte {
	r := specReader{spec}
	var b []byte
	for r.more() {
		switch r.next() % TCPOpCount {
		case TCPOpNOP:
			b = append(b, options.TCPOptionNOP)
		case TCPOpMSS:
			b = append(b, options.TCPOptionMSS, 4, r.next(), r.next())
		case TCPOpWS:
			b = append(b, options.TCPOptionNOP, options.TCPOptionWS, 3, r.next())
		case TCPOpSACKPerm:
			b = append(b, options.TCPOptionSACKPerm, 2)
		case TCPOpTS:
			b = append(b, options.TCPOptionTimestamp, 10)
			b = append(b, r.bytes(8)...)
		case TCPOpNOPNOPTS:
			b = append(b, options.TCPOptionNOP, options.TCPOptionNOP, options.TCPOptionTimestamp, 10)
			b = append(b, r.bytes(8)...)
		case TCPOpSACK:
			n := int(r.next() % 5)
			b = append(b, options.TCPOptionNOP, options.TCPOptionNOP, options.TCPOptionSACK, byte(2+n*sackBlockLen))
			b = append(b, r.bytes(n*sackBlockLen)...)
		case TCPOpEOL:
			b = append(b, options.TCPOptionEOL)
		case TCPOpRaw:
			b = append(b, r.bytes(int(r.next())%maxRawSpecLen)...)
		}
	}
	return b
}

// BuildMPTCPOptions turns a spec into a list of MPTCP options encoded back
// to back, as options.Fit takes them.
func BuildMPTCPOptions(spec []byte) []byte {
	r := specReader{spec}
	var b []byte
	for r.more() {
		switch r.next() % MPOpCount {
		case MPOpDSS:
			fl := r.next()
			d := options.DSS{HasAck: fl&1 != 0, Ack64: fl&2 != 0, HasMapping: fl&4 != 0, DSN64: fl&8 != 0,
				DataFIN: fl&16 != 0, HasChecksum: fl&32 != 0}
			if d.HasAck {
				d.DataAck = r.u64()
			}
			if d.HasMapping {
				d.DSN, d.SubflowSeq, d.DataLen, d.Checksum = r.u64(), r.u32(), r.u16(), r.u16()
			}
			b = d.Append(b)
		case MPOpCapable:
			vs := [...]options.CapableVariant{options.CapableSYN, options.CapableSYNACK, options.CapableACK,
				options.CapableData, options.CapableDataChecksum}
			b = options.MPCapable{Variant: vs[r.next()%5], Version: 1, Flags: r.next(),
				SenderKey: r.u64(), ReceiverKey: r.u64(), DataLen: r.u16(), Checksum: r.u16()}.Append(b)
		case MPOpJoin:
			vs := [...]options.JoinVariant{options.JoinSYN, options.JoinSYNACK, options.JoinACK}
			j := options.MPJoin{Variant: vs[r.next()%3], Backup: r.next()&1 != 0, AddrID: r.next(),
				Token: r.u32(), Nonce: r.u32()}
			copy(j.HMAC[:], r.bytes(options.JoinHMACLen))
			b = j.Append(b)
		case MPOpAddAddr:
			fl := r.next()
			a := options.AddAddr{Echo: fl&1 != 0, HasPort: fl&2 != 0, AddrID: r.next(), Port: r.u16(), HMAC: r.u64()}
			if fl&4 != 0 {
				a.Addr = netip.AddrFrom16([16]byte(r.bytes(16)))
			} else {
				a.Addr = netip.AddrFrom4([4]byte(r.bytes(4)))
			}
			b = a.Append(b)
		case MPOpRemoveAddr:
			n := 1 + int(r.next())%options.MaxRemoveAddrIDs
			ra, _ := options.NewRemoveAddr(r.bytes(n)...)
			b = ra.Append(b)
		case MPOpPrio:
			b = options.MPPrio{Backup: r.next()&1 != 0}.Append(b)
		case MPOpFail:
			b = options.MPFail{DSN: r.u64()}.Append(b)
		case MPOpFastClose:
			b = options.MPFastClose{ReceiverKey: r.u64()}.Append(b)
		case MPOpTCPRst:
			b = options.MPTCPRst{Flags: r.next() & 0x0f, Reason: r.next()}.Append(b)
		case MPOpRaw:
			b = append(b, r.bytes(int(r.next())%maxRawSpecLen)...)
		case MPOpUnknown:
			n := 3 + int(r.next()%8)
			b = append(b, options.Kind, byte(n), byte(9+r.next()%7)<<4)
			b = append(b, r.bytes(n-3)...)
		case MPOpNOP:
			b = append(b, options.TCPOptionNOP)
		}
	}
	return b
}
