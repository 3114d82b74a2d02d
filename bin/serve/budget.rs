//! The memory budget of `serve`'s responses: every encoded body is charged while any response still holds it, and freed memory is handed back to the kernel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Bytes;

/// Bodies this large or larger give their memory back to the kernel
/// (`malloc_trim`) when the last response holding them is gone.
const TRIM_AT: usize = 1 << 20;

/// The bytes of response bodies alive at a time, at most `limit`.
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

/// A body would not fit in the budget.
#[derive(Debug, Clone, Copy)]
pub struct OverBudget;

/// Bytes charged to a [`Budget`] until dropped.
struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// An encoded body and its charge: dropped together, then memory is trimmed.
struct Owned {
    data: Vec<u8>,
    _charge: Charge,
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if self.data.len() >= TRIM_AT {
            self.data = Vec::new();
            release_free_memory();
        }
    }
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes of bodies alive now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Turns `data` into a shared body charged to the budget until its last
    /// clone is dropped, or refuses it if the budget would be exceeded.
    pub fn adopt(self: &Arc<Self>, data: Vec<u8>) -> Result<Bytes, OverBudget> {
        let bytes = data.len();
        // Relaxed is enough: the counter orders nothing else, it only has to
        // be exact, which fetch_update's compare-exchange guarantees.
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .map_err(|_| OverBudget)?;
        let charge = Charge {
            budget: Arc::clone(self),
            bytes,
        };
        Ok(Bytes::from_owner(Owned {
            data,
            _charge: charge,
        }))
    }
}

/// Sets glibc's allocator so that a long-lived server gives memory back:
/// blocks of 1 MiB or more (response bodies, large tables) get mappings of
/// their own, unmapped when freed, and a heap keeps at most 4 MiB free at its
/// top. Fixed values also turn off glibc's dynamic threshold, which after the
/// first large body would keep that much and twice more in every heap.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets glibc malloc parameters (both documented as
    // settable at any time); no memory is passed or returned.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20);
    }
}

/// Free heap memory kept for the next scrape: below this, nothing is
/// given back (a scrape that finds its memory still mapped does not fault
/// every page in again).
const KEEP_FREE: usize = 8 << 20;

/// Gives the free memory of glibc's heaps back to the kernel, so that a
/// burst of large scrapes does not leave the process at its peak size;
/// unless less than [`KEEP_FREE`] is free.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallinfo2` only reads glibc's statistics and returns them by
    // value; `malloc_trim` only returns free heap pages to the kernel;
    // neither takes a pointer, and both may be called from any thread at
    // any time.
    unsafe {
        if libc::mallinfo2().fordblks >= KEEP_FREE {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_charged_until_their_last_clone_is_dropped() {
        let b = Budget::new(100);
        let first = b.adopt(vec![1; 60]).unwrap();
        let shared = first.clone();
        assert_eq!(b.used(), 60);
        assert!(b.adopt(vec![2; 41]).is_err());
        assert_eq!(b.used(), 60);
        drop(first);
        assert_eq!(b.used(), 60, "a clone still holds it");
        drop(shared);
        assert_eq!(b.used(), 0);
        let again = b.adopt(vec![3; 100]).unwrap();
        assert_eq!(&again[..3], &[3, 3, 3]);
    }
}
