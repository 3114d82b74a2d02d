//! Web-framework integrations: tower middleware and an axum `/metrics` endpoint.

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "tower")]
pub mod tower;
