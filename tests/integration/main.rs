//! The integration suite: one test binary, one module per area.
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

mod api;
#[cfg(feature = "axum")]
mod axum_endpoint;
mod common;
mod compact;
mod info_enum;
#[cfg(feature = "tower")]
mod integrations;
mod interop;
mod process_metrics;
mod reliability;
mod writer;
