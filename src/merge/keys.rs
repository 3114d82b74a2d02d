//! Raw keys to parsed templates: one cache per key class, and sequence hints that find most keys without hashing them.

use std::sync::Arc;

use super::hash::FxMap;
use super::store::Store;
use super::table::{BucketId, FamilyId, FullId, GaugeId, PlainId};
use super::{KeyError, KeyId};
use crate::format::naming::FileKind;

/// Key classes: keys are parsed differently per class, so each has its own
/// cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Counters, summaries (summed), info (max), state sets (most recent).
    Plain = 0,
    /// Histograms: `le` entries are buckets.
    Histogram = 1,
    /// Gauges: `pid` is dropped from the series identity.
    Gauge = 2,
}

impl Class {
    pub(super) fn of(kind: FileKind) -> Class {
        match kind {
            FileKind::Histogram => Class::Histogram,
            FileKind::Gauge(_) => Class::Gauge,
            _ => Class::Plain,
        }
    }
}

/// The series an entry updates.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Plain(PlainId),
    Bucket(BucketId),
    /// The series without `pid`, and with its complete label set (for
    /// `all` modes).
    Gauge {
        stats: GaugeId,
        full: FullId,
    },
}

/// A parsed key.
#[derive(Debug)]
pub(super) struct Template {
    /// The raw key, to check sequence hints without hashing.
    raw: Arc<[u8]>,
    pub family: FamilyId,
    pub class: Class,
    pub help: Arc<str>,
    pub target: Target,
}

/// Sequence hints: files written by the same code list many keys in the
/// same sequence (all of them when workers create their series in the same
/// order, and a histogram's `_sum` and buckets, or a summary's `_count` and
/// `_sum`, always). Before hashing a key, [`Keys::resolve`] compares it with
/// the predicted one.
#[derive(Debug, Default)]
struct Hints {
    /// `succ[t]`: the key that followed key `t` the last time `t` was
    /// resolved.
    succ: Vec<Option<KeyId>>,
    /// Per class: the first key of the last file.
    first: [Option<KeyId>; 3],
    /// Per class: the key resolved last in the current file.
    prev: [Option<KeyId>; 3],
    /// Per class: keys resolved in the current file since the last correct
    /// prediction. After two misses in a row (a file in an order of its
    /// own), only every 16th key is predicted, so that such files do not
    /// pay a wasted comparison per key.
    misses: [u32; 3],
}

impl Hints {
    /// The predicted key of class `c`, if it is `raw`.
    #[inline]
    fn predict(&mut self, c: Class, raw: &[u8], templates: &[Template]) -> Option<KeyId> {
        let i = c as usize;
        let misses = self.misses[i];
        if misses < 2 || misses.is_multiple_of(16) {
            let guess = match self.prev[i] {
                None => self.first[i],
                Some(prev) => self.succ[prev.index()],
            };
            if let Some(guess) = guess
                && let Some(tpl) = templates.get(guess.index())
                && *tpl.raw == *raw
                && tpl.class == c
            {
                self.prev[i] = Some(guess);
                self.misses[i] = 0;
                return Some(guess);
            }
        }
        self.misses[i] = misses.wrapping_add(1);
        None
    }

    /// Records that `t` was resolved (not predicted) as the next key of
    /// class `c`.
    #[inline]
    fn record(&mut self, c: Class, t: KeyId) {
        let i = c as usize;
        match self.prev[i] {
            None => self.first[i] = Some(t),
            Some(prev) => self.succ[prev.index()] = Some(t),
        }
        self.prev[i] = Some(t);
    }
}

/// The parsed keys.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// Per class: raw key to template (the bytes shared with the template).
    caches: [FxMap<Arc<[u8]>, KeyId>; 3],
    templates: Vec<Template>,
    hints: Hints,
}

impl Keys {
    /// See [`Merger::resolve`](super::Merger::resolve).
    pub(super) fn resolve(
        &mut self,
        kind: FileKind,
        raw: &[u8],
        store: &mut Store,
    ) -> Result<KeyId, KeyError> {
        let c = Class::of(kind);
        if let Some(t) = self.hints.predict(c, raw, &self.templates) {
            return Ok(t);
        }
        let t = match self.caches[c as usize].get(raw) {
            Some(&t) => t,
            None => self.add(c, raw, store)?,
        };
        self.hints.record(c, t);
        Ok(t)
    }

    fn add(&mut self, class: Class, raw: &[u8], store: &mut Store) -> Result<KeyId, KeyError> {
        let id = u32::try_from(self.templates.len())
            .map(KeyId)
            .map_err(|_| KeyError("too many keys".into()))?;
        let (family, help, target) = store.make_target(class, raw)?;
        let raw: Arc<[u8]> = raw.into();
        self.caches[class as usize].insert(Arc::clone(&raw), id);
        self.templates.push(Template {
            raw,
            family,
            class,
            help,
            target,
        });
        self.hints.succ.push(None);
        Ok(id)
    }

    /// Forgets the keys resolved for the last file (see
    /// [`Merger::start_file`](super::Merger::start_file)).
    pub(super) fn start_file(&mut self) {
        self.hints.prev = [None; 3];
        self.hints.misses = [0; 3];
    }

    #[cfg(test)]
    /// The number of distinct keys parsed.
    pub(super) fn count(&self) -> usize {
        self.templates.len()
    }

    /// The template of key `t`.
    #[inline]
    pub(super) fn get(&self, t: KeyId) -> Option<&Template> {
        self.templates.get(t.index())
    }
}

impl KeyId {
    /// The template's index.
    #[inline]
    fn index(self) -> usize {
        // CAST: u32 to usize widens on every supported target.
        self.0 as usize
    }
}
