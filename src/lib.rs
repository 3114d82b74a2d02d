//! Prometheus metrics for pre-fork multi-process servers, byte-compatible with
//! Python `prometheus_client`'s multiprocess mode.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod format;
pub mod key;
pub mod naming;

pub use error::{Error, Result};
pub use naming::GaugeMode;
