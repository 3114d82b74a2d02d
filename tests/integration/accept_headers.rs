//! The Accept headers of the negotiation tests, and prometheus_client 0.26's answers to them (`tests/python/py_negotiate.py`).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{python, repo};

/// Accept headers: what Prometheus 2 and 3 send by default and with other
/// `scrape_protocols` or escaping schemes, every version and escaping
/// variant, and malformed values. `None`: no header.
pub const HEADERS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("*/*"),
    // Prometheus 2.42 (before `scrape_protocols`).
    Some(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
         text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ),
    // Prometheus 2.49 to 2.55, default `scrape_protocols`.
    Some(
        "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,\
         text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ),
    // Prometheus 2.x with native histograms (protobuf first).
    Some(
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,\
         application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,\
         text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    ),
    // Prometheus 3.0: UTF-8 names, `escaping=allow-utf-8` on every protocol.
    Some(
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
         application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.5,\
         text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
         text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2",
    ),
    // Later Prometheus 3: `escaping=` on the 1.0.0 protocols only, with
    // each `metric_name_escaping_scheme`.
    Some(
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
         application/openmetrics-text;version=0.0.1;q=0.5,\
         text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ),
    Some(
        "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,\
         application/openmetrics-text;version=0.0.1;q=0.5,\
         text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ),
    Some(
        "application/openmetrics-text;version=1.0.0;escaping=dots;q=0.6,\
         application/openmetrics-text;version=0.0.1;q=0.5,\
         text/plain;version=1.0.0;escaping=dots;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ),
    Some(
        "application/openmetrics-text;version=1.0.0;escaping=values;q=0.6,\
         application/openmetrics-text;version=0.0.1;q=0.5,\
         text/plain;version=1.0.0;escaping=values;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ),
    // Prometheus 3, protobuf first, and text 1.0.0 alone.
    Some(
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,\
         application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
         application/openmetrics-text;version=0.0.1;q=0.5,\
         text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ),
    Some("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5"),
    // Each format, version and escaping.
    Some("text/plain"),
    Some("text/plain;version=0.0.4"),
    Some("text/plain; version=0.0.4; charset=utf-8"),
    Some("text/plain;version=1.0.0"),
    Some("text/plain;version=1.0.0;escaping=allow-utf-8"),
    Some("text/plain;version=1.0.0;escaping=underscores"),
    Some("text/plain;version=1.0.0;escaping=dots"),
    Some("text/plain;version=1.0.0;escaping=values"),
    Some("text/plain;version=1.0.0;escaping=bogus"),
    Some("text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
    Some("application/openmetrics-text"),
    Some("application/openmetrics-text;version=0.0.1"),
    Some("application/openmetrics-text;version=0.0.1;escaping=allow-utf-8"),
    Some("application/openmetrics-text;version=1.0.0"),
    Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"),
    Some("application/openmetrics-text;version=1.0.0;escaping=underscores"),
    Some("application/openmetrics-text;version=1.0.0;escaping=dots"),
    Some("application/openmetrics-text;version=1.0.0;escaping=values"),
    Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
    Some("application/openmetrics-text;version=2.0.0;escaping=allow-utf-8"),
    Some("application/openmetrics-text;escaping=allow-utf-8"),
    // q-values play no part; the first qualifying entry wins.
    Some("text/plain;version=1.0.0;q=0.1,application/openmetrics-text;version=1.0.0;q=0.9"),
    Some("application/openmetrics-text;q=0"),
    Some("application/openmetrics-text;version=1.0.0;q=0,text/plain"),
    Some("text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;escaping=dots"),
    Some("application/openmetrics-text;version=0.0.1,text/plain;version=1.0.0;escaping=values"),
    // Versions as Python compares them.
    Some("application/openmetrics-text;version=1.0"),
    Some("application/openmetrics-text;version="),
    Some("application/openmetrics-text;version=2"),
    Some("application/openmetrics-text;version=2.x"),
    Some("application/openmetrics-text;version=1.0.0.1;escaping=dots"),
    Some("application/openmetrics-text;version=01.0_0.0"),
    Some("application/openmetrics-text;version= 1.0.0;escaping=values"),
    Some("application/openmetrics-text;version=+1.-0.0"),
    Some("text/plain;version=1_0"),
    Some("text/plain;version=0.x"),
    // Versions Python cannot compare: prometheus_client fails.
    Some("application/openmetrics-text;version=1.x"),
    Some("text/plain;version=abc"),
    Some("text/plain;version=1.0.0-rc1"),
    Some("text/plain;version=\u{1f}1.0.0"),
    // Case, whitespace and malformed parameters.
    Some("Application/OpenMetrics-Text;version=1.0.0"),
    Some("TEXT/PLAIN;version=1.0.0"),
    Some("application/openmetrics-text;VERSION=1.0.0;escaping=dots"),
    Some("application/openmetrics-text;version=1.0.0;Escaping=allow-utf-8"),
    Some("application/openmetrics-text;version=1.0.0;escaping=Allow-UTF-8"),
    Some(" application/openmetrics-text ; version=1.0.0 ; escaping=allow-utf-8 "),
    Some("application/openmetrics-text;version = 1.0.0"),
    Some("\u{1c}application/openmetrics-text\u{1d};\u{1e}version=1.0.0\u{1f};escaping=dots"),
    Some("text/plain;version=1.0.0;escaping=dots;escaping=values"),
    Some("text/plain;escaping=values;version=1.0.0"),
    Some("text/plain;version==1.0.0"),
    Some("text/plain;version;escaping"),
    Some(",,;;=,"),
    Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    Some("application/json"),
];

/// prometheus_client's answer to each of `HEADERS`: runs
/// `tests/python/py_negotiate.py` with `args` and `request` on stdin.
pub fn python_answers(args: &[&str], mut request: Value) -> Vec<Value> {
    request["headers"] = json!(HEADERS);
    let mut child = Command::new(python())
        .arg(repo().join("tests/python/py_negotiate.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let input = serde_json::to_vec(&request).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "py_negotiate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers.len(), HEADERS.len());
    answers
}

/// What Python answered: `Ok((content type, body))` or `Err(message)`.
pub fn expected(answer: &Value) -> Result<(String, String), String> {
    match answer.get("error") {
        Some(e) => Err(e.as_str().unwrap().to_string()),
        None => Ok((
            answer["content_type"].as_str().unwrap().to_string(),
            answer["body"].as_str().unwrap().to_string(),
        )),
    }
}
