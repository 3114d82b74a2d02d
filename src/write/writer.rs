//! The per-process writer: one file per metric type (per gauge mode) per process, created on first use, locked for the process's lifetime, re-created after `fork`.
//!
//! # Process model
//!
//! Each process writes only its own files, named after its pid (or after a
//! worker id set with [`set_worker_id`]). The process holds an exclusive
//! `flock` on each of its files until it exits, and marks them with
//! [`LOCK_MARKER`](crate::format::LOCK_MARKER), so a collector can tell the
//! files of dead workers from those of living ones even after `SIGKILL`.
//!
//! A `pthread_atfork` child handler bumps a process-wide *generation*
//! number. Metric handles cache their slot addresses together with the
//! generation they were resolved in; a handle used in a forked child sees a
//! stale generation and resolves its slots again in the child's own files
//! (whose values start from what that file holds: zero for a new pid). The
//! check is one relaxed load and a compare: no `getpid` per call. The same
//! handler lets go of the child's copies of the parent's lock descriptors,
//! and the parent's mappings are not inherited at all, so the parent's locks
//! die with the parent (see "Fork hygiene" in `mmap`). New files are sized
//! before they appear under their name, so none is ever seen empty.
//!
//! The slow paths (opening files, appending entries) take one process-wide
//! lock that the fork handlers also take, so a fork never happens while
//! another thread is half-way through them. Locks of the metrics that are
//! held across a slow path (a `*Vec`'s children, an Info's label sets) are
//! per process instead (`mmap::ForkLocal`): a child never uses the inherited
//! ones, so none can be inherited held (`docs/reliability.md`, "Fork").

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::env;
use crate::error::{Error, Result};
use crate::format::naming::{self, FileKind};
use crate::format::{self, INITIAL_SIZE, LOCK_MARKER, MAX_KEY_LEN};
use crate::write::mmap::{LockedFile, MappedFile, RESERVED_LEN, SlotTable};

/// The lock around all slow paths; held across `fork` by the atfork handlers.
static SLOW_LOCK: SpinLock = SpinLock::new();
/// The identity (pid or worker id) of the current generation.
static IDENTITY: Mutex<Option<(u64, String)>> = Mutex::new(None);

/// A lock that can be taken in `pthread_atfork`'s prepare handler and released
/// in the parent and child handlers (a `std::sync::Mutex` guard cannot cross
/// those calls).
struct SpinLock {
    locked: AtomicBool,
}

impl SpinLock {
    const fn new() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }
    fn lock(&self) {
        let mut spins = 0u32;
        // Acquire: the holder's writes under the lock are visible to us.
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
    fn unlock(&self) {
        // Release: our writes under the lock are visible to the next holder.
        self.locked.store(false, Ordering::Release);
    }
}

struct SlowGuard;
impl SlowGuard {
    fn take() -> SlowGuard {
        SLOW_LOCK.lock();
        SlowGuard
    }
}
impl Drop for SlowGuard {
    fn drop(&mut self) {
        SLOW_LOCK.unlock();
    }
}

thread_local! {
    /// Whether this thread's fork holds [`SLOW_LOCK`] (taken by the prepare
    /// handler). Makes the handlers idempotent: if they were registered twice
    /// (see [`register_atfork`]), the second run of each does nothing.
    static FORK_HOLDS_LOCK: Cell<bool> = const { Cell::new(false) };
}

extern "C" fn atfork_prepare() {
    if !FORK_HOLDS_LOCK.get() {
        SLOW_LOCK.lock();
        FORK_HOLDS_LOCK.set(true);
    }
}
extern "C" fn atfork_parent() {
    if FORK_HOLDS_LOCK.replace(false) {
        SLOW_LOCK.unlock();
    }
}
extern "C" fn atfork_child() {
    if FORK_HOLDS_LOCK.replace(false) {
        crate::write::mmap::after_fork_in_child();
        SLOW_LOCK.unlock();
    }
}

/// Registration state of the fork handlers: 0 = not yet, `DONE` = done, any
/// other value = the pid of the process whose thread is registering them.
static ATFORK: AtomicU32 = AtomicU32::new(0);
const ATFORK_DONE: u32 = u32::MAX;

/// Registers the fork handlers once per process, without a `std::sync::Once`:
/// a process forked while another of its parent's threads was half-way
/// through a `Once` would wait for it forever. Here a child that inherits a
/// registration in progress (the recorded pid is not its own) registers
/// again; the handlers are idempotent, so a double registration is harmless.
fn register_atfork() {
    loop {
        let state = ATFORK.load(Ordering::Acquire);
        if state == ATFORK_DONE {
            return;
        }
        let me = std::process::id();
        if state == me {
            // Another thread of this process is registering: it will finish.
            std::thread::yield_now();
            continue;
        }
        // `state` is 0, or the pid of a parent that forked mid-registration.
        if ATFORK
            .compare_exchange(state, me, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        let rc =
            crate::write::mmap::register_fork_handlers(atfork_prepare, atfork_parent, atfork_child);
        assert_eq!(rc, 0, "pthread_atfork failed");
        ATFORK.store(ATFORK_DONE, Ordering::Release);
        return;
    }
}

/// The current fork generation of this process.
#[inline]
pub(crate) fn generation() -> u64 {
    crate::write::mmap::fork_generation()
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Uses `id` instead of the pid in this process's file names from now on.
///
/// For supervisors that give each worker a stable slot number (like
/// gunicorn's or uWSGI's worker ids): a restarted worker continues its slot's
/// files instead of adding new ones, so the directory does not grow with
/// restarts. The exclusive file lock decides who may write a file: if another
/// living process holds it, opening fails with an error.
///
/// Call it in the worker, after `fork` and before the worker's first metric
/// write; files already opened in this process keep their names. The id is
/// forgotten in forked children, which use their pid again. The
/// [`WORKER_ID_ENV`](crate::env::WORKER_ID_ENV) variable has the same effect when set before the first
/// write. Ids are 1 to 64 characters of `[A-Za-z0-9.-]`.
///
/// ```
/// prometheus_multiproc::set_worker_id("w3").unwrap();
/// assert!(prometheus_multiproc::set_worker_id("bad_id").is_err());
/// ```
pub fn set_worker_id(id: &str) -> Result<()> {
    validate_worker_id(id)?;
    register_atfork();
    let _g = SlowGuard::take();
    *lock_ignoring_poison(&IDENTITY) = Some((generation(), id.to_string()));
    Ok(())
}

fn validate_worker_id(id: &str) -> Result<()> {
    if naming::is_valid_worker_id(id) {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            crate::error::ArgumentKind::WorkerId,
            format!("invalid worker id {id:?}: use 1 to 64 characters of [A-Za-z0-9.-]"),
        ))
    }
}

/// The identity for file names in this generation. Slow path only.
fn identity(generation_now: u64) -> Result<String> {
    let mut idg = lock_ignoring_poison(&IDENTITY);
    if let Some((g, id)) = &*idg
        && *g == generation_now
    {
        return Ok(id.clone());
    }
    // A forked child uses its pid, and does not even read the environment
    // (whose lock a thread of the parent may have held at the fork).
    let from_env = match generation_now {
        0 => env::worker_id(),
        _ => None,
    };
    let id = match from_env {
        Some(id) => {
            validate_worker_id(&id)?;
            id
        }
        None => std::process::id().to_string(),
    };
    *idg = Some((generation_now, id.clone()));
    Ok(id)
}

/// Runs `f` under the lock that the fork handlers hold across `fork`, so
/// that no fork copies the state `f` touches half-changed or locked. `f`
/// must not take that lock again (no metric writes, no file opening).
pub(crate) fn with_fork_lock<T>(f: impl FnOnce() -> T) -> T {
    register_atfork();
    let _g = SlowGuard::take();
    f()
}

/// The name this process's files have (or will have): its worker id, or
/// its pid.
#[cfg(feature = "prefork")]
pub(crate) fn file_identity() -> Result<String> {
    identity(generation())
}

/// A directory that this process writes its metrics files into.
///
/// Cheap to clone; all clones share the open files. Metric constructors
/// without a directory argument use [`MetricsDir::from_env`].
///
/// ```
/// use prometheus_multiproc::{Counter, MetricsDir};
/// let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let c = Counter::new_in(&dir, "jobs_total", "Jobs done.").unwrap();
/// c.inc();
/// assert!(tmp.path().join(format!("counter_{}.db", std::process::id())).exists());
/// ```
#[derive(Clone)]
pub struct MetricsDir {
    inner: Arc<DirWriter>,
}

impl std::fmt::Debug for MetricsDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsDir")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl MetricsDir {
    /// Opens `path` for writing: it must be an existing, writable directory.
    /// Every handle for the same directory in a process shares one writer.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        naming::check_writable_dir(path, None)?;
        Self::shared(path)
    }

    /// The directory named by `PROMETHEUS_MULTIPROC_DIR` (or the deprecated
    /// `prometheus_multiproc_dir`, with a warning).
    pub fn from_env() -> Result<Self> {
        let path = env::dir_from_env()?;
        naming::check_writable_dir(&path, Some(env::dir_var_in_use()))?;
        Self::shared(&path)
    }

    /// One writer per directory and process: two writers would open the same
    /// file twice, and the second could not take its lock.
    fn shared(path: &Path) -> Result<Self> {
        register_atfork();
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        static SHARED: Mutex<Vec<(PathBuf, MetricsDir)>> = Mutex::new(Vec::new());
        // Under the slow lock, so that a fork never finds SHARED locked.
        let _g = SlowGuard::take();
        let mut shared = lock_ignoring_poison(&SHARED);
        if let Some((_, d)) = shared.iter().find(|(p, _)| *p == canonical) {
            return Ok(d.clone());
        }
        let d = MetricsDir {
            inner: Arc::new(DirWriter {
                path: path.to_path_buf(),
                file_mode: AtomicU32::new(env::file_mode_from_env()?),
                files: Mutex::new(DirFiles {
                    generation: u64::MAX,
                    files: HashMap::new(),
                }),
            }),
        };
        shared.push((canonical, d.clone()));
        Ok(d)
    }

    /// Creates new files with these permission bits from now on (default
    /// `0o600`, or [`FILE_MODE_ENV`](crate::env::FILE_MODE_ENV)). A sidecar exporter running as another
    /// user needs read access, e.g. `0o640` with a shared group. Applies to
    /// every handle of this directory in this process.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = prometheus_multiproc::MetricsDir::open(tmp.path()).unwrap().with_file_mode(0o640);
    /// ```
    pub fn with_file_mode(self, mode: u32) -> Self {
        self.inner.file_mode.store(mode & 0o777, Ordering::Relaxed);
        self
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn writer(&self) -> &Arc<DirWriter> {
        &self.inner
    }
}

pub(crate) struct DirWriter {
    path: PathBuf,
    file_mode: AtomicU32,
    files: Mutex<DirFiles>,
}

struct DirFiles {
    generation: u64,
    files: HashMap<FileKind, Arc<FileWriter>>,
}

impl DirWriter {
    /// The file of `kind` for the current generation, opened on first use.
    /// Caller holds the slow lock.
    fn file(&self, kind: FileKind, generation_now: u64) -> Result<Arc<FileWriter>> {
        let mut files = lock_ignoring_poison(&self.files);
        if files.generation != generation_now {
            // A fork happened (or first use): the inherited files belong to
            // the parent. Dropping them closes our copies of its descriptors
            // without unlocking (flock locks belong to the open file
            // description, which the parent still holds); the mappings stay
            // alive in the slot tables that still point into them.
            files.files.clear();
            files.generation = generation_now;
        }
        if let Some(f) = files.files.get(&kind) {
            return Ok(Arc::clone(f));
        }
        let id = identity(generation_now)?;
        let f = Arc::new(FileWriter::open(
            &self.path,
            kind,
            &id,
            self.file_mode.load(Ordering::Relaxed),
        )?);
        files.files.insert(kind, Arc::clone(&f));
        Ok(f)
    }
}

/// A constructor of [`SlotGroup`]s: [`SlotGroup::new`] or
/// [`SlotGroup::in_memory`].
pub(crate) type NewGroup = fn(&MetricsDir, FileKind, Vec<String>, bool) -> Result<SlotGroup>;

/// A group of series stored together (a counter's value; a histogram's
/// buckets and sum), with slot addresses cached per fork generation.
pub(crate) struct SlotGroup {
    dir: Arc<DirWriter>,
    kind: FileKind,
    keys: Box<[String]>,
    timestamps: bool,
    table: SlotTable,
    /// Set for a group kept in memory only (its file could not be written,
    /// see [`SlotGroup::in_memory`]); the table then stays unresolved.
    memory: Option<Box<[AtomicU64]>>,
}

impl SlotGroup {
    /// Creates the group and its entries in this process's file. With
    /// `timestamps`, slot `2 * i` is key `i`'s value and `2 * i + 1` its
    /// timestamp; otherwise slot `i` is key `i`'s value.
    pub(crate) fn new(
        dir: &MetricsDir,
        kind: FileKind,
        keys: Vec<String>,
        timestamps: bool,
    ) -> Result<Self> {
        if let Some(k) = keys.iter().find(|k| k.len() > MAX_KEY_LEN) {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::MetricKey,
                format!(
                    "metric key of {} bytes exceeds the limit of {MAX_KEY_LEN}",
                    k.len()
                ),
            ));
        }
        let g = SlotGroup {
            dir: Arc::clone(dir.writer()),
            kind,
            table: SlotTable::new(keys.len() * if timestamps { 2 } else { 1 }),
            keys: keys.into_boxed_slice(),
            timestamps,
            memory: None,
        };
        g.resolve(generation())?;
        Ok(g)
    }

    /// A group whose values live in this process's memory only: they work
    /// like any others but are in no file, so no collector sees them. For
    /// the infallible `with_label_values` when the file cannot take the
    /// series (full disk). Same arguments as [`SlotGroup::new`]; never fails.
    pub(crate) fn in_memory(
        dir: &MetricsDir,
        kind: FileKind,
        keys: Vec<String>,
        timestamps: bool,
    ) -> Result<Self> {
        let n = keys.len() * if timestamps { 2 } else { 1 };
        Ok(SlotGroup {
            dir: Arc::clone(dir.writer()),
            kind,
            table: SlotTable::new(n),
            keys: keys.into_boxed_slice(),
            timestamps,
            memory: Some((0..n).map(|_| AtomicU64::new(0)).collect()),
        })
    }

    /// Slot `i` for the current generation, resolving after a fork.
    ///
    /// The fast path (two loads, a compare, the cached pointer) is kept small
    /// enough to inline into `inc`/`set`/`observe`; resolving and its error
    /// value live out of line in [`SlotGroup::slot_slow`].
    #[inline]
    pub(crate) fn slot(&self, i: usize) -> Result<&AtomicU64> {
        let generation_now = generation();
        if let Some(s) = self.table.slot(generation_now, i) {
            return Ok(s);
        }
        self.slot_slow(i, generation_now)
    }

    #[cold]
    #[inline(never)]
    fn slot_slow(&self, i: usize, generation_now: u64) -> Result<&AtomicU64> {
        if let Some(memory) = &self.memory {
            return Ok(&memory[i]);
        }
        self.resolve(generation_now)?;
        Ok(self
            .table
            .slot(generation_now, i)
            .expect("a table resolved in this generation has every slot set"))
    }

    /// The kind of file the group lives in.
    pub(crate) fn kind(&self) -> FileKind {
        self.kind
    }

    #[cold]
    fn resolve(&self, generation_now: u64) -> Result<()> {
        let _g = SlowGuard::take();
        if self.table.is_current(generation_now) {
            return Ok(());
        }
        let file = self.dir.file(self.kind, generation_now)?;
        let mut offsets = Vec::with_capacity(self.table.len());
        for k in self.keys.iter() {
            let off = file.value_offset(k)?;
            offsets.push(off);
            if self.timestamps {
                offsets.push(off + 8);
            }
        }
        self.table.publish(generation_now, &file.map, &offsets);
        Ok(())
    }
}

/// One open, locked, mapped metrics file of this process.
pub(crate) struct FileWriter {
    path: PathBuf,
    map: Arc<MappedFile>,
    inner: Mutex<FileInner>,
}

struct FileInner {
    file: LockedFile,
    used: usize,
    positions: HashMap<Box<str>, usize>,
}

impl FileWriter {
    fn open(dir: &Path, kind: FileKind, id: &str, mode: u32) -> Result<FileWriter> {
        let path = dir.join(kind.file_name(id));
        for _attempt in 0..4 {
            if let Some(w) = Self::try_open(&path, mode)? {
                return Ok(w);
            }
        }
        Err(Error::io(
            &path,
            io::Error::other("file keeps being replaced while opening it"),
        ))
    }

    /// One attempt; `Ok(None)` when the file was replaced under us.
    fn try_open(path: &Path, mode: u32) -> Result<Option<FileWriter>> {
        let io_err = |e| Error::io(path, e);
        let file = match open_metrics_file(path, mode, false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match create_sized(path, mode) {
                Ok(Some(f)) => f,
                // Another process created it first: open that one.
                Ok(None) => return Ok(None),
                // No O_TMPFILE or /proc here (or no room for the file):
                // create it in place.
                Err(_) => open_metrics_file(path, mode, true).map_err(io_err)?,
            },
            Err(e) => return Err(io_err(e)),
        };
        let file = LockedFile::new(file).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        // Never map a file that another user could truncate or write.
        if let Err(why) = crate::write::adopt::check(&meta, mode) {
            crate::write::adopt::set_aside(path, why)?;
            return Ok(None);
        }
        lock_exclusive(&file).map_err(io_err)?;
        // The file may have been removed (mark-dead) or replaced between our
        // open and our lock: then start over with whatever is there now.
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.dev() == meta.dev() && m.ino() == meta.ino() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        }
        let mut size = file.metadata().map_err(io_err)?.len() as usize;
        if size == 0 {
            if let Err(e) = reserve(&file, INITIAL_SIZE) {
                // Leave no empty file behind (disk full): prometheus_client's
                // collector fails on one. We hold its lock, and it is the
                // file at `path` (checked above).
                let _ = std::fs::remove_file(path);
                return Err(io_err(e));
            }
            size = INITIAL_SIZE;
        }
        // Read what an earlier process with this pid (or worker id), or a
        // Python worker, left in the file: we continue its values.
        let (used, positions) = match crate::write::predecessor::read(&file, size) {
            Ok(e) => (e.used, e.positions),
            Err(why) => {
                let aside = path.with_extension(format!(
                    "db.corrupt-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0)
                ));
                crate::warn::warn(format_args!(
                    "{}: {why}; moved aside to {} and starting a new file",
                    path.display(),
                    aside.display()
                ));
                std::fs::rename(path, &aside).map_err(io_err)?;
                return Ok(None);
            }
        };
        if size > RESERVED_LEN {
            return Err(Error::file_full(path, RESERVED_LEN as u64));
        }
        let map = MappedFile::map(&file, size).map_err(io_err)?;
        map.write_bytes(4, &LOCK_MARKER);
        // Python's writer sets `used` to 8 in a fresh file; so do we.
        map.used_cell().store(used as u32, Ordering::Release);
        Ok(Some(FileWriter {
            path: path.to_path_buf(),
            map: Arc::new(map),
            inner: Mutex::new(FileInner {
                file,
                used,
                positions,
            }),
        }))
    }

    /// The value offset of `key`, appending a zero-valued entry if needed.
    /// Caller holds the slow lock.
    fn value_offset(&self, key: &str) -> Result<usize> {
        let mut inner = lock_ignoring_poison(&self.inner);
        if let Some(&off) = inner.positions.get(key) {
            return Ok(off);
        }
        let mut entry = Vec::with_capacity(format::entry_len(key.len()));
        format::encode_entry(key.as_bytes(), 0.0, 0.0, &mut entry);
        let start = inner.used;
        let end = start + entry.len();
        if end > i32::MAX as usize || end > RESERVED_LEN {
            return Err(Error::file_full(&self.path, RESERVED_LEN as u64));
        }
        let cap = self.map.capacity();
        if end > cap {
            let mut new_cap = cap.max(INITIAL_SIZE);
            while new_cap < end {
                new_cap *= 2;
            }
            let new_cap = new_cap.min(RESERVED_LEN);
            reserve(&inner.file, new_cap).map_err(|e| Error::io(&self.path, e))?;
            self.map.grew_to(new_cap);
        }
        self.map.write_bytes(start, &entry);
        // Publish the entry: see "Atomic orderings" in `mmap`.
        self.map.used_cell().store(end as u32, Ordering::Release);
        inner.used = end;
        let off = start + format::value_offset(key.len());
        inner.positions.insert(key.into(), off);
        Ok(off)
    }
}

fn open_metrics_file(path: &Path, mode: u32, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Creates the file at `path` already sized, so that it is never seen empty:
/// prometheus_client's collector fails on an empty file, and one would stay
/// behind if the process were killed between creating and sizing it. The
/// file is made unnamed (`O_TMPFILE`, freed by the kernel if we die), sized,
/// then linked into place. `Ok(None)` if `path` appeared meanwhile; an error
/// where `O_TMPFILE` or `/proc` is not available.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn create_sized(path: &Path, mode: u32) -> io::Result<Option<File>> {
    use std::os::fd::AsRawFd;
    let Some(dir) = path.parent() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)?;
    reserve(&file, INITIAL_SIZE)?;
    let name = format!("/proc/self/fd/{}", file.as_raw_fd());
    let at = nix::fcntl::AT_FDCWD;
    let follow = nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW;
    match nix::unistd::linkat(at, name.as_str(), at, path, follow) {
        Ok(()) => Ok(Some(file)),
        Err(nix::errno::Errno::EEXIST) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn create_sized(_path: &Path, _mode: u32) -> io::Result<Option<File>> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Takes the exclusive lock, retrying briefly: a collector probing liveness
/// holds a shared lock for a few microseconds.
fn lock_exclusive(file: &File) -> io::Result<()> {
    for _ in 0..200 {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        "file is locked by another living process (same pid or worker id in another pid namespace?)",
    ))
}

/// Makes the file at least `len` bytes long with its blocks allocated, so
/// that writes through the mapping can never hit a hole on a full disk.
///
/// The part past the file's end is then written with zeros, through
/// `write(2)`: pages that enter the page cache that way can be large folios,
/// where pages first touched through the mapping are 4 KiB each, and a
/// collector reads the former about twice as fast (`docs/performance.md`).
/// Bytes before the old end (entries of an earlier process with this file)
/// are never written.
fn reserve(file: &File, len: usize) -> io::Result<()> {
    let end = file.metadata()?.len();
    let want = i64::try_from(len).map_err(|_| io::Error::other("file too large"))?;
    nix::fcntl::posix_fallocate(file, 0, want).map_err(io::Error::from)?;
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = end;
    while at < len as u64 {
        let n = (len as u64 - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
