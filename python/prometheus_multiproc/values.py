"""A Rust-backed replacement for prometheus_client's ``MultiProcessValue``.

:func:`install` (before any metric is created) makes prometheus_client's
metrics store their values through the library's writer: the same files
(``counter_{pid}.db``, ``gauge_{mode}_{pid}.db``, ...), keys and semantics as
``MultiProcessValue``, so prometheus_client's own collector still reads them,
but

* increments are lock-free atomic operations on the mapped slot (no global
  lock, no ``getpid`` per call);
* file space is reserved before a file grows: a full disk raises
  ``OSError``, never ``SIGBUS``;
* each file is locked and marked while its process lives, so the collector
  leaves out a SIGKILLed worker's live gauges without ``mark_process_dead``;
* after ``fork`` (gunicorn ``preload_app``), a child's first write moves to
  its own files;
* :func:`set_worker_id` names a worker's files by a stable slot id instead
  of its pid, so restarted workers reuse files.
"""

import os
import warnings

from prometheus_client import values as _pc_values
from prometheus_client.mmap_dict import mmap_key

from . import _native

__all__ = ["RustValue", "install", "set_worker_id"]


def _directory():
    """prometheus_client's rules for the directory of a MultiProcessValue."""
    if 'prometheus_multiproc_dir' in os.environ and 'PROMETHEUS_MULTIPROC_DIR' not in os.environ:
        os.environ['PROMETHEUS_MULTIPROC_DIR'] = os.environ['prometheus_multiproc_dir']
        warnings.warn(
            "prometheus_multiproc_dir variable has been deprecated in favor of the"
            " upper case naming PROMETHEUS_MULTIPROC_DIR", DeprecationWarning, stacklevel=4)
    path = os.environ.get('PROMETHEUS_MULTIPROC_DIR')
    if not path:
        raise ValueError('env PROMETHEUS_MULTIPROC_DIR is not set')
    return path


class RustValue:
    """prometheus_client's value interface (``inc``, ``set``, ``get``,
    exemplars ignored as in multiprocess mode) over one entry of this
    process's metrics file."""

    _multiprocess = True

    def __init__(self, typ, metric_name, name, labelnames, labelvalues, help_text,
                 multiprocess_mode='', **kwargs):
        prefix = f'{typ}_{multiprocess_mode}' if typ == 'gauge' else typ
        key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        value = _native.Value(_directory(), prefix, key)
        # The native methods themselves: no Python frame per call.
        self.inc = value.inc
        self.set = value.set
        self.get = value.get

    def set_exemplar(self, exemplar):
        return

    def get_exemplar(self):
        return None


def install():
    """Makes metrics created from now on store their values through
    :class:`RustValue` (sets ``prometheus_client.values.ValueClass``).
    Call it before creating metrics, with ``PROMETHEUS_MULTIPROC_DIR`` set."""
    _pc_values.ValueClass = RustValue


def set_worker_id(worker_id):
    """Names this process's files by ``worker_id`` (1 to 64 characters of
    ``[A-Za-z0-9.-]``) instead of its pid, from its next new file on: call it
    in the worker after fork (gunicorn ``post_fork``), before its first
    metric write. Forked children use their pid again."""
    _native.set_worker_id(str(worker_id))
