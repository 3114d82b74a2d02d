"""A Rust-backed collector for prometheus_client's multiprocess mode.

Two ways to serve the merged metrics of ``PROMETHEUS_MULTIPROC_DIR``:

* :class:`MultiProcessCollector`, a drop-in for
  ``prometheus_client.multiprocess.MultiProcessCollector``: register it in a
  ``CollectorRegistry`` and everything built on registries keeps working
  (``generate_latest``, ``make_wsgi_app``, ``restricted_registry``, framework
  integrations). It yields the same ``Metric`` objects as prometheus_client.
* :func:`generate_latest`, :func:`make_wsgi_app`, :func:`make_asgi_app`: the
  exposition bytes straight from Rust, without Python objects; the fastest.

Files that cannot be read (corrupt, truncated, not regular files) are
skipped with a :class:`MetricsFileWarning` through :mod:`warnings`; the scrape
goes on. The directory is read and merged with the GIL released.
"""

import asyncio
import gzip
import os
import warnings

from prometheus_client import multiprocess as _pc_multiprocess
from prometheus_client.exposition import gzip_accepted

from . import _native
from .values import RustValue, install, set_worker_id

__all__ = [
    "MetricsFileWarning",
    "RustValue",
    "install",
    "set_worker_id",
    "MultiProcessCollector",
    "generate_latest",
    "make_asgi_app",
    "make_wsgi_app",
    "mark_process_dead",
]

class MetricsFileWarning(RuntimeWarning):
    """A metrics file was skipped (corrupt, unreadable, not a regular file);
    the message names it. The scrape went on without it."""


def _warn(messages):
    for message in messages:
        warnings.warn(message, MetricsFileWarning, stacklevel=3)


class MultiProcessCollector(_pc_multiprocess.MultiProcessCollector):
    """Drop-in for ``prometheus_client.multiprocess.MultiProcessCollector``.

    Same constructor and directory rules (``path``, else
    ``PROMETHEUS_MULTIPROC_DIR``, else the deprecated
    ``prometheus_multiproc_dir`` with a ``DeprecationWarning``; ``ValueError``
    if it is not a directory), since they are inherited. :meth:`collect` reads
    and merges the directory in Rust and returns ``Metric`` objects equal to
    prometheus_client's. The static ``merge(files, accumulate)`` helper is
    prometheus_client's own, inherited unchanged.
    """

    def collect(self):
        metrics, messages = _native.collect(self._path)
        _warn(messages)
        return metrics


def _resolve_path(path):
    """prometheus_client's rules for the directory (see MultiProcessCollector)."""
    if path is None:
        if ('prometheus_multiproc_dir' in os.environ
                and 'PROMETHEUS_MULTIPROC_DIR' not in os.environ):
            os.environ['PROMETHEUS_MULTIPROC_DIR'] = os.environ['prometheus_multiproc_dir']
            warnings.warn(
                "prometheus_multiproc_dir variable has been deprecated in favor"
                " of the upper case naming PROMETHEUS_MULTIPROC_DIR",
                DeprecationWarning, stacklevel=3)
        path = os.environ.get('PROMETHEUS_MULTIPROC_DIR')
    if not path or not os.path.isdir(path):
        raise ValueError('env PROMETHEUS_MULTIPROC_DIR is not set or not a directory')
    return path


def _generate(path, accept_header, query=None):
    """Body and content type from Rust: the library's negotiation (that of
    prometheus_client's ``choose_encoder``, name escaping included) and, with
    a query string holding ``name[]``, the library's name filter."""
    body, content_type, messages = _native.render(path, accept_header, query)
    _warn(messages)
    return body, content_type


def generate_latest(path=None, accept_header=None):
    """The exposition of the metrics directory, as ``(body, content_type)``.

    The same bytes and content type as prometheus_client's
    ``choose_encoder(accept_header)`` applied to a registry holding a
    ``MultiProcessCollector`` for the same directory. ``path`` defaults to
    the environment, as for :class:`MultiProcessCollector`.
    """
    return _generate(_resolve_path(path), accept_header)


def _bake_output(path, accept_header, accept_encoding_header, query, disable_compression):
    """prometheus_client's ``_bake_output``, with the body from Rust."""
    output, content_type = _generate(path, accept_header, query)
    headers = [('Content-Type', content_type)]
    if not disable_compression and gzip_accepted(accept_encoding_header):
        output = gzip.compress(output)
        headers.append(('Content-Encoding', 'gzip'))
    return '200 OK', headers, output


def make_wsgi_app(path=None, disable_compression=False):
    """A WSGI app serving the metrics directory, as prometheus_client's
    ``make_wsgi_app(registry)`` serves a registry with a
    ``MultiProcessCollector`` (same methods, paths, negotiation and gzip),
    with the body from :func:`generate_latest`. The ``name[]`` filter works
    as in a ``CollectorRegistry(support_collectors_without_names=True)``."""
    path = _resolve_path(path)

    def prometheus_app(environ, start_response):
        method = environ['REQUEST_METHOD']
        if method == 'OPTIONS':
            status, headers, output = '200 OK', [('Allow', 'OPTIONS,GET')], b''
        elif method != 'GET':
            status = '405 Method Not Allowed'
            headers = [('Allow', 'OPTIONS,GET')]
            output = f'# HTTP {status}: {method}; use OPTIONS or GET\n'.encode()
        elif environ['PATH_INFO'] == '/favicon.ico':
            status, headers, output = '200 OK', [], b''
        else:
            status, headers, output = _bake_output(
                path, environ.get('HTTP_ACCEPT'), environ.get('HTTP_ACCEPT_ENCODING'),
                environ.get('QUERY_STRING', ''), disable_compression)
        start_response(status, headers)
        return [output]

    return prometheus_app


def _header(scope, name):
    return ",".join(
        value.decode("utf8") for (key, value) in scope.get('headers')
        if key.decode("utf8").lower() == name)


def make_asgi_app(path=None, disable_compression=False):
    """An ASGI app serving the metrics directory, as prometheus_client's
    ``make_asgi_app(registry)`` does; the directory is read on a worker
    thread (the GIL released), so the event loop is not blocked."""
    path = _resolve_path(path)

    async def prometheus_app(scope, receive, send):
        if scope.get("type") != "http":
            raise ValueError(f"prometheus_multiproc: unsupported ASGI scope {scope.get('type')!r}")
        query = scope.get('query_string', b'').decode("utf8")
        status, headers, output = await asyncio.get_running_loop().run_in_executor(
            None, _bake_output, path, _header(scope, 'accept'),
            _header(scope, 'accept-encoding'), query, disable_compression)
        payload = await receive()
        if payload.get("type") == "http.request":
            await send({
                "type": "http.response.start",
                "status": int(status.split(' ')[0]),
                "headers": [tuple(x.encode('utf8') for x in h) for h in headers],
            })
            await send({"type": "http.response.body", "body": output})

    return prometheus_app


def mark_process_dead(pid, path=None):
    """Removes the live-gauge files (``gauge_live*_{pid}.db``) of a dead
    process, as prometheus_client's ``mark_process_dead`` does; ``path``
    defaults to ``PROMETHEUS_MULTIPROC_DIR`` (or the deprecated lower-case
    name). Raises ``ValueError`` if no directory is given or set, or if it
    does not exist (prometheus_client silently does nothing then)."""
    if path is None:
        path = os.environ.get('PROMETHEUS_MULTIPROC_DIR',
                              os.environ.get('prometheus_multiproc_dir'))
    if path is None:
        raise ValueError('env PROMETHEUS_MULTIPROC_DIR is not set')
    _native.mark_process_dead(str(pid), path)
