//! Accept negotiation, name escaping and `name[]`, compared with the real prometheus_client 0.26 (`choose_encoder`) header by header.

use prometheus_multiproc::MultiProcessCollector;
use prometheus_multiproc::encoding::negotiate;
use prometheus_multiproc::integrations::axum::MetricsEndpoint;
use prometheus_multiproc::integrations::render_request;
use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
use serde_json::{Value, json};

use crate::accept_headers::{HEADERS, expected, python_answers};
use crate::common::{Dir, http_request, run_py};

/// Families of every kind with names inside and outside the legacy sets.
fn families() -> Vec<Family> {
    let route = [("rou.te", "/a"), ("code", "200")];
    vec![
        Family::new(
            "http.requests",
            "Requests \"x\" \\ and\nnewline.",
            FamilyKind::Counter,
            vec![
                Sample::new("http.requests_total", &route, 3.0),
                Sample::new("http.requests_created", &route, 1.7e9),
            ],
        ),
        Family::new(
            "1st",
            "Starts with a digit.",
            FamilyKind::Gauge,
            vec![
                Sample::new("1st", &[], 1.0),
                Sample::new("1st", &[("ü", "v\"")], 2.5),
            ],
        ),
        Family::new(
            "lat:x",
            "A colon.",
            FamilyKind::Histogram,
            vec![
                Sample::new("lat:x_bucket", &[("le", "1.0"), ("a.b", "x")], 1.0),
                Sample::new("lat:x_bucket", &[("le", "+Inf"), ("a.b", "x")], 2.0),
                Sample::new("lat:x_sum", &[("a.b", "x")], 1e7),
                Sample::new("lat:x_count", &[("a.b", "x")], 2.0),
            ],
        ),
        Family::new(
            "rpc_seconds",
            "Legacy names, reserved-looking label.",
            FamilyKind::Summary,
            vec![
                Sample::new("rpc_seconds_sum", &[("__x", "1"), ("sta:tus", "ok")], 0.25),
                Sample::new("rpc_seconds_count", &[("__x", "1"), ("sta:tus", "ok")], 4.0),
            ],
        ),
        Family::new(
            "build.info",
            "Info.",
            FamilyKind::Info,
            vec![Sample::new("build.info_info", &[("version.x", "1")], 1.0)],
        ),
        Family::new(
            "state",
            "A state set.",
            FamilyKind::StateSet,
            vec![Sample::new("state", &[("state", "a"), ("1x", "b")], 1.0)],
        ),
        Family::new(
            "temp.°c\n",
            "Non-ASCII and a final newline.",
            FamilyKind::Gauge,
            vec![Sample::new("temp.°c\n", &[("😀", "")], -0.5)],
        ),
        Family::new(
            "abc\n",
            "A legacy name to Python's regex.",
            FamilyKind::Gauge,
            vec![Sample::new("abc\n", &[], 1.0)],
        ),
    ]
}

fn families_json(families: &[Family]) -> Value {
    families
        .iter()
        .map(|f| {
            let samples: Vec<Value> = f
                .samples
                .iter()
                .map(|s| {
                    let labels: Vec<Value> =
                        s.labels.iter().map(|(k, v)| json!([&**k, &**v])).collect();
                    json!({"name": &*s.name, "labels": labels, "value": s.value})
                })
                .collect();
            json!({"name": f.name, "help": f.help, "type": f.kind.as_str(), "samples": samples})
        })
        .collect()
}

#[test]
fn every_header_and_escaping_as_prometheus_client_answers() {
    let fams = families();
    let answers = python_answers(&["families"], json!({ "families": families_json(&fams) }));
    let mut failed = Vec::new();
    for (header, answer) in HEADERS.iter().zip(&answers) {
        match (negotiate(*header), expected(answer)) {
            (Ok(n), Ok((content_type, body))) => {
                assert_eq!(n.content_type(), content_type, "Accept: {header:?}");
                let mut out = Vec::new();
                n.encode(&fams, &mut out);
                assert_eq!(String::from_utf8(out).unwrap(), body, "Accept: {header:?}");
            }
            (Err(e), Err(_)) => failed.push(e.version().to_string()),
            (ours, python) => panic!("Accept: {header:?}: we {ours:?}, Python {python:?}"),
        }
    }
    assert_eq!(
        failed,
        ["1.x", "abc", "1.0.0-rc1", "\u{1f}1.0.0", "=1.0.0"],
        "the uncomparable versions"
    );
}

/// Serves `collector` with the axum endpoint on a loopback port, on a
/// thread of its own for the rest of the test process; returns the address.
fn serve_axum(collector: MultiProcessCollector) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = MetricsEndpoint::new(collector).router::<()>("/metrics");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

/// True when `header` goes through HTTP unchanged: visible ASCII and
/// inner spaces only (HTTP trims the ends and refuses control characters).
fn http_safe(header: &str) -> bool {
    header.trim() == header && header.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Checks the axum endpoint's answer to `header` at `path` against
/// Python's: status 200, `Content-Type` and body, or 500.
fn check_http(
    addr: &str,
    path: &str,
    header: Option<&str>,
    want: &Result<(String, String), String>,
) {
    let headers: Vec<(&str, &str)> = header.map(|h| ("Accept", h)).into_iter().collect();
    let r = http_request(addr, "GET", path, &headers).unwrap();
    match want {
        Ok((content_type, body)) => {
            assert_eq!(r.status, 200, "Accept: {header:?}: {}", r.text());
            assert_eq!(
                r.header("content-type"),
                Some(content_type.as_str()),
                "{header:?}"
            );
            assert_eq!(r.text(), *body, "Accept: {header:?} {path}");
        }
        Err(_) => assert_eq!(r.status, 500, "Accept: {header:?}"),
    }
}

/// Directories written by real prometheus_client workers with UTF-8 metric
/// and label names: the library helper and the axum endpoint answer every
/// header as `choose_encoder` does over a
/// `MultiProcessCollector` on the same directory. (Each directory holds
/// one file kind whose families were created in name order, so the
/// comparison of whole bodies does not depend on the output order.)
#[test]
fn utf8_names_from_python_workers_as_choose_encoder_answers() {
    for scenario in ["counters", "gauges"] {
        let d = Dir::new();
        let dir = d.path().to_str().unwrap();
        run_py("py_write_utf8.py", &[dir, scenario]);
        let answers = python_answers(&["dir", dir], json!({ "names": null }));
        let collector = MultiProcessCollector::new(d.path()).unwrap();
        let addr = serve_axum(collector.clone());
        let mut utf8_bodies = 0;
        for (header, answer) in HEADERS.iter().zip(&answers) {
            let want = expected(answer);
            match (render_request(&collector, *header, None), &want) {
                (Ok(r), Ok((content_type, body))) => {
                    assert_eq!(
                        r.content_type, *content_type,
                        "{scenario}: Accept: {header:?}"
                    );
                    assert_eq!(String::from_utf8(r.body).unwrap(), *body, "{header:?}");
                    utf8_bodies += usize::from(body.contains("{\"http.requests"));
                }
                (Err(e), Err(_)) => assert!(e.is_negotiation(), "{e}"),
                (ours, python) => panic!("Accept: {header:?}: we {ours:?}, Python {python:?}"),
            }
            if header.is_none_or(http_safe) {
                check_http(&addr, "/metrics", *header, &want);
            }
        }
        assert!(
            utf8_bodies >= 5,
            "{scenario}: quoted UTF-8 names were tested"
        );
    }
}

/// `?name[]=` keeps the samples so named, as prometheus_client's
/// `Metric._restricted_metric` keeps them, for every header.
#[test]
fn name_filter_as_restricted_metric() {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    run_py("py_write_utf8.py", &[dir, "counters"]);
    let collector = MultiProcessCollector::new(d.path()).unwrap();
    let addr = serve_axum(collector.clone());
    for (query, names) in [
        (
            "name[]=http.requests_total&name%5B%5D=lat%3Aency_total&other=1",
            &["http.requests_total", "lat:ency_total"][..],
        ),
        ("name[]=temp.%C2%B0c_total", &["temp.°c_total"][..]),
        ("name[]=nope", &["nope"][..]),
        ("name[]=http.requests", &["http.requests"][..]),
    ] {
        let answers = python_answers(&["dir", dir], json!({ "names": names }));
        let mut kept = 0;
        for (header, answer) in HEADERS.iter().zip(&answers) {
            let want = expected(answer);
            match (render_request(&collector, *header, Some(query)), &want) {
                (Ok(r), Ok((_, body))) => {
                    assert_eq!(
                        String::from_utf8(r.body).unwrap(),
                        *body,
                        "{query} {header:?}"
                    );
                    kept += body.matches(" 7.0\n").count() + body.matches(" 13.0\n").count();
                }
                (Err(e), Err(_)) => assert!(e.is_negotiation(), "{e}"),
                (ours, python) => panic!("{query} {header:?}: we {ours:?}, Python {python:?}"),
            }
            if header.is_none_or(http_safe) {
                check_http(&addr, &format!("/metrics?{query}"), *header, &want);
            }
        }
        let expect_some = names[0].ends_with("_total") && names[0] != "nope";
        assert_eq!(kept > 0, expect_some, "{query}");
    }
}

/// The writer takes UTF-8 metric and label names as prometheus_client 0.26
/// does; its keys are in Python's canonical form, and Python merges and
/// writes the directory exactly as we do under every header.
#[test]
fn utf8_names_written_by_rust_as_python_reads_them() {
    use prometheus_multiproc::{CounterVec, GaugeMode, GaugeVec};
    let d = Dir::new();
    let w = d.writer();
    let labels = ["rou.te", "ü", "1x"];
    let c = CounterVec::new_in(
        &w,
        prometheus::Opts::new("http.requests", "Requests."),
        &labels,
    )
    .unwrap();
    let g = GaugeVec::new_in(
        &w,
        prometheus::Opts::new("temp.°c 😀", "T."),
        &labels,
        GaugeMode::Sum,
    )
    .unwrap();
    for _ in 0..2 {
        crate::common::in_worker(|| {
            c.with_label_values(&["/a", "q\"", "x"]).inc();
            g.with_label_values(&["/a", "q\"", "x"]).set(2.5);
        });
    }
    let report = run_py("py_check_keys.py", &[d.path().to_str().unwrap()]);
    assert!(report.contains("\"mismatches\": []"), "{report}");

    // One family at a time: the two file kinds may be listed in any order,
    // and the order of families is branch `order`'s subject.
    let dir = d.path().to_str().unwrap();
    let collector = MultiProcessCollector::new(d.path()).unwrap();
    for (name, query) in [
        ("http.requests_total", "name[]=http.requests_total"),
        ("temp.°c 😀", "name[]=temp.%C2%B0c+%F0%9F%98%80"),
    ] {
        let answers = python_answers(&["dir", dir], json!({ "names": [name] }));
        for (header, answer) in HEADERS.iter().zip(&answers) {
            match (
                render_request(&collector, *header, Some(query)),
                expected(answer),
            ) {
                (Ok(r), Ok((content_type, body))) => {
                    assert_eq!(r.content_type, content_type);
                    assert!(body.contains(" 2.0\n") || body.contains(" 5.0\n"), "{body}");
                    assert_eq!(String::from_utf8(r.body).unwrap(), body, "{header:?}");
                }
                (Err(e), Err(_)) => assert!(e.is_negotiation()),
                (ours, python) => panic!("{header:?}: we {ours:?}, Python {python:?}"),
            }
        }
    }
    let prometheus3 = HEADERS[6];
    let query = Some("name[]=http.requests_total");
    let r = render_request(&collector, prometheus3, query).unwrap();
    assert!(String::from_utf8(r.body).unwrap().contains(
        "{\"http.requests_total\",\"1x\"=\"x\",\"rou.te\"=\"/a\",\"ü\"=\"q\\\"\"} 2.0\n"
    ));
}
