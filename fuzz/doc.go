// Package fuzz holds umptcp's native Go fuzz targets that cross package
// boundaries, and their seed corpora under testdata/fuzz/<Target>/.
//
// Every target checks invariants, not exact output (STYLE.md): the codec
// never panics and never reads outside its input, a well-formed option
// survives decode → Append → Parse unchanged, Fit never drops a mapping and
// never exceeds the 40-byte option space, the DSS checksum agrees with a
// naive RFC 1071 sum, and the pcap decoder survives any file.
//
// `go test ./fuzz` replays the committed seeds. The seeds are every MPTCP
// option and option area of the kernel captures in ../testdata/captures,
// every option variant built with its Append, and small pcap files; they are
// regenerated with
//
//	go generate ./fuzz
//
// To fuzz one target (one worker, so as not to disturb other measurements):
//
//	go test ./fuzz -run='^$' -fuzz='^FuzzParseOption$' -fuzztime=60s -parallel=1
package fuzz

//go:generate go test -run=^TestWriteSeedCorpus$ -count=1 . -args -write-seeds
