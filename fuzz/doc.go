// Package fuzz holds umptcp's native Go fuzz targets for the option codec
// and their seed corpora under testdata/fuzz/<Target>/; the capture
// decoder's target is in fuzz/pcapfuzz (a package of its own, so that these
// targets do not link gopacket: every instrumented package slows fuzzing).
//
// Every target checks invariants, not exact output (STYLE.md): the codec
// never panics and never reads outside its input, a well-formed option
// survives decode → Append → Parse unchanged, Fit never drops a mapping and
// never exceeds the 40-byte option space, the DSS checksum agrees with a
// naive RFC 1071 sum. The package's only non-test code is the input grammar
// of FuzzFit (grammar.go), which the seed generator also writes.
//
// `go test ./fuzz/...` replays the committed seeds: every MPTCP option and
// option-area shape of the kernel captures in ../testdata/captures, every
// option variant built with its Append, Fit layouts the option shim meets,
// DSS checksums Linux sent, small capture files. Regenerate them with
//
//	go generate ./fuzz
//
// To fuzz one target (one worker, so as not to disturb other measurements):
//
//	go test ./fuzz -run='^$' -fuzz='^FuzzParseOption$' -fuzztime=60s -parallel=1
package fuzz

//go:generate go run ./internal/seedgen -captures ../testdata/captures -out .
