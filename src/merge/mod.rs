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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::format::key::{decode_key_ref, push_float_to_go_string};
use crate::format::naming::{FileKind, GaugeMode};

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

// ---------------------------------------------------------------------------
// A small fast hasher (FxHash). The keys come from the metrics directory,
// which is as trusted as the processes writing it.

#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    /// Long inputs (raw keys are 100 to 300 bytes) go through four
    /// independent lanes of 8 bytes, folded at the end: a quarter of the
    /// latency of one sequential chain. The tail is one (overlapping) word.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let word = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let mut rest = bytes;
        if rest.len() >= 32 {
            let mut lanes = [0u64; 4];
            while rest.len() >= 32 {
                for (i, l) in lanes.iter_mut().enumerate() {
                    *l = (l.rotate_left(5) ^ word(&rest[i * 8..])).wrapping_mul(FX_SEED);
                }
                rest = &rest[32..];
            }
            for l in lanes {
                self.add(l);
            }
        }
        while rest.len() >= 8 {
            self.add(word(rest));
            rest = &rest[8..];
        }
        if !rest.is_empty() {
            let tail = if bytes.len() >= 8 {
                // The last 8 bytes of the input, overlapping words already
                // hashed (the length is hashed too, so this is unambiguous).
                word(&bytes[bytes.len() - 8..])
            } else {
                let mut b = [0u8; 8];
                b[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(b)
            };
            self.add(tail);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;
type LabelSet = Arc<[(Arc<str>, Arc<str>)]>;

// ---------------------------------------------------------------------------

/// Key classes: keys are parsed differently per class, so each has its own
/// cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Counters, summaries (summed), info (max), state sets (most recent).
    Plain = 0,
    /// Histograms: `le` entries are buckets.
    Histogram = 1,
    /// Gauges: `pid` is dropped from the series identity.
    Gauge = 2,
}

impl Class {
    fn of(kind: FileKind) -> Class {
        match kind {
            FileKind::Histogram => Class::Histogram,
            FileKind::Gauge(_) => Class::Gauge,
            _ => Class::Plain,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// Index into `plain`.
    Plain(u32),
    /// Index into `buckets`.
    Bucket(u32),
    /// Index into `gauges`, and into `gauge_full` (the series with its
    /// complete label set, for `all` modes).
    Gauge { stats: u32, full: u32 },
}

#[derive(Debug)]
struct Template {
    /// The raw key, to check sequence hints without hashing.
    raw: Arc<[u8]>,
    family: u32,
    class: Class,
    help: Arc<str>,
    target: Target,
}

#[derive(Debug)]
struct FamilyState {
    name: Arc<str>,
    help: Arc<str>,
    kind: Option<FamilyKind>,
    /// Gauges: the mode of the last file that contributed.
    mode: Option<GaugeMode>,
    /// Gauges: one bit per mode seen (`GaugeMode as u16`).
    modes_seen: u16,
    /// The help text of the last key parsed for this family (keys of one
    /// family nearly always share it: no need to hash it again).
    key_help: Option<Arc<str>>,
    /// The sample name of the family's first key, and whether its keys
    /// have other sample names too (then several series share a label set,
    /// and finding the first of each label set needs a map).
    sample: Option<Arc<str>>,
    many_samples: bool,
    /// Where the first entry of the family was applied.
    first: Position,
}

#[derive(Debug)]
struct PlainSeries {
    family: u32,
    sample: Arc<str>,
    labels: u32,
    value: f64,
    /// State sets: the timestamp of `value`.
    ts: f64,
    seen: bool,
    /// The sequence number of the first entry applied.
    first: u32,
}

#[derive(Debug)]
struct BucketSlot {
    /// Index into `hist_sets`.
    hist: u32,
    /// The bound as first seen (so `-0.0` vs `0.0` prints as Python would).
    bound: f64,
    value: f64,
    seen: bool,
    /// The sequence number of the first entry applied.
    first: u32,
}

/// A gauge series without `pid`, with every statistic a mode may need, so
/// that the mode can be decided at the end.
#[derive(Debug)]
struct GaugeStats {
    family: u32,
    sample: Arc<str>,
    labels: u32,
    seen: bool,
    sum: f64,
    min: f64,
    max: f64,
    recent_ts: f64,
    recent: Option<f64>,
    /// Sequence numbers of the first entry applied, and of the first that
    /// set `recent`.
    first: u32,
    first_recent: u32,
}

#[derive(Debug)]
struct PidSlot {
    full: u32,
    pid: u32,
    value: f64,
    /// The sequence number of the first entry applied.
    first: u32,
}

/// Context for the entries of one file.
#[derive(Debug, Clone, Copy)]
struct FileCtx {
    /// The file's index (see [`Merger::set_file_index`]).
    file: u32,
    class: Class,
    kind: FamilyKind,
    mode: Option<GaugeMode>,
    pid: u32,
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
#[derive(Debug)]
pub struct Merger {
    /// Per class: raw key to template (the bytes shared with the template).
    caches: [FxMap<Arc<[u8]>, u32>; 3],
    templates: Vec<Template>,
    strings: HashSet<Arc<str>, FxBuild>,
    labelsets: Vec<LabelSet>,
    /// Label sets by the addresses of their (interned) strings.
    labelset_ids: FxMap<Box<[usize]>, u32>,
    /// Scratch for `labelset`.
    addrs: Vec<usize>,
    /// The family of the last key parsed.
    last_family: u32,
    families: Vec<FamilyState>,
    family_ids: FxMap<Arc<str>, u32>,
    plain: Vec<PlainSeries>,
    /// By family, address of the (interned) sample name, label set.
    plain_ids: FxMap<(u32, usize, u32), u32>,
    hist_sets: Vec<(u32, u32)>,
    hist_ids: FxMap<(u32, u32), u32>,
    buckets: Vec<BucketSlot>,
    bucket_ids: FxMap<(u32, u64), u32>,
    gauges: Vec<GaugeStats>,
    /// As `plain_ids`.
    gauge_ids: FxMap<(u32, usize, u32), u32>,
    /// `(stats, full label set)` of each gauge series with its own labels.
    gauge_full: Vec<(u32, u32)>,
    gauge_full_ids: FxMap<(u32, u32), u32>,
    pids: Vec<Arc<str>>,
    pid_ids: FxMap<Arc<str>, u32>,
    pid_slots: Vec<PidSlot>,
    pid_slot_ids: FxMap<(u32, u32), u32>,
    /// Sequence hints: `succ[t]` is the key that followed key `t` the last
    /// time `t` was resolved ([`NONE`] if none), `first[c]` the first key of
    /// the last file of class `c`, `prev[c]` the key resolved last in the
    /// current file. Before hashing a key, [`resolve`](Merger::resolve)
    /// compares it with the predicted one. Files written by the same code
    /// list many keys in the same sequence: all of them when workers create
    /// their series in the same order, and a histogram's `_sum` and buckets
    /// (or a summary's `_count` and `_sum`) always.
    succ: Vec<u32>,
    first: [u32; 3],
    prev: [u32; 3],
    /// Per class: keys resolved in the current file since the last correct
    /// prediction. After two misses in a row (a file in an order of its
    /// own), only every 16th key is predicted, so that such files do not
    /// pay a wasted comparison per key.
    misses: [u32; 3],
    entries: usize,
    /// The index of the file being applied (see
    /// [`set_file_index`](Merger::set_file_index)).
    file_index: u32,
    /// The sequence number of the next entry applied.
    seq: u32,
}

/// No key (in sequence hints).
const NONE: u32 = u32::MAX;

impl Default for Merger {
    fn default() -> Self {
        Merger {
            caches: Default::default(),
            templates: Vec::new(),
            strings: HashSet::default(),
            labelsets: Vec::new(),
            labelset_ids: FxMap::default(),
            addrs: Vec::new(),
            last_family: 0,
            families: Vec::new(),
            family_ids: FxMap::default(),
            plain: Vec::new(),
            plain_ids: FxMap::default(),
            hist_sets: Vec::new(),
            hist_ids: FxMap::default(),
            buckets: Vec::new(),
            bucket_ids: FxMap::default(),
            gauges: Vec::new(),
            gauge_ids: FxMap::default(),
            gauge_full: Vec::new(),
            gauge_full_ids: FxMap::default(),
            pids: Vec::new(),
            pid_ids: FxMap::default(),
            pid_slots: Vec::new(),
            pid_slot_ids: FxMap::default(),
            succ: Vec::new(),
            first: [NONE; 3],
            prev: [NONE; 3],
            misses: [0; 3],
            entries: 0,
            file_index: 0,
            seq: 0,
        }
    }
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
        let c = Class::of(kind) as usize;
        let prev = self.prev[c];
        let misses = self.misses[c];
        if misses < 2 || misses.is_multiple_of(16) {
            let guess = if prev == NONE {
                self.first[c]
            } else {
                self.succ[prev as usize]
            };
            if let Some(tpl) = self.templates.get(guess as usize)
                && *tpl.raw == *raw_key
                && tpl.class as usize == c
            {
                self.prev[c] = guess;
                self.misses[c] = 0;
                return Ok(KeyId(guess));
            }
        }
        self.misses[c] = misses.wrapping_add(1);
        let t = match self.caches[c].get(raw_key) {
            Some(&t) => t,
            None => {
                let t = self.make_template(Class::of(kind), raw_key)?;
                let raw = Arc::clone(&self.templates[t as usize].raw);
                self.caches[c].insert(raw, t);
                self.succ.push(NONE);
                t
            }
        };
        if prev == NONE {
            self.first[c] = t;
        } else {
            self.succ[prev as usize] = t;
        }
        self.prev[c] = t;
        Ok(KeyId(t))
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
        self.prev = [NONE; 3];
        self.misses = [0; 3];
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
        for (KeyId(t), value, ts) in entries {
            let seq = self.seq;
            self.seq = seq.saturating_add(1);
            match self.apply(&ctx, t, value, ts, seq) {
                Ok(true) => report.applied += 1,
                Ok(false) => {}
                Err(family_kind) => {
                    let fam = self.templates[t as usize].family;
                    let name = &self.families[fam as usize].name;
                    match report.conflicts.iter_mut().find(|c| *c.metric == **name) {
                        Some(c) => c.dropped += 1,
                        None => report.conflicts.push(TypeConflict {
                            metric: name.to_string(),
                            family_kind,
                            file_kind: ctx.kind,
                            dropped: 1,
                        }),
                    }
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
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.families {
            if f.modes_seen.count_ones() < 2 {
                continue;
            }
            let Some(mode) = f.mode else { continue };
            let modes: Vec<&str> = GaugeMode::ALL
                .iter()
                .filter(|m| f.modes_seen & (1 << (**m as u16)) != 0)
                .map(|m| m.as_str())
                .collect();
            let mut msg = format!(
                "gauge {:?} is written with several multiprocess modes ({}); using {}, the mode of the last file",
                f.name,
                modes.join(", "),
                mode
            );
            let others = GaugeMode::ALL
                .iter()
                .any(|m| !m.keeps_pid() && f.modes_seen & (1 << (*m as u16)) != 0);
            if mode.keeps_pid() && others {
                msg.push_str(
                    "; values from files of modes other than all/liveall are not reported",
                );
            }
            out.push(msg);
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
        let mut out = Output::new(&self);
        let hist = emit_buckets(&self, &mut out);
        emit_plain(&self, &hist, &mut out);
        emit_counts(&self, &hist, &mut out);
        emit_gauges(&self, &mut out);
        emit_pid_gauges(&self, &mut out);
        out.build(&self.labelsets)
    }

    // -- internals ----------------------------------------------------------

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(a.clone());
        a
    }

    /// The id of a label set of interned strings. Interned strings are
    /// equal exactly when their addresses are (the merger keeps them alive),
    /// so sets are looked up by addresses, without hashing their text.
    fn labelset(&mut self, pairs: &[(Arc<str>, Arc<str>)]) -> u32 {
        self.addrs.clear();
        for (n, v) in pairs {
            self.addrs.push(addr(n));
            self.addrs.push(addr(v));
        }
        if let Some(&id) = self.labelset_ids.get(&self.addrs[..]) {
            return id;
        }
        let id = self.labelsets.len() as u32;
        self.labelsets.push(Arc::from(pairs));
        self.labelset_ids.insert(self.addrs.as_slice().into(), id);
        id
    }

    fn family_id(&mut self, name: &str) -> u32 {
        // Keys are mostly first seen family by family.
        if let Some(f) = self.families.get(self.last_family as usize)
            && *f.name == *name
        {
            return self.last_family;
        }
        if let Some(&id) = self.family_ids.get(name) {
            self.last_family = id;
            return id;
        }
        let id = self.families.len() as u32;
        let name: Arc<str> = self.intern(name);
        self.families.push(FamilyState {
            name: name.clone(),
            help: Arc::from(""),
            kind: None,
            mode: None,
            modes_seen: 0,
            key_help: None,
            sample: None,
            many_samples: false,
            first: Position::default(),
        });
        self.family_ids.insert(name, id);
        self.last_family = id;
        id
    }

    /// Records that `family` has a key with the sample name `sample` (not a
    /// histogram bucket).
    fn note_sample(&mut self, family: u32, sample: &Arc<str>) {
        let f = &mut self.families[family as usize];
        match &f.sample {
            None => f.sample = Some(sample.clone()),
            Some(s) if !Arc::ptr_eq(s, sample) => f.many_samples = true,
            Some(_) => {}
        }
    }

    fn pid_id(&mut self, pid: &str) -> u32 {
        if let Some(&id) = self.pid_ids.get(pid) {
            return id;
        }
        let id = self.pids.len() as u32;
        let pid: Arc<str> = Arc::from(pid);
        self.pids.push(pid.clone());
        self.pid_ids.insert(pid, id);
        id
    }

    fn plain_id(&mut self, family: u32, sample: Arc<str>, labels: u32) -> u32 {
        let next = self.plain.len() as u32;
        let id = *self
            .plain_ids
            .entry((family, addr(&sample), labels))
            .or_insert(next);
        if id == next {
            self.plain.push(PlainSeries {
                family,
                sample,
                labels,
                value: 0.0,
                ts: 0.0,
                seen: false,
                first: 0,
            });
        }
        id
    }

    fn make_template(&mut self, class: Class, raw: &[u8]) -> Result<u32, KeyError> {
        let k = decode_key_ref(raw).map_err(KeyError)?;
        if k.metric.is_empty() {
            return Err(KeyError("empty metric name".into()));
        }
        // Validate before interning anything.
        let le_bound =
            if class == Class::Histogram {
                match k.labels.iter().find(|(n, _)| n == "le") {
                    Some((_, v)) => Some(parse_python_float(v).ok_or_else(|| {
                        KeyError(format!("bucket bound le={v:?} is not a number"))
                    })?),
                    None => None,
                }
            } else {
                None
            };
        let family = self.family_id(&k.metric);
        let help = match &self.families[family as usize].key_help {
            Some(h) if **h == *k.help => h.clone(),
            _ => {
                let h = self.intern(&k.help);
                self.families[family as usize].key_help = Some(h.clone());
                h
            }
        };
        let sample = self.intern(&k.sample);
        let mut pairs: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(k.labels.len() + 1);
        for (n, v) in &k.labels {
            let n = self.intern(n);
            let v = self.intern(v);
            pairs.push((n, v));
        }
        if !(class == Class::Histogram && le_bound.is_some()) {
            self.note_sample(family, &sample);
        }
        let target = match class {
            Class::Plain => {
                let ls = self.labelset(&pairs);
                Target::Plain(self.plain_id(family, sample, ls))
            }
            Class::Histogram => match le_bound {
                Some(bound) => {
                    pairs.retain(|(n, _)| &**n != "le");
                    let ls = self.labelset(&pairs);
                    let next = self.hist_sets.len() as u32;
                    let hist = *self.hist_ids.entry((family, ls)).or_insert(next);
                    if hist == next {
                        self.hist_sets.push((family, ls));
                    }
                    // -0.0 and 0.0 are one bucket, as in a Python dict.
                    let bits = if bound == 0.0 { 0 } else { bound.to_bits() };
                    let next = self.buckets.len() as u32;
                    let slot = *self.bucket_ids.entry((hist, bits)).or_insert(next);
                    if slot == next {
                        self.buckets.push(BucketSlot {
                            hist,
                            bound,
                            value: 0.0,
                            seen: false,
                            first: 0,
                        });
                    }
                    Target::Bucket(slot)
                }
                None => {
                    let ls = self.labelset(&pairs);
                    Target::Plain(self.plain_id(family, sample, ls))
                }
            },
            Class::Gauge => {
                let full_ls = self.labelset(&pairs);
                pairs.retain(|(n, _)| &**n != "pid");
                let ls = self.labelset(&pairs);
                let next = self.gauges.len() as u32;
                let stats = *self
                    .gauge_ids
                    .entry((family, addr(&sample), ls))
                    .or_insert(next);
                if stats == next {
                    self.gauges.push(GaugeStats {
                        family,
                        sample,
                        labels: ls,
                        seen: false,
                        sum: 0.0,
                        min: 0.0,
                        max: 0.0,
                        recent_ts: 0.0,
                        recent: None,
                        first: 0,
                        first_recent: 0,
                    });
                }
                let next = self.gauge_full.len() as u32;
                let full = *self.gauge_full_ids.entry((stats, full_ls)).or_insert(next);
                if full == next {
                    self.gauge_full.push((stats, full_ls));
                }
                Target::Gauge { stats, full }
            }
        };
        let id =
            u32::try_from(self.templates.len()).map_err(|_| KeyError("too many keys".into()))?;
        self.templates.push(Template {
            raw: raw.into(),
            family,
            class,
            help,
            target,
        });
        Ok(id)
    }

    fn file_ctx(&mut self, kind: FileKind, pid: &str) -> FileCtx {
        let mode = match kind {
            FileKind::Gauge(m) => Some(m),
            _ => None,
        };
        let pid = if mode.is_some_and(GaugeMode::keeps_pid) {
            self.pid_id(pid)
        } else {
            u32::MAX
        };
        FileCtx {
            file: self.file_index,
            class: Class::of(kind),
            kind: FamilyKind::of(kind),
            mode,
            pid,
        }
    }

    /// Applies one entry. `Ok(false)`: ignored (key from another class);
    /// `Err(kind)`: type conflict with a family of type `kind`.
    #[inline]
    fn apply(
        &mut self,
        ctx: &FileCtx,
        t: u32,
        value: f64,
        ts: f64,
        seq: u32,
    ) -> Result<bool, FamilyKind> {
        let Some(tpl) = self.templates.get(t as usize) else {
            return Ok(false);
        };
        if tpl.class != ctx.class {
            return Ok(false);
        }
        let fam = &mut self.families[tpl.family as usize];
        match fam.kind {
            None => {
                fam.kind = Some(ctx.kind);
                fam.help = tpl.help.clone();
                fam.first = Position {
                    file: ctx.file,
                    seq,
                };
            }
            Some(k) if k != ctx.kind => return Err(k),
            Some(_) => {}
        }
        match tpl.target {
            Target::Plain(s) => {
                let s = &mut self.plain[s as usize];
                match ctx.kind {
                    FamilyKind::Info => {
                        if !s.seen || value > s.value {
                            s.value = value;
                        }
                    }
                    FamilyKind::StateSet => {
                        let ts = if ts.is_nan() { f64::NEG_INFINITY } else { ts };
                        if !s.seen || ts > s.ts || (ts == s.ts && value > s.value) {
                            s.value = value;
                            s.ts = ts;
                        }
                    }
                    _ => s.value += value,
                }
                if !s.seen {
                    s.first = seq;
                }
                s.seen = true;
            }
            Target::Bucket(b) => {
                let b = &mut self.buckets[b as usize];
                b.value += value;
                if !b.seen {
                    b.first = seq;
                }
                b.seen = true;
            }
            Target::Gauge { stats, full } => {
                let Some(mode) = ctx.mode else {
                    return Ok(false);
                };
                fam.mode = Some(mode);
                fam.modes_seen |= 1 << (mode as u16);
                let g = &mut self.gauges[stats as usize];
                if g.seen {
                    if value < g.min {
                        g.min = value;
                    }
                    if value > g.max {
                        g.max = value;
                    }
                } else {
                    g.seen = true;
                    g.min = value;
                    g.max = value;
                    g.first = seq;
                }
                g.sum += value;
                // Python: replace only when strictly newer, starting from 0.0.
                if g.recent_ts < ts {
                    if g.recent.is_none() {
                        g.first_recent = seq;
                    }
                    g.recent_ts = ts;
                    g.recent = Some(value);
                }
                if mode.keeps_pid() {
                    let next = self.pid_slots.len() as u32;
                    let slot = *self.pid_slot_ids.entry((full, ctx.pid)).or_insert(next);
                    if slot == next {
                        self.pid_slots.push(PidSlot {
                            full,
                            pid: ctx.pid,
                            value,
                            first: seq,
                        });
                    } else {
                        self.pid_slots[slot as usize].value = value;
                    }
                }
            }
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------
// Output order.
//
// prometheus_client's `_accumulate_metrics` puts each metric's samples into
// a dict of groups (keyed by label set) of dicts (keyed by sample name and
// labels), both in insertion order: a group and a sample come where their
// first entry came. Each output sample gets a sort key built from sequence
// numbers of first entries to the same effect.

/// Families being built: per family id, the family, where its first entry
/// was applied and its samples before sorting.
struct Output {
    families: Vec<Option<(Family, Position, Vec<Sorted>)>>,
}

impl Output {
    fn new(m: &Merger) -> Output {
        // At most this many samples per family: sized once, the vectors
        // are not grown (and copied) step by step.
        let mut most = vec![0usize; m.families.len()];
        for b in m.buckets.iter().filter(|b| b.seen) {
            most[m.hist_sets[b.hist as usize].0 as usize] += 1;
        }
        for &(fam, _) in &m.hist_sets {
            most[fam as usize] += 1; // `_count`
        }
        for s in m.plain.iter().filter(|s| s.seen) {
            most[s.family as usize] += 1;
        }
        for g in m.gauges.iter().filter(|g| g.seen) {
            most[g.family as usize] += 1;
        }
        for p in &m.pid_slots {
            let (stats, _) = m.gauge_full[p.full as usize];
            most[m.gauges[stats as usize].family as usize] += 1;
        }
        let families = m
            .families
            .iter()
            .zip(most)
            .map(|(f, most)| {
                let kind = f.kind?;
                let family = Family {
                    name: f.name.to_string(),
                    help: f.help.to_string(),
                    kind,
                    gauge_mode: f.mode.filter(|_| kind == FamilyKind::Gauge),
                    samples: Vec::new(),
                };
                Some((family, f.first, Vec::with_capacity(most)))
            })
            .collect();
        Output { families }
    }

    fn push(&mut self, fam: u32, key: SortKey, sample: Pending) {
        if let Some((_, _, pending)) = &mut self.families[fam as usize] {
            pending.push((key, sample));
        }
    }

    /// Sorts each family's samples and builds them (in output order, so
    /// that their label vectors are allocated in sequence and encoding
    /// reads memory in order), and the families by first entry.
    fn build(self, labelsets: &[LabelSet]) -> Vec<(Family, Position)> {
        let mut result: Vec<(Family, Position)> = self
            .families
            .into_iter()
            .flatten()
            .map(|(mut f, first, pending)| {
                f.samples = sorted_samples(pending, labelsets);
                (f, first)
            })
            .collect();
        result.sort_by_key(|(_, first)| *first);
        result
    }
}

/// The samples of one family in sort key order.
fn sorted_samples(pending: Vec<Sorted>, labelsets: &[LabelSet]) -> Vec<Sample> {
    // Sort (key, index) pairs: the index breaks ties, so the order is that
    // of a stable sort, and deterministic.
    let mut order: Vec<(SortKey, u32)> = pending.iter().zip(0..).map(|(p, i)| (p.0, i)).collect();
    order.sort_unstable();
    let mut pending: Vec<Option<Pending>> = pending.into_iter().map(|(_, p)| Some(p)).collect();
    order
        .iter()
        .map(|&(_, i)| {
            let p = pending[i as usize].take().expect("each index once");
            let base = &labelsets[p.labels as usize];
            Sample {
                name: p.name,
                labels: match p.extra {
                    Some((n, v)) => with_label(base, &n, v),
                    None => base.to_vec(),
                },
                value: p.value,
            }
        })
        .collect()
}

/// The smallest first sequence number per key.
fn firsts<K: std::hash::Hash + Eq>(items: impl Iterator<Item = (K, u32)>) -> FxMap<K, u32> {
    let mut map: FxMap<K, u32> = FxMap::default();
    for (k, first) in items {
        map.entry(k)
            .and_modify(|f| *f = (*f).min(first))
            .or_insert(first);
    }
    map
}

/// The sort key group of a label set whose first entry is `first`; `late`
/// groups come after all others (histogram label sets with buckets only).
fn group(late: bool, first: u32) -> u64 {
    (u64::from(late) << 32) | u64::from(first)
}

/// What [`emit_buckets`] leaves for the `_sum`, `_count` and other
/// histogram samples.
struct HistOut {
    /// First entry of each (family, label set) among the non-bucket series
    /// of histograms and of families with several sample names.
    plain_groups: FxMap<(u32, u32), u32>,
    /// Per histogram label set with buckets: the total, and the sort key
    /// group of the label set.
    totals: Vec<Option<(f64, u64)>>,
    /// `<name>_count` of each histogram family, interned if some key has it.
    count_names: FxMap<u32, Arc<str>>,
}

/// Histogram buckets: per label set, sorted by bound, cumulated. A label
/// set comes where its first `_sum` (or other non-bucket) entry came, or,
/// without one, after all those, where its first bucket came.
fn emit_buckets(m: &Merger, out: &mut Output) -> HistOut {
    let plain_groups = firsts(
        m.plain
            .iter()
            .filter(|s| {
                let f = &m.families[s.family as usize];
                s.seen && (f.many_samples || f.kind == Some(FamilyKind::Histogram))
            })
            .map(|s| ((s.family, s.labels), s.first)),
    );
    let mut per_hist: Vec<Vec<u32>> = vec![Vec::new(); m.hist_sets.len()];
    for (i, b) in m.buckets.iter().enumerate() {
        if b.seen {
            per_hist[b.hist as usize].push(i as u32);
        }
    }
    let mut totals = vec![None; m.hist_sets.len()];
    let mut count_names = FxMap::default();
    let le: Arc<str> = Arc::from("le");
    // One string per distinct bound, shared by every bucket with it.
    let mut le_values: FxMap<u64, Arc<str>> = FxMap::default();
    let mut go = String::new();
    for (h, slots) in per_hist.iter_mut().enumerate() {
        if slots.is_empty() {
            continue;
        }
        let (fam, ls) = m.hist_sets[h];
        let name = &m.families[fam as usize].name;
        let bucket_name: Arc<str> = Arc::from(format!("{name}_bucket"));
        count_names.entry(fam).or_insert_with(|| {
            let n = format!("{name}_count");
            m.strings
                .get(n.as_str())
                .cloned()
                .unwrap_or_else(|| n.into())
        });
        let grp = match plain_groups.get(&(fam, ls)) {
            Some(&first) => group(false, first),
            None => group(
                true,
                slots
                    .iter()
                    .map(|&s| m.buckets[s as usize].first)
                    .min()
                    .unwrap_or(0),
            ),
        };
        slots.sort_by(|&a, &b| {
            m.buckets[a as usize]
                .bound
                .total_cmp(&m.buckets[b as usize].bound)
        });
        let mut acc = 0.0;
        for &s in slots.iter() {
            let b = &m.buckets[s as usize];
            acc += b.value;
            let le_value = le_values
                .entry(b.bound.to_bits())
                .or_insert_with(|| {
                    go.clear();
                    push_float_to_go_string(&mut go, b.bound);
                    Arc::from(go.as_str())
                })
                .clone();
            out.push(
                fam,
                SortKey::new(grp, 1, ordered_bits(b.bound)),
                Pending {
                    name: bucket_name.clone(),
                    labels: ls,
                    extra: Some((le.clone(), le_value)),
                    value: acc,
                },
            );
        }
        totals[h] = Some((acc, grp));
    }
    HistOut {
        plain_groups,
        totals,
        count_names,
    }
}

/// Counters, summaries, info, state sets, and histograms' non-bucket
/// samples. A histogram's `<name>_count` entry, where the label set has
/// buckets, keeps its place and takes the total of the buckets.
fn emit_plain(m: &Merger, hist: &HistOut, out: &mut Output) {
    for s in m.plain.iter().filter(|s| s.seen) {
        let fam = &m.families[s.family as usize];
        // Info: label sets that no process has any more.
        if fam.kind == Some(FamilyKind::Info) && (s.value.is_nan() || s.value <= 0.0) {
            continue;
        }
        let mut value = s.value;
        if fam.kind == Some(FamilyKind::Histogram)
            && hist
                .count_names
                .get(&s.family)
                .is_some_and(|c| Arc::ptr_eq(c, &s.sample))
            && let Some(&h) = m.hist_ids.get(&(s.family, s.labels))
            && let Some((total, _)) = hist.totals[h as usize]
        {
            value = total;
        }
        let first = match hist.plain_groups.get(&(s.family, s.labels)) {
            Some(&g) => g,
            None => s.first,
        };
        out.push(
            s.family,
            SortKey::new(group(false, first), 0, u64::from(s.first)),
            Pending {
                name: s.sample.clone(),
                labels: s.labels,
                extra: None,
                value,
            },
        );
    }
}

/// `<name>_count` of each histogram label set with buckets and no
/// `_count` entry of its own: after the buckets.
fn emit_counts(m: &Merger, hist: &HistOut, out: &mut Output) {
    for (h, &(fam, ls)) in m.hist_sets.iter().enumerate() {
        let Some((total, grp)) = hist.totals[h] else {
            continue;
        };
        let Some(count) = hist.count_names.get(&fam) else {
            continue;
        };
        let own = m
            .plain_ids
            .get(&(fam, addr(count), ls))
            .is_some_and(|&p| m.plain[p as usize].seen);
        if own {
            continue;
        }
        out.push(
            fam,
            SortKey::new(grp, 2, 0),
            Pending {
                name: count.clone(),
                labels: ls,
                extra: None,
                value: total,
            },
        );
    }
}

/// The value a gauge series reports under `mode` and the sequence number
/// of the entry that put it in Python's dict; `None` for no sample.
fn gauge_value(g: &GaugeStats, mode: GaugeMode) -> Option<(f64, u32)> {
    match mode {
        GaugeMode::Min | GaugeMode::LiveMin => Some((g.min, g.first)),
        GaugeMode::Max | GaugeMode::LiveMax => Some((g.max, g.first)),
        GaugeMode::Sum | GaugeMode::LiveSum => Some((g.sum, g.first)),
        // Python creates the sample at the first strictly newer timestamp.
        GaugeMode::MostRecent | GaugeMode::LiveMostRecent => g.recent.map(|v| (v, g.first_recent)),
        GaugeMode::All | GaugeMode::LiveAll => None,
    }
}

/// Gauges of the modes that reduce over processes.
fn emit_gauges(m: &Merger, out: &mut Output) {
    let mode_of = |g: &GaugeStats| m.families[g.family as usize].mode;
    let groups = firsts(
        m.gauges
            .iter()
            .filter(|g| g.seen && m.families[g.family as usize].many_samples)
            .filter_map(|g| {
                let (_, first) = gauge_value(g, mode_of(g)?)?;
                Some(((g.family, g.labels), first))
            }),
    );
    for g in m.gauges.iter().filter(|g| g.seen) {
        let Some((value, first)) = mode_of(g).and_then(|mode| gauge_value(g, mode)) else {
            continue;
        };
        let grp = groups.get(&(g.family, g.labels)).copied().unwrap_or(first);
        out.push(
            g.family,
            SortKey::new(group(false, grp), 0, u64::from(first)),
            Pending {
                name: g.sample.clone(),
                labels: g.labels,
                extra: None,
                value,
            },
        );
    }
}

/// Gauges of the `all` modes: one sample per process, grouped (as in
/// Python) by label set and process.
fn emit_pid_gauges(m: &Merger, out: &mut Output) {
    let keeps_pid = |fam: u32| {
        m.families[fam as usize]
            .mode
            .is_some_and(GaugeMode::keeps_pid)
    };
    let series = |p: &PidSlot| {
        let (stats, full_ls) = m.gauge_full[p.full as usize];
        (&m.gauges[stats as usize], full_ls)
    };
    let groups = firsts(m.pid_slots.iter().filter_map(|p| {
        let (g, full_ls) = series(p);
        let many = m.families[g.family as usize].many_samples;
        (many && keeps_pid(g.family)).then_some(((g.family, full_ls, p.pid), p.first))
    }));
    let pid_label: Arc<str> = Arc::from("pid");
    for p in &m.pid_slots {
        let (g, full_ls) = series(p);
        if !keeps_pid(g.family) {
            continue;
        }
        let grp = groups
            .get(&(g.family, full_ls, p.pid))
            .copied()
            .unwrap_or(p.first);
        out.push(
            g.family,
            SortKey::new(group(false, grp), 0, u64::from(p.first)),
            Pending {
                name: g.sample.clone(),
                labels: g.labels,
                extra: Some((pid_label.clone(), m.pids[p.pid as usize].clone())),
                value: p.value,
            },
        );
    }
}

/// `f64::total_cmp`'s order as an unsigned integer.
fn ordered_bits(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// An output sample before sorting: its label set, plus `le` or `pid`.
struct Pending {
    name: Arc<str>,
    labels: u32,
    extra: Option<(Arc<str>, Arc<str>)>,
    value: f64,
}

type Sorted = (SortKey, Pending);

/// Sort key of an output sample within its family, packed into one
/// integer (sorting thousands of per-process samples compares integers
/// only). From the high bits: the `group` of its label set (33 bits, see
/// [`group`]), a `class` (2 bits: histograms put `_sum` and other
/// non-bucket samples, then buckets, then a computed `_count`), and an
/// `item` (64 bits: the sequence number of the sample's first entry, or a
/// bucket's bound in [`ordered_bits`] form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey(u128);

impl SortKey {
    fn new(group: u64, class: u8, item: u64) -> Self {
        debug_assert!(class < 4 && group < 1 << 33);
        SortKey((u128::from(group) << 66) | (u128::from(class & 3) << 64) | u128::from(item))
    }
}

/// The address of an interned string: its identity within one merger.
fn addr(s: &Arc<str>) -> usize {
    Arc::as_ptr(s).cast::<u8>() as usize
}

/// `base` (sorted, without `name`) plus `name=value`, kept sorted.
fn with_label(
    base: &[(Arc<str>, Arc<str>)],
    name: &Arc<str>,
    value: Arc<str>,
) -> Vec<(Arc<str>, Arc<str>)> {
    let mut v = Vec::with_capacity(base.len() + 1);
    let at = base.partition_point(|(n, _)| **n < **name);
    v.extend_from_slice(&base[..at]);
    v.push((name.clone(), value));
    v.extend_from_slice(&base[at..]);
    v
}

/// Parses a number as Python's `float(str)` does (surrounding whitespace,
/// `inf`/`nan` in any case, `_` between digits).
fn parse_python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let t: Cow<str> = if t.contains('_') {
        let b = t.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if c == b'_'
                && !(i > 0
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit))
            {
                return None;
            }
        }
        Cow::Owned(t.replace('_', ""))
    } else {
        Cow::Borrowed(t)
    };
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key::encode_key;

    fn key(metric: &str, sample: &str, labels: &[(&str, &str)], help: &str) -> Vec<u8> {
        encode_key(metric, sample, labels, help).into_bytes()
    }

    fn lines(fams: &[Family]) -> Vec<String> {
        let mut out = Vec::new();
        for f in fams {
            out.push(format!("{} {} {:?}", f.name, f.kind, f.help));
            for s in &f.samples {
                let labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push(format!("  {}{{{}}} {}", s.name, labels.join(","), s.value));
            }
        }
        out
    }

    #[test]
    fn counters_sum_across_files() {
        let mut m = Merger::new();
        let a = key("req", "req_total", &[("path", "/a")], "Requests.");
        let b = key("req", "req_total", &[("path", "/b")], "Requests.");
        m.add(FileKind::Counter, "1", &a, 1.0, 0.0).unwrap();
        m.add(FileKind::Counter, "1", &b, 10.0, 0.0).unwrap();
        m.add(FileKind::Counter, "2", &a, 2.0, 0.0).unwrap();
        // Same series, other help text: still one series, first help wins.
        let a2 = key("req", "req_total", &[("path", "/a")], "Other help.");
        m.add(FileKind::Counter, "3", &a2, 4.0, 0.0).unwrap();
        assert_eq!(m.entries(), 4);
        let f = m.finish();
        assert_eq!(
            lines(&f),
            [
                "req counter \"Requests.\"",
                "  req_total{path=/a} 7",
                "  req_total{path=/b} 10"
            ]
        );
    }

    #[test]
    fn summaries_sum_info_max_stateset_most_recent() {
        let mut m = Merger::new();
        for pid in ["1", "2"] {
            m.add(
                FileKind::Summary,
                pid,
                &key("lat", "lat_count", &[], "L."),
                3.0,
                0.0,
            )
            .unwrap();
            m.add(
                FileKind::Summary,
                pid,
                &key("lat", "lat_sum", &[], "L."),
                0.5,
                0.0,
            )
            .unwrap();
            m.add(
                FileKind::Info,
                pid,
                &key("build", "build_info", &[("v", "1")], "B."),
                1.0,
                0.0,
            )
            .unwrap();
            m.add(
                FileKind::StateSet,
                pid,
                &key("st", "st", &[("st", "a")], "S."),
                1.0,
                0.0,
            )
            .unwrap();
        }
        assert_eq!(
            lines(&m.finish()),
            [
                "lat summary \"L.\"",
                "  lat_count{} 6",
                "  lat_sum{} 1",
                "build info \"B.\"",
                "  build_info{v=1} 1",
                "st stateset \"S.\"",
                "  st{st=a} 1",
            ]
        );
    }

    #[test]
    fn info_keeps_label_sets_in_use_once() {
        let mut m = Merger::new();
        let v1 = key("build", "build_info", &[("v", "1")], "B.");
        let v2 = key("build", "build_info", &[("v", "2")], "B.");
        let v3 = key("build", "build_info", &[("v", "3")], "B.");
        // Process 1 moved from v1 to v2; process 2 is still on v1; v3 was
        // set and replaced by process 3, now on v2.
        for (pid, k, v) in [
            ("1", &v1, 0.0),
            ("1", &v2, 1.0),
            ("2", &v1, 1.0),
            ("3", &v3, 0.0),
            ("3", &v2, 1.0),
        ] {
            m.add(FileKind::Info, pid, k, v, 0.0).unwrap();
        }
        assert_eq!(
            lines(&m.finish()),
            [
                "build info \"B.\"",
                "  build_info{v=1} 1",
                "  build_info{v=2} 1"
            ]
        );
        // Nobody holds any label set: the family stays, without samples.
        let mut m = Merger::new();
        m.add(FileKind::Info, "1", &v1, 0.0, 0.0).unwrap();
        m.add(FileKind::Info, "2", &v1, f64::NAN, 0.0).unwrap();
        assert_eq!(lines(&m.finish()), ["build info \"B.\""]);
    }

    #[test]
    fn stateset_most_recent_state_wins() {
        let st = |s: &str| key("mode", "mode", &[("mode", s), ("q", "x")], "M.");
        let merge = |files: &[(&str, [(f64, f64); 3])]| {
            let mut m = Merger::new();
            for (pid, vals) in files {
                for (s, (v, ts)) in ["a", "b", "c"].iter().zip(vals) {
                    m.add(FileKind::StateSet, pid, &st(s), *v, *ts).unwrap();
                }
            }
            lines(&m.finish())[1..].to_vec()
        };
        let want = |a: u8, b: u8, c: u8| {
            vec![
                format!("  mode{{mode=a,q=x}} {a}"),
                format!("  mode{{mode=b,q=x}} {b}"),
                format!("  mode{{mode=c,q=x}} {c}"),
            ]
        };
        // Never set anywhere: the first state, from its initial 1.0.
        let fresh = [(1.0, 0.0), (0.0, 0.0), (0.0, 0.0)];
        let lazy = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)];
        assert_eq!(merge(&[("1", lazy), ("2", fresh)]), want(1, 0, 0));
        // Process 2 set `c` after process 1 set `b`, in either file order.
        let b_at_5 = [(0.0, 5.0), (1.0, 5.0), (0.0, 5.0)];
        let c_at_7 = [(0.0, 7.0), (0.0, 7.0), (1.0, 7.0)];
        assert_eq!(
            merge(&[("1", b_at_5), ("2", c_at_7), ("3", fresh)]),
            want(0, 0, 1)
        );
        assert_eq!(
            merge(&[("3", fresh), ("2", c_at_7), ("1", b_at_5)]),
            want(0, 0, 1)
        );
        // A NaN timestamp never wins.
        let nan = [(1.0, f64::NAN), (1.0, f64::NAN), (1.0, f64::NAN)];
        assert_eq!(merge(&[("1", nan), ("2", b_at_5)]), want(0, 1, 0));
    }

    #[test]
    fn histograms_accumulate_buckets() {
        let mut m = Merger::new();
        let h = FileKind::Histogram;
        for (pid, vals) in [("1", [1.0, 0.0, 2.0]), ("2", [0.0, 3.0, 1.0])] {
            // Deliberately out of order, and `1` spelled two ways.
            let bounds = ["+Inf", "0.5", if pid == "1" { "1.0" } else { "1" }];
            for (b, v) in bounds.iter().zip(vals) {
                m.add(
                    h,
                    pid,
                    &key("lat", "lat_bucket", &[("m", "GET"), ("le", b)], "L."),
                    v,
                    0.0,
                )
                .unwrap();
            }
            m.add(
                h,
                pid,
                &key("lat", "lat_sum", &[("m", "GET")], "L."),
                1.25,
                0.0,
            )
            .unwrap();
        }
        // A bound needing Go formatting, in another label set.
        m.add(
            h,
            "1",
            &key("lat", "lat_bucket", &[("le", "1e6"), ("m", "PUT")], "L."),
            1.0,
            0.0,
        )
        .unwrap();
        assert_eq!(
            lines(&m.finish()),
            [
                "lat histogram \"L.\"",
                // The label set comes where its `_sum` came, `_sum` first.
                "  lat_sum{m=GET} 2.5",
                "  lat_bucket{le=0.5,m=GET} 3",
                "  lat_bucket{le=1.0,m=GET} 6",
                "  lat_bucket{le=+Inf,m=GET} 7",
                "  lat_count{m=GET} 7",
                // Buckets only: after the label sets with a `_sum`.
                "  lat_bucket{le=1e+06,m=PUT} 1",
                "  lat_count{m=PUT} 1",
            ]
        );
    }

    #[test]
    fn histogram_count_from_file_is_replaced() {
        let mut m = Merger::new();
        let h = FileKind::Histogram;
        m.add(h, "1", &key("x", "x_bucket", &[("le", "1")], ""), 2.0, 0.0)
            .unwrap();
        m.add(h, "1", &key("x", "x_count", &[], ""), 99.0, 0.0)
            .unwrap();
        m.add(h, "1", &key("y", "y_count", &[], ""), 5.0, 0.0)
            .unwrap();
        assert_eq!(
            lines(&m.finish()),
            [
                "x histogram \"\"",
                // The `_count` entry keeps its place and takes the total.
                "  x_count{} 2",
                "  x_bucket{le=1.0} 2",
                "y histogram \"\"",
                "  y_count{} 5",
            ]
        );
    }

    #[test]
    fn bad_le_is_a_key_error_and_has_no_effect() {
        let mut m = Merger::new();
        let bad = key("x", "x_bucket", &[("le", "big")], "");
        let e = m.resolve(FileKind::Histogram, &bad).unwrap_err();
        assert!(e.reason().contains("le"), "{e}");
        // The same key is fine in a counter file.
        m.resolve(FileKind::Counter, &bad).unwrap();
        assert!(
            m.resolve(FileKind::Counter, &key("", "x", &[], ""))
                .is_err()
        );
        assert!(m.resolve(FileKind::Counter, b"[1]").is_err());
        assert!(m.finish().is_empty(), "resolving alone adds nothing");
    }

    #[test]
    fn python_float_parsing() {
        assert_eq!(parse_python_float(" 1.5\n"), Some(1.5));
        assert_eq!(parse_python_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_python_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_python_float("Infinity"), Some(f64::INFINITY));
        assert!(parse_python_float("NaN").unwrap().is_nan());
        assert_eq!(parse_python_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_python_float("1e+06"), Some(1e6));
        assert_eq!(parse_python_float("1."), Some(1.0));
        assert_eq!(parse_python_float(".5"), Some(0.5));
        for bad in ["", " ", "_1", "1_", "1__0", "0x10", "abc", "1e"] {
            assert_eq!(parse_python_float(bad), None, "{bad:?}");
        }
    }

    fn gauge_merge(mode: GaugeMode, vals: &[(&str, f64, f64)]) -> Vec<String> {
        let mut m = Merger::new();
        let k = key("g", "g", &[("a", "x")], "G.");
        for (pid, v, ts) in vals {
            m.add(FileKind::Gauge(mode), pid, &k, *v, *ts).unwrap();
        }
        let f = m.finish();
        assert_eq!(f[0].gauge_mode, Some(mode));
        lines(&f)[1..].to_vec()
    }

    #[test]
    fn gauge_modes() {
        let vals = [("10", 3.0, 5.0), ("9", 1.0, 7.0), ("2", 2.0, 6.0)];
        for mode in [GaugeMode::All, GaugeMode::LiveAll] {
            assert_eq!(
                gauge_merge(mode, &vals),
                ["  g{a=x,pid=10} 3", "  g{a=x,pid=9} 1", "  g{a=x,pid=2} 2"]
            );
        }
        for (mode, want) in [
            (GaugeMode::Min, "  g{a=x} 1"),
            (GaugeMode::LiveMin, "  g{a=x} 1"),
            (GaugeMode::Max, "  g{a=x} 3"),
            (GaugeMode::LiveMax, "  g{a=x} 3"),
            (GaugeMode::Sum, "  g{a=x} 6"),
            (GaugeMode::LiveSum, "  g{a=x} 6"),
            (GaugeMode::MostRecent, "  g{a=x} 1"),
            (GaugeMode::LiveMostRecent, "  g{a=x} 1"),
        ] {
            assert_eq!(gauge_merge(mode, &vals), [want], "{mode}");
        }
    }

    #[test]
    fn most_recent_needs_strictly_newer_nonzero_timestamps() {
        // All timestamps zero: no sample at all, but the family is there.
        assert!(gauge_merge(GaugeMode::MostRecent, &[("1", 5.0, 0.0), ("2", 6.0, 0.0)]).is_empty());
        // Ties keep the first.
        assert_eq!(
            gauge_merge(GaugeMode::MostRecent, &[("1", 5.0, 3.0), ("2", 6.0, 3.0)]),
            ["  g{a=x} 5"]
        );
        // NaN and negative timestamps never win.
        assert_eq!(
            gauge_merge(
                GaugeMode::LiveMostRecent,
                &[("1", 5.0, 1.0), ("2", 6.0, f64::NAN), ("3", 7.0, -1.0)]
            ),
            ["  g{a=x} 5"]
        );
    }

    #[test]
    fn min_max_nan_like_python() {
        // A first NaN sticks (nothing compares less than it); a later NaN is ignored.
        assert_eq!(
            gauge_merge(
                GaugeMode::Min,
                &[("1", f64::NAN), ("2", 1.0)].map(|(p, v)| (p, v, 0.0))
            ),
            ["  g{a=x} NaN"]
        );
        assert_eq!(
            gauge_merge(
                GaugeMode::Max,
                &[("1", 1.0), ("2", f64::NAN)].map(|(p, v)| (p, v, 0.0))
            ),
            ["  g{a=x} 1"]
        );
        // Sums start from 0.0, as Python's defaultdict(float) does.
        assert_eq!(
            gauge_merge(GaugeMode::Sum, &[("1", -0.0, 0.0)]),
            ["  g{a=x} 0"]
        );
        let mut m = Merger::new();
        m.add(
            FileKind::Counter,
            "1",
            &key("c", "c_total", &[], ""),
            -0.0,
            0.0,
        )
        .unwrap();
        assert!(m.finish()[0].samples[0].value.is_sign_positive());
    }

    #[test]
    fn gauge_pid_label_from_keys() {
        // A `pid` label in the key: replaced by the file's pid in `all` mode,
        // dropped (and merged over) in the reducing modes.
        let mut m = Merger::new();
        let k1 = key("g", "g", &[("pid", "x")], "");
        let k2 = key("g", "g", &[("pid", "y")], "");
        m.add(FileKind::Gauge(GaugeMode::Sum), "1", &k1, 1.0, 0.0)
            .unwrap();
        m.add(FileKind::Gauge(GaugeMode::Sum), "1", &k2, 2.0, 0.0)
            .unwrap();
        assert_eq!(lines(&m.finish())[1..], ["  g{} 3"]);
        let mut m = Merger::new();
        m.add(FileKind::Gauge(GaugeMode::All), "7", &k1, 1.0, 0.0)
            .unwrap();
        assert_eq!(lines(&m.finish())[1..], ["  g{pid=7} 1"]);
    }

    #[test]
    fn mixed_gauge_modes_use_last_file_mode() {
        let k = key("g", "g", &[], "");
        let mut m = Merger::new();
        m.add(FileKind::Gauge(GaugeMode::Max), "1", &k, 5.0, 0.0)
            .unwrap();
        m.add(FileKind::Gauge(GaugeMode::All), "2", &k, 3.0, 0.0)
            .unwrap();
        m.add(FileKind::Gauge(GaugeMode::Sum), "3", &k, 1.0, 0.0)
            .unwrap();
        let notes = m.notes();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("using sum"), "{notes:?}");
        // Python with this file order: pid dropped, everything summed.
        assert_eq!(lines(&m.finish())[1..], ["  g{} 9"]);

        let mut m = Merger::new();
        m.add(FileKind::Gauge(GaugeMode::Max), "1", &k, 5.0, 0.0)
            .unwrap();
        m.add(FileKind::Gauge(GaugeMode::All), "2", &k, 3.0, 0.0)
            .unwrap();
        assert!(m.notes()[0].contains("not reported"));
        // Only the `all` file's value is reported (Python would also report pid 1).
        assert_eq!(lines(&m.finish())[1..], ["  g{pid=2} 3"]);
    }

    #[test]
    fn type_conflicts_first_type_wins() {
        let mut m = Merger::new();
        let k = key("x", "x", &[], "as counter");
        let c = m.resolve(FileKind::Counter, &k).unwrap();
        let r = m.add_file(FileKind::Counter, "1", [(c, 1.0, 0.0)]);
        assert_eq!(r.applied, 1);
        let g = m.resolve(FileKind::Gauge(GaugeMode::Sum), &k).unwrap();
        let r = m.add_file(
            FileKind::Gauge(GaugeMode::Sum),
            "1",
            [(g, 5.0, 0.0), (g, 5.0, 0.0)],
        );
        assert_eq!(r.applied, 0);
        assert_eq!(
            r.conflicts,
            [TypeConflict {
                metric: "x".into(),
                family_kind: FamilyKind::Counter,
                file_kind: FamilyKind::Gauge,
                dropped: 2
            }]
        );
        assert!(r.conflicts[0].to_string().contains("counter"));
        // A key resolved for another kind is ignored, not misapplied.
        let r = m.add_file(FileKind::Counter, "1", [(g, 5.0, 0.0)]);
        assert_eq!(r, FileReport::default());
        let f = m.finish();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FamilyKind::Counter);
        assert_eq!(f[0].samples[0].value, 1.0);
    }

    #[test]
    fn families_and_samples_come_in_first_entry_order() {
        let mut m = Merger::new();
        for (metric, l) in [("b", "2"), ("a", "2"), ("b", "1"), ("a", "10")] {
            m.add(
                FileKind::Counter,
                "1",
                &key(metric, &format!("{metric}_total"), &[("l", l)], ""),
                1.0,
                0.0,
            )
            .unwrap();
        }
        assert_eq!(
            lines(&m.finish()),
            [
                // Families and samples where their first entries came,
                // as in prometheus_client.
                "b counter \"\"",
                "  b_total{l=2} 1",
                "  b_total{l=1} 1",
                "a counter \"\"",
                "  a_total{l=2} 1",
                "  a_total{l=10} 1",
            ]
        );
    }

    #[test]
    fn order_hints_never_change_results() {
        let keys: Vec<Vec<u8>> = (0..5)
            .map(|i| key("c", "c_total", &[("i", &i.to_string())], ""))
            .collect();
        let mut m = Merger::new();
        let orders: [&[usize]; 4] = [&[0, 1, 2, 3, 4], &[4, 3, 2, 1, 0], &[0, 2], &[1, 1, 3, 0]];
        for (f, order) in orders.iter().enumerate() {
            m.start_file();
            let ids: Vec<_> = order
                .iter()
                .map(|&i| (m.resolve(FileKind::Counter, &keys[i]).unwrap(), 1.0, 0.0))
                .collect();
            m.add_file(FileKind::Counter, &f.to_string(), ids);
            // A file abandoned half-way (as the collector does with a corrupt one).
            m.start_file();
            m.resolve(FileKind::Counter, &keys[4]).unwrap();
        }
        let vals: Vec<f64> = m.finish()[0].samples.iter().map(|s| s.value).collect();
        assert_eq!(vals, [4.0, 4.0, 3.0, 3.0, 2.0]);
    }

    #[test]
    fn sequence_hints_never_resolve_a_wrong_key() {
        // Files in repeated, shifted, shuffled and abandoned orders, of two
        // classes sharing raw keys: every resolve must give the key's own id.
        let keys: Vec<Vec<u8>> = (0..40)
            .map(|i| key("m", "m", &[("i", &(i % 20).to_string())], ["", "h"][i / 20]))
            .collect();
        let kinds = [FileKind::Counter, FileKind::Gauge(GaugeMode::Sum)];
        let mut m = Merger::new();
        let mut want: HashMap<(usize, usize), KeyId> = HashMap::new();
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let base: Vec<usize> = (0..40).collect();
        for f in 0..300 {
            let kind = next(2);
            let mut order = base.clone();
            match next(4) {
                0 => {}
                1 => order.rotate_left(next(40)),
                2 => {
                    for i in (1..order.len()).rev() {
                        order.swap(i, next(i + 1));
                    }
                }
                _ => order.retain(|_| next(3) > 0),
            }
            m.start_file();
            let mut ids = Vec::new();
            for &k in &order {
                let id = m.resolve(kinds[kind], &keys[k]).unwrap();
                assert_eq!(*want.entry((kind, k)).or_insert(id), id, "file {f} key {k}");
                ids.push((id, 1.0, 0.0));
            }
            if next(5) > 0 {
                m.add_file(kinds[kind], "1", ids);
            }
        }
    }

    #[test]
    fn packed_sort_keys_order_as_the_fields_do() {
        let bounds = [
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            0.005,
            1.0,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        // (late, group, class, bucket bound or sequence number)
        let mut keys: Vec<(bool, u32, u8, Result<f64, u32>)> = Vec::new();
        for late in [false, true] {
            for grp in [0, 1, 7, u32::MAX] {
                for class in 0..4u8 {
                    for &b in &bounds {
                        keys.push((late, grp, class, Ok(b)));
                    }
                    for seq in [0, 1, 1000, u32::MAX] {
                        keys.push((late, grp, class, Err(seq)));
                    }
                }
            }
        }
        let item = |x: &Result<f64, u32>| match *x {
            Ok(b) => ordered_bits(b),
            Err(seq) => u64::from(seq),
        };
        let key =
            |a: &(bool, u32, u8, Result<f64, u32>)| SortKey::new(group(a.0, a.1), a.2, item(&a.3));
        for a in &keys {
            for b in &keys {
                let fields = a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2));
                let fields = match (&a.3, &b.3) {
                    (Ok(x), Ok(y)) => fields.then(x.total_cmp(y)),
                    (Err(x), Err(y)) => fields.then(x.cmp(y)),
                    // Never compared within one family.
                    _ => continue,
                };
                assert_eq!(key(a).cmp(&key(b)), fields, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn keys_are_parsed_once_per_class() {
        let mut m = Merger::new();
        let k = key("x", "x", &[], "");
        let a = m.resolve(FileKind::Counter, &k).unwrap();
        let b = m.resolve(FileKind::Summary, &k).unwrap();
        let c = m.resolve(FileKind::Gauge(GaugeMode::All), &k).unwrap();
        let d = m.resolve(FileKind::Gauge(GaugeMode::Max), &k).unwrap();
        assert_eq!(a, b);
        assert_eq!(c, d);
        assert_ne!(a, c);
        assert_eq!(m.templates.len(), 2);
    }
}
