//! Integrations: tower middleware (feature `tower`), an axum `/metrics` endpoint (feature `axum`) and their credential check, `render` for any framework, gzip for them (feature `gzip`), and a `metrics` facade recorder (feature `metrics`).

pub mod auth;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "metrics")]
pub mod facade;
#[cfg(feature = "gzip")]
mod gzip;
mod name_filter;
mod render;
#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "gzip")]
pub use gzip::{gzip, wants_gzip};
pub use name_filter::NameFilter;
pub use render::{Rendered, render, render_request};
