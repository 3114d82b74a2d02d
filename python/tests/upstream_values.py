"""pytest plugin: prometheus_client 0.26's own tests/test_multiprocess.py with
prometheus_multiproc's value class in place of prometheus_client's writer.

Loaded with ``-p upstream_values`` (python/tests on PYTHONPATH), before the
test module imports ``MultiProcessValue`` from ``prometheus_client.values``:
it is replaced (and ``get_value_class`` returns ours), so every metric the tests
create writes through the library (``RustValue``). The library names a
process's files by one identity (its pid, or the worker id set once), so
``MultiProcessValue(process_identifier)`` cannot give each metric the
identity its ``process_identifier`` returns; the tests that rely on that are
listed in EXPECTED_FAILURES, marked strict xfail (they must fail; one that
starts passing fails the run, so the list cannot go stale).
"""

import sys

import pytest
from prometheus_client import values

import prometheus_multiproc



def multiprocess_value(process_identifier=None):
    """Stands in for ``MultiProcessValue``; ``get_value_class`` calls it
    too (it looks the name up in its module)."""
    return prometheus_multiproc.RustValue


values.MultiProcessValue = multiprocess_value

# Each creates metrics under two fake process identities in one process
# (MultiProcessValue(lambda: 123), then lambda: 456, or a `pid` variable
# switched between writes) and expects two files: ours writes both into
# this process's one file, where the second metric continues the first's
# value (same key) instead of being a second process's.
IDENTITY = ("switches MultiProcessValue(process_identifier) per metric within one "
            "process; the library names all of a process's files by one identity")
EXPECTED_FAILURES = {name: IDENTITY for name in (
    # Two gauges under pids 123 and 456 become one value; `pid` labels and
    # per-process min/max/sum/liveness cannot be told apart.
    "test_gauge_all", "test_gauge_liveall", "test_gauge_min", "test_gauge_livemin",
    "test_gauge_livemax", "test_gauge_sum", "test_gauge_livesum",
    "test_gauge_livemostrecent",
    # Expect a file (or a `pid` label) named after the fake identifier 0/1.
    "test_counter_across_forks", "test_initialization_detects_pid_change",
    "test_collect",
)}


def pytest_collection_modifyitems(items):
    for item in items:
        reason = EXPECTED_FAILURES.get(item.name)
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def pytest_collection_finish(session):
    modules = [m for name, m in sys.modules.items() if name.endswith("test_multiprocess")]
    if not modules:
        raise pytest.UsageError("upstream_values: test_multiprocess was not collected")
    for module in modules:
        if module.MultiProcessValue is not multiprocess_value:
            raise pytest.UsageError(
                f"upstream_values: {module.__name__} does not use prometheus_multiproc")
