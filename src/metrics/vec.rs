//! `MetricVec`: a metric with variable labels, its children found by label values.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::Result;
use crate::write::mmap::ForkLocal;

/// A child metric that a [`MetricVec`] can create for a set of label values:
/// [`Counter`](crate::Counter), [`Gauge`](crate::Gauge),
/// [`Histogram`](crate::Histogram), [`Summary`](crate::Summary),
/// [`Info`](crate::Info) and [`Enum`](crate::Enum). Sealed: only this
/// crate's metric types implement it.
pub trait VecChild: sealed::Child {}

impl<T: sealed::Child> VecChild for T {}

/// The crate-private part of [`VecChild`].
pub(crate) mod sealed {
    use crate::error::Result;

    /// What a child is made from, and how.
    pub trait Child: Clone + Send + Sync + 'static {
        /// What every child is made from (description, directory, options).
        type Proto: Send + Sync + 'static;
        /// Creates the child for `values` (count already checked by the caller).
        fn make(proto: &Self::Proto, values: &[&str]) -> Result<Self>;
        /// Creates the child for `values` with its values in memory only, in
        /// no file (for `with_label_values` when the file cannot take it).
        fn make_in_memory(proto: &Self::Proto, values: &[&str]) -> Result<Self>;
        /// Number of variable labels.
        fn label_count(proto: &Self::Proto) -> usize;
    }
}

/// A family of metrics with variable labels: [`CounterVec`](crate::CounterVec),
/// [`GaugeVec`](crate::GaugeVec), [`HistogramVec`](crate::HistogramVec),
/// [`SummaryVec`](crate::SummaryVec).
///
/// Children are created on first use and cached: looking up an existing
/// label set takes a read lock and hashes the values, no allocation.
///
/// Fork-safe: a forked child starts with an empty cache of its own (the
/// inherited one may have been locked by a thread of the parent at the
/// instant of the fork), and a new child metric is built with no lock held,
/// so another thread's `fork` never waits for, nor copies, a lock held across
/// file I/O.
///
/// ```
/// use prometheus_multiproc::{CounterVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let v = CounterVec::new_in(&dir, prometheus::Opts::new("hits", "Hits."), &["path"]).unwrap();
/// v.with_label_values(&["/a"]).inc();
/// assert_eq!(v.with_label_values(&["/a"]).get(), 1.0);
/// assert!(v.get_metric_with_label_values(&["/a", "extra"]).is_err());
/// ```
pub struct MetricVec<M: VecChild> {
    proto: Arc<M::Proto>,
    /// This process's children (see "Per-process state across fork" in
    /// `mmap`).
    children: Arc<ForkLocal<Cache<M>>>,
}

/// The children of one process, and the lock that serialises making new
/// ones (so that a child is made once, and made whole before another thread
/// can use it: an Enum child sets its initial state when made).
struct Cache<M: VecChild> {
    map: RwLock<Children<M>>,
    making: Mutex<()>,
}

impl<M: VecChild> Default for Cache<M> {
    fn default() -> Self {
        Cache {
            map: RwLock::new(HashMap::default()),
            making: Mutex::new(()),
        }
    }
}

/// Children by the hash of their label values; a bucket holds the (rare)
/// collisions.
type Children<M> = HashMap<u64, Vec<(Box<[String]>, M)>, BuildHasherDefault<Prehashed>>;

/// The map's keys are already hashes ([`hash_values`]): used as they are,
/// instead of hashing them again with SipHash (a third of the cost of a
/// lookup). The `prometheus` crate does the same.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; fold anything else in anyway.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl<M: VecChild> Clone for MetricVec<M> {
    fn clone(&self) -> Self {
        MetricVec {
            proto: Arc::clone(&self.proto),
            children: Arc::clone(&self.children),
        }
    }
}

impl<M: VecChild> std::fmt::Debug for MetricVec<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricVec").finish_non_exhaustive()
    }
}

fn hash_values(values: &[&str]) -> u64 {
    // FNV-1a; 0xff never occurs in UTF-8, so it separates values unambiguously.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for &b in v.as_bytes().iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn same(stored: &[String], values: &[&str]) -> bool {
    stored.len() == values.len() && stored.iter().zip(values).all(|(a, b)| a == b)
}

/// The cached child for `values` (whose hash is `h`), if any.
fn find<M: VecChild>(map: &Children<M>, h: u64, values: &[&str]) -> Option<M> {
    let bucket = map.get(&h)?;
    let (_, m) = bucket.iter().find(|(k, _)| same(k, values))?;
    Some(m.clone())
}

impl<M: VecChild> MetricVec<M> {
    pub(crate) fn from_proto(proto: M::Proto) -> Self {
        MetricVec {
            proto: Arc::new(proto),
            children: Arc::new(ForkLocal::default()),
        }
    }

    /// The child for `values`, created (with its entries in this process's
    /// file) on first use. Errors on a wrong number of values and on I/O
    /// failures such as a full disk; never panics.
    pub fn get_metric_with_label_values(&self, values: &[&str]) -> Result<M> {
        let expected = M::label_count(&self.proto);
        if values.len() != expected {
            return Err(crate::Error::label_count(expected, values.len()));
        }
        let h = hash_values(values);
        let cache = self.children.get();
        if let Some(m) = find(
            &cache.map.read().unwrap_or_else(|e| e.into_inner()),
            h,
            values,
        ) {
            return Ok(m);
        }
        // Made without the map's lock: making a child takes the writer's slow
        // lock and may do file I/O, and lookups of existing children go on
        // meanwhile.
        let _making = cache.making.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = find(
            &cache.map.read().unwrap_or_else(|e| e.into_inner()),
            h,
            values,
        ) {
            return Ok(m);
        }
        let made = M::make(&self.proto, values)?;
        let mut map = cache.map.write().unwrap_or_else(|e| e.into_inner());
        let bucket = map.entry(h).or_default();
        bucket.push((values.iter().map(|s| s.to_string()).collect(), made.clone()));
        Ok(made)
    }

    /// The child for `values`.
    ///
    /// Never fails on I/O: when the child's entries cannot be stored (the
    /// disk is full, the file cannot be created or grow), it warns once per
    /// process on stderr and returns a child whose values are kept in this
    /// process's memory: it works as usual but is not exported, and stays
    /// so for the life of the process (later calls return it too). Use
    /// [`MetricVec::get_metric_with_label_values`] to get the error instead.
    ///
    /// # Panics
    ///
    /// On a wrong number of values, like the `prometheus` crate.
    pub fn with_label_values(&self, values: &[&str]) -> M {
        match self.get_metric_with_label_values(values) {
            Ok(m) => m,
            Err(e) if e.is_label_count() => panic!("with_label_values: {e}"),
            Err(e) => self.in_memory(values, &e),
        }
    }

    /// The child for `values`, kept in memory because storing it failed
    /// with `err` (see [`MetricVec::with_label_values`]).
    #[cold]
    #[inline(never)]
    fn in_memory(&self, values: &[&str], err: &crate::Error) -> M {
        warn_not_stored_once(err);
        let h = hash_values(values);
        let cache = self.children.get();
        let _making = cache.making.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = find(
            &cache.map.read().unwrap_or_else(|e| e.into_inner()),
            h,
            values,
        ) {
            return m;
        }
        let made = match M::make_in_memory(&self.proto, values) {
            Ok(m) => m,
            // UNWRAP: only a wrong label count fails here, and the caller
            // checked it.
            Err(e) => panic!("with_label_values: {e}"),
        };
        let mut map = cache.map.write().unwrap_or_else(|e| e.into_inner());
        let bucket = map.entry(h).or_default();
        bucket.push((values.iter().map(|s| s.to_string()).collect(), made.clone()));
        made
    }
}

/// One warning per process for series kept in memory only.
fn warn_not_stored_once(err: &crate::Error) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        crate::warn::warn(format_args!(
            "with_label_values: {err}; new series that cannot be stored are kept in memory \
             and not exported (this warning is shown once)"
        ));
    }
}
