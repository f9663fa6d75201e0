// Package tun opens TUN devices, configures their host side, and exposes them to gVisor
// as a link endpoint (raw IP, no link header) that is fast enough for a userspace TCP
// stack to keep up with the kernel.
//
//	dev, err := tun.Open(tun.Config{Name: "umptcp0", MTU: 1500})           // wireguard-go, or Driver: tun.DriverWater
//	err = dev.ConfigureHost(tun.HostConfig{Addresses: []tun.Address{{Prefix: netip.MustParsePrefix("198.18.0.1/24")}}})
//	ep, err := tun.NewEndpoint(dev, tun.EndpointOptions{})                 // a stack.LinkEndpoint and stack.GSOEndpoint
//	s.CreateNIC(1, ep)                                                      // gVisor starts the read goroutine
//	...
//	ep.Close(); ep.Wait()                                                   // closes the device, stops the goroutine
//
// # Data paths
//
// Offload path (Linux, wireguard driver; Endpoint.Offload reports it). The device is opened
// with IFF_VNET_HDR and TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6), so every packet
// crosses the device behind a struct virtio_net_hdr (include/uapi/linux/virtio_net.h) and
// TCP may cross it unsegmented. The endpoint advertises host GSO to gVisor
// (SupportedGSO() == stack.HostGSOSupported, GSOMaxSize() == MaxGSOSize), so gVisor TCP
// hands it segments of up to ~64 KiB with a partial checksum; each goes to the kernel in a
// single writev(2) behind a virtio-net header that asks the kernel to segment it (like a
// NIC with TSO). In the other direction it reads one packet per read(2) and hands the
// kernel's super-packets (its TSO or GRO output) to gVisor whole. No checksum is computed in
// userspace on this path for traffic to and from the local kernel. wireguard-go's own
// Read/Write are not used on this path: its Write only takes complete packets (it coalesces
// them with its own GRO, tun/offload_linux.go) and its Read splits super-packets into
// MSS-sized packets and checksums each one.
//
// Generic path (other OSes, water, or EndpointOptions.DisableOffload). Batched Read and
// Write through the driver (BatchSize packets per call: 128 for wireguard-go on Linux,
// which still coalesces written TCP with GRO and splits read super-packets; 1 elsewhere),
// pooled 64 KiB buffers, one copy each way, full checksums computed by gVisor. Under
// umptcp's stack the option shim offers gVisor segmentation offload on this path and cuts
// the super-segments itself, computing each segment's checksum (stack.Link.NoSoftwareGSO).
//
// One goroutine per endpoint, routineReadFromTUN, reads and delivers to the attached
// dispatcher. It starts at the first Attach with a dispatcher and ends when the device is
// closed (Endpoint.Close, Device.Close, or gVisor removing the NIC); Endpoint.Wait waits
// for it.
//
// # GSO contract for wrappers (the MPTCP option shim)
//
// A wrapper such as a gVisor link/nested.Endpoint sits between gVisor and this endpoint.
// nested.Endpoint forwards GSOMaxSize and SupportedGSO to its child, so gVisor sees host
// GSO through it. On the offload path a wrapper must keep the following.
//
// Outgoing segments (gVisor → wrapper → Endpoint.WritePackets):
//
//  1. Which packets. After the handshake, gVisor sets pkt.GSOOptions on every TCP segment
//     of the connection, data or pure ACK, big or small (transport/tcp: initHostGSO,
//     sendRaw): Type stack.GSOTCPv4 or stack.GSOTCPv6, NeedsCsum true, CsumOffset 16 (the
//     TCP checksum field), MSS the payload bytes per wire segment, L3HdrLen the minimum IP
//     header length (the endpoint does not trust it; it uses the packet's real network
//     header length). SYN, SYN-ACK and RSTs built outside a connection have GSOOptions.Type
//     stack.GSONone and complete checksums. IsPartialChecksum(pkt) tells which kind a
//     packet is; IsGSO(pkt) whether its payload exceeds the MSS (a super-segment).
//  2. The TCP checksum field of a partial-checksum segment holds the ones' complement sum
//     of the pseudo-header only, not complemented, with the TCP length of the WHOLE
//     segment (TCP header with options + all its payload): gVisor's buildTCPHdr stores
//     r.PseudoHeaderChecksum(TCP, len) and Linux expects exactly that for
//     CHECKSUM_PARTIAL (th->check = ~tcp_v4_check(len, saddr, daddr, 0) in
//     __tcp_v4_send_check). The kernel computes the final checksum of each segment it cuts,
//     adjusting the length term (tcp_gso_segment, net/ipv4/tcp_offload.c); a segment it does
//     not cut gets its checksum completed by the kernel or by the receiving kernel socket.
//  3. The IPv4 total length (and header checksum) or the IPv6 payload length cover the
//     whole super-segment.
//  4. Adding TCP options (N bytes, keeping the TCP header ≤ 60 bytes) therefore means:
//     the TCP data offset grows by N; the IPv4 total length grows by N and the IPv4 header
//     checksum is recomputed, or the IPv6 payload length grows by N; the pseudo-header sum
//     in the checksum field is recomputed for TCP length + N (or adjusted incrementally:
//     checksum.Combine(old, N)) and stays a partial sum, never a complete checksum; and,
//     because the kernel puts the full TCP header on every segment it cuts, the MSS must
//     satisfy IP header + TCP header + MSS ≤ MTU, so lower pkt.GSOOptions.MSS when the header
//     grew past the room gVisor left (gVisor sizes payloads for 40 option bytes only when
//     SACK is permitted). FinalizeTCP(pkt, mtu) does all of this from the packet's headers
//     and handles complete-checksum packets too. The wrapper must build its headers with
//     pkt.NetworkHeader().Push / TransportHeader().Push so that those views are set: the
//     endpoint derives csum_start (the IP header length) and hdr_len from them
//     (VirtioNetHdrFor shows the header that will be written).
//  5. Options are replicated. The kernel copies the TCP header, options included, onto
//     every segment it cuts from a super-segment (tcp_gso_segment copies the header; only
//     seq, the checksum and the FIN/PSH/CWR flags differ). An MPTCP DSS option written on a
//     super-segment is therefore repeated on each of its segments, as Linux's own TSO does
//     for its MPTCP (the options of an skb are written once before segmentation): the
//     mapping must cover the whole super-segment's payload, and the DATA_ACK is repeated.
//     A one-shot signal (ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FASTCLOSE) should go on a
//     segment that is not a super-segment (a pure ACK, or a segment of at most MSS bytes),
//     or it will be seen once per cut segment.
//  6. Splitting a super-segment (for example at a mapping boundary) means each piece gets its
//     own lengths and its own pseudo-header sum (FinalizeTCP on each piece); a piece still
//     longer than the MSS stays a super-segment.
//  7. A wrapper that synthesises packets (pure ACKs carrying a DATA_ACK) may give them
//     either a complete checksum and zero GSOOptions, or a partial checksum with
//     GSOOptions{Type: GSOTCPv4/GSOTCPv6, NeedsCsum: true, CsumOffset: 16}; both are written
//     correctly.
//
// Incoming packets (Endpoint → wrapper → gVisor):
//
//  1. Super-packets are delivered whole: one IP packet of up to 64 KiB whose IPv4 total
//     length or IPv6 payload length covers all of it, with one TCP header. Linux only
//     produces them from segments with identical TCP options (GRO flushes on any option
//     difference, tcp_gro_receive) or from a local sender's single header, so the options
//     apply to every byte: a DSS mapping on a received super-packet covers its payload, the
//     same as on each of the segments it stands for. gVisor accepts segments larger than
//     its MSS.
//  2. The TCP checksum of a delivered packet is not necessarily valid: for packets the
//     kernel built (VIRTIO_NET_HDR_F_NEEDS_CSUM, every super-packet) it holds a partial
//     sum. The endpoint advertises stack.CapabilityRXChecksumOffload and verifies the IPv4
//     header and TCP/UDP checksums of every packet the kernel did not flag as built locally
//     or already verified (VIRTIO_NET_HDR_F_DATA_VALID); bad ones are dropped and counted
//     in Stats.RxBadChecksum. A wrapper must not verify or recompute TCP checksums of
//     delivered packets, and need not fix them after editing options in place.
//
// On the generic path none of this applies: GSOOptions are never set by gVisor, checksums
// are complete both ways, and a partial-checksum packet a wrapper writes anyway is completed
// in software (Stats.TxCsumComplete).
//
// # Platforms
//
// Linux is the only OS tested here (root tests in network namespaces). macOS (utun),
// FreeBSD and OpenBSD open devices through wireguard-go and configure them with ifconfig(8)
// and route(8): written from their manual pages, untested. Windows builds; opening works
// through wireguard-go's wintun, host configuration returns ErrNotSupported.
package tun
