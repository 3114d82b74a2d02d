//! Web-framework integrations: tower middleware (feature `tower`), an axum `/metrics` endpoint (feature `axum`), and their credential check.

pub mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod name_filter;
mod render;
#[cfg(feature = "tower")]
pub mod tower;

pub use name_filter::NameFilter;
pub use render::{Rendered, render, render_request};
