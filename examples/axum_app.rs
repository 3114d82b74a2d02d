//! A pre-fork axum server on the library's [`Supervisor`]: N worker
//! processes share one listening socket, each runs its own tokio runtime and
//! records request metrics with `MetricsLayer` into its own files, and any
//! worker answers `/metrics` with the merged metrics of all of them.
//!
//! ```text
//! PROMETHEUS_MULTIPROC_DIR=/tmp/m cargo run --example axum_app --features tower -- [--workers N] [--addr 127.0.0.1:8000]
//! curl localhost:8000/users/7   curl localhost:8000/pid   curl localhost:8000/metrics
//! ```
//!
//! On `SIGTERM` or Ctrl-C the supervisor forwards `SIGTERM`; each worker
//! stops accepting, finishes its requests (axum's graceful shutdown) and
//! exits; the supervisor marks every worker dead and removes its own live
//! gauges. The first line on stdout is `listening on http://ADDR` (the test
//! suite reads it). Without `PROMETHEUS_MULTIPROC_DIR` the metrics go to a
//! temporary directory.

use std::io::Write;
use std::path::Path;

use axum::Router;
use axum::extract::{MatchedPath, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_multiproc::integrations::tower::MetricsLayer;
use prometheus_multiproc::prefork::{Supervisor, Worker};
use prometheus_multiproc::{Enum, MetricsDir, MultiProcessCollector, integrations};

type BoxError = Box<dyn std::error::Error>;

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

    // Built once, before forking (the process still has one thread): each
    // worker writes its own files from its first request on.
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

    let supervisor = Supervisor::bind(&addr)?
        .workers(workers)
        .metrics_dir(&dir_path);
    println!("listening on http://{}", supervisor.local_addr()?);
    std::io::stdout().flush()?;
    let summary = supervisor.run(|worker| serve(worker, layer.clone(), mode.clone()))?;
    eprintln!(
        "axum_app: stopped; {} workers started, {} replaced, {} killed at the stop",
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

/// A worker: its own single-threaded tokio runtime, started after the fork.
fn serve(worker: &Worker<'_>, layer: MetricsLayer, mode: Enum) -> Result<(), BoxError> {
    let collector = MultiProcessCollector::new(worker.metrics_dir())?.with_process_metrics(true);
    let listener = worker.listener().try_clone()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = Router::new()
            .route("/", get(|| async { "hello\n" }))
            .route(
                "/pid",
                get(|| async { format!("{}\n", std::process::id()) }),
            )
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
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        // The supervisor forwards SIGTERM: stop accepting, finish what is
        // in flight, return (the supervisor then marks this worker dead).
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                term.recv().await;
            })
            .await?;
        Ok(())
    })
}

/// `/metrics`: the merged metrics of all workers, in the format the scraper
/// asks for.
async fn metrics(State(c): State<MultiProcessCollector>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match integrations::render(&c, accept) {
        Ok(r) => ([(header::CONTENT_TYPE, r.content_type)], r.body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
