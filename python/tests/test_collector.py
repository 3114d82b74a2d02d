"""The drop-in collector and the bytes path against prometheus_client 0.26's
own collector, on directories written by the real prometheus_client and by
the Rust writer."""

import os
import warnings

import pytest

import prometheus_multiproc
from helpers import (
    ACCEPT_HEADERS, by_name, dropin_registry, expose, generate_python,
    generate_rust, merge_into, python_registry, sorted_samples,
)

@pytest.fixture(scope="module")
def python_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("python")
    generate_python(d)
    return d


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory):
    """prometheus_client workers' files and Rust workers' files together."""
    d = tmp_path_factory.mktemp("mixed")
    py = tmp_path_factory.mktemp("mixed-python")
    rust = tmp_path_factory.mktemp("mixed-rust")
    generate_python(py, workers=2)
    generate_rust(rust, workers=2)
    merge_into(d, py, 0)
    merge_into(d, rust, 10_000_000)
    kinds = {f.name.split("_")[0] for f in d.iterdir()}
    assert {"counter", "histogram", "gauge", "summary"} <= kinds
    return d


@pytest.fixture(params=["python_dir", "mixed_dir"])
def directory(request):
    return request.getfixturevalue(request.param)


def test_dropin_metrics_equal_pythons_up_to_sample_order(directory):
    ours = by_name(dropin_registry(directory).collect())
    theirs = by_name(python_registry(directory).collect())
    assert ours.keys() == theirs.keys()
    assert len(ours) >= 10
    for name, metric in theirs.items():
        mine = ours[name]
        assert (mine.name, mine.documentation, mine.type, mine.unit) == \
            (metric.name, metric.documentation, metric.type, metric.unit)
        assert sorted_samples(mine) == sorted_samples(metric), name
        assert getattr(mine, "_multiprocess_mode", None) == \
            getattr(metric, "_multiprocess_mode", None)


def test_dropin_metrics_equal_pythons(python_dir):
    ours = by_name(dropin_registry(python_dir).collect())
    theirs = by_name(python_registry(python_dir).collect())
    assert ours == theirs


def test_label_dicts_in_pythons_insertion_order(python_dir):
    theirs = {(s.name, tuple(sorted(s.labels.items()))): list(s.labels)
              for m in python_registry(python_dir).collect() for s in m.samples}
    ours = {(s.name, tuple(sorted(s.labels.items()))): list(s.labels)
            for m in dropin_registry(python_dir).collect() for s in m.samples}
    assert ours == theirs


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
def test_bytes_path_equals_prometheus_client_over_dropin(directory, accept):
    body, content_type = prometheus_multiproc.generate_latest(str(directory), accept)
    assert (body, content_type) == expose(dropin_registry(directory), accept)
    assert body.count(b"\n") > 100


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text"])
def test_bytes_path_lines_equal_pythons(directory, accept):
    body, content_type = prometheus_multiproc.generate_latest(str(directory), accept)
    theirs, their_type = expose(python_registry(directory), accept)
    assert content_type == their_type
    assert sorted(body.splitlines()) == sorted(theirs.splitlines())


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text"])
def test_bytes_path_equals_pythons(python_dir, accept):
    assert prometheus_multiproc.generate_latest(str(python_dir), accept) == \
        expose(python_registry(python_dir), accept)


def test_corrupt_file_is_skipped_with_a_warning(tmp_path):
    generate_python(tmp_path, workers=1, scale=0.005)
    good = prometheus_multiproc.generate_latest(str(tmp_path))
    bad = tmp_path / "counter_999999.db"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\xff" * 24)
    for scrape in (lambda: prometheus_multiproc.generate_latest(str(tmp_path)),
                   lambda: list(dropin_registry(tmp_path).collect())):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = scrape()
        relevant = [w for w in caught
                    if issubclass(w.category, prometheus_multiproc.MetricsFileWarning)]
        assert len(relevant) == 1, [str(w.message) for w in caught]
        assert str(bad) in str(relevant[0].message)
        assert result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert prometheus_multiproc.generate_latest(str(tmp_path)) == good


def test_errors_are_python_exceptions(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    with pytest.raises(ValueError):
        prometheus_multiproc.generate_latest()
    with pytest.raises(ValueError):
        prometheus_multiproc.MultiProcessCollector(None)
    with pytest.raises(ValueError):
        prometheus_multiproc.mark_process_dead(1)
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError):
        prometheus_multiproc.generate_latest(str(f))
    d = tmp_path / "gone"
    d.mkdir()
    collector = prometheus_multiproc.MultiProcessCollector(None, path=str(d))
    d.rmdir()
    with pytest.raises(ValueError, match="gone"):
        collector.collect()
    with pytest.raises(ValueError, match="invalid process id"):
        prometheus_multiproc.mark_process_dead("../x", str(tmp_path))


def test_deprecated_lower_case_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("prometheus_multiproc_dir", str(tmp_path))
    generate_python(tmp_path, workers=1, scale=0.005)
    with pytest.warns(DeprecationWarning, match="PROMETHEUS_MULTIPROC_DIR"):
        body, _ = prometheus_multiproc.generate_latest()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert body == prometheus_multiproc.generate_latest(str(tmp_path))[0]
    assert b"# TYPE" in body


def test_mark_process_dead_removes_live_gauges_only(tmp_path, monkeypatch):
    names = ["gauge_livesum_42.db", "gauge_liveall_42.db", "gauge_livemostrecent_42.db",
             "gauge_sum_42.db", "counter_42.db", "gauge_livesum_43.db"]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    prometheus_multiproc.mark_process_dead(42)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["counter_42.db", "gauge_livesum_43.db", "gauge_sum_42.db"]
    prometheus_multiproc.mark_process_dead("43", str(tmp_path))
    assert not (tmp_path / "gauge_livesum_43.db").exists()
