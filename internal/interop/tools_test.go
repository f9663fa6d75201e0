//go:build linux

package interop

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/umptcp/umptcp/internal/netns"
)

// suiteTools are the programs the interop suite drives: captures and their
// dissection, middlebox rules, qdiscs and the kernel's views.
var suiteTools = []string{"tcpdump", "tshark", "iptables", "ip6tables", "tc", "nstat", "ss", "sysctl"}

// requireSuite skips the test unless everything the suite needs is here:
// root and namespaces (netns.Require), /dev/net/tun, and suiteTools. Like
// netns.Require it fails instead of skipping when CI=true: CI must run the
// suite, not quietly skip it.
func requireSuite(t *testing.T) {
	t.Helper()
	netns.Require(t)
	var missing []string
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	for _, tool := range suiteTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "interop suite needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true so this is a failure, not a skip", msg)
	}
	t.Skip("skipping: " + msg)
}
