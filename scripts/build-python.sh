#!/usr/bin/env bash
# Builds the Python package (python/) into a wheel in target/wheels/, with the
# pinned maturin of target/pyenv (scripts/setup-python.sh), the
# `prometheus-multiproc` command included, and prints the wheel's path as the
# last line of output.
#
#   scripts/build-python.sh [--debug]
#
# Release by default (the wheel one ships); --debug builds faster, for tests
# during development. Works from any cwd.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$repo/scripts/setup-python.sh" | tail -1)"
profile=(--release --strip)
cargo_profile=(--release)
bin_dir=release
case "${1:-}" in
    --debug) profile=(); cargo_profile=(); bin_dir=debug ;;
    "") ;;
    *) echo "build-python.sh: unknown argument $1" >&2; exit 2 ;;
esac

# The command goes into the wheel as package data
# (prometheus_multiproc/bin/, gitignored), run by `python -m
# prometheus_multiproc` and the `prometheus-multiproc` console script.
(cd "$repo" && cargo build --quiet --locked "${cargo_profile[@]}" --workspace --bin prometheus-multiproc)
mkdir -p "$repo/python/prometheus_multiproc/bin"
install -m 755 "$repo/target/$bin_dir/prometheus-multiproc" "$repo/python/prometheus_multiproc/bin/"

out="$repo/target/wheels"
mkdir -p "$out"
rm -f "$out"/prometheus_multiproc-*.whl
"$python" -m maturin build --locked --quiet "${profile[@]}" \
    --manifest-path "$repo/python/Cargo.toml" --interpreter "$python" --out "$out" >&2
wheel="$(ls "$out"/prometheus_multiproc-*.whl)"
[ "$(echo "$wheel" | wc -l)" = 1 ] || { echo "build-python.sh: expected one wheel in $out" >&2; exit 1; }
echo "$wheel"
