//! A `/metrics` response for any web framework: collect, pick the format from the `Accept` header as prometheus_client does, cut to `name[]`, encode.
//!
//! ```
//! use prometheus_multiproc::{Counter, MetricsDir, MultiProcessCollector};
//! use prometheus_multiproc::integrations::render;
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = MetricsDir::open(tmp.path()).unwrap();
//! # Counter::new_in(&dir, "hits_total", "Hits.").unwrap().inc();
//! let collector = MultiProcessCollector::new(tmp.path()).unwrap();
//!
//! // In a handler: pass the request's Accept header, if any.
//! let r = render(&collector, Some("application/openmetrics-text; version=1.0.0")).unwrap();
//! assert_eq!(
//!     r.content_type,
//!     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
//! );
//! assert!(r.body.ends_with(b"# EOF\n"));
//!
//! let r = render(&collector, None).unwrap();
//! assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
//! assert!(String::from_utf8(r.body).unwrap().contains("hits_total 1.0\n"));
//! ```
//!
//! With axum (a handler returning `(headers, body)`; the query string
//! carries `name[]`):
//!
//! ```ignore
//! async fn metrics(
//!     State(c): State<MultiProcessCollector>,
//!     RawQuery(query): RawQuery,
//!     headers: HeaderMap,
//! ) -> impl IntoResponse {
//!     let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
//!     let accept_encoding = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
//!     match prometheus_multiproc::integrations::render_request(&c, accept, query.as_deref()) {
//!         // With the `gzip` feature: compressed when the client allows it.
//!         Ok(r) => {
//!             let r = r.gzip_for(accept_encoding);
//!             let vary = r.vary();
//!             let encoding = r.content_encoding;
//!             let parts = [(header::CONTENT_TYPE, r.content_type), (header::VARY, vary.to_owned())];
//!             let mut resp = (parts, r.body).into_response();
//!             if let Some(enc) = encoding {
//!                 resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
//!             }
//!             resp
//!         }
//!         Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
//!     }
//! }
//! ```

use super::name_filter::NameFilter;
use crate::collect::collector::{MultiProcessCollector, Stats, Warning};
use crate::encoding::negotiate;
use crate::error::Result;

/// An encoded exposition, ready to be sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rendered {
    /// The response body.
    pub body: Vec<u8>,
    /// The `Content-Type` to send with it, as prometheus_client sends it for
    /// the same `Accept` header (see
    /// [`Negotiated::content_type`](crate::encoding::Negotiated::content_type)).
    pub content_type: String,
    /// The `Content-Encoding` to send: `Some("gzip")` once
    /// [`gzip_for`](Rendered::gzip_for) compressed the body, else `None`.
    pub content_encoding: Option<&'static str>,
    /// Files skipped during the scrape, with the reason (the scrape itself
    /// succeeded). Log them as you see fit.
    pub warnings: Vec<Warning>,
    /// Counters describing the scrape.
    pub stats: Stats,
}

impl Rendered {
    /// The `Vary` header to send: the body depends on `Accept` (and, with
    /// the `gzip` feature, on `Accept-Encoding`), so caches must key on it.
    pub fn vary(&self) -> &'static str {
        if cfg!(feature = "gzip") {
            "Accept, Accept-Encoding"
        } else {
            "Accept"
        }
    }

    /// Compresses the body with gzip when the request's `Accept-Encoding`
    /// (`None`: no header) allows it (see [`wants_gzip`](super::wants_gzip)),
    /// and sets [`content_encoding`](Rendered::content_encoding) then.
    /// Feature `gzip`.
    ///
    /// ```
    /// use std::io::Read as _;
    /// use prometheus_multiproc::{Counter, MetricsDir, MultiProcessCollector};
    /// use prometheus_multiproc::integrations::render;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// # Counter::new_in(&dir, "hits_total", "Hits.").unwrap().inc();
    /// let collector = MultiProcessCollector::new(tmp.path()).unwrap();
    /// let r = render(&collector, None).unwrap().gzip_for(Some("gzip, br"));
    /// assert_eq!(r.content_encoding, Some("gzip"));
    /// assert_eq!(r.vary(), "Accept, Accept-Encoding");
    /// let mut text = String::new();
    /// flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut text).unwrap();
    /// assert!(text.contains("hits_total 1.0\n"));
    /// ```
    #[cfg(feature = "gzip")]
    pub fn gzip_for(mut self, accept_encoding: Option<&str>) -> Self {
        if self.content_encoding.is_none() && accept_encoding.is_some_and(super::wants_gzip) {
            self.body = super::gzip(&self.body);
            self.content_encoding = Some("gzip");
        }
        self
    }

    /// True when the body is OpenMetrics.
    pub fn is_openmetrics(&self) -> bool {
        self.content_type
            .starts_with("application/openmetrics-text;")
    }
}

/// Collects `collector`'s directory and encodes it in the format and name
/// escaping the `Accept` header asks for, chosen exactly as
/// prometheus_client 0.26 chooses (see [`negotiate`]); the text format
/// 0.0.4 for `None`. Fails when the directory cannot be read, or when
/// prometheus_client would fail on the header too
/// ([`Error::is_negotiation`](crate::Error::is_negotiation); answer 500 as
/// it does).
pub fn render(collector: &MultiProcessCollector, accept: Option<&str>) -> Result<Rendered> {
    render_request(collector, accept, None)
}

/// [`render`], and with a URL query string (the part after `?`) holding
/// `name[]` fields, only the samples so named (see [`NameFilter`]).
///
/// ```
/// use prometheus_multiproc::{Counter, Gauge, GaugeMode, MetricsDir, MultiProcessCollector};
/// use prometheus_multiproc::integrations::render_request;
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = MetricsDir::open(tmp.path()).unwrap();
/// Counter::new_in(&dir, "hits_total", "Hits.").unwrap().inc();
/// Gauge::new_in(&dir, "temp", "Temperature.", GaugeMode::All).unwrap().set(3.0);
/// let collector = MultiProcessCollector::new(tmp.path()).unwrap();
/// let r = render_request(&collector, None, Some("name[]=hits_total")).unwrap();
/// assert_eq!(
///     String::from_utf8(r.body).unwrap(),
///     "# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total 1.0\n"
/// );
/// ```
pub fn render_request(
    collector: &MultiProcessCollector,
    accept: Option<&str>,
    query: Option<&str>,
) -> Result<Rendered> {
    let negotiated = negotiate(accept)?;
    let mut body = Vec::new();
    let scrape = match query.and_then(NameFilter::from_query) {
        None => collector.scrape_into(negotiated.encoder(), &mut body)?,
        Some(filter) => {
            let mut scrape = collector.collect_families()?;
            filter.restrict(&mut scrape.families);
            negotiated.encode(&scrape.families, &mut body);
            scrape
        }
    };
    Ok(Rendered {
        body,
        content_type: negotiated.content_type().to_owned(),
        content_encoding: None,
        warnings: scrape.warnings,
        stats: scrape.stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_directory_and_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let c = MultiProcessCollector::new(tmp.path()).unwrap();
        let r = render(&c, Some("application/openmetrics-text")).unwrap();
        assert_eq!(r.body, b"# EOF\n");
        assert!(r.is_openmetrics());
        let r = render(&c, Some("text/plain")).unwrap();
        assert!(r.body.is_empty());
        assert!(!r.is_openmetrics());
        std::fs::write(tmp.path().join("counter_1.db"), b"bad").unwrap();
        let r = render(&c, None).unwrap();
        assert_eq!(r.warnings.len(), 1);
        let err = render(&c, Some("text/plain;version=1.x")).unwrap_err();
        assert!(err.is_negotiation(), "{err}");
        drop(tmp);
        assert!(render(&c, None).is_err());
    }
}
