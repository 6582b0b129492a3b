#!/usr/bin/env bash
# Checks tools/wireshark/tandem.lua against real traffic:
#   1. tandem-wireshark-check binds a tandem-std server over TCP and one over UDP (datagram
#      mode), each behind a recording relay, and writes the ports to capture;
#   2. dumpcap captures those ports on the loopback interface;
#   3. the exchanges run (the program logs every frame each side sent);
#   4. tshark decodes the capture with tandem.lua three times: found by the HELLO heuristic,
#      by the port preferences with the heuristic off, and in two passes (as the GUI does);
#   5. tandem-wireshark-check compares tshark's fields with the log and fails with a diff;
#   6. the conformance frame vectors (conformance/vectors/frames.json) are written as a capture
#      and tshark must decode the valid ones field by field and report each invalid one as
#      malformed with its SPEC.md §3.3 error;
#   7. mutants of the vectors (cut, bytes inverted), over UDP and over TCP in segments of
#      every size, must not make the dissector fail (no Lua error).
#
# Needs tshark and dumpcap (Debian: apt-get install tshark) and the right to capture on `lo`
# (root, or dumpcap's capabilities). Fails, never skips, when it cannot capture.
#
# Usage: tools/wireshark/test.sh [--keep DIR] [--sample FILE]
#   --keep DIR     keep the capture, the log and tshark's output in DIR
#   --sample FILE  also write the capture to FILE (how sample.pcapng is made)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
keep=""
sample=""
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep="$2"; shift 2 ;;
        --sample) sample="$2"; shift 2 ;;
        *) echo "usage: $0 [--keep DIR] [--sample FILE]" >&2; exit 2 ;;
    esac
done

fail() {
    printf 'wireshark test: %s\n' "$*" >&2
    exit 1
}

for tool in tshark dumpcap; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (Debian: apt-get install tshark)"
done

if [ -n "$keep" ]; then
    mkdir -p "$keep"
    work="$(cd "$keep" && pwd)"
else
    work="$(mktemp -d)"
fi
traffic_pid=""
dumpcap_pid=""
cleanup() {
    if [ -n "$dumpcap_pid" ] && kill -0 "$dumpcap_pid" 2>/dev/null; then kill -INT "$dumpcap_pid" 2>/dev/null || true; fi
    if [ -n "$traffic_pid" ] && kill -0 "$traffic_pid" 2>/dev/null; then kill "$traffic_pid" 2>/dev/null || true; fi
    if [ -z "$keep" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
rm -f "$work/ports" "$work/go" "$work/log.jsonl" "$work/capture.pcapng"

(cd "$root" && cargo build -q -p tandem-wireshark-check)
bin="$root/target/debug/tandem-wireshark-check"

# 1. Servers and relays; their ports.
"$bin" traffic --log "$work/log.jsonl" --ports "$work/ports" --go "$work/go" &
traffic_pid=$!
for _ in $(seq 600); do
    [ -f "$work/ports" ] && break
    kill -0 "$traffic_pid" 2>/dev/null || fail "tandem-wireshark-check traffic exited before binding its ports"
    sleep 0.1
done
[ -f "$work/ports" ] || fail "no ports from tandem-wireshark-check after 60 s"
filter=""
tcp_ports=()
udp_ports=()
probe=""
while read -r proto port; do
    case "$proto" in
        probe) probe="$port"; filter="${filter:+$filter or }udp port $port" ;;
        tcp) tcp_ports+=("$port"); filter="${filter:+$filter or }tcp port $port" ;;
        udp) udp_ports+=("$port"); filter="${filter:+$filter or }udp port $port" ;;
    esac
done <"$work/ports"
[ -n "$probe" ] || fail "no probe port in $work/ports"

# 2. The capture. dumpcap announces "Capturing on" a little before packets are really
# captured, so datagrams are sent to the probe port until one shows up in the capture (written
# to a pipe, dumpcap flushes as it goes); only then do the exchanges start.
# Capturing needs root (or dumpcap's capabilities): a CI user that is not root captures
# through sudo, as .ci/run installs packages.
capture=(dumpcap)
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    capture=(sudo -n dumpcap)
fi
"${capture[@]}" -q -i lo -f "$filter" -w - >"$work/capture.pcapng" 2>"$work/dumpcap.err" &
dumpcap_pid=$!
header_size=""
for i in $(seq 200); do
    kill -0 "$dumpcap_pid" 2>/dev/null || fail "dumpcap cannot capture on lo: $(cat "$work/dumpcap.err")"
    if grep -q "Capturing on" "$work/dumpcap.err" 2>/dev/null; then
        size="$(stat -c %s "$work/capture.pcapng")"
        if [ -z "$header_size" ]; then
            header_size="$size"
        elif [ "$size" -gt "$header_size" ]; then
            break
        fi
        echo "probe $i" >"/dev/udp/127.0.0.1/$probe"
    fi
    sleep 0.05
done
[ -n "$header_size" ] && [ "$(stat -c %s "$work/capture.pcapng")" -gt "$header_size" ] ||
    fail "dumpcap captured none of the probe datagrams within 10 s: $(cat "$work/dumpcap.err")"

# 3. The exchanges.
touch "$work/go"
wait "$traffic_pid" || { traffic_pid=""; fail "the exchanges failed (see above)"; }
traffic_pid=""
# Let dumpcap read and flush the last packets before stopping it.
sleep 1
kill -INT "$dumpcap_pid"
wait "$dumpcap_pid" || true
dumpcap_pid=""
[ -s "$work/capture.pcapng" ] || fail "dumpcap wrote no capture"
if [ -n "$sample" ]; then
    # The client↔relay leg of each connection, without the probes.
    tshark -r "$work/capture.pcapng" -w "$sample" -Y "tcp.port == ${tcp_ports[0]} or udp.port == ${udp_ports[0]}" 2>/dev/null ||
        fail "cannot write $sample"
fi

# 4 and 5. Decode and compare: once found by the heuristic (tried before any port-based
# dissector, so that an ephemeral port registered to another protocol cannot take the
# traffic), once by port with the heuristic off.
decode() {
    local out="$1"
    shift
    tshark -X "lua_script:$here/tandem.lua" -r "$work/capture.pcapng" -T json --no-duplicate-keys \
        -J "frame tcp udp tandem" "$@" >"$work/$out.json" 2>"$work/$out.err" ||
        fail "tshark failed: $(cat "$work/$out.err")"
    if grep -q "Lua" "$work/$out.err"; then fail "tshark: $(cat "$work/$out.err")"; fi
    echo "== tshark ($out): $*"
    "$bin" compare --log "$work/log.jsonl" --tshark "$work/$out.json" || fail "tshark's decoding ($out) differs from the sender log"
}
decode heuristic -o tcp.try_heuristic_first:TRUE -o udp.try_heuristic_first:TRUE
tcp_range="$(IFS=,; echo "${tcp_ports[*]}")"
udp_range="$(IFS=,; echo "${udp_ports[*]}")"
decode ports -o tandem.heuristic:FALSE -o "tandem.tcp_ports:$tcp_range" -o "tandem.udp_ports:$udp_range"
# Two passes, as Wireshark's GUI re-dissects: the state kept from the first pass must give the
# same fields.
decode two-pass -2 -o tcp.try_heuristic_first:TRUE -o udp.try_heuristic_first:TRUE

# 6. The conformance frame vectors (valid and invalid), one UDP datagram each.
vectors="$root/conformance/vectors/frames.json"
"$bin" vectors-pcap --vectors "$vectors" --out "$work/vectors.pcap" --fuzz-out "$work/mutants.pcap"
tshark -X "lua_script:$here/tandem.lua" -r "$work/vectors.pcap" -o udp.try_heuristic_first:TRUE -T json \
    --no-duplicate-keys -J "udp tandem" >"$work/vectors.json" 2>"$work/vectors.err" ||
    fail "tshark failed on the vectors: $(cat "$work/vectors.err")"
if grep -q "Lua" "$work/vectors.err"; then fail "tshark: $(cat "$work/vectors.err")"; fi
echo "== tshark (conformance vectors)"
"$bin" vectors-check --vectors "$vectors" --tshark "$work/vectors.json" || fail "tshark's decoding of the conformance vectors is wrong"

# 7. Hostile input: the vectors' mutants (cut, bytes inverted) over UDP and over TCP in
# segments of every size. Any Lua error is reported by tshark as an expert info.
tshark -X "lua_script:$here/tandem.lua" -r "$work/mutants.pcap" -o udp.try_heuristic_first:TRUE \
    -o tcp.try_heuristic_first:TRUE -q -z expert,error >"$work/mutants.txt" 2>"$work/mutants.err" ||
    fail "tshark failed on the mutants: $(cat "$work/mutants.err")"
if grep -q "Lua" "$work/mutants.err" "$work/mutants.txt"; then
    fail "the dissector failed on hostile input: $(grep -h "Lua" "$work/mutants.err" "$work/mutants.txt" | head -20)"
fi
grep -q "TANDEM" "$work/mutants.txt" || fail "tshark did not decode the mutants as tandem (no tandem expert info at all)"
echo "== tshark (mutants): $(grep -c "TANDEM" "$work/mutants.txt") kinds of malformed frames reported, no Lua error"
# 8. The committed sample capture still decodes without any error.
tshark -X "lua_script:$here/tandem.lua" -r "$here/sample.pcapng" -q -z expert,error >"$work/sample.txt" 2>"$work/sample.err" ||
    fail "tshark failed on sample.pcapng: $(cat "$work/sample.err")"
if grep -q "Lua" "$work/sample.err" || grep -q "Malformed\|Undecoded" "$work/sample.txt"; then
    fail "sample.pcapng decodes with errors: $(cat "$work/sample.txt" "$work/sample.err")"
fi
frames="$(tshark -X "lua_script:$here/tandem.lua" -r "$here/sample.pcapng" -T fields -e tandem.type 2>/dev/null | tr ',' '\n' | grep -c .)" || true
[ "$frames" -gt 0 ] || fail "sample.pcapng holds no tandem frame"
echo "== tshark (sample.pcapng): $frames frames, no error"
echo "wireshark test: ok"
