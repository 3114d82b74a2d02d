//! A `/metrics` response for any web framework: collect, pick the format from the `Accept` header, encode.
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
//! assert_eq!(r.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
//! assert!(r.body.ends_with(b"# EOF\n"));
//!
//! let r = render(&collector, None).unwrap();
//! assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
//! assert!(String::from_utf8(r.body).unwrap().contains("hits_total 1.0\n"));
//! ```
//!
//! With axum (a handler returning `(headers, body)`):
//!
//! ```ignore
//! async fn metrics(State(c): State<MultiProcessCollector>, headers: HeaderMap) -> impl IntoResponse {
//!     let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
//!     match prometheus_multiproc::integrations::render(&c, accept) {
//!         Ok(r) => ([(header::CONTENT_TYPE, r.content_type)], r.body).into_response(),
//!         Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
//!     }
//! }
//! ```

use crate::collect::collector::{MultiProcessCollector, Stats, Warning};
use crate::encoding::text::{Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use crate::encoding::wants_openmetrics;
use crate::error::Result;

/// An encoded exposition, ready to be sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rendered {
    /// The response body.
    pub body: Vec<u8>,
    /// The `Content-Type` to send with it:
    /// [`TEXT_CONTENT_TYPE`] or [`OPENMETRICS_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// Files skipped during the scrape, with the reason (the scrape itself
    /// succeeded). Log them as you see fit.
    pub warnings: Vec<Warning>,
    /// Counters describing the scrape.
    pub stats: Stats,
}

impl Rendered {
    /// True when the body is OpenMetrics.
    pub fn is_openmetrics(&self) -> bool {
        self.content_type == OPENMETRICS_CONTENT_TYPE
    }
}

/// Collects `collector`'s directory and encodes it in the format the
/// `Accept` header asks for: OpenMetrics 1.0.0 when it lists
/// `application/openmetrics-text` (with a non-zero `q`), otherwise the
/// Prometheus text format 0.0.4 (also for `None`). This is how
/// prometheus_client chooses. Fails only when the directory cannot be read.
pub fn render(collector: &MultiProcessCollector, accept: Option<&str>) -> Result<Rendered> {
    let mut body = Vec::new();
    let (scrape, content_type) = if accept.is_some_and(wants_openmetrics) {
        (
            collector.scrape_into(Format::OpenMetrics.into(), &mut body)?,
            OPENMETRICS_CONTENT_TYPE,
        )
    } else {
        (
            collector.scrape_into(Format::Text.into(), &mut body)?,
            TEXT_CONTENT_TYPE,
        )
    };
    Ok(Rendered {
        body,
        content_type,
        warnings: scrape.warnings,
        stats: scrape.stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        for yes in [
            "application/openmetrics-text",
            "Application/OpenMetrics-Text; version=0.0.1",
            "text/plain;q=0.5, application/openmetrics-text;q=0.9",
            "application/openmetrics-text; Q=1",
        ] {
            assert!(wants_openmetrics(yes), "{yes}");
        }
        for no in [
            "",
            "text/plain",
            "application/openmetrics-text;q=0",
            "application/openmetrics-text; q=0.0",
            "application/json",
        ] {
            assert!(!wants_openmetrics(no), "{no}");
        }
    }

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
        drop(tmp);
        assert!(render(&c, None).is_err());
    }
}
