package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/umptcp/umptcp/options"
)

// segment returns a raw IPv4 TCP segment from 10.0.0.1:1000 (toServer) or
// 10.0.0.2:80 carrying MPTCP options.
func segment(toServer bool, flags uint8, seq uint32, opts []byte) []byte {
	opts = options.PadNOP(opts)
	b := make([]byte, 40+len(opts))
	b[0], b[8], b[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	cli, srv := []byte{10, 0, 0, 1, 0x03, 0xe8}, []byte{10, 0, 0, 2, 0, 80}
	if !toServer {
		cli, srv = srv, cli
	}
	copy(b[12:16], cli[:4])
	copy(b[16:20], srv[:4])
	copy(b[20:22], cli[4:])
	copy(b[22:24], srv[4:])
	binary.BigEndian.PutUint32(b[24:], seq)
	b[32] = byte(len(b)-20) / 4 << 4
	b[33] = flags
	copy(b[40:], opts)
	return b
}

// pcapOf writes frames as a pcap of link type lt.
func pcapOf(lt layers.LinkType, frames ...[]byte) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65535, lt)
	for i, f := range frames {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(f), Length: len(f)}, f)
	}
	return buf.Bytes()
}

// capture writes a pcap of an MP_CAPABLE handshake and, if badJoin, an
// MP_JOIN SYN with a token that matches no key.
func capture(t *testing.T, badJoin bool) []byte {
	t.Helper()
	const keyC, keyS = 0x0102030405060708, 0x1112131415161718
	frames := [][]byte{
		segment(true, 0x02, 100, options.MPCapable{Variant: options.CapableSYN, Version: 1, Flags: 1}.Append(nil)),
		segment(false, 0x12, 500, options.MPCapable{Variant: options.CapableSYNACK, Version: 1, Flags: 1, SenderKey: keyS}.Append(nil)),
		segment(true, 0x10, 101, options.MPCapable{Variant: options.CapableACK, Version: 1, Flags: 1, SenderKey: keyC, ReceiverKey: keyS}.Append(nil)),
		segment(false, 0x10, 501, options.DSS{HasAck: true, Ack64: true, DataAck: options.IDSN(keyC) + 1}.Append(nil)),
	}
	if badJoin {
		frames = append(frames, segment(true, 0x02, 7, options.MPJoin{Variant: options.JoinSYN, Token: 0xdeadbeef, Nonce: 1}.Append(nil)))
	}
	return pcapOf(layers.LinkTypeRaw, frames...)
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const wantText = `1 10.0.0.1:1000 > 10.0.0.2:80 [S] length 0 mptcp capable v1 flags 0x1
2 10.0.0.2:80 > 10.0.0.1:1000 [S.] length 0 mptcp capable v1 flags 0x1 {0x1112131415161718}
3 10.0.0.1:1000 > 10.0.0.2:80 [.] length 0 mptcp capable v1 flags 0x1 {0x102030405060708,0x1112131415161718}
4 10.0.0.2:80 > 10.0.0.1:1000 [.] length 0 mptcp dss ack 17699430019826020211
`

func TestRun(t *testing.T) {
	good := writeFile(t, "good.pcap", capture(t, false))
	bad := writeFile(t, "bad.pcap", capture(t, true))
	goodBytes := capture(t, false)
	truncated := writeFile(t, "cut.pcap", goodBytes[:len(goodBytes)-10])
	empty := writeFile(t, "empty.pcap", nil)
	text := writeFile(t, "notes.txt", []byte("these are not packets\n"))
	missing := filepath.Join(t.TempDir(), "missing.pcap")
	usb := writeFile(t, "usb.pcap", pcapOf(layers.LinkType(220), make([]byte, 64)))
	tests := []struct {
		name   string
		args   []string
		stdin  []byte
		code   int
		stdout string // a substring, or the whole output when exact
		exact  bool
		stderr string // a substring
	}{
		{"no arguments", nil, nil, 2, "", true, "Usage:\n  umptcp <command>"},
		{"help", []string{"help"}, nil, 0, "  decode     print and verify", false, ""},
		{"--help", []string{"--help"}, nil, 0, "Commands:", false, ""},
		{"help decode", []string{"help", "decode"}, nil, 0, "Usage: umptcp decode [--json] [--verify] FILE|-", false, ""},
		{"help unknown", []string{"help", "frobnicate"}, nil, 2, "", true, `unknown command "frobnicate"`},
		{"unknown command", []string{"frobnicate"}, nil, 2, "", true, `umptcp: unknown command "frobnicate"`},
		{"decode -h", []string{"decode", "-h"}, nil, 0, "Usage: umptcp decode", false, ""},
		{"decode --help", []string{"decode", "--help"}, nil, 0, "Exit status: 0 success", false, ""},
		{"decode no file", []string{"decode"}, nil, 2, "", true, "want exactly one FILE"},
		{"decode two files", []string{"decode", good, good}, nil, 2, "", true, "want exactly one FILE"},
		{"decode bad flag", []string{"decode", "--frob", good}, nil, 2, "", true, "flag provided but not defined: -frob"},
		{"decode text", []string{"decode", good}, nil, 0, wantText, true, ""},
		{"decode stdin", []string{"decode", "-"}, goodBytes, 0, wantText, true, ""},
		{"decode flags after file", []string{"decode", good, "--json"}, nil, 0, `{"frame":1,"src":"10.0.0.1:1000","dst":"10.0.0.2:80","subtype":"MP_CAPABLE","len":4,"version":1,"flags":1}` + "\n", false, ""},
		{"decode -- file", []string{"decode", "--", "-"}, goodBytes, 0, wantText, true, ""},
		{"decode json", []string{"decode", "--json", good}, nil, 0, `"subtype":"DSS","len":12,"data_fin":false,"data_ack":17699430019826020211,"data_ack_64":true}`, false, ""},
		{"verify ok", []string{"decode", "--verify", good}, nil, 0, "capable-keys               1         0         0\n", false, ""},
		{"verify ok summary", []string{"decode", "--verify", good}, nil, 0, "verify: ok, no mismatch\n", false, ""},
		{"verify mismatch", []string{"decode", "--verify", bad}, nil, 1, "frame 5 10.0.0.1:1000 > 10.0.0.2:80: join-token: MP_JOIN token matches no key of an MP_CAPABLE handshake: expected a known token, seen 0xdeadbeef\n", false, ""},
		{"verify mismatch json", []string{"decode", "--verify", "--json", bad}, nil, 1, `{"mismatch":{"frame":5,"src":"10.0.0.1:1000","dst":"10.0.0.2:80","check":"join-token"`, false, ""},
		{"missing file", []string{"decode", missing}, nil, 2, "", true, "umptcp decode: " + missing + ": no such file or directory\n"},
		{"empty file", []string{"decode", empty}, nil, 2, "", true, "umptcp decode: " + empty + ": empty file\n"},
		{"empty stdin", []string{"decode", "-"}, nil, 2, "", true, "umptcp decode: standard input: empty file\n"},
		{"not a capture", []string{"decode", text}, nil, 2, "", true, "umptcp decode: " + text + ": not a pcap or pcapng file (magic 74686573)\n"},
		{"directory", []string{"decode", t.TempDir()}, nil, 2, "", true, "is a directory\n"},
		{"truncated", []string{"decode", truncated}, nil, 2, strings.Join(strings.SplitAfter(wantText, "\n")[:3], ""), true,
			"umptcp decode: " + truncated + ": truncated packet record at frame 4\n"},
		{"unsupported link type", []string{"decode", usb}, nil, 2, "", true, "umptcp decode: " + usb + ": link type 220 is not supported"},
		{"truncated verify", []string{"decode", "--verify", truncated}, nil, 2, "3 frames,", false, "truncated packet record at frame 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, bytes.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr.String())
			}
			if tt.exact && stdout.String() != tt.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", stdout.String(), tt.stdout)
			}
			if !tt.exact && !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// Every line of --json is a JSON object.
func TestDecodeJSONLines(t *testing.T) {
	f := writeFile(t, "good.pcap", capture(t, true))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"decode", "--json", f}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
}

// The binary exits with the status run returns.
func TestBinaryExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "umptcp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	good := writeFile(t, "good.pcap", capture(t, false))
	bad := writeFile(t, "bad.pcap", capture(t, true))
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"decode", good}, 0},
		{[]string{"decode", "--verify", bad}, 1},
		{[]string{"decode", good + ".missing"}, 2},
		{nil, 2},
	} {
		err := exec.Command(bin, tt.args...).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code {
			t.Errorf("umptcp %v: exit %d, want %d", tt.args, code, tt.code)
		}
	}
}

// The CLI prints exactly the decode package's golden output for the kernel
// capture v1-basic (decode/testdata, rewritten by go test ./decode -update).
func TestDecodeGolden(t *testing.T) {
	capture := filepath.Join("..", "..", "testdata", "captures", "v1-basic.pcap")
	for _, tt := range []struct {
		args   []string
		golden string
	}{
		{[]string{"decode", capture}, "v1-basic.txt"},
		{[]string{"decode", "--json", capture}, "v1-basic.json"},
		{[]string{"decode", "--verify", capture}, "v1-basic.verify.txt"},
	} {
		want, err := os.ReadFile(filepath.Join("..", "..", "decode", "testdata", tt.golden))
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(tt.args, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, stderr.String())
		}
		if !bytes.Equal(stdout.Bytes(), want) {
			t.Errorf("%v: output differs from %s", tt.args, tt.golden)
		}
	}
}
