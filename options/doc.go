// Package options is the wire codec of Multipath TCP (RFC 8684): every MPTCP
// option variant, the walk over a TCP header's option area, the fitting of
// options into the 40-byte option budget, and the protocol's cryptography
// (keys, tokens, IDSNs, MP_JOIN and ADD_ADDR HMACs, the DSS checksum).
//
// It imports only the standard library (a test enforces it) so that anyone can
// use it to decode, fuzz or benchmark MPTCP without taking the rest of the stack.
//
// Parsing never panics, never allocates and never trusts a length field: an
// option that matches no variant of its subtype for its length and segment is
// reported as malformed, never guessed. Parsed values that hold bytes alias the
// buffer they were parsed from. Building writes into the caller's buffer: every
// option type has Len and Append, and len(v.Append(nil)) == v.Len().
//
// Where Linux interprets the RFC in a particular way, this package follows
// Linux (the peer everyone interoperates with) and says so at the spot.
package options
