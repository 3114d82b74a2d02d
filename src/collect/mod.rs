//! Collecting: the collector API, reading the files, merging them in parallel, liveness of workers, and per-process metrics.

pub mod collector;
mod convert;
pub(crate) mod dead;
mod encoded;
mod parallel;
mod placement;
pub mod procfs;
mod read;
mod scrape;
#[cfg(test)]
mod tests;
