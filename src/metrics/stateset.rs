//! `Enum` and `EnumVec`: which one of a fixed set of states is current, the state most recently set by any process winning.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use prometheus::Opts;

use super::vec::MetricVec;
use super::vec::sealed::Child as VecChild;
use super::{Desc, Kind, checked, now_seconds, validate_label_name, warn_once};
use crate::error::{Error, Result};
use crate::format::key::encode_key;
use crate::format::naming::FileKind;
use crate::write::mmap::ForkLocal;
use crate::write::slot;
use crate::write::writer::{MetricsDir, NewGroup, SlotGroup};

/// An enum metric (an OpenMetrics *state set*): which one of a fixed list of
/// states is current. Exposed as one sample per state,
/// `<name>{<name>="<state>"}`, 1.0 for the current state and 0.0 for the
/// others. prometheus_client refuses Enum in multiprocess mode; this crate
/// stores it in `stateset_{pid}.db`.
///
/// # Across processes: the most recent state wins
///
/// An Enum models the state of one thing that all workers share (a
/// maintenance mode, a circuit breaker, a feature switch): when any worker
/// sets a state, that state is the current one for the whole service, as in
/// a `mostrecent` gauge. Each [`Enum::state`] call stamps all of the
/// series's state entries with the wall-clock time, and the collector takes,
/// per state, the value with the greatest timestamp. Until some process sets
/// a state, the first listed state is current (as in prometheus_client).
/// To track a state *per worker*, give the Enum a label naming the worker
/// (an [`EnumVec`]).
///
/// Files of dead workers still count: the last state set stays current
/// after the worker that set it exits.
///
/// prometheus_client reads these files without error (as type `stateset`)
/// but sums the values over processes: it reports, per state, how many
/// processes set that state last.
///
/// ```
/// use prometheus_multiproc::{Enum, MetricsDir, MultiProcessCollector};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let mode = Enum::new_in(&dir, "mode", "Service mode.", &["serving", "draining"]).unwrap();
/// assert_eq!(mode.get(), "serving");
/// mode.state("draining");
///
/// let mut out = Vec::new();
/// MultiProcessCollector::new(tmp.path()).unwrap().encode_text(&mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("# TYPE mode gauge\n"));
/// assert!(text.contains("mode{mode=\"serving\"} 0.0\nmode{mode=\"draining\"} 1.0\n"));
/// ```
#[derive(Clone)]
pub struct Enum {
    core: Arc<EnumCore>,
}

struct EnumCore {
    /// Slot `2 * i` is state `i`'s value, `2 * i + 1` its timestamp.
    group: SlotGroup,
    states: Arc<[String]>,
    /// Serialises `state` calls, so that this process never shows two states.
    /// Per process: a forked child must not inherit it held.
    lock: ForkLocal<Mutex<()>>,
    warned: AtomicBool,
}

impl std::fmt::Debug for Enum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enum").field("state", &self.get()).finish()
    }
}

/// What every child of the `*Vec` is made from.
pub struct EnumProto {
    dir: MetricsDir,
    desc: Desc,
    states: Arc<[String]>,
}

fn proto(dir: &MetricsDir, opts: &Opts, states: &[&str]) -> Result<EnumProto> {
    let name = opts.fq_name();
    // The metric name is also the label that names the state.
    validate_label_name(&name).map_err(|_| {
        Error::invalid_argument(
            crate::error::ArgumentKind::EnumStates,
            format!("Enum name {name:?} must also be a valid label name (not starting with `__`)"),
        )
    })?;
    let desc = Desc::new(opts, &[name.as_str()])?;
    if states.is_empty() {
        return Err(Error::invalid_argument(
            crate::error::ArgumentKind::EnumStates,
            format!("no states given for Enum {name:?}"),
        ));
    }
    for (i, s) in states.iter().enumerate() {
        if states[..i].contains(s) {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::EnumStates,
                format!("duplicate state {s:?} for Enum {name:?}"),
            ));
        }
    }
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    Ok(EnumProto {
        dir: dir.clone(),
        desc: checked(dir, Kind::Enum(&states), desc)?,
        states: states.into(),
    })
}

impl Enum {
    /// An Enum without variable labels, in the directory from the
    /// environment. `states` must be non-empty and distinct; the first is
    /// the initial state.
    pub fn new(name: &str, help: &str, states: &[&str]) -> Result<Enum> {
        Enum::with_opts(Opts::new(name, help), states)
    }

    /// An Enum from `prometheus::Opts`, in the directory from the environment.
    pub fn with_opts(opts: Opts, states: &[&str]) -> Result<Enum> {
        Enum::with_opts_in(&MetricsDir::from_env()?, opts, states)
    }

    /// An Enum in `dir`.
    pub fn new_in(dir: &MetricsDir, name: &str, help: &str, states: &[&str]) -> Result<Enum> {
        Enum::with_opts_in(dir, Opts::new(name, help), states)
    }

    /// An Enum from `opts` in `dir`.
    pub fn with_opts_in(dir: &MetricsDir, opts: Opts, states: &[&str]) -> Result<Enum> {
        if !opts.variable_labels.is_empty() {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::VariableLabels,
                "variable labels given to Enum: use EnumVec",
            ));
        }
        Enum::make(&proto(dir, &opts, states)?, &[])
    }

    /// Makes `state` the current state. An unknown state or an I/O failure
    /// is reported once on stderr; use [`Enum::try_state`] to get the error.
    pub fn state(&self, state: &str) {
        if let Err(e) = self.try_state(state) {
            warn_once(&self.core.warned, "enum state", &e);
        }
    }

    /// Makes `state` the current state, or returns why it could not.
    ///
    /// ```
    /// # use prometheus_multiproc::{Enum, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let e = Enum::new_in(&dir, "breaker", "Circuit breaker.", &["closed", "open"]).unwrap();
    /// assert!(e.try_state("half-open").is_err());
    /// e.try_state("open").unwrap();
    /// assert_eq!(e.get(), "open");
    /// ```
    pub fn try_state(&self, state: &str) -> Result<()> {
        let c = &self.core;
        let idx = c.states.iter().position(|s| s == state).ok_or_else(|| {
            Error::invalid_argument(
                crate::error::ArgumentKind::UnknownState,
                format!("unknown state {state:?} (states: {:?})", c.states),
            )
        })?;
        let _g = c.lock.get().lock().unwrap_or_else(|e| e.into_inner());
        let now = now_seconds();
        // The new state first, so that a scrape in this process's file never
        // finds no state set; then the others; then the timestamps.
        slot::set(c.group.slot(2 * idx)?, 1.0);
        for i in (0..c.states.len()).filter(|&i| i != idx) {
            slot::set(c.group.slot(2 * i)?, 0.0);
        }
        for i in 0..c.states.len() {
            slot::set(c.group.slot(2 * i + 1)?, now);
        }
        Ok(())
    }

    /// This process's current state.
    pub fn get(&self) -> &str {
        let c = &self.core;
        let idx = (0..c.states.len())
            .find(|&i| c.group.slot(2 * i).map(slot::get).unwrap_or(0.0) > 0.0)
            .unwrap_or(0);
        &c.states[idx]
    }

    /// The states, in the order given.
    pub fn states(&self) -> &[String] {
        &self.core.states
    }
}

impl VecChild for Enum {
    type Proto = EnumProto;

    fn make(proto: &EnumProto, values: &[&str]) -> Result<Enum> {
        build(proto, values, SlotGroup::new)
    }

    fn make_in_memory(proto: &EnumProto, values: &[&str]) -> Result<Enum> {
        build(proto, values, SlotGroup::in_memory)
    }

    fn label_count(proto: &EnumProto) -> usize {
        proto.desc.label_names.len()
    }
}

/// Makes the child for `values`, its entries created by `new_group`.
fn build(proto: &EnumProto, values: &[&str], new_group: NewGroup) -> Result<Enum> {
    let d = &proto.desc;
    let labels = d.label_pairs(values)?;
    let keys = proto
        .states
        .iter()
        .map(|s| {
            let mut l = labels.clone();
            l.push((&d.name, s));
            encode_key(&d.name, &d.name, &l, &d.help)
        })
        .collect();
    let group = new_group(&proto.dir, FileKind::StateSet, keys, true)?;
    let n = proto.states.len();
    // A series new in this file starts in the first state, untimed: any
    // process's `state` call (timestamp > 0) overrides it.
    let fresh = (0..2 * n).all(|i| group.slot(i).map(slot::get).unwrap_or(1.0) == 0.0);
    if fresh {
        slot::set(group.slot(0)?, 1.0);
    }
    Ok(Enum {
        core: Arc::new(EnumCore {
            group,
            states: Arc::clone(&proto.states),
            lock: ForkLocal::default(),
            warned: AtomicBool::new(false),
        }),
    })
}

/// Enums with variable labels.
///
/// ```
/// use prometheus_multiproc::{EnumVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let breakers = EnumVec::new_in(
///     &dir,
///     prometheus::Opts::new("breaker", "Circuit breakers."),
///     &["backend"],
///     &["closed", "open"],
/// )
/// .unwrap();
/// breakers.with_label_values(&["db"]).state("open");
/// ```
pub type EnumVec = MetricVec<Enum>;

impl MetricVec<Enum> {
    /// Enums named by `opts`, with label names `labels` and states `states`,
    /// in the directory from the environment.
    pub fn new(opts: Opts, labels: &[&str], states: &[&str]) -> Result<EnumVec> {
        EnumVec::new_in(&MetricsDir::from_env()?, opts, labels, states)
    }

    /// Enums in `dir`.
    pub fn new_in(
        dir: &MetricsDir,
        opts: Opts,
        labels: &[&str],
        states: &[&str],
    ) -> Result<EnumVec> {
        let mut opts = opts;
        opts.variable_labels = labels.iter().map(|s| s.to_string()).collect();
        Ok(MetricVec::from_proto(proto(dir, &opts, states)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let kind = |name, states: &[&str]| {
            Enum::new_in(&dir, name, "", states)
                .unwrap_err()
                .argument_kind()
        };
        let states = Some(crate::ArgumentKind::EnumStates);
        assert_eq!(kind("e", &[]), states);
        assert_eq!(kind("e", &["a", "a"]), states);
        assert_eq!(kind("__e", &["a"]), states);
        // UTF-8 names, as in prometheus_client 0.26.
        Enum::new_in(&dir, "a:b.c", "", &["a"]).unwrap();
        assert!(EnumVec::new_in(&dir, Opts::new("e", ""), &["e"], &["a"]).is_err());
        assert!(
            Enum::with_opts_in(&dir, Opts::new("e", "").const_label("e", "x"), &["a"]).is_err()
        );
        let e = Enum::new_in(&dir, "e", "", &["a", "b"]).unwrap();
        assert_eq!(e.get(), "a");
        assert_eq!(
            e.try_state("c").unwrap_err().argument_kind(),
            Some(crate::ArgumentKind::UnknownState)
        );
        e.state("b");
        assert_eq!(e.get(), "b");
        assert_eq!(e.states(), ["a", "b"]);
    }
}
