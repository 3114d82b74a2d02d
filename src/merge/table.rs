//! Interning tables: rows in a vector, found by key through a hash map, named by typed ids.

use std::borrow::Borrow;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

use super::hash::FxMap;

/// A row index of one kind of table. Each table has its own id type, so an
/// index into one table cannot be used for another.
pub(super) trait Id: Copy {
    /// The id of row `index`.
    fn from_index(index: u32) -> Self;
    /// The row index.
    fn index(self) -> usize;
}

/// Declares `u32` id types implementing [`Id`].
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(super) struct $name(u32);

        impl Id for $name {
            #[inline]
            fn from_index(index: u32) -> Self {
                $name(index)
            }
            #[inline]
            fn index(self) -> usize {
                // CAST: u32 to usize widens on every supported target.
                self.0 as usize
            }
        }
    )*};
}

ids! {
    /// A metric family.
    FamilyId;
    /// A label set (interned strings, sorted by name).
    LabelSetId;
    /// A counter, summary, info, state-set or histogram non-bucket series.
    PlainId;
    /// A histogram label set (without `le`).
    HistId;
    /// One bucket (bound) of a histogram label set.
    BucketId;
    /// A gauge series without its `pid` label.
    GaugeId;
    /// A gauge series with its complete label set.
    FullId;
    /// A process identifier, from a file name.
    PidId;
    /// One process's value of a gauge series (`all`/`liveall`).
    PidSlotId;
}

/// Rows of type `V`, each found by a key of type `K` and named by an id of
/// type `I`: the merge's many "vector plus map from key to index" pairs as
/// one type.
#[derive(Debug)]
pub(super) struct Table<K, I, V> {
    rows: Vec<V>,
    ids: FxMap<K, I>,
    _id: PhantomData<I>,
}

impl<K, I, V> Default for Table<K, I, V> {
    fn default() -> Self {
        Table {
            rows: Vec::new(),
            ids: FxMap::default(),
            _id: PhantomData,
        }
    }
}

impl<K: Hash + Eq, I: Id, V> Table<K, I, V> {
    /// The id of the row with `key`.
    #[inline]
    pub(super) fn get<Q>(&self, key: &Q) -> Option<I>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.ids.get(key).copied()
    }

    /// The id of the row with `key`, made by `make` if there is none; true
    /// if it is new.
    #[inline]
    pub(super) fn intern(&mut self, key: K, make: impl FnOnce() -> V) -> (I, bool) {
        // CAST: fewer than 2^32 rows: every row stems from a distinct key
        // read from the files (the merger refuses more than 2^32 keys), or
        // from one of those and one file (per-process gauge values).
        let next = I::from_index(self.rows.len() as u32);
        let id = *self.ids.entry(key).or_insert(next);
        let new = id.index() == self.rows.len();
        if new {
            self.rows.push(make());
        }
        (id, new)
    }

    /// The rows, in the order they were made.
    pub(super) fn rows(&self) -> &[V] {
        &self.rows
    }

    /// The rows with their ids.
    pub(super) fn iter(&self) -> impl Iterator<Item = (I, &V)> {
        // CAST: see `intern`.
        self.rows
            .iter()
            .enumerate()
            .map(|(i, v)| (I::from_index(i as u32), v))
    }

    /// The number of rows.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Removes every row (ids made before are no longer valid).
    pub(super) fn clear(&mut self) {
        self.rows.clear();
        self.ids.clear();
    }

    /// The rows, to change values that are not part of their keys.
    pub(super) fn rows_mut(&mut self) -> &mut [V] {
        &mut self.rows
    }
}

impl<K, I: Id, V> Index<I> for Table<K, I, V> {
    type Output = V;
    #[inline]
    fn index(&self, id: I) -> &V {
        &self.rows[id.index()]
    }
}

impl<K, I: Id, V> IndexMut<I> for Table<K, I, V> {
    #[inline]
    fn index_mut(&mut self, id: I) -> &mut V {
        &mut self.rows[id.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_one_id_per_key() {
        let mut t: Table<&str, FamilyId, String> = Table::default();
        let (a, new_a) = t.intern("a", || "A".into());
        let (b, new_b) = t.intern("b", || "B".into());
        let (a2, new_a2) = t.intern("a", || unreachable!());
        assert_eq!((new_a, new_b, new_a2), (true, true, false));
        assert_eq!(a, a2);
        assert_ne!(a, b);
        assert_eq!(t[b], "B");
        assert_eq!(t.get("a"), Some(a));
        assert_eq!(t.get("c"), None);
        t[a].push('!');
        assert_eq!(t.rows(), ["A!", "B"]);
        assert_eq!(t.iter().map(|(id, _)| id).collect::<Vec<_>>(), [a, b]);
        assert_eq!(t.len(), 2);
    }
}
