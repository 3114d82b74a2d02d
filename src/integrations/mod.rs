//! Web-framework integrations: tower middleware (feature `tower`) and an axum `/metrics` endpoint (feature `axum`).

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "tower")]
pub mod tower;
