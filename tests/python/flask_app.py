"""A small Flask app instrumented with prometheus_client in multiprocess mode.

Run by gunicorn in the sidecar tests (see gunicorn_conf.py); the metrics go to
the directory in PROMETHEUS_MULTIPROC_DIR, which must be set before start.
"""
import time

from flask import Flask
from prometheus_client import Counter, Gauge, Histogram, Summary

app = Flask(__name__)

REQUESTS = Counter('app_requests', 'Requests served.', ['path', 'status'])
LATENCY = Histogram('app_request_seconds', 'Request latency.', ['path'])
IN_PROGRESS = Gauge('app_in_progress', 'Requests in progress.', multiprocess_mode='livesum')
PAYLOAD = Summary('app_payload_bytes', 'Response sizes.')
LAST_SEEN = Gauge('app_last_request_unixtime', 'Time of the last request.',
                  multiprocess_mode='mostrecent')


def _handle(path, body, status=200):
    IN_PROGRESS.inc()
    start = time.perf_counter()
    try:
        return body, status
    finally:
        LATENCY.labels(path).observe(time.perf_counter() - start)
        REQUESTS.labels(path, str(status)).inc()
        PAYLOAD.observe(len(body))
        LAST_SEEN.set(time.time())
        IN_PROGRESS.dec()


@app.route('/')
def index():
    return _handle('/', 'hello\n')


@app.route('/items/<int:n>')
def items(n):
    return _handle('/items', 'x' * (n % 100) + '\n')


@app.route('/fail')
def fail():
    return _handle('/fail', 'no\n', 500)
