#!/usr/bin/env bash
# The collector's cost model (docs/performance.md, "Cost model"): builds the
# release tool benches/tools/cost_model, measures scrapes of generated
# directories along three axes (files, entries, series) and the large check
# points, and prints the machine, the table, the fitted coefficients and the
# projection to 1,000 workers × 100k series. One merging thread unless
# PROMETHEUS_MULTIPROC_COLLECT_THREADS is set. Arguments go to the tool:
#   scripts/cost-model.sh                 # all points, 5 reps (a few minutes)
#   scripts/cost-model.sh --no-large      # without the 1,000 × 10,000 points
#   scripts/cost-model.sh --point 4000,25000,4000   # and a point of your own
# Needs about 3 GiB free under ${TMPDIR:-/tmp} (the largest directory is
# written, measured and removed before the next).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo build --release --example cost_model
export PROMETHEUS_MULTIPROC_COLLECT_THREADS="${PROMETHEUS_MULTIPROC_COLLECT_THREADS:-1}"
exec target/release/examples/cost_model "$@"
