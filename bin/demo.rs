//! `demo`: a real pre-fork HTTP server on the library — one listener, forked workers, a SIGKILLed worker replaced, the merged metrics checked against the traffic.
//!
//! # Processes
//!
//! The demo is a thin user of the library's [`Supervisor`] (feature
//! `prefork`, see `docs/prefork.md`). It binds the listener, creates the
//! metrics, forks a *client process* that drives the traffic with threads,
//! then runs the supervisor: it forks the workers, reaps and marks dead the
//! one the client SIGKILLs, forks its replacement, and stops them all when
//! the client, done, sends it SIGTERM. Every `fork` happens while the demo
//! has one thread; the client process never forks.

mod client;
mod http;
mod worker;

use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::env::{ENV_VAR, ENV_VAR_DEPRECATED};
use prometheus_multiproc::prefork::Supervisor;
use prometheus_multiproc::{
    CounterVec, Gauge, GaugeMode, HistogramVec, MetricsDir, MultiProcessCollector,
};

use crate::{CliResult, fail};
use client::{Outcome, Plan};
use worker::Metrics;

#[derive(clap::Args)]
#[command(after_help = "\
Forks WORKERS processes that accept on one shared listener (127.0.0.1, a free \
port), drives REQUESTS requests at them from a client process, SIGKILLs one \
worker half-way and forks a replacement, then scrapes /metrics from a worker \
and prints the merged exposition on stdout. Progress and a summary go to \
stderr. Exits 1 if the merged http_requests_total does not add up to the \
requests made. Without --dir and without PROMETHEUS_MULTIPROC_DIR it works \
in a temporary directory removed at exit.")]
pub struct Args {
    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: u32,
    /// Requests to send [default: 2000; with --duration: no limit]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Send requests for this many seconds (stops earlier if --requests is reached).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    duration: Option<f64>,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    clients: u32,
    /// Metrics directory [default: $PROMETHEUS_MULTIPROC_DIR, else a temporary directory]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Name worker files after stable slot ids (w0, w1, ...) with
    /// set_worker_id instead of pids: a replacement continues its slot's files.
    #[arg(long)]
    worker_ids: bool,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

/// Writes one line to stderr in a single `write`, so that the lines of the
/// supervisor, the client and the workers do not mix.
pub fn say(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("was killed by {sig}"),
        other => format!("{other:?}"),
    }
}

/// The sum of the `http_requests_total` samples in a text exposition.
fn requests_total(exposition: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") || l.starts_with("http_requests_total "))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The merged exposition of `dir`, as the library writes it.
fn merged_text(dir: &Path) -> CliResult<String> {
    let mut body = Vec::new();
    let scrape = MultiProcessCollector::new(dir)?.collect_families()?;
    prometheus_multiproc::encoding::Format::Text.encode(&scrape.families, &mut body);
    String::from_utf8(body).map_err(|_| fail!("demo: exposition is not UTF-8"))
}

pub fn run(args: Args) -> CliResult {
    let requests = match (args.requests, args.duration) {
        (None, None) => Some(2000),
        (r, _) => r,
    };
    let duration = args.duration.map(Duration::from_secs_f64);
    let (temp, dir) = demo_dir(&args)?;
    let report = supervise(&dir, requests, duration, &args);
    // Count files before the temporary directory goes away.
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    let (exposition, summary) = report?;
    let place = match temp {
        Some(_) => format!("{} (temporary, removed)", dir.display()),
        None => dir.display().to_string(),
    };
    drop(temp);
    write_stdout(&exposition)?;
    check(&summary, &args, &format!("{files} files in {place}"))
}

/// The directory: `--dir`, the variable, or a temporary one (returned too,
/// to be removed when dropped).
fn demo_dir(args: &Args) -> CliResult<(Option<tempfile::TempDir>, PathBuf)> {
    let use_temp = args.dir.is_none()
        && std::env::var_os(ENV_VAR).is_none()
        && std::env::var_os(ENV_VAR_DEPRECATED).is_none();
    if !use_temp {
        return Ok((None, crate::metrics_dir(args.dir.clone())?));
    }
    let t = tempfile::Builder::new()
        .prefix("prometheus-multiproc-demo-")
        .tempdir()
        .map_err(|e| fail!("demo: creating a temporary directory: {e}"))?;
    let dir = t.path().to_path_buf();
    Ok((Some(t), dir))
}

/// Writes the exposition to stdout; a closed pipe (`demo | head`) is not an
/// error: the summary and the check still follow.
fn write_stdout(exposition: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(exposition.as_bytes())
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(fail!("writing to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// Prints the summary (`files`: what the directory held) and fails unless
/// every request was counted and answered.
fn check(summary: &Summary, args: &Args, files: &str) -> CliResult {
    let o = &summary.outcome;
    say(&format!(
        "demo: {} requests in {:.2} s ({:.0} req/s) from {} client connections; {} failed; statuses {}",
        o.made,
        o.seconds,
        o.made as f64 / o.seconds.max(1e-9),
        args.clients,
        o.failed,
        o.statuses
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    say(&format!(
        "demo: workers: {} started, {} killed with SIGKILL, {} replaced; /metrics answered by worker {}",
        args.workers,
        usize::from(o.killed > 0),
        summary.replaced,
        summary.scraped_from
    ));
    say(&format!("demo: {files}"));
    say(&format!(
        "demo: sum of http_requests_total = {} (counted by this run: {}), requests made = {}",
        summary.total_after, summary.counted, o.made
    ));
    if summary.counted != o.made as f64 {
        return Err(fail!(
            "demo: http_requests_total grew by {} but {} requests were made",
            summary.counted,
            o.made
        ));
    }
    if o.failed > 0 || o.unexpected > 0 {
        return Err(fail!(
            "demo: {} requests failed and {} got an unexpected status",
            o.failed,
            o.unexpected
        ));
    }
    say(if o.killed > 0 {
        "demo: OK: every request is counted, the SIGKILLed worker's included"
    } else {
        "demo: OK: every request is counted"
    });
    Ok(())
}

struct Summary {
    outcome: Outcome,
    replaced: usize,
    scraped_from: String,
    total_after: f64,
    counted: f64,
}

fn supervise(
    dir: &Path,
    requests: Option<u64>,
    duration: Option<Duration>,
    args: &Args,
) -> CliResult<(String, Summary)> {
    // Whatever the directory already counts (a reused --dir) is not ours.
    let total_before = requests_total(&merged_text(dir)?);

    let supervisor = Supervisor::bind("127.0.0.1:0")
        .map_err(|e| fail!("demo: bind: {e}"))?
        .workers(args.workers as usize)
        .metrics_dir(dir)
        .worker_ids(args.worker_ids.then_some("w"))
        .shutdown_timeout(Duration::from_secs(5))
        // The SIGKILLed worker is replaced while the traffic still runs; a
        // crash loop still backs off.
        .restart_backoff(
            Duration::from_millis(100),
            Duration::from_millis(5),
            Duration::from_secs(1),
        )
        .on_event(|event| say(&format!("demo: {event}")));
    let addr: SocketAddr = supervisor.local_addr()?;
    let metrics = create_metrics(dir)?;
    say(&format!(
        "demo: supervisor {} listening on http://{addr}/ with metrics in {}",
        std::process::id(),
        dir.display()
    ));

    // The client is forked first, while this process is single-threaded and
    // before the supervisor's signal handlers exist. It sends the traffic,
    // scrapes /metrics, writes its result to an unnamed file and asks the
    // supervisor to stop (SIGTERM); `Supervisor::run` then stops, reaps and
    // marks dead the workers, and removes this process's own live gauges.
    let mut result =
        tempfile::tempfile().map_err(|e| fail!("demo: creating a result file: {e}"))?;
    let plan = Plan {
        addr,
        requests,
        duration,
        threads: args.clients as usize,
    };
    let client = Client(fork_client(&plan, &result)?);
    say(&format!(
        "demo: client process {} sends {} with {} connections",
        client.0,
        match (requests, duration) {
            (Some(n), None) => format!("{n} requests"),
            (Some(n), Some(d)) => format!("up to {n} requests for {:.1} s", d.as_secs_f64()),
            (None, Some(d)) => format!("requests for {:.1} s", d.as_secs_f64()),
            (None, None) => unreachable!("a default is set"),
        },
        args.clients
    ));
    let summary = supervisor
        .run(|w| -> Result<(), std::convert::Infallible> {
            worker::serve(w.listener(), &metrics, w.metrics_dir())
        })
        .map_err(|e| fail!("demo: {e}"))?;
    let status = client.wait()?;
    if !matches!(status, WaitStatus::Exited(_, 0)) {
        return Err(fail!("demo: the client process {}", describe(status)));
    }
    let (outcome, exposition, scraped_from) = read_result(&mut result)?;
    let total_after = requests_total(&exposition);
    Ok((
        exposition,
        Summary {
            outcome,
            replaced: summary.replaced,
            scraped_from,
            total_after,
            counted: total_after - total_before,
        },
    ))
}

/// The demo's metrics, created in the supervisor before forking (the
/// workers inherit the handles).
fn create_metrics(dir: &Path) -> CliResult<Metrics> {
    let mdir = MetricsDir::open(dir)?;
    let buckets = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
    Ok(Metrics {
        requests: CounterVec::new_in(
            &mdir,
            Opts::new("http_requests_total", "HTTP requests served."),
            &["method", "path", "status"],
        )?,
        duration: HistogramVec::new_in(
            &mdir,
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency.")
                .buckets(buckets),
            &["method", "path"],
        )?,
        in_progress: Gauge::new_in(
            &mdir,
            "http_requests_in_progress",
            "HTTP requests being handled.",
            GaugeMode::LiveSum,
        )?,
    })
}

/// The client process; dropping it kills and reaps it, so no error path
/// leaves it behind.
struct Client(Pid);

impl Client {
    fn wait(self) -> CliResult<WaitStatus> {
        let pid = self.0;
        std::mem::forget(self);
        loop {
            match waitpid(pid, None) {
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(fail!("demo: waitpid: {e}")),
                Ok(status) => return Ok(status),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// Forks the client process: traffic, the final scrape (from whichever
/// worker accepts it), its result written to `result`, then SIGTERM to the
/// supervisor, whatever happened.
///
/// # Safety (of the fork)
///
/// Called while the demo is single-threaded, so no other thread can hold a
/// lock across the fork; the library's atfork handlers keep its own state
/// consistent. The child ends with `_exit`, running none of the parent's
/// destructors (the temporary directory is the parent's to remove).
fn fork_client(plan: &Plan, result: &std::fs::File) -> CliResult<Pid> {
    // SAFETY: see above: one thread, and the child leaves through `_exit`.
    match unsafe { fork() }.map_err(|e| fail!("demo: fork: {e}"))? {
        ForkResult::Child => {
            let body = || {
                let outcome = client::run(plan);
                let scrape = scrape(plan.addr);
                let mut w = result;
                let written = match &scrape {
                    Ok((text, from)) => write!(w, "{}\n{from}\n{text}", outcome.to_line()).is_ok(),
                    Err(e) => {
                        say(e);
                        false
                    }
                };
                i32::from(!written)
            };
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            let _ = kill(nix::unistd::getppid(), Signal::SIGTERM);
            // SAFETY: _exit ends the process at once; nothing else runs.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The merged exposition from a worker's `/metrics`, and the worker's pid.
fn scrape(addr: SocketAddr) -> Result<(String, String), String> {
    let resp = http::request(addr, "GET", "/metrics", b"", Duration::from_secs(30))
        .map_err(|e| format!("demo: scraping /metrics: {e}"))?;
    if resp.status != 200 {
        return Err(format!(
            "demo: /metrics answered {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body).trim()
        ));
    }
    let text = String::from_utf8(resp.body).map_err(|_| "demo: /metrics is not UTF-8")?;
    let from = resp
        .worker_pid
        .map_or_else(|| "?".to_string(), |p| p.to_string());
    Ok((text, from))
}

/// The client's result: its outcome line, the scraping worker's pid, the
/// exposition.
fn read_result(file: &mut std::fs::File) -> CliResult<(Outcome, String, String)> {
    let mut text = String::new();
    file.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .map_err(|e| fail!("demo: reading the client's result: {e}"))?;
    let mut parts = text.splitn(3, '\n');
    let (Some(line), Some(from), Some(exposition)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(fail!("demo: incomplete client result"));
    };
    let outcome =
        Outcome::from_line(line.trim()).ok_or_else(|| fail!("demo: bad client result {line:?}"))?;
    Ok((outcome, exposition.to_string(), from.to_string()))
}
