#!/usr/bin/env bash
# Instructions per hot-path call (callgrind), for this tree and optionally a
# base revision side by side:
#
#   scripts/hot-path-counts.sh [BASE_REV]
#
# Builds a small program (generated under target/hot-path-counts/) against
# the library of this tree (and of BASE_REV, checked out with `git worktree`
# under target/hot-path-counts/base), then runs each operation N = 200,000
# and 400,000 times on an existing series under valgrind's callgrind: the
# difference divided by 200,000 is one call plus the loop (a string match
# per iteration, the same in every build). Counts, not seconds: repeatable
# on a busy machine. Needs valgrind.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$repo/target/hot-path-counts"
mkdir -p "$work"

program() {
    cat <<'EOF'
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{Counter, CounterVec, Gauge, GaugeMode, Histogram, MetricsDir};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (op, n) = (args[1].as_str(), args[2].parse::<u64>().unwrap());
    let tmp = std::env::temp_dir().join(format!("hot-path-counts-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = MetricsDir::open(&tmp).unwrap();
    let c = Counter::new_in(&dir, "c_total", "C.").unwrap();
    let g = Gauge::new_in(&dir, "g", "G.", GaugeMode::LiveSum).unwrap();
    let h = Histogram::with_opts_in(&dir, HistogramOpts::new("h", "H.")).unwrap();
    let v = CounterVec::new_in(&dir, Opts::new("v_total", "V."), &["method", "status"]).unwrap();
    let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"];
    let statuses = ["200", "201", "404", "500", "503", "302", "301", "400"];
    for m in methods { for s in statuses { v.with_label_values(&[m, s]).inc(); } }
    c.inc(); g.set(1.0); h.observe(0.1);
    let mut x = 0.0f64;
    for i in 0..n {
        match op {
            "inc" => c.inc(),
            "set" => g.set(i as f64),
            "observe" => { x += 0.013; if x > 3.0 { x = 0.0 } h.observe(x) }
            "with_label_values" => v.with_label_values(&[methods[(i % 6) as usize], statuses[(i % 8) as usize]]).inc(),
            _ => panic!("unknown operation {op}"),
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
EOF
}

# build NAME LIBRARY_DIR: prints the binary's path.
build() {
    local d="$work/$1"
    mkdir -p "$d/src"
    program > "$d/src/main.rs"
    cat > "$d/Cargo.toml" <<EOF
[package]
name = "hot-path-counts-$1"
version = "0.0.0"
edition = "2024"
[dependencies]
prometheus-multiproc = { path = "$2", default-features = false }
prometheus = { version = "0.14.0", default-features = false }
[profile.release]
debug = 1
[workspace]
EOF
    (cd "$d" && cargo build --release --quiet)
    echo "$d/target/release/hot-path-counts-$1"
}

count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 \
        | awk '/refs:/ { gsub(",", "", $4); print $4 }'
}

bins=("this:$(build this "$repo")")
if [ $# -ge 1 ]; then
    base="$work/base-tree"
    [ -d "$base" ] || git -C "$repo" worktree add --quiet --detach "$base" "$1"
    git -C "$base" checkout --quiet --detach "$1"
    bins=("base $1:$(build base "$base")" "${bins[@]}")
fi
printf '%-20s' operation; for b in "${bins[@]}"; do printf '%14s' "${b%%:*}"; done; echo
for op in inc set observe with_label_values; do
    printf '%-20s' "$op"
    for b in "${bins[@]}"; do
        bin="${b#*:}"
        a=$(count "$bin" "$op" 200000)
        z=$(count "$bin" "$op" 400000)
        printf '%14s' "$(( (z - a) / 200000 ))"
    done
    echo
done
