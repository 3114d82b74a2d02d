"""tests/python/flask_app.py plus its own /metrics served three ways, for
test_gunicorn.py and test_gunicorn_slots.py: prometheus_client's collector,
our drop-in collector (both through prometheus_client's generate_latest),
and our bytes path; and /hang, a request that stays in progress."""

import os
import time

from flask import Response, request
from flask_app import IN_PROGRESS, app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

import prometheus_multiproc


def _through_registry(collector_class):
    registry = CollectorRegistry()
    collector_class(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)


@app.route('/metrics/python')
def metrics_python():
    return _through_registry(MultiProcessCollector)


@app.route('/metrics/dropin')
def metrics_dropin():
    return _through_registry(prometheus_multiproc.MultiProcessCollector)


@app.route('/metrics/bytes')
def metrics_bytes():
    body, content_type = prometheus_multiproc.generate_latest(
        accept_header=request.headers.get('Accept'))
    return Response(body, content_type=content_type)


@app.route('/hang')
def hang():
    """A request that stays in progress (app_in_progress counts it) until
    the worker is killed; writes the worker's pid to HANG_PID_FILE first."""
    IN_PROGRESS.inc()
    with open(os.environ['HANG_PID_FILE'], 'w') as f:
        f.write(str(os.getpid()))
    time.sleep(25)
    IN_PROGRESS.dec()
    return 'done\n'
