//! `serve`: an HTTP exporter that merges the metrics directory at every scrape, with node_exporter's conventions.
//!
//! One tokio runtime with two threads accepts connections and speaks
//! HTTP/1.1 (hyper), over TLS if `--web.config.file` asks for it. Merges run
//! on the blocking pool, one at a time: scrapes that arrive while one runs
//! share its result and its encoded bodies (`flight`), which count against
//! the response memory budget (`budget`). Slow clients are bounded three
//! ways: the request head must arrive within the header timeout (which also
//! closes idle keep-alive connections), a scrape must finish within
//! `--web.timeout` (else 503), and a response write that makes no progress
//! for `--web.timeout` closes the connection.

mod auth;
mod budget;
mod deadline;
mod flight;
mod lifetime;
mod render;
mod warn;
mod webconfig;

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
use budget::{Budget, OverBudget};
use flight::{Failure, Flights, Merged};
use prometheus_multiproc::MultiProcessCollector;
use prometheus_multiproc::encoding::negotiate;
use prometheus_multiproc::integrations::{self, NameFilter};
use prometheus_multiproc::merge::Family;
use render::Wanted;
use warn::{WarnKind, Warned};

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
    /// A web configuration file in the format of prometheus/exporter-toolkit:
    /// TLS (tls_server_config: cert_file, key_file, client_auth_type,
    /// client_ca_file, min_version, max_version), basic_auth_users with
    /// bcrypt hashes, http_server_config.headers.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN`; FILE holds the token.
    #[arg(long = "web.bearer-token-file", value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
    /// Seconds allowed for reading a request head, for a scrape, and for a
    /// stalled response write.
    #[arg(long = "web.timeout", value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: f64,
    /// Largest number of scrapes in progress at the same time (scrapes that
    /// arrive while a merge runs share it); more get 503.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_requests: u32,
    /// Largest total size of the response bodies held at a time, in MiB (a
    /// body shared by several scrapes counts once; a client that does not
    /// read holds its body until --web.timeout). A scrape whose body does
    /// not fit gets 503.
    #[arg(long = "web.max-response-memory", value_name = "MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    max_response_memory: u32,
    /// Add per-worker process metrics (CPU, memory, fds, start time) read
    /// from /proc/PID of every living worker in the directory (Linux; the
    /// exporter must see the workers' pid namespace).
    #[arg(long = "collector.process")]
    process_metrics: bool,
    /// Read every file whole at every scrape, instead of keeping each
    /// file's layout and a read-only mapping of it between scrapes and
    /// reading only the values (the output is the same either way;
    /// docs/performance.md).
    #[arg(long = "no-collector.incremental")]
    no_incremental: bool,
    /// Leave out the exporter's own `prometheus_multiproc_*` families, so
    /// that the output is exactly prometheus_client's for the directory
    /// (node_exporter's flag of the same name).
    #[arg(long = "web.disable-exporter-metrics")]
    disable_exporter_metrics: bool,
    /// Stop (as on SIGTERM) when the parent process ends: with
    /// `prometheus-multiproc serve --exit-with-parent & exec gunicorn ...`
    /// the exporter ends with gunicorn (Linux, PR_SET_PDEATHSIG).
    #[arg(long = "exit-with-parent")]
    exit_with_parent: bool,
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
    /// Kept for the server's life: incremental scrapes reuse what the
    /// last one read.
    collector: MultiProcessCollector,
    /// The application's families of the last merge, and their encodings.
    last_app: std::sync::Mutex<Option<Arc<render::AppFamilies>>>,
    /// Append the `prometheus_multiproc_*` families (no
    /// `--web.disable-exporter-metrics`).
    exporter_metrics: bool,
    telemetry_path: String,
    auth: Auth,
    /// `basic_auth_users` of the web config file.
    users: Option<Arc<webconfig::BasicUsers>>,
    /// `http_server_config.headers` of the web config file.
    extra_headers: Vec<(header::HeaderName, HeaderValue)>,
    timeout: Duration,
    scrapes: Arc<Semaphore>,
    flights: Flights,
    budget: Arc<Budget>,
    warned: Warned,
    landing: Bytes,
    /// Error details (which name the directory) go into response bodies
    /// only when the listener is loopback; otherwise only to stderr.
    error_details: bool,
}

impl State {
    /// `families` as kept: the last merge's, with their encodings, if they
    /// are the same.
    fn app_families(&self, families: Vec<Family>) -> Arc<render::AppFamilies> {
        let mut last = self.last_app.lock().unwrap_or_else(|e| e.into_inner());
        match &*last {
            Some(app) if app.families == families => Arc::clone(app),
            _ => {
                let app = Arc::new(render::AppFamilies::new(families));
                *last = Some(Arc::clone(&app));
                app
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

pub fn run(args: Args) -> CliResult {
    // Not `tune_malloc_for_scrapes`, which keeps freed memory for the next
    // scrape: a long-lived server must give the memory of a burst back.
    budget::tune_malloc();
    if args.exit_with_parent {
        lifetime::exit_with_parent()?;
    }
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
    let web = match &args.web_config_file {
        Some(p) => Some(webconfig::WebConfig::load(p)?),
        None => None,
    };
    let (tls, users, extra_headers) = match web {
        Some(w) => (w.tls, w.users, w.headers),
        None => (None, None, Vec::new()),
    };
    if let Some(secs) = args.compact {
        // Once now, so that compaction is on before the first scrape.
        prometheus_multiproc::compact_dead_auto_in(&dir)?;
        spawn_compactor(dir.clone(), Duration::from_secs_f64(secs));
    }
    let listener = bind(&args.listen_address)?;
    let addr = listener.local_addr()?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let state = Arc::new(State {
        landing: landing_page(
            &args.telemetry_path,
            Some(dir.as_path()).filter(|_| addr.ip().is_loopback()),
        ),
        collector: MultiProcessCollector::new(&dir)?
            .with_process_metrics(args.process_metrics)
            .with_incremental(!args.no_incremental),
        last_app: std::sync::Mutex::new(None),
        dir,
        exporter_metrics: !args.disable_exporter_metrics,
        telemetry_path: args.telemetry_path,
        auth,
        users,
        extra_headers,
        timeout,
        scrapes: Arc::new(Semaphore::new(args.max_requests as usize)),
        flights: Flights::default(),
        budget: Budget::new((args.max_response_memory as usize) << 20),
        warned: Warned::default(),
        error_details: addr.ip().is_loopback(),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(args.max_requests as usize)
        .enable_all()
        .build()
        .map_err(|e| fail!("starting the runtime: {e}"))?;
    let result = runtime.block_on(serve(listener, addr, state, tls));
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
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> CliResult {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("listening on {scheme}://{addr}{}", state.telemetry_path);

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // Vectored writes: hyper queues the shared body instead of copying it
    // into its write buffer.
    http.writev(true);
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
                let stream = deadline::WriteDeadline::new(stream, state.timeout);
                let st = Arc::clone(&state);
                let svc = hyper::service::service_fn(move |req| {
                    let st = Arc::clone(&st);
                    async move { Ok::<_, Infallible>(respond(req, st).await) }
                });
                let watcher = graceful.watcher();
                let http = http.clone();
                let tls = tls.clone();
                let handshake_timeout = state.timeout.min(Duration::from_secs(30));
                tokio::spawn(async move {
                    // Errors here are the client's (reset, timeout, bad
                    // request, failed handshake).
                    match tls {
                        None => {
                            let conn = http.serve_connection(TokioIo::new(stream), svc);
                            let _ = watcher.watch(conn).await;
                        }
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                            if let Ok(Ok(tls_stream)) = handshake.await {
                                let conn = http.serve_connection(TokioIo::new(tls_stream), svc);
                                let _ = watcher.watch(conn).await;
                            }
                        }
                    }
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

/// Every response, with the configured extra headers.
async fn respond(req: Request<Incoming>, st: Arc<State>) -> Resp {
    let mut r = route(req, Arc::clone(&st)).await;
    for (name, value) in &st.extra_headers {
        r.headers_mut().insert(name.clone(), value.clone());
    }
    r
}

/// True when the request carries credentials the server accepts (any of
/// the configured ones), or none are required.
async fn authorized(req: &Request<Incoming>, st: &Arc<State>) -> bool {
    match &st.users {
        None => st.auth.allows(req.headers()),
        Some(users) => {
            (!st.auth.is_open() && st.auth.allows(req.headers()))
                || users.allows(req.headers()).await
        }
    }
}

/// Auth, method, then path: node_exporter's order.
async fn route(req: Request<Incoming>, st: Arc<State>) -> Resp {
    if !authorized(&req, &st).await {
        let mut r = text_response(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        let mut challenges = st.auth.challenges();
        if st.users.is_some() && !st.auth.has_basic() {
            challenges.insert(0, auth::BASIC_CHALLENGE);
        }
        for c in challenges {
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
    } else if path == "/-/healthy" {
        text_response(StatusCode::OK, "Healthy.\n")
    } else if path == "/-/ready" {
        ready(&st)
    } else {
        text_response(StatusCode::NOT_FOUND, "404 page not found\n")
    }
}

/// `/-/ready`: 200 while the metrics directory can be listed, else 503.
fn ready(st: &State) -> Resp {
    match std::fs::read_dir(&st.dir) {
        Ok(_) => text_response(StatusCode::OK, "Ready.\n"),
        Err(e) => {
            let body = if st.error_details {
                format!("Not ready: metrics directory {}: {e}\n", st.dir.display())
            } else {
                "Not ready: the metrics directory cannot be read\n".to_string()
            };
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
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
    // prometheus_client answers an Accept header it cannot compare with
    // 1.0.0 with an error (HTTP 500); so do we.
    let format = match negotiate(Some(&header_str(header::ACCEPT))) {
        Ok(format) => format,
        Err(e) => return failure_response(&st, &Failure::Error(e.into())),
    };
    let wanted = Wanted {
        format,
        gzip: integrations::wants_gzip(&header_str(header::ACCEPT_ENCODING)),
    };
    let Ok(_permit) = Arc::clone(&st.scrapes).try_acquire_owned() else {
        return text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many concurrent scrapes: see --web.max-requests\n",
        );
    };
    let st2 = Arc::clone(&st);
    // The merge is CPU and file work, done on the blocking pool, once for
    // all the scrapes that arrive while it runs.
    let outcome = st
        .flights
        .merged(move || {
            let opts = render::MergeOptions {
                exporter_metrics: st2.exporter_metrics,
            };
            let (app, own) = render::merge(&st2.collector, opts, &st2.warned)?;
            Ok(Merged::new(st2.app_families(app), own))
        })
        .await;
    let merged = match outcome {
        Ok(m) => m,
        Err(f) => return failure_response(&st, &f),
    };
    let names = req.uri().query().and_then(NameFilter::from_query);
    match merged.body(wanted.clone(), names, &st.budget).await {
        Ok(Ok(body)) => metrics_response(body, &wanted),
        Ok(Err(OverBudget)) => text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too much response memory in use: see --web.max-response-memory\n",
        ),
        Err(f) => failure_response(&st, &f),
    }
}

fn metrics_response(body: Bytes, wanted: &Wanted) -> Resp {
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    // UNWRAP: built from fixed text and parts of the request's `Accept`
    // values, which passed `to_str` (visible ASCII, space, tab): all valid
    // in a header value.
    let content_type = HeaderValue::from_str(wanted.format.content_type()).expect("header text");
    h.insert(header::CONTENT_TYPE, content_type);
    if wanted.gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    r
}

fn failure_response(st: &State, f: &Failure) -> Resp {
    match f {
        Failure::Error(e) => {
            st.warned
                .warn(WarnKind::SCRAPE_FAILED, format!("scrape failed: {e}"));
            let mut r = Response::new(Full::new(Bytes::from(error_body(e, st.error_details))));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Failure::Panicked => {
            text_response(StatusCode::INTERNAL_SERVER_ERROR, "The scrape panicked\n")
        }
    }
}

/// The body of a 500: the error itself (it names the directory) only when
/// `details` is allowed, that is on a loopback listener.
fn error_body(e: &dyn std::fmt::Display, details: bool) -> String {
    if details {
        format!("An error has occurred while serving metrics:\n\n{e}\n")
    } else {
        "An error has occurred while serving metrics: see the exporter's log\n".to_string()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page at `/`; it names the directory only when `dir` is given (on a
/// loopback listener).
fn landing_page(path: &str, dir: Option<&std::path::Path>) -> Bytes {
    let path = html_escape(path);
    let dir = match dir {
        Some(d) => format!("<code>{}</code>", html_escape(&d.to_string_lossy())),
        None => "the metrics directory".to_string(),
    };
    Bytes::from(format!(
        "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>prometheus-multiproc</title></head>
<body>
<h1>prometheus-multiproc</h1>
<p>Merged multiprocess metrics of {dir}, read at every scrape.</p>
<ul><li><a href=\"{path}\">Metrics</a></li><li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>
</body>
</html>
"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_names_the_directory_only_on_loopback() {
        let e = "metrics directory /secret/dir: does not exist";
        assert!(error_body(&e, true).contains("/secret/dir"));
        let hidden = error_body(&e, false);
        assert!(!hidden.contains("/secret"), "{hidden}");
        assert!(hidden.contains("see the exporter's log"));
        let dir = std::path::Path::new("/secret/dir");
        let page = |d| String::from_utf8(landing_page("/metrics", d).to_vec()).unwrap();
        assert!(page(Some(dir)).contains("<code>/secret/dir</code>"));
        assert!(!page(None).contains("/secret"));
    }
}
