//go:build !windows

package stack

import "syscall"

var (
	errConnRefused = syscall.ECONNREFUSED
	errUnreachable = syscall.EHOSTUNREACH
	errTimedOut    = syscall.ETIMEDOUT
	errAddrInUse   = syscall.EADDRINUSE
)
