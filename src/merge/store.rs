//! What the merge accumulates: interned names and label sets, families, and one table per kind of series, updated entry by entry.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use super::hash::FxBuild;
use super::keys::{Class, Target, Template};
use super::table::{
    BucketId, FamilyId, FullId, GaugeId, HistId, LabelSetId, PidId, PidSlotId, PlainId, Table,
};
use super::{FamilyKind, KeyError, Position};
use crate::format::key::{KeyRef, decode_key_ref};
use crate::format::naming::GaugeMode;

/// Label pairs of interned strings, sorted by name.
pub(super) type LabelSet = Arc<[(Arc<str>, Arc<str>)]>;

/// Interned strings and label sets.
#[derive(Debug, Default)]
pub(super) struct Names {
    strings: HashSet<Arc<str>, FxBuild>,
    /// Label sets by the addresses of their (interned) strings.
    labelsets: Table<Box<[usize]>, LabelSetId, LabelSet>,
    /// Scratch for `labelset`.
    addrs: Vec<usize>,
}

impl Names {
    pub(super) fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(a.clone());
        a
    }

    /// The interned string equal to `s`, if any.
    pub(super) fn interned(&self, s: &str) -> Option<&Arc<str>> {
        self.strings.get(s)
    }

    /// The id of a label set of interned strings. Interned strings are
    /// equal exactly when their addresses are (the merger keeps them alive),
    /// so sets are looked up by addresses, without hashing their text.
    pub(super) fn labelset(&mut self, pairs: &[(Arc<str>, Arc<str>)]) -> LabelSetId {
        self.addrs.clear();
        for (n, v) in pairs {
            self.addrs.push(addr(n));
            self.addrs.push(addr(v));
        }
        if let Some(id) = self.labelsets.get(&self.addrs[..]) {
            return id;
        }
        let key: Box<[usize]> = self.addrs.as_slice().into();
        self.labelsets.intern(key, || Arc::from(pairs)).0
    }

    /// The label pairs of a label set.
    pub(super) fn pairs(&self, id: LabelSetId) -> &[(Arc<str>, Arc<str>)] {
        &self.labelsets[id]
    }
}

/// The address of an interned string: its identity within one merger.
pub(super) fn addr(s: &Arc<str>) -> usize {
    Arc::as_ptr(s).cast::<u8>() as usize
}

#[derive(Debug)]
pub(super) struct FamilyState {
    pub name: Arc<str>,
    pub help: Arc<str>,
    pub kind: Option<FamilyKind>,
    /// Gauges: the mode of the last file that contributed.
    pub mode: Option<GaugeMode>,
    /// Gauges: one bit per mode seen (`GaugeMode as u16`).
    pub modes_seen: u16,
    /// The help text of the last key parsed for this family (keys of one
    /// family nearly always share it: no need to hash it again).
    key_help: Option<Arc<str>>,
    /// The sample name of the family's first key, and whether its keys
    /// have other sample names too (then several series share a label set,
    /// and finding the first of each label set needs a map).
    sample: Option<Arc<str>>,
    pub many_samples: bool,
    /// Where the first entry of the family was applied.
    pub first: Position,
}

/// A counter, summary, info or state-set series, or a histogram's `_sum`
/// (or other non-bucket) series.
#[derive(Debug)]
pub(super) struct PlainSeries {
    pub family: FamilyId,
    pub sample: Arc<str>,
    pub labels: LabelSetId,
    pub value: f64,
    /// State sets: the timestamp of `value`.
    ts: f64,
    pub seen: bool,
    /// The sequence number of the first entry applied.
    pub first: u32,
}

impl PlainSeries {
    #[inline]
    fn add(&mut self, kind: FamilyKind, value: f64, ts: f64, seq: u32) {
        match kind {
            FamilyKind::Info => {
                if !self.seen || value > self.value {
                    self.value = value;
                }
            }
            FamilyKind::StateSet => {
                let ts = if ts.is_nan() { f64::NEG_INFINITY } else { ts };
                if !self.seen || ts > self.ts || (ts == self.ts && value > self.value) {
                    self.value = value;
                    self.ts = ts;
                }
            }
            _ => self.value += value,
        }
        if !self.seen {
            self.first = seq;
        }
        self.seen = true;
    }
}

/// A histogram label set (without `le`).
#[derive(Debug)]
pub(super) struct HistSet {
    pub family: FamilyId,
    pub labels: LabelSetId,
}

#[derive(Debug)]
pub(super) struct BucketSlot {
    pub hist: HistId,
    /// The bound as first seen (so `-0.0` vs `0.0` prints as Python would).
    pub bound: f64,
    pub value: f64,
    pub seen: bool,
    /// The sequence number of the first entry applied.
    pub first: u32,
}

/// A gauge series without `pid`, with every statistic a mode may need, so
/// that the mode can be decided at the end.
#[derive(Debug)]
pub(super) struct GaugeStats {
    pub family: FamilyId,
    pub sample: Arc<str>,
    pub labels: LabelSetId,
    pub seen: bool,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    recent_ts: f64,
    pub recent: Option<f64>,
    /// Sequence numbers of the first entry applied, and of the first that
    /// set `recent`.
    pub first: u32,
    pub first_recent: u32,
}

impl GaugeStats {
    #[inline]
    fn add(&mut self, value: f64, ts: f64, seq: u32) {
        if self.seen {
            if value < self.min {
                self.min = value;
            }
            if value > self.max {
                self.max = value;
            }
        } else {
            self.seen = true;
            self.min = value;
            self.max = value;
            self.first = seq;
        }
        self.sum += value;
        // Python: replace only when strictly newer, starting from 0.0.
        if self.recent_ts < ts {
            if self.recent.is_none() {
                self.first_recent = seq;
            }
            self.recent_ts = ts;
            self.recent = Some(value);
        }
    }
}

/// A gauge series with its complete label set (for `all` modes).
#[derive(Debug)]
pub(super) struct FullSeries {
    pub stats: GaugeId,
    pub labels: LabelSetId,
}

/// One process's value of a gauge series.
#[derive(Debug)]
pub(super) struct PidSlot {
    pub full: FullId,
    pub pid: PidId,
    pub value: f64,
    /// The sequence number of the first entry applied.
    pub first: u32,
}

/// Context for the entries of one file.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileCtx {
    /// The file's index (see [`Merger::set_file_index`](super::Merger::set_file_index)).
    pub file: u32,
    pub class: Class,
    pub kind: FamilyKind,
    pub mode: Option<GaugeMode>,
    /// For `all`/`liveall` gauges, the writer's process.
    pub pid: Option<PidId>,
}

/// Everything merged so far.
#[derive(Debug, Default)]
pub(super) struct Store {
    pub names: Names,
    /// The family of the last key parsed.
    last_family: Option<FamilyId>,
    pub families: Table<Arc<str>, FamilyId, FamilyState>,
    /// By family, address of the (interned) sample name, label set.
    pub plain: Table<(FamilyId, usize, LabelSetId), PlainId, PlainSeries>,
    pub hists: Table<(FamilyId, LabelSetId), HistId, HistSet>,
    pub buckets: Table<(HistId, u64), BucketId, BucketSlot>,
    /// As `plain`.
    pub gauges: Table<(FamilyId, usize, LabelSetId), GaugeId, GaugeStats>,
    pub gauge_full: Table<(GaugeId, LabelSetId), FullId, FullSeries>,
    pub pids: Table<Arc<str>, PidId, Arc<str>>,
    pub pid_slots: Table<(FullId, PidId), PidSlotId, PidSlot>,
}

impl Store {
    /// Parses a key of class `class` and interns what it names: its family,
    /// help text and series.
    pub(super) fn make_target(
        &mut self,
        class: Class,
        raw: &[u8],
    ) -> Result<(FamilyId, Arc<str>, Target), KeyError> {
        let k = decode_key_ref(raw).map_err(KeyError)?;
        if k.metric.is_empty() {
            return Err(KeyError("empty metric name".into()));
        }
        // Validate before interning anything.
        let le_bound = bucket_bound(class, &k)?;
        let family = self.family_id(&k.metric);
        let help = self.key_help(family, &k.help);
        let sample = self.names.intern(&k.sample);
        let mut pairs: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(k.labels.len() + 1);
        for (n, v) in &k.labels {
            pairs.push((self.names.intern(n), self.names.intern(v)));
        }
        let target = match (class, le_bound) {
            (_, Some(bound)) => self.bucket_target(family, pairs, bound),
            (Class::Gauge, None) => {
                self.note_sample(family, &sample);
                self.gauge_target(family, sample, pairs)
            }
            (Class::Plain | Class::Histogram, None) => {
                self.note_sample(family, &sample);
                let ls = self.names.labelset(&pairs);
                Target::Plain(self.plain_id(family, sample, ls))
            }
        };
        Ok((family, help, target))
    }

    fn family_id(&mut self, name: &str) -> FamilyId {
        // Keys are mostly first seen family by family.
        if let Some(last) = self.last_family
            && *self.families[last].name == *name
        {
            return last;
        }
        let id = match self.families.get(name) {
            Some(id) => id,
            None => {
                let name = self.names.intern(name);
                let state = FamilyState {
                    name: name.clone(),
                    help: Arc::from(""),
                    kind: None,
                    mode: None,
                    modes_seen: 0,
                    key_help: None,
                    sample: None,
                    many_samples: false,
                    first: Position::default(),
                };
                self.families.intern(name, || state).0
            }
        };
        self.last_family = Some(id);
        id
    }

    /// The interned help text `help` of a key of `family`.
    fn key_help(&mut self, family: FamilyId, help: &str) -> Arc<str> {
        match &self.families[family].key_help {
            Some(h) if **h == *help => h.clone(),
            _ => {
                let h = self.names.intern(help);
                self.families[family].key_help = Some(h.clone());
                h
            }
        }
    }

    /// Records that `family` has a key with the sample name `sample` (not a
    /// histogram bucket).
    fn note_sample(&mut self, family: FamilyId, sample: &Arc<str>) {
        let f = &mut self.families[family];
        match &f.sample {
            None => f.sample = Some(sample.clone()),
            Some(s) if !Arc::ptr_eq(s, sample) => f.many_samples = true,
            Some(_) => {}
        }
    }

    fn plain_id(&mut self, family: FamilyId, sample: Arc<str>, labels: LabelSetId) -> PlainId {
        let key = (family, addr(&sample), labels);
        let series = || PlainSeries {
            family,
            sample,
            labels,
            value: 0.0,
            ts: 0.0,
            seen: false,
            first: 0,
        };
        self.plain.intern(key, series).0
    }

    fn bucket_target(
        &mut self,
        family: FamilyId,
        mut pairs: Vec<(Arc<str>, Arc<str>)>,
        bound: f64,
    ) -> Target {
        pairs.retain(|(n, _)| &**n != "le");
        let labels = self.names.labelset(&pairs);
        let (hist, _) = self
            .hists
            .intern((family, labels), || HistSet { family, labels });
        // -0.0 and 0.0 are one bucket, as in a Python dict.
        let bits = if bound == 0.0 { 0 } else { bound.to_bits() };
        let slot = || BucketSlot {
            hist,
            bound,
            value: 0.0,
            seen: false,
            first: 0,
        };
        Target::Bucket(self.buckets.intern((hist, bits), slot).0)
    }

    fn gauge_target(
        &mut self,
        family: FamilyId,
        sample: Arc<str>,
        mut pairs: Vec<(Arc<str>, Arc<str>)>,
    ) -> Target {
        let full_ls = self.names.labelset(&pairs);
        pairs.retain(|(n, _)| &**n != "pid");
        let labels = self.names.labelset(&pairs);
        let key = (family, addr(&sample), labels);
        let stats = || GaugeStats {
            family,
            sample,
            labels,
            seen: false,
            sum: 0.0,
            min: 0.0,
            max: 0.0,
            recent_ts: 0.0,
            recent: None,
            first: 0,
            first_recent: 0,
        };
        let (stats, _) = self.gauges.intern(key, stats);
        let full = || FullSeries {
            stats,
            labels: full_ls,
        };
        let (full, _) = self.gauge_full.intern((stats, full_ls), full);
        Target::Gauge { stats, full }
    }

    /// Forgets every applied value, keeping what was interned (names,
    /// label sets, series, templates' targets): as if the keys had been
    /// resolved but no entry applied. Per-process gauge values are
    /// dropped (they are made when applied).
    pub(super) fn reset_values(&mut self) {
        for f in self.families.rows_mut() {
            f.kind = None;
            f.help = Arc::from("");
            f.mode = None;
            f.modes_seen = 0;
            f.first = Position::default();
        }
        for p in self.plain.rows_mut() {
            p.value = 0.0;
            p.ts = 0.0;
            p.seen = false;
            p.first = 0;
        }
        for b in self.buckets.rows_mut() {
            b.value = 0.0;
            b.seen = false;
            b.first = 0;
        }
        for g in self.gauges.rows_mut() {
            g.seen = false;
            g.sum = 0.0;
            g.min = 0.0;
            g.max = 0.0;
            g.recent_ts = 0.0;
            g.recent = None;
            g.first = 0;
            g.first_recent = 0;
        }
        self.pid_slots.clear();
    }

    #[cfg(test)]
    /// The number of series interned (every kind), a measure of the
    /// memory a kept merger holds.
    pub(super) fn series(&self) -> usize {
        self.plain.len() + self.buckets.len() + self.gauges.len() + self.gauge_full.len()
    }

    /// The id of a process identifier.
    pub(super) fn pid_id(&mut self, pid: &str) -> PidId {
        match self.pids.get(pid) {
            Some(id) => id,
            None => {
                let pid: Arc<str> = Arc::from(pid);
                self.pids.intern(pid.clone(), || pid).0
            }
        }
    }

    /// Applies one entry of key `tpl`, the `seq`th applied. `Ok(false)`:
    /// ignored (a gauge key in another file); `Err(kind)`: type conflict with
    /// a family of type `kind`.
    #[inline]
    pub(super) fn apply(
        &mut self,
        ctx: &FileCtx,
        tpl: &Template,
        value: f64,
        ts: f64,
        seq: u32,
    ) -> Result<bool, FamilyKind> {
        let fam = &mut self.families[tpl.family];
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
            Target::Plain(s) => self.plain[s].add(ctx.kind, value, ts, seq),
            Target::Bucket(b) => {
                let b = &mut self.buckets[b];
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
                self.gauges[stats].add(value, ts, seq);
                if let Some(pid) = ctx.pid {
                    self.set_pid_value(full, pid, value, seq);
                }
            }
        }
        Ok(true)
    }

    #[inline]
    fn set_pid_value(&mut self, full: FullId, pid: PidId, value: f64, seq: u32) {
        let slot = || PidSlot {
            full,
            pid,
            value,
            first: seq,
        };
        let (slot, new) = self.pid_slots.intern((full, pid), slot);
        if !new {
            self.pid_slots[slot].value = value;
        }
    }
}

/// The bound of a histogram bucket key (one with an `le` label), parsed as
/// Python's `float` parses it; `None` for other keys.
fn bucket_bound(class: Class, k: &KeyRef<'_>) -> Result<Option<f64>, KeyError> {
    if class != Class::Histogram {
        return Ok(None);
    }
    match k.labels.iter().find(|(n, _)| n == "le") {
        Some((_, v)) => parse_python_float(v)
            .map(Some)
            .ok_or_else(|| KeyError(format!("bucket bound le={v:?} is not a number"))),
        None => Ok(None),
    }
}

/// Parses a number as Python's `float(str)` does (surrounding whitespace,
/// `inf`/`nan` in any case, `_` between digits).
pub(super) fn parse_python_float(s: &str) -> Option<f64> {
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
}
