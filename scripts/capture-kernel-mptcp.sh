#!/usr/bin/env bash
# capture-kernel-mptcp.sh: capture real Linux kernel MPTCP traffic as golden test data.
#
#   sudo scripts/capture-kernel-mptcp.sh [OUTDIR]        (OUTDIR defaults to testdata/captures)
#
# Needs root (it creates network namespaces and runs tcpdump) and: ip (iproute2 with
# `ip mptcp`), tcpdump, ethtool, tshark and mergecap (Debian: apt-get install iproute2
# tcpdump ethtool tshark), go (set GO=/path/to/go if sudo's PATH lacks it), and a kernel
# with MPTCP. It installs nothing.
#
# Each scenario runs a kernel MPTCP client and server (internal/kernelpeer/cmd/mptcp-peer)
# in two fresh network namespaces joined by two veth pairs (path 1: 10.0.1.0/24 and
# fd00:1::/64, path 2: 10.0.2.0/24 and fd00:2::/64), captures with a short snap length
# what leaves each of the four veth ends, merges the captures into OUTDIR/<scenario>.pcap,
# checks with tshark that the file holds the MPTCP options the scenario promises and that
# tshark's MPTCP analysis flags nothing, and finally writes OUTDIR/README.md with what
# tshark counted. Offloads are off on the veths, so segments are MSS-sized and TCP
# checksums are real, as on a wire.
#
# Namespaces are named mptcpcap-<scenario>-<c|s>-<pid>; the script deletes only those it
# made, and kills only the processes it started, also when it fails. Logs stay in a
# /tmp/capture-kernel-mptcp.* directory when it fails (or with KEEP_WORKDIR=1).
#
# Environment: SCENARIOS="v1-basic fastclose" runs a subset (README.md is then not
# rewritten); GO, KEEP_WORKDIR as above.
#
# A full run takes about a minute. Reruns give new keys, nonces, ISNs and timings, so the
# files change byte for byte, but each scenario's options and checks stay the same.
set -euo pipefail

die() { echo "capture-kernel-mptcp: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-$REPO/testdata/captures}
ALL_SCENARIOS=(v1-basic v1-checksum add-addr-join add-addr-port ipv6 backup-prio-remove fastclose)
read -r -a SCENARIO_LIST <<<"${SCENARIOS:-${ALL_SCENARIOS[*]}}"

PORT=10001      # server port
JOIN_PORT=10100 # port announced in add-addr-port
SNAPLEN=200     # Ethernet + IPv6 + TCP with 40 bytes of options is 114

# --- prerequisites -------------------------------------------------------------------
((EUID == 0)) || die "needs root (network namespaces, tcpdump): sudo $0 ${1:-}"
for tool in ip tcpdump ethtool tshark mergecap nstat; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (Debian: apt-get install iproute2 tcpdump ethtool tshark)"
done
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[[ -x $GO ]] || die "go not found: put it on PATH or set GO=/path/to/go"
ip mptcp limits show >/dev/null 2>&1 || die "ip has no 'mptcp' command (iproute2 >= 5.8 needed)"
[[ -e /proc/sys/net/mptcp/enabled ]] || die "kernel has no MPTCP (CONFIG_MPTCP)"
for s in "${SCENARIO_LIST[@]}"; do
	[[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario $s (have: ${ALL_SCENARIOS[*]})"
done

# --- cleanup: only what this run made ------------------------------------------------
WORK=$(mktemp -d /tmp/capture-kernel-mptcp.XXXXXX)
NAMESPACES=()
PIDS=()

cleanup() {
	local rc=$? pid ns
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	for ns in "${NAMESPACES[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
	if ((rc != 0)) || [[ ${KEEP_WORKDIR:-} == 1 ]]; then
		echo "capture-kernel-mptcp: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# forget PID once it has been waited for, so cleanup never signals a reused pid
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# wait_for FILE TEXT: wait up to 5 s for TEXT to appear in FILE
wait_for() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	die "timed out waiting for '$2' in $1: $(cat "$1" 2>/dev/null)"
}

log "building mptcp-peer"
(cd "$REPO" && "$GO" build -buildvcs=false -o "$WORK/mptcp-peer" ./internal/kernelpeer/cmd/mptcp-peer)
PEER=$WORK/mptcp-peer
mkdir -p "$OUTDIR"

# --- topology ------------------------------------------------------------------------
# setup NAME: namespaces C (client) and S (server), veth pairs c1-s1 and c2-s2.
setup() {
	C=mptcpcap-$1-c-$$
	S=mptcpcap-$1-s-$$
	local ns i side dev
	for ns in "$C" "$S"; do
		ip netns add "$ns"
		NAMESPACES+=("$ns")
		ip -n "$ns" link set lo up
		# tcp_early_retrans=0: no tail loss probes. Behind the rate limits of the join
		# scenarios they fire spuriously (queueing, not loss) and add retransmissions and
		# D-SACKs that the golden data does not need.
		ip netns exec "$ns" sysctl -qw net.mptcp.enabled=1 net.mptcp.checksum_enabled=0 \
			net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
			net.ipv4.tcp_early_retrans=0
		ip -n "$ns" mptcp limits set subflows 0 add_addr_accepted 0
	done
	for i in 1 2; do
		# Fixed MAC addresses keep the Ethernet headers the same from run to run.
		ip -n "$C" link add "c$i" address "02:00:00:00:0$i:01" type veth \
			peer name "s$i" address "02:00:00:00:0$i:02" netns "$S"
		ip -n "$C" addr add "10.0.$i.1/24" dev "c$i"
		ip -n "$S" addr add "10.0.$i.2/24" dev "s$i"
		ip -n "$C" addr add "fd00:$i::1/64" dev "c$i" nodad
		ip -n "$S" addr add "fd00:$i::2/64" dev "s$i" nodad
		for side in "$C c$i" "$S s$i"; do
			read -r ns dev <<<"$side"
			# No TSO/GSO/GRO: the capture shows MSS-sized segments, one DSS each, as a
			# wire would; no TX checksum offload: TCP checksums are filled in.
			ip netns exec "$ns" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 ||
				die "ethtool -K $dev failed in $ns"
			ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
			ip -n "$ns" link set "$dev" up
		done
	done
}

# rate_limit RATE SIDE...: a tbf qdisc at RATE on both veths of each SIDE (c: client
# egress, s: server egress). The kernel's default scheduler keeps a connection that is
# never backlogged on its first subflow; a backlog on a slow path makes it spread the data
# over every active subflow.
rate_limit() {
	local rate=$1 side i ns
	shift
	for side in "$@"; do
		ns=$C
		[[ $side == s ]] && ns=$S
		for i in 1 2; do
			ip netns exec "$ns" tc qdisc add dev "$side$i" root tbf rate "$rate" burst 16kb latency 500ms
		done
	done
}

# at WHAT: log an action taken while the peers run, with the time since the capture began
at() { printf '%s %s\n' "$(($(date +%s%N) / 1000000 - CAP_START_MS))ms" "$*" >>"$WORK/actions.log"; }

# --- capture -------------------------------------------------------------------------
CAP_PIDS=()
CAP_FILES=()

# start_capture NAME [SNAPLEN]: one tcpdump per veth, each capturing what leaves through
# it (-Q out). Taking every packet on its sender's side shows each direction in the order
# it was sent: the receiving side of a veth (netif_rx, per-CPU backlogs) may reorder
# packets sent from different CPUs, which tshark would report as lost segments.
start_capture() {
	local dev ns f
	CAP_PIDS=()
	CAP_FILES=()
	for dev in s1 s2 c1 c2; do
		ns=$S
		[[ $dev == c* ]] && ns=$C
		f=$WORK/$1-$dev.pcap
		ip netns exec "$ns" tcpdump -i "$dev" -Q out -n -U -s "${2:-$SNAPLEN}" -w "$f" tcp \
			2>"$WORK/$1-$dev.tcpdump.log" &
		PIDS+=($!)
		CAP_PIDS+=($!)
		CAP_FILES+=("$f")
		wait_for "$WORK/$1-$dev.tcpdump.log" "listening on"
	done
	CAP_START_MS=$(($(date +%s%N) / 1000000))
}

stop_capture() { # NAME
	local pid f
	sleep 1 # let the subflows finish closing
	for pid in "${CAP_PIDS[@]}"; do
		kill -INT "$pid"
		wait "$pid" || true
		forget "$pid"
	done
	for f in "$WORK/$1"-*.tcpdump.log; do
		grep -q '^0 packets dropped by kernel' "$f" || die "tcpdump lost packets: $(cat "$f")"
	done
	mergecap -F pcap -w "$OUTDIR/$1.pcap" "${CAP_FILES[@]}"
}

# --- peers ---------------------------------------------------------------------------
# run_peers NAME SERVER_ADDR CLIENT_FAILS [DURING]: runs mptcp-peer server in S with
# SERVER_ARGS and client in C with CLIENT_ARGS, connecting to SERVER_ADDR; DURING (a
# function) runs while the client does. CLIENT_FAILS=1 when the client is expected to end
# with an error (fastclose). The server listens on the wildcard address: the kernel
# delivers MP_JOINs to an announced address (without port) to the application's listener.
run_peers() {
	local name=$1 addr=$2 client_fails=$3 during=${4:-} spid cpid rc
	ip netns exec "$S" "$PEER" server "${SERVER_ARGS[@]}" --timeout 30s "[::]:$PORT" \
		>"$WORK/$name-server.json" 2>"$WORK/$name-server.log" &
	spid=$!
	PIDS+=("$spid")
	wait_for "$WORK/$name-server.log" "listening on"
	ip netns exec "$C" "$PEER" client "${CLIENT_ARGS[@]}" --timeout 30s "$addr" \
		>"$WORK/$name-client.json" 2>"$WORK/$name-client.log" &
	cpid=$!
	PIDS+=("$cpid")
	if [[ -n $during ]]; then "$during"; fi
	rc=0
	wait "$cpid" || rc=$?
	forget "$cpid"
	if ((client_fails == 0 && rc != 0)); then
		die "$name: client failed: $(cat "$WORK/$name-client.json" "$WORK/$name-client.log")"
	elif ((client_fails == 1 && rc == 0)); then
		die "$name: client should have failed: $(cat "$WORK/$name-client.json")"
	fi
	rc=0
	wait "$spid" || rc=$?
	forget "$spid"
	((rc == 0)) || die "$name: server failed: $(cat "$WORK/$name-server.json" "$WORK/$name-server.log")"
	grep -q '"mptcp":true' "$WORK/$name-client.json" || die "$name: client did not use MPTCP"
	grep -q '"mptcp":true' "$WORK/$name-server.json" || die "$name: server did not use MPTCP"
}

# json_field FILE KEY: a scalar from a peer's JSON line
json_field() { sed -n 's/.*"'"$2"'":"\{0,1\}\([^",}]*\).*/\1/p' "$1"; }

# check_transfer NAME: what each side sent is what the other received
check_transfer() {
	local a b
	for pair in "client server" "server client"; do
		read -r a b <<<"$pair"
		[[ $(json_field "$WORK/$1-$a.json" sent_sha256) == $(json_field "$WORK/$1-$b.json" received_sha256) ]] ||
			die "$1: $a sent $(json_field "$WORK/$1-$a.json" sent) bytes, $b received $(json_field "$WORK/$1-$b.json" received) with another digest"
	done
}

# nstat_snapshot NAME: the namespaces' MPTcpExt counters, into WORK/NAME-{client,server}.nstat
nstat_snapshot() {
	local role ns
	for role in client server; do
		ns=$C
		[[ $role == server ]] && ns=$S
		ip netns exec "$ns" env NSTAT_HISTORY="$WORK/$1-$role.nstat-history" \
			nstat -as 'MPTcpExt*' >"$WORK/$1-$role.nstat"
		ip netns exec "$ns" tc -s qdisc show >"$WORK/$1-$role.tc"
	done
}

# counter NAME ROLE COUNTER: a counter's value from nstat_snapshot (0 if absent)
counter() { awk -v c="$3" '$1 == c { v = $2 } END { print v + 0 }' "$WORK/$1-$2.nstat"; }

# need_counter NAME ROLE COUNTER MIN
need_counter() {
	local v
	v=$(counter "$1" "$2" "$3")
	((v >= $4)) || die "$1: $2 counter $3 is $v, want >= $4"
}

# no_counter NAME COUNTER...: counters that must be 0 on both sides
no_counter() {
	local name=$1 c role
	shift
	for c in "$@"; do
		for role in client server; do
			(($(counter "$name" "$role" "$c") == 0)) ||
				die "$name: $role counter $c is $(counter "$name" "$role" "$c"), want 0"
		done
	done
}

# Counters that mean something went wrong on any scenario.
BAD_COUNTERS=(MPTcpExtMPCapableFallbackACK MPTcpExtMPCapableFallbackSYNACK
	MPTcpExtDSSNotMatching MPTcpExtInfiniteMapRx MPTcpExtDataCsumErr MPTcpExtMPJoinSynAckHMacFailure
	MPTcpExtMPJoinAckHMacFailure MPTcpExtAddAddrDrop MPTcpExtMPFailRx MPTcpExtMPFailTx)

# --- verification with tshark ---------------------------------------------------------
# Each scenario lists EXPECT lines "MIN|DISPLAY FILTER|DESCRIPTION"; verify checks them
# and writes the counts, per MPTCP subtype and per expectation, for the README.
SUBTYPE_NAMES=(MP_CAPABLE MP_JOIN DSS ADD_ADDR REMOVE_ADDR MP_PRIO MP_FAIL MP_FASTCLOSE MP_TCPRST)
EXPECT=()

# ts: tshark, with its chatter ("Running as user root") kept out of the way
ts() {
	tshark "$@" 2>"$WORK/tshark.err" || {
		cat "$WORK/tshark.err" >&2
		die "tshark $* failed"
	}
}

# csum16 HEX: the 16-bit one's-complement sum of the bytes given in hex (zero-padded)
csum16() {
	local h=$1 sum=0 i
	((${#h} % 4 == 0)) || h+=00
	for ((i = 0; i < ${#h}; i += 4)); do
		((sum += 16#${h:i:4}))
	done
	while ((sum >> 16)); do ((sum = (sum & 0xffff) + (sum >> 16))); done
	echo "$sum"
}

# check_dss_checksums NAME MIN: recompute the checksum of every DSS mapping that covers
# exactly one fully captured segment (RFC 8684 section 3.3.1: one's-complement sum of the
# pseudo-header DSN(64) | subflow seq(32) | data-level length(16) | checksum(16) and the
# payload; a correct checksum makes it 0xffff). Fails on any mismatch or if fewer than MIN
# mappings could be checked. Prints the number checked.
check_dss_checksums() {
	local f=$OUTDIR/$1.pcap opts payload i kind len o flags p dsn ssn dll ck plen checked=0
	while IFS=$'\t' read -r opts payload; do
		i=0
		while ((i < ${#opts})); do
			kind=$((16#${opts:i:2}))
			((kind != 0)) || break
			if ((kind == 1)); then ((i += 2)) && continue; fi
			len=$((16#${opts:i+2:2}))
			o=${opts:i:len*2}
			((i += len * 2))
			((kind == 30)) || continue
			((16#${o:4:1} == 2)) || continue # DSS
			flags=$((16#${o:6:2}))
			p=8
			((flags & 1)) && ((p += (flags & 2) ? 16 : 8))
			((flags & 4)) || continue # no mapping
			((flags & 8)) || die "$1: 4-byte DSN in a DSS, not handled"
			((len * 2 >= p + 32)) || die "$1: DSS mapping without checksum: $o"
			dsn=${o:p:16} ssn=${o:p+16:8} dll=${o:p+24:4} ck=${o:p+28:4}
			plen=$((${#payload} / 2))
			# A DATA_FIN takes one DSN: it may end the mapping, with or without data.
			((16#$dll == plen || ((flags & 16) && 16#$dll == plen + 1))) || continue
			(($(csum16 "$dsn$ssn$dll$ck$payload") == 0xffff)) ||
				die "$1: DSS checksum mismatch: option $o, payload $plen bytes"
			((checked += 1))
		done
	done < <(ts -r "$f" -Y 'mptcp && frame.len == frame.cap_len' -T fields -e tcp.options -e tcp.payload)
	((checked >= $2)) || die "$1: only $checked DSS checksums could be checked, want >= $2"
	echo "$checked"
}

verify() { # NAME
	local f=$OUTDIR/$1.pcap line min filter desc n out
	out=$WORK/$1.summary
	# Malformed packets: tshark flags them in the detailed view and as expert errors.
	ts -r "$f" -V >"$WORK/$1.tshark-V.txt"
	! grep -qi malformed "$WORK/$1.tshark-V.txt" || die "$1: tshark reports malformed packets"
	# tshark's analysis: the MPTCP one (DSN tracking across subflows, key/token/IDSN checks)
	# must raise no warning or error, and the TCP one must not see a hole in the capture.
	# Other TCP warnings (RST, window full, D-SACK) are TCP doing its job: they are
	# recorded for the README.
	ts -r "$f" -o mptcp.analyze_mptcp:TRUE -o mptcp.relative_sequence_numbers:FALSE \
		-o tcp.analyze_sequence_numbers:TRUE -q -z expert,warn >"$WORK/$1.expert.txt"
	# Summary rows look like "   3   Sequence   TCP  D-SACK Sequence".
	if grep -E '^ +[0-9]+ ' "$WORK/$1.expert.txt" |
		awk -F '  +' '$4 == "MPTCP" || /not captured|[Mm]alformed/' | grep '' >&2; then
		die "$1: tshark's analysis flags the problems above"
	fi
	{
		printf '%s|%s|%s\n' packets "$(ts -r "$f" | wc -l)" "$(stat -c %s "$f")"
		grep -E '^ +[0-9]+ ' "$WORK/$1.expert.txt" |
			awk -F '  +' '{ printf "tcpwarn|%s|%s\n", $5, $2 }' || true
		ts -r "$f" -Y mptcp -T fields -e tcp.options.mptcp.subtype |
			tr ',' '\n' | sort -n | uniq -c | while read -r n line; do
			printf 'subtype|%s|%s\n' "${SUBTYPE_NAMES[$line]:-subtype $line}" "$n"
		done
	} >"$out"
	for line in "${EXPECT[@]}"; do
		IFS='|' read -r min filter desc <<<"$line"
		n=$(ts -r "$f" -Y "$filter" | wc -l)
		((n >= min)) || die "$1: want >= $min packets with $desc ($filter), tshark finds $n"
		printf 'expect|%s|%s|%s\n' "$desc" "$n" "$filter" >>"$out"
	done
	if ((DSS_CSUM_MIN > 0)); then
		n=$(check_dss_checksums "$1" "$DSS_CSUM_MIN")
		printf 'csum|%s\n' "$n" >>"$out"
	fi
	log "$1: ${#EXPECT[@]} expectations met, $(stat -c %s "$f") bytes"
}

# --- scenarios -------------------------------------------------------------------------
# DESCRIBE[name] is the README's text for the file.
declare -A DESCRIBE

DESCRIBE[v1-basic]="MPTCP v1 handshake (MP_CAPABLE SYN, SYN/ACK, third ACK, then the \
client's first data with both keys and the data-level length), 16 KiB from the client \
that the server echoes back, then an orderly close: each side sends DATA_FIN (Linux puts \
it on an option-only ACK) before the subflow FINs. The server only echoes, so nothing \
from it can reach the client before the client's first data, which therefore always \
carries MP_CAPABLE."
scenario_v1-basic() {
	setup v1-basic
	start_capture v1-basic
	SERVER_ARGS=(--echo)
	CLIENT_ARGS=(--bind 10.0.1.1:40001 --sink --send 16K)
	run_peers v1-basic "10.0.1.2:$PORT" 0
	stop_capture v1-basic
	check_transfer v1-basic
	EXPECT=(
		"1|tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.options.mptcp.subtype==0|MP_CAPABLE on SYN"
		"1|tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.options.mptcp.subtype==0|MP_CAPABLE on SYN/ACK"
		"1|tcp.flags.syn==0 && tcp.options.mptcp.subtype==0 && tcp.len==0|MP_CAPABLE third ACK (both keys)"
		"1|tcp.options.mptcp.subtype==0 && tcp.len>0|MP_CAPABLE with data (keys + data-level length)"
		"2|tcp.options.mptcp.datafin.flag==1|DSS with DATA_FIN"
		"2|tcp.options.mptcp.datafin.flag==1 && tcp.len==0 && tcp.flags.fin==0|DATA_FIN on an option-only ACK"
		"10|tcp.options.mptcp.dseqnpresent.flag==1 && tcp.len>0|DSS mapping on data"
	)
}

DESCRIBE[v1-checksum]="As v1-basic with net.mptcp.checksum_enabled=1 on both sides: \
MP_CAPABLE carries the checksum-required flag (A) and every DSS mapping a checksum. The \
client writes 6000 bytes as 20-200 byte messages 5 ms apart and the server echoes each \
one, one message per segment; the snap length (320) keeps whole payloads, so DSS \
checksums can be verified."
scenario_v1-checksum() {
	setup v1-checksum
	ip netns exec "$C" sysctl -qw net.mptcp.checksum_enabled=1
	ip netns exec "$S" sysctl -qw net.mptcp.checksum_enabled=1
	start_capture v1-checksum 320
	SERVER_ARGS=(--echo)
	CLIENT_ARGS=(--bind 10.0.1.1:40001 --sink --send 6000 --writes 20-200 --write-delay 5ms)
	run_peers v1-checksum "10.0.1.2:$PORT" 0
	stop_capture v1-checksum
	check_transfer v1-checksum
	grep -q '"checksum_enabled":true' "$WORK/v1-checksum-client.json" ||
		die "v1-checksum: the client's MPTCP_INFO says checksums are off"
	EXPECT=(
		"3|tcp.options.mptcp.subtype==0 && tcp.options.mptcp.checksumreq.flags==1|MP_CAPABLE with checksum required"
		"1|tcp.options.mptcp.subtype==0 && tcp.len>0|MP_CAPABLE with data (keys + data-level length + checksum)"
		"40|tcp.options.mptcp.dseqnpresent.flag==1 && tcp.len>0 && frame.len==frame.cap_len|DSS mapping on a fully captured segment"
		"2|tcp.options.mptcp.datafin.flag==1|DSS with DATA_FIN"
	)
	DSS_CSUM_MIN=40
}

DESCRIBE[add-addr-join]="The server has a signal endpoint for its second address \
(10.0.2.2); limits are subflows 2, add_addr_accepted 2 on both sides. Right after the \
handshake the server sends ADD_ADDR (IPv4, with HMAC), the client echoes it and opens an \
MP_JOIN subflow to 10.0.2.2:$PORT (SYN with token and nonce, SYN/ACK with truncated HMAC, \
third ACK with full HMAC, fourth ACK). Both peers wait 200 ms, then send 128 KiB each; \
every veth is rate-limited to 20 Mbit/s, so the backlog makes the kernel's scheduler use \
both subflows. Orderly close: Linux repeats its DATA_FIN on every DSS until it is \
DATA_ACKed, hence the many DATA_FIN packets."
scenario_add-addr-join() {
	setup add-addr-join
	ip -n "$C" mptcp limits set subflows 2 add_addr_accepted 2
	ip -n "$S" mptcp limits set subflows 2 add_addr_accepted 2
	ip -n "$S" mptcp endpoint add 10.0.2.2 dev s2 id 1 signal
	rate_limit 20mbit c s
	start_capture add-addr-join
	SERVER_ARGS=(--sink --send 128K --start-delay 200ms)
	CLIENT_ARGS=(--bind 10.0.1.1:40001 --sink --send 128K --start-delay 200ms)
	run_peers add-addr-join "10.0.1.2:$PORT" 0
	nstat_snapshot add-addr-join
	stop_capture add-addr-join
	check_transfer add-addr-join
	no_counter add-addr-join "${BAD_COUNTERS[@]}"
	need_counter add-addr-join server MPTcpExtMPJoinAckRx 1
	EXPECT=(
		"1|tcp.options.mptcp.subtype==3 && tcp.options.mptcp.echo==0 && tcp.options.mptcp.ipv4==10.0.2.2|ADD_ADDR 10.0.2.2 with HMAC"
		"1|tcp.options.mptcp.subtype==3 && tcp.options.mptcp.echo==1|ADD_ADDR echo"
		"1|tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.options.mptcp.subtype==1|MP_JOIN SYN"
		"1|tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.options.mptcp.subtype==1|MP_JOIN SYN/ACK"
		"1|tcp.flags.syn==0 && tcp.options.mptcp.subtype==1|MP_JOIN third ACK"
		"1|ip.dst==10.0.2.2 && tcp.len>0|data from the client on the joined subflow"
		"1|ip.src==10.0.2.2 && tcp.len>0|data from the server on the joined subflow"
		"2|tcp.options.mptcp.datafin.flag==1|DSS with DATA_FIN"
	)
}

DESCRIBE[add-addr-port]="As add-addr-join, but the endpoint has a port: the server \
announces 10.0.2.2 port $JOIN_PORT (ADD_ADDR with port and HMAC, 18 bytes; the echo also \
carries the port), the kernel listens on that port for joins, and the client joins to it."
scenario_add-addr-port() {
	setup add-addr-port
	ip -n "$C" mptcp limits set subflows 2 add_addr_accepted 2
	ip -n "$S" mptcp limits set subflows 2 add_addr_accepted 2
	ip -n "$S" mptcp endpoint add 10.0.2.2 dev s2 id 1 port "$JOIN_PORT" signal
	rate_limit 20mbit c s
	start_capture add-addr-port
	SERVER_ARGS=(--sink --send 128K --start-delay 200ms)
	CLIENT_ARGS=(--bind 10.0.1.1:40001 --sink --send 128K --start-delay 200ms)
	run_peers add-addr-port "10.0.1.2:$PORT" 0
	nstat_snapshot add-addr-port
	stop_capture add-addr-port
	check_transfer add-addr-port
	no_counter add-addr-port "${BAD_COUNTERS[@]}"
	need_counter add-addr-port server MPTcpExtMPJoinAckRx 1
	EXPECT=(
		"1|tcp.options.mptcp.subtype==3 && tcp.options.mptcp.echo==0 && tcp.options.mptcp.port==$JOIN_PORT|ADD_ADDR with port and HMAC"
		"1|tcp.options.mptcp.subtype==3 && tcp.options.mptcp.echo==1 && tcp.options.mptcp.port==$JOIN_PORT|ADD_ADDR echo with port"
		"1|tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.options.mptcp.subtype==1 && tcp.dstport==$JOIN_PORT|MP_JOIN SYN to the announced port"
		"1|tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.options.mptcp.subtype==1|MP_JOIN SYN/ACK"
		"1|tcp.flags.syn==0 && tcp.options.mptcp.subtype==1|MP_JOIN third ACK"
		"1|tcp.port==$JOIN_PORT && tcp.len>0|data on the joined subflow"
	)
}

DESCRIBE[ipv6]="Two connections over IPv6, one after the other. First v1-basic: \
handshake to [fd00:1::2]:$PORT from port 40001, the client's first data with MP_CAPABLE, \
16 KiB echoed, orderly close. Then, once the server has a signal endpoint for fd00:2::2, \
add-addr-join from port 40002: ADD_ADDR6 with HMAC (28 bytes, so Linux sends it on an \
option-only ACK without DSS), its echo, an MP_JOIN subflow over IPv6 to fd00:2::2, 128 KiB \
each way on both subflows, orderly close."
scenario_ipv6() {
	setup ipv6
	ip -n "$C" mptcp limits set subflows 2 add_addr_accepted 2
	ip -n "$S" mptcp limits set subflows 2 add_addr_accepted 2
	start_capture ipv6
	SERVER_ARGS=(--echo)
	CLIENT_ARGS=(--bind "[fd00:1::1]:40001" --sink --send 16K)
	run_peers ipv6-basic "[fd00:1::2]:$PORT" 0
	check_transfer ipv6-basic
	ip -n "$S" mptcp endpoint add fd00:2::2 dev s2 id 1 signal
	rate_limit 20mbit c s
	SERVER_ARGS=(--sink --send 128K --start-delay 200ms)
	CLIENT_ARGS=(--bind "[fd00:1::1]:40002" --sink --send 128K --start-delay 200ms)
	run_peers ipv6 "[fd00:1::2]:$PORT" 0
	nstat_snapshot ipv6
	stop_capture ipv6
	check_transfer ipv6
	no_counter ipv6 "${BAD_COUNTERS[@]}"
	need_counter ipv6 server MPTcpExtMPJoinAckRx 1
	EXPECT=(
		"1|ipv6 && tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.options.mptcp.subtype==0|MP_CAPABLE SYN over IPv6"
		"1|ipv6 && tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.options.mptcp.subtype==0|MP_CAPABLE SYN/ACK over IPv6"
		"1|ipv6 && tcp.flags.syn==0 && tcp.options.mptcp.subtype==0 && tcp.len==0|MP_CAPABLE third ACK over IPv6"
		"1|ipv6 && tcp.options.mptcp.subtype==0 && tcp.len>0|MP_CAPABLE with data over IPv6"
		"1|tcp.options.mptcp.subtype==3 && tcp.options.mptcp.echo==0 && tcp.options.mptcp.ipv6==fd00:2::2|ADD_ADDR6 fd00:2::2 with HMAC"
		"1|tcp.options.mptcp.subtype==3 && tcp.options.mptcp.echo==1 && tcp.options.mptcp.ipv6==fd00:2::2|ADD_ADDR6 echo"
		"1|ipv6.dst==fd00:2::2 && tcp.flags.syn==1 && tcp.options.mptcp.subtype==1|MP_JOIN SYN over IPv6"
		"1|tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.options.mptcp.subtype==1|MP_JOIN SYN/ACK"
		"1|tcp.flags.syn==0 && tcp.options.mptcp.subtype==1|MP_JOIN third ACK"
		"1|ipv6.dst==fd00:2::2 && tcp.len>0|data from the client on the joined subflow"
		"1|ipv6.src==fd00:2::2 && tcp.len>0|data from the server on the joined subflow"
		"4|tcp.options.mptcp.datafin.flag==1|DSS with DATA_FIN"
	)
}

DESCRIBE[backup-prio-remove]="The client has a second endpoint '10.0.2.1 dev c2 id 2 \
subflow backup' (policy routing sends it over path 2 to the server's 10.0.1.2:$PORT), so \
it joins with the backup flag set on the MP_JOIN SYN. The client then sends 256 KiB in \
8 KiB writes 50 ms apart over veths limited to 1 Mbit/s (the server only reads), and \
meanwhile the script runs 'ip mptcp endpoint change id 2 nobackup' (MP_PRIO B=0; the \
scheduler starts using the second subflow), 'change id 2 backup' (MP_PRIO B=1) and \
'endpoint delete id 2' (the kernel closes that subflow with a FIN and sends REMOVE_ADDR \
id 2 on the first one), 400 ms apart."
during_backup_prio_remove() {
	sleep 0.4
	at "endpoint change id 2 nobackup"
	ip -n "$C" mptcp endpoint change id 2 nobackup
	sleep 0.4
	at "endpoint change id 2 backup"
	ip -n "$C" mptcp endpoint change id 2 backup
	sleep 0.4
	at "endpoint delete id 2"
	ip -n "$C" mptcp endpoint delete id 2
}
scenario_backup-prio-remove() {
	setup backup-prio-remove
	ip -n "$C" mptcp limits set subflows 2 add_addr_accepted 0
	ip -n "$S" mptcp limits set subflows 2 add_addr_accepted 0
	# The join from 10.0.2.1 goes to the server's initial address 10.0.1.2 over path 2.
	ip -n "$C" rule add from 10.0.2.1 table 102
	ip -n "$C" route add 10.0.1.0/24 via 10.0.2.2 dev c2 table 102
	ip -n "$C" mptcp endpoint add 10.0.2.1 dev c2 id 2 subflow backup
	rate_limit 1mbit c
	start_capture backup-prio-remove
	SERVER_ARGS=(--sink)
	CLIENT_ARGS=(--bind 10.0.1.1:40001 --send 256K --writes 8K --write-delay 50ms --start-delay 100ms)
	run_peers backup-prio-remove "10.0.1.2:$PORT" 0 during_backup_prio_remove
	nstat_snapshot backup-prio-remove
	stop_capture backup-prio-remove
	check_transfer backup-prio-remove
	no_counter backup-prio-remove "${BAD_COUNTERS[@]}"
	need_counter backup-prio-remove client MPTcpExtMPPrioTx 2
	need_counter backup-prio-remove server MPTcpExtRmAddr 1
	EXPECT=(
		"1|tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.options.mptcp.subtype==1 && tcp.options.mptcp.backup.flag==1|MP_JOIN SYN with backup flag"
		"1|tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.options.mptcp.subtype==1|MP_JOIN SYN/ACK"
		"1|tcp.flags.syn==0 && tcp.options.mptcp.subtype==1|MP_JOIN third ACK"
		"1|tcp.options.mptcp.subtype==5 && tcp.options.mptcp.backup.flag==0|MP_PRIO nobackup"
		"1|tcp.options.mptcp.subtype==5 && tcp.options.mptcp.backup.flag==1|MP_PRIO backup"
		"1|tcp.options.mptcp.subtype==4 && tcp.options.mptcp.addrid==2|REMOVE_ADDR id 2"
		"1|ip.src==10.0.2.1 && tcp.len>0|data on the backup subflow"
		"1|ip.src==10.0.2.1 && tcp.flags.fin==1|FIN closing the backup subflow"
	)
}

DESCRIBE[fastclose]="The client sends 24 KiB and waits for EOF; the server never reads, \
waits until the data is pending, holds 200 ms and closes with SO_LINGER 0. With unread \
data the kernel aborts the connection with MP_FASTCLOSE (carrying the client's key) and \
MP_TCPRST on a RST; the client sees ECONNRESET."
scenario_fastclose() {
	setup fastclose
	start_capture fastclose
	SERVER_ARGS=(--linger0 --hold 200ms)
	CLIENT_ARGS=(--bind 10.0.1.1:40001 --sink --send 24K)
	run_peers fastclose "10.0.1.2:$PORT" 1
	nstat_snapshot fastclose
	stop_capture fastclose
	grep -q '"aborted":true' "$WORK/fastclose-server.json" || die "fastclose: server did not abort"
	grep -q 'connection reset' "$WORK/fastclose-client.json" ||
		die "fastclose: client did not see a reset: $(cat "$WORK/fastclose-client.json")"
	need_counter fastclose server MPTcpExtMPFastcloseTx 1
	need_counter fastclose client MPTcpExtMPFastcloseRx 1
	EXPECT=(
		"1|tcp.flags.reset==1 && tcp.options.mptcp.subtype==7|MP_FASTCLOSE on a RST"
		"1|tcp.flags.reset==1 && tcp.options.mptcp.subtype==8|MP_TCPRST on a RST"
	)
}

# --- README ----------------------------------------------------------------------------
write_readme() {
	local name f kernel line kind a b c
	kernel="$(uname -r) ($(uname -m))"
	{
		cat <<EOF
# Linux kernel MPTCP captures

Golden data for the option codec: decoder tests, fuzz seeds and benchmarks. Every file is
real traffic between a Linux kernel MPTCP client and server in two network namespaces,
made by \`scripts/capture-kernel-mptcp.sh\` (read its header; regenerate with
\`sudo scripts/capture-kernel-mptcp.sh\`, which also rewrites this file).

- Kernel: $kernel; captured with $(tcpdump --version 2>&1 | head -1), checked with
  $(tshark --version 2>/dev/null | head -1 | sed 's/ (Git.*//').
- Format: pcap (not pcapng), Ethernet link type, microsecond timestamps. Each packet was
  captured as it left its sender's veth (tcpdump -Q out on all four veth ends, merged by
  time), so each direction is in send order. Snap length $SNAPLEN (headers and options
  only) except v1-checksum (320: whole payloads).
- Offloads are off, so segments are MSS-sized (MTU 1500) with one DSS mapping each, and
  TCP checksums are valid, as on a wire.
- Addresses: client 10.0.1.1 / 10.0.2.1 / fd00:1::1 / fd00:2::1, server 10.0.1.2 /
  10.0.2.2 / fd00:1::2 / fd00:2::2; the server listens on port $PORT, the client's first
  subflow uses port 40001 (40002 for the second connection in ipv6.pcap).
- Payloads are \`kernelpeer.Payload(seed)\` (client seed 1, server seed 2; an echoing server
  sends the client's bytes back).
- tshark reports no malformed packet in any file, its MPTCP analysis
  (\`mptcp.analyze_mptcp\`: DSN tracking, keys, tokens, IDSNs) no warning or error, and
  its TCP analysis no hole in the capture; other TCP warnings are listed per file. The
  kernels' MPTcpExt counters showed no fallback, DSS mismatch, checksum error, HMAC
  failure or MP_FAIL.

Counts below are what tshark finds: "MPTCP options" counts each option (a segment may
carry several); the other lines count packets matching a display filter.
EOF
		for name in "${ALL_SCENARIOS[@]}"; do
			f=$WORK/$name.summary
			printf '\n## %s.pcap\n\n%s\n\n' "$name" "${DESCRIBE[$name]}"
			IFS='|' read -r kind a b <"$f"
			printf -- '- %s packets, %s bytes\n' "$a" "$b"
			printf -- '- MPTCP options:'
			local first=1
			while IFS='|' read -r kind a b c; do
				[[ $kind == subtype ]] || continue
				((first)) && printf ' ' || printf ', '
				first=0
				printf '%s %s' "$a" "$b"
			done <"$f"
			printf '\n'
			printf -- '- tshark TCP analysis warnings:'
			first=1
			while IFS='|' read -r kind a b c; do
				[[ $kind == tcpwarn ]] || continue
				((first)) && printf ' ' || printf ', '
				first=0
				printf '%s x%s' "$a" "$b"
			done <"$f"
			((first)) && printf ' none'
			printf '\n'
			while IFS='|' read -r kind a b c; do
				case $kind in
				expect) printf -- '- %s: %s (`%s`)\n' "$a" "$b" "$c" ;;
				csum) printf -- '- DSS checksums recomputed over the captured payloads by the script: %s, all correct\n' "$a" ;;
				esac
			done <"$f"
		done
		if [[ -n ${README_NOTES:-} ]]; then
			printf '\n## Notes\n\n%s\n' "$README_NOTES"
		fi
	} >"$OUTDIR/README.md"
}

# What this kernel does differently from the plain reading of the scenarios, and why the
# scenarios are set up as they are.
README_NOTES="\
- The client's first data carries MP_CAPABLE (keys + data-level length) only if nothing
  from the server reaches the client first. With a signal endpoint the server sends
  ADD_ADDR about 0.1 ms after the handshake, always before the client's first write, so
  add-addr-join, add-addr-port and the second ipv6 connection have no MP_CAPABLE with data;
  v1-basic, v1-checksum and the first ipv6 connection have it because the server only
  echoes. That is also why ipv6.pcap holds two connections.
- In the join scenarios both peers wait 200 ms before writing. In a run where both wrote at
  once, the ADD_ADDR6 (28 bytes: it needs an option-only ACK without DSS) only left after
  8 ms of data and the join that followed was refused by the server (MPJoinRejected,
  MP_TCPRST reason 3, administratively prohibited).
- The server listens on the wildcard address: the kernel hands an MP_JOIN to an announced
  address without a port to the application's listener, and a listener bound to 10.0.1.2
  alone never answered the join SYN to 10.0.2.2. With a port (add-addr-port) the kernel
  listens on the announced port itself.
- The kernel's default scheduler keeps a connection that is never backlogged on its first
  subflow; the join scenarios therefore rate-limit the veths (tbf: 20 Mbit/s, 1 Mbit/s in
  backup-prio-remove) so that data flows on both subflows. This kernel has no netem.
- A subflow endpoint opens its subflow towards the server's initial address, so in
  backup-prio-remove the client reaches 10.0.1.2 over path 2 by policy routing. Deleting
  the endpoint closes the subflow with a FIN first, then REMOVE_ADDR (id 2) goes out on
  the remaining subflow. MP_PRIO is a 3-byte option followed by a NOP; the DSS beside
  MP_PRIO and REMOVE_ADDR carries a 4-byte DATA_ACK.
- Linux sends MP_FASTCLOSE on the RST itself, together with MP_TCPRST (reason 0), not on an
  ACK before the RST (RFC 8684 section 3.5 allows both).
- Linux repeats its DATA_FIN (subflow sequence 0, data-level length 1) on every DSS until
  the DATA_FIN is DATA_ACKed.
- tshark 4.0 does not show the DSS checksum field; the script recomputes the checksums of
  v1-checksum itself (pseudo-header of RFC 8684 section 3.3.1, DATA_FIN mappings included)."

for s in "${SCENARIO_LIST[@]}"; do
	log "scenario $s"
	EXPECT=()
	DSS_CSUM_MIN=0
	"scenario_$s"
	[[ -f $WORK/$s-client.nstat ]] || nstat_snapshot "$s"
	no_counter "$s" MPTcpExtMPCapableFallbackACK MPTcpExtMPCapableFallbackSYNACK \
		MPTcpExtDSSNotMatching MPTcpExtDataCsumErr
	verify "$s"
	for ns in "$C" "$S"; do ip netns delete "$ns"; done
	NAMESPACES=()
done

if [[ ${#SCENARIO_LIST[@]} -eq ${#ALL_SCENARIOS[@]} ]]; then
	write_readme
	log "wrote $OUTDIR/README.md"
fi
ls -l "$OUTDIR"/*.pcap >&2
