//! Exposition: the Prometheus text format and OpenMetrics, byte-compatible with prometheus_client, the escaping of names, and which format a request asks for.

pub(crate) mod escaping;
mod negotiate;
pub(crate) mod text;

pub use escaping::Escaping;
pub use negotiate::{Negotiated, NegotiationError, negotiate};
pub use text::{
    Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, encode_openmetrics, encode_text,
    write_openmetrics, write_text,
};
