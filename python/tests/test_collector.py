"""The drop-in collector and the bytes path against prometheus_client 0.26's
own collector, on directories written by the real prometheus_client and by
the Rust writer."""

import os
import warnings

import pytest

import prometheus_multiproc
from helpers import (
    ACCEPT_HEADERS, answer, by_name, dropin_registry, expose, generate_python,
    generate_rust, generate_utf8, merge_into, python_registry, sorted_samples,
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


@pytest.fixture(scope="module")
def utf8_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("utf8")
    generate_utf8(d)
    return d


@pytest.fixture(params=["python_dir", "mixed_dir", "utf8_dir"])
def any_directory(request):
    return request.getfixturevalue(request.param)


def test_bytes_path_equals_prometheus_client_for_every_accept_header(any_directory):
    """The bytes path (the library's negotiation, escaping and encoders) and
    prometheus_client's choose_encoder over its own MultiProcessCollector:
    the same body and content type, or both raise TypeError."""
    escaped = set()
    for accept in ACCEPT_HEADERS:
        ours = answer(lambda: prometheus_multiproc.generate_latest(str(any_directory), accept))
        theirs = answer(lambda: expose(python_registry(any_directory), accept))
        assert ours == theirs, accept
        if isinstance(ours, tuple):
            assert ours[0].count(b"\n") > 10, accept
            escaped.add(ours[0])
    # The headers above really ask for different encodings of this directory.
    assert len(escaped) >= (6 if any_directory.name.startswith("utf8") else 3)


def test_utf8_names_are_escaped_differently_per_scheme(utf8_dir):
    bodies = {e: prometheus_multiproc.generate_latest(
        str(utf8_dir), f"text/plain;version=1.0.0;escaping={e}")[0]
        for e in ("allow-utf-8", "underscores", "dots", "values")}
    assert b'{"http.requests_total"' in bodies["allow-utf-8"]
    assert b"http_dot_requests__total{" in bodies["dots"]
    assert b"U__http_2e_requests__total{U___31_x=" in bodies["values"]
    assert b"http_requests_total{_x=" in bodies["underscores"]


def test_accept_header_python_cannot_compare_raises_type_error(python_dir):
    with pytest.raises(TypeError, match="1.x"):
        prometheus_multiproc.generate_latest(
            str(python_dir), "application/openmetrics-text;version=1.x")


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


def test_bytes_path_uses_no_python_objects(python_dir, monkeypatch):
    """Every Accept header and `name[]` are served by Rust alone: with the
    drop-in collector and prometheus_client's encoders broken, the bytes
    path and the WSGI app still answer as before. (Until the library did the
    escaping, these headers fell back to prometheus_client's encoder over
    the drop-in collector.)"""
    app = prometheus_multiproc.make_wsgi_app(str(python_dir))

    def wsgi(accept, query):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": query}
        if accept is not None:
            environ["HTTP_ACCEPT"] = accept
        return b"".join(app(environ, lambda status, headers: None))

    query = "name[]=errors_total&name[]=http_request_duration_seconds_bucket"
    before = {a: (answer(lambda: prometheus_multiproc.generate_latest(str(python_dir), a)),
                  answer(lambda: wsgi(a, query))) for a in ACCEPT_HEADERS}

    def broken(*args, **kwargs):
        raise AssertionError("Python objects used")
    import prometheus_client.exposition
    import prometheus_client.openmetrics.exposition
    monkeypatch.setattr(prometheus_multiproc.MultiProcessCollector, "collect", broken)
    monkeypatch.setattr(prometheus_client.exposition, "choose_encoder", broken)
    monkeypatch.setattr(prometheus_client.exposition, "generate_latest", broken)
    monkeypatch.setattr(prometheus_client.openmetrics.exposition, "generate_latest", broken)
    for accept in ACCEPT_HEADERS:
        ours = answer(lambda: prometheus_multiproc.generate_latest(str(python_dir), accept))
        assert ours == before[accept][0], accept
        assert answer(lambda: wsgi(accept, query)) == before[accept][1], accept
    filtered = before[None][1]
    assert b"errors_total" in filtered and b"_bucket{" in filtered
    assert b"_sum" not in filtered
