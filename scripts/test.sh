#!/usr/bin/env bash
# The project's test command: install the Python reference and Prometheus,
# then run the whole Rust test suite and the Python package's tests
# (scripts/test-python.sh). Extra arguments go to `cargo test`,
# e.g. `scripts/test.sh -- --nocapture` or `scripts/test.sh --test interop`.
#
# Exports for the tests (which fail, rather than skip, when these are missing):
#   PYTHON          target/pyenv/bin/python (prometheus_client 0.26.0, gunicorn, flask)
#   PROMETHEUS_BIN  /usr/bin/prometheus
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/setup-python.sh >/dev/null
scripts/setup-prometheus.sh >/dev/null

export PYTHON="$repo/target/pyenv/bin/python"
export PROMETHEUS_BIN=/usr/bin/prometheus
[ -x "$PYTHON" ] || { echo "test.sh: $PYTHON missing" >&2; exit 1; }
[ -x "$PROMETHEUS_BIN" ] || { echo "test.sh: $PROMETHEUS_BIN missing" >&2; exit 1; }

cargo test --workspace --all-features --locked "$@"

# The Python package (python/): wheel, prometheus_client's own multiprocess
# tests with our collector, python/tests.
scripts/test-python.sh
