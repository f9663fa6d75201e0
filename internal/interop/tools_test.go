//go:build linux

package interop

import (
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
	netns.RequireTUN(t, suiteTools...)
}
