//! Exposition: the Prometheus text format and OpenMetrics, byte-compatible with prometheus_client, and a `/metrics` response for any framework.

pub(crate) mod render;
pub(crate) mod text;

pub use render::{Rendered, render, wants_openmetrics};
pub use text::{
    Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, encode_openmetrics, encode_text,
    write_openmetrics, write_text,
};
