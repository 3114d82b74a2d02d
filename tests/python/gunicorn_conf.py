"""gunicorn settings for the sidecar tests: 3 workers that restart under load.

Environment: APP_BIND (host:port), PROMETHEUS_MULTIPROC_DIR.
"""
import os

from prometheus_client import multiprocess

bind = os.environ['APP_BIND']
workers = 3
# Workers restart after ~40 requests, so the directory sees dead workers.
max_requests = 40
max_requests_jitter = 10
graceful_timeout = 5
loglevel = 'warning'


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
