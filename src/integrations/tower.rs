//! HTTP metrics for tower-based servers (axum, tonic, hyper with tower): [`MetricsLayer`] records what prometheus_flask_exporter records by default, into the multiprocess files of every worker.
//!
//! Requires the `tower` cargo feature.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `http_requests_total` | counter | `method`, `status` |
//! | `http_request_exceptions_total` | counter | `method`, `route` |
//! | `http_requests_in_progress` | gauge (`livesum`) | |
//! | `app_info` (only with [`MetricsLayerBuilder::app_info`]) | info | the given pairs |
//!
//! All names take the [prefix](MetricsLayerBuilder::prefix) and every
//! metric carries the [constant labels](MetricsLayerBuilder::const_label).
//!
//! # What is recorded
//!
//! * The duration runs from the moment the request reaches the layer until
//!   the inner service returns the response head (the body may still be
//!   streaming), as in prometheus_flask_exporter.
//! * `method`: the request method for the nine standard methods, `other`
//!   for any extension method (so that made-up methods cannot create new
//!   series).
//! * `route`: the route *template* (`/users/{id}`), from the
//!   [route function](MetricsLayerBuilder::route_fn). Requests it gives no
//!   route for (404s, mostly) all share one value, `<unmatched>` by default,
//!   so that scanners cannot explode the label's cardinality. The raw path
//!   is used instead only when [opted in](MetricsLayerBuilder::raw_path_label).
//! * `status`: the response's status code. A request whose handler fails
//!   (the inner service returns `Err`) or panics is recorded with status
//!   `500` and counted in `http_request_exceptions_total`. A panic is
//!   recorded, then resumed unchanged: what the client sees is up to the
//!   server (hyper closes the connection; put
//!   `tower_http::catch_panic::CatchPanicLayer` *outside* this layer to
//!   answer 500 instead). A request dropped before its response was ready
//!   (the client went away, a timeout layer outside gave up) is recorded
//!   with status `499`, as nginx does.
//! * `http_requests_in_progress` counts requests between arrival and
//!   response (or drop); in `livesum` mode, a worker that dies takes its
//!   count with it.
//! * [Excluded paths](MetricsLayerBuilder::exclude_path) (`/metrics`,
//!   health checks) pass through without being recorded at all.
//!
//! Failures to record (a forked worker that cannot create its metrics file,
//! for example on a full disk) never fail or slow a request: they are
//! reported once on stderr.
//!
//! # axum
//!
//! Apply the layer with `Router::layer`, after the routes, so that axum has
//! matched the route when the layer sees the request, and take the route
//! from axum's `MatchedPath` extension:
//!
//! ```ignore
//! use axum::{Router, extract::MatchedPath, routing::get};
//! use prometheus_multiproc::integrations::tower::MetricsLayer;
//!
//! let metrics = MetricsLayer::builder()
//!     .route_from_extension(|p: &MatchedPath| p.as_str())
//!     .exclude_path("/metrics")
//!     .app_info(&[("version", env!("CARGO_PKG_VERSION"))])
//!     .build()?;
//! let app = Router::new()
//!     .route("/users/{id}", get(user))
//!     .layer(metrics);
//! ```
//!
//! See `docs/integrations.md` and `examples/axum_app.rs` for a complete
//! pre-fork server.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Extensions, HeaderMap, Method, Request, Response, Uri};
use prometheus::{HistogramOpts, Opts};

use crate::error::{Error, Result};
use crate::format::naming::GaugeMode;
use crate::metrics::timing::InProgress;
use crate::write::writer::MetricsDir;
use crate::{CounterVec, Gauge, HistogramVec, Info};

/// The route label of requests without a route, by default.
pub const UNMATCHED: &str = "<unmatched>";

/// What a route function sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestView<'a> {
    /// A view of `req`.
    pub fn new<B>(req: &'a Request<B>) -> Self {
        RequestView {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request path.
    pub fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (where routers put the matched route).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

type RouteFn = dyn Fn(&RequestView<'_>) -> Option<String> + Send + Sync;

/// Builds a [`MetricsLayer`]; see the [module docs](self) for the metrics.
///
/// ```
/// use prometheus_multiproc::MetricsDir;
/// use prometheus_multiproc::integrations::tower::MetricsLayer;
/// # let tmp = tempfile::tempdir().unwrap();
/// let layer = MetricsLayer::builder()
///     .dir(&MetricsDir::open(tmp.path()).unwrap())
///     .prefix("shop")
///     .const_label("service", "api")
///     .buckets(vec![0.01, 0.1, 1.0])
///     .route_fn(|req| req.path().starts_with("/static/").then(|| "/static/*".to_string()))
///     .exclude_path("/metrics")
///     .exclude_path("/health/*")
///     .app_info(&[("version", "1.4.0")])
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[must_use]
pub struct MetricsLayerBuilder {
    dir: Option<MetricsDir>,
    prefix: String,
    const_labels: Vec<(String, String)>,
    buckets: Vec<f64>,
    route_fn: Option<Arc<RouteFn>>,
    raw_path: bool,
    unmatched: String,
    excluded: Vec<String>,
    app_info: Option<Vec<(String, String)>>,
}

impl std::fmt::Debug for MetricsLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsLayerBuilder")
            .field("prefix", &self.prefix)
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}

impl MetricsLayerBuilder {
    /// Writes into `dir` (default: the directory named by
    /// `PROMETHEUS_MULTIPROC_DIR`).
    pub fn dir(mut self, dir: &MetricsDir) -> Self {
        self.dir = Some(dir.clone());
        self
    }

    /// Prefixes every metric name with `prefix_` (default: no prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Adds a label with a fixed value to every metric.
    pub fn const_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.const_labels.push((name.into(), value.into()));
        self
    }

    /// The duration histogram's bucket upper bounds (default:
    /// [`DEFAULT_BUCKETS`](crate::DEFAULT_BUCKETS)).
    pub fn buckets(mut self, buckets: Vec<f64>) -> Self {
        self.buckets = buckets;
        self
    }

    /// How to find a request's route template; `None` means no route (the
    /// [unmatched](Self::unmatched_label) value, or the raw path if
    /// [opted in](Self::raw_path_label)). The function runs once per
    /// request, before the inner service sees it.
    pub fn route_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&RequestView<'_>) -> Option<String> + Send + Sync + 'static,
    {
        self.route_fn = Some(Arc::new(f));
        self
    }

    /// Takes the route from a request extension of type `T` that a router
    /// inserts, e.g. axum's `MatchedPath`:
    /// `.route_from_extension(|p: &axum::extract::MatchedPath| p.as_str())`.
    pub fn route_from_extension<T, F>(self, f: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(&T) -> &str + Send + Sync + 'static,
    {
        self.route_fn(move |req| req.extensions().get::<T>().map(|t| f(t).to_owned()))
    }

    /// Uses the raw request path as the route label of requests without a
    /// route. Off by default: every distinct path then makes new series, so
    /// only turn it on for services with a small, fixed set of paths.
    pub fn raw_path_label(mut self, on: bool) -> Self {
        self.raw_path = on;
        self
    }

    /// The route label of requests without a route (default
    /// [`UNMATCHED`]).
    pub fn unmatched_label(mut self, value: impl Into<String>) -> Self {
        self.unmatched = value.into();
        self
    }

    /// Does not record requests for `path`: an exact path, or a prefix when
    /// it ends with `*` (`/health/*` matches `/health/live`).
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        self.excluded.push(path.into());
        self
    }

    /// Exposes an info metric `app_info` (prefixed) with these labels, e.g.
    /// the application's version, set in the process that builds the layer.
    pub fn app_info(mut self, labels: &[(&str, &str)]) -> Self {
        self.app_info = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    /// Creates the metrics. Fails on invalid names or labels (a constant
    /// label named like a variable one, say) and when the directory cannot
    /// be opened.
    pub fn build(self) -> Result<MetricsLayer> {
        let dir = match self.dir {
            Some(d) => d,
            None => MetricsDir::from_env()?,
        };
        let opts = |name: &str, help: &str| {
            let mut o = Opts::new(name, help);
            if !self.prefix.is_empty() {
                o = o.namespace(self.prefix.clone());
            }
            for (k, v) in &self.const_labels {
                o = o.const_label(k.clone(), v.clone());
            }
            o
        };
        let mut hopts = HistogramOpts::from(opts(
            "http_request_duration_seconds",
            "HTTP request duration in seconds, until the response head is ready.",
        ));
        hopts.buckets = self.buckets.clone();
        let duration = HistogramVec::new_in(&dir, hopts, &["method", "route", "status"])?;
        let requests = CounterVec::new_in(
            &dir,
            opts("http_requests_total", "HTTP requests by method and status."),
            &["method", "status"],
        )?;
        let exceptions = CounterVec::new_in(
            &dir,
            opts(
                "http_request_exceptions_total",
                "HTTP requests whose handler failed or panicked.",
            ),
            &["method", "route"],
        )?;
        let in_progress = Gauge::with_opts_in(
            &dir,
            opts("http_requests_in_progress", "HTTP requests in progress."),
            GaugeMode::LiveSum,
        )?;
        let app_info = match &self.app_info {
            Some(labels) => {
                let info = Info::with_opts_in(&dir, opts("app_info", "Application information."))?;
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                info.try_info(&pairs)?;
                Some(info)
            }
            None => None,
        };
        for p in &self.excluded {
            if !p.starts_with('/') && p != "*" {
                return Err(Error::invalid_argument(
                    crate::error::ArgumentKind::ExcludedPath,
                    format!("excluded path {p:?} must start with '/'"),
                ));
            }
        }
        Ok(MetricsLayer {
            shared: Arc::new(Shared {
                duration,
                requests,
                exceptions,
                in_progress,
                _app_info: app_info,
                route_fn: self.route_fn,
                raw_path: self.raw_path,
                unmatched: self.unmatched,
                excluded: self.excluded,
                warned: AtomicBool::new(false),
            }),
        })
    }
}

struct Shared {
    duration: HistogramVec,
    requests: CounterVec,
    exceptions: CounterVec,
    in_progress: Gauge,
    _app_info: Option<Info>,
    route_fn: Option<Arc<RouteFn>>,
    raw_path: bool,
    unmatched: String,
    excluded: Vec<String>,
    warned: AtomicBool,
}

impl Shared {
    fn is_excluded(&self, path: &str) -> bool {
        self.excluded.iter().any(|e| match e.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == e,
        })
    }

    fn route<B>(&self, req: &Request<B>) -> String {
        let found = self
            .route_fn
            .as_ref()
            .and_then(|f| f(&RequestView::new(req)));
        match found {
            Some(r) => r,
            None if self.raw_path => req.uri().path().to_owned(),
            None => self.unmatched.clone(),
        }
    }

    fn warn(&self, e: &Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            crate::warn::warn(format_args!(
                "MetricsLayer: cannot record a request: {e} (further errors are not shown)"
            ));
        }
    }
}

/// A [`tower::Layer`] recording HTTP request metrics; see the
/// [module docs](self). Cheap to clone; all clones share the metrics.
#[derive(Clone)]
pub struct MetricsLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsLayer").finish_non_exhaustive()
    }
}

impl MetricsLayer {
    /// A builder with the defaults: directory from the environment, no
    /// prefix, default buckets, no route function, `<unmatched>` routes,
    /// nothing excluded, no app info.
    pub fn builder() -> MetricsLayerBuilder {
        MetricsLayerBuilder {
            dir: None,
            prefix: String::new(),
            const_labels: Vec::new(),
            buckets: Vec::new(),
            route_fn: None,
            raw_path: false,
            unmatched: UNMATCHED.to_string(),
            excluded: Vec::new(),
            app_info: None,
        }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service made by [`MetricsLayer`].
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for MetricsService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService").finish_non_exhaustive()
    }
}

/// The method label: standard methods by name, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    const NAMES: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .position(|s| s == m)
        .map_or("other", |i| NAMES[i])
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for MetricsService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.shared.is_excluded(req.uri().path()) {
            return MetricsFuture {
                inner: self.inner.call(req),
                rec: None,
            };
        }
        let rec = Recording {
            method: method_label(req.method()),
            route: self.shared.route(&req),
            start: Instant::now(),
            _in_progress: self.shared.in_progress.track_inprogress(),
            shared: Arc::clone(&self.shared),
            done: false,
        };
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(move || inner.call(req))) {
            Ok(inner) => MetricsFuture {
                inner,
                rec: Some(rec),
            },
            Err(panic) => {
                rec.finish("500", true);
                resume_unwind(panic)
            }
        }
    }
}

/// One request being recorded; records as cancelled (`499`) if dropped
/// unfinished.
struct Recording {
    shared: Arc<Shared>,
    method: &'static str,
    route: String,
    start: Instant,
    _in_progress: InProgress,
    done: bool,
}

impl Recording {
    fn finish(mut self, status: &str, exception: bool) {
        self.record(status, exception);
    }

    fn record(&mut self, status: &str, exception: bool) {
        self.done = true;
        let secs = self.start.elapsed().as_secs_f64();
        let sh = &self.shared;
        let r = (|| -> Result<()> {
            sh.duration
                .get_metric_with_label_values(&[self.method, &self.route, status])?
                .try_observe(secs)?;
            sh.requests
                .get_metric_with_label_values(&[self.method, status])?
                .try_inc_by(1.0)?;
            if exception {
                sh.exceptions
                    .get_metric_with_label_values(&[self.method, &self.route])?
                    .try_inc_by(1.0)?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            sh.warn(&e);
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.done {
            self.record("499", false);
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`MetricsService`].
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        rec: Option<Recording>,
    }
}

impl<F> std::fmt::Debug for MetricsFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for MetricsFuture<F>
where
    F: Future<Output = std::result::Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut inner = this.inner;
        let out = match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(out) => out,
            Err(panic) => {
                if let Some(rec) = this.rec.take() {
                    rec.finish("500", true);
                }
                resume_unwind(panic)
            }
        };
        if let Poll::Ready(res) = &out
            && let Some(rec) = this.rec.take()
        {
            match res {
                Ok(resp) => rec.finish(resp.status().as_str(), false),
                Err(_) => rec.finish("500", true),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MultiProcessCollector;
    use crate::metrics::timing::block_on_for_doc;
    use std::convert::Infallible;
    use tower::{Layer, Service};

    /// A service answering by path: `/ok/...` 200, `/missing` 404, `/fail`
    /// `Err`, `/panic` panics, `/slow` never completes.
    #[derive(Clone)]
    struct App;
    impl Service<Request<()>> for App {
        type Response = Response<String>;
        type Error = &'static str;
        type Future = Pin<
            Box<dyn Future<Output = std::result::Result<Response<String>, &'static str>> + Send>,
        >;
        fn poll_ready(
            &mut self,
            _: &mut Context<'_>,
        ) -> Poll<std::result::Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: Request<()>) -> Self::Future {
            let path = req.uri().path().to_owned();
            Box::pin(async move {
                match path.as_str() {
                    "/fail" => Err("failed"),
                    "/panic" => panic!("handler panicked"),
                    "/slow" => std::future::pending().await,
                    "/missing" => Ok(Response::builder().status(404).body(String::new()).unwrap()),
                    _ => Ok(Response::new("ok".to_string())),
                }
            })
        }
    }

    /// Answers 200 with an empty body.
    #[derive(Clone)]
    struct Unit;
    impl Service<Request<()>> for Unit {
        type Response = Response<()>;
        type Error = Infallible;
        type Future = std::future::Ready<std::result::Result<Response<()>, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(())))
        }
    }

    fn req(method: &str, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    fn merged(dir: &std::path::Path) -> String {
        let mut out = Vec::new();
        MultiProcessCollector::new(dir)
            .unwrap()
            .encode_text(&mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn records_every_outcome() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let layer = MetricsLayer::builder()
            .dir(&dir)
            .const_label("svc", "t")
            .buckets(vec![0.5])
            .route_fn(|r| r.path().strip_prefix("/ok/").map(|_| "/ok/{x}".to_string()))
            .exclude_path("/metrics")
            .exclude_path("/internal/*")
            .app_info(&[("version", "9")])
            .build()
            .unwrap();
        let mut svc = layer.layer(App);
        for (m, p) in [
            ("GET", "/ok/1"),
            ("GET", "/ok/2"),
            ("POST", "/ok/3"),
            ("GET", "/missing"),
            ("BREW", "/missing"),
            ("GET", "/fail"),
            ("GET", "/metrics"),
            ("GET", "/internal/x"),
        ] {
            let _ = block_on_for_doc(svc.call(req(m, p)));
        }
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            block_on_for_doc(svc.call(req("GET", "/panic")))
        }));
        assert!(panicked.is_err());
        {
            let mut slow = Box::pin(svc.call(req("GET", "/slow")));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(slow.as_mut().poll(&mut cx).is_pending());
            assert!(merged(tmp.path()).contains("http_requests_in_progress{svc=\"t\"} 1.0\n"));
        }
        let t = merged(tmp.path());
        for want in [
            "http_requests_total{method=\"GET\",status=\"200\",svc=\"t\"} 2.0\n",
            "http_requests_total{method=\"POST\",status=\"200\",svc=\"t\"} 1.0\n",
            "http_requests_total{method=\"GET\",status=\"404\",svc=\"t\"} 1.0\n",
            "http_requests_total{method=\"other\",status=\"404\",svc=\"t\"} 1.0\n",
            "http_requests_total{method=\"GET\",status=\"500\",svc=\"t\"} 2.0\n",
            "http_requests_total{method=\"GET\",status=\"499\",svc=\"t\"} 1.0\n",
            "http_request_exceptions_total{method=\"GET\",route=\"<unmatched>\",svc=\"t\"} 2.0\n",
            "http_request_duration_seconds_count{method=\"GET\",route=\"/ok/{x}\",status=\"200\",svc=\"t\"} 2.0\n",
            "http_request_duration_seconds_bucket{le=\"0.5\",method=\"GET\",route=\"<unmatched>\",status=\"404\",svc=\"t\"} 1.0\n",
            "http_requests_in_progress{svc=\"t\"} 0.0\n",
            "app_info{svc=\"t\",version=\"9\"} 1.0\n",
        ] {
            assert!(t.contains(want), "missing {want}in\n{t}");
        }
        assert!(!t.contains("/metrics") && !t.contains("/internal"), "{t}");
        let total: usize = t
            .lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as usize)
            .sum();
        assert_eq!(total, 8);
    }

    #[test]
    fn raw_paths_prefix_and_bad_options() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let layer = MetricsLayer::builder()
            .dir(&dir)
            .prefix("shop")
            .raw_path_label(true)
            .build()
            .unwrap();
        let mut svc = layer.layer(Unit);
        block_on_for_doc(svc.call(req("GET", "/a/b?q=1"))).unwrap();
        let t = merged(tmp.path());
        assert!(
            t.contains("shop_http_request_duration_seconds_count{method=\"GET\",route=\"/a/b\",status=\"200\"} 1.0\n"),
            "{t}"
        );
        assert!(
            MetricsLayer::builder()
                .dir(&dir)
                .const_label("route", "x")
                .build()
                .is_err()
        );
        // Metric names are UTF-8, as in prometheus_client 0.26.
        assert!(
            MetricsLayer::builder()
                .dir(&dir)
                .prefix("my-app.v2")
                .build()
                .is_ok()
        );
        assert!(
            MetricsLayer::builder()
                .dir(&dir)
                .exclude_path("metrics")
                .build()
                .is_err()
        );
    }

    #[test]
    fn route_from_extension() {
        #[derive(Clone)]
        struct Matched(&'static str);
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let layer = MetricsLayer::builder()
            .dir(&dir)
            .route_from_extension(|m: &Matched| m.0)
            .unmatched_label("none")
            .build()
            .unwrap();
        let mut svc = layer.layer(Unit);
        let mut r = req("GET", "/u/7");
        r.extensions_mut().insert(Matched("/u/{id}"));
        block_on_for_doc(svc.call(r)).unwrap();
        block_on_for_doc(svc.call(req("GET", "/zzz"))).unwrap();
        let t = merged(tmp.path());
        assert!(t.contains("route=\"/u/{id}\""), "{t}");
        assert!(t.contains("route=\"none\""), "{t}");
    }
}
