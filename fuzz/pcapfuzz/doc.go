// Package pcapfuzz holds the fuzz target of the capture decoder
// (FuzzDecodePcap over decode.Analyze and its building blocks) and its
// seed corpus. It is a package of its own so that the option codec's
// targets in package fuzz do not link gopacket and the decoder: every
// instrumented package slows each fuzzing execution down (about threefold
// here).
//
//	go test ./fuzz/pcapfuzz -run='^$' -fuzz='^FuzzDecodePcap$' -fuzztime=60s -parallel=1
package pcapfuzz
