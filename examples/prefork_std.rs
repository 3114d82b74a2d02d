//! A complete pre-fork HTTP server with only the standard library: a
//! [`Supervisor`] forks N workers that accept on one listening socket, each
//! records its requests into its own metrics files, and any worker answers
//! `/metrics` with the merged metrics of all of them.
//!
//! ```text
//! PROMETHEUS_MULTIPROC_DIR=/tmp/m cargo run --example prefork_std -- [--workers N] [--addr 127.0.0.1:8000]
//! curl localhost:8000/  curl localhost:8000/pid  curl localhost:8000/metrics
//! ```
//!
//! Stop it with Ctrl-C or `SIGTERM`: the workers are stopped, marked dead,
//! and no live gauge is left in the directory. The first line on stdout is
//! `listening on http://ADDR` (the test suite reads it). Without
//! `PROMETHEUS_MULTIPROC_DIR` the metrics go to a temporary directory.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

use prometheus_multiproc::prefork::{Supervisor, Worker};
use prometheus_multiproc::prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    CounterVec, Gauge, GaugeMode, HistogramVec, MetricsDir, MultiProcessCollector, integrations,
};

type BoxError = Box<dyn std::error::Error>;

/// The server's metrics, created once in the supervisor before forking.
struct Metrics {
    requests: CounterVec,
    duration: HistogramVec,
    in_progress: Gauge,
}

fn main() -> Result<(), BoxError> {
    let (workers, addr) = parse_args()?;
    let tmp;
    let dir_path = match std::env::var_os("PROMETHEUS_MULTIPROC_DIR") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    // Files of a previous run would keep counting: start empty, as with gunicorn.
    empty_db_files(&dir_path)?;
    let dir = MetricsDir::open(&dir_path)?;
    let metrics = Metrics {
        requests: CounterVec::new_in(
            &dir,
            Opts::new("http_requests_total", "HTTP requests answered."),
            &["method", "path", "status"],
        )?,
        duration: HistogramVec::new_in(
            &dir,
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency."),
            &["path"],
        )?,
        // Live-sum: a dead worker's last value is dropped.
        in_progress: Gauge::new_in(
            &dir,
            "http_requests_in_progress",
            "HTTP requests being handled.",
            GaugeMode::LiveSum,
        )?,
    };

    // Written by the supervisor itself: a live gauge that disappears with
    // it (`run` removes the supervisor's own live-gauge files at the end).
    let configured = Gauge::new_in(
        &dir,
        "prefork_workers",
        "Worker processes the supervisor keeps running.",
        GaugeMode::LiveMax,
    )?;
    // CAST: a worker count is far below 2^53.
    configured.set(workers as f64);

    let supervisor = Supervisor::bind(&addr)?
        .workers(workers)
        .metrics_dir(&dir_path);
    println!("listening on http://{}", supervisor.local_addr()?);
    std::io::stdout().flush()?;
    let summary = supervisor.run(|worker| serve(worker, &metrics))?;
    eprintln!(
        "prefork_std: stopped; {} workers started, {} replaced, {} killed at the stop",
        summary.started, summary.replaced, summary.killed
    );
    Ok(())
}

fn parse_args() -> Result<(usize, String), BoxError> {
    let mut workers = 3;
    let mut addr = "127.0.0.1:8000".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workers" => workers = args.next().ok_or("--workers N")?.parse()?,
            "--addr" => addr = args.next().ok_or("--addr HOST:PORT")?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok((workers, addr))
}

fn empty_db_files(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "db") {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

/// A worker: one connection at a time, one request per connection.
fn serve(worker: &Worker<'_>, m: &Metrics) -> Result<(), BoxError> {
    let collector = MultiProcessCollector::new(worker.metrics_dir())?;
    for stream in worker.listener().incoming() {
        let stream = stream?;
        if let Err(e) = handle(stream, m, &collector) {
            eprintln!("worker {}: {e}", worker.index());
        }
    }
    Ok(())
}

fn handle(
    stream: TcpStream,
    m: &Metrics,
    collector: &MultiProcessCollector,
) -> Result<(), BoxError> {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut accept = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("accept")
        {
            accept = Some(v.trim().to_string());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if target == "/metrics" {
        // Scrapes are not counted in http_requests_total.
        let r = integrations::render(collector, accept.as_deref())?;
        return respond(&stream, 200, &r.content_type, &r.body);
    }

    m.in_progress.inc();
    let start = Instant::now();
    let (status, body) = match (method, target) {
        ("GET", "/") => (200, b"hello\n".to_vec()),
        ("GET", "/pid") => (200, format!("{}\n", std::process::id()).into_bytes()),
        _ => (404, b"not found\n".to_vec()),
    };
    // Label values from fixed sets: raw paths would let clients create series.
    let path = match target {
        "/" | "/pid" => target,
        _ => "other",
    };
    let method = if method == "GET" { "GET" } else { "other" };
    m.duration
        .with_label_values(&[path])
        .observe(start.elapsed().as_secs_f64());
    // Counted before the response is written: every answer a client gets is
    // in the totals, even if this worker is killed right after.
    m.requests
        .with_label_values(&[method, path, &status.to_string()])
        .inc();
    m.in_progress.dec();
    respond(&stream, status, "text/plain; charset=utf-8", &body)
}

fn respond(
    mut stream: &TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), BoxError> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()?;
    Ok(())
}
