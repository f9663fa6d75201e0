package options

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/netip"
)

// GenerateKey returns a 64-bit key (RFC 8684 §3.1) read from r, or from
// crypto/rand when r is nil. Tests pass a deterministic reader. The caller
// must regenerate the key if its token collides with a token in use on the
// host (§3.2).
func GenerateKey(r io.Reader) (uint64, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// GenerateNonce returns a 32-bit random nonce for MP_JOIN (§3.2), read from
// r or crypto/rand when r is nil.
func GenerateNonce(r io.Reader) (uint32, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// TokenIDSN returns the token (most significant 32 bits of SHA-256 of the
// key) and the initial data sequence number (least significant 64 bits) of a
// key (§3.1, §3.2). The key is hashed as 8 big-endian bytes.
func TokenIDSN(key uint64) (token uint32, idsn uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], key)
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint32(sum[:4]), binary.BigEndian.Uint64(sum[24:])
}

// Token returns the token of a key.
func Token(key uint64) uint32 { t, _ := TokenIDSN(key); return t }

// IDSN returns the initial data sequence number of a key.
func IDSN(key uint64) uint64 { _, i := TokenIDSN(key); return i }

// hmacSHA256 computes HMAC-SHA256 (RFC 2104) with the 16-byte key
// key1‖key2 over msg (at most 32 bytes) without allocating: crypto/hmac
// allocates two hash states per call, and these HMACs are computed per join
// and per address announcement, which a peer can make us do at will.
// Tests check it against crypto/hmac.
func hmacSHA256(key1, key2 uint64, msg []byte) [sha256.Size]byte {
	const block = 64
	var inner [block + 32]byte
	var outer [block + sha256.Size]byte
	binary.BigEndian.PutUint64(inner[:8], key1)
	binary.BigEndian.PutUint64(inner[8:16], key2)
	copy(outer[:16], inner[:16])
	for i := 0; i < block; i++ {
		inner[i] ^= 0x36
		outer[i] ^= 0x5c
	}
	n := copy(inner[block:], msg)
	ih := sha256.Sum256(inner[:block+n])
	copy(outer[block:], ih[:])
	return sha256.Sum256(outer[:])
}

// JoinHMAC computes the MP_JOIN HMAC a host sends (§3.2): HMAC-SHA256 with
// key = local key ‖ remote key over local nonce ‖ remote nonce. The
// responder sends the leftmost 64 bits of its HMAC in the SYN/ACK
// (TruncatedJoinHMAC), the initiator the leftmost 160 bits in the third
// ACK; each side checks the other's by computing it with the roles swapped.
func JoinHMAC(localKey, remoteKey uint64, localNonce, remoteNonce uint32) [sha256.Size]byte {
	var msg [8]byte
	binary.BigEndian.PutUint32(msg[:4], localNonce)
	binary.BigEndian.PutUint32(msg[4:], remoteNonce)
	return hmacSHA256(localKey, remoteKey, msg[:])
}

// TruncatedJoinHMAC is the leftmost 64 bits of JoinHMAC, as a responder
// sends it in the SYN/ACK.
func TruncatedJoinHMAC(localKey, remoteKey uint64, localNonce, remoteNonce uint32) uint64 {
	h := JoinHMAC(localKey, remoteKey, localNonce, remoteNonce)
	return binary.BigEndian.Uint64(h[:8])
}

// VerifyJoinSYNACK checks the truncated HMAC a responder sent, from the
// initiator's side, in constant time.
func VerifyJoinSYNACK(j MPJoin, initiatorKey, responderKey uint64, initiatorNonce uint32) bool {
	h := JoinHMAC(responderKey, initiatorKey, j.Nonce, initiatorNonce)
	return j.Variant == JoinSYNACK && hmac.Equal(h[:JoinTruncatedHMACLen], j.HMAC[:JoinTruncatedHMACLen])
}

// VerifyJoinACK checks the 160-bit HMAC an initiator sent in the third ACK,
// from the responder's side, in constant time.
func VerifyJoinACK(j MPJoin, initiatorKey, responderKey uint64, initiatorNonce, responderNonce uint32) bool {
	h := JoinHMAC(initiatorKey, responderKey, initiatorNonce, responderNonce)
	return j.Variant == JoinACK && hmac.Equal(h[:JoinHMACLen], j.HMAC[:])
}

// AddAddrHMAC computes the truncated ADD_ADDR HMAC (§3.4.1): the rightmost
// 64 bits of HMAC-SHA256 with key = sender's key ‖ receiver's key over
// address ID ‖ address ‖ port, the port as two bytes (zero when no port is
// sent), as Linux's add_addr_generate_hmac does.
func AddAddrHMAC(senderKey, receiverKey uint64, id uint8, addr netip.Addr, port uint16) uint64 {
	var msg [1 + 16 + 2]byte
	msg[0] = id
	n := 1
	if addr.Is4() {
		a := addr.As4()
		n += copy(msg[n:], a[:])
	} else {
		a := addr.As16()
		n += copy(msg[n:], a[:])
	}
	binary.BigEndian.PutUint16(msg[n:], port)
	n += 2
	h := hmacSHA256(senderKey, receiverKey, msg[:n])
	return binary.BigEndian.Uint64(h[sha256.Size-8:])
}

// VerifyAddAddr checks an ADD_ADDR's HMAC in constant time, given the
// announcer's key and ours. An echo carries no HMAC and verifies trivially
// (§3.4.1: the echo is not authenticated).
func VerifyAddAddr(a AddAddr, senderKey, receiverKey uint64) bool {
	if a.Echo {
		return true
	}
	var port uint16
	if a.HasPort {
		port = a.Port
	}
	var want, got [8]byte
	binary.BigEndian.PutUint64(want[:], AddAddrHMAC(senderKey, receiverKey, a.AddrID, a.Addr, port))
	binary.BigEndian.PutUint64(got[:], a.HMAC)
	return hmac.Equal(want[:], got[:])
}
