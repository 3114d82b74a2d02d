//! Collecting: the collector API, reading the files, merging them in parallel, liveness of workers, and per-process metrics.

mod budget;
pub(crate) mod clash;
pub(crate) mod collector;
mod convert;
pub(crate) mod dead;
mod encoded;
mod exact;
mod parallel;
mod placement;
pub(crate) mod procfs;
mod read;
mod scrape;
#[cfg(test)]
mod tests;
mod warm;
#[cfg(test)]
mod warm_tests;
mod warning;

pub use budget::READ_BUDGET;
pub use convert::to_metric_families;
pub use read::MAX_FILE_SIZE;
pub use warm::{MAX_KEPT_ENTRIES, MAX_KEPT_FILES};
