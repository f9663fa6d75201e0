// Package decode reads packet captures and decodes the Multipath TCP
// (RFC 8684) options of every TCP segment in them, and analyzes the MPTCP
// connections they hold: it learns the keys of each connection, attaches
// MP_JOIN subflows to it by token, and checks HMACs, DSS checksums, and the
// consistency of data sequence numbers and data ACKs. It is the library
// behind `umptcp decode`; use it to debug an MPTCP implementation against a
// capture.
//
// # Reading
//
// NewReader takes a pcap or pcapng file (gzip-compressed or not; the format
// is told by its magic number) and Reader.Next decodes one frame at a time
// into a Packet, reusing its storage: decoding a frame does not allocate.
// Decode does the same for a frame from elsewhere. Link types: Ethernet with
// any number of 802.1Q/802.1ad tags (up to 8), raw IP (LINKTYPE_RAW 101,
// DLT_RAW 12 and 14, LINKTYPE_IPV4 228, LINKTYPE_IPV6 229), Linux cooked
// captures v1 and v2 (113, 276: tcpdump -i any), and BSD loopback (DLT_NULL
// 0 and DLT_LOOP 108, the address family in either byte order). IPv4
// options are skipped by the header length; non-first fragments have no TCP
// header and are reported as such. IPv6 extension headers (hop-by-hop,
// routing, fragment, destination options, AH, mobility, HIP, shim6) are
// walked. Every header is bounds-checked: a frame cut short by the snap
// length or with lying lengths gets a Status, never a panic.
//
// The payload length of a segment comes from the IP header (total length or
// payload length, minus the headers), not from the captured length, because
// captures are often cut at a snap length: a segment's options are parsed
// for its context (options.ContextOf: SYN, SYN/ACK, ACK, with or without
// payload), as a receiver does. An IP length of zero (a TSO or BIG TCP
// super-packet seen on the sending host, or an IPv6 jumbogram) is taken
// from the frame's length on the wire.
//
// # Output
//
// AppendText renders one option as a line in the style of tcpdump's MPTCP
// printer; AppendJSON as one JSON object (one per line, in frame order, then
// option order). Integers are written with full 64-bit precision. A field
// is present only when its value is on the wire:
//
//   - every option: "frame" (1-based index in the file), "src" and "dst"
//     ("ip:port", "[ipv6]:port"), "subtype" (MP_CAPABLE, MP_JOIN, DSS,
//     ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST,
//     MP_EXPERIMENTAL or UNKNOWN), "len" (the option's length byte);
//   - MP_CAPABLE: "version", "flags" (the flags byte), "sender_key" (from
//     length 12: the SYN/ACK, the third ACK, the first data), "receiver_key"
//     (from length 20), "data_len" (lengths 22 and 24: the first data),
//     "checksum" (length 24);
//   - MP_JOIN: "backup" and "addr_id" (SYN and SYN/ACK only: the third ACK
//     has neither), "token" (SYN only), "nonce" (SYN and SYN/ACK), "hmac"
//     (lowercase hex of the bytes on the wire: 16 digits in the SYN/ACK, 40
//     in the third ACK);
//   - DSS: "data_fin" (always: it is a flag bit), "data_ack" and
//     "data_ack_64" (only with flag A; the value as on the wire, 32 or 64
//     bits), "dsn", "dsn_64", "ssn" and "data_len" (only with flag M; the DSN
//     as on the wire), "checksum" (only when the option carries one);
//   - ADD_ADDR: "echo", "addr_id", "addr" (text form), "port" (only when
//     present), "hmac" (16 lowercase hex digits, absent in an echo);
//   - REMOVE_ADDR: "addr_ids" (array); MP_PRIO: "backup"; MP_FAIL: "dsn";
//     MP_FASTCLOSE: "receiver_key"; MP_TCPRST: "reason", "transient",
//     "flags" (the four flag bits U V W T);
//   - an option that matches no variant of its subtype for its segment (a
//     length no variant has, an MP_CAPABLE of the wrong length for the
//     segment, an MP_TCPRST without RST...): "malformed": true and only the
//     common fields. An option whose length byte is below 3 or runs past the
//     option area ends the option walk (as in Linux); it is reported
//     malformed, without "subtype" when its subtype byte is not there, and
//     without "len" when even the length byte is not.
//
// # Analysis
//
// An Analyzer, fed every frame in order, follows TCP connections (subflows)
// from their SYN and MPTCP connections from their MP_CAPABLE handshake,
// like Wireshark's MPTCP analysis. It learns the server's key from the
// SYN/ACK and both keys from the third ACK or the first data (MP_CAPABLE of
// length 20, 22 or 24), and computes tokens and IDSNs (options.TokenIDSN).
// An MP_JOIN SYN's token names the connection and the side receiving the
// join; the side of a segment (client or server of the MPTCP connection)
// follows from the subflow's direction. It then checks (see Check):
//
//   - well-formed: each option matches a variant for its segment;
//   - capable-keys: the third ACK and first data echo the SYN/ACK's key and
//     repeat the client's key;
//   - join-token: an MP_JOIN SYN's token is the token of a known key;
//   - join-synack-hmac, join-ack-hmac: the truncated HMAC of the SYN/ACK and
//     the 160-bit HMAC of the third ACK, from both keys and both nonces;
//   - add-addr-hmac: an ADD_ADDR's HMAC, keyed by its sender's key first;
//     add-addr-echo: an echo answers an announcement of the same ID,
//     address and port by the other side;
//   - dsn: a mapping's DSN, 32-bit values expanded (options.ExpandSeq)
//     against the highest DSN the sender mapped, is at or after the
//     sender's IDSN+1; a segment's payload lies inside the subflow range of
//     the mapping it carries; a mapping ties the subflow bytes it shares
//     with earlier mappings of the subflow to the same DSNs (a mapping may
//     be longer or shorter than an earlier one from the same start; 16 runs
//     of consistently mapped bytes are remembered per subflow direction);
//   - data-ack: a data ACK, 32-bit values expanded against the highest data
//     ACK the side sent, lies between the other side's IDSN+1 and the end of
//     what the other side has mapped, and does not go backwards on one
//     subflow (across subflows it may: paths reorder);
//   - data-fin: a DATA_FIN carries a mapping, keeps its DSN when repeated,
//     and no data is mapped past it;
//   - dss-checksum: the checksum of each mapping (DSS, or MP_CAPABLE of
//     length 24 on the first data: DSN = IDSN+1, subflow sequence 1) over
//     its whole payload, which may span several segments. Bytes are taken in
//     subflow order; a mapping whose bytes were not all captured (snap
//     length, capture loss) is skipped and counted as skipped;
//   - fastclose-key: MP_FASTCLOSE carries the receiver's key;
//   - tcprst-on-rst: MP_TCPRST travels on a RST.
//
// Each failed check is a Mismatch with the frame, the connection, and what
// was expected and seen; Result counts the checks performed and skipped of
// each kind. The Analyzer's memory is bounded (Limits): at most so many
// subflows, connections, announcements and listed mismatches, closed
// subflows forgotten first, a single mapping followed per subflow
// direction.
package decode
