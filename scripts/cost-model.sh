#!/usr/bin/env bash
# The collector's cost model (docs/performance.md, "Cost model"): builds the
# release tool benches/tools/cost_model, measures cold and warm scrapes of
# generated directories along three axes (files, entries, series) and a
# check point of 1,000 files x 10,000 entries, and prints the machine, the
# table, the fitted coefficients and the projection to 1,000 workers x 100k
# series. One merging thread unless PROMETHEUS_MULTIPROC_COLLECT_THREADS is
# set. Arguments go to the tool:
#   scripts/cost-model.sh                 # 5 reps per point (about 2 minutes)
#   scripts/cost-model.sh --large         # and 1M series (needed for the 1M-series
#                                         # projections), 1,000 x 10,000 in
#                                         # 100k series, 64 x 100,000 (about
#                                         # 6 more minutes)
#   scripts/cost-model.sh --point 4000,25000,4000   # and a point of your own
#                                         # (files,entries per file,files per key set)
# Needs about 2 GiB free under ${TMPDIR:-/tmp} (each directory is written,
# measured and removed before the next).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo build --release --example cost_model
export PROMETHEUS_MULTIPROC_COLLECT_THREADS="${PROMETHEUS_MULTIPROC_COLLECT_THREADS:-1}"
exec target/release/examples/cost_model "$@"
