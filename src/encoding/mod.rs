//! Exposition: the Prometheus text format and OpenMetrics, byte-compatible with prometheus_client, and which one a request asks for.

mod accept;
pub(crate) mod escaping;
pub(crate) mod text;

pub use accept::wants_openmetrics;
pub use escaping::Escaping;
pub use text::{
    Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, encode_openmetrics, encode_text,
    write_openmetrics, write_text,
};
