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

# Accept headers (None: no header): Prometheus 2's and 3's defaults, every
# format, version and escaping prometheus_client 0.26 tells apart, and
# malformed values (a selection of tests/integration/accept_headers.rs).
ACCEPT_HEADERS = [
    None,
    "",
    "*/*",
    # Prometheus 2.42, then 2.49 to 2.55.
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    # Prometheus 3.0, then later 3.x with each metric_name_escaping_scheme.
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2",
    *(f"application/openmetrics-text;version=1.0.0;escaping={e};q=0.6,"
      f"application/openmetrics-text;version=0.0.1;q=0.5,"
      f"text/plain;version=1.0.0;escaping={e};q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
      for e in ("allow-utf-8", "underscores", "dots", "values")),
    # Protobuf first (prometheus_client has no protobuf).
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    "encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;"
    "escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5",
    # Each format, version and escaping.
    "text/plain",
    "text/plain;version=0.0.4",
    "text/plain; version=0.0.4; charset=utf-8",
    *(f"text/plain;version=1.0.0;escaping={e}"
      for e in ("allow-utf-8", "underscores", "dots", "values", "bogus")),
    "text/plain;version=1.0.0",
    "application/openmetrics-text",
    "application/openmetrics-text; version=0.0.1",
    "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8",
    "application/openmetrics-text;version=1.0.0",
    *(f"application/openmetrics-text;version=1.0.0;escaping={e}"
      for e in ("allow-utf-8", "underscores", "dots", "values")),
    "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
    "application/openmetrics-text;version=2.0.0;escaping=allow-utf-8",
    "application/openmetrics-text;escaping=allow-utf-8",
    "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;q=0.9",
    "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;escaping=dots",
    # Versions as Python compares them, and case and whitespace.
    "application/openmetrics-text;version=1.0",
    "application/openmetrics-text;version=2",
    "application/openmetrics-text;version=1.0.0.1;escaping=dots",
    "application/openmetrics-text;version= 1.0.0;escaping=values",
    "Application/OpenMetrics-Text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=Allow-UTF-8",
    " application/openmetrics-text ; version=1.0.0 ; escaping=allow-utf-8 ",
    "text/plain;version=1.0.0;escaping=dots;escaping=values",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    # Versions Python cannot compare: choose_encoder raises TypeError.
    "application/openmetrics-text;version=1.x",
    "text/plain;version=1.0.0-rc1",
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


def generate_utf8(directory):
    """Fills `directory` with prometheus_client workers' counters whose
    metric and label names need escaping (dots, a leading digit, a colon,
    non-ASCII: tests/python/py_write_utf8.py)."""
    subprocess.run(
        [sys.executable, str(REPO / "tests" / "python" / "py_write_utf8.py"),
         str(directory), "counters", "2"], check=True)


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


def answer(scrape):
    """scrape()'s result, or the type of the exception it raised."""
    try:
        return scrape()
    except Exception as e:  # noqa: BLE001 - the type is the answer
        return type(e)


def sorted_samples(metric):
    return sorted((s.name, sorted(s.labels.items()), s.value, s.timestamp, s.exemplar)
                  for s in metric.samples)


def by_name(metrics):
    return {m.name: m for m in metrics}
