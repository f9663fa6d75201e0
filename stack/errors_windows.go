//go:build windows

package stack

import "errors"

var (
	errConnRefused = errors.New("connection refused")
	errUnreachable = errors.New("no route to host")
	errTimedOut    = errors.New("connection timed out")
	errAddrInUse   = errors.New("address already in use")
)
