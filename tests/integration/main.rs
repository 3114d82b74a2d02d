//! The integration suite: one test binary, one module per area.

#[cfg(feature = "axum")]
mod axum_endpoint;
#[cfg(feature = "cli")]
mod cli;
mod common;
mod info_enum;
#[cfg(feature = "tower")]
mod integrations;
mod interop;
mod process_metrics;
mod reliability;
#[cfg(feature = "cli")]
mod sidecar;
mod writer;
