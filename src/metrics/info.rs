//! `Info` and `InfoVec`: a set of labels describing a process (version, build), merged so that every label set in use is reported once.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use prometheus::Opts;

use super::vec::MetricVec;
use super::vec::sealed::Child as VecChild;
use super::{Desc, Kind, checked, strip_name_suffix, validate_label_name, warn_once};
use crate::error::{Error, Result};
use crate::format::key::encode_key;
use crate::format::naming::FileKind;
use crate::write::mmap::ForkLocal;
use crate::write::slot;
use crate::write::writer::{MetricsDir, SlotGroup};

/// An info metric: key-value pairs such as a version or build host, exposed
/// as one sample `<name>_info{...} 1.0`. prometheus_client refuses Info in
/// multiprocess mode; this crate stores it in `info_{pid}.db`.
///
/// Every label set this process has given to [`Info::info`] has an entry in
/// its file: the current one holds 1.0, the replaced ones 0.0. The
/// collector reports each label set that some living process currently
/// holds, once, with the value 1.0: ten workers running version 1.2 give
/// one sample `app_info{version="1.2"} 1.0`, and during a rolling upgrade
/// both versions appear. Files of dead workers are left out (as for live
/// gauges; see [`MultiProcessCollector`](crate::MultiProcessCollector)).
///
/// A name ending in `_info` is stored without the suffix (as counters drop
/// `_total`), so `Info::new("app_info", ..)` and `Info::new("app", ..)` both
/// expose `app_info`. Until [`Info::info`] is called the process exposes
/// nothing. A forked child exposes its parent's label set only while the
/// parent lives; call `info` again in the child to have its own (until then,
/// [`Info::get`] is empty in the child).
///
/// prometheus_client reads these files without error (as type `info`), but
/// sums the values: it reports the number of processes holding each label
/// set, and 0.0 for replaced ones.
///
/// ```
/// use prometheus_multiproc::{Info, MetricsDir, MultiProcessCollector};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let build = Info::new_in(&dir, "app", "Application build.").unwrap();
/// build.info(&[("version", "1.2.3"), ("commit", "abc123")]);
///
/// let mut out = Vec::new();
/// MultiProcessCollector::new(tmp.path()).unwrap().encode_text(&mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("# TYPE app_info gauge\n"));
/// assert!(text.contains("app_info{commit=\"abc123\",version=\"1.2.3\"} 1.0\n"));
/// ```
#[derive(Clone)]
pub struct Info {
    core: Arc<InfoCore>,
}

struct InfoCore {
    dir: MetricsDir,
    /// The metric name as stored (without `_info`).
    name: String,
    help: String,
    /// Constant and variable label pairs of this child.
    base: Vec<(String, String)>,
    /// This process's label sets: a forked child starts with none (the
    /// inherited lock may have been held by a thread of the parent).
    state: ForkLocal<Mutex<InfoState>>,
    warned: AtomicBool,
}

#[derive(Default)]
struct InfoState {
    /// Index into `sets` of the current label set.
    current: Option<usize>,
    /// Every label set given so far (sorted pairs), with its entry.
    sets: Vec<(Vec<(String, String)>, SlotGroup)>,
}

impl std::fmt::Debug for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Info").field("info", &self.get()).finish()
    }
}

/// What every child of the `*Vec` is made from.
pub struct InfoProto {
    dir: MetricsDir,
    desc: Desc,
}

fn info_desc(opts: &Opts) -> Result<Desc> {
    let mut desc = Desc::new(opts, &[])?;
    strip_name_suffix(&mut desc, "_info")?;
    Ok(desc)
}

impl Info {
    /// An info metric without variable labels, in the directory from the
    /// environment.
    pub fn new(name: &str, help: &str) -> Result<Info> {
        Info::with_opts(Opts::new(name, help))
    }

    /// An info metric from `prometheus::Opts` (namespace, subsystem and
    /// constant labels are honoured), in the directory from the environment.
    pub fn with_opts(opts: Opts) -> Result<Info> {
        Info::with_opts_in(&MetricsDir::from_env()?, opts)
    }

    /// An info metric in `dir`.
    pub fn new_in(dir: &MetricsDir, name: &str, help: &str) -> Result<Info> {
        Info::with_opts_in(dir, Opts::new(name, help))
    }

    /// An info metric from `opts` in `dir`.
    pub fn with_opts_in(dir: &MetricsDir, opts: Opts) -> Result<Info> {
        if !opts.variable_labels.is_empty() {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::VariableLabels,
                "variable labels given to Info: use InfoVec",
            ));
        }
        let proto = InfoProto {
            dir: dir.clone(),
            desc: checked(dir, Kind::Info, info_desc(&opts)?)?,
        };
        Info::make(&proto, &[])
    }

    /// Sets this process's label set, replacing the previous one. Errors
    /// (an invalid or duplicate label name, one that is also a constant or
    /// variable label of the metric, an I/O failure) are reported once on
    /// stderr; use [`Info::try_info`] to get them.
    pub fn info(&self, labels: &[(&str, &str)]) {
        if let Err(e) = self.try_info(labels) {
            warn_once(&self.core.warned, "info", &e);
        }
    }

    /// Sets this process's label set, or returns why it could not.
    ///
    /// ```
    /// # use prometheus_multiproc::{Info, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let i = Info::with_opts_in(&dir, prometheus::Opts::new("app", "App.").const_label("env", "prod")).unwrap();
    /// assert!(i.try_info(&[("env", "dev")]).is_err(), "overlaps a constant label");
    /// i.try_info(&[("version", "2")]).unwrap();
    /// assert_eq!(i.get(), [("version".to_string(), "2".to_string())]);
    /// ```
    pub fn try_info(&self, labels: &[(&str, &str)]) -> Result<()> {
        let c = &self.core;
        let mut set: Vec<(String, String)> = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            validate_label_name(k)?;
            if c.base.iter().any(|(b, _)| b == k) {
                return Err(Error::invalid_argument(
                    crate::error::ArgumentKind::LabelConflict,
                    format!("info label {k:?} overlaps a label of metric {:?}", c.name),
                ));
            }
            if set.iter().any(|(s, _)| s == k) {
                return Err(Error::invalid_argument(
                    crate::error::ArgumentKind::LabelConflict,
                    format!("duplicate label name {k:?}"),
                ));
            }
            set.push((k.to_string(), v.to_string()));
        }
        set.sort();
        let mut st = c.state.get().lock().unwrap_or_else(|e| e.into_inner());
        let idx = match st.sets.iter().position(|(s, _)| *s == set) {
            Some(i) => i,
            None => {
                let pairs: Vec<(&str, &str)> = c
                    .base
                    .iter()
                    .chain(set.iter())
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let key = encode_key(&c.name, &format!("{}_info", c.name), &pairs, &c.help);
                let group = SlotGroup::new(&c.dir, FileKind::Info, vec![key], false)?;
                st.sets.push((set, group));
                st.sets.len() - 1
            }
        };
        // New entry first, then the old one cleared: a scrape in between
        // sees both, never neither.
        slot::set(st.sets[idx].1.slot(0)?, 1.0);
        if let Some(old) = st.current
            && old != idx
        {
            slot::set(st.sets[old].1.slot(0)?, 0.0);
        }
        st.current = Some(idx);
        Ok(())
    }

    /// This process's current label set (sorted by name), empty if
    /// [`Info::info`] was never called.
    pub fn get(&self) -> Vec<(String, String)> {
        let st = self
            .core
            .state
            .get()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        st.current.map(|i| st.sets[i].0.clone()).unwrap_or_default()
    }
}

impl VecChild for Info {
    type Proto = InfoProto;

    fn make(proto: &InfoProto, values: &[&str]) -> Result<Info> {
        build(proto, values)
    }

    /// An Info child has no entries until [`Info::info`] is called (whose
    /// errors it reports itself): making one never touches a file.
    fn make_in_memory(proto: &InfoProto, values: &[&str]) -> Result<Info> {
        build(proto, values)
    }

    fn label_count(proto: &InfoProto) -> usize {
        proto.desc.label_names.len()
    }
}

/// Makes the child for `values`.
fn build(proto: &InfoProto, values: &[&str]) -> Result<Info> {
    let d = &proto.desc;
    let base = d
        .label_pairs(values)?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(Info {
        core: Arc::new(InfoCore {
            dir: proto.dir.clone(),
            name: d.name.clone(),
            help: d.help.clone(),
            base,
            state: ForkLocal::default(),
            warned: AtomicBool::new(false),
        }),
    })
}

/// Info metrics with variable labels: each child has its own label set.
///
/// ```
/// use prometheus_multiproc::{InfoVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let deps = InfoVec::new_in(&dir, prometheus::Opts::new("dependency", "Libraries."), &["name"]).unwrap();
/// deps.with_label_values(&["serde"]).info(&[("version", "1.0.200")]);
/// ```
pub type InfoVec = MetricVec<Info>;

impl MetricVec<Info> {
    /// Info metrics named by `opts`, with label names `labels`, in the
    /// directory from the environment.
    pub fn new(opts: Opts, labels: &[&str]) -> Result<InfoVec> {
        InfoVec::new_in(&MetricsDir::from_env()?, opts, labels)
    }

    /// Info metrics in `dir`.
    pub fn new_in(dir: &MetricsDir, opts: Opts, labels: &[&str]) -> Result<InfoVec> {
        let mut opts = opts;
        opts.variable_labels = labels.iter().map(|s| s.to_string()).collect();
        Ok(MetricVec::from_proto(InfoProto {
            dir: dir.clone(),
            desc: checked(dir, Kind::Info, info_desc(&opts)?)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MultiProcessCollector;

    fn samples(dir: &std::path::Path) -> Vec<String> {
        let s = MultiProcessCollector::new(dir)
            .unwrap()
            .collect_families()
            .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let mut out = Vec::new();
        for f in &s.families {
            for x in &f.samples {
                let l: Vec<String> = x.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push(format!("{}{{{}}} {}", x.name, l.join(","), x.value));
            }
        }
        out
    }

    #[test]
    fn replacing_the_label_set() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let i = Info::new_in(&dir, "build_info", "Build.").unwrap();
        assert!(samples(tmp.path()).is_empty());
        i.info(&[("version", "1"), ("arch", "x86")]);
        assert_eq!(samples(tmp.path()), ["build_info{arch=x86,version=1} 1"]);
        i.info(&[("version", "2")]);
        assert_eq!(samples(tmp.path()), ["build_info{version=2} 1"]);
        i.info(&[("arch", "x86"), ("version", "1")]);
        i.info(&[("arch", "x86"), ("version", "1")]);
        assert_eq!(samples(tmp.path()), ["build_info{arch=x86,version=1} 1"]);
        assert_eq!(i.get().len(), 2);
    }

    #[test]
    fn bad_labels_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let v = InfoVec::new_in(&dir, Opts::new("dep", "D."), &["name"]).unwrap();
        let c = v.with_label_values(&["serde"]);
        let conflict = Some(crate::ArgumentKind::LabelConflict);
        let kind = |l: &[(&str, &str)]| c.try_info(l).unwrap_err().argument_kind();
        assert_eq!(kind(&[("name", "x")]), conflict);
        assert_eq!(kind(&[("a", "1"), ("a", "2")]), conflict);
        assert!(c.try_info(&[("__a", "1")]).is_err());
        c.try_info(&[]).unwrap();
        assert_eq!(samples(tmp.path()), ["dep_info{name=serde} 1"]);
        let e = Info::with_opts_in(&dir, Opts::new("x", "").variable_label("a")).unwrap_err();
        assert_eq!(e.argument_kind(), Some(crate::ArgumentKind::VariableLabels));
    }
}
