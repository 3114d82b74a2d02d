//! The crate's only `unsafe` code: a metrics file mapped once at a large reserved length, and its 8-byte value slots seen as atomics.
//!
//! # Safety model
//!
//! A [`MappedFile`] maps [`RESERVED_LEN`] bytes of a file with `MAP_SHARED`,
//! however small the file is. Only the first [`MappedFile::capacity`] bytes
//! are backed by the file; touching the rest would raise `SIGBUS`. Growth
//! reserves the file's blocks first (`posix_fallocate`), and only then raises
//! `capacity`, so every address below `capacity` is backed by allocated
//! blocks: a full disk is an error at growth time, never a `SIGBUS` later. The
//! mapping itself never moves, so slot addresses stay valid for the life of
//! the `MappedFile`.
//!
//! What this module relies on, and how it is upheld:
//! - Nobody shrinks the file while it is mapped. prometheus_client never does,
//!   this crate never does, and files are created owner-only and opened with
//!   `O_NOFOLLOW`, so another user cannot do it either (a process of the same
//!   user that truncates the file can crash us; so it can with Python).
//! - Every access is bounds-checked against `capacity` and alignment-checked
//!   in exactly one function per access kind ([`MappedFile::slot`],
//!   [`MappedFile::used_cell`], [`MappedFile::write_bytes`]).
//! - Memory that other processes write concurrently is only ever touched
//!   through raw pointers and atomics, never through `&[u8]`/`&mut [u8]`.
//!
//! # Atomic orderings
//!
//! Promise to a concurrent reader (the collector, another process, which reads
//! the file with `read(2)`): every byte below the `used` value it reads
//! belongs to a fully written entry. The writer appends an entry with plain
//! stores into the region past `used` (which no reader interprets), then
//! publishes it with a `Release` store of the new `used`. A reader reads the
//! header in one system call and the entries in a later one, so it cannot see
//! the new `used` without the entry bytes before it.
//!
//! Value slots are independent `f64`s stored as `u64` bits: `Relaxed`
//! suffices, since no other memory is published through them. A reader in
//! another process sees each aligned 8-byte value whole on the platforms we
//! support (aligned 8-byte stores are single-copy atomic on x86-64 and
//! AArch64; the kernel copies aligned words).
//!
//! Slot pointers cached by [`SlotTable`] are published the same way: pointer
//! first, then the generation number with `Release`; a reader that sees the
//! generation with `Acquire` sees the pointer written before it.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{MmapOptions, MmapRaw};

/// Address space reserved for each mapped file: the most a file may grow to.
pub const RESERVED_LEN: usize = 1 << 30;

/// A metrics file mapped read-write at [`RESERVED_LEN`] bytes.
///
/// See the module documentation for the safety model.
pub(crate) struct MappedFile {
    map: MmapRaw,
    capacity: AtomicUsize,
}

impl MappedFile {
    /// Maps `file`, whose current size is at least `capacity` bytes.
    pub(crate) fn map(file: &File, capacity: usize) -> io::Result<Self> {
        if capacity > RESERVED_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "file is larger than the reserved mapping",
            ));
        }
        let map = MmapOptions::new().len(RESERVED_LEN).map_raw(file)?;
        Ok(MappedFile {
            map,
            capacity: AtomicUsize::new(capacity & !7),
        })
    }

    /// Bytes of the mapping backed by the file.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Acquire)
    }

    /// Records that the file now has at least `new_capacity` bytes of
    /// allocated blocks. Callers must have grown the file first (with
    /// `posix_fallocate`); capacity never shrinks.
    pub(crate) fn grew_to(&self, new_capacity: usize) {
        assert!(new_capacity <= RESERVED_LEN, "capacity past the reservation");
        self.capacity
            .fetch_max(new_capacity & !7, Ordering::AcqRel);
    }

    /// The header's `used` field (offset 0, 4 bytes).
    pub(crate) fn used_cell(&self) -> &AtomicU32 {
        assert!(self.capacity() >= 8, "file smaller than its header");
        let ptr = self.map.as_mut_ptr();
        // SAFETY: offset 0 is below `capacity` (checked above), so it is
        // backed by the file; the mapping is page-aligned, so the pointer is
        // 4-byte aligned; the mapping lives as long as `self`; and this
        // memory is only accessed atomically (here) or by other processes.
        unsafe { AtomicU32::from_ptr(ptr.cast::<u32>()) }
    }

    /// The 8-byte slot at `offset`, as an atomic.
    ///
    /// Panics if `offset` is not 8-byte aligned or the slot is not inside the
    /// file: callers pass offsets of entries they wrote or validated.
    pub(crate) fn slot(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0, "unaligned slot offset {offset}");
        assert!(
            offset
                .checked_add(8)
                .is_some_and(|end| end <= self.capacity()),
            "slot offset {offset} outside the file"
        );
        // SAFETY: `offset + 8 <= capacity <= RESERVED_LEN`, so the 8 bytes
        // are inside the mapping and backed by allocated file blocks; the
        // base is page-aligned and `offset` is a multiple of 8, so the
        // pointer is aligned for `AtomicU64`; the mapping is never unmapped
        // while `self` lives, which bounds the returned lifetime.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) }
    }

    /// Copies `bytes` to `offset`. Only for the region at or past `used`,
    /// which no other thread of this process accesses; the caller holds the
    /// file's append lock.
    pub(crate) fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(
            offset
                .checked_add(bytes.len())
                .is_some_and(|end| end <= self.capacity()),
            "write outside the file"
        );
        // SAFETY: the destination range is inside the mapping and backed by
        // the file (checked above); it does not overlap `bytes`, which is
        // ordinary heap or stack memory; no reference into the range exists,
        // since slots are handed out only after their entry is written.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                bytes.len(),
            );
        }
    }
}

/// The slots of one series group (a counter's value, a histogram's buckets
/// and sum, ...), cached for the current fork generation of the process.
///
/// Every pointer ever stored points into a [`MappedFile`] that the table
/// itself keeps alive (`keep` only grows), so a pointer read from the table is
/// valid for as long as the table is, whatever the generation. The generation
/// only decides whether the cached pointers are the *right* ones: after a
/// fork they still point into the parent's file, and the writer resolves the
/// child's own slots before the next use.
pub(crate) struct SlotTable {
    generation: AtomicU64,
    cells: Box<[AtomicPtr<AtomicU64>]>,
    keep: Mutex<Vec<Arc<MappedFile>>>,
}

impl SlotTable {
    /// A table of `n` unresolved slots.
    pub(crate) fn new(n: usize) -> Self {
        SlotTable {
            generation: AtomicU64::new(u64::MAX),
            cells: (0..n)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            keep: Mutex::new(Vec::new()),
        }
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when the table was resolved in generation `generation`.
    #[inline]
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }

    /// Slot `i`. Call only after [`SlotTable::is_current`] returned true, so
    /// that the pointer is the one published with that generation; returns
    /// `None` if the table was never resolved.
    #[inline]
    pub(crate) fn slot(&self, i: usize) -> Option<&AtomicU64> {
        let p = self.cells[i].load(Ordering::Relaxed);
        // SAFETY: a non-null pointer was stored by `publish` from a
        // `&AtomicU64` returned by `MappedFile::slot` (aligned, in bounds,
        // backed by allocated blocks) of a `MappedFile` that `self.keep`
        // holds for the whole life of `self`; a mapping never moves and the
        // file never shrinks, so the pointer stays valid as long as `&self`.
        unsafe { p.as_ref() }
    }

    /// Points the table at `offsets` in `file` and marks it current for
    /// `generation`. Offsets are value offsets of entries already written.
    pub(crate) fn publish(&self, generation: u64, file: &Arc<MappedFile>, offsets: &[usize]) {
        assert_eq!(offsets.len(), self.cells.len(), "one offset per slot");
        {
            let mut keep = self.keep.lock().unwrap_or_else(|e| e.into_inner());
            if !keep.iter().any(|f| Arc::ptr_eq(f, file)) {
                keep.push(Arc::clone(file));
            }
        }
        for (cell, &off) in self.cells.iter().zip(offsets) {
            let slot = file.slot(off);
            cell.store(
                slot as *const AtomicU64 as *mut AtomicU64,
                Ordering::Relaxed,
            );
        }
        // Publishes the pointers stored above to `is_current` readers.
        self.generation.store(generation, Ordering::Release);
    }
}
