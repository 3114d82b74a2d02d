//! The merge rules: how the entries of many per-process files combine into metric families, as prometheus_client's `MultiProcessCollector` combines them (pure; no I/O).
//!
//! A [`Merger`] is fed the entries of one file after another and produces
//! [`Family`] values. The rules, those of prometheus_client 0.26:
//!
//! * Entries are grouped into families by the key's metric name. The family's
//!   type is that of the *file* (`counter_*.db` holds counters, and so on); its
//!   help text is that of the first entry applied to it.
//! * Counters and summaries: the values of equal samples (same sample name
//!   and label set) are summed over all files.
//! * Info (an extension: prometheus_client refuses Info in multiprocess
//!   mode): the largest value of equal samples; samples whose largest value
//!   is not above 0 are left out. Writers store 1.0 in the entry of their
//!   current label set and 0.0 in those they replaced, so each distinct label
//!   set in use anywhere is reported once, with 1.0.
//! * State sets (Enum, an extension): per sample, the value with the
//!   greatest timestamp (the state most recently set by any process), ties
//!   going to the larger value. Writers stamp every state of a label set
//!   together; a never-set Enum has timestamp 0 and its first state 1.0.
//! * Histograms: an entry with an `le` label is a bucket. Bucket values are
//!   summed per label set (without `le`) and bound (parsed as a float), then
//!   turned into cumulative `<metric>_bucket` samples, `le` written as
//!   prometheus_client's `floatToGoString` writes it, plus `<metric>_count`,
//!   the total. Other entries (`_sum`) are summed.
//! * Gauges: combined by the [`GaugeMode`] of the file (the mode is part of the
//!   file name). `all`/`liveall` keep one sample per process with a `pid`
//!   label; `min`, `max` and `sum` (and their `live` forms) reduce over
//!   processes and drop any `pid` label; `mostrecent`/`livemostrecent` keep the
//!   value with the greatest timestamp. As in Python, a value only replaces the
//!   current one when its timestamp is *strictly greater*, starting from 0.0,
//!   so a series whose timestamps are all 0 yields no sample at all (its family
//!   is still reported, without samples).
//!
//! Memory grows with the number of distinct series, not with files × series:
//! every raw key is parsed once per file type (a cache keyed by the key's
//! bytes), series are interned, and values are accumulated in place as they
//! arrive. Only `all`/`liveall` gauges keep one value per process, since that
//! is what they report.
//!
//! # Layout
//!
//! * this module: the public types and [`Merger`], which feeds each entry
//!   to the store;
//! * `keys`: raw keys to parsed templates (a cache per key class, sequence
//!   hints);
//! * `store`: interned names and label sets, families, and one table per
//!   kind of series (plain, histogram label sets and buckets, gauges, and
//!   per-process gauge values), updated entry by entry;
//! * `table`: the table type (rows found by key, named by typed ids);
//! * `finish`: from series to families in prometheus_client's order;
//! * `hash`: the hasher of the tables.
//!
//! # Order
//!
//! prometheus_client's order (its `_accumulate_metrics` fills dicts in
//! insertion order), a function of the order the files are given in and of
//! the entries' order in each file: families in the order of their first
//! entries; within a family, samples grouped by label set (for
//! `all`/`liveall` gauges, by label set and process), groups and the
//! samples within a group in the order of their first entries. A histogram
//! label set's group comes where its first non-bucket entry (`_sum`) came;
//! it lists that entry's samples, then the buckets in `le` order, then
//! `_count` (unless a `_count` entry came earlier: it keeps its place and
//! takes the bucket total). Label sets with buckets only come after all
//! others, in the order of their first buckets. A most-recent gauge's
//! sample comes where its first entry with a timestamp above 0 came.
//! `docs/format.md` ("Output order") states the same for users.
//!
//! # Where the result can differ from Python's
//!
//! The merge takes the files in the order it is given them; the collector
//! gives them in directory listing order, which is the order
//! prometheus_client's glob sees, so the results match Python's to the last
//! bit. Where that order matters (for a fixed order, Python and we agree): the help
//! text of the first entry, rounding of floating-point sums, ties between
//! most-recent timestamps, a `NaN` met first by `min`/`max`, the spelling of
//! a bound given as both `0.0` and `-0.0`, the output order. Given the files in that order,
//! Python produces the same families, with these exceptions:
//!
//! * *Type conflicts*: when a metric name occurs in files of different types
//!   (say `counter_*.db` and `gauge_*.db`), the type of the first file
//!   wins and the entries of files of any other type
//!   are dropped (reported by [`Merger::add_file`]). Python mixes the samples
//!   into the first type it meets.
//! * *Mixed gauge modes*: when a gauge occurs in files of several modes, the
//!   mode of the last file that holds it applies to
//!   all its samples, as in Python with that order. The one inexactness: if
//!   that mode is `all`/`liveall`, only samples from `all`/`liveall` files
//!   are reported, since per-process values are not kept for the other modes.
//!   [`Merger::notes`] describes such metrics.
//! * A `NaN` bound makes one bucket, where Python makes one per entry.

use std::fmt;
use std::sync::Arc;

use crate::format::naming::{FileKind, GaugeMode};

mod finish;
mod hash;
mod keys;
mod store;
mod table;

use keys::{Class, Keys};
use store::{FileCtx, Store};

/// The type of a merged family, as prometheus_client names it.
///
/// ```
/// use prometheus_multiproc::merge::FamilyKind;
/// use prometheus_multiproc::format::FileKind;
/// use prometheus_multiproc::GaugeMode;
/// assert_eq!(FamilyKind::of(FileKind::Gauge(GaugeMode::Max)), FamilyKind::Gauge);
/// assert_eq!(FamilyKind::Histogram.as_str(), "histogram");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FamilyKind {
    /// From `counter_*.db`.
    Counter,
    /// From `gauge_{mode}_*.db`.
    Gauge,
    /// From `histogram_*.db`.
    Histogram,
    /// From `summary_*.db`.
    Summary,
    /// From `info_*.db`.
    Info,
    /// From `stateset_*.db`.
    StateSet,
}

impl FamilyKind {
    /// The family type of the metrics in a file of this kind.
    pub fn of(kind: FileKind) -> Self {
        match kind {
            FileKind::Counter => FamilyKind::Counter,
            FileKind::Gauge(_) => FamilyKind::Gauge,
            FileKind::Histogram => FamilyKind::Histogram,
            FileKind::Summary => FamilyKind::Summary,
            FileKind::Info => FamilyKind::Info,
            FileKind::StateSet => FamilyKind::StateSet,
        }
    }

    /// The type name prometheus_client uses (and OpenMetrics writes).
    pub const fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Counter => "counter",
            FamilyKind::Gauge => "gauge",
            FamilyKind::Histogram => "histogram",
            FamilyKind::Summary => "summary",
            FamilyKind::Info => "info",
            FamilyKind::StateSet => "stateset",
        }
    }
}

impl fmt::Display for FamilyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One merged sample.
///
/// Names and label strings are shared (`Arc<str>`) between samples, so a
/// merge allocates little per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample name, e.g. `requests_total` or `latency_bucket`.
    pub name: Arc<str>,
    /// Label pairs, sorted by name, names unique. Includes `le` for buckets
    /// and `pid` for `all`/`liveall` gauges.
    pub labels: Vec<(Arc<str>, Arc<str>)>,
    /// The merged value.
    pub value: f64,
}

impl Sample {
    /// A sample named `name` with the label pairs `labels` (give them
    /// sorted by name, as merged samples have them) and `value`.
    ///
    /// ```
    /// use prometheus_multiproc::merge::Sample;
    /// let s = Sample::new("jobs_total", &[("queue", "a")], 2.0);
    /// assert_eq!(s.label("queue"), Some("a"));
    /// assert_eq!(s.value, 2.0);
    /// ```
    pub fn new(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (Arc::from(*k), Arc::from(*v)))
                .collect(),
            value,
        }
    }

    /// The value of the label `name`, if the sample has it.
    ///
    /// ```
    /// use prometheus_multiproc::merge::Sample;
    /// let s = Sample { name: "m".into(), labels: vec![("a".into(), "1".into())], value: 2.0 };
    /// assert_eq!(s.label("a"), Some("1"));
    /// assert_eq!(s.label("b"), None);
    /// ```
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| &**v)
    }
}

/// One merged metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The metric name as stored in the keys (for counters, without `_total`).
    pub name: String,
    /// The help text (unescaped).
    pub help: String,
    /// The type.
    pub kind: FamilyKind,
    /// For gauges, the mode that was applied.
    pub gauge_mode: Option<GaugeMode>,
    /// The samples, in the order described in the [module docs](self).
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family of `kind` named `name` (for counters, without `_total`)
    /// with the help text `help` and `samples`; no gauge mode.
    ///
    /// ```
    /// use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
    /// let f = Family::new("jobs", "Jobs done.", FamilyKind::Counter, vec![Sample::new("jobs_total", &[], 1.0)]);
    /// assert_eq!(f.samples.len(), 1);
    /// assert_eq!(f.gauge_mode, None);
    /// ```
    pub fn new(name: &str, help: &str, kind: FamilyKind, samples: Vec<Sample>) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            gauge_mode: None,
            samples,
        }
    }
}

/// A parsed and interned key, from [`Merger::resolve`]. Only meaningful for
/// the `Merger` and file kind that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(u32);

/// Where an entry was applied: the index of its file in directory listing
/// order (see [`Merger::set_file_index`]) and the entry's sequence number
/// in its merger. Positions of entries of one merger compare as the
/// entries came; of two mergers given different files, as their files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    file: u32,
    seq: u32,
}

/// Why a key cannot be merged: it is not a valid key, its metric name is
/// empty, or a histogram bucket's `le` is not a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(String);

impl KeyError {
    /// What is wrong.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Entries of one file dropped because their metric already has another type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeConflict {
    /// The metric name.
    pub metric: String,
    /// The type the family has (from an earlier file).
    pub family_kind: FamilyKind,
    /// The type of the file whose entries were dropped.
    pub file_kind: FamilyKind,
    /// How many entries were dropped.
    pub dropped: usize,
}

impl fmt::Display for TypeConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries of metric {:?} dropped: it is a {} in an earlier file, not a {}",
            self.dropped, self.metric, self.family_kind, self.file_kind
        )
    }
}

/// What [`Merger::add_file`] did with a file's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Entries merged.
    pub applied: usize,
    /// Entries dropped because of type conflicts, per metric.
    pub conflicts: Vec<TypeConflict>,
}

/// A gauge written with several multiprocess modes (a remark of
/// [`Merger::notes`]): the mode of the last file decides, as in
/// prometheus_client.
///
/// ```
/// use prometheus_multiproc::GaugeMode;
/// use prometheus_multiproc::merge::MixedModes;
///
/// let note = MixedModes {
///     gauge: "g".into(),
///     modes: vec![GaugeMode::Min, GaugeMode::Max],
///     used: GaugeMode::Max,
///     others_dropped: false,
/// };
/// assert_eq!(
///     note.to_string(),
///     "gauge \"g\" is written with several multiprocess modes (min, max); using max, the mode of the last file"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixedModes {
    /// The gauge's name.
    pub gauge: String,
    /// The modes its files have, in [`GaugeMode::ALL`]'s order.
    pub modes: Vec<GaugeMode>,
    /// The mode used: the last file's.
    pub used: GaugeMode,
    /// The mode used keeps the pid label (`all`, `liveall`), so the values
    /// of files of other modes are not reported.
    pub others_dropped: bool,
}

impl fmt::Display for MixedModes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let modes: Vec<&str> = self.modes.iter().map(|m| m.as_str()).collect();
        write!(
            f,
            "gauge {:?} is written with several multiprocess modes ({}); using {}, the mode of the last file",
            self.gauge,
            modes.join(", "),
            self.used
        )?;
        if self.others_dropped {
            f.write_str("; values from files of modes other than all/liveall are not reported")?;
        }
        Ok(())
    }
}

/// Merges the entries of many files into families.
///
/// Feed each file with [`resolve`](Merger::resolve) (once per entry, to parse
/// and validate its key) and then [`add_file`](Merger::add_file) (to apply
/// the file's entries together), in directory listing order; then call
/// [`finish`](Merger::finish). Resolving all of a file's keys before applying
/// any lets a caller skip a file with a bad key entirely.
///
/// ```
/// use prometheus_multiproc::format::encode_key;
/// use prometheus_multiproc::merge::Merger;
/// use prometheus_multiproc::format::FileKind;
///
/// let key = encode_key("req", "req_total", &[("path", "/")], "Requests.");
/// let mut m = Merger::new();
/// for (pid, v) in [("1", 2.0), ("2", 3.0)] {
///     let id = m.resolve(FileKind::Counter, key.as_bytes()).unwrap();
///     m.add_file(FileKind::Counter, pid, [(id, v, 0.0)]);
/// }
/// let fams = m.finish();
/// assert_eq!(fams[0].name, "req");
/// assert_eq!(fams[0].samples[0].value, 5.0);
/// ```
#[derive(Debug, Default)]
pub struct Merger {
    /// The parsed keys.
    keys: Keys,
    /// The families and series merged so far.
    store: Store,
    /// Entries applied.
    entries: usize,
    /// The index of the file being applied (see
    /// [`set_file_index`](Merger::set_file_index)).
    file_index: u32,
    /// The sequence number of the next entry applied.
    seq: u32,
}

impl Merger {
    /// An empty merger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries applied so far.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Parses (once per distinct key and file class) and interns a raw key
    /// from a file of kind `kind`.
    ///
    /// Fails for keys that are not valid JSON keys (including invalid UTF-8),
    /// have an empty metric name, or, in histogram files, have an `le` label
    /// that is not a number (Python fails the whole collection there).
    /// Resolving has no effect on the merged result until the key is applied
    /// with [`add_file`](Merger::add_file).
    ///
    /// Call [`start_file`](Merger::start_file) before the first key of each
    /// file: keys are resolved fastest when files list them in the same
    /// order (as workers running the same code do).
    pub fn resolve(&mut self, kind: FileKind, raw_key: &[u8]) -> Result<KeyId, KeyError> {
        self.keys.resolve(kind, raw_key, &mut self.store)
    }

    /// Sets the index of the files applied next in the directory listing
    /// (0 until set). Only a caller that merges the files of one directory
    /// with several mergers needs it, to order their families as one merge
    /// would (see [`finish`](Merger::finish)).
    pub(crate) fn set_file_index(&mut self, index: usize) {
        self.file_index = u32::try_from(index).unwrap_or(u32::MAX);
    }

    /// Marks the start of a new file's keys (forgetting the keys resolved for
    /// a file that was then not applied). Only a speed hint for
    /// [`resolve`](Merger::resolve); results never depend on it.
    pub fn start_file(&mut self) {
        self.keys.start_file();
    }

    /// Applies the entries `(key, value, timestamp)` of one file of kind
    /// `kind` written by process `pid`. Keys must come from
    /// [`resolve`](Merger::resolve) with the same kind (others are ignored).
    ///
    /// Entries whose metric already has another type are dropped and
    /// reported.
    pub fn add_file<I>(&mut self, kind: FileKind, pid: &str, entries: I) -> FileReport
    where
        I: IntoIterator<Item = (KeyId, f64, f64)>,
    {
        let ctx = self.file_ctx(kind, pid);
        let mut report = FileReport::default();
        for (key, value, ts) in entries {
            let Some(tpl) = self.keys.get(key).filter(|t| t.class == ctx.class) else {
                continue;
            };
            let seq = self.seq;
            self.seq = seq.saturating_add(1);
            match self.store.apply(&ctx, tpl, value, ts, seq) {
                Ok(true) => report.applied += 1,
                Ok(false) => {}
                Err(family_kind) => {
                    let name = &self.store.families[tpl.family].name;
                    report.conflict(name, family_kind, ctx.kind);
                }
            }
        }
        self.entries += report.applied;
        report
    }

    /// Resolves and applies a single entry: [`resolve`](Merger::resolve)
    /// followed by [`add_file`](Merger::add_file) with one entry. Returns
    /// false when the entry was dropped for a type conflict.
    ///
    /// ```
    /// use prometheus_multiproc::format::encode_key;
    /// use prometheus_multiproc::merge::Merger;
    /// use prometheus_multiproc::format::FileKind;
    /// use prometheus_multiproc::GaugeMode;
    ///
    /// let mut m = Merger::new();
    /// let k = encode_key("temp", "temp", &[], "Temperature.");
    /// let max = FileKind::Gauge(GaugeMode::Max);
    /// m.add(max, "1", k.as_bytes(), 20.0, 0.0).unwrap();
    /// m.add(max, "2", k.as_bytes(), 25.0, 0.0).unwrap();
    /// assert_eq!(m.finish()[0].samples[0].value, 25.0);
    /// ```
    pub fn add(
        &mut self,
        kind: FileKind,
        pid: &str,
        raw_key: &[u8],
        value: f64,
        timestamp: f64,
    ) -> Result<bool, KeyError> {
        self.start_file();
        let id = self.resolve(kind, raw_key)?;
        let r = self.add_file(kind, pid, [(id, value, timestamp)]);
        Ok(r.applied == 1)
    }

    /// Remarks on inputs whose merge is not exactly Python's (see the
    /// [module docs](self)): gauges seen with several modes.
    pub fn notes(&self) -> Vec<MixedModes> {
        let seen = |bits: u16, m: GaugeMode| bits & (1 << (m as u16)) != 0;
        let mut out = Vec::new();
        for f in self.store.families.rows() {
            if f.modes_seen.count_ones() < 2 {
                continue;
            }
            let Some(used) = f.mode else { continue };
            let modes: Vec<GaugeMode> = GaugeMode::ALL
                .iter()
                .copied()
                .filter(|m| seen(f.modes_seen, *m))
                .collect();
            let others_dropped = used.keeps_pid() && modes.iter().any(|m| !m.keeps_pid());
            out.push(MixedModes {
                gauge: f.name.to_string(),
                modes,
                used,
                others_dropped,
            });
        }
        out
    }

    /// Produces the merged families in prometheus_client's order: families
    /// in the order of their first entries, samples as the
    /// [module docs](self) describe.
    pub fn finish(self) -> Vec<Family> {
        self.finish_positioned()
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    /// [`finish`](Self::finish), with the position of each family's first
    /// entry, to put the families of several mergers in one order.
    pub(crate) fn finish_positioned(self) -> Vec<(Family, Position)> {
        finish::families(&self.store)
    }

    /// The families merged so far, as
    /// [`finish_positioned`](Self::finish_positioned) would produce them,
    /// keeping the merger for [`reset_values`](Self::reset_values).
    pub(crate) fn families_positioned(&self) -> Vec<(Family, Position)> {
        finish::families(&self.store)
    }

    /// Forgets every entry applied, keeping every key resolved: the
    /// [`KeyId`]s it gave stay valid, and applying the same entries again
    /// gives exactly the families a new merger would (what a collector
    /// that keeps file layouts between scrapes relies on).
    pub(crate) fn reset_values(&mut self) {
        self.store.reset_values();
        self.entries = 0;
        self.file_index = 0;
        self.seq = 0;
    }

    #[cfg(test)]
    /// Distinct keys resolved and series interned: what a kept merger
    /// holds in memory.
    pub(crate) fn footprint(&self) -> (usize, usize) {
        (self.keys.count(), self.store.series())
    }

    fn file_ctx(&mut self, kind: FileKind, pid: &str) -> FileCtx {
        let mode = match kind {
            FileKind::Gauge(m) => Some(m),
            _ => None,
        };
        let keeps_pid = mode.is_some_and(GaugeMode::keeps_pid);
        FileCtx {
            file: self.file_index,
            class: Class::of(kind),
            kind: FamilyKind::of(kind),
            mode,
            pid: keeps_pid.then(|| self.store.pid_id(pid)),
        }
    }
}

impl FileReport {
    /// Counts an entry of metric `name` dropped for a type conflict.
    fn conflict(&mut self, name: &str, family_kind: FamilyKind, file_kind: FamilyKind) {
        match self.conflicts.iter_mut().find(|c| c.metric == name) {
            Some(c) => c.dropped += 1,
            None => self.conflicts.push(TypeConflict {
                metric: name.to_string(),
                family_kind,
                file_kind,
                dropped: 1,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
