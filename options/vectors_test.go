package options

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
)

// Vectors from ../shared/RFC8684.md: Linux net/mptcp/crypto_test.c and
// values cross-computed for this project.
const (
	keyA   = 0x0102030405060708
	keyB   = 0x1112131415161718
	nonceA = 0xa1a2a3a4
	nonceB = 0xb1b2b3b4
)

func TestTokenIDSNVector(t *testing.T) {
	token, idsn := TokenIDSN(keyA)
	if token != 0x66840dda || idsn != 0xf5a101d3d29d6f72 {
		t.Fatalf("TokenIDSN(%#x) = %#x, %#x; want 0x66840dda, 0xf5a101d3d29d6f72", uint64(keyA), token, idsn)
	}
	if Token(keyA) != token || IDSN(keyA) != idsn {
		t.Fatal("Token/IDSN disagree with TokenIDSN")
	}
}

// TestLinuxCryptoVectors runs the cases of Linux's crypto_test.c: there the
// 16 ASCII bytes of the key are read as two big-endian 64-bit keys and the
// 8 ASCII bytes of the message are hashed as they are.
func TestLinuxCryptoVectors(t *testing.T) {
	cases := []struct{ key, msg, want string }{
		{"0b0b0b0b0b0b0b0b", "48692054", "8385e24fb4235ac37556b6b886db106284a1da671699f46db1f235ec622dcafa"},
		{"aaaaaaaaaaaaaaaa", "dddddddd", "2c5e219164ff1dca1c4a92318d847bb6b9d44492984e1eb71aff9022f71046e9"},
		{"0102030405060708", "cdcdcdcd", "e73b9ba9969969cefb04aa0d6df18ec2fcc075b6f23b4d8c4da736a5dbbc6e7d"},
	}
	for _, c := range cases {
		k1 := binary.BigEndian.Uint64([]byte(c.key[:8]))
		k2 := binary.BigEndian.Uint64([]byte(c.key[8:]))
		got := hmacSHA256(k1, k2, []byte(c.msg))
		if hex.EncodeToString(got[:]) != c.want {
			t.Errorf("HMAC(%q, %q) = %x, want %s", c.key, c.msg, got, c.want)
		}
		// JoinHMAC is the same construction over two 32-bit nonces.
		n1 := binary.BigEndian.Uint32([]byte(c.msg[:4]))
		n2 := binary.BigEndian.Uint32([]byte(c.msg[4:]))
		if j := JoinHMAC(k1, k2, n1, n2); j != got {
			t.Errorf("JoinHMAC disagrees with the vector for key %q", c.key)
		}
	}
}

func TestHMACMatchesStdlib(t *testing.T) {
	for i := 0; i < 200; i++ {
		k1, k2 := uint64(i)*0x9e3779b97f4a7c15, ^uint64(i)*0x12345
		msg := make([]byte, i%33)
		for j := range msg {
			msg[j] = byte(i * j)
		}
		var key [16]byte
		binary.BigEndian.PutUint64(key[:], k1)
		binary.BigEndian.PutUint64(key[8:], k2)
		m := hmac.New(sha256.New, key[:])
		m.Write(msg)
		want := m.Sum(nil)
		got := hmacSHA256(k1, k2, msg)
		if !hmac.Equal(got[:], want) {
			t.Fatalf("hmacSHA256 differs from crypto/hmac for %d-byte message", len(msg))
		}
	}
}

func TestJoinHMACVectors(t *testing.T) {
	if got := TruncatedJoinHMAC(keyB, keyA, nonceB, nonceA); got != 0x864b40428762fd06 {
		t.Errorf("truncated HMAC-B = %016x, want 864b40428762fd06", got)
	}
	a := JoinHMAC(keyA, keyB, nonceA, nonceB)
	if got := hex.EncodeToString(a[:JoinHMACLen]); got != "53037f2899475529844115fd07e665d23d3554fb" {
		t.Errorf("HMAC-A = %s, want 53037f2899475529844115fd07e665d23d3554fb", got)
	}

	synack := MPJoin{Variant: JoinSYNACK, Nonce: nonceB}
	binary.BigEndian.PutUint64(synack.HMAC[:], 0x864b40428762fd06)
	if !VerifyJoinSYNACK(synack, keyA, keyB, nonceA) {
		t.Error("VerifyJoinSYNACK rejects the vector")
	}
	synack.HMAC[7] ^= 1
	if VerifyJoinSYNACK(synack, keyA, keyB, nonceA) {
		t.Error("VerifyJoinSYNACK accepts a wrong HMAC")
	}
	ack := MPJoin{Variant: JoinACK}
	copy(ack.HMAC[:], a[:])
	if !VerifyJoinACK(ack, keyA, keyB, nonceA, nonceB) {
		t.Error("VerifyJoinACK rejects the vector")
	}
	ack.HMAC[19] ^= 0x80
	if VerifyJoinACK(ack, keyA, keyB, nonceA, nonceB) {
		t.Error("VerifyJoinACK accepts a wrong HMAC")
	}
}

func TestAddAddrHMACVector(t *testing.T) {
	addr := netip.MustParseAddr("10.0.0.2")
	if got := AddAddrHMAC(keyA, keyB, 1, addr, 0); got != 0x4e42b6a25d2d16fb {
		t.Fatalf("ADD_ADDR HMAC = %016x, want 4e42b6a25d2d16fb", got)
	}
	a := AddAddr{AddrID: 1, Addr: addr, HMAC: 0x4e42b6a25d2d16fb}
	if !VerifyAddAddr(a, keyA, keyB) {
		t.Error("VerifyAddAddr rejects the vector")
	}
	if VerifyAddAddr(a, keyB, keyA) {
		t.Error("VerifyAddAddr accepts the HMAC with the keys swapped")
	}
	a.HasPort, a.Port = true, 0
	if !VerifyAddAddr(a, keyA, keyB) {
		t.Error("a port of 0 on the wire must hash like no port (two zero bytes)")
	}
}
