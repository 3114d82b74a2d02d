//! Memory for reading metrics files: a process-wide budget for file images, and the buffers that lease from it.
//!
//! A file is read whole into one buffer when its `used` bytes are really on
//! disk and the buffer can grow to hold them within the budget; otherwise it
//! is read and parsed in windows of at most [`CHUNK`] bytes (see the
//! collector). Every buffer may hold [`FREE_BYTES`] without asking, so a
//! scrape always makes progress and small files never touch the budget's
//! counter; the bytes beyond are leased from one [`Budget`] shared by every
//! scrape of the process, and given back when the buffer is dropped. A
//! buffer that cannot get its lease is never waited for: the file is read in
//! chunks instead, which gives the same result. Nothing waits on the budget,
//! so nothing can deadlock on it.

use std::collections::TryReserveError;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::format::{INITIAL_SIZE, MAX_KEY_LEN};

/// Bytes of file images that all scrapes of a process hold at once, beyond
/// the first 64 KiB of each buffer (256 MiB). A file that would not fit is
/// read in windows of at most 1 MiB instead, with the same result.
pub const READ_BUDGET: usize = 256 << 20;

/// Bytes a buffer may hold without a lease: the size of a new file.
pub(crate) const FREE_BYTES: usize = INITIAL_SIZE;

/// Size of the windows a file is read in when it is not read whole.
pub(crate) const CHUNK: usize = 1 << 20;

/// The largest entry a valid file holds: a window always grows to hold it.
pub(crate) const MAX_ENTRY: usize = crate::format::entry_len(MAX_KEY_LEN);

/// A count of bytes leased out of a limit.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    leased: AtomicUsize,
    /// The most ever leased at once.
    peak: AtomicUsize,
}

/// The budget of every collector of the process.
pub(crate) static GLOBAL: Budget = Budget::new(READ_BUDGET);

impl Budget {
    pub(crate) const fn new(limit: usize) -> Self {
        Budget {
            limit,
            leased: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Leases `n` bytes if they fit under the limit.
    fn try_lease(&self, n: usize) -> bool {
        // Relaxed: the counter guards no other memory; each update is one
        // atomic read-modify-write, so leases never exceed the limit.
        let leased = self
            .leased
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                cur.checked_add(n).filter(|&total| total <= self.limit)
            });
        match leased {
            Ok(before) => {
                self.peak.fetch_max(before + n, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Leases `n` bytes even past the limit (a window that must hold one
    /// entry of at most [`MAX_ENTRY`] bytes).
    fn force_lease(&self, n: usize) {
        let before = self.leased.fetch_add(n, Ordering::Relaxed);
        self.peak.fetch_max(before + n, Ordering::Relaxed);
    }

    fn give_back(&self, n: usize) {
        self.leased.fetch_sub(n, Ordering::Relaxed);
    }

    /// Bytes leased now.
    #[cfg(test)]
    pub(crate) fn leased(&self) -> usize {
        self.leased.load(Ordering::Relaxed)
    }

    /// The most bytes ever leased at once.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// A byte buffer whose length beyond [`FREE_BYTES`] is leased from a
/// [`Budget`] until it is dropped. Its length only grows (new bytes are
/// zeros), except by [`truncate`](Self::truncate), which keeps the lease.
#[derive(Debug)]
pub(crate) struct ImageBuf {
    bytes: Vec<u8>,
    leased: usize,
    budget: &'static Budget,
}

impl Default for ImageBuf {
    fn default() -> Self {
        ImageBuf::new(&GLOBAL)
    }
}

impl ImageBuf {
    pub(crate) fn new(budget: &'static Budget) -> Self {
        ImageBuf {
            bytes: Vec::new(),
            leased: 0,
            budget,
        }
    }

    /// Makes the buffer at least `n` bytes long, if the budget and the
    /// allocator allow; `false` (and nothing changed) if not.
    pub(crate) fn try_grow(&mut self, n: usize) -> bool {
        if n <= self.bytes.len() {
            return true;
        }
        let extra = n.saturating_sub(FREE_BYTES).saturating_sub(self.leased);
        if extra > 0 && !self.budget.try_lease(extra) {
            return false;
        }
        self.leased += extra;
        if self.alloc(n).is_err() {
            self.budget.give_back(extra);
            self.leased -= extra;
            return false;
        }
        true
    }

    /// Makes the buffer at least `n` bytes long whatever the budget says
    /// (`n` is at most [`MAX_ENTRY`] or [`CHUNK`]); fails only if the
    /// allocator does.
    pub(crate) fn force_grow(&mut self, n: usize) -> Result<(), TryReserveError> {
        if n <= self.bytes.len() {
            return Ok(());
        }
        let extra = n.saturating_sub(FREE_BYTES).saturating_sub(self.leased);
        self.budget.force_lease(extra);
        self.leased += extra;
        self.alloc(n)
    }

    fn alloc(&mut self, n: usize) -> Result<(), TryReserveError> {
        self.bytes.try_reserve_exact(n - self.bytes.len())?;
        self.bytes.resize(n, 0);
        Ok(())
    }

    /// Shortens the buffer to `n` bytes; the memory (and its lease) stays.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.bytes.truncate(n);
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

impl std::ops::Deref for ImageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::ops::DerefMut for ImageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl Drop for ImageBuf {
    fn drop(&mut self) {
        self.budget.give_back(self.leased);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize) -> &'static Budget {
        Box::leak(Box::new(Budget::new(limit)))
    }

    #[test]
    fn leases_stay_under_the_limit_and_come_back() {
        let b = budget(100_000);
        let mut a = ImageBuf::new(b);
        assert!(a.try_grow(FREE_BYTES), "free bytes need no lease");
        assert_eq!(b.leased(), 0);
        assert!(a.try_grow(FREE_BYTES + 60_000));
        assert_eq!(b.leased(), 60_000);
        let mut c = ImageBuf::new(b);
        assert!(!c.try_grow(FREE_BYTES + 60_000), "over the limit");
        assert_eq!((c.len(), b.leased()), (0, 60_000));
        assert!(c.try_grow(FREE_BYTES + 40_000));
        a.truncate(10);
        assert!(
            a.try_grow(FREE_BYTES + 60_000),
            "truncating keeps the lease"
        );
        assert_eq!(b.leased(), 100_000);
        drop(a);
        assert_eq!(b.leased(), 40_000);
        c.force_grow(FREE_BYTES + 200_000).unwrap();
        assert_eq!(b.leased(), 200_000);
        drop(c);
        assert_eq!(b.leased(), 0);
    }

    #[test]
    fn a_failed_allocation_gives_the_lease_back() {
        let b = budget(usize::MAX);
        let mut a = ImageBuf::new(b);
        assert!(!a.try_grow(isize::MAX as usize));
        assert_eq!((a.len(), b.leased()), (0, 0));
        assert!(a.force_grow(isize::MAX as usize).is_err());
    }
}
