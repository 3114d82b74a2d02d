#!/usr/bin/env python3
"""Helper for scripts/bench-python-package.sh: one Python process, one
directory, three ways to produce its /metrics body, timed in turn.

  bench_python_package.py DIR [--reps 9]
  bench_python_package.py --inc [--reps 9]

* python:  prometheus_client's MultiProcessCollector in a registry, then
           prometheus_client's generate_latest;
* dropin:  prometheus_multiproc.MultiProcessCollector in a registry, then
           prometheus_client's generate_latest (Metric objects from Rust);
* bytes:   prometheus_multiproc.generate_latest(DIR) (text from Rust).

Runs alternate (python, dropin, bytes, python, ...), after one warm-up run
each. Prints, per way, the median and range in ms and the speed-up over
python; and whether each body is byte-identical to python's (exit 1 if not).

With --inc: `Counter.inc()` through prometheus_client's MultiProcessValue
and through prometheus_multiproc's value class (install()), two counters in
one process and a temporary directory, timeit-ed in alternation (REPS rounds
of 200,000 calls each); ns per call, medians and ranges.
"""

import argparse
import statistics
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

import prometheus_multiproc


def through_registry(collector_class, path):
    registry = CollectorRegistry()
    collector_class(registry, path=path)
    return generate_latest(registry)


def bench_inc(reps):
    import os
    import tempfile
    import timeit
    tmp = tempfile.mkdtemp()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
    from prometheus_client import Counter, values
    values.ValueClass = values.MultiProcessValue()
    theirs = Counter("theirs", "prometheus_client's MultiProcessValue.", registry=None)
    prometheus_multiproc.install()
    ours = Counter("ours", "prometheus_multiproc's value class.", registry=None)
    n = 200_000
    times = {"MultiProcessValue": [], "prometheus_multiproc": []}
    for _ in range(reps):
        times["MultiProcessValue"].append(timeit.timeit(theirs.inc, number=n) / n * 1e9)
        times["prometheus_multiproc"].append(timeit.timeit(ours.inc, number=n) / n * 1e9)
    base = statistics.median(times["MultiProcessValue"])
    print(f"Counter.inc(), {reps} rounds of {n} calls")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"{name:21s} median {median:7.0f} ns  (range {min(ts):.0f}-{max(ts):.0f})"
              f"  {base / median:5.1f}x")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--inc", action="store_true")
    args = parser.parse_args()
    if args.inc:
        return bench_inc(args.reps)
    ways = {
        "python": lambda: through_registry(MultiProcessCollector, args.dir),
        "dropin": lambda: through_registry(prometheus_multiproc.MultiProcessCollector, args.dir),
        "bytes": lambda: prometheus_multiproc.generate_latest(args.dir)[0],
    }
    bodies = {name: way() for name, way in ways.items()}
    times = {name: [] for name in ways}
    for _ in range(args.reps):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            times[name].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times["python"])
    lines = bodies["python"].count(b"\n")
    print(f"{len(bodies['python'])} bytes, {lines} lines, {args.reps} runs each")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"{name:7s} median {median:9.1f} ms  (range {min(ts):.1f}-{max(ts):.1f})"
              f"  {base / median:6.1f}x")
    same = {name: b == bodies["python"] for name, b in bodies.items()}
    print("byte-identical to python:", same)
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
