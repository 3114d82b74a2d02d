//! Folding the entries of many files of one kind into the entries of one archive: exact sums, or the value the merge rule would pick.

use std::collections::HashMap;

use super::fsum::ExactSum;
use crate::format::build_file;
use crate::format::naming::{FileKind, GaugeMode};

/// How the values of one key in files of a kind combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Summed (counters, histograms, summaries, `sum` gauges): kept exact.
    Sum,
    /// The smallest value (`min` gauges).
    Min,
    /// The largest value (`max` gauges).
    Max,
    /// The value with the greatest timestamp (`mostrecent` gauges).
    MostRecent,
}

impl Rule {
    /// The rule of a kind whose dead workers' files are folded; `None` for
    /// the others (`all` and `live*` gauges, info, state sets).
    pub(crate) fn of(kind: FileKind) -> Option<Rule> {
        match kind {
            FileKind::Counter | FileKind::Histogram | FileKind::Summary => Some(Rule::Sum),
            FileKind::Gauge(GaugeMode::Sum) => Some(Rule::Sum),
            FileKind::Gauge(GaugeMode::Min) => Some(Rule::Min),
            FileKind::Gauge(GaugeMode::Max) => Some(Rule::Max),
            FileKind::Gauge(GaugeMode::MostRecent) => Some(Rule::MostRecent),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Acc {
    Sum(ExactSum),
    /// The value picked so far, and its timestamp.
    Pick(f64, f64),
}

/// The folded entries of one kind, per raw key, in the order keys were
/// first met.
pub(crate) struct Fold {
    rule: Rule,
    index: HashMap<Vec<u8>, usize>,
    accs: Vec<(Vec<u8>, Acc)>,
}

impl Fold {
    pub(crate) fn new(rule: Rule) -> Fold {
        Fold {
            rule,
            index: HashMap::new(),
            accs: Vec::new(),
        }
    }

    /// Folds in one entry. Files are folded in order; as in
    /// prometheus_client's merge, a later value replaces the kept one only
    /// if strictly smaller (min), larger (max) or more recent (mostrecent).
    pub(crate) fn add(&mut self, key: &[u8], value: f64, ts: f64) {
        let Some(&i) = self.index.get(key) else {
            self.index.insert(key.to_vec(), self.accs.len());
            let acc = match self.rule {
                Rule::Sum => {
                    let mut s = ExactSum::default();
                    s.add(value);
                    Acc::Sum(s)
                }
                _ => Acc::Pick(value, ts),
            };
            self.accs.push((key.to_vec(), acc));
            return;
        };
        let rule = self.rule;
        match &mut self.accs[i].1 {
            Acc::Sum(s) => s.add(value),
            Acc::Pick(v, t) => {
                let take = match rule {
                    Rule::Min => value < *v,
                    Rule::Max => value > *v,
                    Rule::MostRecent => ts > *t,
                    Rule::Sum => false,
                };
                if take {
                    (*v, *t) = (value, ts);
                }
            }
        }
    }

    /// Folds in everything of `other` (folded after `self`'s files).
    pub(crate) fn add_all(&mut self, other: Fold) {
        for (key, acc) in other.accs {
            match acc {
                Acc::Sum(s) => s.parts().into_iter().for_each(|p| self.add(&key, p, 0.0)),
                Acc::Pick(v, t) => self.add(&key, v, t),
            }
        }
    }

    /// The archive's bytes: every key with the parts of its exact sum (a
    /// zero sum is kept as one `0.0` entry, so the series stays), or its
    /// picked value and timestamp.
    pub(crate) fn image(&self) -> Vec<u8> {
        let mut entries = Vec::new();
        for (key, acc) in &self.accs {
            let key = key.as_slice();
            match acc {
                Acc::Sum(s) => {
                    let parts = s.parts();
                    if parts.is_empty() {
                        entries.push((key, 0.0, 0.0));
                    }
                    entries.extend(parts.into_iter().map(|p| (key, p, 0.0)));
                }
                Acc::Pick(v, t) => entries.push((key, *v, *t)),
            }
        }
        build_file(&entries, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Entries;

    fn folded(rule: Rule, entries: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let mut f = Fold::new(rule);
        entries.iter().for_each(|&(v, t)| f.add(b"k", v, t));
        let img = f.image();
        Entries::new(&img)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.value, e.timestamp))
            .collect()
    }

    #[test]
    fn each_rule_keeps_what_the_merge_would_take() {
        let es = [(3.0, 10.0), (1.0, 30.0), (5.0, 20.0), (1.0, 30.0)];
        assert_eq!(folded(Rule::Min, &es), [(1.0, 30.0)]);
        assert_eq!(folded(Rule::Max, &es), [(5.0, 20.0)]);
        assert_eq!(folded(Rule::MostRecent, &es), [(1.0, 30.0)]);
        assert_eq!(folded(Rule::Sum, &es), [(10.0, 0.0)]);
        assert_eq!(folded(Rule::Sum, &[(1.0, 0.0), (-1.0, 0.0)]), [(0.0, 0.0)]);
        // An inexact sum is stored as parts whose exact sum it is.
        let parts = folded(Rule::Sum, &[(1.0, 0.0), (1e-30, 0.0)]);
        assert_eq!(parts, [(1e-30, 0.0), (1.0, 0.0)]);
    }
}
