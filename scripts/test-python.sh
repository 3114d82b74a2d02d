#!/usr/bin/env bash
# The Python package's tests (called by scripts/test.sh): builds the wheel
# (scripts/build-python.sh), installs it into target/pyenv, then runs
#
# 1. prometheus_client 0.26.0's own tests/test_multiprocess.py, unmodified,
#    fetched from PyPI (the sdist, cached in target/python-upstream/; never
#    vendored), twice: with our collector in place of prometheus_client's
#    (python/tests/upstream_collector.py), and with our value class in place
#    of its writer (python/tests/upstream_values.py);
# 2. our tests in python/tests/.
#
# Any pytest exit code other than 0 fails, including 5 (no tests ran).
# Extra arguments go to scripts/build-python.sh (e.g. --debug).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$repo/scripts/setup-python.sh" | tail -1)"
wheel="$("$repo/scripts/build-python.sh" "$@" | tail -1)"
"$python" -m pip install --disable-pip-version-check --quiet --no-deps --force-reinstall "$wheel"

# The Rust writer's side of the mixed-directory tests.
(cd "$repo" && cargo build --quiet --locked --example rust_workers)
export RUST_WORKERS_BIN="$repo/target/debug/examples/rust_workers"

upstream="$repo/target/python-upstream"
sdist="$upstream/prometheus_client-0.26.0.tar.gz"
if [ ! -f "$sdist" ]; then
    mkdir -p "$upstream"
    "$python" -m pip download --disable-pip-version-check --quiet \
        --no-binary :all: --no-deps prometheus_client==0.26.0 -d "$upstream"
fi
tests="$(mktemp -d "${TMPDIR:-/tmp}/pm-upstream.XXXXXX")"
trap 'rm -rf "$tests"' EXIT
tar -xzf "$sdist" -C "$tests" --strip-components=2 prometheus_client-0.26.0/tests/test_multiprocess.py

echo "== prometheus_client 0.26.0 tests/test_multiprocess.py with prometheus_multiproc's collector"
# From $tests, so that the sdist's own prometheus_client cannot shadow the
# installed one; -c /dev/null: no configuration file from anywhere.
(cd "$tests" && PYTHONPATH="$repo/python/tests" "$python" -m pytest -c /dev/null \
    --rootdir "$tests" -p upstream_collector -q test_multiprocess.py)

echo "== prometheus_client 0.26.0 tests/test_multiprocess.py with prometheus_multiproc's value class"
(cd "$tests" && PYTHONPATH="$repo/python/tests" "$python" -m pytest -c /dev/null \
    --rootdir "$tests" -p upstream_values -q test_multiprocess.py)

echo "== python/tests"
(cd "$repo" && "$python" -m pytest -c /dev/null --rootdir "$repo/python/tests" -q python/tests)
