#!/usr/bin/env python3
"""Helper for scripts/bench-serve.sh: the client and prometheus_client's side
of the steady-state `serve` scrape benchmark.

Subcommands:

  run DIR --server NAME=URL [--server NAME=URL ...] [--label NAME=TEXT ...]
          --bodies OUT [--reps 50] [--rounds 5] [--py-per-round 2]
          [--warmup 3] [--accept HEADER] [--clients http.client,curl]
      One long-lived interpreter, prometheus_client imported before any
      timing. Every request carries the given Accept header and no
      Accept-Encoding (identity: no gzip). Two clients time the servers in
      the same rounds: http.client, with ONE keep-alive HTTP/1.1
      connection per server for the whole run, and curl, one process per
      server and round whose first transfer opens the connection (untimed)
      and the next ones reuse it (curl's own time_total). First, per
      server: the first scrape (http.client; timed, reported alone: the
      incremental server's cold build) and WARMUP-1 more untimed ones,
      then one untimed Python scrape. Then ROUNDS rounds, each: REPS/ROUNDS
      timed scrapes of each server by each client in turn, then
      PY_PER_ROUND timed prometheus_client scrapes (a fresh
      CollectorRegistry + MultiProcessCollector(registry, DIR) + the
      encoder prometheus_client's own HTTP handler picks for HEADER,
      `choose_encoder`: generate_latest for text/plain;version=0.0.4).
      A scrape is timed from sending the request to the body's last byte;
      the time to the response head is kept as well. The clients' own
      cost: a `null` server (below), started with the first server's body,
      is timed the same way in the same rounds. Writes each server's and
      Python's body to OUT/NAME.body and OUT/python.body, and each content
      type to OUT/NAME.ctype; exits non-zero if a server answers other
      than 200 or a body changes between scrapes.

  null FILE
      A null server for the client-overhead measurement: listens on
      127.0.0.1 (a free port, printed as `port=N` on stdout), and answers
      every request of every keep-alive connection (a thread each) with
      FILE's bytes, built once (status line, Content-Type, Content-Length). Runs until
      killed.
"""

import argparse
import gc
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

CLIENTS = ("http.client", "curl")
CURL_FORMAT = ("%{http_code} %{num_connects} %{size_download} "
               "%{time_starttransfer} %{time_total}\\n")


def fmt_ms(xs):
    """`median (min–max)` in ms."""
    return f"{statistics.median(xs):8.2f} ms  ({min(xs):.2f}–{max(xs):.2f})"


class Target:
    """One server: its keep-alive http.client connection, and every timing
    taken on it by each client (total and to the head, ms)."""

    def __init__(self, name, url, accept):
        u = urllib.parse.urlsplit(url)
        self.name, self.url, self.path = name, url, u.path or "/"
        self.accept = accept
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.headers = {"Accept": accept, "Accept-Encoding": "identity"}
        self.first = None
        self.total = {c: [] for c in CLIENTS}
        self.head = {c: [] for c in CLIENTS}
        self.body, self.ctype = None, None
        self.differing = 0

    def scrape(self):
        """One GET; returns (seconds to the head, seconds to the last byte)."""
        t0 = time.perf_counter()
        self.conn.request("GET", self.path, headers=self.headers)
        r = self.conn.getresponse()
        t1 = time.perf_counter()
        body = r.read()
        t2 = time.perf_counter()
        if r.status != 200:
            sys.exit(f"{self.name}: HTTP {r.status}: {body[:200]!r}")
        if r.getheader("Content-Encoding") not in (None, "identity"):
            sys.exit(f"{self.name}: unexpected Content-Encoding "
                     f"{r.getheader('Content-Encoding')}")
        self.check(body, r.getheader("Content-Type"))
        return t1 - t0, t2 - t0

    def check(self, body, ctype=None):
        if self.body is None:
            self.body, self.ctype = body, ctype
        elif body != self.body:
            self.differing += 1

    def timed(self, n):
        for _ in range(n):
            head, total = self.scrape()
            self.head["http.client"].append(head * 1e3)
            self.total["http.client"].append(total * 1e3)

    def curl_round(self, n, out):
        """One curl process, one connection: a first transfer (untimed: it
        opens the connection; its body is compared), then n timed ones over
        the same connection, written to /dev/null (status and size checked)."""
        first = os.path.join(out, f"curl-{self.name}.body")
        argv = (["curl", "--silent", "--show-error", "--globoff", "--http1.1",
                 "-H", f"Accept: {self.accept}", "-w", CURL_FORMAT, "-o", first, self.url]
                + ["-o", "/dev/null", self.url] * n)
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            sys.exit(f"{self.name}: curl failed ({r.returncode}): {r.stderr.strip()}")
        with open(first, "rb") as f:
            self.check(f.read())
        lines = r.stdout.splitlines()
        if len(lines) != n + 1:
            sys.exit(f"{self.name}: curl wrote {len(lines)} lines, not {n + 1}")
        for line in lines[1:]:
            code, connects, size, head, total = line.split()
            if code != "200" or int(size) != len(self.body):
                sys.exit(f"{self.name}: curl got HTTP {code}, {size} bytes "
                         f"(expected 200, {len(self.body)})")
            if connects != "0":
                sys.exit(f"{self.name}: curl did not reuse its connection")
            self.head["curl"].append(float(head) * 1e3)
            self.total["curl"].append(float(total) * 1e3)


class Python:
    """prometheus_client's in-process scrape, as its HTTP handler does it."""

    def __init__(self, d, accept):
        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import choose_encoder
        from prometheus_client.multiprocess import MultiProcessCollector
        self.name, self.d = "python", d
        self.registry_class = CollectorRegistry
        self.collector_class = MultiProcessCollector
        self.encoder, self.ctype = choose_encoder(accept)
        self.times, self.body = [], None
        self.differing = 0

    def encoder_name(self):
        f = self.encoder
        name = getattr(f, "func", f)
        name = f"{name.__module__}.{name.__qualname__}"
        if hasattr(f, "keywords") and f.keywords:
            args = ", ".join(f"{k}={v!r}" for k, v in f.keywords.items())
            name += f"(registry, {args})"
        return name

    def scrape(self):
        t0 = time.perf_counter()
        registry = self.registry_class()
        self.collector_class(registry, path=self.d)
        body = self.encoder(registry)
        t1 = time.perf_counter()
        if self.body is None:
            self.body = body
        elif body != self.body:
            self.differing += 1
        return t1 - t0

    def timed(self, n):
        for _ in range(n):
            self.times.append(self.scrape() * 1e3)


def http_round(targets, n, clients, out):
    """n timed scrapes of each target by each client in turn, the garbage
    collector off (each body is freed by reference counting; a collection
    pass over the Python scrapes' leftovers must not land in a timed HTTP
    scrape)."""
    gc.collect()
    gc.disable()
    try:
        for t in targets:
            for c in clients:
                if c == "http.client":
                    t.timed(n)
                else:
                    t.curl_round(n, out)
    finally:
        gc.enable()


def start_null(body, out):
    """Starts `null` serving body (saved to OUT/null.body); returns (Popen, URL)."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "null.body")
    with open(path, "wb") as f:
        f.write(body)
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "null", path],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("port="):
        p.kill()
        sys.exit(f"null server did not start: {line!r}")
    return p, f"http://127.0.0.1:{line[5:]}/metrics"


def cmd_run(args):
    # On TERM (bench-serve.sh's cleanup), unwind: the null server is stopped
    # in a finally, and subprocess.run kills a running curl.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    d = os.path.abspath(args.dir)
    py = Python(d, args.accept)
    servers = []
    for spec in args.server:
        name, _, url = spec.partition("=")
        if not url:
            sys.exit(f"--server {spec!r}: expected NAME=URL")
        servers.append(Target(name, url, args.accept))
    per_round = max(1, args.reps // args.rounds)
    clients = [c for c in args.clients.split(",") if c]
    if not clients or any(c not in CLIENTS for c in clients):
        sys.exit(f"--clients {args.clients!r}: a comma-separated list of {', '.join(CLIENTS)}")
    if "curl" in clients and shutil.which("curl") is None:
        sys.exit("--clients: curl is not on PATH")

    # Warm-up: the first scrape of each server is timed and kept apart
    # (for an incremental server it is the cold build); the rest are not kept.
    for t in servers:
        t.first = t.scrape()[1] * 1e3
        for _ in range(args.warmup - 1):
            t.scrape()
    py.scrape()

    # The client's own cost: the same client and body against a server
    # that only sends prepared bytes.
    null_proc, null_url = start_null(servers[0].body, args.bodies)
    try:
        null = Target("null", null_url, args.accept)
        for _ in range(args.warmup):
            null.scrape()
        for _ in range(args.rounds):
            http_round(servers + [null], per_round, clients, args.bodies)
            py.timed(args.py_per_round)
    finally:
        null_proc.kill()
        null_proc.wait()

    report(args, d, py, servers + [null], clients, per_round)
    write_bodies(args.bodies, servers, py)
    bad = [t.name for t in servers + [null, py] if t.differing]
    if bad:
        sys.exit(f"bodies changed between scrapes of: {', '.join(bad)}")


def write_bodies(out, servers, py):
    """OUT/NAME.body and OUT/NAME.ctype for each server and for Python."""
    os.makedirs(out, exist_ok=True)
    for name, body, ctype in [(t.name, t.body, t.ctype) for t in servers] + [
            ("python", py.body, py.ctype)]:
        with open(os.path.join(out, f"{name}.body"), "wb") as f:
            f.write(body)
        with open(os.path.join(out, f"{name}.ctype"), "w") as f:
            f.write(f"{ctype}\n")


def report(args, d, py, targets, clients, per_round):
    """targets: the servers, then the null server."""
    servers, null = targets[:-1], targets[-1]
    body = servers[0].body
    lines = body.count(b"\n")
    print(f"directory: {d}: {len(os.listdir(d))} files; body "
          f"{len(body) / 2**20:.2f} MiB, {lines:,} lines")
    print(f"accept: {args.accept}")
    print(f"  prometheus_client's choose_encoder picks {py.encoder_name()}")
    print(f"clients: {', '.join(clients)}, no Accept-Encoding (identity); "
          f"http.client: one keep-alive connection per server for the whole run; "
          f"curl: one process and connection per server and round, its first "
          f"transfer untimed")
    print(f"rounds: {args.rounds} x ({per_round} scrapes per server and client, then "
          f"{args.py_per_round} of prometheus_client); before them, {args.warmup} "
          f"warm-up scrapes per server (http.client), the first one timed")
    for spec in args.label:
        name, _, text = spec.partition("=")
        print(f"  {name}: {text}")
    print("scrape times, request sent to last byte: median (min–max); "
          "head = to the response head")
    w = 36
    for t in servers:
        for c in clients:
            print(f"  {t.name + ', ' + c + ':':<{w}} {fmt_ms(t.total[c])}  head "
                  f"{statistics.median(t.head[c]):.2f} ms  [n={len(t.total[c])}]")
        print(f"  {t.name + ', first scrape:':<{w}} {t.first:8.2f} ms")
    print(f"  {'prometheus_client:':<{w}} {fmt_ms(py.times)}  [n={len(py.times)}, in "
          f"process: registry + MultiProcessCollector + encoder]")
    for c in clients:
        print(f"  {'null server, ' + c + ':':<{w}} {fmt_ms(null.total[c])}  head "
              f"{statistics.median(null.head[c]):.2f} ms  [n={len(null.total[c])}: the "
              f"client's own cost (and the null server's) for {len(body) / 2**20:.2f} MiB]")
    pm = statistics.median(py.times)
    print("ratios, prometheus_client median / ours:")
    for t in servers:
        by = ", ".join(f"{pm / statistics.median(t.total[c]):.1f}x by {c}" for c in clients)
        print(f"  {t.name + ':':<{w}} {by}; first scrape {pm / t.first:.1f}x")


def serve_connection(conn, resp):
    """Answers every request of one keep-alive connection with resp."""
    buf = b""
    with conn:
        while True:
            # Requests are small GETs without a body: the head ends the request.
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf.split(b"\r\n\r\n", 1)[1]
            conn.sendall(resp)


def cmd_null(args):
    with open(args.file, "rb") as f:
        body = f.read()
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    print(f"port={lsock.getsockname()[1]}", flush=True)
    # A thread per connection: http.client keeps its connection open while
    # each curl process opens its own.
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve_connection, args=(conn, resp), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--server", action="append", required=True, metavar="NAME=URL")
    r.add_argument("--label", action="append", default=[], metavar="NAME=TEXT",
                   help="what server NAME is, for the report")
    r.add_argument("--bodies", required=True, metavar="OUT")
    r.add_argument("--reps", type=int, default=50)
    r.add_argument("--rounds", type=int, default=5)
    r.add_argument("--py-per-round", type=int, default=2)
    r.add_argument("--warmup", type=int, default=3)
    r.add_argument("--accept", default="text/plain;version=0.0.4")
    r.add_argument("--clients", default="http.client,curl",
                   help="comma-separated: http.client, curl")
    n = sub.add_parser("null")
    n.add_argument("file")
    args = ap.parse_args()
    if args.cmd == "run":
        if args.warmup < 1 or args.rounds < 1 or args.reps < 1 or args.py_per_round < 1:
            sys.exit("--warmup, --rounds, --reps and --py-per-round must be at least 1")
        cmd_run(args)
    else:
        cmd_null(args)


if __name__ == "__main__":
    main()
