//! Encoding merged families for exposition: the Prometheus text format and OpenMetrics.

pub mod render;
pub mod text;
