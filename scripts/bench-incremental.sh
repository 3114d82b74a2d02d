#!/usr/bin/env bash
# The incremental collector's figures of docs/performance.md ("Incremental
# scrapes", and the serve CPU and memory figures of "Steady-state serve
# scrape"), on the 64-worker directory written by prometheus_client.
#
#   scripts/bench-incremental.sh [--dir DIR] [--rounds N] [--callgrind]
#
# 1. In process, N (default 3) alternating rounds of 20 scrapes each:
#    cold, incremental with nothing changed, incremental with every file
#    changed before each scrape (benches/tools/collect_bench.rs).
# 2. First scrapes, each in a fresh process, 9 alternating pairs: a cold
#    scrape against an incremental collector's first.
# 3. serve, 100 scrapes by curl against each of `serve` and
#    `serve --no-collector.incremental`: CPU time per scrape (from
#    /proc/PID/stat) and the server's anonymous and file-backed memory.
# 4. With --callgrind, instructions on one thread: one cold scrape, and
#    an incremental collector's first scrape (its run with one more scrape,
#    less the instructions of that unchanged scrape).
#
# DIR defaults to a fresh temporary directory filled by
# `scripts/bench_python.py generate` (64 workers, scale 1). Timings are
# wall-clock and CPU time: compare only numbers of one run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir=""
rounds=3
callgrind=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --callgrind) callgrind=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "bench-incremental.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

cd "$repo"
cargo build --release --quiet --no-default-features --example collect_bench
cargo build --release --quiet --bin prometheus-multiproc
bench="$repo/target/release/examples/collect_bench"
cmd="$repo/target/release/prometheus-multiproc"
if [ -z "$dir" ]; then
    python="$("$repo/scripts/setup-python.sh" | tail -1)"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/bench-incremental.XXXXXX")"
    trap 'rm -rf "$dir"' EXIT
    "$python" "$repo/scripts/bench_python.py" generate "$dir" --workers 64 --scale 1.0 >/dev/null
    sync
fi
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== directory $dir: $(find "$dir" -maxdepth 1 -name '*.db' | wc -l) files"

echo "== in process, 20 scrapes per line (median, min, max, CPU of all threads)"
for _ in $(seq "$rounds"); do
    echo "cold         $("$bench" "$dir" --repeat 20)"
    echo "incremental  $("$bench" "$dir" --repeat 20 --incremental)"
    echo "touched      $("$bench" "$dir" --repeat 20 --incremental --touch)"
done

echo "== first scrapes, fresh processes (ms): cold, incremental"
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
pairs="$(for _ in $(seq 9); do
    cold="$("$bench" "$dir" --repeat 1 | sed 's/.*median_ms=\([0-9.]*\).*/\1/')"
    first="$("$bench" "$dir" --repeat 1 --incremental | sed 's/first_ms=\([0-9.]*\).*/\1/')"
    echo "$cold $first"
done)"
echo "$pairs"
echo "medians: cold $(echo "$pairs" | cut -d' ' -f1 | median), incremental $(echo "$pairs" | cut -d' ' -f2 | median)"

port=19600
for mode in "" "--no-collector.incremental"; do
    port=$((port + 1))
    "$cmd" serve --dir "$dir" --web.listen-address "127.0.0.1:$port" \
        --web.disable-exporter-metrics $mode 2>/dev/null &
    pid=$!
    for _ in $(seq 50); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready" && break
        sleep 0.1
    done
    curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"
    ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    t0="$(ticks)"
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"; done
    t1="$(ticks)"
    hz="$(getconf CLK_TCK)"
    echo "== serve ${mode:-(incremental)}: $(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN {printf "%.1f", (b - a) * 1000 / hz / 100}') ms of CPU per scrape; $(grep -E 'RssAnon|RssFile' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd ';')"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done

if [ "$callgrind" = 1 ]; then
    count() {
        PROMETHEUS_MULTIPROC_COLLECT_THREADS=1 valgrind --tool=callgrind \
            --callgrind-out-file=/dev/null "$bench" "$dir" "$@" 2>&1 >/dev/null |
            sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    cold="$(count --repeat 1)"
    inc1="$(count --repeat 1 --incremental)"
    inc2="$(count --repeat 2 --incremental)"
    echo "== callgrind, one thread: cold scrape $cold; incremental first scrape $((inc1 - (inc2 - inc1))); unchanged scrape $((inc2 - inc1)) (each with one raw-read floor pass)"
fi
