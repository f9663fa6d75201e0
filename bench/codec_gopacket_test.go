package bench

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// MPTCP option lengths and DSS flags as a gopacket user writes them down
// from RFC 8684, since gopacket has no constants a user can rely on.
const (
	mptcpKind        = layers.TCPOptionKind(30)
	dssFlagFIN       = 0x10
	dssFlagDSN64     = 0x08
	dssFlagMapping   = 0x04
	dssFlagAck64     = 0x02
	dssFlagAck       = 0x01
	addAddrFlagEcho  = 0x01
	joinFlagBackup   = 0x01
	prioFlagBackup   = 0x01
	tcpFlagsRSTBit   = 0x04
	tcpOptTimestamps = layers.TCPOptionKindTimestamps
)

// tcpFlags rebuilds the flags byte from gopacket's booleans.
func tcpFlags(t *layers.TCP) uint8 {
	var f uint8
	for i, set := range [8]bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR} {
		if set {
			f |= 1 << i
		}
	}
	return f
}

// extractGopacket is "the gopacket way a user would do it today": after
// layers.TCP has decoded the segment, walk tcp.Options, find kind 30, switch
// on the subtype nibble and read each option's fields from OptionData (the
// bytes after kind and length) with encoding/binary, checking each length
// against RFC 8684's variants as a careful user would.
func extractGopacket(t *layers.TCP, f *segFields) {
	f.Flags = tcpFlags(t)
	f.PayloadLen = len(t.Payload)
	f.HasTS, f.TSVal, f.TSEcr = false, 0, 0
	f.N = 0
	for i := range t.Options {
		opt := &t.Options[i]
		switch opt.OptionType {
		case tcpOptTimestamps:
			if len(opt.OptionData) == 8 {
				f.HasTS = true
				f.TSVal = binary.BigEndian.Uint32(opt.OptionData)
				f.TSEcr = binary.BigEndian.Uint32(opt.OptionData[4:])
			}
			continue
		case mptcpKind:
		default:
			continue
		}
		d := opt.OptionData
		l := len(d) + 2 // the option's length, kind and length bytes included
		if len(d) < 1 || f.N == maxFieldOpts {
			continue
		}
		of := &f.Opts[f.N]
		*of = optFields{Subtype: d[0] >> 4, Len: uint8(l)}
		switch d[0] >> 4 {
		case 0: // MP_CAPABLE: 4, 12, 20, 22 or 24 bytes
			if l != 4 && l != 12 && l != 20 && l != 22 && l != 24 {
				continue
			}
			of.Version, of.CapFlags = d[0]&0x0f, d[1]
			if l >= 12 {
				of.SenderKey = binary.BigEndian.Uint64(d[2:])
			}
			if l >= 20 {
				of.ReceiverKey = binary.BigEndian.Uint64(d[10:])
			}
			if l >= 22 {
				of.DataLen = binary.BigEndian.Uint16(d[18:])
			}
			if l == 24 {
				of.Checksum = binary.BigEndian.Uint16(d[20:])
			}
		case 1: // MP_JOIN: SYN 12, SYN/ACK 16, ACK 24
			switch l {
			case 12:
				of.Backup, of.AddrID = d[0]&joinFlagBackup != 0, d[1]
				of.Token = binary.BigEndian.Uint32(d[2:])
				of.Nonce = binary.BigEndian.Uint32(d[6:])
			case 16:
				of.Backup, of.AddrID = d[0]&joinFlagBackup != 0, d[1]
				copy(of.HMAC[:8], d[2:10])
				of.Nonce = binary.BigEndian.Uint32(d[10:])
			case 24:
				copy(of.HMAC[:], d[2:22])
			default:
				continue
			}
		case 2: // DSS
			if l < 4 {
				continue
			}
			flags := d[1] & 0x1f
			want := 4
			if flags&dssFlagAck != 0 {
				want += 4
				if flags&dssFlagAck64 != 0 {
					want += 4
				}
			}
			if flags&dssFlagMapping != 0 {
				want += 4 + 6
				if flags&dssFlagDSN64 != 0 {
					want += 4
				}
			}
			if l != want && (flags&dssFlagMapping == 0 || l != want+2) {
				continue
			}
			p := d[2:]
			if flags&dssFlagAck != 0 {
				if flags&dssFlagAck64 != 0 {
					of.DataAck, p = binary.BigEndian.Uint64(p), p[8:]
				} else {
					of.DataAck, p = uint64(binary.BigEndian.Uint32(p)), p[4:]
				}
			} else {
				flags &^= dssFlagAck64
			}
			if flags&dssFlagMapping != 0 {
				if flags&dssFlagDSN64 != 0 {
					of.DSN, p = binary.BigEndian.Uint64(p), p[8:]
				} else {
					of.DSN, p = uint64(binary.BigEndian.Uint32(p)), p[4:]
				}
				of.SubflowSeq = binary.BigEndian.Uint32(p)
				of.DataLen = binary.BigEndian.Uint16(p[4:])
				if len(p) >= 8 {
					of.HasChecksum, of.Checksum = true, binary.BigEndian.Uint16(p[6:])
				}
			} else {
				flags &^= dssFlagDSN64
			}
			of.DSSFlags = flags
		case 3: // ADD_ADDR: address 4 or 16, optional port, HMAC unless echo
			of.Echo = d[0]&addAddrFlagEcho != 0
			n := l - 4
			if !of.Echo {
				n -= 8
			}
			switch n {
			case 4, 6:
				of.Addr = netip.AddrFrom4([4]byte(d[2:6]))
			case 16, 18:
				of.Addr = netip.AddrFrom16([16]byte(d[2:18]))
			default:
				continue
			}
			of.AddrID = d[1]
			if n == 6 || n == 18 {
				of.HasPort, of.Port = true, binary.BigEndian.Uint16(d[2+n-2:])
			}
			if !of.Echo {
				of.AddrHMAC = binary.BigEndian.Uint64(d[len(d)-8:])
			}
		case 4: // REMOVE_ADDR: one or more IDs
			if l < 4 {
				continue
			}
			of.NIDs, of.AddrID = uint8(l-3), d[1]
		case 5: // MP_PRIO
			if l != 3 {
				continue
			}
			of.Backup = d[0]&prioFlagBackup != 0
		case 6: // MP_FAIL
			if l != 12 {
				continue
			}
			of.DSN = binary.BigEndian.Uint64(d[2:])
		case 7: // MP_FASTCLOSE
			if l != 12 {
				continue
			}
			of.ReceiverKey = binary.BigEndian.Uint64(d[2:])
		case 8: // MP_TCPRST, only on a RST
			if l != 4 || f.Flags&tcpFlagsRSTBit == 0 {
				continue
			}
			of.RstFlags, of.Reason = d[0]&0x0f, d[1]
		default:
			continue
		}
		f.N++
	}
}
