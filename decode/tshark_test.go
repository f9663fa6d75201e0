package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/umptcp/umptcp/options"
)

// Wireshark's dissector (tshark, as Wireshark 4.0 names its fields) and our
// --json output must agree field by field on every MPTCP option of every
// capture. Without tshark the test skips, except in CI (CI=true), where it
// fails.

// tsharkPath finds tshark or ends the test.
func tsharkPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tshark not found, and CI=true: install tshark (apt-get install tshark) to compare with Wireshark's dissector")
		}
		t.Skip("tshark not found: skipping the comparison with Wireshark's dissector (install tshark to run it)")
	}
	return p
}

// tsharkOptions runs tshark on a file and returns, by frame number, the
// MPTCP options it dissected, each flattened to field name -> value (values
// of a repeated field joined by ",").
func tsharkOptions(t *testing.T, tshark, path string) map[int][]map[string]string {
	t.Helper()
	cmd := exec.Command(tshark, "-n", "-r", path, "-T", "json", "--no-duplicate-keys", "-J", "frame tcp")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	var frames []struct {
		Source struct {
			Layers struct {
				Frame struct {
					Number string `json:"frame.number"`
				} `json:"frame"`
				TCP json.RawMessage `json:"tcp"`
			} `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &frames); err != nil {
		t.Fatalf("tshark output: %v", err)
	}
	res := make(map[int][]map[string]string)
	for _, f := range frames {
		n, _ := strconv.Atoi(f.Source.Layers.Frame.Number)
		raw := bytes.TrimSpace(f.Source.Layers.TCP)
		if len(raw) == 0 {
			continue
		}
		var tcp map[string]any
		if raw[0] == '[' { // a TCP header inside ICMP as well: take the first
			var l []map[string]any
			json.Unmarshal(raw, &l)
			tcp = l[0]
		} else {
			json.Unmarshal(raw, &tcp)
		}
		tree, _ := tcp["tcp.options_tree"].(map[string]any)
		var opts []any
		switch m := tree["mptcp"].(type) {
		case map[string]any:
			opts = []any{m}
		case []any:
			opts = m
		}
		for _, o := range opts {
			flat := map[string]string{}
			flatten(o, flat)
			res[n] = append(res[n], flat)
		}
	}
	return res
}

func flatten(v any, into map[string]string) {
	m, _ := v.(map[string]any)
	for k, x := range m {
		switch x := x.(type) {
		case string:
			into[k] = x
		case []any:
			var s []string
			for _, e := range x {
				if str, ok := e.(string); ok {
					s = append(s, str)
				}
			}
			into[k] = strings.Join(s, ",")
		case map[string]any:
			flatten(x, into)
		}
	}
}

const tsMPTCP = "tcp.options.mptcp."

// tsharkExpect maps one line of our --json output to the tshark fields and
// values Wireshark 4.0 shows for the option. It returns the fields that
// Wireshark does not show and so cannot be compared.
func tsharkExpect(t *testing.T, line []byte) (want map[string]string, uncompared []string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	num := func(k string) string { return string(m[k].(json.Number)) }
	flag := func(k string) string {
		if m[k].(bool) {
			return "1"
		}
		return "0"
	}
	u64 := func(k string) uint64 { v, _ := strconv.ParseUint(num(k), 10, 64); return v }
	has := func(k string) bool { _, ok := m[k]; return ok }
	want = map[string]string{}
	if has("len") {
		want["tcp.option_len"] = num("len")
	}
	sub, _ := m["subtype"].(string)
	if sub != "" {
		var st options.Subtype
		for st = 0; st < 16 && st.String() != sub; st++ {
		}
		if sub == "UNKNOWN" {
			st = options.Subtype(0xff) // any undefined one: not compared
		} else {
			want[tsMPTCP+"subtype"] = strconv.Itoa(int(st))
		}
	}
	if has("malformed") {
		return want, nil
	}
	set := func(ours, theirs string, v string) {
		if has(ours) {
			want[tsMPTCP+theirs] = v
		}
	}
	switch sub {
	case "MP_CAPABLE":
		want[tsMPTCP+"version"] = num("version")
		want[tsMPTCP+"flags"] = fmt.Sprintf("0x%02x", u64("flags"))
		if has("sender_key") {
			set("sender_key", "sendkey", num("sender_key"))
		}
		if has("receiver_key") {
			set("receiver_key", "recvkey", num("receiver_key"))
		}
		if has("data_len") {
			set("data_len", "datalvllen", num("data_len"))
		}
		if has("checksum") {
			set("checksum", "checksum", fmt.Sprintf("0x%04x", u64("checksum")))
		}
	case "MP_JOIN":
		if has("backup") {
			set("backup", "backup.flag", flag("backup"))
			set("addr_id", "addrid", num("addr_id"))
		}
		if has("token") {
			set("token", "recvtok", num("token"))
		}
		if has("nonce") {
			set("nonce", "sendrand", num("nonce"))
		}
		if h, ok := m["hmac"].(string); ok {
			if len(h) == 16 {
				v, _ := strconv.ParseUint(h, 16, 64)
				want[tsMPTCP+"sendtrunchmac"] = strconv.FormatUint(v, 10)
			} else {
				var parts []string
				for i := 0; i+2 <= len(h); i += 2 {
					parts = append(parts, h[i:i+2])
				}
				want[tsMPTCP+"sendhmac"] = strings.Join(parts, ":")
			}
		}
	case "DSS":
		want[tsMPTCP+"datafin.flag"] = flag("data_fin")
		if has("data_ack") {
			set("data_ack", "rawdataack", num("data_ack"))
			set("data_ack_64", "dataack8.flag", flag("data_ack_64"))
		}
		if has("dsn") {
			set("dsn", "rawdataseqno", num("dsn"))
			set("dsn_64", "dseqn8.flag", flag("dsn_64"))
			set("ssn", "subflowseqno", num("ssn"))
			set("data_len", "datalvllen", num("data_len"))
		}
		if has("checksum") {
			// Wireshark 4.0 does not show the DSS checksum.
			uncompared = append(uncompared, "DSS checksum")
		}
	case "ADD_ADDR":
		want[tsMPTCP+"echo"] = flag("echo")
		want[tsMPTCP+"addrid"] = num("addr_id")
		a := netip.MustParseAddr(m["addr"].(string))
		if a.Is4() {
			want[tsMPTCP+"ipv4"] = a.String()
		} else {
			want[tsMPTCP+"ipv6"] = a.String()
		}
		if has("port") {
			set("port", "port", num("port"))
		}
		if h, ok := m["hmac"].(string); ok {
			v, _ := strconv.ParseUint(h, 16, 64)
			want[tsMPTCP+"addaddrtrunchmac"] = strconv.FormatUint(v, 10)
		}
	case "REMOVE_ADDR":
		var ids []string
		for _, id := range m["addr_ids"].([]any) {
			ids = append(ids, string(id.(json.Number)))
		}
		want[tsMPTCP+"addrid"] = strings.Join(ids, ",")
	case "MP_PRIO":
		want[tsMPTCP+"backup.flag"] = flag("backup")
	case "MP_FAIL":
		want[tsMPTCP+"rawdataseqno"] = num("dsn")
	case "MP_FASTCLOSE":
		want[tsMPTCP+"recvkey"] = num("receiver_key")
	case "MP_TCPRST":
		want[tsMPTCP+"rst_reason"] = fmt.Sprintf("0x%02x", u64("reason"))
		f := u64("flags")
		for i, name := range []string{"flag_U.flag", "flag_V.flag", "flag_W.flag", "flag_T.flag"} {
			want[tsMPTCP+name] = strconv.FormatUint(f>>(3-i)&1, 10)
		}
		want[tsMPTCP+"flag_T.flag"] = flag("transient")
	}
	return want, uncompared
}

// compareWithTshark decodes a file our way and tshark's and compares every
// MPTCP option field by field. It returns the number of options and fields
// compared, and counts what could not be.
func compareWithTshark(t *testing.T, tshark, path string) (nopts, nfields int, uncompared map[string]int) {
	theirs := tsharkOptions(t, tshark, path)
	frames := loadFrames(t, path)
	uncompared = map[string]int{}
	ours := map[int]int{}
	errs := 0
	report := func(format string, args ...any) {
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	eachOption(frames, func(frame int, p *Packet, i int) {
		ours[frame]++
		line := AppendJSON(nil, p, i)
		want, unc := tsharkExpect(t, line)
		for _, u := range unc {
			uncompared[u]++
		}
		ts := theirs[frame]
		if i >= len(ts) {
			report("frame %d option %d: tshark has %d MPTCP options; ours: %s", frame, i+1, len(ts), line)
			return
		}
		got := ts[i]
		if got["tcp.option_kind"] != "30" {
			report("frame %d option %d: tshark kind %q", frame, i+1, got["tcp.option_kind"])
		}
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if got[k] != want[k] {
				report("frame %d option %d: %s: tshark %q, ours %q\n ours: %s tshark: %v", frame, i+1, k, got[k], want[k], line, got)
			}
			nfields++
		}
		nopts++
	})
	for frame, ts := range theirs {
		if len(ts) != ours[frame] {
			report("frame %d: tshark has %d MPTCP options, we have %d", frame, len(ts), ours[frame])
		}
	}
	return nopts, nfields, uncompared
}

func TestTsharkAgreement(t *testing.T) {
	tshark := tsharkPath(t)
	files := map[string]string{"synthetic": writeSyntheticCapture(t)}
	for _, c := range captures {
		files[c.name] = capturePath(t, c.name)
	}
	for name, path := range files {
		t.Run(name, func(t *testing.T) {
			nopts, nfields, unc := compareWithTshark(t, tshark, path)
			if nopts == 0 {
				t.Fatal("no MPTCP option compared")
			}
			t.Logf("%s: %d options, %d fields agree with tshark; not shown by tshark: %v", name, nopts, nfields, unc)
		})
	}
}

// writeSyntheticCapture writes a capture with the options the kernel
// captures may lack: every subtype, IPv6 ADD_ADDR with and without port
// and echo, backup joins, MP_FAIL, REMOVE_ADDR lists, MP_TCPRST flags,
// several options in one segment, malformed options.
func writeSyntheticCapture(t *testing.T) string {
	rm, _ := options.NewRemoveAddr(1, 2, 7)
	rm1, _ := options.NewRemoveAddr(4)
	v6 := netip.MustParseAddr("fd00::2")
	v4 := netip.MustParseAddr("10.0.1.2")
	var hA [20]byte
	for i := range hA {
		hA[i] = byte(0xf0 + i)
	}
	segs := []tcpSeg{
		{src: cli4, dst: srv4, flags: FlagSYN, opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: 0x81})},
		{src: srv4, dst: cli4, flags: FlagSYN | FlagACK, opts: mptcpOpts(options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: 0x81, SenderKey: 1<<64 - 1})},
		{src: cli4, dst: srv4, flags: FlagACK, payload: make([]byte, 10), opts: mptcpOpts(options.MPCapable{Variant: options.CapableDataChecksum, Version: 1, Flags: 0x81, SenderKey: 3, ReceiverKey: 1<<64 - 1, DataLen: 10, Checksum: 0xabcd})},
		{src: cli4, dst: srv4, flags: FlagACK, payload: make([]byte, 10), opts: mptcpOpts(options.MPCapable{Variant: options.CapableData, Version: 1, Flags: 0x01, SenderKey: 3, ReceiverKey: 4, DataLen: 10})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(rm)},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(rm1, options.MPPrio{Backup: true})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.MPPrio{})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.MPFail{DSN: 1<<64 - 2})},
		{src: cli4, dst: srv4, flags: FlagACK | FlagRST, opts: mptcpOpts(options.MPFastClose{ReceiverKey: 0xce4f42f4ec655f1}, options.MPTCPRst{Flags: 0x9, Reason: 6})},
		{src: cli4, dst: srv4, flags: FlagRST, opts: mptcpOpts(options.MPTCPRst{Flags: 0x6, Reason: 200})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.AddAddr{Echo: true, AddrID: 9, Addr: v6, HasPort: true, Port: 443})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.AddAddr{Echo: true, AddrID: 9, Addr: v6})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.AddAddr{AddrID: 9, Addr: v6, HasPort: true, Port: 443, HMAC: 77})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.AddAddr{AddrID: 255, Addr: v4, HasPort: true, Port: 65535, HMAC: 1<<64 - 1})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.AddAddr{Echo: true, AddrID: 0, Addr: v4, HasPort: true, Port: 1})},
		{src: cli6, dst: srv6, flags: FlagSYN, opts: mptcpOpts(options.MPJoin{Variant: options.JoinSYN, Backup: true, AddrID: 7, Token: 0xffffffff, Nonce: 6})},
		{src: srv6, dst: cli6, flags: FlagSYN | FlagACK, opts: mptcpOpts(options.MPJoin{Variant: options.JoinSYNACK, Backup: true, AddrID: 3, HMAC: hA, Nonce: 0x80000000})},
		{src: cli6, dst: srv6, flags: FlagACK, opts: mptcpOpts(options.MPJoin{Variant: options.JoinACK, HMAC: hA})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.DSS{DataFIN: true, HasMapping: true, DSN: 5, DataLen: 1, HasChecksum: true, Checksum: 0x1234})},
		{src: cli4, dst: srv4, flags: FlagACK, payload: make([]byte, 3), opts: mptcpOpts(options.DSS{HasAck: true, DataAck: 0xffffffff, HasMapping: true, DSN: 0xfffffffe, SubflowSeq: 0xffffffff, DataLen: 3})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: 1<<64 - 1, HasMapping: true, DSN64: true, DSN: 1 << 63, DataLen: 0})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: mptcpOpts(options.DSS{HasAck: true, Ack64: true, DataAck: 12})},
		{src: cli4, dst: srv4, flags: FlagACK, opts: []byte{30, 4, 0xf0, 0}},
	}
	var frames [][]byte
	for _, s := range segs {
		if s.src.Addr().Is6() {
			frames = append(frames, frame6(s))
		} else {
			frames = append(frames, frame4(s))
		}
	}
	path := filepath.Join(t.TempDir(), "synthetic.pcap")
	if err := os.WriteFile(path, pcapFile(t, LinkEthernet, frames...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
