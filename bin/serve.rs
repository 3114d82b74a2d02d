//! `serve`: an HTTP exporter that merges the metrics directory at every scrape, with node_exporter's conventions.
//!
//! One tokio runtime with two threads accepts connections and speaks
//! HTTP/1.1 (hyper); each merge runs on the blocking pool, so concurrent
//! scrapes proceed in parallel and never stall the accept loop. Slow clients
//! are bounded three ways: the request head must arrive within the header
//! timeout (which also closes idle keep-alive connections), a scrape must
//! finish within `--web.timeout` (else 503), and a response write that makes
//! no progress for `--web.timeout` closes the connection.

mod auth;
mod deadline;
mod render;

use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::{CliResult, fail};
use auth::Auth;
use render::{Wanted, Warned};

#[derive(clap::Args)]
#[command(after_help = "\
Listens on 127.0.0.1 (loopback) by default, so that nothing is exposed by \
accident: pass --web.listen-address 0.0.0.0:9464 (or a specific address) to \
let Prometheus reach it from another host, and consider --web.basic-auth-file \
or --web.bearer-token-file. Stops cleanly on SIGTERM or SIGINT.")]
pub struct Args {
    /// Metrics directory [default: $PROMETHEUS_MULTIPROC_DIR]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Address to listen on (HOST:PORT; port 0 picks a free port).
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    listen_address: String,
    /// Path under which to expose the metrics.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,
    /// Require HTTP basic auth; FILE holds one line `user:password`.
    #[arg(long = "web.basic-auth-file", value_name = "FILE")]
    basic_auth_file: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN`; FILE holds the token.
    #[arg(long = "web.bearer-token-file", value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
    /// Seconds allowed for reading a request head, for a scrape, and for a
    /// stalled response write.
    #[arg(long = "web.timeout", value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: f64,
    /// Largest number of scrapes merged at the same time; more get 503.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_requests: u32,
    /// Add per-worker process metrics (CPU, memory, fds, start time) read
    /// from /proc/PID of every living worker in the directory (Linux; the
    /// exporter must see the workers' pid namespace).
    #[arg(long = "collector.process")]
    process_metrics: bool,
    /// Every SECS seconds (and at start), fold the counter, histogram,
    /// summary and sum/min/max/mostrecent-gauge files of workers found dead by lock probing
    /// into archive files (turns compaction on). Only safe when every reader
    /// of the directory is prometheus-multiproc (docs/reliability.md).
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "60", value_parser = parse_secs)]
    compact: Option<f64>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 3600]")),
    }
}

/// What every request handler shares.
struct State {
    dir: PathBuf,
    process_metrics: bool,
    telemetry_path: String,
    auth: Auth,
    timeout: Duration,
    scrapes: Arc<Semaphore>,
    warned: Warned,
    landing: Bytes,
}

type Resp = Response<Full<Bytes>>;

pub fn run(args: Args) -> CliResult {
    crate::tune_malloc_for_scrapes();
    let dir = crate::metrics_dir(args.dir)?;
    std::fs::read_dir(&dir).map_err(|e| fail!("metrics directory {}: {e}", dir.display()))?;
    if !args.telemetry_path.starts_with('/') {
        return Err(fail!(
            "--web.telemetry-path {:?}: must start with /",
            args.telemetry_path
        ));
    }
    let auth = Auth::load(
        args.basic_auth_file.as_deref(),
        args.bearer_token_file.as_deref(),
    )?;
    if let Some(secs) = args.compact {
        // Once now, so that compaction is on before the first scrape.
        prometheus_multiproc::compact_dead_auto_in(&dir)?;
        spawn_compactor(dir.clone(), Duration::from_secs_f64(secs));
    }
    let listener = bind(&args.listen_address)?;
    let addr = listener.local_addr()?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let state = Arc::new(State {
        landing: landing_page(&args.telemetry_path, &dir),
        dir,
        process_metrics: args.process_metrics,
        telemetry_path: args.telemetry_path,
        auth,
        timeout,
        scrapes: Arc::new(Semaphore::new(args.max_requests as usize)),
        warned: Warned::default(),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(args.max_requests as usize)
        .enable_all()
        .build()
        .map_err(|e| fail!("starting the runtime: {e}"))?;
    let result = runtime.block_on(serve(listener, addr, state));
    // A merge stuck on a hung file system must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Compacts dead workers' files every `every`, off the scrape path (a
/// scrape waits only for the lock while an archive is replaced).
fn spawn_compactor(dir: PathBuf, every: Duration) {
    let run = move || {
        loop {
            std::thread::sleep(every);
            if let Err(e) = prometheus_multiproc::compact_dead_auto_in(&dir) {
                eprintln!("warning: compaction failed: {e}");
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("pm-compact".into())
        .spawn(run)
    {
        eprintln!("warning: cannot start the compaction thread: {e}");
    }
}

/// Binds the listening socket; a port in use or a bad address is a clear
/// startup error.
fn bind(spec: &str) -> CliResult<std::net::TcpListener> {
    // node_exporter style ":9464" means every interface.
    let spec = if spec.starts_with(':') {
        format!("0.0.0.0{spec}")
    } else {
        spec.to_string()
    };
    let addrs: Vec<SocketAddr> = spec
        .to_socket_addrs()
        .map_err(|e| fail!("--web.listen-address {spec:?}: {e}"))?
        .collect();
    let mut last = None;
    for a in &addrs {
        match std::net::TcpListener::bind(a) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                return Ok(l);
            }
            Err(e) => last = Some((a, e)),
        }
    }
    match last {
        Some((a, e)) => Err(fail!("cannot listen on {a}: {e}")),
        None => Err(fail!("--web.listen-address {spec:?}: no address")),
    }
}

async fn serve(
    std_listener: std::net::TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
) -> CliResult {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    eprintln!("listening on http://{addr}{}", state.telemetry_path);

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.timeout.min(Duration::from_secs(30)));

    let signal_name = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        eprintln!("prometheus-multiproc: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let io = TokioIo::new(deadline::WriteDeadline::new(stream, state.timeout));
                let st = Arc::clone(&state);
                let svc = hyper::service::service_fn(move |req| {
                    let st = Arc::clone(&st);
                    async move { Ok::<_, Infallible>(respond(req, st).await) }
                });
                let conn = graceful.watch(http.serve_connection(io, svc));
                tokio::spawn(async move {
                    // Errors here are the client's (reset, timeout, bad request).
                    let _ = conn.await;
                });
            }
        }
    };
    eprintln!("prometheus-multiproc: {signal_name} received, shutting down");
    drop(listener);
    // Let scrapes in progress finish, but not forever.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

fn text_response(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Auth, method, then path: node_exporter's order.
async fn respond(req: Request<Incoming>, st: Arc<State>) -> Resp {
    if !st.auth.allows(req.headers()) {
        let mut r = text_response(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        for c in st.auth.challenges() {
            r.headers_mut()
                .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        return r;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    if path == st.telemetry_path {
        let timeout = st.timeout;
        match tokio::time::timeout(timeout, metrics(&req, st)).await {
            Ok(r) => r,
            Err(_) => text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Scrape timed out: see --web.timeout\n",
            ),
        }
    } else if path == "/" {
        let mut r = Response::new(Full::new(st.landing.clone()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        text_response(StatusCode::NOT_FOUND, "404 page not found\n")
    }
}

async fn metrics(req: &Request<Incoming>, st: Arc<State>) -> Resp {
    let header_str = |name| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let wanted = Wanted {
        openmetrics: render::wants_openmetrics(&header_str(header::ACCEPT)),
        gzip: render::wants_gzip(&header_str(header::ACCEPT_ENCODING)),
    };
    let Ok(permit) = Arc::clone(&st.scrapes).try_acquire_owned() else {
        return text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many concurrent scrapes: see --web.max-requests\n",
        );
    };
    let st2 = Arc::clone(&st);
    // The merge is CPU and file work: keep it off the async threads. The
    // permit is released when the merge ends, even after a timeout.
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        render::render(&st2.dir, st2.process_metrics, wanted, &st2.warned)
    })
    .await;
    match result {
        Ok(Ok(rendered)) => {
            let mut r = Response::new(Full::new(Bytes::from(rendered.body)));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(rendered.content_type),
            );
            if rendered.gzip {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            h.insert(
                header::VARY,
                HeaderValue::from_static("Accept, Accept-Encoding"),
            );
            r
        }
        Ok(Err(e)) => {
            st.warned.warn(format!("scrape failed: {e}"));
            let mut r = Response::new(Full::new(Bytes::from(format!(
                "An error has occurred while serving metrics:\n\n{e}\n"
            ))));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Err(_) => text_response(StatusCode::INTERNAL_SERVER_ERROR, "The scrape panicked\n"),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn landing_page(path: &str, dir: &std::path::Path) -> Bytes {
    let path = html_escape(path);
    let dir = html_escape(&dir.to_string_lossy());
    Bytes::from(format!(
        "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>prometheus-multiproc</title></head>
<body>
<h1>prometheus-multiproc</h1>
<p>Merged multiprocess metrics of <code>{dir}</code>, read at every scrape.</p>
<ul><li><a href=\"{path}\">Metrics</a></li></ul>
</body>
</html>
"
    ))
}
