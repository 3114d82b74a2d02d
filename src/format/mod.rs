//! The prometheus_client on-disk contract: file layout, entry keys, float formatting and file names.

pub mod key;
mod layout;
pub mod naming;

pub use layout::*;
