#!/usr/bin/env bash
# Coverage-guided fuzzing of the reader side with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target for SECONDS (default 60) and prints executions, coverage
# and crashes per target. Targets (fuzz/fuzz_targets/):
#   entries               arbitrary bytes -> format::Entries, key::decode_key
#                         (no panic, no allocation in Entries, linear
#                         allocation in decode_key, encode/decode round trip)
#   collector_file        one arbitrary file of any kind in a directory ->
#                         MultiProcessCollector (no panic, scrape never fails)
#   collector_structured  several well-formed files with arbitrary keys and
#                         values -> MultiProcessCollector and both encoders
#
# Needs a nightly toolchain (`rustup toolchain list`) and cargo-fuzz (installed
# from crates.io if missing). The corpus (fuzz/corpus/TARGET) is kept between
# runs and seeded from files written by this crate and, when the Python
# reference is installed (scripts/setup-python.sh), by prometheus_client.
# Crashes land in fuzz/artifacts/TARGET/; logs in fuzz/artifacts/TARGET.log.
# Env: FUZZ_JOBS (default 1) parallel fuzzing processes per target.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(entries collector_file collector_structured)
jobs="${FUZZ_JOBS:-1}"

die() { echo "fuzz.sh: error: $*" >&2; exit 1; }

rustup toolchain list | grep -q '^nightly' \
    || die "no nightly toolchain (cargo-fuzz needs -Zsanitizer): rustup toolchain install nightly"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# --- Seeds -----------------------------------------------------------------
# Real files, cut to their `used` bytes (the rest is zero padding).
seed_dir="$(mktemp -d)"
trap 'rm -rf "$seed_dir"' EXIT
cargo run --quiet --no-default-features --example hexdump_file "$seed_dir" >/dev/null
python="${PYTHON:-$repo/target/pyenv/bin/python}"
if [ -x "$python" ]; then
    for scenario in all simple floats; do
        mkdir -p "$seed_dir/py-$scenario"
        "$python" tests/python/py_write.py "$seed_dir/py-$scenario" "$scenario" 2 \
            || echo "fuzz.sh: warning: py_write.py $scenario failed; fewer seeds" >&2
    done
else
    echo "fuzz.sh: no Python reference at $python: seeding from Rust files only" >&2
fi
# The selector byte collector_file uses for each kind (see the target).
selector() {
    case "$1" in
        counter_*) echo 0 ;; histogram_*) echo 1 ;; summary_*) echo 2 ;;
        info_*) echo 3 ;; stateset_*) echo 4 ;;
        gauge_all_*) echo 5 ;; gauge_liveall_*) echo 6 ;; gauge_min_*) echo 7 ;;
        gauge_livemin_*) echo 8 ;; gauge_max_*) echo 9 ;; gauge_livemax_*) echo 10 ;;
        gauge_sum_*) echo 11 ;; gauge_livesum_*) echo 12 ;; gauge_mostrecent_*) echo 13 ;;
        gauge_livemostrecent_*) echo 14 ;; *) echo 0 ;;
    esac
}
mkdir -p fuzz/corpus/entries fuzz/corpus/collector_file fuzz/corpus/collector_structured
n=0
while IFS= read -r f; do
    used="$(od -An -t d4 -N4 "$f" | tr -d ' ')"
    [ "$used" -ge 8 ] 2>/dev/null || continue
    name="$(basename "$(dirname "$f")")-$(basename "$f")"
    head -c "$used" "$f" >"fuzz/corpus/entries/seed-$name"
    { printf "\\$(printf '%03o' "$(selector "$(basename "$f")")")"; head -c "$used" "$f"; } \
        >"fuzz/corpus/collector_file/seed-$name"
    n=$((n + 1))
done < <(find "$seed_dir" -name '*.db' -type f)
echo "fuzz.sh: $n seed files" >&2

# --- Fuzz --------------------------------------------------------------------
mkdir -p fuzz/artifacts
# The collector targets make their directories under TMPDIR: removed on exit.
mkdir -p "$seed_dir/tmp"
export TMPDIR="$seed_dir/tmp"
summary=()
status=0
for t in "${targets[@]}"; do
    log="fuzz/artifacts/$t.log"
    echo "fuzz.sh: $t for ${secs}s (log: $log)" >&2
    set +e
    par=()
    [ "$jobs" -gt 1 ] && par=(-fork="$jobs" -ignore_crashes=1)
    (cd fuzz && cargo +nightly fuzz run --debug-assertions "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -dict=keys.dict -print_final_stats=1 "${par[@]}") >"$log" 2>&1
    rc=$?
    set -e
    # One process: libFuzzer's final stats; -fork mode: its last status line.
    execs="$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}' || true)"
    if [ "${execs:-0}" = 0 ]; then
        execs="$(grep -o '^#[0-9]*: cov' "$log" | tail -1 | tr -dc '0-9' || true)"
    fi
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)"
    crashes="$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)"
    summary+=("$t: rc=$rc execs=$execs cov=${cov:-?} corpus=$(ls "fuzz/corpus/$t" | wc -l) crash-files=$crashes")
    [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || status=1
done
printf '%s\n' "${summary[@]}"
exit "$status"
