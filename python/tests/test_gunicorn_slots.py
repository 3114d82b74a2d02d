"""The gunicorn + Flask app of test_gunicorn.py with prometheus_multiproc's
value class installed and the worker-slot recipe of docs/python.md
(tests/python/gunicorn_slots_conf.py): 3 workers restarting under
max_requests, and one worker SIGKILLed in the middle of a request.

* The killed worker's live gauge (its in-progress request) is gone from our
  collector's next scrape (bytes path and drop-in), taken while the gunicorn
  master (the only process that calls mark_process_dead) is stopped;
  prometheus_client's collector, which has no liveness check, still counts
  it then.
* The directory never holds more files than worker slots x kinds.
* At quiescence, the app's own /metrics through prometheus_client's
  collector, our drop-in collector and our bytes path are byte-identical.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import prometheus_multiproc
from helpers import REPO, dropin_registry, python_registry
from test_gunicorn import _fail, free_port, get, quiescent_bodies, wait_for, workers

SLOTS = 3
# counter, histogram, summary, gauge_livesum, gauge_mostrecent
KINDS = 5


def in_progress(body):
    lines = [line for line in body.splitlines() if line.startswith(b"app_in_progress ")]
    assert len(lines) == 1, body
    return float(lines[0].split()[1])


def check_files(directory):
    names = sorted(p.name for p in directory.iterdir())
    assert len(names) <= SLOTS * KINDS, names
    assert all(n.rsplit("_", 1)[1] in {f"w{i}.db" for i in range(SLOTS)} for n in names), names
    return names


def hang(url):
    try:
        get(url)
    except OSError:
        pass  # the worker is killed mid-request


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("slots")
    pid_file = tmp_path_factory.mktemp("hang") / "pid"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory),
               APP_BIND=f"127.0.0.1:{port}", HANG_PID_FILE=str(pid_file),
               PYTHONPATH=os.pathsep.join([str(REPO / "python" / "tests"),
                                           str(REPO / "tests" / "python")]))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c",
         str(REPO / "tests/python/gunicorn_slots_conf.py"), "gunicorn_app:app"], env=env)
    result = {"directory": directory}
    try:
        wait_for(lambda: get(base + "/")[0] == b"hello\n", "gunicorn to serve")
        wait_for(lambda: len(workers(server.pid)) == SLOTS, "3 workers")
        seen = set(workers(server.pid))
        for i in range(150):
            if i % 3 == 2:
                _fail(base)
            else:
                get(base + ("/" if i % 3 == 0 else f"/items/{i}"))
            seen.update(workers(server.pid))
        result["processes"] = len(seen)
        result["files_after_restarts"] = check_files(directory)

        threading.Thread(target=hang, args=(base + "/hang",), daemon=True).start()
        wait_for(lambda: pid_file.read_text().strip(), "the hanging request")
        victim = int(pid_file.read_text())
        assert victim in workers(server.pid)
        result["before_kill"] = (in_progress(get(base + "/metrics/bytes")[0]),
                                 in_progress(get(base + "/metrics/python")[0]))
        os.kill(server.pid, signal.SIGSTOP)
        try:
            os.kill(victim, signal.SIGKILL)
            # A zombie until the stopped master reaps it: dead, locks released.
            wait_for(lambda: Path(f"/proc/{victim}/stat").read_text().split(") ")[1][0] == "Z",
                     "the killed worker to die")
            # Scraped here, not through the app: with the master stopped, a
            # worker leaving under max_requests would not be replaced.
            result["after_kill"] = {
                "bytes": in_progress(prometheus_multiproc.generate_latest(str(directory))[0]),
                "dropin": in_progress(generate_latest(dropin_registry(directory))),
                "python": in_progress(generate_latest(python_registry(directory))),
            }
        finally:
            os.kill(server.pid, signal.SIGCONT)
        wait_for(lambda: victim not in workers(server.pid)
                 and len(workers(server.pid)) == SLOTS, "the killed worker's replacement")
        for i in range(60):
            get(base + f"/items/{i}")
        result["bodies"] = quiescent_bodies(base)
        result["files_at_end"] = check_files(directory)
        return result
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_workers_restarted_and_files_stay_bounded(run):
    assert run["processes"] > SLOTS, "no worker restarted"
    # Every slot has written every kind; a slot whose worker just restarted
    # has no live-gauge file until its new worker's first request.
    assert SLOTS * (KINDS - 1) <= len(run["files_at_end"]) <= SLOTS * KINDS


def test_sigkilled_workers_live_gauge_is_gone_without_mark_process_dead(run):
    assert run["before_kill"] == (1.0, 1.0)
    assert run["after_kill"] == {"bytes": 0.0, "dropin": 0.0, "python": 1.0}


def test_three_collectors_byte_identical(run):
    bodies = run["bodies"]
    assert bodies["bytes"] == bodies["python"]
    assert bodies["dropin"] == bodies["python"]
    assert b'app_requests_total{path="/fail",status="500"} 50.0' in bodies["python"][0]
    assert b"app_in_progress 0.0" in bodies["python"][0]


def test_the_conf_runs_the_recipe_of_the_docs():
    doc = (REPO / "docs" / "python.md").read_text()
    recipe = doc.split("```python\n# gunicorn.conf.py\n", 1)[1].split("```", 1)[0]
    conf = (REPO / "tests" / "python" / "gunicorn_slots_conf.py").read_text()
    conf = conf.replace("  # noqa: E402 - the recipe starts here", "")
    assert recipe.count("\n") > 10
    assert conf.endswith(recipe)
