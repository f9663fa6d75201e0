package emu_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/umptcp/umptcp/emu"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// newHost returns a gVisor stack with one NIC on ep, holding addr.
func newHost(ep stack.LinkEndpoint, addr tcpip.Address) *stack.Stack {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(1, ep); err != nil {
		log.Fatal(err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr.WithPrefix()}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		log.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	return s
}

// Two gVisor stacks talk TCP over an emulated 50 Mbit/s path with 10ms of
// delay and 1% loss each way; the data arrives intact and the counters show
// what the path did.
func Example() {
	path, err := emu.ParsePath("rate=50mbit,delay=10ms,loss=1%,seed=1")
	if err != nil {
		log.Fatal(err)
	}
	link, err := emu.NewLink(path, path)
	if err != nil {
		log.Fatal(err)
	}
	defer link.Close()

	// Documentation addresses (RFC 5737); everything stays in this process.
	client := newHost(link.A(), tcpip.AddrFrom4([4]byte{192, 0, 2, 1}))
	server := newHost(link.B(), tcpip.AddrFrom4([4]byte{192, 0, 2, 2}))
	defer func() {
		for _, s := range []*stack.Stack{client, server} {
			s.Close()
			s.Wait()
		}
	}()

	srvAddr := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{192, 0, 2, 2}), Port: 80}
	ln, err := gonet.ListenTCP(server, srvAddr, ipv4.ProtocolNumber)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := gonet.DialContextTCP(context.Background(), client, srvAddr, ipv4.ProtocolNumber)
		if err != nil {
			log.Fatal(err)
		}
		c.Write(make([]byte, 1<<20))
		c.Close()
	}()
	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	n, err := io.Copy(io.Discard, c)
	c.Close()

	st := link.Stats(emu.AToB)
	fmt.Println("path:", path)
	fmt.Println("received:", n, err)
	fmt.Println("some lost:", st.DroppedLoss > 0)
	// Output:
	// path: rate=50mbit,delay=10ms,loss=1%,seed=1
	// received: 1048576 <nil>
	// some lost: true
}

// ParsePath reads the --path syntax of `umptcp demo`; String writes it back.
func ExampleParsePath() {
	c, err := emu.ParsePath("delay=20ms, rate=100mbit, loss=0.5%, strip=syn+synack")
	fmt.Println(c.Rate, c.Delay, c.Loss, c.Strip, err)
	fmt.Println(c)

	_, err = emu.ParsePath("loss=1")
	fmt.Println(err)
	// Output:
	// 100000000 20ms 0.005 syn+synack <nil>
	// rate=100mbit,delay=20ms,loss=0.5%,strip=syn+synack
	// emu: path spec item "loss=1": want a percentage such as 0.5% (the % is required)
}
