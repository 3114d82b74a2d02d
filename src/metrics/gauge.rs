//! `Gauge` and `GaugeVec`: values that go up and down, merged by their `GaugeMode`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus::Opts;

use super::vec::MetricVec;
use super::vec::sealed::Child as VecChild;
use super::{Desc, Kind, checked, now_seconds, warn_once};
use crate::error::{Error, Result};
use crate::format::key::encode_key;
use crate::format::naming::{FileKind, GaugeMode};
use crate::write::slot;
use crate::write::writer::{MetricsDir, NewGroup, SlotGroup};

/// A gauge whose value lives in this process's `gauge_{mode}_{pid}.db`.
///
/// The [`GaugeMode`] says how the collector combines the values of all
/// processes.
///
/// # Most-recent modes
///
/// In [`GaugeMode::MostRecent`] and [`GaugeMode::LiveMostRecent`] every change
/// stores the wall-clock time beside the value, and the collector reports the
/// value of the process that changed it last. prometheus_client refuses
/// `inc`/`dec` there; this crate allows them with a well-defined meaning:
/// they change *this process's* value (atomically) and stamp the time, so the
/// merged result is this process's new value. To track one shared quantity
/// across processes, use `set`.
///
/// ```
/// use prometheus_multiproc::{Gauge, GaugeMode, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let g = Gauge::new_in(&dir, "in_progress", "Requests in progress.", GaugeMode::LiveSum).unwrap();
/// g.inc();
/// g.add(2.0);
/// g.dec();
/// assert_eq!(g.get(), 2.0);
/// ```
#[derive(Clone)]
pub struct Gauge {
    core: Arc<GaugeCore>,
}

struct GaugeCore {
    group: SlotGroup,
    most_recent: bool,
    warned: AtomicBool,
}

impl GaugeCore {
    /// Stores the current time beside the value (most-recent modes). Out of
    /// line: reading the clock costs far more than the call, and keeping it
    /// out lets `set`/`add` of the other modes inline into the caller.
    #[inline(never)]
    fn stamp(&self) -> Result<()> {
        slot::set(self.group.slot(1)?, now_seconds());
        Ok(())
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge").field("value", &self.get()).finish()
    }
}

/// What every child of the `*Vec` is made from.
pub struct GaugeProto {
    dir: MetricsDir,
    desc: Desc,
    mode: GaugeMode,
}

impl Gauge {
    /// A gauge without labels, in the directory from the environment.
    pub fn new(name: &str, help: &str, mode: GaugeMode) -> Result<Gauge> {
        Gauge::with_opts(Opts::new(name, help), mode)
    }

    /// A gauge from `prometheus::Opts`, in the directory from the environment.
    pub fn with_opts(opts: Opts, mode: GaugeMode) -> Result<Gauge> {
        Gauge::with_opts_in(&MetricsDir::from_env()?, opts, mode)
    }

    /// A gauge without labels in `dir`.
    pub fn new_in(dir: &MetricsDir, name: &str, help: &str, mode: GaugeMode) -> Result<Gauge> {
        Gauge::with_opts_in(dir, Opts::new(name, help), mode)
    }

    /// A gauge from `opts` in `dir`.
    pub fn with_opts_in(dir: &MetricsDir, opts: Opts, mode: GaugeMode) -> Result<Gauge> {
        if !opts.variable_labels.is_empty() {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::VariableLabels,
                "variable labels given to Gauge: use GaugeVec",
            ));
        }
        let proto = GaugeProto {
            dir: dir.clone(),
            desc: checked(dir, Kind::Gauge(mode), Desc::new(&opts, &[])?)?,
            mode,
        };
        Gauge::make(&proto, &[])
    }

    /// The gauge's merge mode.
    pub fn mode(&self) -> GaugeMode {
        match self.core.group.kind() {
            FileKind::Gauge(m) => m,
            _ => unreachable!("a gauge's file kind is a gauge"),
        }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: f64) {
        if let Err(e) = self.try_set(v) {
            warn_once(&self.core.warned, "gauge set", &e);
        }
    }

    /// Sets the value, or returns why it could not (in a forked child only:
    /// this process's file could not be created).
    #[inline]
    pub fn try_set(&self, v: f64) -> Result<()> {
        slot::set(self.core.group.slot(0)?, v);
        if self.core.most_recent {
            self.core.stamp()?;
        }
        Ok(())
    }

    /// Adds `v` (which may be negative).
    #[inline]
    pub fn add(&self, v: f64) {
        if let Err(e) = self.try_add(v) {
            warn_once(&self.core.warned, "gauge add", &e);
        }
    }

    /// Adds `v`, or returns why it could not.
    #[inline]
    pub fn try_add(&self, v: f64) -> Result<()> {
        slot::add(self.core.group.slot(0)?, v);
        if self.core.most_recent {
            self.core.stamp()?;
        }
        Ok(())
    }

    /// Subtracts `v`.
    #[inline]
    pub fn sub(&self, v: f64) {
        self.add(-v);
    }

    /// Adds 1.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts 1.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// Sets the value to the current Unix time in seconds.
    pub fn set_to_current_time(&self) {
        self.set(now_seconds());
    }

    /// This process's value.
    pub fn get(&self) -> f64 {
        self.core.group.slot(0).map(slot::get).unwrap_or(0.0)
    }
}

impl VecChild for Gauge {
    type Proto = GaugeProto;

    fn make(proto: &GaugeProto, values: &[&str]) -> Result<Gauge> {
        build(proto, values, SlotGroup::new)
    }

    fn make_in_memory(proto: &GaugeProto, values: &[&str]) -> Result<Gauge> {
        build(proto, values, SlotGroup::in_memory)
    }

    fn label_count(proto: &GaugeProto) -> usize {
        proto.desc.label_names.len()
    }
}

/// Makes the child for `values`, its entries created by `new_group`.
fn build(proto: &GaugeProto, values: &[&str], new_group: NewGroup) -> Result<Gauge> {
    let d = &proto.desc;
    let labels = d.label_pairs(values)?;
    let key = encode_key(&d.name, &d.name, &labels, &d.help);
    let most_recent = proto.mode.is_most_recent();
    Ok(Gauge {
        core: Arc::new(GaugeCore {
            group: new_group(
                &proto.dir,
                FileKind::Gauge(proto.mode),
                vec![key],
                most_recent,
            )?,
            most_recent,
            warned: AtomicBool::new(false),
        }),
    })
}

/// Gauges with variable labels.
///
/// ```
/// use prometheus_multiproc::{GaugeVec, GaugeMode, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let q = GaugeVec::new_in(&dir, prometheus::Opts::new("queue_depth", "Queue depth."), &["queue"], GaugeMode::Max).unwrap();
/// q.with_label_values(&["mail"]).set(7.0);
/// ```
pub type GaugeVec = MetricVec<Gauge>;

impl MetricVec<Gauge> {
    /// Gauges named by `opts`, with label names `labels`, in the directory
    /// from the environment.
    pub fn new(opts: Opts, labels: &[&str], mode: GaugeMode) -> Result<GaugeVec> {
        GaugeVec::new_in(&MetricsDir::from_env()?, opts, labels, mode)
    }

    /// Gauges in `dir`.
    pub fn new_in(
        dir: &MetricsDir,
        opts: Opts,
        labels: &[&str],
        mode: GaugeMode,
    ) -> Result<GaugeVec> {
        Ok(MetricVec::from_proto(GaugeProto {
            dir: dir.clone(),
            desc: checked(
                dir,
                Kind::Gauge(mode),
                Desc::with_labels(&opts, labels, &[])?,
            )?,
            mode,
        }))
    }
}
