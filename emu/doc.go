// Package emu emulates network paths inside one process, as pairs of gVisor
// link endpoints. A Link joins two stacks (two umptcp stacks, a umptcp stack
// and a plain gVisor one, or any two gVisor stacks) and impairs what crosses
// it, each direction on its own: bottleneck rate with a drop-tail queue,
// delay and jitter, random and bursty (Gilbert–Elliott) loss, reordering,
// duplication, payload corruption (checksum left wrong, so TCP drops it) and
// payload rewriting (checksum fixed, as a middlebox does, which only the MPTCP
// DSS checksum catches), MPTCP option stripping (like iptables TCPOPTSTRIP),
// a switchable blackhole, an MTU, counters, and a pcap tap. Machines without
// netem get all of this without root, and tests get it deterministically.
//
// # Use
//
//	cfg, err := emu.ParsePath("rate=100mbit,delay=20ms,loss=0.5%")
//	l, err := emu.NewLink(cfg, cfg) // A→B and B→A
//	defer l.Close()
//	s1.CreateNIC(1, l.A())          // or under a wrapper, e.g. the option shim
//	s2.CreateNIC(1, l.B())
//	...
//	l.SetBlackhole(emu.AToB, true)  // the path fails
//	l.Update(emu.AToB, func(c *emu.Config) { c.Strip = emu.StripAll }) // a middlebox appears
//	fmt.Println(l.Stats(emu.AToB))  // sent 1200/1.7MiB delivered 1188/1.7MiB dropped loss=12
//
// The endpoints carry raw IPv4 and IPv6 packets: no link header, no link
// addresses, no neighbour resolution. They advertise no checksum offload, so
// the sender computes checksums and the receiver verifies them, unless
// Config.ChecksumOffload asks otherwise.
//
// # Path specs
//
// ParsePath reads the text form that `umptcp demo --path` takes, such as
// "rate=100mbit,delay=20ms,jitter=2ms,loss=0.5%,strip=synack"; Config.String
// writes it back. spec.go lists every key.
//
// # Determinism
//
// Each direction draws its decisions from its own PCG stream seeded by
// Config.Seed. Every enabled impairment draws for every packet, so the n-th
// packet's fate depends only on the seed, the config and n, not on timing.
// Queue drops depend on when packets arrive; with an injected clock
// (WithClock and gVisor's faketime.ManualClock) they are deterministic too,
// and ManualClock.Advance returns only after every packet due within the
// advance has been delivered.
//
// # Delivery and goroutines
//
// WritePackets never delivers into the peer stack itself: it queues the
// packet and returns. A drain goroutine per direction (direction.drainLoop,
// "emu drain" in comments) delivers due packets and ends when none is left;
// packets due later arm a timer whose callback drains. Delivering inline from
// WritePackets would let a stack that answers from its receive path (or a
// wrapper such as the option shim, which synthesises ACKs) re-enter its own
// send path through the peer and deadlock on its own locks; measured, the
// hand-off also costs nothing: with an unlimited config the drain runs on the
// second core and gVisor TCP over a Link is as fast as over gVisor's own
// link/pipe (BenchmarkTCPVsPipe).
//
// Link.Close is the stop path: it stops the timers and waits for a running
// drain; a timer callback firing after Close returns at once. The endpoints
// own no goroutine.
//
// # Packet ownership
//
// WritePackets does not take the caller's packets. An unmodified packet's
// bytes are shared copy-on-write with the sender's buffer (no copy); a packet
// that is stripped, corrupted or rewritten is copied first, so the sender's
// retransmission queue never sees the damage. Each delivery is a new
// PacketBuffer, released by the link after the receiving stack has taken
// what it keeps.
package emu
