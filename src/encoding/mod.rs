//! Exposition: the Prometheus text format and OpenMetrics, byte-compatible with prometheus_client, the escaping of names, and which format a request asks for.
//!
//! One way to produce text:
//!
//! * [`Format::encode`] encodes [`Family`](crate::Family)s (merged by the
//!   collector, or built by hand) in the text format or OpenMetrics;
//!   [`Negotiated::encode`] does the same for the format and name escaping
//!   a request's `Accept` header asked for ([`negotiate`]).
//! * [`MultiProcessCollector::encode_text`](crate::MultiProcessCollector::encode_text),
//!   `encode_openmetrics` and `encode_negotiated` collect *and* write in one
//!   call (the families are encoded by the merging threads);
//!   [`Scrape::encode_text`](crate::Scrape::encode_text) and
//!   `encode_openmetrics` are shorthands for [`Format::encode`] on a scrape
//!   already collected.
//! * [`integrations::render`](crate::integrations::render) wraps the
//!   negotiated collect-and-write in an HTTP response (status, content type,
//!   body) for any web framework.

pub(crate) mod escaping;
mod negotiate;
pub(crate) mod text;

pub use escaping::Escaping;
pub use negotiate::{Negotiated, NegotiationError, negotiate};
pub use text::{Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
