#!/usr/bin/env bash
# Collector speed against prometheus_client 0.26, on a directory written by
# prometheus_client's own multiprocess writer.
#
#   scripts/bench-vs-python.sh [--workers N] [--scale S] [--reps R] [--dir DIR] [--keep]
#
# 1. target/pyenv (scripts/setup-python.sh) and a release build of the
#    `prometheus-multiproc` command (falls back to benches/tools/collect_bench if
#    the command does not build) and of benches/tools/collect_bench.
# 2. DIR (default: a fresh temporary directory) filled by N (default 64)
#    forked Python workers, each writing ~6,000 entries at scale 1 through
#    prometheus_client (counters, 15-bucket histograms, a summary, gauges in
#    all ten modes): scripts/bench_python.py generate.
# 3. Process to process, R runs each (default 9), alternating: Python
#    (interpreter start, import, MultiProcessCollector + generate_latest)
#    against `prometheus-multiproc collect --dir DIR`; medians, ratio, peak
#    RSS, and whether both outputs hold the same lines.
# 4. In process: 9 scrapes inside one Python interpreter against 9 inside
#    one collect_bench process; medians and ratio; plus the floor (list the
#    directory and read every file's used bytes, nothing else).
#
# Exits non-zero if the outputs differ. Timings are wall-clock: run it on a
# quiet machine, or compare only numbers from the same run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workers=64
scale=1.0
reps=9
dir=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) workers="$2"; shift 2 ;;
        --scale) scale="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "bench-vs-python.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

python="$("$repo/scripts/setup-python.sh" | tail -1)"

cd "$repo"
echo "== building (release)" >&2
cargo build --release --quiet --no-default-features --example collect_bench
inproc="$repo/target/release/examples/collect_bench"
if cargo build --release --quiet --bin prometheus-multiproc 2>/dev/null; then
    ours_label="prometheus-multiproc collect"
    ours_cmd() { echo "$repo/target/release/prometheus-multiproc collect --dir $1"; }
else
    echo "bench-vs-python.sh: the prometheus-multiproc command does not build; using benches/tools/collect_bench" >&2
    ours_label="benches/tools/collect_bench"
    ours_cmd() { echo "$inproc $1"; }
fi

if [ -z "$dir" ]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-python.XXXXXX")"
    [ "$keep" = 1 ] || trap 'rm -rf "$dir"' EXIT
fi
echo "== generating $dir: $workers Python workers, scale $scale" >&2
"$python" "$repo/scripts/bench_python.py" generate "$dir" --workers "$workers" --scale "$scale"
# The workers leave ~60 MiB of dirty pages; write them back now, so that
# the kernel's writeback does not compete with the timed runs.
sync

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), $(rustc --version), $("$python" -c 'import sys, prometheus_client as p; from importlib.metadata import version; print("Python", sys.version.split()[0], "prometheus_client", version("prometheus_client"))'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ours: $ours_label"
"$python" "$repo/scripts/bench_python.py" compare "$dir" \
    --ours "$(ours_cmd "$dir")" \
    --ours-inproc "$inproc $dir --repeat 9" \
    --reps "$reps" --inproc-reps 9
