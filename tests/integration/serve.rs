//! `serve` under load and abuse: warnings, memory, error pages, probes, filtering, TLS and its lifetime.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::{Server, own_value, split_own};
use crate::common::Dir;

/// Stops `s` with SIGTERM and returns its whole stderr.
fn stop(mut s: Server) -> Vec<String> {
    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = s
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("SIGTERM received"));
        if done && s.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.log.lock().unwrap().clone()
}

#[test]
fn serve_rate_limits_many_distinct_warnings_and_counts_them() {
    let d = Dir::new();
    let files = 10_500;
    for i in 0..files {
        std::fs::write(d.path().join(format!("counter_{i}.db")), b"garbage!").unwrap();
    }
    let s = Server::start(d.path(), &[]);
    let mut last = 0.0;
    for _ in 0..3 {
        let r = s.get("/metrics", &[]);
        assert_eq!(r.status, 200);
        let body = r.text();
        let (_, own) = split_own(&body);
        last = own_value(&own, r#"warnings_total{kind="corrupt"}"#);
    }
    // Every warning is counted, at every scrape.
    assert_eq!(last, 3.0 * files as f64);
    let log = stop(s);
    let printed = log.iter().filter(|l| l.contains("warning: ")).count();
    // At most 100 lines a minute (one more for a summary line).
    assert!(printed <= 101, "{printed} warning lines");
    assert!(printed >= 100, "{printed} warning lines");
}

/// A field of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kb: u64 = line.trim().trim_end_matches(" kB").parse().unwrap();
    kb << 10
}

/// A directory with one counter family of `series` series, whose text
/// exposition takes about 130 bytes per series.
fn big_dir(series: usize) -> Dir {
    use prometheus_multiproc::format::{build_file, encode_key};
    let d = Dir::new();
    let keys: Vec<String> = (0..series)
        .map(|i| {
            let path = format!(
                "/api/v1/a/rather/long/request/path/for/series/{i:08}/{}",
                "x".repeat(40)
            );
            encode_key("big", "big_total", &[("path", &path)], "Big.")
        })
        .collect();
    let entries: Vec<(&[u8], f64, f64)> = keys.iter().map(|k| (k.as_bytes(), 1.0, 0.0)).collect();
    std::fs::write(d.path().join("counter_1.db"), build_file(&entries, 4096)).unwrap();
    d
}

const MIB: u64 = 1 << 20;

/// What [`stuck_clients`] measured, in bytes.
#[derive(Debug)]
struct Memory {
    body: u64,
    idle: u64,
    /// The peak of the first scrape alone.
    one_scrape: u64,
    held: u64,
    after: u64,
    peak: u64,
}

/// Serves a directory of `series` series to `clients` clients that send a
/// scrape and never read, scrapes normally meanwhile (every scrape must
/// succeed), closes the stuck clients and measures serve's memory.
fn stuck_clients(series: usize, clients: usize, settle_below: u64, extra: &[&str]) -> Memory {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let d = big_dir(series);
    let s = Server::start(d.path(), extra);
    let pid = s.child.id();
    let first = s.get("/metrics", &[]);
    assert_eq!(first.status, 200);
    let body = first.body.len() as u64;
    std::thread::sleep(Duration::from_millis(300));
    let idle = proc_status_bytes(pid, "VmRSS");
    let one_scrape = proc_status_bytes(pid, "VmHWM");

    let mut stuck = Command::new(crate::common::python())
        .arg(crate::common::repo().join("tests/python/stuck_clients.py"))
        .args([&s.addr, "/metrics", &clients.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(stuck.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "holding\n");
    for _ in 0..3 {
        let r = s.get("/metrics", &[]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        // The same body, but for the exporter's own values.
        assert!(
            (r.body.len() as u64).abs_diff(body) < 100,
            "{}",
            r.body.len()
        );
    }
    let held = proc_status_bytes(pid, "VmRSS");
    drop(stuck.stdin.take());
    assert!(stuck.wait().unwrap().success());
    // Wait (not a timing assert) for the server to notice the closed
    // connections and free their bodies.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = proc_status_bytes(pid, "VmRSS");
    while after > settle_below + idle && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = proc_status_bytes(pid, "VmRSS");
    }
    let peak = proc_status_bytes(pid, "VmHWM");
    assert_eq!(s.get("/metrics", &[]).status, 200);
    let m = Memory {
        body,
        idle,
        one_scrape,
        held,
        after,
        peak,
    };
    eprintln!(
        "series {series}, clients {clients}: body {:.1} MiB, idle {:.1} MiB, one scrape's peak {:.1} MiB, held {:.1} MiB, after {:.1} MiB, peak {:.1} MiB",
        m.body as f64 / MIB as f64,
        m.idle as f64 / MIB as f64,
        m.one_scrape as f64 / MIB as f64,
        m.held as f64 / MIB as f64,
        m.after as f64 / MIB as f64,
        m.peak as f64 / MIB as f64
    );
    m
}

#[test]
fn serve_shares_one_body_among_clients_that_never_read() {
    // About 6 MiB of exposition.
    let m = stuck_clients(48_000, 24, 16 * MIB, &[]);
    assert!(m.body > 5 * MIB, "{m:?}");
    // 24 merges, or 24 clients holding a body each, would take 24 times
    // more; one merge at a time and one shared body take at most one
    // scrape's peak and a few bodies.
    assert!(m.peak < m.one_scrape + 4 * m.body, "{m:?}");
    assert!(m.after < m.idle + 16 * MIB, "{m:?}");
}

/// The full-scale check of `docs/reliability.md` (about 50 MB of
/// exposition): run by `scripts/serve-memory.sh` on a release build.
#[test]
#[ignore = "full scale, minutes in a debug build: scripts/serve-memory.sh"]
fn serve_memory_with_24_stuck_clients_full_scale() {
    let m = stuck_clients(400_000, 24, 100 * MIB, &["--web.timeout", "300"]);
    assert!(m.body > 45_000_000, "{m:?}");
    assert!(m.peak < 500 * MIB, "{m:?}");
    assert!(m.after < m.idle + 100 * MIB, "{m:?}");
}

/// True while process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn serve_exit_with_parent_ends_with_the_app_of_the_shell_recipe() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let d = Dir::new();
    // docs/sidecar.md's recipe, with `sleep` standing in for gunicorn.
    let script = format!(
        "{bin} serve --dir {dir} --web.listen-address 127.0.0.1:0 --exit-with-parent &\n\
         echo $!\n\
         exec sleep 600\n",
        bin = env!("CARGO_BIN_EXE_prometheus-multiproc"),
        dir = d.path().display(),
    );
    let mut app = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(app.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let serve: i32 = line.trim().parse().unwrap();
    let mut err = BufReader::new(app.stderr.take().unwrap()).lines();
    let listening = err.next().unwrap().unwrap();
    let addr = listening
        .strip_prefix("listening on http://")
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    let r = crate::common::http_request(&addr, "GET", "/metrics", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert!(alive(serve));

    // The app stops: the exporter stops too, cleanly.
    kill(Pid::from_raw(app.id() as i32), Signal::SIGTERM).unwrap();
    app.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(serve) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let outlived = alive(serve);
    if outlived {
        let _ = kill(Pid::from_raw(serve), Signal::SIGKILL);
    }
    let rest: Vec<String> = err.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM received")),
        "{rest:?}"
    );
    assert!(!outlived, "serve {serve} outlived its app");
}

#[test]
fn serve_health_and_readiness_probes() {
    let parent = Dir::new();
    let dir = parent.path().join("metrics");
    std::fs::create_dir(&dir).unwrap();
    let s = Server::start(&dir, &[]);
    let healthy = s.get("/-/healthy", &[]);
    assert_eq!(
        (healthy.status, healthy.text().as_str()),
        (200, "Healthy.\n")
    );
    let ready = s.get("/-/ready", &[]);
    assert_eq!((ready.status, ready.text().as_str()), (200, "Ready.\n"));
    // The directory goes away: not ready, still healthy; and the scrape is
    // a 500 that names the directory (on loopback only).
    std::fs::remove_dir(&dir).unwrap();
    let ready = s.get("/-/ready", &[]);
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("No such file"), "{}", ready.text());
    assert_eq!(s.get("/-/healthy", &[]).status, 200);
    let scrape = s.get("/metrics", &[]);
    assert_eq!(scrape.status, 500);
    assert!(
        scrape.text().contains(dir.to_str().unwrap()),
        "{}",
        scrape.text()
    );
    std::fs::create_dir(&dir).unwrap();
    assert_eq!(s.get("/-/ready", &[]).status, 200);
    assert_eq!(s.get("/metrics", &[]).status, 200);
}

#[test]
fn serve_name_filter_cuts_families_like_prometheus_client() {
    let d = crate::cli::library_dir();
    let dir = d.path().to_str().unwrap();
    let s = Server::start(d.path(), &[]);
    let queries = [
        "name[]=app_requests_total",
        "name[]=app_latency_seconds_bucket&name[]=app_latency_seconds_count",
        "name%5B%5D=app_queue&name[]=app_requests_total&other=1",
        "name[]=app_latency_seconds_sum&name[]=app_queue",
        // A family name that is no sample name selects nothing.
        "name[]=app_requests",
        "name[]=nothing",
        "name[]=app+queue",
    ];
    for q in queries {
        let py = crate::common::run_py("py_wsgi_scrape.py", &[dir, q]);
        let (mode, py_body) = py.split_once('\n').unwrap();
        assert_eq!(mode, "restricted");
        let r = s.get(&format!("/metrics?{q}"), &[]);
        assert_eq!(r.status, 200, "{q}");
        let ours = r.text();
        // Whole bodies, order included.
        assert_eq!(ours, py_body, "{q}");
        if !q.contains("nothing")
            && !q.contains("app_requests&")
            && q != "name[]=app_requests"
            && q != "name[]=app+queue"
        {
            assert!(!ours.is_empty(), "{q}");
        }
    }
    // Without name[] (or with only empty ones) nothing is cut, and the
    // exporter's own families can be asked for by sample name.
    let all = s.get("/metrics?name[]=", &[]).text();
    assert!(
        all.contains("app_requests_total{") && all.contains("prometheus_multiproc_files_read ")
    );
    let own = s
        .get("/metrics?name[]=prometheus_multiproc_files_read", &[])
        .text();
    assert!(
        own.starts_with("# HELP prometheus_multiproc_files_read "),
        "{own}"
    );
    assert_eq!(own.lines().count(), 3, "{own}");
}
