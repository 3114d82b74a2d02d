#!/usr/bin/env python3
"""Helper for scripts/bench-vs-python.sh: prometheus_client's side of the
collector benchmark.

Subcommands:

  generate DIR [--workers 64] [--scale 1.0]
      Fills DIR (emptied first) with the files of WORKERS forked Python
      workers, each writing its metrics through prometheus_client's own
      multiprocess writer (PROMETHEUS_MULTIPROC_DIR is set before
      prometheus_client is imported). The metrics are those of
      benches/dataset/mod.rs: counters, histograms (15 buckets), a summary and
      gauges in all ten multiprocess modes; 6,000 entries per worker at scale
      1. Each worker creates its series in its own shuffled order.

  expose DIR
      Writes MultiProcessCollector + generate_latest output to stdout (one
      scrape, as a separate process would do it).

  inproc DIR [--reps N]
      Times N scrapes (MultiProcessCollector collect + generate_latest)
      inside this one interpreter; prints one line of key=value timings.

  compare DIR --ours CMD [--ours-inproc CMD] [--reps N]
      Process-to-process: runs `python bench_python.py expose DIR` and CMD
      (which must write the text exposition of DIR to stdout) alternately,
      REPS times each, timing each run from spawn to exit and recording its
      peak RSS (wait4). In-process: runs `inproc` and --ours-inproc (a
      command printing `median_ms=...`, such as
      `collect_bench DIR --repeat N`). Prints medians, ratios, and whether
      the two outputs hold the same lines (compared sorted).
"""

import argparse
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
           2.5, 5.0, 7.5, 10.0, float("inf"))
METHODS = ("GET", "POST", "PUT", "DELETE")
STATUSES = ("200", "201", "304", "404", "500")
RESULTS = ("ok", "retry", "failed", "timeout", "skipped")


def handler(i):
    return f"/api/v1/resource_{i}"


def specs(scale):
    """(type, name, help, {label: value-fn}, label sets, gauge mode):
    the metrics of benches/dataset/mod.rs."""
    def n(base):
        return max(1, int(base * scale + 0.5))
    return [
        ("counter", "http_requests_total", "Total HTTP requests.",
         {"method": lambda i: METHODS[i % 4],
          "status": lambda i: STATUSES[(i // 4) % 5],
          "handler": lambda i: handler(i // 20)}, n(1200), None),
        ("counter", "jobs_processed_total", "Background jobs processed.",
         {"result": lambda i: RESULTS[i % 5],
          "queue": lambda i: f"queue_{i // 5}"}, n(200), None),
        ("counter", "bytes_sent_total", "Response bytes sent.",
         {"handler": handler}, n(100), None),
        ("counter", "errors_total", "Errors by kind.",
         {"kind": lambda i: f"error_kind_{i}"}, n(100), None),
        ("histogram", "http_request_duration_seconds", "HTTP request latency.",
         {"method": lambda i: METHODS[i % 4],
          "handler": lambda i: handler(i // 4)}, n(160), None),
        ("histogram", "db_query_duration_seconds", "Database query latency.",
         {"query": lambda i: f"select_table_{i}"}, n(40), None),
        ("summary", "payload_size_bytes", "Request payload sizes.",
         {"handler": handler}, n(100), None),
        ("gauge", "worker_memory_bytes", "Memory per worker.",
         {"kind": lambda i: f"mem_kind_{i}"}, n(100), "all"),
        ("gauge", "worker_connections", "Connections per worker.",
         {"state": lambda i: f"state_{i}"}, n(50), "liveall"),
        ("gauge", "inprogress_requests", "Requests in progress.",
         {"handler": handler}, n(200), "livesum"),
        ("gauge", "cache_items", "Items in caches.",
         {"cache": lambda i: f"cache_{i}"}, n(100), "sum"),
        ("gauge", "queue_depth_max", "Deepest queue seen.",
         {"queue": lambda i: f"queue_{i}"}, n(100), "max"),
        ("gauge", "free_slots_min", "Fewest free slots.",
         {"pool": lambda i: f"pool_{i}"}, n(100), "min"),
        ("gauge", "open_files_max", "Most open files.",
         {"kind": lambda i: f"fd_kind_{i}"}, n(50), "livemax"),
        ("gauge", "pool_idle_min", "Fewest idle connections.",
         {"pool": lambda i: f"pool_{i}"}, n(50), "livemin"),
        ("gauge", "config_version", "Config version loaded.",
         {"component": lambda i: f"component_{i}"}, n(200), "mostrecent"),
        ("gauge", "last_request_timestamp_seconds", "Time of the last request.",
         {"handler": handler}, n(50), "livemostrecent"),
    ]


def worker(index, scale):
    """Runs in a forked child: creates and updates every series through
    prometheus_client, in this worker's own order."""
    from prometheus_client import Counter, Gauge, Histogram, Summary

    rng = random.Random(index + 1)
    by_file = {}
    for typ, name, doc, labels, sets, mode in specs(scale):
        names = list(labels)
        if typ == "counter":
            m = Counter(name, doc, names)
        elif typ == "histogram":
            m = Histogram(name, doc, names, buckets=BUCKETS)
        elif typ == "summary":
            m = Summary(name, doc, names)
        else:
            m = Gauge(name, doc, names, multiprocess_mode=mode)
        key = typ if mode is None else f"gauge_{mode}"
        for i in range(sets):
            values = [labels[k](i) for k in names]
            by_file.setdefault(key, []).append((typ, m, values))
    for key in sorted(by_file):
        series = by_file[key]
        rng.shuffle(series)
        for typ, m, values in series:
            child = m.labels(*values)
            if typ == "counter":
                child.inc(rng.randrange(1000))
            elif typ == "histogram":
                for _ in range(rng.randrange(1, 4)):
                    child.observe(rng.random() * 12)
            elif typ == "summary":
                child.observe(rng.randrange(1_000_000) / 1000)
            else:
                child.set(rng.randrange(1_000_000) / 1000)


def cmd_generate(args):
    d = os.path.abspath(args.dir)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    # Before the import: prometheus_client picks its value class at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = d
    import prometheus_client  # noqa: F401  (imported once, before forking)

    running = set()
    for w in range(args.workers):
        while len(running) >= args.jobs:
            pid, status = os.wait()
            running.discard(pid)
            if status != 0:
                sys.exit(f"worker {pid} failed: status {status}")
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                worker(w, args.scale)
            except BaseException:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                code = 1
            os._exit(code)
        running.add(pid)
    while running:
        pid, status = os.wait()
        running.discard(pid)
        if status != 0:
            sys.exit(f"worker {pid} failed: status {status}")
    files = os.listdir(d)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
    print(f"generated {d}: {args.workers} workers, {len(files)} files, "
          f"{size / 2**20:.1f} MiB (apparent size)", file=sys.stderr)


def collect_once(d):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=d)
    return generate_latest(registry)


def cmd_expose(args):
    sys.stdout.buffer.write(collect_once(args.dir))


def cmd_inproc(args):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=args.dir)
    times = []
    out = b""
    for _ in range(args.reps):
        t = time.perf_counter()
        out = generate_latest(registry)
        times.append((time.perf_counter() - t) * 1e3)
    print(f"median_ms={statistics.median(times):.3f} min_ms={min(times):.3f} "
          f"max_ms={max(times):.3f} bytes={len(out)} reps={args.reps}")


def run_timed(argv, out_path):
    """Runs argv with stdout to out_path; returns (seconds, peak RSS KiB)."""
    with open(out_path, "wb") as out:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out)
        _, status, ru = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed with status {p.returncode}")
    return elapsed, ru.ru_maxrss


def parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split())


def cmd_compare(args):
    d = os.path.abspath(args.dir)
    py = [sys.executable, os.path.abspath(__file__), "expose", d]
    ours = shlex.split(args.ours)
    tmp = tempfile.mkdtemp(prefix="bench-vs-python.")
    py_out, our_out = os.path.join(tmp, "python.txt"), os.path.join(tmp, "ours.txt")
    try:
        # Warm the page cache and both programs once, untimed.
        run_timed(py, py_out)
        run_timed(ours, our_out)
        py_t, our_t, py_rss, our_rss = [], [], [], []
        for _ in range(args.reps):
            t, rss = run_timed(py, py_out)
            py_t.append(t * 1e3)
            py_rss.append(rss)
            t, rss = run_timed(ours, our_out)
            our_t.append(t * 1e3)
            our_rss.append(rss)
        with open(py_out, "rb") as f:
            py_lines = f.read().split(b"\n")
        with open(our_out, "rb") as f:
            our_lines = f.read().split(b"\n")
    finally:
        shutil.rmtree(tmp)

    py_med, our_med = statistics.median(py_t), statistics.median(our_t)
    print(f"directory: {d}: {len(os.listdir(d))} files")
    print(f"process to process ({args.reps} runs each, alternating; spawn to exit, "
          f"Python including interpreter start and import):")
    print(f"  prometheus_client  median {py_med:9.1f} ms  (min {min(py_t):.1f}, "
          f"max {max(py_t):.1f})  peak RSS {max(py_rss) / 1024:.1f} MiB")
    print(f"  prometheus-multiproc median {our_med:7.1f} ms  (min {min(our_t):.1f}, "
          f"max {max(our_t):.1f})  peak RSS {max(our_rss) / 1024:.1f} MiB")
    print(f"  ratio (python / ours): {py_med / our_med:.1f}x")

    same = sorted(py_lines) == sorted(our_lines)
    print(f"output: python {len(py_lines) - 1} lines, ours {len(our_lines) - 1} lines; "
          f"same set of lines: {'yes' if same else 'NO'}")
    if not same:
        a, b = set(py_lines), set(our_lines)
        for line in sorted(a - b)[:5]:
            print(f"  only in python: {line.decode(errors='replace')}")
        for line in sorted(b - a)[:5]:
            print(f"  only in ours:   {line.decode(errors='replace')}")

    if args.ours_inproc:
        reps = str(args.inproc_reps)
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "inproc", d,
                            "--reps", reps], check=True, capture_output=True, text=True)
        py_in = parse_kv(r.stdout.strip().splitlines()[-1])
        r = subprocess.run(shlex.split(args.ours_inproc), check=True,
                           capture_output=True, text=True)
        our_in = parse_kv(r.stdout.strip().splitlines()[-1])
        pm, om = float(py_in["median_ms"]), float(our_in["median_ms"])
        print(f"in process ({reps} scrapes in one process each: collect + encode):")
        print(f"  prometheus_client    median {pm:9.1f} ms  (min {float(py_in['min_ms']):.1f})")
        print(f"  prometheus-multiproc median {om:9.1f} ms  (min {float(our_in['min_ms']):.1f})")
        print(f"  ratio (python / ours): {pm / om:.1f}x")
        if "floor_ms" in our_in:
            fl = float(our_in["floor_ms"])
            print(f"  floor (list + read every file's used bytes, no merge): {fl:.1f} ms; "
                  f"ours is {om / fl:.1f}x the floor")
    if not same:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("dir")
    g.add_argument("--workers", type=int, default=64)
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                   help="workers running at once")
    e = sub.add_parser("expose")
    e.add_argument("dir")
    i = sub.add_parser("inproc")
    i.add_argument("dir")
    i.add_argument("--reps", type=int, default=5)
    c = sub.add_parser("compare")
    c.add_argument("dir")
    c.add_argument("--ours", required=True,
                   help="command writing our text exposition of DIR to stdout")
    c.add_argument("--ours-inproc", help="command printing median_ms=... for DIR")
    c.add_argument("--reps", type=int, default=7)
    c.add_argument("--inproc-reps", type=int, default=5)
    args = ap.parse_args()
    {"generate": cmd_generate, "expose": cmd_expose, "inproc": cmd_inproc,
     "compare": cmd_compare}[args.cmd](args)


if __name__ == "__main__":
    main()
