#!/usr/bin/env bash
# Speed of the Python package (python/) inside one Python process, against
# prometheus_client 0.26 in the same process, on a directory written by
# prometheus_client's own writer (scripts/bench_python.py generate).
#
#   scripts/bench-python-package.sh [--workers N] [--scale S] [--reps R]
#
# Builds the release wheel (scripts/build-python.sh), installs it into
# target/pyenv, generates the directory (default: 64 workers, scale 1), and
# runs scripts/bench_python_package.py: the scrape, then Counter.inc()
# through both value classes. Timings are wall-clock: compare only
# numbers from the same run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workers=64
scale=1.0
reps=9
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) workers="$2"; shift 2 ;;
        --scale) scale="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bench-python-package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

python="$("$repo/scripts/setup-python.sh" | tail -1)"
wheel="$("$repo/scripts/build-python.sh" | tail -1)"
"$python" -m pip install --disable-pip-version-check --quiet --no-deps --force-reinstall "$wheel"

dir="$(mktemp -d "${TMPDIR:-/tmp}/bench-python-package.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
echo "== generating $dir: $workers Python workers, scale $scale" >&2
"$python" "$repo/scripts/bench_python.py" generate "$dir" --workers "$workers" --scale "$scale"
sync
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $("$python" --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$repo/scripts/bench_python_package.py" "$dir" --reps "$reps"
"$python" "$repo/scripts/bench_python_package.py" --inc --reps "$reps"
