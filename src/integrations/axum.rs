//! A ready `/metrics` endpoint for axum (feature `axum`): merged metrics with content negotiation and optional basic or bearer auth.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;

use super::auth::constant_time_eq;
use super::render::render_request;
use crate::collect::collector::MultiProcessCollector;

/// The `/metrics` endpoint: merges the directory at every request (on a
/// blocking thread), answers in the text format or OpenMetrics with the
/// name escaping the `Accept` header asks for (negotiated as
/// prometheus_client does, see [`negotiate`](crate::encoding::negotiate)),
/// keeps only the samples named by `?name[]=…` when given, compresses with
/// gzip when the client's `Accept-Encoding` allows it (feature `gzip`), and
/// checks credentials when configured.
///
/// ```no_run
/// use prometheus_multiproc::{MultiProcessCollector, integrations::axum::MetricsEndpoint};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let metrics = MetricsEndpoint::new(MultiProcessCollector::from_env()?)
///     .with_bearer_token(std::fs::read_to_string("/run/secrets/metrics-token")?.trim());
/// let app = axum::Router::new().merge(metrics.router("/metrics"));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
/// axum::serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MetricsEndpoint {
    collector: MultiProcessCollector,
    /// Accepted `Authorization` header values; empty: no auth.
    credentials: Arc<Vec<String>>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("collector", &self.collector)
            .field("auth", &!self.credentials.is_empty())
            .finish()
    }
}

impl MetricsEndpoint {
    /// An endpoint without authentication.
    pub fn new(collector: MultiProcessCollector) -> Self {
        MetricsEndpoint {
            collector,
            credentials: Arc::new(Vec::new()),
        }
    }

    /// Also accepts HTTP basic auth with `user` and `password`.
    pub fn with_basic_auth(self, user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.accept(format!("Basic {token}"))
    }

    /// Also accepts `Authorization: Bearer <token>`.
    pub fn with_bearer_token(self, token: &str) -> Self {
        self.accept(format!("Bearer {token}"))
    }

    fn accept(mut self, value: String) -> Self {
        Arc::make_mut(&mut self.credentials).push(value);
        self
    }

    /// A router that serves the endpoint at `path` (e.g. `/metrics`), to be
    /// merged into the application's router.
    pub fn router<S>(self, path: &str) -> Router<S> {
        Router::new().route(path, get(handle)).with_state(self)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.credentials.is_empty() {
            return true;
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        // Check every credential, in constant time for each.
        self.credentials
            .iter()
            .fold(false, |ok, c| ok | constant_time_eq(c.as_bytes(), given))
    }
}

/// The axum handler behind [`MetricsEndpoint::router`].
pub async fn handle(
    State(ep): State<MetricsEndpoint>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !ep.authorized(&headers) {
        let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"metrics\""),
        );
        return r;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    #[cfg(feature = "gzip")]
    let accept_encoding = joined(&headers, header::ACCEPT_ENCODING);
    let collector = ep.collector.clone();
    let result = tokio::task::spawn_blocking(move || {
        let rendered = render_request(&collector, accept.as_deref(), query.as_deref())?;
        // Compressed on the blocking thread too.
        #[cfg(feature = "gzip")]
        let rendered = rendered.gzip_for(accept_encoding.as_deref());
        Ok::<_, crate::error::Error>(rendered)
    })
    .await;
    match result {
        Ok(Ok(rendered)) => {
            for w in &rendered.warnings {
                eprintln!("prometheus-multiproc: warning: {w}");
            }
            let vary = rendered.vary();
            let encoding = rendered.content_encoding;
            let parts = [
                (header::CONTENT_TYPE, rendered.content_type),
                (header::VARY, vary.to_owned()),
            ];
            let mut r = (parts, rendered.body).into_response();
            if let Some(enc) = encoding {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
            }
            r
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Every value of the header `name` that is text, joined with `,` (how
/// repeated list headers combine); `None` without any.
#[cfg(feature = "gzip")]
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let tmp = tempfile::tempdir().unwrap();
        let c = MultiProcessCollector::new(tmp.path()).unwrap();
        let open = MetricsEndpoint::new(c.clone());
        assert!(open.authorized(&HeaderMap::new()));
        let ep = MetricsEndpoint::new(c)
            .with_basic_auth("prom", "s3cret")
            .with_bearer_token("tok");
        let mut h = HeaderMap::new();
        assert!(!ep.authorized(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        assert!(ep.authorized(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok2"),
        );
        assert!(!ep.authorized(&h));
        // base64("prom:s3cret")
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic cHJvbTpzM2NyZXQ="),
        );
        assert!(ep.authorized(&h));
    }
}
