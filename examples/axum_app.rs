//! A pre-fork axum server: N worker processes share one listening socket,
//! each records request metrics with `MetricsLayer` into its own files, and
//! any worker answers `/metrics` with the merged metrics of all of them.
//!
//! ```text
//! cargo run --example axum_app --features tower -- [--workers N] [--port P] [--self-test]
//! ```
//!
//! Without `--self-test` it serves on 127.0.0.1 until interrupted (try
//! `curl localhost:8000/users/7` and `curl localhost:8000/metrics`). With
//! `--self-test` it serves on a free port, sends requests to itself, checks
//! the merged counts, stops the workers and exits (0 on success).
//!
//! The metrics directory is `PROMETHEUS_MULTIPROC_DIR` if set (emptied of
//! `.db` files first, as a server should do at start), else a temporary one.
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use axum::Router;
use axum::extract::{MatchedPath, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};
use prometheus_multiproc::integrations::tower::MetricsLayer;
use prometheus_multiproc::{Enum, MetricsDir, MultiProcessCollector, integrations as exposition};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut workers = 3usize;
    let mut port = 8000u16;
    let mut self_test = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workers" => workers = args.next().ok_or("--workers N")?.parse()?,
            "--port" => port = args.next().ok_or("--port P")?.parse()?,
            "--self-test" => self_test = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if self_test {
        port = 0;
    }

    // The metrics directory: must exist before the workers start, and be
    // emptied when the whole server (re)starts.
    let tmp;
    let dir_path = match std::env::var_os("PROMETHEUS_MULTIPROC_DIR") {
        Some(p) => {
            let p = std::path::PathBuf::from(p);
            std::fs::create_dir_all(&p)?;
            for e in std::fs::read_dir(&p)? {
                let e = e?.path();
                if e.extension().is_some_and(|x| x == "db") {
                    std::fs::remove_file(e)?;
                }
            }
            p
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let dir = MetricsDir::open(&dir_path)?;

    // Built once, before forking: each worker writes its own files.
    let layer = MetricsLayer::builder()
        .dir(&dir)
        .route_from_extension(|p: &MatchedPath| p.as_str())
        .exclude_path("/metrics")
        .app_info(&[("version", env!("CARGO_PKG_VERSION"))])
        .build()?;
    let mode = Enum::new_in(
        &dir,
        "app_mode",
        "Serving mode.",
        &["serving", "maintenance"],
    )?;

    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    eprintln!(
        "serving on http://{addr} with {workers} workers; metrics in {}",
        dir_path.display()
    );

    // Fork the workers while this process is still single-threaded; each
    // starts its own tokio runtime.
    let mut pids = Vec::new();
    for _ in 0..workers {
        // SAFETY: no other thread exists yet in this process, so the child
        // starts from a consistent state; it runs the worker and exits.
        match unsafe { fork() }? {
            ForkResult::Child => {
                let code = match worker(listener, layer, mode, &dir_path) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("worker {}: {e}", std::process::id());
                        1
                    }
                };
                std::process::exit(code);
            }
            ForkResult::Parent { child } => pids.push(child),
        }
    }
    drop(listener);

    if self_test {
        let result = run_self_test(&addr.to_string());
        stop(&pids, &dir_path);
        result?;
        eprintln!("self-test passed");
        return Ok(());
    }
    // Supervise: when a worker exits, drop its live gauges, as a
    // gunicorn `child_exit` hook calling mark_process_dead does.
    while !pids.is_empty() {
        if let Ok(status) = waitpid(None, None)
            && let Some(pid) = status.pid()
        {
            pids.retain(|p| *p != pid);
            prometheus_multiproc::mark_process_dead_in(&dir_path, pid.as_raw())?;
            eprintln!("worker {pid} exited: {status:?}");
        }
    }
    Ok(())
}

fn worker(
    listener: TcpListener,
    layer: MetricsLayer,
    mode: Enum,
    dir: &Path,
) -> Result<(), BoxError> {
    let collector = MultiProcessCollector::new(dir)?.with_process_metrics(true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = Router::new()
            .route("/", get(|| async { "hello\n" }))
            .route(
                "/users/{id}",
                get(|UrlPath(id): UrlPath<u32>| async move { format!("user {id}\n") }),
            )
            .route(
                "/maintenance/{on}",
                get(move |UrlPath(on): UrlPath<bool>| async move {
                    mode.state(if on { "maintenance" } else { "serving" });
                    StatusCode::NO_CONTENT
                }),
            )
            .route("/metrics", get(metrics))
            .with_state(collector)
            .layer(layer);
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// `/metrics`: the merged metrics of all workers, in the format the scraper
/// asks for.
async fn metrics(State(c): State<MultiProcessCollector>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match exposition::render(&c, accept) {
        Ok(r) => ([(header::CONTENT_TYPE, r.content_type)], r.body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn stop(pids: &[Pid], dir: &Path) {
    for &pid in pids {
        let _ = kill(pid, Signal::SIGTERM);
        let _ = waitpid(pid, None);
        let _ = prometheus_multiproc::mark_process_dead_in(dir, pid.as_raw());
    }
}

/// One HTTP/1.1 request with `Connection: close`: (status, body).
fn get_url(addr: &str, path: &str, accept: &str) -> Result<(u16, String), BoxError> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut b: &str) -> Result<String, BoxError> {
    let mut out = String::new();
    loop {
        let (size, rest) = b.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(&rest[..size]);
        b = &rest[size + 2..];
    }
}

fn run_self_test(addr: &str) -> Result<(), BoxError> {
    const N: usize = 30;
    for i in 0..N {
        let (status, body) = get_url(addr, &format!("/users/{i}"), "*/*")?;
        if status != 200 || body != format!("user {i}\n") {
            return Err(format!("/users/{i}: {status} {body:?}").into());
        }
        let (status, _) = get_url(addr, &format!("/no/such/page/{i}"), "*/*")?;
        if status != 404 {
            return Err(format!("expected 404, got {status}").into());
        }
    }
    let (status, _) = get_url(addr, "/maintenance/true", "*/*")?;
    if status != 204 {
        return Err(format!("/maintenance: {status}").into());
    }
    let (status, text) = get_url(addr, "/metrics", "text/plain")?;
    if status != 200 {
        return Err(format!("/metrics: {status}").into());
    }
    print!("{text}");
    for want in [
        format!("http_requests_total{{method=\"GET\",status=\"200\"}} {N}.0\n"),
        format!("http_requests_total{{method=\"GET\",status=\"404\"}} {N}.0\n"),
        "http_requests_total{method=\"GET\",status=\"204\"} 1.0\n".to_string(),
        format!(
            "http_request_duration_seconds_count{{method=\"GET\",route=\"/users/{{id}}\",status=\"200\"}} {N}.0\n"
        ),
        format!(
            "http_request_duration_seconds_count{{method=\"GET\",route=\"<unmatched>\",status=\"404\"}} {N}.0\n"
        ),
        "http_requests_in_progress 0.0\n".to_string(),
        format!(
            "app_info{{version=\"{}\"}} 1.0\n",
            env!("CARGO_PKG_VERSION")
        ),
        "app_mode{app_mode=\"maintenance\"} 1.0\n".to_string(),
        "# TYPE process_cpu_seconds_total counter\n".to_string(),
    ] {
        if !text.contains(&want) {
            return Err(format!("/metrics lacks {want:?}").into());
        }
    }
    let (_, om) = get_url(
        addr,
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    )?;
    if !om.ends_with("# EOF\n") || !om.contains("# TYPE app_mode stateset\n") {
        return Err("OpenMetrics output is not as expected".into());
    }
    Ok(())
}
