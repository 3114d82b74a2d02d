"""tests/python/flask_app.py plus its own /metrics served three ways, for
test_gunicorn.py: prometheus_client's collector, our drop-in collector (both
through prometheus_client's generate_latest), and our bytes path."""

from flask import Response, request
from flask_app import app
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
