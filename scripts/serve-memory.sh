#!/usr/bin/env bash
# serve's memory with 24 clients that never read a ~50 MB response
# (issue 12.6): runs the full-scale test on a release build and prints the
# figures (body, idle, one scrape's peak, held, after, peak RSS).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scripts/setup-python.sh >/dev/null
export PYTHON="$repo/target/pyenv/bin/python"
cargo test --release -p prometheus-multiproc-cli --test cli \
    serve::serve_memory_with_24_stuck_clients_full_scale -- --ignored --nocapture 2>&1 |
    grep -E '^series|test result|panicked'
