package decode

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/umptcp/umptcp/options"
)

func TestFormat(t *testing.T) {
	hA := [20]byte{0x53, 0x03, 0x7f, 0x28, 0x99, 0x47, 0x55, 0x29, 0x84, 0x41, 0x15, 0xfd, 0x07, 0xe6, 0x65, 0xd2, 0x3d, 0x35, 0x54, 0xfb}
	const maxU64 = 1<<64 - 1
	rm, _ := options.NewRemoveAddr(1, 2, 7)
	v6 := netip.MustParseAddr("fd00::2")
	v4 := netip.MustParseAddr("10.0.0.2")
	tests := []struct {
		name    string
		flags   uint8
		payload int
		opt     []byte
		text    string
		json    string // after the common frame/src/dst fields
	}{
		{"capable syn", FlagSYN, 0, mptcpOpts(options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: 0x81}),
			"[S] length 0 mptcp capable v1 flags 0x81",
			`"subtype":"MP_CAPABLE","len":4,"version":1,"flags":129`},
		{"capable synack", FlagSYN | FlagACK, 0, mptcpOpts(options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: 1, SenderKey: maxU64}),
			"[S.] length 0 mptcp capable v1 flags 0x1 {0xffffffffffffffff}",
			`"subtype":"MP_CAPABLE","len":12,"version":1,"flags":1,"sender_key":18446744073709551615`},
		{"capable ack", FlagACK, 0, mptcpOpts(options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: 1, SenderKey: 1, ReceiverKey: 0x8000000000000001}),
			"[.] length 0 mptcp capable v1 flags 0x1 {0x1,0x8000000000000001}",
			`"subtype":"MP_CAPABLE","len":20,"version":1,"flags":1,"sender_key":1,"receiver_key":9223372036854775809`},
		{"capable data", FlagACK | FlagPSH, 100, mptcpOpts(options.MPCapable{Variant: options.CapableData, Version: 1, Flags: 1, SenderKey: 1, ReceiverKey: 2, DataLen: 100}),
			"[P.] length 100 mptcp capable v1 flags 0x1 {0x1,0x2} data_len 100",
			`"subtype":"MP_CAPABLE","len":22,"version":1,"flags":1,"sender_key":1,"receiver_key":2,"data_len":100`},
		{"capable data csum", FlagACK, 100, mptcpOpts(options.MPCapable{Variant: options.CapableDataChecksum, Version: 1, Flags: 0x81, SenderKey: 1, ReceiverKey: 2, DataLen: 100, Checksum: 0xbeef}),
			"[.] length 100 mptcp capable v1 flags 0x81 {0x1,0x2} data_len 100 csum 0xbeef",
			`"subtype":"MP_CAPABLE","len":24,"version":1,"flags":129,"sender_key":1,"receiver_key":2,"data_len":100,"checksum":48879`},
		{"join syn", FlagSYN, 0, mptcpOpts(options.MPJoin{Variant: options.JoinSYN, Backup: true, AddrID: 7, Token: 0x6ea9daa7, Nonce: 0xf33db666}),
			"[S] length 0 mptcp join backup id 7 token 0x6ea9daa7 nonce 0xf33db666",
			`"subtype":"MP_JOIN","len":12,"backup":true,"addr_id":7,"token":1856625319,"nonce":4080907878`},
		{"join synack", FlagSYN | FlagACK, 0, mptcpOpts(options.MPJoin{Variant: options.JoinSYNACK, AddrID: 0, HMAC: hA, Nonce: 1}),
			"[S.] length 0 mptcp join id 0 hmac 0x53037f2899475529 nonce 0x1",
			`"subtype":"MP_JOIN","len":16,"backup":false,"addr_id":0,"nonce":1,"hmac":"53037f2899475529"`},
		{"join ack", FlagACK, 0, mptcpOpts(options.MPJoin{Variant: options.JoinACK, HMAC: hA}),
			"[.] length 0 mptcp join hmac 0x53037f2899475529844115fd07e665d23d3554fb",
			`"subtype":"MP_JOIN","len":24,"hmac":"53037f2899475529844115fd07e665d23d3554fb"`},
		{"dss ack only", FlagACK, 0, mptcpOpts(options.DSS{HasAck: true, DataAck: 4072628959}),
			"[.] length 0 mptcp dss ack 4072628959",
			`"subtype":"DSS","len":8,"data_fin":false,"data_ack":4072628959,"data_ack_64":false`},
		{"dss full", FlagACK, 1448, mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: maxU64, HasMapping: true, DSN64: true, DSN: maxU64 - 1, SubflowSeq: 1, DataLen: 1448, HasChecksum: true, Checksum: 0x1f}),
			"[.] length 1448 mptcp dss ack 18446744073709551615 seq 18446744073709551614 subseq 1 len 1448 csum 0x1f",
			`"subtype":"DSS","len":28,"data_fin":false,"data_ack":18446744073709551615,"data_ack_64":true,"dsn":18446744073709551614,"dsn_64":true,"ssn":1,"data_len":1448,"checksum":31`},
		{"dss fin", FlagACK | FlagFIN, 0, mptcpOpts(options.DSS{DataFIN: true, HasMapping: true, DSN: 5, DataLen: 1}),
			"[F.] length 0 mptcp dss fin seq 5 subseq 0 len 1",
			`"subtype":"DSS","len":14,"data_fin":true,"dsn":5,"dsn_64":false,"ssn":0,"data_len":1`},
		{"add-addr v4", FlagACK, 0, mptcpOpts(options.AddAddr{AddrID: 2, Addr: v4, HMAC: 0x58c441a630cc96e7}),
			"[.] length 0 mptcp add-addr id 2 10.0.0.2 hmac 0x58c441a630cc96e7",
			`"subtype":"ADD_ADDR","len":16,"echo":false,"addr_id":2,"addr":"10.0.0.2","hmac":"58c441a630cc96e7"`},
		{"add-addr v4 port small hmac", FlagACK, 0, mptcpOpts(options.AddAddr{AddrID: 2, Addr: v4, HasPort: true, Port: 8080, HMAC: 0x1f}),
			"[.] length 0 mptcp add-addr id 2 10.0.0.2:8080 hmac 0x000000000000001f",
			`"subtype":"ADD_ADDR","len":18,"echo":false,"addr_id":2,"addr":"10.0.0.2","port":8080,"hmac":"000000000000001f"`},
		{"add-addr v6 port echo", FlagACK, 0, mptcpOpts(options.AddAddr{Echo: true, AddrID: 9, Addr: v6, HasPort: true, Port: 443}),
			"[.] length 0 mptcp add-addr echo id 9 [fd00::2]:443",
			`"subtype":"ADD_ADDR","len":22,"echo":true,"addr_id":9,"addr":"fd00::2","port":443`},
		{"add-addr v6", FlagACK, 0, mptcpOpts(options.AddAddr{AddrID: 1, Addr: v6, HMAC: 1}),
			"[.] length 0 mptcp add-addr id 1 fd00::2 hmac 0x0000000000000001",
			`"subtype":"ADD_ADDR","len":28,"echo":false,"addr_id":1,"addr":"fd00::2","hmac":"0000000000000001"`},
		{"remove-addr", FlagACK, 0, mptcpOpts(rm),
			"[.] length 0 mptcp remove-addr id 1 2 7",
			`"subtype":"REMOVE_ADDR","len":6,"addr_ids":[1,2,7]`},
		{"prio backup", FlagACK, 0, mptcpOpts(options.MPPrio{Backup: true}),
			"[.] length 0 mptcp prio backup",
			`"subtype":"MP_PRIO","len":3,"backup":true`},
		{"prio", FlagACK, 0, mptcpOpts(options.MPPrio{}),
			"[.] length 0 mptcp prio non-backup",
			`"subtype":"MP_PRIO","len":3,"backup":false`},
		{"fail", FlagACK, 0, mptcpOpts(options.MPFail{DSN: maxU64}),
			"[.] length 0 mptcp fail seq 18446744073709551615",
			`"subtype":"MP_FAIL","len":12,"dsn":18446744073709551615`},
		{"fastclose", FlagACK | FlagRST, 0, mptcpOpts(options.MPFastClose{ReceiverKey: 0xce4f42f4ec655f1}),
			"[R.] length 0 mptcp fast-close key 0xce4f42f4ec655f1",
			`"subtype":"MP_FASTCLOSE","len":12,"receiver_key":929135907167426033`},
		{"tcprst", FlagRST, 0, mptcpOpts(options.MPTCPRst{Flags: options.TCPRstFlagTransient, Reason: options.TCPRstMiddlebox}),
			"[R] length 0 mptcp tcprst flags 0x1 transient reason 6 (middlebox interference)",
			`"subtype":"MP_TCPRST","len":4,"reason":6,"transient":true,"flags":1`},
		{"tcprst off rst", FlagACK, 0, mptcpOpts(options.MPTCPRst{Reason: 1}),
			"[.] length 0 mptcp tcprst malformed len 4",
			`"subtype":"MP_TCPRST","len":4,"malformed":true`},
		{"experimental", FlagACK, 0, []byte{30, 5, 0xf1, 2, 3},
			"[.] length 0 mptcp experimental len 5",
			`"subtype":"MP_EXPERIMENTAL","len":5`},
		{"unknown", FlagACK, 0, []byte{30, 3, 0xa0},
			"[.] length 0 mptcp unknown subtype 10 len 3",
			`"subtype":"UNKNOWN","len":3`},
		{"capable wrong length for syn", FlagSYN, 0, mptcpOpts(options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: 1}),
			"[S] length 0 mptcp capable malformed len 20",
			`"subtype":"MP_CAPABLE","len":20,"malformed":true`},
		{"dss length 5", FlagACK, 0, []byte{30, 5, 0x20, 0, 0},
			"[.] length 0 mptcp dss malformed len 5",
			`"subtype":"DSS","len":5,"malformed":true`},
		{"option past area", FlagACK, 0, []byte{1, 1, 1, 1, 30, 200, 0x30, 0},
			"[.] length 0 mptcp add-addr malformed len 200",
			`"subtype":"ADD_ADDR","len":200,"malformed":true`},
		{"length 1", FlagACK, 0, []byte{30, 1, 0x30, 0},
			"[.] length 0 mptcp malformed len 1",
			`"len":1,"malformed":true`},
		{"kind alone", FlagACK, 0, []byte{1, 1, 1, 30},
			"[.] length 0 mptcp malformed",
			`"malformed":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tcpSeg{src: cli4, dst: srv4, seq: 1, flags: tt.flags, opts: tt.opt, payload: make([]byte, tt.payload)}
			var p Packet
			Decode(LinkEthernet, frame4(s), 0, &p)
			p.Frame = 42
			if len(p.Options) != 1 {
				t.Fatalf("%d options", len(p.Options))
			}
			text := string(AppendText(nil, &p, 0))
			if want := "42 10.0.0.1:43672 > 10.0.0.2:8080 " + tt.text + "\n"; text != want {
				t.Errorf("text\n got %q\nwant %q", text, want)
			}
			js := string(AppendJSON(nil, &p, 0))
			if want := `{"frame":42,"src":"10.0.0.1:43672","dst":"10.0.0.2:8080",` + tt.json + "}\n"; js != want {
				t.Errorf("json\n got %s\nwant %s", js, want)
			}
			// Valid JSON, numbers kept exact.
			dec := json.NewDecoder(strings.NewReader(js))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("invalid JSON %s: %v", js, err)
			}
		})
	}
}

func TestFormatIPv6Endpoints(t *testing.T) {
	s := tcpSeg{src: cli6, dst: srv6, flags: FlagACK, opts: mptcpOpts(options.MPPrio{})}
	var p Packet
	Decode(LinkEthernet, frame6(s), 0, &p)
	p.Frame = 1
	js := AppendJSON(nil, &p, 0)
	if !bytes.HasPrefix(js, []byte(`{"frame":1,"src":"[fd00::1]:43672","dst":"[fd00::2]:8080",`)) {
		t.Errorf("json %s", js)
	}
	if text := AppendText(nil, &p, 0); !bytes.HasPrefix(text, []byte("1 [fd00::1]:43672 > [fd00::2]:8080 [.]")) {
		t.Errorf("text %s", text)
	}
}

func TestAppendFlags(t *testing.T) {
	for f, want := range map[uint8]string{0: "none", FlagSYN: "S", FlagSYN | FlagACK: "S.", FlagFIN | FlagPSH | FlagACK: "FP.",
		FlagRST: "R", 0xff: "FSRP.UEW"} {
		if got := string(AppendFlags(nil, f)); got != want {
			t.Errorf("%#x: %q, want %q", f, got, want)
		}
	}
}
