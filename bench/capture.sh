#!/usr/bin/env bash
# What the wire capture adds to a case, with the capture on and with SOCKCONF_CAPTURE=off,
# interleaved, one runner at a time:
#  1. per case, the wall time of its runner process (`sockconf run-case ID`), start to exit.
#     This includes closing the AF_PACKET socket, which waits out an RCU grace period in the
#     kernel after the report is handed over: an upper bound;
#  2. the whole selection through `sockconf run -j1`, which takes the next case as soon as a
#     runner has reported: what a user waits for, per case.
# Prints medians of ROUNDS rounds.
# Usage: bench/capture.sh [ROUNDS] [ID or family...]   (default 15 rounds, every case)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
shift || true
bin=target/debug/sockconf
cargo build --quiet
ids=$("$bin" list | { if [ $# -gt 0 ]; then grep -E "^($(IFS='|'; echo "$*"))(\.|$)"; else cat; fi; })

# Microseconds of wall time for one runner.
time_us() {
    local start=$EPOCHREALTIME
    "$@" >/dev/null || true  # a failed case is still a measurement
    local end=$EPOCHREALTIME
    echo $(( (${end/./} - ${start/./}) ))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-44s %10s %10s %10s\n' case "on (ms)" "off (ms)" "added (ms)"
all_diffs=()
for id in $ids; do
    on=() off=() diffs=()
    for _ in $(seq "$rounds"); do
        a=$(time_us "$bin" run-case "$id")
        b=$(time_us env SOCKCONF_CAPTURE=off "$bin" run-case "$id")
        on+=("$a") off+=("$b") diffs+=($((a - b)))
    done
    m_on=$(printf '%s\n' "${on[@]}" | median)
    m_off=$(printf '%s\n' "${off[@]}" | median)
    m_diff=$(printf '%s\n' "${diffs[@]}" | median)
    all_diffs+=("$m_diff")
    awk -v id="$id" -v a="$m_on" -v b="$m_off" -v d="$m_diff" \
        'BEGIN { printf "%-44s %10.2f %10.2f %10.2f\n", id, a / 1000, b / 1000, d / 1000 }'
done
m=$(printf '%s\n' "${all_diffs[@]}" | median)
awk -v m="$m" -v r="$rounds" 'BEGIN { printf "runner start to exit: median over cases of the median added time: %.2f ms (%d rounds)\n", m / 1000, r }'

n=$(echo "$ids" | wc -w)
suite_on=() suite_off=()
for _ in $(seq "$rounds"); do
    suite_on+=("$(time_us "$bin" run -j1 $ids)")
    suite_off+=("$(time_us env SOCKCONF_CAPTURE=off "$bin" run -j1 $ids)")
done
s_on=$(printf '%s\n' "${suite_on[@]}" | median)
s_off=$(printf '%s\n' "${suite_off[@]}" | median)
awk -v a="$s_on" -v b="$s_off" -v n="$n" -v r="$rounds" 'BEGIN {
    printf "sockconf run -j1, %d cases: %.1f ms with the capture, %.1f ms without: %.2f ms added per case (medians of %d rounds)\n", n, a / 1000, b / 1000, (a - b) / n / 1000, r }'
