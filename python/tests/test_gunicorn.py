"""A gunicorn + Flask app (tests/python) with 3 workers that restart under
max_requests and one worker SIGKILLed: its own /metrics through
prometheus_client's collector, our drop-in collector and our bytes path
agree at quiescence."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import REPO

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.read(), response.headers["Content-Type"]


def workers(master):
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def wait_for(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def quiescent_bodies(base, attempts=10):
    """The app's three /metrics bodies, fetched between two identical
    scrapes through prometheus_client's collector. The scrapes are requests
    too: one can make a worker reach max_requests and restart, which changes
    the directory (and prometheus_client's order, which follows the
    directory listing); then the round is taken again."""
    for _ in range(attempts):
        first = get(base + "/metrics/python")
        result = {
            "dropin": get(base + "/metrics/dropin"),
            "bytes": get(base + "/metrics/bytes"),
            "python": get(base + "/metrics/python"),
        }
        if first == result["python"]:
            return result
    raise AssertionError(f"the directory kept changing over {attempts} rounds of scrapes")


@pytest.fixture(scope="module")
def bodies(tmp_path_factory):
    """The three /metrics bodies of the app at quiescence, after traffic,
    worker restarts and a SIGKILL; plus the python body fetched again last."""
    directory = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory),
               APP_BIND=f"127.0.0.1:{port}",
               PYTHONPATH=os.pathsep.join([str(REPO / "python" / "tests"),
                                           str(REPO / "tests" / "python")]))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(REPO / "tests/python/gunicorn_conf.py"),
         "gunicorn_app:app"], env=env)
    try:
        wait_for(lambda: get(base + "/")[0] == b"hello\n", "gunicorn to serve")
        wait_for(lambda: len(workers(server.pid)) == 3, "3 workers")
        for i in range(150):
            if i % 3 == 2:
                _fail(base)
            else:
                get(base + ("/" if i % 3 == 0 else f"/items/{i}"))
        victim = workers(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in workers(server.pid) and len(workers(server.pid)) == 3,
                 "the killed worker's replacement")
        for i in range(60):
            get(base + f"/items/{i}")
        result = quiescent_bodies(base)
        files = {p.name.split("_")[-1] for p in directory.iterdir()}
        assert len(files) > 3, "no worker restarted"
        return result
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _fail(base):
    try:
        get(base + "/fail")
    except urllib.error.HTTPError as e:
        assert e.code == 500


def test_dropin_and_bytes_path_identical(bodies):
    assert bodies["dropin"] == bodies["bytes"]
    assert b"app_requests_total{" in bodies["bytes"][0]


def test_same_lines_as_prometheus_client(bodies):
    ours, theirs = bodies["bytes"], bodies["python"]
    assert ours[1] == theirs[1]
    assert sorted(ours[0].splitlines()) == sorted(theirs[0].splitlines())
    assert b'app_requests_total{path="/fail",status="500"} 50.0' in ours[0]


def test_identical_to_prometheus_client(bodies):
    assert bodies["bytes"] == bodies["python"]
