//! Collecting: the collector API, reading the files, liveness of workers, and per-process metrics.

pub mod collector;
pub(crate) mod dead;
pub mod procfs;
