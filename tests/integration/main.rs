//! The integration suite: one test binary, one module per area.
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

mod accept_headers;
mod api;
#[cfg(feature = "axum")]
mod axum_endpoint;
mod bounded_read;
mod common;
mod compact;
mod duplicates;
#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "gzip")]
mod gzip;
mod hardening;
mod info_enum;
#[cfg(feature = "tower")]
mod integrations;
mod interop;
#[cfg(feature = "axum")]
mod negotiation;
#[cfg(all(feature = "tower", feature = "prefork"))]
mod prefork;
mod process_metrics;
mod reliability;
mod sparse_fixture;
mod writer;
