//! The demo's traffic: a few threads in a forked client process send a fixed mix of requests, and SIGKILL one worker half-way at a moment when no request is in flight.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::http;
use super::say;

/// What to send.
pub struct Plan {
    /// The shared listener's address.
    pub addr: SocketAddr,
    /// Stop after this many requests (`None`: until `duration`).
    pub requests: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Concurrent connections.
    pub threads: usize,
}

/// What happened; sent to the supervisor as one line of `key=value` pairs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Requests that got a complete response.
    pub made: u64,
    /// Requests that failed (connection error, timeout, bad response).
    pub failed: u64,
    /// Responses whose status was not the one the route gives.
    pub unexpected: u64,
    /// The worker killed half-way (0: none).
    pub killed: i32,
    /// Seconds the traffic took.
    pub seconds: f64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl Outcome {
    /// The line the client writes into the result pipe.
    pub fn to_line(&self) -> String {
        let mut s = format!(
            "made={} failed={} unexpected={} killed={} seconds={}",
            self.made, self.failed, self.unexpected, self.killed, self.seconds
        );
        for (status, n) in &self.statuses {
            s.push_str(&format!(" status{status}={n}"));
        }
        s
    }

    /// Parses [`Outcome::to_line`].
    pub fn from_line(line: &str) -> Option<Outcome> {
        let mut o = Outcome::default();
        for pair in line.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            match k {
                "made" => o.made = v.parse().ok()?,
                "failed" => o.failed = v.parse().ok()?,
                "unexpected" => o.unexpected = v.parse().ok()?,
                "killed" => o.killed = v.parse().ok()?,
                "seconds" => o.seconds = v.parse().ok()?,
                _ => {
                    let status = k.strip_prefix("status")?.parse().ok()?;
                    o.statuses.insert(status, v.parse().ok()?);
                }
            }
        }
        Some(o)
    }
}

/// Request `i` of the mix: method, path, body, expected status.
fn request_for(i: u64) -> (&'static str, &'static str, &'static [u8], u16) {
    match i % 20 {
        0 => ("GET", "/api/slow", b"", 200),
        1 => ("GET", "/missing", b"", 404),
        2 => ("POST", "/api/items", br#"{"name":"widget"}"#, 201),
        3 => ("HEAD", "/", b"", 200),
        4..=11 => ("GET", "/api/items", b"", 200),
        _ => ("GET", "/", b"", 200),
    }
}

/// What the client threads share.
#[derive(Default)]
struct Traffic {
    next: AtomicU64,
    made: AtomicU64,
    failed: AtomicU64,
    unexpected: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
    /// Each request holds a read guard; the kill takes the write guard, so
    /// it happens when no request is in flight.
    gate: RwLock<()>,
    kill_done: AtomicBool,
    killed: AtomicI32,
    last_pid: AtomicI32,
    progress: AtomicU64,
}

/// Sends the traffic of `plan`; kills one worker half-way.
pub fn run(plan: &Plan) -> Outcome {
    let start = Instant::now();
    let t = Traffic::default();
    // Half-way through the requests or the duration, whichever comes first.
    let half_way = |i: u64| {
        plan.requests.is_some_and(|n| n >= 2 && i >= n / 2)
            || plan.duration.is_some_and(|d| start.elapsed() >= d / 2)
    };
    let finished = |i: u64| {
        plan.requests.is_some_and(|n| i >= n) || plan.duration.is_some_and(|d| start.elapsed() >= d)
    };
    std::thread::scope(|s| {
        for _ in 0..plan.threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = t.next.fetch_add(1, Ordering::Relaxed);
                    if finished(i) {
                        break;
                    }
                    if half_way(i) && !t.kill_done.swap(true, Ordering::SeqCst) {
                        t.kill_last_worker(i);
                    }
                    t.send(plan, i);
                    report_progress(plan, start, &t.made, &t.progress);
                }
            });
        }
    });
    Outcome {
        made: t.made.into_inner(),
        failed: t.failed.into_inner(),
        unexpected: t.unexpected.into_inner(),
        killed: t.killed.into_inner(),
        seconds: start.elapsed().as_secs_f64(),
        statuses: t.statuses.into_inner().unwrap_or_else(|e| e.into_inner()),
    }
}

impl Traffic {
    /// SIGKILLs the worker that answered last, while no request is in
    /// flight (before request `i`), and waits until it is gone.
    fn kill_last_worker(&self, i: u64) {
        let _quiet = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let pid = self.last_pid.load(Ordering::SeqCst);
        if pid <= 0 {
            return;
        }
        say(&format!(
            "demo: request {i}: SIGKILL to worker {pid} (no request in flight)"
        ));
        if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            self.killed.store(pid, Ordering::SeqCst);
            // kill() returns before the worker is gone; until it is, it
            // could still accept (and drop) the next connection.
            wait_until_dead(pid, Duration::from_secs(5));
        }
    }

    /// Sends request `i` and counts its outcome.
    fn send(&self, plan: &Plan, i: u64) {
        let _in_flight = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let (method, path, body, want) = request_for(i);
        match http::request(plan.addr, method, path, body, Duration::from_secs(10)) {
            Ok(r) => {
                self.made.fetch_add(1, Ordering::Relaxed);
                if r.status != want {
                    self.unexpected.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(pid) = r.worker_pid {
                    self.last_pid.store(pid, Ordering::SeqCst);
                }
                *self
                    .statuses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(r.status)
                    .or_insert(0) += 1;
            }
            Err(e) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    say(&format!("demo: request {i} ({method} {path}) failed: {e}"));
                }
            }
        }
    }
}

/// Waits until process `pid` (not our child) has exited: its
/// `/proc/PID/stat` is gone or says zombie. Elsewhere than Linux, waits a
/// moment.
fn wait_until_dead(pid: i32, timeout: Duration) {
    let start = Instant::now();
    let stat = format!("/proc/{pid}/stat");
    if !std::path::Path::new("/proc/self/stat").exists() {
        std::thread::sleep(Duration::from_millis(200));
        return;
    }
    while start.elapsed() < timeout {
        let Ok(s) = std::fs::read_to_string(&stat) else {
            return;
        };
        // "pid (comm) S ...": the state follows the last ')'.
        let state = s
            .rfind(')')
            .and_then(|i| s[i + 1..].trim_start().chars().next());
        if matches!(state, Some('Z' | 'X') | None) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One line every 10 % of the requests (or every second with a duration).
fn report_progress(plan: &Plan, start: Instant, made: &AtomicU64, shown: &AtomicU64) {
    let done = made.load(Ordering::Relaxed);
    // With a request count only: a mark every tenth; else one a second.
    let (mark, line) = match (plan.requests, plan.duration) {
        (Some(total), None) => {
            let step = total.div_ceil(10).max(1);
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            (
                done / step,
                format!(
                    "demo: {done}/{total} requests ({:.0} req/s)",
                    done as f64 / secs
                ),
            )
        }
        _ => {
            let sec = start.elapsed().as_secs();
            (sec, format!("demo: {done} requests after {sec} s"))
        }
    };
    let prev = shown.load(Ordering::Relaxed);
    if mark > prev
        && shown
            .compare_exchange(prev, mark, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        say(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trip() {
        let mut o = Outcome {
            made: 7,
            failed: 1,
            unexpected: 0,
            killed: 42,
            seconds: 1.5,
            statuses: BTreeMap::new(),
        };
        o.statuses.insert(200, 6);
        o.statuses.insert(404, 1);
        assert_eq!(Outcome::from_line(&o.to_line()), Some(o));
    }
}
