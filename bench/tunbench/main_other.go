//go:build !linux

// Command tunbench is Linux-only (network namespaces, veth, TUN offloads).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "tunbench: Linux only")
	os.Exit(2)
}
