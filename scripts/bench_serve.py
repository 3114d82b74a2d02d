#!/usr/bin/env python3
"""Helper for scripts/bench-serve.sh: the client and prometheus_client's side
of the steady-state `serve` scrape benchmark.

Subcommands:

  run DIR --server NAME=URL [--server NAME=URL ...] [--label NAME=TEXT ...]
          --bodies OUT
          [--reps 50] [--rounds 5] [--py-per-round 2] [--warmup 3]
          [--accept HEADER]
      One long-lived interpreter, prometheus_client imported before any
      timing. Keeps ONE keep-alive HTTP/1.1 connection (http.client) per
      server for the whole run and sends each GET with the given Accept
      header and `Accept-Encoding: identity` (no gzip). First, per server:
      the first scrape (timed, reported alone: the incremental server's
      cold build) and WARMUP-1 more untimed ones, then one untimed Python
      scrape. Then ROUNDS rounds, each: REPS/ROUNDS timed scrapes of each
      server in turn, then PY_PER_ROUND timed prometheus_client scrapes
      (a fresh CollectorRegistry + MultiProcessCollector(registry, DIR) +
      the encoder prometheus_client's own HTTP handler picks for HEADER,
      `choose_encoder`: generate_latest for text/plain;version=0.0.4).
      A scrape is timed from sending the request to the body's last byte;
      the time to the response head (status line and headers parsed) is
      kept as well. The client's own cost: a `null` server (below),
      started with the first server's body, is timed the same way in the
      same rounds. Writes each server's and
      Python's body to OUT/NAME.body and OUT/python.body, and each
      content type to OUT/NAME.ctype; exits non-zero if a server answers
      other than 200 or a server's bodies differ between its scrapes.

  null FILE
      A null server for the client-overhead measurement: listens on
      127.0.0.1 (a free port, printed as `port=N` on stdout), and answers
      every request of every keep-alive connection with FILE's bytes,
      built once (status line, Content-Type, Content-Length). Runs until
      killed.
"""

import argparse
import gc
import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse


def fmt_ms(xs):
    """`median (min–max)` in ms."""
    return f"{statistics.median(xs):8.2f} ms  ({min(xs):.2f}–{max(xs):.2f})"


class Target:
    """One server, one keep-alive connection, every timing taken on it."""

    def __init__(self, name, url, accept):
        u = urllib.parse.urlsplit(url)
        self.name, self.path = name, u.path or "/"
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.headers = {"Accept": accept, "Accept-Encoding": "identity"}
        self.first = None
        self.total, self.head = [], []
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
        if self.body is None:
            self.body, self.ctype = body, r.getheader("Content-Type")
        elif body != self.body:
            self.differing += 1
        return t1 - t0, t2 - t0

    def timed(self, n):
        for _ in range(n):
            head, total = self.scrape()
            self.head.append(head * 1e3)
            self.total.append(total * 1e3)


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


def http_round(targets, n):
    """n timed scrapes of each target in turn, the garbage collector off
    (each body is freed by reference counting; a collection pass over the
    Python scrapes' leftovers must not land in a timed HTTP scrape)."""
    gc.collect()
    gc.disable()
    try:
        for t in targets:
            t.timed(n)
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
    d = os.path.abspath(args.dir)
    py = Python(d, args.accept)
    servers = []
    for spec in args.server:
        name, _, url = spec.partition("=")
        if not url:
            sys.exit(f"--server {spec!r}: expected NAME=URL")
        servers.append(Target(name, url, args.accept))
    per_round = max(1, args.reps // args.rounds)

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
            http_round(servers + [null], per_round)
            py.timed(args.py_per_round)
    finally:
        null_proc.kill()
        null_proc.wait()

    report(args, d, py, servers, null, per_round)
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


def report(args, d, py, servers, null, per_round):
    body = servers[0].body
    lines = body.count(b"\n")
    print(f"directory: {d}: {len(os.listdir(d))} files; body "
          f"{len(body) / 2**20:.2f} MiB, {lines:,} lines")
    print(f"accept: {args.accept}")
    print(f"  prometheus_client's choose_encoder picks {py.encoder_name()}")
    print(f"client: one keep-alive http.client connection per server, "
          f"Accept-Encoding: identity; {args.rounds} rounds of {per_round} scrapes "
          f"per server, then {args.py_per_round} prometheus_client scrapes; "
          f"{args.warmup} warm-up scrapes per server")
    for spec in args.label:
        name, _, text = spec.partition("=")
        print(f"  {name}: {text}")
    print("scrape times, request sent to last byte: median (min–max); "
          "head = to the parsed response head")
    for t in servers:
        print(f"  {t.name + ':':<28} {fmt_ms(t.total)}  head {statistics.median(t.head):.2f} ms"
              f"  [n={len(t.total)}]")
        print(f"  {t.name + ', first scrape:':<28} {t.first:8.2f} ms")
    print(f"  {'prometheus_client:':<28} {fmt_ms(py.times)}  [n={len(py.times)}, in process: "
          f"registry + MultiProcessCollector + encoder]")
    if null:
        print(f"  {'client + null server:':<28} {fmt_ms(null.total)}  head "
              f"{statistics.median(null.head):.2f} ms  [n={len(null.total)}: a server "
              f"sending {len(null.body) / 2**20:.2f} MiB prepared bytes]")
    pm = statistics.median(py.times)
    print("ratios, prometheus_client median / ours:")
    for t in servers:
        print(f"  {t.name + ':':<28} {pm / statistics.median(t.total):8.1f}x  "
              f"(first scrape {pm / t.first:.1f}x)")


def cmd_null(args):
    with open(args.file, "rb") as f:
        body = f.read()
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    print(f"port={lsock.getsockname()[1]}", flush=True)
    while True:
        conn, _ = lsock.accept()
        buf = b""
        with conn:
            while True:
                # Requests are small GETs without a body: the head ends the request.
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                if b"\r\n\r\n" not in buf:
                    break
                buf = buf.split(b"\r\n\r\n", 1)[1]
                conn.sendall(resp)


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
