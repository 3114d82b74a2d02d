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
//!   `O_NOFOLLOW`; an existing file is mapped only if it is ours, writable by
//!   no one else (beyond the configured mode) and has one link (see
//!   `adopt`), so another user cannot do it either (a process of the same
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
//!
//! # Fork hygiene
//!
//! A writer's `flock` must die with the writer, also when the writer forked
//! children that outlive it, or the collector takes a dead worker for a
//! living one. An `flock` belongs to the open file description and lasts as
//! long as anything refers to it: every descriptor *and every mapping* of the
//! file, in any process. A forked child inherits both, so:
//!
//! - mappings are made with `MADV_DONTFORK` (Linux): children do not inherit
//!   them at all. A [`MappedFile`] that a child inherited as memory (in a
//!   metric handle) refers to a range the child never had, and is never
//!   dereferenced there: every pointer into it is tagged with the fork
//!   generation of the process that mapped it ([`fork_generation`]), and
//!   dropping it does not unmap;
//! - lock descriptors are wrapped in [`LockedFile`], which registers them;
//!   the `pthread_atfork` child handler calls [`after_fork_in_child`], which
//!   turns each registered descriptor of the child into a duplicate of a
//!   placeholder (`/dev/null`) with `dup2`, which is async-signal-safe. The
//!   numbers stay valid and owned by the `File`s the child inherited, which
//!   close them as usual, but no longer refer to the parent's files.

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use memmap2::{MmapOptions, MmapRaw};

/// Address space reserved for each mapped file: the most a file may grow to.
pub const RESERVED_LEN: usize = 1 << 30;

/// Bumped in every forked child, by [`after_fork_in_child`]: a number that
/// no ancestor of the process has (a child's is its parent's plus one).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The fork generation of the current process.
#[inline]
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Whether a forked child inherits our mappings (where `MADV_DONTFORK`
/// exists, it does not).
const MAPPINGS_INHERITED: bool = !cfg!(target_os = "linux");

/// A metrics file mapped read-write at [`RESERVED_LEN`] bytes.
///
/// See the module documentation for the safety model.
pub(crate) struct MappedFile {
    map: ManuallyDrop<MmapRaw>,
    capacity: AtomicUsize,
    /// [`fork_generation`] of the process that mapped it: the only process
    /// that has the mapping (see "Fork hygiene").
    generation: u64,
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if MAPPINGS_INHERITED || self.generation == fork_generation() {
            // SAFETY: `map` is dropped only here, once; it is this
            // process's mapping. In a forked child (other generation) the
            // range was never mapped (MADV_DONTFORK) and may hold a mapping
            // of the child's own since, which munmap would destroy: then
            // there is nothing to release and `map` is left undropped.
            unsafe { ManuallyDrop::drop(&mut self.map) }
        }
    }
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
        // A forked child must not inherit the mapping: it would keep our
        // lock alive after we die (see "Fork hygiene").
        #[cfg(target_os = "linux")]
        map.advise(memmap2::Advice::DontFork)?;
        Ok(MappedFile {
            map: ManuallyDrop::new(map),
            capacity: AtomicUsize::new(capacity & !7),
            generation: fork_generation(),
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
        assert!(
            new_capacity <= RESERVED_LEN,
            "capacity past the reservation"
        );
        self.capacity.fetch_max(new_capacity & !7, Ordering::AcqRel);
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
        assert!(offset.is_multiple_of(8), "unaligned slot offset {offset}");
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
/// itself keeps alive (`keep` only grows). Pointers are handed out only in
/// the fork generation they were published in, that is, in the process that
/// mapped the file: in a forked child the inherited pointers point into the
/// parent's mapping, which the child does not have (see "Fork hygiene"), and
/// the writer resolves the child's own slots before the next use.
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

    /// Slot `i`, if the table was resolved in `generation`, which must be
    /// the current [`fork_generation`]; `None` otherwise.
    #[inline]
    pub(crate) fn slot(&self, generation: u64, i: usize) -> Option<&AtomicU64> {
        if !self.is_current(generation) {
            return None;
        }
        let p = self.cells[i].load(Ordering::Relaxed);
        // SAFETY: the table was published in `generation`, the current
        // process's (an inherited table carries an ancestor's generation,
        // always smaller), so `publish` ran in this process, and the
        // `Acquire` load in `is_current` makes its pointer stores visible. A
        // non-null pointer was stored by `publish` from a `&AtomicU64`
        // returned by `MappedFile::slot` (aligned, in bounds, backed by
        // allocated blocks) of a `MappedFile` mapped by this process and
        // held by `self.keep` for the whole life of `self`; a mapping never
        // moves and the file never shrinks, so the pointer stays valid as
        // long as `&self`.
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

// ---------------------------------------------------------------------------
// Lock descriptors across fork (see "Fork hygiene").

/// Registered lock descriptors: a list of fixed chunks, never freed, that
/// the atfork child handler can walk without locking or allocating.
struct FdChunk {
    fds: [AtomicI32; 16],
    next: OnceLock<Box<FdChunk>>,
}

impl FdChunk {
    const fn new() -> Self {
        FdChunk {
            fds: [const { AtomicI32::new(-1) }; 16],
            next: OnceLock::new(),
        }
    }
}

static LOCK_FDS: FdChunk = FdChunk::new();
/// The descriptor that registered descriptors become in a forked child.
static PLACEHOLDER: OnceLock<OwnedFd> = OnceLock::new();

fn placeholder() -> io::Result<&'static OwnedFd> {
    if let Some(fd) = PLACEHOLDER.get() {
        return Ok(fd);
    }
    let f = File::open("/dev/null").or_else(|_| File::open("/"))?;
    Ok(PLACEHOLDER.get_or_init(|| f.into()))
}

fn register(fd: RawFd) {
    let mut chunk = &LOCK_FDS;
    loop {
        for slot in &chunk.fds {
            if slot
                .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        chunk = chunk.next.get_or_init(|| Box::new(FdChunk::new()));
    }
}

fn unregister(fd: RawFd) {
    let mut chunk = &LOCK_FDS;
    loop {
        for slot in &chunk.fds {
            if slot
                .compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        match chunk.next.get() {
            Some(next) => chunk = next,
            None => return,
        }
    }
}

/// An open metrics file whose descriptor holds this process's `flock` on it.
/// Forked children do not keep the file open through it (see "Fork
/// hygiene"); use it through `Deref<Target = File>`.
pub(crate) struct LockedFile {
    file: File,
}

impl LockedFile {
    /// Registers `file`'s descriptor. Do it before locking, and with no
    /// fork in between (the writer holds its slow lock, which fork waits
    /// for), so that no child can inherit the lock unregistered.
    pub(crate) fn new(file: File) -> io::Result<LockedFile> {
        placeholder()?;
        register(file.as_raw_fd());
        Ok(LockedFile { file })
    }
}

impl std::ops::Deref for LockedFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for LockedFile {
    fn drop(&mut self) {
        // Unregister first, close after (when `file` drops): a fork in
        // between at worst leaves the child a copy of a descriptor that was
        // still ours, never an unrelated one.
        unregister(self.file.as_raw_fd());
    }
}

/// Registers fork handlers with `pthread_atfork`; returns its result (0 on
/// success).
///
/// The handlers must be async-signal-safe in the child (atomics, a
/// thread-local flag, `dup2`/`fcntl`, as [`after_fork_in_child`] is): the
/// writer's three handlers are, and they are the only caller.
pub(crate) fn register_fork_handlers(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> i32 {
    // SAFETY: the handlers are `extern "C"` functions with no arguments that
    // meet pthread_atfork's requirements (see above); registering them has
    // no other effect.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) }
}

/// For the `pthread_atfork` child handler, in the child, before `fork`
/// returns: starts a new fork generation and detaches the child's copies of
/// the registered lock descriptors. Only atomic operations and `dup2`/`fcntl`
/// (async-signal-safe); no locks, no allocation.
pub(crate) fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    let Some(placeholder) = PLACEHOLDER.get() else {
        return; // nothing was ever registered
    };
    let placeholder = placeholder.as_raw_fd();
    let mut chunk = &LOCK_FDS;
    loop {
        for slot in &chunk.fds {
            let fd = slot.load(Ordering::Acquire);
            if fd >= 0 {
                // SAFETY: `fd` is open in this process: registered
                // descriptors are unregistered before they are closed, and a
                // forked child has its parent's descriptors. `dup2` replaces
                // it atomically with a copy of the placeholder, so the number
                // stays valid for the `File` that owns it; no memory is
                // touched. The `fcntl` keeps it close-on-exec, as it was.
                unsafe {
                    if libc::dup2(placeholder, fd) == fd {
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                }
            }
        }
        match chunk.next.get() {
            Some(next) => chunk = next,
            None => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Per-process state across fork.

/// A value of which every process has its own: in a forked child, the first
/// access puts a fresh `T::default()` in place of the inherited value.
///
/// For state behind a lock (a `*Vec`'s children map, an Info's label sets):
/// a child is a copy of its parent at the instant of the fork, taken while
/// other threads of the parent may hold such a lock, or be half-way through
/// changing what it protects. Those threads do not exist in the child, so
/// the inherited lock would never be released and the inherited value may
/// be torn. The child therefore never touches either: it starts a value of
/// its own, tagged with its [`fork_generation`], and leaves the inherited
/// one alone (it is leaked: freeing it could free torn memory, and it costs
/// nothing, being a copy-on-write page of the parent's).
///
/// Reading costs two loads and a compare; replacing is a compare-and-swap,
/// so two threads of a child racing for the first access agree on one
/// value. No lock is taken, so nothing here can be inherited held.
pub(crate) struct ForkLocal<T: Default> {
    /// Never null; owned by `self` (a `Box` turned into a raw pointer).
    current: AtomicPtr<Generational<T>>,
    /// `ForkLocal<T>` is `Send`/`Sync` exactly when `T` is (`AtomicPtr`
    /// alone would make it both for any `T`).
    _owns: std::marker::PhantomData<Box<Generational<T>>>,
}

struct Generational<T> {
    generation: u64,
    value: T,
}

impl<T: Default> Default for ForkLocal<T> {
    fn default() -> Self {
        let node = Box::new(Generational {
            generation: fork_generation(),
            value: T::default(),
        });
        ForkLocal {
            current: AtomicPtr::new(Box::into_raw(node)),
            _owns: std::marker::PhantomData,
        }
    }
}

impl<T: Default> ForkLocal<T> {
    /// This process's value.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        let generation = fork_generation();
        let node = self.current.load(Ordering::Acquire);
        // SAFETY: `current` is never null and points to a node made by
        // `Box::into_raw` and published with `Release` (in `default` or in
        // `renew`), which the `Acquire` load above pairs with. A node is
        // freed only in `drop` (which has `&mut self`, so no reference
        // returned here is alive), never when it is replaced: the reference
        // stays valid for the lifetime of `&self`.
        let node = unsafe { &*node };
        if node.generation == generation {
            return &node.value;
        }
        self.renew(node, generation)
    }

    #[cold]
    #[inline(never)]
    fn renew(&self, seen: &Generational<T>, generation: u64) -> &T {
        let fresh = Box::into_raw(Box::new(Generational {
            generation,
            value: T::default(),
        }));
        let seen = seen as *const Generational<T> as *mut Generational<T>;
        match self
            .current
            .compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // `seen` (an ancestor's) is leaked on purpose: see the type.
            Ok(_) => {}
            Err(_) => {
                // SAFETY: `fresh` came from `Box::into_raw` just above and was
                // never published (the exchange failed), so we own it alone.
                drop(unsafe { Box::from_raw(fresh) });
            }
        }
        // Another thread of this process may have won the exchange: its node
        // carries this generation too.
        self.get()
    }
}

impl<T: Default> Drop for ForkLocal<T> {
    fn drop(&mut self) {
        let node = *self.current.get_mut();
        // SAFETY: `current` is never null and owned by `self` (see the
        // field), and `&mut self` means no reference from `get` is alive.
        let node = unsafe { Box::from_raw(node) };
        if node.generation != fork_generation() {
            // Inherited from an ancestor and possibly torn: see the type.
            std::mem::forget(node);
        }
    }
}

/// A metrics file mapped read-only, for a collector that keeps it between
/// scrapes and reads the values where they lie (see
/// `collect/warm.rs`).
///
/// What it relies on: nobody shrinks the file below [`ReadMap::len`] while
/// it is mapped (touching a page past the end of a file raises `SIGBUS`).
/// The collector maps a file only if it passes the checks that make that
/// hold for files of this crate and of prometheus_client: a regular file
/// owned by the collector's own user, writable by nobody else, with one
/// link (`collect/warm.rs`, `trusted`); `docs/reliability.md` states the
/// trust boundary. Every access is bounds- and alignment-checked here, and
/// memory that writers change concurrently is only read with atomic loads.
/// Forked children may inherit the mapping: it is read-only and holds no
/// lock, so that is harmless.
pub(crate) struct ReadMap {
    map: MmapRaw,
    len: usize,
}

impl std::fmt::Debug for ReadMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadMap").field("len", &self.len).finish()
    }
}

impl ReadMap {
    /// Maps the first `len` bytes of `file` (at least the header, at most
    /// the file's size as the caller just saw it with `fstat`).
    pub(crate) fn map(file: &File, len: usize) -> io::Result<ReadMap> {
        if len < 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a mapping must hold the header",
            ));
        }
        let map = MmapOptions::new().len(len).map_raw_read_only(file)?;
        Ok(ReadMap { map, len })
    }

    /// The bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The `used` field (offset 0), loaded with `Acquire`: the entries
    /// below it were written before it (see "Atomic orderings").
    pub(crate) fn used(&self) -> u32 {
        // SAFETY: `len >= 8` (checked in `map`), so offset 0..4 is inside
        // the mapping and, the file being at least `len` bytes long (the
        // trust boundary above), backed by it; the mapping is page-aligned,
        // so the pointer is aligned for `AtomicU32`; the memory is only read
        // through atomics here, and lives as long as `self`.
        let cell = unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().cast::<u32>()) };
        cell.load(Ordering::Acquire)
    }

    /// The 8 bytes at `offset` (a multiple of 8), loaded atomically;
    /// `None` past the mapping.
    #[inline]
    pub(crate) fn load_u64(&self, offset: usize) -> Option<u64> {
        if !offset.is_multiple_of(8) || offset.checked_add(8).is_none_or(|end| end > self.len) {
            return None;
        }
        // SAFETY: `offset + 8 <= len` (checked above), so the 8 bytes are
        // inside the mapping and backed by the file (the trust boundary
        // above); base page-aligned and `offset` a multiple of 8, so the
        // pointer is aligned for `AtomicU64`; writers in other processes
        // store these bytes concurrently, which atomic loads tolerate.
        let cell = unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) };
        Some(cell.load(Ordering::Relaxed))
    }

    /// Loads the value and timestamp (8 bytes each) at every offset of
    /// `offsets` into `values`, prefetching `ahead` entries in advance;
    /// whether any differs from what `values` held. `None` (and `values`
    /// partly updated) if an offset is unaligned or its 16 bytes are not
    /// inside the mapping, or the lengths differ.
    ///
    /// The loop of an incremental scrape, which reads every value of every
    /// kept file: one bounds check and two atomic loads per entry.
    pub(crate) fn reload(
        &self,
        offsets: &[u32],
        values: &mut [[u64; 2]],
        ahead: usize,
    ) -> Option<bool> {
        if offsets.len() != values.len() {
            return None;
        }
        let base = self.map.as_mut_ptr();
        let mut changed = false;
        for (i, (&off, kept)) in offsets.iter().zip(values.iter_mut()).enumerate() {
            // CAST: u32 to usize widens.
            let off = off as usize;
            if !off.is_multiple_of(8) || off + 16 > self.len {
                return None;
            }
            if let Some(&next) = offsets.get(i + ahead) {
                self.prefetch(next as usize);
            }
            // SAFETY: `off + 16 <= len` (checked above), so both 8-byte
            // words are inside the mapping and backed by the file (the
            // trust boundary above); the base is page-aligned and `off` a
            // multiple of 8, so both pointers are aligned for `AtomicU64`;
            // writers store these words concurrently, which atomic loads
            // tolerate; the mapping lives as long as `self`.
            let now = unsafe {
                let at = base.add(off).cast::<u64>();
                [
                    AtomicU64::from_ptr(at).load(Ordering::Relaxed),
                    AtomicU64::from_ptr(at.add(1)).load(Ordering::Relaxed),
                ]
            };
            changed |= now != *kept;
            *kept = now;
        }
        Some(changed)
    }

    /// Asks the processor to start loading the cache line at `offset` (a
    /// hint: values read one after another in a large file are far
    /// apart, and waiting for each in turn is most of the cost).
    #[inline]
    pub(crate) fn prefetch(&self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        if offset < self.len {
            let p = self.map.as_ptr().wrapping_add(offset);
            // SAFETY: `prefetch` needs SSE, which every x86-64 processor
            // has; it is a hint that never faults and reads nothing into
            // the program (and the address is inside the mapping anyway).
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.cast::<i8>(),
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    /// Copies the bytes `start..start + out.len()` (8-byte aligned start
    /// and length) into `out`, eight at a time with atomic loads; false
    /// (and `out` unspecified) if the range is not inside the mapping.
    pub(crate) fn copy_out(&self, start: usize, out: &mut [u8]) -> bool {
        if !start.is_multiple_of(8)
            || !out.len().is_multiple_of(8)
            || start
                .checked_add(out.len())
                .is_none_or(|end| end > self.len)
        {
            return false;
        }
        for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
            match self.load_u64(start + i * 8) {
                Some(word) => chunk.copy_from_slice(&word.to_ne_bytes()),
                None => return false,
            }
        }
        true
    }
}
