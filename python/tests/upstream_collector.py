"""pytest plugin: prometheus_client 0.26's own tests/test_multiprocess.py, run
unmodified with prometheus_multiproc's collector and mark_process_dead in
place of prometheus_client's.

Loaded with ``-p upstream_collector`` (python/tests on PYTHONPATH), so the
swap happens before the test module runs ``from prometheus_client.multiprocess
import mark_process_dead, MultiProcessCollector``. After collection, the
plugin checks that the test module really holds ours.
"""

import sys

import pytest
import prometheus_client.multiprocess

import prometheus_multiproc

prometheus_client.multiprocess.MultiProcessCollector = prometheus_multiproc.MultiProcessCollector
prometheus_client.multiprocess.mark_process_dead = prometheus_multiproc.mark_process_dead


def pytest_collection_finish(session):
    modules = [m for name, m in sys.modules.items() if name.endswith("test_multiprocess")]
    if not modules:
        raise pytest.UsageError("upstream_collector: test_multiprocess was not collected")
    for module in modules:
        if (module.MultiProcessCollector is not prometheus_multiproc.MultiProcessCollector
                or module.mark_process_dead is not prometheus_multiproc.mark_process_dead):
            raise pytest.UsageError(
                f"upstream_collector: {module.__name__} does not use prometheus_multiproc")
