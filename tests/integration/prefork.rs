//! The pre-fork examples (`examples/prefork_std.rs`, `examples/axum_app.rs`)
//! run as real servers on the library's `Supervisor`: forked workers, 2,000
//! requests, one worker SIGKILLed half-way, exact totals, `promtool check
//! metrics`, and nothing left behind after `SIGTERM`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{Dir, http_request};

/// A built example; fails (never skips) when it was not built.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test --all-features` (which builds the examples)",
        path.display()
    );
    path
}

/// `promtool`, from Debian's `prometheus` package (scripts/setup-prometheus.sh).
fn promtool() -> PathBuf {
    let p = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    assert!(
        p.exists(),
        "promtool not found at {}: run scripts/setup-prometheus.sh",
        p.display()
    );
    p
}

/// A running example server; killed on drop if a test fails half-way.
struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(name: &str, dir: &Dir) -> Server {
        let mut child = Command::new(example(name))
            .args(["--workers", "3", "--addr", "127.0.0.1:0"])
            .env("PROMETHEUS_MULTIPROC_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                lines.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = http_request(&self.addr, "GET", path, &[]).unwrap();
        (r.status, r.text())
    }

    /// Pids of every worker the supervisor reported starting.
    fn worker_pids(&self) -> Vec<i32> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                l.split_once("started (pid ")?
                    .1
                    .strip_suffix(')')?
                    .parse()
                    .ok()
            })
            .collect()
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    /// SIGTERM, then waits (at most 60 s) for a successful exit.
    fn stop(&mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `per_thread` requests from each of 4 threads, cycling through
/// `paths`; returns how many responses each (path, status) got.
fn traffic(addr: &str, paths: &[&str], per_thread: usize) -> BTreeMap<(String, u16), usize> {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let addr = addr.to_string();
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            std::thread::spawn(move || {
                let mut seen = BTreeMap::new();
                for i in 0..per_thread {
                    let path = &paths[(i + t) % paths.len()];
                    let r = http_request(&addr, "GET", path, &[]).unwrap();
                    *seen.entry((path.clone(), r.status)).or_insert(0) += 1;
                }
                seen
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for h in handles {
        for (k, v) in h.join().unwrap() {
            *all.entry(k).or_insert(0) += v;
        }
    }
    all
}

/// The sum of the samples named `name` whose label text contains every
/// one of `labels` (`key="value"`).
fn sum_samples(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

fn promtool_check(text: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `pid` is a zombie or gone (its parent reaps it).
fn wait_dead(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(stat)
                if stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z')) =>
            {
                return;
            }
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "{pid} did not die");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The scenario both examples share. `paths` are the traffic's targets
/// with the metric and the label that count each of them, and its status.
fn run_scenario(name: &str, paths: &[(&str, &str, &str, u16)]) -> (Server, Dir, String) {
    let dir = Dir::new();
    let mut server = Server::start(name, &dir);
    let targets: Vec<&str> = paths.iter().map(|p| p.0).collect();

    let mut seen = traffic(&server.addr, &targets, 250);
    // Half-way, with no request in flight: SIGKILL the worker that answers.
    let (status, body) = server.get("/pid");
    assert_eq!(status, 200);
    let victim: i32 = body.trim().parse().unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    // kill(2) returns before the signal is delivered: let the victim die
    // before the next request, or it might still accept one.
    wait_dead(victim);
    for (k, v) in traffic(&server.addr, &targets, 250) {
        *seen.entry(k).or_insert(0) += v;
    }
    let answered: usize = seen.values().sum();
    assert_eq!(answered, 2000);

    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200, "{text}");
    for (path, metric, label, code) in paths {
        let want = seen.get(&(path.to_string(), *code)).copied().unwrap_or(0);
        assert!(want > 0, "no {code} answer for {path}: {seen:?}");
        let status_label = format!("status=\"{code}\"");
        // CAST: small whole numbers are exact in f64.
        assert_eq!(
            sum_samples(&text, metric, &[status_label.as_str(), label]),
            want as f64,
            "{path} {code}\n{text}"
        );
    }
    // Every answer is counted, the killed worker's and the /pid request included.
    assert_eq!(
        sum_samples(&text, "http_requests_total", &[]),
        (answered + 1) as f64,
        "{text}"
    );
    assert_eq!(sum_samples(&text, "http_requests_in_progress", &[]), 0.0);
    promtool_check(&text);

    // The supervisor saw the SIGKILL and replaced the worker.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.worker_pids().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "no replacement worker was started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.log_contains(&format!(
        "(pid {victim}) was killed by SIGKILL; marked dead"
    )));

    server.stop();
    let pids = server.worker_pids();
    assert!(pids.contains(&victim), "{pids:?}");
    for pid in &pids {
        assert_eq!(
            kill(Pid::from_raw(*pid), None),
            Err(nix::errno::Errno::ESRCH),
            "worker {pid} is still there after the supervisor stopped"
        );
    }
    (server, dir, text)
}

/// No live gauge left, and one file set per worker slot (the replacement
/// continued the killed worker's files): the directory is bounded. The
/// supervisor keeps the files of metrics it wrote itself, except live gauges.
fn assert_directory_clean(dir: &Dir, supervisor: u32) {
    let own = format!("{supervisor}.db");
    let files = dir.files();
    assert!(
        files.iter().all(|f| !f.starts_with("gauge_live")),
        "live-gauge files left: {files:?}"
    );
    for f in &files {
        let id = f.rsplit_once('_').unwrap().1;
        assert!(
            ["w0.db", "w1.db", "w2.db", own.as_str()].contains(&id),
            "file {f} is not named after a worker slot: {files:?}"
        );
    }
    assert!(files.contains(&"counter_w0.db".to_string()), "{files:?}");
}

#[test]
fn std_prefork_example_counts_every_answer_across_a_sigkill() {
    let (server, dir, text) = run_scenario(
        "prefork_std",
        &[
            ("/", "http_requests_total", "path=\"/\"", 200),
            ("/missing", "http_requests_total", "path=\"other\"", 404),
        ],
    );
    assert!(text.contains("# TYPE http_request_duration_seconds histogram\n"));
    // The supervisor's own live gauge, removed when it stops.
    assert!(text.contains("\nprefork_workers 3.0\n"), "{text}");
    assert_directory_clean(&dir, server.child.id());
}

/// The middleware counts routes in its histogram (`http_requests_total` has
/// no route label).
const DURATION_COUNT: &str = "http_request_duration_seconds_count";

#[test]
fn axum_prefork_example_counts_every_answer_across_a_sigkill() {
    let (server, dir, text) = run_scenario(
        "axum_app",
        &[
            ("/", DURATION_COUNT, "route=\"/\"", 200),
            ("/users/7", DURATION_COUNT, "route=\"/users/{id}\"", 200),
            ("/missing", DURATION_COUNT, "route=\"<unmatched>\"", 404),
        ],
    );
    assert!(text.contains("route=\"/users/{id}\""), "{text}");
    assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    assert_directory_clean(&dir, server.child.id());
}
