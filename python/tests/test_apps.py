"""make_wsgi_app / make_asgi_app against prometheus_client's own apps over a
registry holding our drop-in collector: same status, headers and body for
every method, path, filter, Accept and Accept-Encoding."""

import asyncio
import gzip

import pytest
from prometheus_client.asgi import make_asgi_app as pc_make_asgi_app
from prometheus_client.exposition import make_wsgi_app as pc_make_wsgi_app

import prometheus_multiproc
from helpers import dropin_registry, generate_python

REQUESTS = [
    # (method, path, query, accept, accept-encoding)
    ("GET", "/metrics", "", None, None),
    ("GET", "/metrics", "", "application/openmetrics-text", None),
    ("GET", "/metrics", "", "application/openmetrics-text; version=1.0.0", None),
    ("GET", "/metrics", "", None, "gzip"),
    ("GET", "/metrics", "name[]=errors_total&name[]=inprogress_requests", None, None),
    ("GET", "/metrics", "name[]=errors_total&name[]=inprogress_requests",
     "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8", "gzip"),
    ("GET", "/metrics", "name%5B%5D=errors_total&name[]=inprogress_requests&name[]=",
     "text/plain;version=1.0.0", None),
    ("GET", "/favicon.ico", "", None, None),
    ("OPTIONS", "/metrics", "", None, None),
    ("POST", "/metrics", "", None, None),
]


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    d = tmp_path_factory.mktemp("apps")
    generate_python(d, workers=2, scale=0.01)
    return d


def wsgi_call(app, method, path, query, accept, encoding):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if accept is not None:
        environ["HTTP_ACCEPT"] = accept
    if encoding is not None:
        environ["HTTP_ACCEPT_ENCODING"] = encoding
    started = []
    body = b"".join(app(environ, lambda status, headers: started.append((status, headers))))
    return started[0][0], started[0][1], body


def asgi_call(app, method, path, query, accept, encoding):
    headers = []
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    if encoding is not None:
        headers.append((b"accept-encoding", encoding.encode()))
    scope = {"type": "http", "method": method, "path": path,
             "query_string": query.encode(), "headers": headers}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[0]["headers"], sent[1]["body"]


def unzipped(response):
    status, headers, body = response
    if any(h[1] in ("gzip", b"gzip") for h in headers):
        body = gzip.decompress(body)
    return status, headers, body


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: " ".join(map(str, r)))
def test_wsgi_app_serves_as_prometheus_client(directory, request_):
    ours = wsgi_call(prometheus_multiproc.make_wsgi_app(str(directory)), *request_)
    # A registry that lets `name[]` filter a collector without names, as
    # make_wsgi_app's own does.
    registry = dropin_registry(directory, support_collectors_without_names=True)
    theirs = wsgi_call(pc_make_wsgi_app(registry), *request_)
    # gzip output embeds a timestamp: compare what was compressed.
    assert unzipped(ours) == unzipped(theirs)
    if request_[0] == "GET" and request_[1] == "/metrics":
        body = unzipped(ours)[2]
        assert body.count(b"\n") > 5
        if "name[]" in request_[2]:
            assert b"errors_total" in body and b"inprogress_requests" in body
            assert b"http_requests_total" not in body


def test_asgi_app_serves_as_prometheus_client(directory):
    for request_ in REQUESTS:
        if request_[0] != "GET" or request_[1] != "/metrics":
            continue  # prometheus_client's ASGI app serves every method alike
        ours = asgi_call(prometheus_multiproc.make_asgi_app(str(directory)), *request_)
        registry = dropin_registry(directory, support_collectors_without_names=True)
        theirs = asgi_call(pc_make_asgi_app(registry), *request_)
        assert unzipped(ours) == unzipped(theirs), request_
