//! The `prometheus-multiproc` command: demo, collect, serve, mark-dead and inspect, run as a user would.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::format::encode_key;
use prometheus_multiproc::format::{build_file, entry_len};
use prometheus_multiproc::{
    Counter, CounterVec, Gauge, GaugeMode, HistogramVec, MetricsDir, MultiProcessCollector,
};

use crate::common::{
    Dir, HttpResponse, assert_same_body, fork_worker, http_request, in_worker, random_dir, run_py,
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_prometheus-multiproc");

/// The command, with no metrics directory in its environment.
pub(crate) fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("PROMETHEUS_MULTIPROC_DIR")
        .env_remove("prometheus_multiproc_dir");
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run prometheus-multiproc")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure with status 1 and exactly one stderr line, which
/// contains `needle`.
fn assert_fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one error line: {err:?}");
    assert!(err.starts_with("prometheus-multiproc: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

/// The sum of the `name` samples (with or without labels) in an exposition.
fn sum_of(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// The value of the exact sample line `series` (name and labels as printed).
pub(crate) fn value_of_line(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A directory written by the library from two forked workers (the test
/// process itself writes nothing there): a counter vec, a histogram vec, a
/// livesum gauge (its writers are dead, so it is skipped) and a sum gauge.
pub(crate) fn library_dir() -> Dir {
    let d = Dir::new();
    for i in 0..2 {
        in_worker(|| {
            let w = MetricsDir::open(d.path()).unwrap();
            let reqs = CounterVec::new_in(
                &w,
                Opts::new("app_requests_total", "Requests \"served\"\nby path."),
                &["path"],
            )
            .unwrap();
            let lat = HistogramVec::new_in(
                &w,
                HistogramOpts::new("app_latency_seconds", "Latency.").buckets(vec![0.1, 1.0]),
                &["path"],
            )
            .unwrap();
            let live =
                Gauge::new_in(&w, "app_in_progress", "In progress.", GaugeMode::LiveSum).unwrap();
            let total = Gauge::new_in(&w, "app_queue", "Queue.", GaugeMode::Sum).unwrap();
            reqs.with_label_values(&["/a"]).inc_by(1.0 + i as f64);
            reqs.with_label_values(&["/é\"x"]).inc();
            lat.with_label_values(&["/a"]).observe(0.05);
            lat.with_label_values(&["/a"]).observe(0.5);
            live.inc();
            total.add(10.0);
        });
    }
    d
}

/// A `serve` process on a free loopback port, killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) path: String,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Server {
        Self::try_start(dir, extra).expect("serve starts")
    }

    pub(crate) fn try_start(dir: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut args = vec![
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut child = cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                log2.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(url) = line
                        .strip_prefix("listening on http://")
                        .or_else(|| line.strip_prefix("listening on https://"))
                    {
                        let (addr, path) = url.split_at(url.find('/').unwrap());
                        return Ok(Server {
                            child,
                            addr: addr.to_string(),
                            path: path.to_string(),
                            log,
                        });
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        Err(format!("{status}: {:?}", log.lock().unwrap()))
    }

    pub(crate) fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(&self.addr, "GET", path, headers).expect("GET")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a `serve` body into the application's part and the exporter's own
/// `prometheus_multiproc_*` lines, checking that the latter are exactly the
/// five gauge families, each with HELP, TYPE gauge and one sample, then the
/// counter `warnings_total` with one sample per kind (returned as
/// `prometheus_multiproc_warnings_total{kind="…"}`).
pub(crate) fn split_own(body: &str) -> (&str, Vec<(String, f64)>) {
    let at = body
        .find("# HELP prometheus_multiproc_")
        .expect("own families present");
    let (app, own) = body.split_at(at);
    let lines: Vec<&str> = own.lines().collect();
    let names = [
        "prometheus_multiproc_scrape_duration_seconds",
        "prometheus_multiproc_files_read",
        "prometheus_multiproc_files_reused",
        "prometheus_multiproc_files_corrupt",
        "prometheus_multiproc_files_dead",
        "prometheus_multiproc_series_merged",
    ];
    let mut values = Vec::new();
    let mut it = lines.iter();
    for n in names {
        assert!(it.next().unwrap().starts_with(&format!("# HELP {n} ")));
        assert_eq!(*it.next().unwrap(), format!("# TYPE {n} gauge"));
        let sample = it.next().unwrap();
        let v = sample
            .strip_prefix(&format!("{n} "))
            .unwrap_or_else(|| panic!("{sample:?}"));
        values.push((n.to_string(), v.parse().unwrap()));
    }
    let w = "prometheus_multiproc_warnings_total";
    // Text format 0.0.4 names the counter family with `_total`, OpenMetrics
    // without.
    let family = ["# HELP {w} ", "# HELP prometheus_multiproc_warnings "];
    let help = it.next().unwrap();
    assert!(
        family
            .iter()
            .any(|f| help.starts_with(&f.replace("{w}", w))),
        "{help}"
    );
    let ty = it.next().unwrap();
    assert!(
        [
            format!("# TYPE {w} counter"),
            "# TYPE prometheus_multiproc_warnings counter".into()
        ]
        .contains(&ty.to_string()),
        "{ty}"
    );
    let kinds = [
        "corrupt",
        "not_regular_file",
        "symbolic_link",
        "vanished",
        "unreadable",
        "too_large",
        "shrank",
        "read_aborted",
        "type_conflict",
        "mixed_gauge_modes",
        "process_metric_shadowed",
        "other",
        "scrape_failed",
        "name_clash",
    ];
    for kind in kinds {
        let series = format!("{w}{{kind=\"{kind}\"}}");
        let sample = it.next().unwrap();
        let v = sample
            .strip_prefix(&format!("{series} "))
            .unwrap_or_else(|| panic!("{sample:?}"));
        values.push((series, v.parse().unwrap()));
    }
    assert_eq!(it.next(), None, "nothing after the own families: {own}");
    (app, values)
}

pub(crate) fn own_value(own: &[(String, f64)], name: &str) -> f64 {
    own.iter()
        .find(|(n, _)| n == &format!("prometheus_multiproc_{name}"))
        .unwrap()
        .1
}

fn gunzip(b: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .expect("valid gzip");
    s
}

/// Processes whose command line is exactly `args` (after the program).
fn processes_with_args(args: &[&str]) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let parts: Vec<&[u8]> = raw.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
        if parts.len() == args.len() + 1
            && parts[1..].iter().zip(args).all(|(a, b)| *a == b.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_counts_every_request_and_leaves_nothing_behind() {
    let args = [
        "demo",
        "--workers",
        "3",
        "--requests",
        "400",
        "--clients",
        "3",
    ];
    let start = Instant::now();
    let o = run(&args);
    let took = start.elapsed();
    let err = stderr(&o);
    assert!(o.status.success(), "demo failed: {err}");
    let out = stdout(&o);
    assert_eq!(sum_of(&out, "http_requests_total"), 400.0, "{out}");
    assert_eq!(
        value_of_line(
            &out,
            r#"http_requests_total{method="GET",path="other",status="404"}"#
        ),
        Some(20.0)
    );
    assert_eq!(
        value_of_line(
            &out,
            r#"http_requests_total{method="POST",path="/api/items",status="201"}"#
        ),
        Some(20.0)
    );
    assert_eq!(
        sum_of(&out, "http_request_duration_seconds_count"),
        400.0,
        "{out}"
    );
    // /api/slow sleeps 5 ms: 20 of them.
    let slow = value_of_line(
        &out,
        r#"http_request_duration_seconds_sum{method="GET",path="/api/slow"}"#,
    )
    .unwrap();
    assert!(slow >= 20.0 * 0.005, "{slow}");
    assert_eq!(value_of_line(&out, "http_requests_in_progress"), Some(0.0));
    assert!(out.contains("# TYPE http_requests_total counter\n"));

    assert!(err.contains("1 killed with SIGKILL, 1 replaced"), "{err}");
    assert!(err.contains("requests made = 400"), "{err}");
    assert!(err.contains("demo: 400 requests in"), "{err}");
    assert!(err.contains("; 0 failed;"), "{err}");
    // The temporary directory is gone, and so are the workers.
    let dir = err
        .split("with metrics in ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap();
    assert!(!Path::new(dir).exists(), "{dir} left behind");
    assert_eq!(processes_with_args(&args), Vec::<i32>::new());
    assert!(took < Duration::from_secs(30), "demo took {took:?}");
}

#[test]
fn demo_with_dir_and_worker_ids_keeps_slot_files() {
    let d = Dir::new();
    let o = run(&[
        "demo",
        "--workers",
        "2",
        "--requests",
        "200",
        "--worker-ids",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The replacement of the killed worker continued its slot's files; the
    // live gauges of stopped workers and of the supervisor are gone.
    assert_eq!(
        d.files(),
        [
            "counter_w0.db",
            "counter_w1.db",
            "histogram_w0.db",
            "histogram_w1.db"
        ]
    );
    let merged = run(&["collect", "--dir", d.path().to_str().unwrap()]);
    assert_eq!(sum_of(&stdout(&merged), "http_requests_total"), 200.0);
    assert_eq!(sum_of(&stdout(&o), "http_requests_total"), 200.0);

    // A second run in the same directory counts on top of the first.
    let o = run(&[
        "demo",
        "--workers",
        "2",
        "--requests",
        "100",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sum_of(&stdout(&o), "http_requests_total"), 300.0);
    assert!(stderr(&o).contains("(counted by this run: 100)"));
}

#[test]
fn demo_rejects_bad_arguments() {
    let o = run(&["demo", "--workers", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["demo", "--dir", "/nonexistent/pm-demo"]);
    assert_fails_with(&o, "/nonexistent/pm-demo: does not exist");
}

// ---------------------------------------------------------------- collect

#[test]
fn collect_prints_the_library_exposition_and_python_agrees() {
    let d = library_dir();
    let dir = d.path().to_str().unwrap();
    let o = run(&["collect", "--dir", dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let out = stdout(&o);

    let mut want = Vec::new();
    MultiProcessCollector::new(d.path())
        .unwrap()
        .encode_text(&mut want)
        .unwrap();
    assert_eq!(out, String::from_utf8(want).unwrap());
    assert_eq!(
        value_of_line(&out, r#"app_requests_total{path="/a"}"#),
        Some(3.0)
    );
    assert_eq!(
        value_of_line(&out, r#"app_requests_total{path="/é\"x"}"#),
        Some(2.0)
    );
    assert_eq!(
        value_of_line(&out, r#"app_latency_seconds_bucket{le="0.1",path="/a"}"#),
        Some(2.0)
    );
    assert_eq!(
        value_of_line(&out, r#"app_latency_seconds_count{path="/a"}"#),
        Some(4.0)
    );
    assert_eq!(value_of_line(&out, "app_queue"), Some(20.0));
    assert!(out.contains("# HELP app_requests_total Requests \"served\"\\nby path.\n"));
    // Dead writers' live gauges are dropped, family included.
    assert!(!out.contains("app_in_progress"), "{out}");

    // prometheus_client's generate_latest: the same bytes, in the same
    // order, but for the livesum gauge, which Python cannot tell is dead
    // (nobody called mark_process_dead) and still sums.
    let py = run_py("py_collect.py", &[dir, "--format", "text"]);
    assert!(py.contains("app_in_progress"), "{py}");
    let theirs: String = py
        .lines()
        .filter(|l| !l.contains("app_in_progress"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(out, theirs);

    let om = stdout(&run(&["collect", "--dir", dir, "--format", "openmetrics"]));
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE app_requests counter\n"), "{om}");
    assert!(om.contains("app_requests_total{path=\"/a\"} 3.0\n"), "{om}");
}

#[test]
fn collect_env_variables_and_corrupt_files() {
    let d = library_dir();
    std::fs::write(d.path().join("counter_999.db"), b"garbage!").unwrap();
    let o = cmd(&["collect"])
        .env("PROMETHEUS_MULTIPROC_DIR", d.path())
        .output()
        .unwrap();
    // Corrupt files are skipped with a warning; the rest is served, status 0.
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(err.contains("counter_999.db"), "{err}");
    assert!(err.starts_with("warning: "), "{err}");
    assert_eq!(
        value_of_line(&stdout(&o), r#"app_requests_total{path="/a"}"#),
        Some(3.0)
    );

    // The deprecated lower-case variable works, with a warning.
    let o = cmd(&["collect"])
        .env("prometheus_multiproc_dir", d.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("prometheus_multiproc_dir is deprecated"));
    assert_eq!(
        value_of_line(&stdout(&o), r#"app_requests_total{path="/a"}"#),
        Some(3.0)
    );
}

/// `collect` with one and with four merging threads prints
/// prometheus_client's bytes (text and OpenMetrics), order included, on a
/// directory written by Python workers and on generated ones (one thread
/// merges everything in listing order; several merge one file type each and
/// put the families in order afterwards).
#[test]
fn collect_with_any_thread_count_is_python_byte_for_byte() {
    let py_dir = Dir::new();
    run_py("py_write.py", &[py_dir.path().to_str().unwrap(), "all"]);
    let generated = Dir::new();
    random_dir(generated.path(), 0x5eed, 70);
    for d in [&py_dir, &generated] {
        let dir = d.path().to_str().unwrap();
        for format in ["text", "openmetrics"] {
            let py = run_py("py_collect.py", &[dir, "--format", format]);
            for threads in ["1", "4"] {
                let o = cmd(&["collect", "--dir", dir, "--format", format])
                    .env("PROMETHEUS_MULTIPROC_COLLECT_THREADS", threads)
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", stderr(&o));
                assert_same_body(&stdout(&o), &py);
            }
        }
    }
}

#[test]
fn collect_errors_are_one_line_and_status_1() {
    assert_fails_with(
        &run(&["collect", "--dir", "/nonexistent/pm"]),
        "metrics directory /nonexistent/pm: does not exist",
    );
    let d = Dir::new();
    let file = d.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert_fails_with(
        &run(&["collect", "--dir", file.to_str().unwrap()]),
        "is not a directory",
    );
    assert_fails_with(
        &run(&["collect"]),
        "no metrics directory: pass --dir DIR or set PROMETHEUS_MULTIPROC_DIR",
    );
    let o = cmd(&["collect"])
        .env("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/pm-env")
        .output()
        .unwrap();
    assert_fails_with(
        &o,
        "PROMETHEUS_MULTIPROC_DIR=/nonexistent/pm-env: does not exist",
    );
    // An empty directory is fine: nothing to print.
    let o = run(&["collect", "--dir", d.path().to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
    // Usage errors are clap's (status 2).
    assert_eq!(run(&["collect", "--format", "xml"]).status.code(), Some(2));
}

// ---------------------------------------------------------------- serve

#[test]
fn serve_body_is_collect_plus_own_families() {
    let d = library_dir();
    std::fs::write(d.path().join("counter_999.db"), b"garbage!").unwrap();
    let dir = d.path().to_str().unwrap();
    let collected = stdout(&run(&["collect", "--dir", dir]));
    let s = Server::start(d.path(), &[]);
    assert_eq!(s.path, "/metrics");

    let r = s.get("/metrics", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.header("content-encoding"), None);
    let body = r.text();
    let (app, own) = split_own(&body);
    assert_eq!(app, collected);
    // 2 workers x (counter, histogram, gauge_sum) read; their livesum
    // files are dead; one corrupt file.
    assert_eq!(own_value(&own, "files_read"), 6.0);
    assert_eq!(own_value(&own, "files_dead"), 2.0);
    assert_eq!(own_value(&own, "files_corrupt"), 1.0);
    let samples = collected.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(own_value(&own, "series_merged"), samples as f64);
    let secs = own_value(&own, "scrape_duration_seconds");
    assert!(secs > 0.0 && secs < 10.0, "{secs}");
    assert_eq!(own_value(&own, r#"warnings_total{kind="corrupt"}"#), 1.0);
    assert_eq!(own_value(&own, r#"warnings_total{kind="name_clash"}"#), 0.0);
    // The corrupt file is reported once on stderr, not at every scrape, and
    // counted at every scrape.
    let body = s.get("/metrics", &[]).text();
    let (_, own) = split_own(&body);
    assert_eq!(own_value(&own, r#"warnings_total{kind="corrupt"}"#), 2.0);
    let warnings = || {
        s.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("counter_999.db") && l.contains("warning: "))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while warnings() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(warnings(), 1, "{:?}", s.log.lock().unwrap());
}

#[test]
fn serve_gzip_head_openmetrics_and_routes() {
    let d = library_dir();
    let dir = d.path().to_str().unwrap();
    let s = Server::start(d.path(), &[]);
    let plain = s.get("/metrics", &[]);

    let gz = s.get("/metrics", &[("Accept-Encoding", "deflate, gzip;q=0.8")]);
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept, Accept-Encoding"));
    let unzipped = gunzip(&gz.body);
    let (gz_app, _) = split_own(&unzipped);
    let plain_text = plain.text();
    let (plain_app, _) = split_own(&plain_text);
    assert_eq!(gz_app, plain_app);
    let refused = s.get("/metrics", &[("Accept-Encoding", "gzip;q=0, identity")]);
    assert_eq!(refused.header("content-encoding"), None);

    let head = http_request(&s.addr, "HEAD", "/metrics", &[]).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), plain.header("content-type"));
    // Same length, give or take the digits of the scrape duration.
    let len = |r: &HttpResponse| -> i64 { r.header("content-length").unwrap().parse().unwrap() };
    assert!((len(&head) - len(&plain)).abs() < 16, "{head:?}");

    let om = s.get(
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text; version=1.0.0; charset=utf-8,text/plain;q=0.5",
        )],
    );
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores")
    );
    let om_body = om.text();
    let collected_om = stdout(&run(&["collect", "--dir", dir, "--format", "openmetrics"]));
    let om_app = collected_om.strip_suffix("# EOF\n").unwrap();
    assert!(om_body.starts_with(om_app), "{om_body}");
    assert!(om_body.ends_with("# EOF\n"));
    let own_om = &om_body[om_app.len()..om_body.len() - "# EOF\n".len()];
    split_own(own_om);

    let landing = s.get("/", &[]);
    assert_eq!(landing.status, 200);
    assert_eq!(
        landing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(landing.text().contains("<a href=\"/metrics\">"));
    assert_eq!(s.get("/other", &[]).status, 404);
    assert_eq!(s.get("/metrics/", &[]).status, 404);
    let post = http_request(&s.addr, "POST", "/metrics", &[("Content-Length", "0")]).unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // Concurrent scrapes are all served.
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    (0..5)
                        .map(|_| s.get("/metrics", &[]).status)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), vec![200; 5]);
        }
    });
}

#[test]
fn serve_custom_path_and_name_clash() {
    let d = Dir::new();
    // An application family with one of the exporter's names wins.
    let w = d.writer();
    let c = Gauge::new_in(
        &w,
        "prometheus_multiproc_files_read",
        "The app's own.",
        GaugeMode::Sum,
    )
    .unwrap();
    in_worker(|| c.set(42.0));
    let s = Server::start(d.path(), &["--web.telemetry-path", "/m"]);
    assert_eq!(s.path, "/m");
    assert_eq!(s.get("/metrics", &[]).status, 404);
    let body = s.get("/m", &[]).text();
    assert_eq!(
        body.matches("# TYPE prometheus_multiproc_files_read ")
            .count(),
        1,
        "{body}"
    );
    assert_eq!(
        value_of_line(&body, "prometheus_multiproc_files_read"),
        Some(42.0)
    );
    assert!(body.contains("# HELP prometheus_multiproc_files_read The app's own.\n"));
    assert!(body.contains("prometheus_multiproc_files_dead 0.0\n"));
    assert!(s.get("/", &[]).text().contains("<a href=\"/m\">"));
}

#[test]
fn serve_basic_and_bearer_auth() {
    let d = library_dir();
    let secrets = Dir::new();
    let basic = secrets.path().join("basic");
    std::fs::write(&basic, "prom:pa:ss word\n").unwrap();
    let s = Server::start(
        d.path(),
        &["--web.basic-auth-file", basic.to_str().unwrap()],
    );
    for path in ["/metrics", "/", "/nowhere"] {
        let r = s.get(path, &[]);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .starts_with("Basic realm=")
        );
    }
    // "prom:pa:ss word" and a wrong password.
    let ok = ("Authorization", "Basic cHJvbTpwYTpzcyB3b3Jk");
    let wrong = ("Authorization", "Basic cHJvbTpwYTpzcyB3b3JE");
    assert_eq!(s.get("/metrics", &[ok]).status, 200);
    assert!(
        s.get("/metrics", &[ok])
            .text()
            .contains("app_requests_total")
    );
    assert_eq!(s.get("/metrics", &[wrong]).status, 401);
    assert_eq!(
        s.get("/metrics", &[("Authorization", "Bearer x")]).status,
        401
    );
    drop(s);

    let token = secrets.path().join("token");
    std::fs::write(&token, "t0k3n-value\n").unwrap();
    let s = Server::start(
        d.path(),
        &["--web.bearer-token-file", token.to_str().unwrap()],
    );
    let r = s.get("/metrics", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(
        s.get("/metrics", &[("Authorization", "Bearer t0k3n-value")])
            .status,
        200
    );
    assert_eq!(
        s.get("/metrics", &[("Authorization", "Bearer t0k3n-valuE")])
            .status,
        401
    );
    assert_eq!(
        s.get("/metrics", &[("Authorization", "Bearer t0k3n")])
            .status,
        401
    );
}

#[test]
fn serve_startup_errors() {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    let o = run(&[
        "serve",
        "--dir",
        dir,
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.basic-auth-file",
        "/nonexistent/pm-auth",
    ]);
    assert_fails_with(&o, "basic auth file /nonexistent/pm-auth: No such file");
    let bad = d.path().join("bad-auth");
    std::fs::write(&bad, "no colon here\n").unwrap();
    let o = run(&[
        "serve",
        "--dir",
        dir,
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.basic-auth-file",
        bad.to_str().unwrap(),
    ]);
    assert_fails_with(&o, "expected one line user:password");
    let empty = d.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let o = run(&[
        "serve",
        "--dir",
        dir,
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.bearer-token-file",
        empty.to_str().unwrap(),
    ]);
    assert_fails_with(&o, "the token is empty");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = run(&["serve", "--dir", dir, "--web.listen-address", &addr]);
    assert_fails_with(
        &o,
        &format!("cannot listen on {addr}: Address already in use"),
    );

    assert_fails_with(&run(&["serve"]), "no metrics directory");
    assert_fails_with(
        &run(&["serve", "--dir", "/nonexistent/pm-serve"]),
        "does not exist",
    );
}

#[test]
fn serve_stops_on_sigterm_and_sigint_with_status_0() {
    let d = Dir::new();
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut s = Server::start(d.path(), &[]);
        assert_eq!(s.get("/metrics", &[]).status, 200);
        kill(Pid::from_raw(s.child.id() as i32), sig).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = s.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "serve ignored {sig}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{sig}");
        assert!(
            s.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(&format!("{sig} received")))
        );
        // The port is closed.
        assert!(std::net::TcpStream::connect(&s.addr).is_err());
    }
}

#[test]
fn serve_times_out_silent_clients() {
    let d = Dir::new();
    let s = Server::start(d.path(), &["--web.timeout", "1"]);
    let start = Instant::now();
    let mut silent = std::net::TcpStream::connect(&s.addr).unwrap();
    silent.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    // The server gives up on the unfinished head and closes the connection.
    let read = loop {
        match silent.read(&mut buf) {
            // A read with SO_RCVTIMEO fails with EINTR on any signal, even
            // with SA_RESTART.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            r => break r,
        }
    };
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?} {read:?}"
    );
    let n = read.unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    // And it still serves others.
    assert_eq!(s.get("/metrics", &[]).status, 200);
}

// ---------------------------------------------------------------- mark-dead

#[test]
fn mark_dead_removes_what_prometheus_client_removes() {
    let names = [
        "gauge_livesum_4242.db",
        "gauge_liveall_4242.db",
        "gauge_livemin_4242.db",
        "gauge_livemax_4242.db",
        "gauge_livemostrecent_4242.db",
        "gauge_all_4242.db",
        "gauge_sum_4242.db",
        "gauge_mostrecent_4242.db",
        "counter_4242.db",
        "histogram_4242.db",
        "gauge_livesum_42421.db",
        "gauge_livesum_7.db",
    ];
    let ours = Dir::new();
    let python = Dir::new();
    for d in [&ours, &python] {
        for n in names {
            std::fs::write(d.path().join(n), build_file(&[], 64)).unwrap();
        }
    }
    let o = run(&[
        "mark-dead",
        "--dir",
        ours.path().to_str().unwrap(),
        "4242",
        "7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    run_py(
        "py_mark_dead.py",
        &[python.path().to_str().unwrap(), "4242"],
    );
    run_py("py_mark_dead.py", &[python.path().to_str().unwrap(), "7"]);
    assert_eq!(ours.files(), python.files());
    assert_eq!(
        ours.files(),
        [
            "counter_4242.db",
            "gauge_all_4242.db",
            "gauge_livesum_42421.db",
            "gauge_mostrecent_4242.db",
            "gauge_sum_4242.db",
            "histogram_4242.db"
        ]
    );
    let mut printed: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            Path::new(l)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    printed.sort();
    assert_eq!(
        printed,
        [
            "gauge_liveall_4242.db",
            "gauge_livemax_4242.db",
            "gauge_livemin_4242.db",
            "gauge_livemostrecent_4242.db",
            "gauge_livesum_4242.db",
            "gauge_livesum_7.db"
        ]
    );
    // Again: nothing left to remove, nothing printed, no error.
    let o = run(&["mark-dead", "--dir", ours.path().to_str().unwrap(), "4242"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");

    assert_fails_with(
        &run(&["mark-dead", "--dir", ours.path().to_str().unwrap()]),
        "give one or more PIDs, or --auto",
    );
    assert_fails_with(
        &run(&["mark-dead", "--dir", ours.path().to_str().unwrap(), "../x"]),
        "invalid PID",
    );
    assert_fails_with(&run(&["mark-dead", "1"]), "no metrics directory");
}

#[test]
fn mark_dead_auto_removes_only_dead_writers_files() {
    let d = Dir::new();
    let w = d.writer();
    let live = Gauge::new_in(&w, "busy", "Busy.", GaugeMode::LiveSum).unwrap();
    let jobs = Counter::new_in(&w, "jobs", "Jobs.").unwrap();
    // A worker that dies by SIGKILL after writing, and one that stays alive.
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    let victim = fork_worker(|| {
        live.inc();
        jobs.inc();
        nix::unistd::write(&ready_w, b"v").unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    let survivor = fork_worker(|| {
        live.inc();
        nix::unistd::write(&ready_w, b"s").unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    let mut got = [0u8; 2];
    let mut r = std::fs::File::from(ready_r);
    r.read_exact(&mut got).unwrap();
    kill(victim, Signal::SIGKILL).unwrap();
    nix::sys::wait::waitpid(victim, None).unwrap();

    let o = run(&["mark-dead", "--dir", d.path().to_str().unwrap(), "--auto"]);
    kill(survivor, Signal::SIGKILL).unwrap();
    nix::sys::wait::waitpid(survivor, None).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let victim_file = d.path().join(format!("gauge_livesum_{victim}.db"));
    assert_eq!(stdout(&o), format!("{}\n", victim_file.display()));
    assert!(!victim_file.exists());
    assert!(
        d.path()
            .join(format!("gauge_livesum_{survivor}.db"))
            .exists()
    );
    assert!(d.path().join(format!("counter_{victim}.db")).exists());
}

// ---------------------------------------------------------------- inspect

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn inspect_shows_entries_as_json_lines() {
    let d = Dir::new();
    let w = MetricsDir::open(d.path()).unwrap();
    // Written by this (living) process: the writer is alive.
    let g = CounterVec::new_in(&w, Opts::new("odd_total", "Odd \"help\"\n\u{1}."), &["l"]).unwrap();
    g.with_label_values(&["tab\tquote\"é😀"]).inc_by(2.5);
    let special = prometheus_multiproc::GaugeVec::new_in(
        &w,
        Opts::new("special", "Special values."),
        &["v"],
        GaugeMode::MostRecent,
    )
    .unwrap();
    special.with_label_values(&["nan"]).set(f64::NAN);
    special.with_label_values(&["inf"]).set(f64::INFINITY);
    special.with_label_values(&["-inf"]).set(f64::NEG_INFINITY);
    special.with_label_values(&["big"]).set(1e300);

    let counter = d.path().join(format!("counter_{}.db", std::process::id()));
    let gauge = d
        .path()
        .join(format!("gauge_mostrecent_{}.db", std::process::id()));
    let o = run(&[
        "inspect",
        counter.to_str().unwrap(),
        gauge.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1 + 1 + 1 + 4);

    let h = &v[0];
    assert_eq!(h["file"], counter.to_str().unwrap());
    assert_eq!(h["kind"], "counter");
    assert_eq!(h["id"], std::process::id().to_string());
    assert_eq!(h["size"], 65536);
    assert_eq!(h["lock_marker"], true);
    assert_eq!(h["writer"], "alive");
    let key = encode_key(
        "odd",
        "odd_total",
        &[("l", "tab\tquote\"é😀")],
        "Odd \"help\"\n\u{1}.",
    );
    assert_eq!(h["used"], 8 + entry_len(key.len()));
    let e = &v[1];
    assert_eq!(e["offset"], 8);
    assert_eq!(e["key"], key.as_str());
    assert_eq!(e["value"], 2.5);
    assert_eq!(e["timestamp"], 0.0);

    assert_eq!(v[2]["kind"], "gauge_mostrecent");
    let values: Vec<&serde_json::Value> = v[3..].iter().map(|e| &e["value"]).collect();
    assert_eq!(values[0], "NaN");
    assert_eq!(values[1], "+Inf");
    assert_eq!(values[2], "-Inf");
    assert_eq!(values[3].as_f64(), Some(1e300));
    for e in &v[3..] {
        let t = e["timestamp"].as_f64().unwrap();
        assert!(t > 1.6e9, "most-recent gauges carry a timestamp: {t}");
    }
}

#[test]
fn inspect_reports_where_corruption_starts() {
    let d = Dir::new();
    let k1 = encode_key("a", "a_total", &[], "A.");
    let k2 = encode_key("b", "b_total", &[], "B.");
    let mut img = build_file(
        &[(k1.as_bytes(), 1.0, 0.0), (k2.as_bytes(), 2.0, 0.0)],
        4096,
    );
    // The second entry's key length is negative.
    let second = 8 + entry_len(k1.len());
    img[second..second + 4].copy_from_slice(&(-3i32).to_le_bytes());
    let bad = d.path().join("counter_1.db");
    std::fs::write(&bad, &img).unwrap();
    // A file cut short: `used` points past its end.
    let good = build_file(&[(k1.as_bytes(), 1.0, 0.0)], 0);
    let cut = d.path().join("counter_2.db");
    std::fs::write(&cut, &good[..good.len() - 5]).unwrap();
    // A symbolic link to a good file is not followed.
    let target = d.path().join("counter_3.db");
    std::fs::write(&target, &good).unwrap();
    let link = d.path().join("counter_4.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let o = run(&[
        "inspect",
        bad.to_str().unwrap(),
        target.to_str().unwrap(),
        cut.to_str().unwrap(),
        link.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v = json_lines(&stdout(&o));
    // bad: header, first entry, corruption.
    assert_eq!(v[0]["writer"], "unknown");
    assert_eq!(v[0]["lock_marker"], false);
    assert_eq!(v[1]["key"], k1.as_str());
    assert_eq!(v[1]["value"], 1.0);
    assert_eq!(v[2]["corrupt"]["offset"], second);
    assert!(
        v[2]["corrupt"]["error"]
            .as_str()
            .unwrap()
            .contains("negative key length -3")
    );
    // target: header and its entry.
    assert_eq!(v[3]["file"], target.to_str().unwrap());
    assert_eq!(v[4]["value"], 1.0);
    // cut: header and corruption at offset 0.
    assert_eq!(v[5]["size"], good.len() - 5);
    assert_eq!(v[6]["corrupt"]["offset"], 0);
    assert!(
        v[6]["corrupt"]["error"]
            .as_str()
            .unwrap()
            .contains("past the end of the file")
    );
    assert_eq!(v.len(), 7, "nothing for the symlink on stdout");

    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: corrupt from byte offset {second}: negative key length -3",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!(
        "{}: is a symbolic link (not followed)",
        link.display()
    )));
    assert!(
        err.lines()
            .last()
            .unwrap()
            .ends_with("inspect: 3 of 4 files corrupt or unreadable")
    );
}
