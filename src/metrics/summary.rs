//! `Summary` and `SummaryVec`: count and sum of observations, as prometheus_client keeps them in multiprocess mode.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus::Opts;

use super::vec::MetricVec;
use super::vec::sealed::Child as VecChild;
use super::{Desc, Kind, checked, warn_once};
use crate::error::{Error, Result};
use crate::format::key::encode_key;
use crate::format::naming::FileKind;
use crate::write::slot;
use crate::write::writer::{MetricsDir, NewGroup, SlotGroup};

/// A summary (count and sum, no quantiles) in this process's `summary_{pid}.db`.
///
/// ```
/// use prometheus_multiproc::{Summary, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let s = Summary::new_in(&dir, "payload_bytes", "Payload sizes.").unwrap();
/// s.observe(100.0);
/// s.observe(50.0);
/// assert_eq!((s.get_sample_count(), s.get_sample_sum()), (2, 150.0));
/// ```
#[derive(Clone)]
pub struct Summary {
    core: Arc<SummaryCore>,
}

struct SummaryCore {
    /// Slot 0 is `_count`, slot 1 is `_sum`.
    group: SlotGroup,
    warned: AtomicBool,
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summary")
            .field("count", &self.get_sample_count())
            .field("sum", &self.get_sample_sum())
            .finish()
    }
}

/// What every child of the `*Vec` is made from.
pub struct SummaryProto {
    dir: MetricsDir,
    desc: Desc,
}

impl Summary {
    /// A summary without labels, in the directory from the environment.
    pub fn new(name: &str, help: &str) -> Result<Summary> {
        Summary::with_opts(Opts::new(name, help))
    }

    /// A summary from `prometheus::Opts`, in the directory from the environment.
    pub fn with_opts(opts: Opts) -> Result<Summary> {
        Summary::with_opts_in(&MetricsDir::from_env()?, opts)
    }

    /// A summary without labels in `dir`.
    pub fn new_in(dir: &MetricsDir, name: &str, help: &str) -> Result<Summary> {
        Summary::with_opts_in(dir, Opts::new(name, help))
    }

    /// A summary from `opts` in `dir`.
    pub fn with_opts_in(dir: &MetricsDir, opts: Opts) -> Result<Summary> {
        if !opts.variable_labels.is_empty() {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::VariableLabels,
                "variable labels given to Summary: use SummaryVec",
            ));
        }
        let proto = SummaryProto {
            dir: dir.clone(),
            desc: checked(dir, Kind::Summary, Desc::new(&opts, &["quantile"])?)?,
        };
        Summary::make(&proto, &[])
    }

    /// Records one observation.
    #[inline]
    pub fn observe(&self, v: f64) {
        if let Err(e) = self.try_observe(v) {
            warn_once(&self.core.warned, "summary observe", &e);
        }
    }

    /// Records one observation, or returns why it could not.
    #[inline]
    pub fn try_observe(&self, v: f64) -> Result<()> {
        let g = &self.core.group;
        slot::add(g.slot(0)?, 1.0);
        slot::add(g.slot(1)?, v);
        Ok(())
    }

    /// This process's number of observations.
    pub fn get_sample_count(&self) -> u64 {
        self.core.group.slot(0).map(slot::get).unwrap_or(0.0) as u64
    }

    /// This process's sum of observations.
    pub fn get_sample_sum(&self) -> f64 {
        self.core.group.slot(1).map(slot::get).unwrap_or(0.0)
    }
}

impl VecChild for Summary {
    type Proto = SummaryProto;

    fn make(proto: &SummaryProto, values: &[&str]) -> Result<Summary> {
        build(proto, values, SlotGroup::new)
    }

    fn make_in_memory(proto: &SummaryProto, values: &[&str]) -> Result<Summary> {
        build(proto, values, SlotGroup::in_memory)
    }

    fn label_count(proto: &SummaryProto) -> usize {
        proto.desc.label_names.len()
    }
}

/// Makes the child for `values`, its entries created by `new_group`.
fn build(proto: &SummaryProto, values: &[&str], new_group: NewGroup) -> Result<Summary> {
    let d = &proto.desc;
    let labels = d.label_pairs(values)?;
    let keys = vec![
        encode_key(&d.name, &format!("{}_count", d.name), &labels, &d.help),
        encode_key(&d.name, &format!("{}_sum", d.name), &labels, &d.help),
    ];
    Ok(Summary {
        core: Arc::new(SummaryCore {
            group: new_group(&proto.dir, FileKind::Summary, keys, false)?,
            warned: AtomicBool::new(false),
        }),
    })
}

/// Summaries with variable labels.
///
/// ```
/// use prometheus_multiproc::{SummaryVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let s = SummaryVec::new_in(&dir, prometheus::Opts::new("batch_size", "Batch sizes."), &["queue"]).unwrap();
/// s.with_label_values(&["mail"]).observe(12.0);
/// ```
pub type SummaryVec = MetricVec<Summary>;

impl MetricVec<Summary> {
    /// Summaries named by `opts`, with label names `labels`, in the directory
    /// from the environment.
    pub fn new(opts: Opts, labels: &[&str]) -> Result<SummaryVec> {
        SummaryVec::new_in(&MetricsDir::from_env()?, opts, labels)
    }

    /// Summaries in `dir`.
    pub fn new_in(dir: &MetricsDir, opts: Opts, labels: &[&str]) -> Result<SummaryVec> {
        Ok(MetricVec::from_proto(SummaryProto {
            dir: dir.clone(),
            desc: checked(
                dir,
                Kind::Summary,
                Desc::with_labels(&opts, labels, &["quantile"])?,
            )?,
        }))
    }
}
