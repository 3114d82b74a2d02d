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
        last = own_value(&own, r#"warnings_total{kind="file"}"#);
    }
    // Every warning is counted, at every scrape.
    assert_eq!(last, 3.0 * files as f64);
    let log = stop(s);
    let printed = log.iter().filter(|l| l.contains("warning: ")).count();
    // At most 100 lines a minute (one more for a summary line).
    assert!(printed <= 101, "{printed} warning lines");
    assert!(printed >= 100, "{printed} warning lines");
}
