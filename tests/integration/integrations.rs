//! The tower middleware in a real axum application served by forked workers sharing one listening socket: every request the test sends is counted exactly once in the merged metrics.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use axum::Router;
use axum::extract::{MatchedPath, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use prometheus_multiproc::integrations::tower::MetricsLayer;
use prometheus_multiproc::{MultiProcessCollector, integrations as exposition};

use crate::common::{Dir, fork_worker, http_request, py_samples, wait_ok};

/// One forked axum worker, stopped through its control socket (killed if
/// the test fails first: the workers hold each other's control sockets, so
/// they would not notice the test's end).
struct Worker {
    pid: nix::unistd::Pid,
    ctl: UnixStream,
    stopped: bool,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

impl Worker {
    fn spawn(listener: &std::net::TcpListener, layer: &MetricsLayer, dir: &Path) -> Worker {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let listener = listener.try_clone().unwrap();
        let layer = layer.clone();
        let collector = MultiProcessCollector::new(dir).unwrap();
        let pid = fork_worker(move || serve(listener, layer, collector, theirs));
        Worker {
            pid,
            ctl: ours,
            stopped: false,
        }
    }

    fn stop(mut self) {
        self.stopped = true;
        self.ctl.write_all(b"q").unwrap();
        wait_ok(self.pid);
    }
}

/// The worker: its own tokio runtime, created after the fork.
fn serve(
    listener: std::net::TcpListener,
    layer: MetricsLayer,
    collector: MultiProcessCollector,
    mut ctl: UnixStream,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let app = Router::new()
            .route(
                "/users/{id}",
                get(|UrlPath(id): UrlPath<u32>| async move { format!("user {id}") }),
            )
            .route("/users", post(|| async { StatusCode::CREATED }))
            .route(
                "/error",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route(
                "/panic",
                get(|| async {
                    panic!("handler panicked on purpose");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .route("/pid", get(|| async { std::process::id().to_string() }))
            .route("/metrics", get(metrics))
            .with_state(collector)
            .layer(layer);
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = tokio::task::spawn_blocking(move || {
                    let mut b = [0u8; 1];
                    let _ = ctl.read(&mut b);
                })
                .await;
            })
            .await
            .unwrap();
    });
}

async fn metrics(State(c): State<MultiProcessCollector>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match exposition::render(&c, accept) {
        Ok(r) => ([(header::CONTENT_TYPE, r.content_type)], r.body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn value(text: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{series} in\n{text}");
    found[0]
}

#[test]
fn axum_prefork_workers_count_every_request() {
    let d = Dir::new();
    let w = d.writer();
    let layer = MetricsLayer::builder()
        .dir(&w)
        .route_from_extension(|p: &MatchedPath| p.as_str())
        .exclude_path("/metrics")
        .app_info(&[("version", "1.2.3")])
        .buckets(vec![0.1, 1.0])
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let workers: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&listener, &layer, d.path()))
        .collect();
    drop(listener);

    // Traffic from 4 client threads, each connection a new accept that
    // any worker may win.
    const PER_THREAD: usize = 10;
    let pids = std::sync::Mutex::new(BTreeSet::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (addr, pids) = (&addr, &pids);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let r =
                        http_request(addr, "GET", &format!("/users/{}", t * 100 + i), &[]).unwrap();
                    assert_eq!((r.status, r.text()), (200, format!("user {}", t * 100 + i)));
                    let r =
                        http_request(addr, "POST", "/users", &[("Content-Length", "0")]).unwrap();
                    assert_eq!(r.status, 201);
                    let r = http_request(addr, "GET", &format!("/nope/{t}/{i}"), &[]).unwrap();
                    assert_eq!(r.status, 404);
                    let r = http_request(addr, "GET", "/pid", &[]).unwrap();
                    assert_eq!(r.status, 200);
                    pids.lock().unwrap().insert(r.text());
                    if i % 5 == 0 {
                        let r = http_request(addr, "GET", "/error", &[]).unwrap();
                        assert_eq!(r.status, 500);
                        // A panicking handler: the connection is dropped.
                        assert!(http_request(addr, "GET", "/panic", &[]).is_err());
                        let r = http_request(addr, "GET", "/metrics", &[]).unwrap();
                        assert_eq!(r.status, 200);
                    }
                }
            });
        }
    });
    let pids = pids.into_inner().unwrap();
    eprintln!("requests served by workers {pids:?}");

    // /metrics served by a worker, content-negotiated (and not counted).
    let r = http_request(
        &addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    )
    .unwrap();
    assert_eq!(
        r.header("content-type"),
        Some(expose_ct(true)),
        "{:?}",
        r.headers
    );
    let om = r.text();
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE app info\napp_info{version=\"1.2.3\"} 1.0\n"),
        "{om}"
    );
    let r = http_request(&addr, "GET", "/metrics", &[]).unwrap();
    assert_eq!(r.header("content-type"), Some(expose_ct(false)));

    let n = (4 * PER_THREAD) as f64;
    let every5 = (4 * PER_THREAD / 5) as f64;
    let check = |t: &str| {
        assert_eq!(
            value(t, "http_requests_total{method=\"GET\",status=\"200\"}"),
            2.0 * n
        );
        assert_eq!(
            value(t, "http_requests_total{method=\"POST\",status=\"201\"}"),
            n
        );
        assert_eq!(
            value(t, "http_requests_total{method=\"GET\",status=\"404\"}"),
            n
        );
        assert_eq!(
            value(t, "http_requests_total{method=\"GET\",status=\"500\"}"),
            2.0 * every5
        );
        assert_eq!(
            t.lines()
                .filter(|l| l.starts_with("http_requests_total{"))
                .count(),
            4,
            "{t}"
        );
        assert_eq!(
            value(
                t,
                "http_request_duration_seconds_count{method=\"GET\",route=\"/users/{id}\",status=\"200\"}"
            ),
            n
        );
        assert_eq!(
            value(
                t,
                "http_request_duration_seconds_count{method=\"GET\",route=\"<unmatched>\",status=\"404\"}"
            ),
            n
        );
        assert_eq!(
            value(
                t,
                "http_request_duration_seconds_count{method=\"GET\",route=\"/panic\",status=\"500\"}"
            ),
            every5
        );
        assert_eq!(
            value(
                t,
                "http_request_exceptions_total{method=\"GET\",route=\"/panic\"}"
            ),
            every5
        );
        assert_eq!(
            t.lines()
                .filter(|l| l.starts_with("http_request_exceptions_total{"))
                .count(),
            1
        );
        assert!(!t.contains("/metrics"), "{t}");
    };
    let scrape = || {
        let mut out = Vec::new();
        let s = MultiProcessCollector::new(d.path())
            .unwrap()
            .encode_text(&mut out)
            .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        String::from_utf8(out).unwrap()
    };
    let t = scrape();
    check(&t);
    assert_eq!(value(&t, "http_requests_in_progress"), 0.0);
    assert_eq!(value(&t, "app_info{version=\"1.2.3\"}"), 1.0);

    // prometheus_client agrees on the totals.
    let py = py_samples(d.path());
    let py_total: f64 = py
        .iter()
        .filter(|s| s.name == "http_requests_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(py_total, 4.0 * n + 2.0 * every5);

    for w in workers {
        w.stop();
    }
    // Counters outlive the workers; their in-progress counts do not.
    let t = scrape();
    check(&t);
    assert_eq!(value(&t, "http_requests_in_progress"), 0.0);
}

fn expose_ct(openmetrics: bool) -> &'static str {
    if openmetrics {
        // prometheus_client's answer to `version=1.0.0`.
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    } else {
        prometheus_multiproc::encoding::TEXT_CONTENT_TYPE
    }
}
