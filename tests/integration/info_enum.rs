//! Info and Enum in multiprocess mode: forked workers write them, our collector merges them (one sample per label set in use; the most recent state wins), and prometheus_client's own collector still reads the directory without error.

use std::path::Path;

use prometheus::Opts;
use prometheus_multiproc::{Enum, EnumVec, Info, MultiProcessCollector};

use crate::common::{Dir, Held, py_samples, run_py, value_of};

fn text(dir: &Path, openmetrics: bool) -> String {
    let c = MultiProcessCollector::new(dir).unwrap();
    let mut out = Vec::new();
    let scrape = if openmetrics {
        c.encode_openmetrics(&mut out).unwrap()
    } else {
        c.encode_text(&mut out).unwrap()
    };
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    String::from_utf8(out).unwrap()
}

/// The lines starting with `prefix`, sorted (samples come in the order of
/// their first entries in directory listing order, as in prometheus_client,
/// which the interop tests check).
fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    lines.sort_unstable();
    lines
}

#[test]
fn info_reports_each_label_set_in_use_once() {
    let d = Dir::new();
    let w = d.writer();
    let app = Info::new_in(&w, "app", "Application.").unwrap();
    let workers: Vec<Held> = ["1.0", "1.0", "2.0"]
        .into_iter()
        .map(|v| {
            let app = app.clone();
            Held::spawn(move || {
                // Every worker first ran 0.9: replaced, so gone.
                app.info(&[("version", "0.9")]);
                app.info(&[("version", v)]);
            })
        })
        .collect();
    let t = text(d.path(), false);
    assert_eq!(
        lines_with(&t, "app_info"),
        [
            "app_info{version=\"1.0\"} 1.0",
            "app_info{version=\"2.0\"} 1.0"
        ],
        "{t}"
    );
    assert!(t.contains("# HELP app_info Application.\n# TYPE app_info gauge\n"));
    let om = text(d.path(), true);
    // The first label set is that of the first file listed.
    assert!(
        om.contains("# HELP app Application.\n# TYPE app info\napp_info{version=\""),
        "{om}"
    );
    assert!(om.contains("app_info{version=\"1.0\"} 1.0\n"), "{om}");

    // prometheus_client reads the same directory without error: it sums.
    let py = py_samples(d.path());
    assert_eq!(value_of(&py, "app_info", &[("version", "1.0")]), Some(2.0));
    assert_eq!(value_of(&py, "app_info", &[("version", "2.0")]), Some(1.0));
    assert_eq!(value_of(&py, "app_info", &[("version", "0.9")]), Some(0.0));
    assert!(py.iter().all(|s| s.typ == "info"));
    let py_text = run_py(
        "py_collect.py",
        &[d.path().to_str().unwrap(), "--format", "text"],
    );
    assert!(py_text.contains("# TYPE app_info gauge\n"), "{py_text}");
    run_py(
        "py_collect.py",
        &[d.path().to_str().unwrap(), "--format", "openmetrics"],
    );

    // Workers that exit take their label sets with them.
    let mut workers = workers.into_iter();
    workers.next().unwrap().stop();
    workers.next().unwrap().stop();
    let t = text(d.path(), false);
    assert_eq!(
        lines_with(&t, "app_info"),
        ["app_info{version=\"2.0\"} 1.0"]
    );
    workers.next().unwrap().stop();
    let t = text(d.path(), false);
    assert!(lines_with(&t, "app_info{").is_empty(), "{t}");
}

#[test]
fn enum_most_recent_state_wins_across_workers() {
    let d = Dir::new();
    let w = d.writer();
    let states = ["serving", "draining", "stopped"];
    let mode = Enum::new_in(&w, "mode", "Service mode.", &states).unwrap();
    let breaker = EnumVec::new_in(
        &w,
        Opts::new("breaker", "Circuit breaker."),
        &["backend"],
        &["closed", "open"],
    )
    .unwrap();
    let state_lines = |t: &str| -> Vec<String> {
        lines_with(t, "mode{")
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    // Nobody has set a state: the first one.
    let t = text(d.path(), false);
    assert_eq!(
        state_lines(&t),
        [
            "mode{mode=\"draining\"} 0.0",
            "mode{mode=\"serving\"} 1.0",
            "mode{mode=\"stopped\"} 0.0"
        ]
    );

    let a = {
        let (mode, breaker) = (mode.clone(), breaker.clone());
        Held::spawn(move || {
            mode.state("draining");
            breaker.with_label_values(&["db"]).state("open");
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = {
        let (mode, breaker) = (mode.clone(), breaker.clone());
        Held::spawn(move || {
            mode.state("stopped");
            // Created, never set: does not override worker a's state.
            breaker.with_label_values(&["db"]);
            breaker.with_label_values(&["cache"]).state("closed");
        })
    };
    let t = text(d.path(), false);
    assert_eq!(
        state_lines(&t),
        [
            "mode{mode=\"draining\"} 0.0",
            "mode{mode=\"serving\"} 0.0",
            "mode{mode=\"stopped\"} 1.0"
        ],
        "{t}"
    );
    assert_eq!(
        lines_with(&t, "breaker{"),
        [
            "breaker{backend=\"cache\",breaker=\"closed\"} 1.0",
            "breaker{backend=\"cache\",breaker=\"open\"} 0.0",
            "breaker{backend=\"db\",breaker=\"closed\"} 0.0",
            "breaker{backend=\"db\",breaker=\"open\"} 1.0",
        ]
    );
    let om = text(d.path(), true);
    assert!(om.contains("# TYPE mode stateset\n"), "{om}");

    // prometheus_client: no error; per state, the processes in it.
    let py = py_samples(d.path());
    assert_eq!(value_of(&py, "mode", &[("mode", "stopped")]), Some(1.0));
    assert_eq!(value_of(&py, "mode", &[("mode", "draining")]), Some(1.0));
    // The parent never set a state: it is in the first one.
    assert_eq!(value_of(&py, "mode", &[("mode", "serving")]), Some(1.0));
    assert!(
        py.iter()
            .filter(|s| s.family == "mode")
            .all(|s| s.typ == "stateset")
    );
    let py_text = run_py(
        "py_collect.py",
        &[d.path().to_str().unwrap(), "--format", "text"],
    );
    assert!(py_text.contains("# TYPE mode gauge\n"), "{py_text}");
    run_py(
        "py_collect.py",
        &[d.path().to_str().unwrap(), "--format", "openmetrics"],
    );

    // The last state set stays current after its worker exits.
    b.stop();
    a.stop();
    let t = text(d.path(), false);
    assert!(t.contains("mode{mode=\"stopped\"} 1.0\n"), "{t}");
    // A later state in the parent wins.
    mode.state("serving");
    let t = text(d.path(), false);
    assert!(t.contains("mode{mode=\"serving\"} 1.0\n"), "{t}");
    assert!(t.contains("mode{mode=\"stopped\"} 0.0\n"), "{t}");
}
