//go:build !linux

package kernelpeer

import (
	"errors"
	"net"
)

var errUnsupported = errors.New("kernelpeer: MPTCP socket options need Linux")

func readInfo(*net.TCPConn) (*Info, error) { return nil, errUnsupported }

func waitPending(*net.TCPConn) error { return errUnsupported }
