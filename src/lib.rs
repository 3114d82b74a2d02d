//! Prometheus metrics for pre-fork multi-process servers, byte-compatible with
//! Python `prometheus_client`'s multiprocess mode.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod format;
pub mod key;
pub mod naming;
pub mod merge;
pub mod collector;
pub mod expose;

mod dead;
mod metrics;
mod mmap;
mod slot;
mod writer;

pub use dead::{
    Liveness, mark_process_dead, mark_process_dead_in, mark_worker_dead_in, probe_liveness,
    remove_dead_live_files,
};
pub use collector::MultiProcessCollector;
pub use error::{Error, Result};
pub use metrics::{
    Counter, CounterVec, DEFAULT_BUCKETS, Gauge, GaugeVec, Histogram, HistogramTimer, HistogramVec,
    MetricVec, Summary, SummaryVec,
};
pub use naming::GaugeMode;
pub use writer::{FILE_MODE_ENV, MetricsDir, WORKER_ID_ENV, set_worker_id};

/// Advanced traits.
pub mod core {
    pub use crate::metrics::VecChild;
}
