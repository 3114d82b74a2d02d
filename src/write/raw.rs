//! One value in this process's metrics file of a given kind, under a key the caller encodes: the building block for bindings (such as the Python package's value class) that make their own keys.
//!
//! The metric types ([`Counter`](crate::Counter), [`Gauge`](crate::Gauge),
//! ...) build their keys and pick their files themselves; a [`RawValue`]
//! leaves both to the caller, and keeps everything else: the entry is created
//! in this process's file of `kind` (`counter_{id}.db`,
//! `gauge_livesum_{id}.db`, ...) if it is not there yet, writes are atomic
//! operations on the mapped slot, the file is locked and marked as the metric
//! types' files are, and after `fork` the first write moves to the child's own
//! file.

use crate::error::{Error, Result};
use crate::format::{FileKind, decode_key};
use crate::write::slot;
use crate::write::writer::{MetricsDir, SlotGroup};

/// A value (and its timestamp) in this process's file of one kind.
///
/// `key` is the entry's key exactly as prometheus_client writes it (the JSON
/// list `[metric, sample, labels, help]`, see
/// [`encode_key`](crate::format::encode_key)); keys that do not decode are
/// refused, since the collector would skip a file holding one.
///
/// ```
/// use prometheus_multiproc::format::{FileKind, encode_key};
/// use prometheus_multiproc::{GaugeMode, MetricsDir, MultiProcessCollector, RawValue};
///
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let key = encode_key("jobs", "jobs_total", &[("queue", "mail")], "Jobs.");
/// let jobs = RawValue::new_in(&dir, FileKind::Counter, key).unwrap();
/// jobs.inc(2.0).unwrap();
/// assert_eq!(jobs.get().unwrap(), 2.0);
///
/// let mut text = Vec::new();
/// MultiProcessCollector::new(tmp.path()).unwrap().encode_text(&mut text).unwrap();
/// assert!(String::from_utf8(text).unwrap().contains("jobs_total{queue=\"mail\"} 2.0\n"));
///
/// assert!(RawValue::new_in(&dir, FileKind::Gauge(GaugeMode::Max), "not json").is_err());
/// ```
pub struct RawValue {
    group: SlotGroup,
}

impl std::fmt::Debug for RawValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawValue")
            .field("kind", &self.group.kind())
            .finish_non_exhaustive()
    }
}

impl RawValue {
    /// The entry `key` in this process's file of `kind` in `dir`, created
    /// with value 0 if missing (an existing entry keeps its value, as
    /// prometheus_client reads it back).
    pub fn new_in(dir: &MetricsDir, kind: FileKind, key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        decode_key(key.as_bytes()).map_err(|why| {
            Error::invalid_argument(
                crate::error::ArgumentKind::MetricKey,
                format!("invalid metric key: {why}"),
            )
        })?;
        Ok(RawValue {
            group: SlotGroup::new(dir, kind, vec![key], true)?,
        })
    }

    /// The kind of file the value lives in.
    pub fn kind(&self) -> FileKind {
        self.group.kind()
    }

    /// Adds `delta` (lock-free) and sets the timestamp to 0, as
    /// prometheus_client's `MultiProcessValue.inc` does.
    #[inline]
    pub fn inc(&self, delta: f64) -> Result<()> {
        slot::add(self.group.slot(0)?, delta);
        slot::set(self.group.slot(1)?, 0.0);
        Ok(())
    }

    /// Sets the value and its timestamp (0 for "none": only
    /// `mostrecent` gauges use it).
    #[inline]
    pub fn set(&self, value: f64, timestamp: f64) -> Result<()> {
        slot::set(self.group.slot(0)?, value);
        slot::set(self.group.slot(1)?, timestamp);
        Ok(())
    }

    /// This process's value.
    #[inline]
    pub fn get(&self) -> Result<f64> {
        Ok(slot::get(self.group.slot(0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MultiProcessCollector;
    use crate::format::{GaugeMode, encode_key};

    #[test]
    fn values_merge_like_the_metric_types() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let kind = FileKind::Gauge(GaugeMode::MostRecent);
        let key = encode_key("t", "t", &[], "T.");
        let v = RawValue::new_in(&dir, kind, key.clone()).unwrap();
        v.set(5.0, 10.0).unwrap();
        assert_eq!(v.get().unwrap(), 5.0);
        // A second handle on the same entry sees the same slot.
        let again = RawValue::new_in(&dir, kind, key).unwrap();
        assert_eq!(again.get().unwrap(), 5.0);
        let s = MultiProcessCollector::new(tmp.path())
            .unwrap()
            .collect_families()
            .unwrap();
        assert_eq!(s.families[0].samples[0].value, 5.0);
        // inc resets the timestamp, as Python's does: the sample is gone.
        again.inc(1.0).unwrap();
        let s = MultiProcessCollector::new(tmp.path())
            .unwrap()
            .collect_families()
            .unwrap();
        assert!(s.families[0].samples.is_empty());
    }
}
