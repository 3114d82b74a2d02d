#!/usr/bin/env bash
# Create target/pyenv, a virtualenv with the pinned Python reference
# (prometheus_client, gunicorn, flask) used by the interop tests.
#
# Idempotent: when target/pyenv/.requirements-stamp holds the hash of
# scripts/requirements-test.txt (and the venv's python runs), nothing is done.
# Works from any cwd. Exits non-zero on any failure. Prints the venv's python
# path as the last line of output.
#
# Env: PYTHON3 - interpreter used to create the venv (default: python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/target/pyenv"
req="$repo/scripts/requirements-test.txt"
stamp="$venv/.requirements-stamp"
python="$venv/bin/python"
base_python="${PYTHON3:-python3}"

die() { echo "setup-python.sh: error: $*" >&2; exit 1; }

[ -f "$req" ] || die "missing $req"
want="$(sha256sum "$req" | cut -d' ' -f1)"

mkdir -p "$repo/target"
# Serialise concurrent runs (e.g. two test processes) on the same venv.
exec 9>"$repo/target/pyenv.lock"
flock 9

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$python" -c 'import prometheus_client' >/dev/null 2>&1; then
    echo "setup-python.sh: $venv is up to date" >&2
    echo "$python"
    exit 0
fi

command -v "$base_python" >/dev/null 2>&1 || die "'$base_python' not found"

# A venv that exists but whose python does not run (e.g. its base interpreter
# moved) is rebuilt from scratch.
if [ -e "$venv" ] && ! "$python" -c 'import sys' >/dev/null 2>&1; then
    echo "setup-python.sh: removing broken venv $venv" >&2
    rm -rf "$venv"
fi
rm -f "$stamp"

if [ ! -x "$python" ]; then
    echo "setup-python.sh: creating venv $venv with $("$base_python" --version 2>&1)" >&2
    "$base_python" -m venv "$venv" || die "python3 -m venv failed"
fi

echo "setup-python.sh: installing $req" >&2
"$python" -m pip install --disable-pip-version-check --no-input --quiet -r "$req" \
    || die "pip install failed"
"$python" -m pip check --disable-pip-version-check >&2 || die "pip check failed"
"$python" - <<'PY' || die "installed packages do not import"
import flask, gunicorn, prometheus_client.multiprocess
from importlib.metadata import version
assert version("prometheus_client") == "0.26.0", version("prometheus_client")
PY

echo "$want" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo "$python"
