"""gunicorn settings for the Python package's slot test
(python/tests/test_gunicorn_slots.py): tests/python/gunicorn_conf.py's 3
workers restarting under max_requests, with prometheus_multiproc's value
class installed and the worker-slot recipe of docs/python.md (everything
from `import prometheus_multiproc` on is that recipe, verbatim; the test
checks it).

Environment: APP_BIND (host:port), PROMETHEUS_MULTIPROC_DIR.
"""
import os

bind = os.environ['APP_BIND']
workers = 3
max_requests = 40
max_requests_jitter = 10
graceful_timeout = 5
loglevel = 'warning'

import prometheus_multiproc  # noqa: E402 - the recipe starts here

# In the master, before any worker imports the app and creates its metrics
# (without preload_app; with it, call install() before the app's import).
prometheus_multiproc.install()


def pre_fork(server, worker):             # in the master
    used = {getattr(w, 'metrics_slot', None) for w in server.WORKERS.values()}
    worker.metrics_slot = next(n for n in range(len(used) + 1) if n not in used)


def post_fork(server, worker):            # in the new worker
    prometheus_multiproc.set_worker_id(f"w{worker.metrics_slot}")


def child_exit(server, worker):           # in the master, before the slot is reused
    prometheus_multiproc.mark_process_dead(f"w{worker.metrics_slot}")
