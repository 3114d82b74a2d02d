//! `Histogram` and `HistogramVec`: per-bucket counts and a sum, summed across processes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use prometheus::HistogramOpts;

use super::vec::MetricVec;
use super::vec::sealed::Child as VecChild;
use super::{Desc, Kind, checked, warn_once};
use crate::error::{Error, Result};
use crate::format::key::{encode_key, float_to_go_string};
use crate::format::naming::FileKind;
use crate::write::slot;
use crate::write::writer::{MetricsDir, NewGroup, SlotGroup};

/// prometheus_client's default buckets (the `prometheus` crate's, plus `+Inf`).
pub const DEFAULT_BUCKETS: [f64; 15] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    f64::INFINITY,
];

/// A histogram whose buckets live in this process's `histogram_{pid}.db`.
///
/// Stored as prometheus_client stores it: a `_sum` entry and one
/// non-cumulative `_bucket` entry per upper bound (`le` formatted like
/// prometheus_client's `floatToGoString`); the collector makes buckets
/// cumulative and derives `_count`. `observe` is two atomic additions.
///
/// ```
/// use prometheus_multiproc::{Histogram, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let opts = prometheus::HistogramOpts::new("latency_seconds", "Latency.").buckets(vec![0.1, 1.0]);
/// let h = Histogram::with_opts_in(&dir, opts).unwrap();
/// h.observe(0.5);
/// h.observe(3.0);
/// assert_eq!(h.get_sample_count(), 2);
/// assert_eq!(h.get_sample_sum(), 3.5);
/// ```
#[derive(Clone)]
pub struct Histogram {
    core: Arc<HistogramCore>,
}

struct HistogramCore {
    /// Slot 0 is `_sum`; slot `1 + i` is the bucket of `bounds[i]`.
    group: SlotGroup,
    bounds: Arc<[f64]>,
    warned: AtomicBool,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.get_sample_count())
            .field("sum", &self.get_sample_sum())
            .finish()
    }
}

/// What every child of the `*Vec` is made from.
pub struct HistogramProto {
    dir: MetricsDir,
    desc: Desc,
    bounds: Arc<[f64]>,
}

/// Validates buckets: sorted, strictly increasing, no NaN; `+Inf` appended.
fn bounds(buckets: &[f64]) -> Result<Arc<[f64]>> {
    let mut b: Vec<f64> = if buckets.is_empty() {
        DEFAULT_BUCKETS.to_vec()
    } else {
        buckets.to_vec()
    };
    if b.iter().any(|x| x.is_nan()) {
        return Err(Error::invalid_argument(
            crate::error::ArgumentKind::Buckets,
            "histogram buckets contain NaN",
        ));
    }
    if b.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid_argument(
            crate::error::ArgumentKind::Buckets,
            "histogram buckets must be in strictly increasing order",
        ));
    }
    if b.last() != Some(&f64::INFINITY) {
        b.push(f64::INFINITY);
    }
    if b.len() < 2 {
        return Err(Error::invalid_argument(
            crate::error::ArgumentKind::Buckets,
            "histograms need at least two buckets",
        ));
    }
    Ok(b.into())
}

fn proto(
    dir: &MetricsDir,
    opts: &HistogramOpts,
    labels: Option<&[&str]>,
) -> Result<HistogramProto> {
    let desc = match labels {
        Some(l) => Desc::with_labels(&opts.common_opts, l, &["le"])?,
        None => {
            if !opts.common_opts.variable_labels.is_empty() {
                return Err(Error::invalid_argument(
                    crate::error::ArgumentKind::VariableLabels,
                    "variable labels given to Histogram: use HistogramVec",
                ));
            }
            Desc::new(&opts.common_opts, &["le"])?
        }
    };
    let bounds = bounds(&opts.buckets)?;
    Ok(HistogramProto {
        dir: dir.clone(),
        desc: checked(dir, Kind::Histogram(&bounds), desc)?,
        bounds,
    })
}

impl Histogram {
    /// A histogram from `prometheus::HistogramOpts` (empty buckets mean the
    /// defaults), in the directory from the environment.
    pub fn with_opts(opts: HistogramOpts) -> Result<Histogram> {
        Histogram::with_opts_in(&MetricsDir::from_env()?, opts)
    }

    /// A histogram in `dir`.
    pub fn with_opts_in(dir: &MetricsDir, opts: HistogramOpts) -> Result<Histogram> {
        Histogram::make(&proto(dir, &opts, None)?, &[])
    }

    /// Records one observation.
    #[inline]
    pub fn observe(&self, v: f64) {
        if let Err(e) = self.try_observe(v) {
            warn_once(&self.core.warned, "histogram observe", &e);
        }
    }

    /// Records one observation, or returns why it could not (in a forked
    /// child only: this process's file could not be created).
    #[inline]
    pub fn try_observe(&self, v: f64) -> Result<()> {
        let c = &self.core;
        // The first bound >= v (none for NaN, as in prometheus_client).
        let i = c.bounds.partition_point(|b| *b < v);
        if i < c.bounds.len() && v <= c.bounds[i] {
            slot::add(c.group.slot(1 + i)?, 1.0);
        }
        slot::add(c.group.slot(0)?, v);
        Ok(())
    }

    /// Starts a timer that observes the elapsed seconds when stopped or
    /// dropped.
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: self.clone(),
            start: Instant::now(),
            observed: false,
        }
    }

    /// Times `f` and observes its duration in seconds.
    pub fn observe_closure_duration<F: FnOnce() -> T, T>(&self, f: F) -> T {
        let start = Instant::now();
        let r = f();
        self.observe(start.elapsed().as_secs_f64());
        r
    }

    /// This process's number of observations.
    pub fn get_sample_count(&self) -> u64 {
        let c = &self.core;
        (0..c.bounds.len())
            .map(|i| c.group.slot(1 + i).map(slot::get).unwrap_or(0.0))
            .sum::<f64>() as u64
    }

    /// This process's sum of observations.
    pub fn get_sample_sum(&self) -> f64 {
        self.core.group.slot(0).map(slot::get).unwrap_or(0.0)
    }

    /// The upper bounds, `+Inf` last.
    pub fn buckets(&self) -> &[f64] {
        &self.core.bounds
    }
}

impl VecChild for Histogram {
    type Proto = HistogramProto;

    fn make(proto: &HistogramProto, values: &[&str]) -> Result<Histogram> {
        build(proto, values, SlotGroup::new)
    }

    fn make_in_memory(proto: &HistogramProto, values: &[&str]) -> Result<Histogram> {
        build(proto, values, SlotGroup::in_memory)
    }

    fn label_count(proto: &HistogramProto) -> usize {
        proto.desc.label_names.len()
    }
}

/// Makes the child for `values`, its entries created by `new_group`.
fn build(proto: &HistogramProto, values: &[&str], new_group: NewGroup) -> Result<Histogram> {
    let d = &proto.desc;
    let labels = d.label_pairs(values)?;
    let mut keys = Vec::with_capacity(proto.bounds.len() + 1);
    keys.push(encode_key(
        &d.name,
        &format!("{}_sum", d.name),
        &labels,
        &d.help,
    ));
    let bucket = format!("{}_bucket", d.name);
    for b in proto.bounds.iter() {
        let le = float_to_go_string(*b);
        let mut with_le = labels.clone();
        with_le.push(("le", &le));
        keys.push(encode_key(&d.name, &bucket, &with_le, &d.help));
    }
    Ok(Histogram {
        core: Arc::new(HistogramCore {
            group: new_group(&proto.dir, FileKind::Histogram, keys, false)?,
            bounds: Arc::clone(&proto.bounds),
            warned: AtomicBool::new(false),
        }),
    })
}

/// Times a span and observes it in a [`Histogram`], in seconds.
///
/// ```
/// # use prometheus_multiproc::{Histogram, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = MetricsDir::open(tmp.path()).unwrap();
/// let h = Histogram::with_opts_in(&dir, prometheus::HistogramOpts::new("job_seconds", "Job time.")).unwrap();
/// let t = h.start_timer();
/// // ... work ...
/// t.observe_duration();
/// assert_eq!(h.get_sample_count(), 1);
/// ```
#[must_use = "a timer observes when dropped; bind it to a variable"]
#[derive(Debug)]
pub struct HistogramTimer {
    histogram: Histogram,
    start: Instant,
    observed: bool,
}

impl HistogramTimer {
    /// Observes the elapsed time.
    pub fn observe_duration(self) {
        self.stop_and_record();
    }

    /// Observes the elapsed time and returns it in seconds.
    pub fn stop_and_record(mut self) -> f64 {
        self.observed = true;
        let s = self.start.elapsed().as_secs_f64();
        self.histogram.observe(s);
        s
    }

    /// Stops without observing; returns the elapsed seconds.
    pub fn stop_and_discard(mut self) -> f64 {
        self.observed = true;
        self.start.elapsed().as_secs_f64()
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        if !self.observed {
            self.histogram.observe(self.start.elapsed().as_secs_f64());
        }
    }
}

/// Histograms with variable labels.
///
/// ```
/// use prometheus_multiproc::{HistogramVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let h = HistogramVec::new_in(&dir, prometheus::HistogramOpts::new("rpc_seconds", "RPC time."), &["method"]).unwrap();
/// h.with_label_values(&["get"]).observe(0.02);
/// ```
pub type HistogramVec = MetricVec<Histogram>;

impl MetricVec<Histogram> {
    /// Histograms named by `opts`, with label names `labels`, in the
    /// directory from the environment.
    pub fn new(opts: HistogramOpts, labels: &[&str]) -> Result<HistogramVec> {
        HistogramVec::new_in(&MetricsDir::from_env()?, opts, labels)
    }

    /// Histograms in `dir`.
    pub fn new_in(dir: &MetricsDir, opts: HistogramOpts, labels: &[&str]) -> Result<HistogramVec> {
        Ok(MetricVec::from_proto(proto(dir, &opts, Some(labels))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_validation() {
        assert_eq!(&*bounds(&[1.0, 2.0]).unwrap(), &[1.0, 2.0, f64::INFINITY]);
        assert_eq!(bounds(&[]).unwrap().len(), 15);
        let kind = |b: &[f64]| bounds(b).unwrap_err().argument_kind();
        let buckets = Some(crate::ArgumentKind::Buckets);
        assert_eq!(kind(&[2.0, 1.0]), buckets);
        assert_eq!(kind(&[1.0, 1.0]), buckets);
        assert_eq!(kind(&[f64::NAN]), buckets);
        assert_eq!(kind(&[f64::INFINITY]), buckets);
    }
}
