//! A demo worker: accepts on the shared listener, serves a few routes one request at a time, records metrics, and answers `/metrics` with the merged view.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use prometheus_multiproc::{
    CounterVec, Gauge, HistogramVec, MultiProcessCollector, encoding as expose,
};

use super::http::{self, ReadError, Request};

/// The demo application's metrics, created once by the supervisor before it
/// forks; every worker records into its own files through the same handles.
#[derive(Clone)]
pub struct Metrics {
    /// `http_requests_total{method, path, status}`
    pub requests: CounterVec,
    /// `http_request_duration_seconds{method, path}`
    pub duration: HistogramVec,
    /// `http_requests_in_progress` (live sum: dead workers drop out)
    pub in_progress: Gauge,
}

/// How long a worker waits for a slow client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause of `/api/slow`.
pub const SLOW: Duration = Duration::from_millis(5);

/// Serves connections forever (until a signal ends the process).
pub fn serve(listener: &TcpListener, metrics: &Metrics, dir: &Path) -> ! {
    let pid = std::process::id().to_string();
    let mut failures = 0u32;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                failures = 0;
                // A client that goes away mid-request is its own problem.
                let _ = handle(stream, metrics, dir, &pid);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE, ENOBUFS...: back off instead of spinning.
                failures += 1;
                if failures == 1 {
                    eprintln!("demo: worker {pid}: accept: {e}");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The label of a method: a fixed set, so that clients cannot make up series.
fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The label of a path: the route, or `other` for unknown paths (raw paths
/// would let clients create unbounded series).
fn path_label(p: &str) -> &'static str {
    match p {
        "/" => "/",
        "/api/items" => "/api/items",
        "/api/slow" => "/api/slow",
        _ => "other",
    }
}

/// The application: status, content type, body, extra headers.
fn route(req: &Request) -> (u16, &'static str, Vec<u8>, Option<&'static str>) {
    let m = req.method.as_str();
    let get = m == "GET" || m == "HEAD";
    let text = "text/plain; charset=utf-8";
    let json = "application/json";
    match req.path.as_str() {
        "/" if get => (
            200,
            text,
            format!("hello from worker {}\n", std::process::id()).into_bytes(),
            None,
        ),
        "/api/items" if get => (200, json, br#"{"items":[1,2,3]}"#.to_vec(), None),
        "/api/items" if m == "POST" => (201, json, br#"{"created":true}"#.to_vec(), None),
        "/api/slow" if get => {
            std::thread::sleep(SLOW);
            (200, json, br#"{"slow":true}"#.to_vec(), None)
        }
        "/" | "/api/slow" => (
            405,
            text,
            b"method not allowed\n".to_vec(),
            Some("GET, HEAD"),
        ),
        "/api/items" => (
            405,
            text,
            b"method not allowed\n".to_vec(),
            Some("GET, HEAD, POST"),
        ),
        _ => (404, text, b"not found\n".to_vec(), None),
    }
}

fn handle(mut stream: TcpStream, m: &Metrics, dir: &Path, pid: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let worker = [("X-Worker-Pid", pid)];
    let req = match http::read_request(&mut stream) {
        Ok(r) => r,
        Err(ReadError::Io) => return Ok(()),
        // Not counted: no method or path we could label.
        Err(ReadError::Bad(status, why)) => {
            let body = format!("{why}\n");
            let t = "text/plain; charset=utf-8";
            return http::write_response(&mut stream, status, &worker, t, body.as_bytes(), false);
        }
    };
    let head_only = req.method == "HEAD";
    if req.path == "/metrics" {
        // The merged view of every worker's files; not an application
        // request, so not counted.
        return metrics_endpoint(&mut stream, &req, dir, &worker, head_only);
    }

    // Every metric is recorded before the response is written: once a client
    // has its response, the request is counted in this worker's file, and a
    // SIGKILL after that loses nothing.
    m.in_progress.inc();
    let start = Instant::now();
    let (status, content_type, body, allow) = route(&req);
    let elapsed = start.elapsed().as_secs_f64();
    let (method, path) = (method_label(&req.method), path_label(&req.path));
    m.duration
        .with_label_values(&[method, path])
        .observe(elapsed);
    m.requests
        .with_label_values(&[method, path, &status.to_string()])
        .inc();
    m.in_progress.dec();

    let mut headers = worker.to_vec();
    if let Some(allow) = allow {
        headers.push(("Allow", allow));
    }
    http::write_response(
        &mut stream,
        status,
        &headers,
        content_type,
        &body,
        head_only,
    )
}

fn metrics_endpoint(
    stream: &mut TcpStream,
    req: &Request,
    dir: &Path,
    worker: &[(&str, &str)],
    head_only: bool,
) -> std::io::Result<()> {
    let text = "text/plain; charset=utf-8";
    if req.method != "GET" && req.method != "HEAD" {
        let mut h = worker.to_vec();
        h.push(("Allow", "GET, HEAD"));
        return http::write_response(stream, 405, &h, text, b"method not allowed\n", false);
    }
    let mut body = Vec::new();
    let merged = MultiProcessCollector::new(dir)
        .and_then(|c| c.collect_families())
        .map(|scrape| expose::Format::Text.encode(&scrape.families, &mut body));
    match merged {
        Ok(()) => http::write_response(
            stream,
            200,
            worker,
            "text/plain; version=0.0.4; charset=utf-8",
            &body,
            head_only,
        ),
        Err(e) => {
            let msg = format!("collecting metrics failed: {e}\n");
            http::write_response(stream, 500, worker, text, msg.as_bytes(), head_only)
        }
    }
}
