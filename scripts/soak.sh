#!/usr/bin/env bash
# The long churn soak: SIGKILLs and replaces forked workers at random while
# scraping in a loop (see `churn_soak` in tests/integration/reliability.rs).
#
#   scripts/soak.sh [SECONDS]      (default 60)
#
# Runs the ignored test `reliability::churn_soak_long` in release mode and
# prints its figures on a line starting with "SOAK": scrapes, workers,
# SIGKILLs (mid-way and after a finished batch), increments completed and
# counted, files. Any lost increment, failed scrape, counter going back or
# disagreement with prometheus_client fails the run. SOAK_SEED=N repeats a
# run's random choices.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
secs="${1:-60}"
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/soak.sh [SECONDS]" >&2; exit 2 ;; esac

export PYTHON="${PYTHON:-$repo/target/pyenv/bin/python}"
[ -x "$PYTHON" ] || scripts/setup-python.sh >/dev/null

SOAK_SECONDS="$secs" cargo test --release --no-default-features --test integration \
    reliability::churn_soak_long -- --exact --ignored --nocapture 2>&1 \
    | tee target/soak.log | grep -E '^SOAK|^churn soak seed|panicked|test result'
