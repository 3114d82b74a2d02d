"""Kept (incremental) collectors against prometheus_client while a real
prometheus_client writer changes the directory between scrapes: values
change in place, new series and new processes' files appear, files of dead
processes go away. At every step the package's bytes path and drop-in
collector give what prometheus_client's own collector gives."""

import subprocess
import sys
import textwrap

import prometheus_multiproc
from helpers import ACCEPT_HEADERS, by_name, dropin_registry, expose, python_registry

WRITER = textwrap.dedent("""
    import os, random, sys
    from prometheus_client import Counter, Gauge, Histogram, Summary
    rng = random.Random(int(sys.argv[1]))
    c = Counter("jobs", "Jobs done.", ["queue"])
    h = Histogram("latency_seconds", "Latency.", ["route"])
    s = Summary("payload_bytes", "Payloads.")
    gauges = [Gauge("g_" + m, "G.", ["k"], multiprocess_mode=m)
              for m in ("all", "max", "min", "sum", "mostrecent", "liveall", "livesum")]
    for line in sys.stdin:
        for _ in range(rng.randrange(1, 20)):
            # Fractional amounts: sums show the order of additions.
            c.labels(queue="q%d" % rng.randrange(6)).inc(rng.random())
            h.labels(route="/r%d" % rng.randrange(4)).observe(rng.random() * 3)
            s.observe(rng.random() * 1000)
            g = rng.choice(gauges)
            g.labels(k=str(rng.randrange(3))).set(rng.random() * 100)
        print("ok", flush=True)
""")


class Writer:
    """A prometheus_client process writing into `directory` on demand."""

    def __init__(self, directory, seed):
        env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(seed)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def step(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def stop(self):
        self.proc.stdin.close()
        assert self.proc.wait() == 0


def test_kept_collectors_follow_a_changing_directory(tmp_path):
    writers = [Writer(tmp_path, seed) for seed in range(2)]
    dropin = dropin_registry(tmp_path)
    seen = set()
    for step in range(40):
        for w in writers:
            w.step()
        if step % 10 == 9:
            # A worker exits and is marked dead; a new one starts.
            old = writers.pop(0)
            old.stop()
            prometheus_multiproc.mark_process_dead(old.proc.pid, str(tmp_path))
            writers.append(Writer(tmp_path, 100 + step))
            writers[-1].step()
        accept = ACCEPT_HEADERS[step % len(ACCEPT_HEADERS)]
        theirs = expose(python_registry(tmp_path), accept)
        ours = prometheus_multiproc.generate_latest(str(tmp_path), accept)
        assert ours == theirs, (step, accept)
        assert by_name(dropin.collect()) == by_name(python_registry(tmp_path).collect()), step
        seen.add(ours[0])
    for w in writers:
        w.stop()
    # The directory really changed between scrapes.
    assert len(seen) >= 30
