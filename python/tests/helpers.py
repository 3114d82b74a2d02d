"""Shared helpers for the Python package's tests: directories written by the
real prometheus_client (scripts/bench_python.py generate) and by the Rust
writer (benches/tools/rust_workers), and the comparisons between collectors."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector as PythonCollector

import prometheus_multiproc

REPO = Path(__file__).resolve().parents[2]

# Accept headers covering each of prometheus_client 0.26's choices.
ACCEPT_HEADERS = [
    None,
    "",
    "text/plain",
    "*/*",
    "application/openmetrics-text",
    "application/openmetrics-text; version=0.0.1",
    "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;q=0.9",
    # Served by prometheus_client's encoder over our collector (see
    # _native_accept): versions >= 1.0.0 with an escaping parameter.
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=1.0.0; escaping=values",
    "text/plain; version=1.0.0; escaping=underscores",
]


def generate_python(directory, workers=3, scale=0.02):
    """Fills `directory` with the files of `workers` forked prometheus_client
    workers (counters, histograms, a summary, gauges in all ten modes)."""
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_python.py"), "generate",
         str(directory), "--workers", str(workers), "--scale", str(scale)],
        check=True, stdout=subprocess.DEVNULL)


def generate_rust(directory, workers=2):
    """Fills `directory` through the library's writer in forked Rust workers
    (the example rust_workers, benches/tools/rust_workers.rs; its path in
    RUST_WORKERS_BIN, which scripts/test-python.sh builds and sets)."""
    binary = os.environ.get("RUST_WORKERS_BIN")
    if not binary:
        raise RuntimeError("RUST_WORKERS_BIN is not set (run scripts/test-python.sh)")
    subprocess.run([binary, str(directory), str(workers)], check=True,
                   stdout=subprocess.DEVNULL)


def merge_into(target, source, pid_offset):
    """Copies source's metrics files into target, adding pid_offset to each
    file's pid so that names cannot collide."""
    for f in sorted(Path(source).iterdir()):
        stem, pid = f.stem.rsplit("_", 1)
        shutil.copyfile(f, Path(target) / f"{stem}_{int(pid) + pid_offset}.db")


def python_registry(path):
    registry = CollectorRegistry()
    PythonCollector(registry, path=str(path))
    return registry


def dropin_registry(path, **registry_options):
    registry = CollectorRegistry(**registry_options)
    prometheus_multiproc.MultiProcessCollector(registry, path=str(path))
    return registry


def expose(registry, accept_header=None):
    """(body, content_type) as prometheus_client serves `registry`."""
    encoder, content_type = choose_encoder(accept_header)
    return encoder(registry), content_type


def sorted_samples(metric):
    return sorted((s.name, sorted(s.labels.items()), s.value, s.timestamp, s.exemplar)
                  for s in metric.samples)


def by_name(metrics):
    return {m.name: m for m in metrics}
