// Package subflow holds one subflow's MPTCP state under the TCP byte stream
// (RFC 8684 §3): its handshake role and progress, its initial sequence
// numbers, the mappings of its bytes to data sequence numbers in both
// directions, and the choice of MPTCP options for each segment it sends.
//
// It knows nothing about packets or gVisor: the option shim in package stack
// hands it the fields of each segment (flags, sequence numbers, payload
// length, parsed options) and writes the options it returns. That keeps the
// protocol logic testable on its own.
//
// Locking: a Subflow's methods lock its mutex and never call out while
// holding it, so the mutex is a leaf in any lock order the caller has.
package subflow
