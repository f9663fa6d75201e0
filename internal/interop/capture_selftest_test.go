//go:build linux

package interop

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records errors instead of failing, to test
// the checks themselves.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }

// TestCaptureChecksCatch makes sure the capture checks are not vacuous: a
// capture with a malformed MPTCP option (a DSS of length 3) fails both
// decode's well-formed check and tshark's, and a capture with nothing wrong
// passes.
func TestCaptureChecksCatch(t *testing.T) {
	requireSuite(t)
	dir := t.TempDir()
	write := func(name string, opts []byte) *capture {
		p := filepath.Join(dir, name+".pcap")
		if err := os.WriteFile(p, rawPcap(tcpSegment(opts)), 0o644); err != nil {
			t.Fatal(err)
		}
		return &capture{path: p, dev: name, stopped: true}
	}
	bad := &recorder{TB: t}
	write("bad", []byte{30, 3, 0x20}).verify(bad, captureWant{})
	var decodeSaw, tsharkSaw bool
	for _, e := range bad.errs {
		t.Logf("caught: %s", e)
		decodeSaw = decodeSaw || strings.Contains(e, "malformed MPTCP options")
		tsharkSaw = tsharkSaw || strings.Contains(e, "tshark") && strings.Contains(e, "_ws.malformed")
	}
	if !decodeSaw || !tsharkSaw {
		t.Errorf("a malformed DSS went through: decode caught it %v, tshark %v", decodeSaw, tsharkSaw)
	}
	// A well-formed DSS with a data ACK only: no error.
	good := &recorder{TB: t}
	dss := []byte{30, 8, 0x20, 0x01, 0, 0, 0, 1}
	write("good", dss).verify(good, captureWant{})
	if len(good.errs) > 0 {
		t.Errorf("a well-formed capture fails: %v", good.errs)
	}
}

// tcpSegment is an IPv4 ACK from 10.0.0.1:1000 to 10.0.0.2:80 with the
// given TCP options (padded with NOPs) and no payload. Checksums are left
// zero: neither decode nor tshark (by default) checks them.
func tcpSegment(opts []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	tcp := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(tcp[0:], 1000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	binary.BigEndian.PutUint32(tcp[8:], 1)
	tcp[12] = byte(len(tcp)/4) << 4
	tcp[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], opts)
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+len(tcp)))
	return append(ip, tcp...)
}

// rawPcap is a pcap file (LINKTYPE_RAW) holding the packets.
func rawPcap(pkts ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 101)
	for i, p := range pkts {
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
