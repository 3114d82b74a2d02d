//! The integration suite: one test binary, one module per area.

mod api;
#[cfg(feature = "axum")]
mod axum_endpoint;
mod common;
mod info_enum;
#[cfg(feature = "tower")]
mod integrations;
mod interop;
mod process_metrics;
mod reliability;
mod writer;
