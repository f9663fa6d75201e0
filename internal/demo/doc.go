// Package demo is the logic of `umptcp demo`: two umptcp stacks in one
// process, joined by emulated paths (package emu), open one MPTCP connection
// and send data both ways at once; the demo reports progress while it runs,
// then goodput, RTT and retransmissions per subflow, whether the connection
// used MPTCP, and whether every byte arrived intact.
//
// # Topology
//
// Path i (one --path each) is an emu.Link: the client stack holds
// 198.18.i.1/24 on endpoint A, the server stack 198.18.i.2/24 on endpoint B
// (198.18.0.0/15 is the range RFC 2544 sets aside for benchmarks; nothing
// leaves the process). The client dials 198.18.0.2:5201 over path 0. Up is
// client to server (A→B), down is server to client (B→A); a path spec applies
// to both directions, each with its own random stream.
//
// The stack opens one subflow per connection for now (no MP_JOIN yet), so
// MaxPaths is 1. The code is written for several: when the path manager opens
// a subflow per link, raising MaxPaths is the only change the demo needs.
//
// # Verification
//
// Each direction sends a deterministic stream (pattern: SplitMix64 over a
// counter, seeded by Config.Seed), generated and hashed on the fly: nothing is
// held in memory beyond one chunk. The receiver hashes what it reads
// (SHA-256) and also compares each chunk with the stream at its offset, which
// tells how many bytes differ and where the first one is. A direction is
// intact when it received exactly Size bytes whose SHA-256 equals the
// sender's.
//
// # Goroutines
//
// Run owns every goroutine it starts (a writer and a reader per side, the
// canceller, the progress reporter) and returns after all of them ended and
// both stacks and every link were closed: nothing outlives Run.
package demo
