//! The incremental ("warm") collector.

use prometheus_multiproc::MultiProcessCollector;

/// Whether this build of the library has an incremental collector (the
/// warm columns are empty otherwise).
pub const AVAILABLE: bool = true;

/// `c` made incremental: layouts and read-only mappings kept between
/// scrapes.
pub fn incremental(c: MultiProcessCollector) -> Option<MultiProcessCollector> {
    Some(c.with_incremental(true))
}
