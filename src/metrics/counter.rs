//! `Counter` and `CounterVec`: monotonic counters, summed across processes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus::Opts;

use super::vec::MetricVec;
use super::vec::sealed::Child as VecChild;
use super::{Desc, Kind, checked, strip_name_suffix, warn_once};
use crate::error::{Error, Result};
use crate::format::key::encode_key;
use crate::format::naming::FileKind;
use crate::write::slot;
use crate::write::writer::{MetricsDir, NewGroup, SlotGroup};

/// A counter whose value lives in this process's `counter_{pid}.db`.
///
/// As in prometheus_client, a name ending in `_total` is stored without the
/// suffix, and its sample is `<name>_total`. Clones share the value.
///
/// ```
/// use prometheus_multiproc::{Counter, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let c = Counter::new_in(&dir, "requests_total", "Requests served.").unwrap();
/// c.inc();
/// c.inc_by(2.0);
/// assert_eq!(c.get(), 3.0);
/// ```
#[derive(Clone)]
pub struct Counter {
    core: Arc<CounterCore>,
}

struct CounterCore {
    group: SlotGroup,
    warned: AtomicBool,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.get())
            .finish()
    }
}

/// What every child of the `*Vec` is made from.
pub struct CounterProto {
    dir: MetricsDir,
    desc: Desc,
}

fn counter_desc(opts: &Opts) -> Result<Desc> {
    let mut desc = Desc::new(opts, &[])?;
    strip_name_suffix(&mut desc, "_total")?;
    Ok(desc)
}

impl Counter {
    /// A counter without labels, in the directory from the environment.
    pub fn new(name: &str, help: &str) -> Result<Counter> {
        Counter::with_opts(Opts::new(name, help))
    }

    /// A counter from `prometheus::Opts` (namespace, subsystem and constant
    /// labels are honoured), in the directory from the environment.
    pub fn with_opts(opts: Opts) -> Result<Counter> {
        Counter::with_opts_in(&MetricsDir::from_env()?, opts)
    }

    /// A counter without labels in `dir`.
    pub fn new_in(dir: &MetricsDir, name: &str, help: &str) -> Result<Counter> {
        Counter::with_opts_in(dir, Opts::new(name, help))
    }

    /// A counter from `opts` in `dir`.
    pub fn with_opts_in(dir: &MetricsDir, opts: Opts) -> Result<Counter> {
        if !opts.variable_labels.is_empty() {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::VariableLabels,
                "variable labels given to Counter: use CounterVec",
            ));
        }
        let proto = CounterProto {
            dir: dir.clone(),
            desc: checked(dir, Kind::Counter, counter_desc(&opts)?)?,
        };
        Counter::make(&proto, &[])
    }

    /// Adds 1.
    #[inline]
    pub fn inc(&self) {
        self.inc_by(1.0);
    }

    /// Adds `v`. A negative or NaN `v` is refused (counters never go down)
    /// with a warning on stderr; use [`Counter::try_inc_by`] to get the error.
    #[inline]
    pub fn inc_by(&self, v: f64) {
        if let Err(e) = self.try_inc_by(v) {
            warn_once(&self.core.warned, "counter increment", &e);
        }
    }

    /// Adds `v`, or returns why it could not: `v` negative or NaN, or (in a
    /// forked child only) this process's file could not be created.
    #[inline]
    pub fn try_inc_by(&self, v: f64) -> Result<()> {
        if v.is_nan() || v < 0.0 {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::NegativeIncrement,
                format!("counters can only be increased by non-negative amounts, got {v}"),
            ));
        }
        slot::add(self.core.group.slot(0)?, v);
        Ok(())
    }

    /// This process's value (not the merged total).
    pub fn get(&self) -> f64 {
        self.core.group.slot(0).map(slot::get).unwrap_or(0.0)
    }
}

impl VecChild for Counter {
    type Proto = CounterProto;

    fn make(proto: &CounterProto, values: &[&str]) -> Result<Counter> {
        build(proto, values, SlotGroup::new)
    }

    fn make_in_memory(proto: &CounterProto, values: &[&str]) -> Result<Counter> {
        build(proto, values, SlotGroup::in_memory)
    }

    fn label_count(proto: &CounterProto) -> usize {
        proto.desc.label_names.len()
    }
}

/// Makes the child for `values`, its entries created by `new_group`.
fn build(proto: &CounterProto, values: &[&str], new_group: NewGroup) -> Result<Counter> {
    let d = &proto.desc;
    let labels = d.label_pairs(values)?;
    let key = encode_key(&d.name, &format!("{}_total", d.name), &labels, &d.help);
    Ok(Counter {
        core: Arc::new(CounterCore {
            group: new_group(&proto.dir, FileKind::Counter, vec![key], false)?,
            warned: AtomicBool::new(false),
        }),
    })
}

/// Counters with variable labels.
///
/// ```
/// use prometheus_multiproc::{CounterVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let reqs = CounterVec::new_in(&dir, prometheus::Opts::new("http_requests_total", "Requests."), &["method"]).unwrap();
/// reqs.with_label_values(&["GET"]).inc();
/// ```
pub type CounterVec = MetricVec<Counter>;

impl MetricVec<Counter> {
    /// Counters named by `opts`, with label names `labels`, in the directory
    /// from the environment.
    pub fn new(opts: Opts, labels: &[&str]) -> Result<CounterVec> {
        CounterVec::new_in(&MetricsDir::from_env()?, opts, labels)
    }

    /// Counters in `dir`.
    pub fn new_in(dir: &MetricsDir, opts: Opts, labels: &[&str]) -> Result<CounterVec> {
        let mut opts = opts;
        opts.variable_labels = labels.iter().map(|s| s.to_string()).collect();
        Ok(MetricVec::from_proto(CounterProto {
            dir: dir.clone(),
            desc: checked(dir, Kind::Counter, counter_desc(&opts)?)?,
        }))
    }
}
