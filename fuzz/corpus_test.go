package fuzz

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedCorporaPresent guards against a lost corpus: every target replays
// generated seeds in a plain go test (regenerate them with go generate).
func TestSeedCorporaPresent(t *testing.T) {
	for _, target := range []string{"FuzzParseOption", "FuzzWalkOptionArea", "FuzzFit", "FuzzDSSChecksum"} {
		ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", target))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		n := 0
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "append-") || strings.HasPrefix(e.Name(), "capture-") ||
				strings.HasPrefix(e.Name(), "synthetic-") {
				n++
			}
		}
		if n < 10 {
			t.Errorf("%s: only %d generated seeds; run go generate ./fuzz", target, n)
		}
	}
}
