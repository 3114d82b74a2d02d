"""The Rust-backed value class (prometheus_multiproc.install()) against
prometheus_client's MultiProcessValue: same files, keys and merged values,
read by prometheus_client's own collector; fork, SIGKILL and worker ids."""

import os
import re
import subprocess
import sys
import textwrap

from prometheus_client import generate_latest

from helpers import dropin_registry, python_registry

# Writes the same metrics whichever value class is in place; argv[1] says
# whether to install ours.
WORKLOAD = textwrap.dedent("""
    import os, sys
    import prometheus_multiproc
    if sys.argv[1] == "rust":
        prometheus_multiproc.install()
    from prometheus_client import Counter, Gauge, Histogram, Summary
    c = Counter("jobs", "Jobs.", ["queue"])
    h = Histogram("latency_seconds", "Latency.", ["path"])
    s = Summary("size_bytes", "Sizes.")
    gauges = {mode: Gauge(f"g_{mode}", f"Gauge {mode}.", ["k"], multiprocess_mode=mode)
              for mode in ("all", "liveall", "min", "livemin", "max", "livemax",
                           "sum", "livesum", "mostrecent", "livemostrecent")}
    for i in range(50):
        c.labels(("mail", "sms", "push")[i % 3]).inc(i / 4)
        h.labels(("/", "/api")[i % 2]).observe(i / 37)
        s.observe(i * 3.5)
        for g in gauges.values():
            g.labels(str(i % 4)).set(i * 1.25)
    gauges["sum"].labels("inc").inc(2)
    gauges["sum"].labels("inc").dec(0.5)
    assert c.labels("mail")._value.get() == sum(i / 4 for i in range(0, 50, 3))
""")


def run_workload(directory, which, times=2):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    for _ in range(times):
        subprocess.run([sys.executable, "-c", WORKLOAD, which], env=env, check=True)


def normalized(body, directory):
    """Pids differ between runs: replace each file's pid by its rank."""
    pids = sorted({f.name.rsplit("_", 1)[1][:-3] for f in directory.iterdir()})
    for rank, pid in enumerate(pids):
        body = re.sub(rb'pid="%s"' % pid.encode(), b'pid="worker%d"' % rank, body)
    return body


def test_same_files_and_values_as_multiprocess_value(tmp_path):
    theirs, ours = tmp_path / "python", tmp_path / "rust"
    theirs.mkdir()
    ours.mkdir()
    run_workload(theirs, "python")
    run_workload(ours, "rust")

    def prefixes(d):
        return sorted(f.name.rsplit("_", 1)[0] for f in d.iterdir())
    assert prefixes(ours) == prefixes(theirs)
    assert len(prefixes(ours)) == 2 * 13
    # prometheus_client's own collector reads our files as its own (its
    # output order follows the directory listing: compare the lines).
    body = normalized(generate_latest(python_registry(ours)), ours)
    assert sorted(body.splitlines()) == \
        sorted(normalized(generate_latest(python_registry(theirs)), theirs).splitlines())
    assert b'jobs_total{queue="mail"} 204.0' in body
    assert b'g_sum{k="inc"} 3.0' in body
    # ... and so does ours, except that the live gauges of processes that
    # exited (their file locks are free) are left out.
    def without_live(lines):
        return [line for line in lines if not re.match(rb"(# (HELP|TYPE) )?g_live", line)]
    mine = sorted(normalized(generate_latest(dropin_registry(ours)), ours).splitlines())
    assert mine == without_live(sorted(body.splitlines()))
    assert without_live(mine) == mine and any(b"g_live" in line for line in body.splitlines())


FORK = textwrap.dedent("""
    import os, signal, sys
    import prometheus_multiproc
    prometheus_multiproc.install()
    from prometheus_client import Counter, Gauge
    c = Counter("forked", "Forked.")
    live = Gauge("busy", "Busy.", multiprocess_mode="livesum")
    c.inc()
    live.set(1)
    child = os.fork()
    if child == 0:
        c.inc(10)
        live.set(7)
        if sys.argv[1] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(0)
    os.waitpid(child, 0)
    c.inc(100)
    print(child)
""")


def test_fork_writes_to_the_childs_files(tmp_path):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", FORK, "exit"], env=env, check=True,
                         capture_output=True, text=True)
    child = out.stdout.strip()
    assert (tmp_path / f"counter_{child}.db").exists()
    body = generate_latest(python_registry(tmp_path))
    assert b"forked_total 111.0" in body
    assert b"busy 8.0" in body


def test_sigkilled_workers_live_gauge_is_gone_without_mark_process_dead(tmp_path):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", FORK, "kill"], env=env, check=True,
                   capture_output=True)
    ours = generate_latest(dropin_registry(tmp_path))
    # The parent exited too (its lock is free): only counters remain.
    assert b"forked_total 111.0" in ours
    assert b"busy 0.0" not in ours and b"busy 7.0" not in ours and b"busy 8.0" not in ours
    # prometheus_client, which has no liveness check, still sums them.
    assert b"busy 8.0" in generate_latest(python_registry(tmp_path))


WORKER_ID = textwrap.dedent("""
    import prometheus_multiproc
    prometheus_multiproc.install()
    prometheus_multiproc.set_worker_id("w1")
    from prometheus_client import Counter
    Counter("restarts", "Restarts.").inc()
""")


def test_worker_id_reuses_the_slots_files(tmp_path):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for _ in range(3):
        subprocess.run([sys.executable, "-c", WORKER_ID], env=env, check=True)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["counter_w1.db"]
    assert b"restarts_total 3.0" in generate_latest(python_registry(tmp_path))
