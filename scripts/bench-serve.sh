#!/usr/bin/env bash
# Steady-state `prometheus-multiproc serve` scrape against prometheus_client
# 0.26's in-process MultiProcessCollector + generate_latest, on one directory
# written by prometheus_client's own multiprocess writer, in one run.
#
#   scripts/bench-serve.sh [--reps N] [--rounds R] [--py-per-round P]
#                          [--warmup W] [--accept HEADER] [--clients LIST]
#                          [--workers N] [--scale S] [--dir DIR] [--keep]
#
# 1. target/pyenv (scripts/setup-python.sh) and a release build of the
#    command (cargo build --release --bin prometheus-multiproc).
# 2. DIR (default: a fresh temporary directory) filled by N (default 64)
#    forked Python workers, ~6,000 entries each at scale 1, exactly as
#    scripts/bench-vs-python.sh does (bench_python.py generate); then sync.
# 3. `serve --dir DIR --web.listen-address 127.0.0.1:0
#    --web.disable-exporter-metrics` (the default, incremental server) and,
#    when `serve --help` lists --no-collector.incremental, a second one with
#    that flag (every scrape a cold full re-read); each ready on /-/ready.
# 4. scripts/bench_serve.py run: keep-alive clients (LIST, default
#    http.client,curl: Python's http.client on one connection per server
#    for the whole run, and curl, one process and connection per server and
#    round), no gzip, Accept: HEADER (default text/plain;version=0.0.4);
#    W warm-up scrapes (the first one timed and reported: the incremental
#    server's cold build); then R rounds (default 5) of N/R scrapes of each
#    server by each client (N default 50), each round followed by P
#    (default 2) scrapes of prometheus_client in the same long-lived
#    interpreter (import excluded); and, in the same rounds, the clients
#    against a null server sending the same body (their own cost).
# 5. The bodies of every server and prometheus_client's must be
#    byte-identical (cmp): exits non-zero otherwise.
#
# Timings are wall-clock: compare only numbers from the same run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workers=64
scale=1.0
reps=50
rounds=5
py_per_round=2
warmup=3
accept="text/plain;version=0.0.4"
clients="http.client,curl"
dir=""
keep=0
argv=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --py-per-round) py_per_round="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --accept) accept="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --scale) scale="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "bench-serve.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

python="$("$repo/scripts/setup-python.sh" | tail -1)"

cd "$repo"
echo "== building (release)" >&2
cargo build --release --quiet --bin prometheus-multiproc
bin="$repo/target/release/prometheus-multiproc"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-serve.XXXXXX")"
pids=()
child=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local pid
    # The driver first: on TERM it stops its null server and its curl.
    if [ -n "$child" ]; then
        kill "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
    if [ "$keep" = 0 ] && [ -n "${gen_dir:-}" ]; then
        rm -rf "$gen_dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run CMD...: runs CMD in the background and waits for it, so that TERM or
# INT stops the script at once (bash runs a trap only after the foreground
# command ends, but interrupts `wait`); a failure of CMD fails the script.
run() {
    "$@" &
    child=$!
    wait "$child"
    child=""
}

if [ -z "$dir" ]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/bench-serve-dir.XXXXXX")"
    gen_dir="$dir"
fi
echo "== generating $dir: $workers Python workers, scale $scale" >&2
run "$python" "$repo/scripts/bench_python.py" generate "$dir" --workers "$workers" --scale "$scale"
# The workers leave ~60 MiB of dirty pages; write them back now, so that
# the kernel's writeback does not compete with the timed scrapes.
sync

# start_server NAME [FLAGS...]: starts `serve` on a free loopback port,
# waits until /-/ready answers 200, and sets $url to its /metrics.
start_server() {
    local name="$1" log="$work/$1.log" port="" i
    shift
    "$bin" serve --dir "$dir" --web.listen-address 127.0.0.1:0 \
        --web.disable-exporter-metrics "$@" 2>"$log" &
    pids+=("$!")
    for i in $(seq 300); do
        port="$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)/metrics$|\1|p' "$log")"
        [ -n "$port" ] && break
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "bench-serve.sh: serve ($name) did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    for i in $(seq 300); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null; then
            url="http://127.0.0.1:$port/metrics"
            echo "== serve ($name, pid ${pids[-1]}) ready on 127.0.0.1:$port after ${i} probes" >&2
            return
        fi
        sleep 0.1
    done
    echo "bench-serve.sh: serve ($name) not ready after 30 s:" >&2
    cat "$log" >&2
    exit 1
}

servers=()
start_server incremental
servers+=(--server "serve=$url" --label "serve=serve --web.disable-exporter-metrics (default collector)")
if "$bin" serve --help | grep -q -- '--no-collector.incremental'; then
    start_server cold --no-collector.incremental
    servers+=(--server "cold=$url" --label "cold=serve --web.disable-exporter-metrics --no-collector.incremental")
    cold=1
else
    echo "== serve --help lists no --no-collector.incremental: no cold column (every scrape of this build's serve is a full re-read)"
    cold=0
fi

# The commit, and the last one that changed the command's code.
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
code="$(git -C "$repo" log -1 --format=%h -- src bin Cargo.toml Cargo.lock 2>/dev/null || echo unknown)"
commit="$commit (src/ and bin/ as of $code"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no -- src bin Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit="$commit, with uncommitted changes"
fi
commit="$commit)"
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), $(rustc --version), $("$python" -c 'import sys; from importlib.metadata import version; print("Python", sys.version.split()[0], "prometheus_client", version("prometheus_client"))'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== commit: $commit"
cmdline=""
if [ "${#argv[@]}" -gt 0 ]; then
    printf -v cmdline ' %q' "${argv[@]}"
fi
echo "== command: scripts/bench-serve.sh$cmdline"

run "$python" "$repo/scripts/bench_serve.py" run "$dir" "${servers[@]}" \
    --bodies "$work/bodies" --reps "$reps" --rounds "$rounds" \
    --py-per-round "$py_per_round" --warmup "$warmup" --accept "$accept" \
    --clients "$clients"

echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
check() {
    if cmp -s "$work/bodies/$1.body" "$work/bodies/$2.body"; then
        echo "bodies: $1 and $2 byte-identical (cmp)"
    else
        echo "bodies: $1 and $2 DIFFER:"
        cmp "$work/bodies/$1.body" "$work/bodies/$2.body" || true
        diff "$work/bodies/$1.body" "$work/bodies/$2.body" | head -10 || true
        status=1
    fi
}
check "serve" python
if [ "$cold" = 1 ]; then
    check cold python
fi
echo "content types: serve: $(cat "$work/bodies/serve.ctype"); prometheus_client: $(cat "$work/bodies/python.ctype")"
exit "$status"
