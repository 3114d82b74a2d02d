//! Prometheus metrics for pre-fork multi-process servers, byte-compatible with
//! Python `prometheus_client`'s multiprocess mode (release 0.26).
//!
//! Each process writes its metrics into its own memory-mapped files in a
//! shared directory (`PROMETHEUS_MULTIPROC_DIR`); a collector in any process
//! merges all files at scrape time. Rust and Python workers can share one
//! directory.
//!
//! ```text
//!  supervisor ──fork──┬── worker 101 ── counter_101.db, histogram_101.db, gauge_livesum_101.db
//!                     ├── worker 102 ── counter_102.db, ...
//!                     └── worker 103 ── counter_103.db, ...      (Python workers alike)
//!                                              │
//!  scrape ── MultiProcessCollector ── reads and merges every *.db ──> text / OpenMetrics
//! ```
//!
//! # Writing
//!
//! The metric types mirror the `prometheus` crate: [`Counter`],
//! [`Gauge`] (with a [`GaugeMode`] saying how processes combine),
//! [`Histogram`], [`Summary`] and their `*Vec`s, built from
//! `prometheus::Opts`/`HistogramOpts`. Constructors without a directory read
//! the environment; the `*_in` constructors take a [`MetricsDir`].
//!
//! ```
//! use prometheus_multiproc::{CounterVec, MetricsDir, MultiProcessCollector};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! let dir = MetricsDir::open(tmp.path())?;
//! let requests = CounterVec::new_in(&dir, prometheus::Opts::new("requests_total", "Requests."), &["code"])?;
//! requests.with_label_values(&["200"]).inc();
//!
//! let mut text = Vec::new();
//! MultiProcessCollector::new(tmp.path())?.encode_text(&mut text)?;
//! let text = String::from_utf8(text)?;
//! assert!(text.contains("# TYPE requests_total counter\n"));
//! assert!(text.contains("requests_total{code=\"200\"} 1.0\n"));
//! # Ok(())
//! # }
//! ```
//!
//! An increment is an atomic operation on a slot of the mapped file: no lock,
//! no system call. See [`mod@format`] for the file layout and
//! `docs/format.md` for the merge rules.
//!
//! Beyond prometheus_client's multiprocess mode: [`Info`] and [`Enum`] (and
//! their `*Vec`s), [`timing`] helpers for closures and futures, a `/metrics`
//! response for any framework ([`integrations::render`]), HTTP middleware for
//! tower-based servers (`integrations::tower::MetricsLayer`, feature `tower`), and
//! per-worker process metrics
//! ([`MultiProcessCollector::with_process_metrics`]). See
//! `docs/integrations.md`.
//!
//! # Processes
//!
//! * After `fork`, a child's first write moves its handles to the child's own
//!   files (named by its pid); nothing it writes lands in its parent's files.
//! * Each process holds an exclusive lock on its files while it lives, so the
//!   collector leaves out live-mode gauges of workers that died without
//!   [`mark_process_dead`] (e.g. `SIGKILL`). Forked children inherit neither
//!   the mappings nor the locks of their parent, so a dead worker's children
//!   cannot keep it looking alive.
//! * Files grow by reserving disk blocks first: a full disk is an error from
//!   the fallible calls (`get_metric_with_label_values`, `try_*`), never a
//!   `SIGBUS`.
//!
//! # Safety model
//!
//! All `unsafe` code lives in one private module, `write`, in two files
//! that the compiler allows it (`unsafe_code` is denied everywhere else):
//! the mapped file, its slots and the fork handlers, and (feature
//! `prefork`) the supervisor's `fork`, `_exit` and signal handlers. Every
//! block carries a `// SAFETY:` comment. Memory shared with
//! other processes is only touched through raw pointers and atomics. The
//! collector never maps files: it reads them, bounded by their real size, so
//! no file content can make it read, write or allocate outside the file.

mod collect;
mod compact;
pub mod encoding;
pub mod env;
mod error;
pub mod format;
pub mod integrations;
pub mod merge;
mod metrics;
mod open;
#[cfg(feature = "prefork")]
pub mod prefork;
mod warn;
mod write;

/// The `prometheus` crate this crate builds on (its `Opts`, `HistogramOpts`,
/// `Registry`, `Encoder`s and `core::Collector`), re-exported so that a
/// dependent uses the same version.
pub use prometheus;
pub use prometheus::{HistogramOpts, Opts};

pub use collect::clash::ClashingMetric;
pub use collect::collector::{MultiProcessCollector, Scrape, Stats, Warning, WarningKind};
pub use collect::dead::{
    Liveness, mark_process_dead, mark_process_dead_in, mark_worker_dead_in, probe_liveness,
    remove_dead_live_files,
};
pub use collect::{
    MAX_FILE_SIZE, MAX_KEPT_ENTRIES, MAX_KEPT_FILES, READ_BUDGET, to_metric_families,
};
pub use compact::coord::{JOURNAL_FILE, LOCK_FILE};
pub use compact::{ARCHIVE_ID, COMPACTED_KINDS, Compaction, compact_dead_auto_in, compact_dead_in};
pub use error::{ArgumentKind, Error, Result};
pub use format::GaugeMode;
pub use merge::{Family, FamilyKind, Sample};
pub use metrics::timing;
pub use metrics::{
    Counter, CounterVec, DEFAULT_BUCKETS, Enum, EnumVec, Gauge, GaugeVec, Histogram,
    HistogramTimer, HistogramVec, HistogramVecTimer, Info, InfoVec, MetricVec, Summary, SummaryVec,
};
pub use write::raw::RawValue;
pub use write::writer::{MetricsDir, set_worker_id};

/// Advanced traits.
pub mod core {
    pub use crate::metrics::VecChild;
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(all(doctest, feature = "prefork"))]
#[doc = include_str!("../docs/prefork.md")]
struct PreforkDocDoctests;
