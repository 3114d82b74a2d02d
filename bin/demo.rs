//! `demo`: a real pre-fork HTTP server on the library — one listener, forked workers, a SIGKILLed worker replaced, the merged metrics checked against the traffic.
//!
//! # Processes
//!
//! The supervisor stays single-threaded for its whole life: it binds the
//! listener, creates the metrics, forks the workers, then forks a *client
//! process* that drives the traffic with threads. So every `fork` (the first
//! workers, the client, and the replacements of dead workers) happens from a
//! process with one thread: no lock of another thread (allocator, stdio) can
//! be held across it. The client process never forks.
//!
//! The supervisor's loop sleeps in `poll` on a self-pipe that its SIGCHLD,
//! SIGINT and SIGTERM handlers write to; on wake-up it reaps children with
//! `waitpid(WNOHANG)`, calls `mark_process_dead_in` for each dead worker,
//! and forks a replacement (see `docs/prefork.md`).

mod client;
mod http;
mod signals;
mod worker;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::env::{ENV_VAR, ENV_VAR_DEPRECATED};
use prometheus_multiproc::{
    CounterVec, Gauge, GaugeMode, HistogramVec, MetricsDir, MultiProcessCollector,
    mark_process_dead_in, mark_worker_dead_in, set_worker_id,
};

use crate::{CliResult, fail};
use client::{Outcome, Plan};
use signals::SelfPipe;
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

/// The worker slot of a child and what its files are named after.
#[derive(Clone)]
struct Slot {
    index: u32,
    /// `Some("w3")` with `--worker-ids`.
    worker_id: Option<String>,
}

/// The supervisor's children. Dropping it kills and reaps every child still
/// running, so no error path leaves processes behind.
struct Children {
    workers: HashMap<Pid, Slot>,
    client: Option<Pid>,
}

impl Drop for Children {
    fn drop(&mut self) {
        let pids: Vec<Pid> = self.workers.keys().copied().chain(self.client).collect();
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        for pid in pids {
            let _ = waitpid(pid, None);
        }
    }
}

/// Everything a freshly forked worker needs.
struct WorkerKit<'a> {
    listener: &'a TcpListener,
    metrics: &'a Metrics,
    dir: &'a Path,
}

/// Runs `body` in a forked child that never returns into the caller's stack.
///
/// # Safety (of the fork)
///
/// Called only from the single-threaded supervisor, so no other thread can
/// hold a lock across the fork; the library's atfork handlers keep its own
/// state consistent. The child ends with `_exit`, running none of the
/// parent's destructors (the temporary directory is the parent's to remove).
fn fork_child(body: impl FnOnce() -> i32) -> CliResult<Pid> {
    // SAFETY: see above: one thread, and the child leaves through `_exit`.
    match unsafe { fork() }.map_err(|e| fail!("demo: fork: {e}"))? {
        ForkResult::Child => {
            signals::restore_defaults();
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: _exit ends the process at once; nothing else runs.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

fn spawn_worker(kit: &WorkerKit<'_>, slot: &Slot) -> CliResult<Pid> {
    fork_child(|| {
        if let Some(id) = &slot.worker_id {
            // Before the first metric write of this process.
            if let Err(e) = set_worker_id(id) {
                say(&format!("demo: worker {id}: {e}"));
                return 1;
            }
        }
        worker::serve(kit.listener, kit.metrics, kit.dir)
    })
}

/// Removes the live-gauge files of a dead worker, as prometheus_client's
/// `mark_process_dead` does.
fn mark_dead(dir: &Path, pid: Pid, slot: &Slot) -> CliResult {
    match &slot.worker_id {
        Some(id) => mark_worker_dead_in(dir, id)?,
        None => mark_process_dead_in(dir, pid.as_raw())?,
    }
    Ok(())
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
    prometheus_multiproc::encoding::encode_text(&scrape.families, &mut body);
    String::from_utf8(body).map_err(|_| fail!("demo: exposition is not UTF-8"))
}

pub fn run(args: Args) -> CliResult {
    let requests = match (args.requests, args.duration) {
        (None, None) => Some(2000),
        (r, _) => r,
    };
    let duration = args.duration.map(Duration::from_secs_f64);

    // The directory: --dir, the variable, or a temporary one.
    let use_temp = args.dir.is_none()
        && std::env::var_os(ENV_VAR).is_none()
        && std::env::var_os(ENV_VAR_DEPRECATED).is_none();
    let temp = if use_temp {
        Some(
            tempfile::Builder::new()
                .prefix("prometheus-multiproc-demo-")
                .tempdir()
                .map_err(|e| fail!("demo: creating a temporary directory: {e}"))?,
        )
    } else {
        None
    };
    let dir = match &temp {
        Some(t) => t.path().to_path_buf(),
        None => crate::metrics_dir(args.dir.clone())?,
    };
    let report = supervise(&dir, requests, duration, &args);
    // Count files before the temporary directory goes away.
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    let (exposition, summary) = report?;
    drop(temp);

    let mut out = std::io::stdout().lock();
    match out
        .write_all(exposition.as_bytes())
        .and_then(|()| out.flush())
    {
        // `demo | head`: the summary and the check still follow.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(fail!("writing to stdout: {e}"));
        }
        _ => {}
    }
    drop(out);

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
    let place = if use_temp {
        format!("{} (temporary, removed)", dir.display())
    } else {
        dir.display().to_string()
    };
    say(&format!("demo: {files} files in {place}"));
    let made_here = o.made as f64;
    say(&format!(
        "demo: sum of http_requests_total = {} (counted by this run: {}), requests made = {}",
        summary.total_after, summary.counted, o.made
    ));
    if summary.counted != made_here {
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
    replaced: u32,
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

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| fail!("demo: bind: {e}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let mdir = MetricsDir::open(dir)?;
    let buckets = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
    let metrics = Metrics {
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
    };
    let kit = WorkerKit {
        listener: &listener,
        metrics: &metrics,
        dir,
    };
    let sig = SelfPipe::install().map_err(|e| fail!("demo: signal handlers: {e}"))?;
    let mut children = Children {
        workers: HashMap::new(),
        client: None,
    };
    say(&format!(
        "demo: supervisor {} listening on http://{addr}/ with metrics in {}",
        std::process::id(),
        dir.display()
    ));
    let mut slots = Vec::new();
    for index in 0..args.workers {
        let slot = Slot {
            index,
            worker_id: args.worker_ids.then(|| format!("w{index}")),
        };
        let pid = spawn_worker(&kit, &slot)?;
        children.workers.insert(pid, slot.clone());
        slots.push(pid.to_string());
    }
    say(&format!(
        "demo: forked {} workers: {}",
        args.workers,
        slots.join(" ")
    ));

    // The client process: its result comes back through a pipe.
    let (result_read, result_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail!("demo: pipe: {e}"))?;
    let plan = Plan {
        addr,
        requests,
        duration,
        threads: args.clients as usize,
    };
    let client_pid = {
        let result_write = &result_write;
        fork_child(|| {
            let outcome = client::run(&plan);
            let line = outcome.to_line() + "\n";
            let mut w = std::fs::File::from(result_write.try_clone().expect("dup"));
            i32::from(w.write_all(line.as_bytes()).is_err())
        })?
    };
    drop(result_write);
    children.client = Some(client_pid);
    say(&format!(
        "demo: client process {client_pid} sends {} with {} connections",
        match (requests, duration) {
            (Some(n), None) => format!("{n} requests"),
            (Some(n), Some(d)) => format!("up to {n} requests for {:.1} s", d.as_secs_f64()),
            (None, Some(d)) => format!("requests for {:.1} s", d.as_secs_f64()),
            (None, None) => unreachable!("a default is set"),
        },
        args.clients
    ));

    // The supervisor loop.
    let limit = duration.unwrap_or(Duration::ZERO) + Duration::from_secs(120);
    let started = Instant::now();
    let mut replaced = 0u32;
    let client_status = loop {
        sig.wait(Duration::from_millis(250));
        if sig.stop_requested() {
            return Err(fail!("demo: interrupted; workers stopped"));
        }
        let mut client_done = None;
        for (pid, status) in reap()? {
            if Some(pid) == children.client {
                children.client = None;
                client_done = Some(status);
            } else if let Some(slot) = children.workers.remove(&pid) {
                mark_dead(dir, pid, &slot)?;
                if replaced >= 4 * args.workers {
                    return Err(fail!(
                        "demo: workers keep dying; last: {pid} {}",
                        describe(status)
                    ));
                }
                let new = spawn_worker(&kit, &slot)?;
                children.workers.insert(new, slot.clone());
                replaced += 1;
                say(&format!(
                    "demo: worker {pid} (slot {}) {}; marked dead, forked worker {new} to replace it",
                    slot.index,
                    describe(status)
                ));
            }
        }
        if let Some(status) = client_done {
            break status;
        }
        if started.elapsed() > limit {
            return Err(fail!(
                "demo: the client did not finish within {} s",
                limit.as_secs()
            ));
        }
    };
    if !matches!(client_status, WaitStatus::Exited(_, 0)) {
        return Err(fail!(
            "demo: the client process {}",
            describe(client_status)
        ));
    }
    let outcome = read_outcome(result_read)?;

    // The final scrape, from whichever worker accepts it.
    let resp = http::request(addr, "GET", "/metrics", b"", Duration::from_secs(30))
        .map_err(|e| fail!("demo: scraping /metrics: {e}"))?;
    if resp.status != 200 {
        return Err(fail!(
            "demo: /metrics answered {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body).trim()
        ));
    }
    let exposition =
        String::from_utf8(resp.body).map_err(|_| fail!("demo: /metrics is not UTF-8"))?;
    let scraped_from = resp
        .worker_pid
        .map_or_else(|| "?".to_string(), |p| p.to_string());

    stop_workers(&mut children, dir)?;
    // The supervisor's own live gauge file (it created the gauge before
    // forking) goes too: it serves no requests.
    mark_process_dead_in(dir, std::process::id() as i32)?;
    drop(sig);

    let total_after = requests_total(&exposition);
    Ok((
        exposition,
        Summary {
            outcome,
            replaced,
            scraped_from,
            total_after,
            counted: total_after - total_before,
        },
    ))
}

/// Every child that has exited, without blocking.
fn reap() -> CliResult<Vec<(Pid, WaitStatus)>> {
    let mut done = Vec::new();
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(done),
            Ok(s @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _))) => {
                done.push((pid, s))
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(fail!("demo: waitpid: {e}")),
        }
    }
}

fn read_outcome(fd: OwnedFd) -> CliResult<Outcome> {
    let mut text = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| fail!("demo: reading the client's result: {e}"))?;
    Outcome::from_line(text.trim()).ok_or_else(|| fail!("demo: bad client result {text:?}"))
}

/// SIGTERM to every worker, up to 5 s for them to exit, then SIGKILL; each
/// one reaped and marked dead.
fn stop_workers(children: &mut Children, dir: &Path) -> CliResult {
    for pid in children.workers.keys() {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children.workers.is_empty() {
        for (pid, _) in reap()? {
            if let Some(slot) = children.workers.remove(&pid) {
                mark_dead(dir, pid, &slot)?;
            }
        }
        if Instant::now() > deadline {
            for pid in children.workers.keys() {
                let _ = kill(*pid, Signal::SIGKILL);
            }
            for (pid, slot) in std::mem::take(&mut children.workers) {
                let _ = waitpid(pid, None);
                mark_dead(dir, pid, &slot)?;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
