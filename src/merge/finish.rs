//! From accumulated series to families, in prometheus_client's order: one emitter per kind of series, then one sort per family.
//!
//! prometheus_client's `_accumulate_metrics` puts each metric's samples into
//! a dict of groups (keyed by label set) of dicts (keyed by sample name and
//! labels), both in insertion order: a group and a sample come where their
//! first entry came. Each output sample gets a [`SortKey`] built from the
//! sequence numbers of first entries to the same effect.

use std::hash::Hash;
use std::sync::Arc;

use super::hash::FxMap;
use super::store::{GaugeStats, PidSlot, Store, addr};
use super::table::{BucketId, FamilyId, HistId, Id, LabelSetId, PidId};
use super::{Family, FamilyKind, Position, Sample};
use crate::format::key::push_float_to_go_string;
use crate::format::naming::GaugeMode;

/// The families of `store`, in the order of their first entries, each with
/// where that entry was.
pub(super) fn families(store: &Store) -> Vec<(Family, Position)> {
    let mut out = Output::new(store);
    let hist = emit_buckets(store, &mut out);
    emit_plain(store, &hist, &mut out);
    emit_counts(store, &hist, &mut out);
    emit_gauges(store, &mut out);
    emit_pid_gauges(store, &mut out);
    out.build(store)
}

/// An output sample before sorting: its label set, plus `le` or `pid`.
struct Pending {
    name: Arc<str>,
    labels: LabelSetId,
    extra: Option<(Arc<str>, Arc<str>)>,
    value: f64,
}

/// A family being built.
struct Building {
    family: Family,
    /// Where its first entry was applied.
    first: Position,
    /// Its samples before sorting.
    pending: Vec<(SortKey, Pending)>,
}

/// Families being built, per family id (`None`: no entry applied).
struct Output {
    families: Vec<Option<Building>>,
}

impl Output {
    fn new(s: &Store) -> Output {
        let most = most_samples(s);
        let families = s
            .families
            .rows()
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
                Some(Building {
                    family,
                    first: f.first,
                    pending: Vec::with_capacity(most),
                })
            })
            .collect();
        Output { families }
    }

    fn push(&mut self, fam: FamilyId, key: SortKey, sample: Pending) {
        if let Some(b) = &mut self.families[fam.index()] {
            b.pending.push((key, sample));
        }
    }

    /// Sorts each family's samples and builds them (in output order, so
    /// that their label vectors are allocated in sequence and encoding
    /// reads memory in order), and the families by first entry.
    fn build(self, s: &Store) -> Vec<(Family, Position)> {
        let mut result: Vec<(Family, Position)> = self
            .families
            .into_iter()
            .flatten()
            .map(|mut b| {
                b.family.samples = sorted_samples(b.pending, s);
                (b.family, b.first)
            })
            .collect();
        result.sort_by_key(|(_, first)| *first);
        result
    }
}

/// At most this many samples per family: sized once, the sample vectors
/// are not grown (and copied) step by step.
fn most_samples(s: &Store) -> Vec<usize> {
    let mut most = vec![0usize; s.families.len()];
    for b in s.buckets.rows().iter().filter(|b| b.seen) {
        most[s.hists[b.hist].family.index()] += 1;
    }
    for h in s.hists.rows() {
        most[h.family.index()] += 1; // `_count`
    }
    for p in s.plain.rows().iter().filter(|p| p.seen) {
        most[p.family.index()] += 1;
    }
    for g in s.gauges.rows().iter().filter(|g| g.seen) {
        most[g.family.index()] += 1;
    }
    for p in s.pid_slots.rows() {
        most[s.gauges[s.gauge_full[p.full].stats].family.index()] += 1;
    }
    most
}

/// The samples of one family in sort key order.
fn sorted_samples(pending: Vec<(SortKey, Pending)>, s: &Store) -> Vec<Sample> {
    // Sort (key, index) pairs: the index breaks ties, so the order is that
    // of a stable sort, and deterministic.
    let mut order: Vec<(SortKey, u32)> = pending.iter().zip(0..).map(|(p, i)| (p.0, i)).collect();
    order.sort_unstable();
    let mut pending: Vec<Option<Pending>> = pending.into_iter().map(|(_, p)| Some(p)).collect();
    order
        .iter()
        .map(|&(_, i)| {
            // UNWRAP: `order` holds each index of `pending` exactly once.
            let p = pending[i as usize].take().expect("each index once");
            let base = s.names.pairs(p.labels);
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

/// The smallest first sequence number per key.
fn firsts<K: Hash + Eq>(items: impl Iterator<Item = (K, u32)>) -> FxMap<K, u32> {
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
pub(super) fn group(late: bool, first: u32) -> u64 {
    (u64::from(late) << 32) | u64::from(first)
}

/// Sort key of an output sample within its family, packed into one
/// integer (sorting thousands of per-process samples compares integers
/// only). From the high bits: the `group` of its label set (33 bits, see
/// [`group`]), a `class` (2 bits: histograms put `_sum` and other
/// non-bucket samples, then buckets, then a computed `_count`), and an
/// `item` (64 bits: the sequence number of the sample's first entry, or a
/// bucket's bound in [`ordered_bits`] form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SortKey(u128);

impl SortKey {
    pub(super) fn new(group: u64, class: u8, item: u64) -> Self {
        debug_assert!(class < 4 && group < 1 << 33);
        SortKey((u128::from(group) << 66) | (u128::from(class & 3) << 64) | u128::from(item))
    }
}

/// `f64::total_cmp`'s order as an unsigned integer.
pub(super) fn ordered_bits(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// What [`emit_buckets`] leaves for the `_sum`, `_count` and other
/// histogram samples.
struct HistOut {
    /// First entry of each (family, label set) among the non-bucket series
    /// of histograms and of families with several sample names.
    plain_groups: FxMap<(FamilyId, LabelSetId), u32>,
    /// Per histogram label set with buckets: the total, and the sort key
    /// group of the label set.
    totals: Vec<Option<(f64, u64)>>,
    /// `<name>_count` of each histogram family with buckets (the interned
    /// string if some key has that sample name).
    count_names: FxMap<FamilyId, Arc<str>>,
}

impl HistOut {
    /// The bucket total of histogram label set `h`, and its group.
    fn total(&self, h: HistId) -> Option<(f64, u64)> {
        self.totals[h.index()]
    }
}

/// Histogram buckets: per label set, sorted by bound, cumulated. A label
/// set comes where its first `_sum` (or other non-bucket) entry came, or,
/// without one, after all those, where its first bucket came.
fn emit_buckets(s: &Store, out: &mut Output) -> HistOut {
    let plain_groups = firsts(
        s.plain
            .rows()
            .iter()
            .filter(|p| {
                let f = &s.families[p.family];
                p.seen && (f.many_samples || f.kind == Some(FamilyKind::Histogram))
            })
            .map(|p| ((p.family, p.labels), p.first)),
    );
    let mut per_hist: Vec<Vec<BucketId>> = vec![Vec::new(); s.hists.len()];
    for (i, b) in s.buckets.iter() {
        if b.seen {
            per_hist[b.hist.index()].push(i);
        }
    }
    let mut totals = vec![None; s.hists.len()];
    let mut count_names = FxMap::default();
    let mut les = LeValues::default();
    for ((h, set), slots) in s.hists.iter().zip(&mut per_hist) {
        if slots.is_empty() {
            continue;
        }
        let name = &s.families[set.family].name;
        let bucket_name: Arc<str> = Arc::from(format!("{name}_bucket"));
        count_names.entry(set.family).or_insert_with(|| {
            let n = format!("{name}_count");
            s.names.interned(&n).cloned().unwrap_or_else(|| n.into())
        });
        let bucket = |i: &BucketId| &s.buckets[*i];
        let grp = match plain_groups.get(&(set.family, set.labels)) {
            Some(&first) => group(false, first),
            None => group(
                true,
                slots.iter().map(|i| bucket(i).first).min().unwrap_or(0),
            ),
        };
        slots.sort_by(|a, b| bucket(a).bound.total_cmp(&bucket(b).bound));
        let mut acc = 0.0;
        for b in slots.iter().map(bucket) {
            acc += b.value;
            out.push(
                set.family,
                SortKey::new(grp, 1, ordered_bits(b.bound)),
                Pending {
                    name: bucket_name.clone(),
                    labels: set.labels,
                    extra: Some(les.get(b.bound)),
                    value: acc,
                },
            );
        }
        totals[h.index()] = Some((acc, grp));
    }
    HistOut {
        plain_groups,
        totals,
        count_names,
    }
}

/// `le="…"` label pairs: one string per distinct bound, shared by every
/// bucket with it.
#[derive(Default)]
struct LeValues {
    le: Option<Arc<str>>,
    values: FxMap<u64, Arc<str>>,
    go: String,
}

impl LeValues {
    fn get(&mut self, bound: f64) -> (Arc<str>, Arc<str>) {
        let le = self.le.get_or_insert_with(|| Arc::from("le")).clone();
        let go = &mut self.go;
        let value = self.values.entry(bound.to_bits()).or_insert_with(|| {
            go.clear();
            push_float_to_go_string(go, bound);
            Arc::from(go.as_str())
        });
        (le, value.clone())
    }
}

/// Counters, summaries, info, state sets, and histograms' non-bucket
/// samples. A histogram's `<name>_count` entry, where the label set has
/// buckets, keeps its place and takes the total of the buckets.
fn emit_plain(s: &Store, hist: &HistOut, out: &mut Output) {
    for p in s.plain.rows().iter().filter(|p| p.seen) {
        let fam = &s.families[p.family];
        // Info: label sets that no process has any more.
        if fam.kind == Some(FamilyKind::Info) && (p.value.is_nan() || p.value <= 0.0) {
            continue;
        }
        let mut value = p.value;
        if fam.kind == Some(FamilyKind::Histogram)
            && hist
                .count_names
                .get(&p.family)
                .is_some_and(|c| Arc::ptr_eq(c, &p.sample))
            && let Some(h) = s.hists.get(&(p.family, p.labels))
            && let Some((total, _)) = hist.total(h)
        {
            value = total;
        }
        let first = match hist.plain_groups.get(&(p.family, p.labels)) {
            Some(&g) => g,
            None => p.first,
        };
        out.push(
            p.family,
            SortKey::new(group(false, first), 0, u64::from(p.first)),
            Pending {
                name: p.sample.clone(),
                labels: p.labels,
                extra: None,
                value,
            },
        );
    }
}

/// `<name>_count` of each histogram label set with buckets and no
/// `_count` entry of its own: after the buckets.
fn emit_counts(s: &Store, hist: &HistOut, out: &mut Output) {
    for (h, set) in s.hists.iter() {
        let Some((total, grp)) = hist.total(h) else {
            continue;
        };
        let Some(count) = hist.count_names.get(&set.family) else {
            continue;
        };
        let own = s
            .plain
            .get(&(set.family, addr(count), set.labels))
            .is_some_and(|p| s.plain[p].seen);
        if own {
            continue;
        }
        out.push(
            set.family,
            SortKey::new(grp, 2, 0),
            Pending {
                name: count.clone(),
                labels: set.labels,
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
fn emit_gauges(s: &Store, out: &mut Output) {
    let mode_of = |g: &GaugeStats| s.families[g.family].mode;
    let groups = firsts(
        s.gauges
            .rows()
            .iter()
            .filter(|g| g.seen && s.families[g.family].many_samples)
            .filter_map(|g| {
                let (_, first) = gauge_value(g, mode_of(g)?)?;
                Some(((g.family, g.labels), first))
            }),
    );
    for g in s.gauges.rows().iter().filter(|g| g.seen) {
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
fn emit_pid_gauges(s: &Store, out: &mut Output) {
    let keeps_pid = |fam: FamilyId| s.families[fam].mode.is_some_and(GaugeMode::keeps_pid);
    let series = |p: &PidSlot| {
        let full = &s.gauge_full[p.full];
        (&s.gauges[full.stats], full.labels)
    };
    let groups: FxMap<(FamilyId, LabelSetId, PidId), u32> =
        firsts(s.pid_slots.rows().iter().filter_map(|p| {
            let (g, full_ls) = series(p);
            let many = s.families[g.family].many_samples;
            (many && keeps_pid(g.family)).then_some(((g.family, full_ls, p.pid), p.first))
        }));
    let pid_label: Arc<str> = Arc::from("pid");
    for p in s.pid_slots.rows() {
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
                extra: Some((pid_label.clone(), s.pids[p.pid].clone())),
                value: p.value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
