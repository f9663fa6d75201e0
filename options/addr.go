package options

import "net/netip"

const (
	addrFlagEcho      = 0x01 // E, in the low nibble of the subtype byte
	addAddrFlagEcho   = addrFlagEcho
	addAddrBaseLen    = 4 // kind, length, subtype|E, address ID
	addAddrPortLen    = 2
	addAddrHMACLen    = 8
	removeAddrBaseLen = 3
	// MaxRemoveAddrIDs is the most address IDs one REMOVE_ADDR can carry in
	// the 40-byte option space. Linux accepts at most 8 (MPTCP_RM_IDS_MAX)
	// and ignores a longer list; the codec decodes any the RFC allows and
	// leaves such policy to the stack.
	MaxRemoveAddrIDs = MaxTCPOptionsLen - removeAddrBaseLen
)

// AddAddr is the ADD_ADDR option (RFC 8684 §3.4.1): an address, optionally
// a port, and either the sender's truncated HMAC or, in the echo the
// receiver returns, no HMAC (E set).
type AddAddr struct {
	Echo    bool
	AddrID  uint8
	Addr    netip.Addr // IPv4 or IPv6; an IPv4-mapped IPv6 address is sent as IPv6
	HasPort bool
	Port    uint16
	// HMAC is the rightmost 64 bits of the HMAC (AddAddrHMAC); absent in an echo.
	HMAC uint64
}

// Len returns the option's length on the wire: IPv4 16, 18 with a port,
// 8/10 echoed; IPv6 28, 30, 20, 22. An invalid address has length 0.
func (a AddAddr) Len() int {
	var l int
	switch {
	case a.Addr.Is4():
		l = addAddrBaseLen + 4
	case a.Addr.Is6():
		l = addAddrBaseLen + 16
	default:
		return 0
	}
	if a.HasPort {
		l += addAddrPortLen
	}
	if !a.Echo {
		l += addAddrHMACLen
	}
	return l
}

// Append appends the option to b. An AddAddr without a valid address
// appends nothing.
func (a AddAddr) Append(b []byte) []byte {
	l := a.Len()
	if l == 0 {
		return b
	}
	var flags uint8
	if a.Echo {
		flags = addrFlagEcho
	}
	b = header(b, l, SubtypeAddAddr, flags)
	b = append(b, a.AddrID)
	if a.Addr.Is4() {
		ip := a.Addr.As4()
		b = append(b, ip[:]...)
	} else {
		ip := a.Addr.As16()
		b = append(b, ip[:]...)
	}
	if a.HasPort {
		b = append16(b, a.Port)
	}
	if !a.Echo {
		b = append64(b, a.HMAC)
	}
	return b
}

// addAddrLenOK accepts exactly the eight lengths of §3.4.1, the echo flag
// deciding whether the HMAC is there (Linux: mptcp_parse_option).
func addAddrLenOK(echo bool, l int) bool {
	if !echo {
		l -= addAddrHMACLen
	}
	switch l {
	case addAddrBaseLen + 4, addAddrBaseLen + 4 + addAddrPortLen,
		addAddrBaseLen + 16, addAddrBaseLen + 16 + addAddrPortLen:
		return true
	}
	return false
}

func decodeAddAddr(b []byte) AddAddr {
	a := AddAddr{Echo: b[2]&addrFlagEcho != 0}
	l := len(b)
	if !a.Echo {
		l -= addAddrHMACLen
	}
	if !addAddrLenOK(a.Echo, len(b)) {
		return AddAddr{}
	}
	a.AddrID = b[3]
	p := b[addAddrBaseLen:]
	switch l - addAddrBaseLen {
	case 4, 4 + addAddrPortLen:
		a.Addr = netip.AddrFrom4([4]byte(p[:4]))
		p = p[4:]
	default:
		a.Addr = netip.AddrFrom16([16]byte(p[:16]))
		p = p[16:]
	}
	if l-addAddrBaseLen == 4+addAddrPortLen || l-addAddrBaseLen == 16+addAddrPortLen {
		a.HasPort = true
		a.Port = be16(p)
		p = p[addAddrPortLen:]
	}
	if !a.Echo {
		a.HMAC = be64(p)
	}
	return a
}

// RemoveAddr is the REMOVE_ADDR option (§3.4.2): one or more address IDs
// whose subflows the sender closes.
type RemoveAddr struct {
	N   uint8
	IDs [MaxRemoveAddrIDs]uint8
}

// List returns the address IDs. The slice aliases r.
func (r *RemoveAddr) List() []uint8 { return r.IDs[:min(int(r.N), MaxRemoveAddrIDs)] }

// Len returns the option's length on the wire.
func (r RemoveAddr) Len() int { return removeAddrBaseLen + min(int(r.N), MaxRemoveAddrIDs) }

// Append appends the option to b. A RemoveAddr with no IDs is not an option
// and appends nothing.
func (r RemoveAddr) Append(b []byte) []byte {
	if r.N == 0 {
		return b
	}
	b = header(b, r.Len(), SubtypeRemoveAddr, 0)
	return append(b, r.List()...)
}

// NewRemoveAddr returns a RemoveAddr for ids; ok is false if there are none
// or more than fit in one option.
func NewRemoveAddr(ids ...uint8) (r RemoveAddr, ok bool) {
	if len(ids) == 0 || len(ids) > MaxRemoveAddrIDs {
		return RemoveAddr{}, false
	}
	r.N = uint8(copy(r.IDs[:], ids))
	return r, true
}

func decodeRemoveAddr(b []byte) RemoveAddr {
	var r RemoveAddr
	r.N = uint8(copy(r.IDs[:], b[removeAddrBaseLen:]))
	return r
}
