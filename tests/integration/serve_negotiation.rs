//! `serve --web.disable-exporter-metrics` answers every Accept header with prometheus_client 0.26's status, `Content-Type` and body, byte for byte, on a directory written by real prometheus_client workers.

use crate::accept_headers::{HEADERS, expected, python_answers};
use crate::cli::Server;
use crate::common::{Dir, HttpResponse, assert_same_body, run_py};

/// A directory written by real prometheus_client workers: UTF-8 metric and
/// label names (`utf8`: py_write_utf8.py's "counters" or "gauges"; the two
/// use the same names, so they do not share a directory), then every metric
/// type and every gauge mode with ordinary names.
fn mixed_python_dir(utf8: &str) -> Dir {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    run_py("py_write_utf8.py", &[dir, utf8]);
    run_py("py_write.py", &[dir, "all"]);
    d
}

/// An Accept header httparse refuses (control characters): no HTTP client
/// can send it, so there is no scrape to compare.
fn unsendable(header: &str) -> bool {
    header.chars().any(|c| c.is_control() && c != '\t')
}

fn scrape(s: &Server, header: Option<&str>) -> HttpResponse {
    match header {
        Some(h) => s.get(&s.path, &[("Accept", h)]),
        None => s.get(&s.path, &[]),
    }
}

/// The "done when": for each header of the negotiation list
/// (Prometheus 2.x's and 3.x's defaults, every version and `escaping=`
/// variant, q-values, garbage), `serve` with its own families off answers
/// what prometheus_client's `choose_encoder` over a `MultiProcessCollector`
/// on the same directory answers: the same status, the same
/// `Content-Type`, the same body bytes (order included).
#[test]
fn serve_answers_every_accept_header_as_choose_encoder() {
    for utf8 in ["counters", "gauges"] {
        check_every_header(&mixed_python_dir(utf8));
    }
}

fn check_every_header(d: &Dir) {
    let dir = d.path().to_str().unwrap();
    let answers = python_answers(&["dir", dir], serde_json::json!({ "names": null }));
    let s = Server::start(d.path(), &["--web.disable-exporter-metrics"]);
    let mut compared = 0;
    for (header, answer) in HEADERS.iter().zip(&answers) {
        if header.is_some_and(unsendable) {
            // hyper refuses the request before serve sees it.
            assert_eq!(scrape(&s, *header).status, 400, "{header:?}");
            continue;
        }
        let r = scrape(&s, *header);
        match expected(answer) {
            Ok((content_type, body)) => {
                assert_eq!(r.status, 200, "{header:?}: {}", r.text());
                assert_eq!(
                    r.header("content-type"),
                    Some(content_type.as_str()),
                    "{header:?}"
                );
                let ours = r.text();
                assert_same_body(&ours, &body);
                // The UTF-8 names reached the output in some form.
                assert!(
                    ours.contains("requests") && ours.contains("livemostrecent"),
                    "{header:?}"
                );
                compared += 1;
            }
            // prometheus_client's handlers answer 500 when choose_encoder
            // raises.
            Err(e) => assert_eq!(r.status, 500, "{header:?}: Python: {e}"),
        }
    }
    assert!(compared > 50, "only {compared} bodies compared");
}
