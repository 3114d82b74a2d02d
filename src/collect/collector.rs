//! The collector: scans the metrics directory, reads every file once, merges them ([`merge`](crate::merge)), and exposes the result.
//!
//! Reading is defensive, since the directory is shared with many writers
//! that may be starting, growing their files, or dying at any moment:
//!
//! * Only names prometheus_client would read are considered
//!   (`counter_{pid}.db`, `gauge_{mode}_{pid}.db`, ...); anything else is
//!   ignored. Files are merged in directory listing order, as prometheus_client
//!   globs them, so that sums round exactly as Python's do.
//! * The directory is opened once per scrape, and each file in it with
//!   `openat(O_NOFOLLOW | O_NONBLOCK)` (symbolic links, FIFOs and other
//!   non-regular files are skipped with a warning), read with positional
//!   reads into one reused buffer, and closed before the next is opened: one
//!   descriptor at a time per merging thread, however many files there are.
//!   Files are never mapped, so a file truncated while being read cannot
//!   crash the reader, and no more than the file's size (at most
//!   [`MAX_FILE_SIZE`]) is ever allocated.
//! * Directories of 32 files or more are merged on as many threads as
//!   `available_parallelism` allows (at most 16), each taking the files of
//!   one kind (counters, histograms, one gauge mode, ...) at a time, merging
//!   them, building their families and, for an exposition, encoding them; a
//!   thread with no kind left reads files ahead for the threads still
//!   merging (a few files ahead, at most 32 MiB in all);
//!   `PROMETHEUS_MULTIPROC_COLLECT_THREADS=1`
//!   ([`COLLECT_THREADS_ENV`](naming::COLLECT_THREADS_ENV)) merges on the
//!   calling thread only. The result is the same as a sequential merge's,
//!   bit for bit (see `docs/performance.md`).
//! * Empty files (size 0, or nothing written yet) are skipped quietly, as are
//!   live-gauge files that vanish before they are opened (removed by
//!   `mark_process_dead`). Other vanished or unreadable files, and corrupt
//!   files, are skipped with a [`Warning`]: a corrupt file is skipped as a
//!   whole, never half-merged. A scrape never fails because of a file; it
//!   fails only if the directory itself cannot be read.
//! * Files of live-mode gauges written by this crate carry a lock marker in
//!   their header, and their writer holds an exclusive `flock` on them while
//!   it lives. If a shared lock can be taken, the writer is dead and the file
//!   is skipped (counted in [`Stats::files_dead`]), without anybody having
//!   called `mark_process_dead`. The same holds for `info_{pid}.db` files:
//!   an Info describes living processes. Files without the marker (written
//!   by prometheus_client) are always read.
//!
//! Where the result differs from prometheus_client's: Python fails the whole
//! scrape on a corrupt or empty file, on a vanished file of a non-live type,
//! and on a bad histogram bound, and follows symbolic links; we skip the file
//! and warn. See [`merge`](crate::merge) for merge-order details.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use prometheus::proto;

use crate::dead::{self, Liveness};
use crate::error::{Error, Result};
use crate::expose;
use crate::expose::Format;
use crate::format::{self, Corrupt, CorruptKind, Entries, HEADER_LEN};
use crate::merge::{Family, FamilyKind, KeyId, Merger, TypeConflict};
use crate::naming::{self, FileKind};

/// Files larger than this (1 GiB) are skipped with a warning.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// Something wrong with one file (or the directory); the scrape went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file (or directory) concerned.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Counters describing one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files read and merged.
    pub files_read: usize,
    /// Files skipped because their content is corrupt.
    pub files_corrupt: usize,
    /// Live-gauge and info files skipped because their writer is dead.
    pub files_dead: usize,
    /// Files skipped for other reasons: empty, vanished, not regular,
    /// unreadable, too large.
    pub files_skipped: usize,
    /// Entries merged.
    pub entries: usize,
    /// Families in the result.
    pub families: usize,
    /// Samples in the result.
    pub samples: usize,
    /// Time taken to scan, read and merge.
    pub duration: Duration,
}

/// The result of one scrape: merged families, warnings, statistics.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Merged families, sorted by name.
    pub families: Vec<Family>,
    /// Files skipped with a reason, and merge remarks.
    pub warnings: Vec<Warning>,
    /// Counters.
    pub stats: Stats,
}

impl Scrape {
    /// Prints the warnings to standard error, one line each, prefixed with
    /// `warning: `.
    pub fn print_warnings(&self) {
        let mut err = io::stderr().lock();
        for w in &self.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
    }

    /// Appends the Prometheus text format of the families to `out`
    /// (see [`expose::encode_text`]).
    pub fn encode_text(&self, out: &mut Vec<u8>) {
        expose::encode_text(&self.families, out)
    }

    /// Appends OpenMetrics text of the families to `out`
    /// (see [`expose::encode_openmetrics`]).
    pub fn encode_openmetrics(&self, out: &mut Vec<u8>) {
        expose::encode_openmetrics(&self.families, out)
    }
}

/// Reads and merges all metrics files of a directory, as prometheus_client's
/// `MultiProcessCollector` does.
///
/// Use [`collect_families`](Self::collect_families) for the merged families,
/// [`encode_text`](Self::encode_text) /
/// [`encode_openmetrics`](Self::encode_openmetrics) to write an exposition,
/// or register it in a `prometheus::Registry` (it implements
/// [`prometheus::core::Collector`]; only one per registry, since it has no
/// descriptors).
///
/// ```
/// use prometheus_multiproc::MultiProcessCollector;
/// use prometheus_multiproc::format::build_file;
/// use prometheus_multiproc::key::encode_key;
///
/// let dir = tempfile::tempdir().unwrap();
/// let key = encode_key("jobs", "jobs_total", &[], "Jobs done.");
/// for pid in ["1", "2"] {
///     let img = build_file(&[(key.as_bytes(), 2.0, 0.0)], 4096);
///     std::fs::write(dir.path().join(format!("counter_{pid}.db")), img).unwrap();
/// }
/// let collector = MultiProcessCollector::new(dir.path()).unwrap();
/// let mut out = Vec::new();
/// let scrape = collector.encode_text(&mut out).unwrap();
/// assert!(scrape.warnings.is_empty());
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total 4.0\n"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct MultiProcessCollector {
    dir: PathBuf,
    process_metrics: bool,
}

impl MultiProcessCollector {
    /// A collector for the metrics directory `dir`, which must exist and be a
    /// directory (the error names the path).
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        naming::check_dir(dir, None)?;
        Ok(MultiProcessCollector {
            dir: dir.to_path_buf(),
            process_metrics: false,
        })
    }

    /// A collector for the directory named by `PROMETHEUS_MULTIPROC_DIR` (or
    /// the deprecated `prometheus_multiproc_dir`).
    pub fn from_env() -> Result<Self> {
        Ok(MultiProcessCollector {
            dir: naming::dir_from_env()?,
            process_metrics: false,
        })
    }

    /// The metrics directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Also exports, at every scrape, the CPU, memory, file descriptors and
    /// start time of each living worker that has files in the directory,
    /// with a `pid` label, and their sums (Linux only; see
    /// [`procfs`](crate::procfs) for the families and how workers are found).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use prometheus_multiproc::{Counter, MetricsDir, MultiProcessCollector};
    /// Counter::new_in(&MetricsDir::open(tmp.path()).unwrap(), "c_total", "C.").unwrap().inc();
    /// let c = MultiProcessCollector::new(tmp.path()).unwrap().with_process_metrics(true);
    /// let s = c.collect_families().unwrap();
    /// let me = std::process::id().to_string();
    /// let rss = s.families.iter().find(|f| f.name == "process_resident_memory_bytes").unwrap();
    /// assert_eq!(rss.samples[0].label("pid"), Some(me.as_str()));
    /// ```
    pub fn with_process_metrics(mut self, on: bool) -> Self {
        self.process_metrics = on;
        self
    }

    /// Scans the directory, reads and merges every metrics file.
    ///
    /// Fails only when the directory cannot be listed; problems with single
    /// files become [`Warning`]s.
    pub fn collect_families(&self) -> Result<Scrape> {
        Ok(self.scrape(None)?.0)
    }

    /// [`collect_families`](Self::collect_families), and appends the families
    /// encoded in `format` to `out` (for a server's response body).
    pub(crate) fn scrape_into(&self, format: Format, out: &mut Vec<u8>) -> Result<Scrape> {
        let (scrape, encoded) = self.scrape(Some(format))?;
        encoded.append_to(out);
        Ok(scrape)
    }

    /// Scans, reads and merges; with `format`, also encodes the families in
    /// it, returned as the second element (the merging threads encode the
    /// families they merged).
    fn scrape(&self, format: Option<Format>) -> Result<(Scrape, Encoded)> {
        let start = Instant::now();
        let dirfd = dead::open_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut names: Vec<(String, FileKind)> = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some((kind, _)) = naming::parse_file_name(name) {
                names.push((name.to_owned(), kind));
            }
        }
        // No sorting: files are merged in directory listing order, which is
        // the order prometheus_client's glob sees them in, so that float sums
        // round exactly as Python's do (addition is not associative).

        // Process metrics join the families after the merge: encode then.
        let early = format.filter(|_| !self.process_metrics);
        let threads = naming::collect_threads();
        let (mut families, mut st, mut encoded) = self.merge_all(&dirfd, &names, threads, early);
        if self.process_metrics {
            let files = names.iter().map(|(n, _)| n.as_str());
            crate::procfs::append(&self.dir, files, &mut families, &mut st.warnings);
            if let Some(format) = format {
                encoded = Encoded::of(format, &families);
            }
        }
        st.stats.families = families.len();
        st.stats.samples = families.iter().map(|f| f.samples.len()).sum();
        st.stats.duration = start.elapsed();
        let scrape = Scrape {
            families,
            warnings: st.warnings,
            stats: st.stats,
        };
        Ok((scrape, encoded))
    }

    /// Collects and writes the Prometheus text format (byte-compatible with
    /// prometheus_client's `generate_latest`) to `w`. Returns the scrape
    /// (families, warnings, statistics); the warnings are not printed.
    ///
    /// Nothing is written if the collection fails: the families are all
    /// merged and encoded (by the merging threads) before the first write.
    /// The pieces are written with vectored writes, not copied together
    /// first.
    pub fn encode_text<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<Scrape> {
        let (scrape, encoded) = self.scrape(Some(Format::Text))?;
        encoded.write_to(w)?;
        Ok(scrape)
    }

    /// Collects and writes OpenMetrics text (byte-compatible with
    /// prometheus_client's `openmetrics.exposition.generate_latest`) to `w`.
    /// Returns the scrape; the warnings are not printed. As with
    /// [`encode_text`](Self::encode_text), nothing is written if the
    /// collection fails.
    pub fn encode_openmetrics<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<Scrape> {
        let (scrape, encoded) = self.scrape(Some(Format::OpenMetrics))?;
        encoded.write_to(w)?;
        Ok(scrape)
    }
}

impl MultiProcessCollector {
    /// Reads and merges `names` (in directory order), on up to `threads`
    /// threads: see [`units`]. With `format`, also returns the families
    /// encoded.
    fn merge_all(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        threads: usize,
        format: Option<Format>,
    ) -> (Vec<Family>, Part, Encoded) {
        let all: Vec<usize> = (0..names.len()).collect();
        let units = units(names);
        // One thread per unit, and one more to read ahead for them.
        let threads = threads.min(units.len() + 1);
        let parts = if threads < 2 || names.len() < PARALLEL_MIN_FILES {
            vec![self.merge_files(dirfd, names, &all, &mut Vec::new(), format, None)]
        } else {
            let next = AtomicUsize::new(0);
            let aheads = ReadAheads::new(&units);
            let work = || self.merge_units(dirfd, names, &units, &aheads, &next, format);
            let spawner_cpu = placement::current_cpu();
            let helper = || {
                placement::leave_cpu(spawner_cpu);
                work()
            };
            std::thread::scope(|s| {
                let others: Vec<_> = (1..threads)
                    .filter_map(|_| {
                        // No thread to be had (process or memory limits):
                        // the threads that exist take its share.
                        std::thread::Builder::new()
                            .name("pm-collect".into())
                            .spawn_scoped(s, helper)
                            .ok()
                    })
                    .collect();
                let mut parts = work();
                for h in others {
                    parts.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
                parts
            })
        };
        let (families, mut merged, encoded) = match combine(parts, format) {
            Some(c) => c,
            // A metric in files of two types or gauge modes, merged out of
            // directory order or on two threads: merge everything again in
            // directory order on one thread, so that the conflict is decided
            // exactly as a sequential merge decides it.
            None => {
                let one = vec![self.merge_files(dirfd, names, &all, &mut Vec::new(), format, None)];
                let (families, mut part, encoded) = combine(one, format).expect("a single part");
                part.merged_again = true;
                (families, part, encoded)
            }
        };
        // Deterministic warnings, whatever the directory order.
        merged.warnings.sort_by(|a, b| a.path.cmp(&b.path));
        for note in std::mem::take(&mut merged.notes) {
            merged.warnings.push(Warning {
                path: self.dir.clone(),
                message: note,
            });
        }
        (families, merged, encoded)
    }

    /// One merging thread: takes the next unit until none is left, and
    /// merges each with a merger of its own (so that building a unit's
    /// families, too, is shared out by the queue); then reads ahead for the
    /// units other threads are still merging.
    fn merge_units(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        units: &[Vec<usize>],
        aheads: &ReadAheads,
        next: &AtomicUsize,
        format: Option<Format>,
    ) -> Vec<(Vec<Family>, Part)> {
        let mut buf = Vec::new();
        let parts = std::iter::from_fn(|| {
            let u = next.fetch_add(1, Ordering::Relaxed);
            let unit = units.get(u)?;
            let ahead = Some((aheads, u));
            Some(self.merge_files(dirfd, names, unit, &mut buf, format, ahead))
        })
        .collect();
        aheads.help(dirfd, names, units);
        parts
    }

    /// Reads and merges the files `names[i]` for each `i` of `files`, in that
    /// order, with a merger of their own, reading into `buf`; with `format`,
    /// encodes the families into the part.
    fn merge_files(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        files: &[usize],
        buf: &mut Vec<u8>,
        format: Option<Format>,
        aheads: Option<(&ReadAheads, usize)>,
    ) -> (Vec<Family>, Part) {
        // The read-ahead state of all units, and of this one.
        let ahead = aheads.map(|(all, u)| (all, &all.units[u]));
        let mut read_ahead = 0;
        let mut st = ScrapeState {
            buf: std::mem::take(buf),
            ..ScrapeState::default()
        };
        // Helpers read ahead while this is alive, and stop when it is
        // dropped, also if merging panics (they would wait for us forever).
        let active = ahead.map(|(_, unit)| Active::new(unit));
        for (pos, &i) in files.iter().enumerate() {
            let (name, kind) = &names[i];
            let pid = naming::parse_file_name(name).map_or("", |(_, p)| p);
            match ahead.and_then(|(all, unit)| Some((all, unit, unit.take(pos)?))) {
                Some((all, unit, read)) => {
                    read_ahead += 1;
                    if let Ok(image) = &read {
                        all.buffered.fetch_sub(image.len(), Ordering::AcqRel);
                    }
                    if let Some(spare) = st.merge_read(&self.dir, name, *kind, pid, read) {
                        unit.give_back(spare);
                    }
                }
                None => st.read_file(&self.dir, dirfd, name, *kind, pid),
            }
            if let Some((all, unit)) = ahead {
                unit.merged.store(pos + 1, Ordering::Release);
                all.progressed();
            }
        }
        drop(active);
        *buf = std::mem::take(&mut st.buf);
        st.stats.entries = st.merger.entries();
        let notes = st.merger.notes();
        let families = st.merger.finish();
        let mut part = Part {
            warnings: st.warnings,
            stats: st.stats,
            notes,
            read_ahead,
            ..Part::default()
        };
        if let Some(format) = format {
            format.encode_each(&families, &mut part.text, &mut part.ends);
        }
        (families, part)
    }
}

/// Marks a unit as being merged ([`ReadAhead::active`]) while alive.
struct Active<'a>(&'a ReadAhead);

impl<'a> Active<'a> {
    fn new(ahead: &'a ReadAhead) -> Self {
        ahead.active.store(true, Ordering::Release);
        Active(ahead)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.store(false, Ordering::Release);
    }
}

/// A file read by a thread other than the one merging it: its image (the
/// `used` bytes), or why it is skipped.
type Read = Result<Vec<u8>, Skip>;

/// Files a helper may read ahead of the thread merging their unit ...
const READ_AHEAD: usize = 8;
/// ... and bytes read ahead, in all, past which helpers read no more.
const READ_AHEAD_BYTES: usize = 32 << 20;

/// Read-ahead for one unit of work. A thread with no unit left to take
/// reads the next files of the units other threads are still merging, so
/// that a directory dominated by one kind of file (histograms, say) still
/// keeps every thread busy. Files are claimed in order through `next` (by
/// a helper, or by the merging thread when it gets there first), and the
/// merging thread merges them in order: the merge is exactly the
/// sequential one.
struct ReadAhead {
    /// The first position in the unit's file list not claimed yet.
    next: AtomicUsize,
    /// Positions merged so far: helpers stay within [`READ_AHEAD`] of it.
    merged: AtomicUsize,
    /// A thread is merging the unit.
    active: AtomicBool,
    /// Files read by helpers, by position.
    slots: Box<[Mutex<Option<Read>>]>,
    /// Buffers handed back by the merging thread, for helpers to read into.
    pool: Mutex<Vec<Vec<u8>>>,
}

impl ReadAhead {
    fn new(files: usize) -> Self {
        ReadAhead {
            next: AtomicUsize::new(0),
            merged: AtomicUsize::new(0),
            active: AtomicBool::new(false),
            slots: (0..files).map(|_| Mutex::new(None)).collect(),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// For the merging thread at `pos`: `None` if it claimed the file and
    /// reads it itself, else the helper's read (waited for if still under
    /// way).
    fn take(&self, pos: usize) -> Option<Read> {
        if self
            .next
            .compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return None;
        }
        let slot = &self.slots[pos];
        let mut spins = 0u32;
        loop {
            if let Some(read) = lock(slot).take() {
                return Some(read);
            }
            // A read takes microseconds: spin, then yield.
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn give_back(&self, buf: Vec<u8>) {
        lock(&self.pool).push(buf);
    }

    /// Claims and reads the next file of `files`, if there is one within
    /// reach.
    fn read_next(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        files: &[usize],
        buffered: &AtomicUsize,
    ) -> Next {
        let pos = self.next.load(Ordering::Acquire);
        if pos >= files.len() || !self.active.load(Ordering::Acquire) {
            return Next::Done;
        }
        if pos >= self.merged.load(Ordering::Acquire) + READ_AHEAD
            || buffered.load(Ordering::Acquire) >= READ_AHEAD_BYTES
            || self
                .next
                .compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Next::Later;
        }
        // The slot is filled even if reading panics: the merging thread
        // waits for it.
        struct Fill<'a>(&'a Mutex<Option<Read>>, Option<Read>);
        impl Drop for Fill<'_> {
            fn drop(&mut self) {
                let read = self
                    .1
                    .take()
                    .unwrap_or_else(|| Err(Skip::Other("could not be read; skipped".into())));
                *lock(self.0) = Some(read);
            }
        }
        let mut fill = Fill(&self.slots[pos], None);
        let mut buf = lock(&self.pool).pop().unwrap_or_default();
        let (name, kind) = &names[files[pos]];
        fill.1 = Some(read_image(dirfd, name, *kind, &mut buf).map(|used| {
            buffered.fetch_add(used, Ordering::AcqRel);
            buf.truncate(used);
            buf
        }));
        Next::Read
    }
}

/// The read-ahead state of every unit, and a way for helpers to wait for
/// the merging threads.
struct ReadAheads {
    units: Vec<ReadAhead>,
    /// Bytes read ahead and not merged yet.
    buffered: AtomicUsize,
    /// Helpers waiting for a merging thread to move on.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    progress: Condvar,
}

impl ReadAheads {
    fn new(units: &[Vec<usize>]) -> Self {
        ReadAheads {
            units: units.iter().map(|u| ReadAhead::new(u.len())).collect(),
            buffered: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            progress: Condvar::new(),
        }
    }

    /// A merging thread merged one more file.
    fn progressed(&self) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            let _guard = lock(&self.lock);
            self.progress.notify_all();
        }
    }

    /// A helper's loop: reads ahead for the units being merged until none
    /// has unclaimed files left.
    fn help(&self, dirfd: &File, names: &[(String, FileKind)], units: &[Vec<usize>]) {
        let mut idle = 0u32;
        loop {
            let mut pending = false;
            let mut read = false;
            for (ahead, files) in self.units.iter().zip(units) {
                match ahead.read_next(dirfd, names, files, &self.buffered) {
                    Next::Read => read = true,
                    Next::Later => pending = true,
                    Next::Done => {}
                }
            }
            if read {
                idle = 0;
                continue;
            }
            if !pending {
                return;
            }
            // Every unit still being merged is READ_AHEAD files ahead: wait
            // for a merging thread to move on. It merges a file every few
            // tens of microseconds, so yield first: being woken from a
            // sleep can take longer than that (on virtual CPUs, much
            // longer). Then sleep until woken (the timeout covers a wake-up
            // sent between our look and our wait).
            idle += 1;
            if idle < 200 {
                std::thread::yield_now();
                continue;
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let guard = lock(&self.lock);
            let _ = self
                .progress
                .wait_timeout(guard, Duration::from_micros(500));
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What [`ReadAhead::read_next`] did.
enum Next {
    /// Read a file.
    Read,
    /// Nothing to read now, maybe later.
    Later,
    /// Nothing left to read in this unit.
    Done,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The warnings, statistics and merge notes of merged files.
#[derive(Default)]
struct Part {
    warnings: Vec<Warning>,
    stats: Stats,
    notes: Vec<String>,
    /// The files were merged again on one thread (see `combine`).
    merged_again: bool,
    /// Files merged that another thread had read (see [`ReadAhead`]).
    read_ahead: usize,
    /// The families encoded, if asked for, one after the other ...
    text: Vec<u8>,
    /// ... each ending at this offset of `text`.
    ends: Vec<usize>,
}

/// Directories with fewer files are merged on one thread.
const PARALLEL_MIN_FILES: usize = 32;

/// Splits the files into units of work, one per file kind (counters,
/// histograms, each gauge mode, ...), each listing its files in directory
/// order. Merging threads take the units one at a time, the likely largest
/// first (histograms, then counters, then `all`/`liveall` gauges, then
/// the kinds with the most files), and merge each with a [`Merger`] of its
/// own.
///
/// A metric lives in files of one kind, so each is merged in one unit, from
/// its files in exactly the order a sequential merge takes them: the result
/// is the same, bit for bit. For metrics found in files of two kinds (type
/// conflicts, gauges written in several modes), see [`combine`].
fn units(names: &[(String, FileKind)]) -> Vec<Vec<usize>> {
    let mut units: Vec<(FileKind, Vec<usize>)> = Vec::new();
    for (i, (_, kind)) in names.iter().enumerate() {
        match units.iter_mut().find(|(k, _)| k == kind) {
            Some((_, files)) => files.push(i),
            None => units.push((*kind, vec![i])),
        }
    }
    let rank = |kind: &FileKind| match kind {
        FileKind::Histogram => 0,
        FileKind::Counter => 1,
        FileKind::Gauge(m) if m.keeps_pid() => 2,
        _ => 3,
    };
    units.sort_by(|(a, fa), (b, fb)| rank(a).cmp(&rank(b)).then(fb.len().cmp(&fa.len())));
    units.into_iter().map(|(_, files)| files).collect()
}

/// Joins the units' families (each list sorted by name) into one list
/// sorted by name. `None` if the result could differ from a sequential
/// merge's: a metric name occurs in two parts (files of two types or gauge
/// modes, whose outcome depends on the order of all files). The caller then
/// merges again on one thread.
fn combine(
    parts: Vec<(Vec<Family>, Part)>,
    format: Option<Format>,
) -> Option<(Vec<Family>, Part, Encoded)> {
    let single = parts.len() == 1;
    let mut all = Part::default();
    // Each family, with its part and the range of its bytes in that part's
    // text (empty when not encoded).
    let mut pieces: Vec<(Family, (usize, Range<usize>))> = Vec::new();
    let mut texts = Vec::with_capacity(parts.len());
    for (p, (families, part)) in parts.into_iter().enumerate() {
        let mut start = 0;
        for (i, f) in families.into_iter().enumerate() {
            let end = part.ends.get(i).copied().unwrap_or(start);
            pieces.push((f, (p, start..end)));
            start = end;
        }
        texts.push(part.text);
        all.warnings.extend(part.warnings);
        all.notes.extend(part.notes);
        all.stats.files_read += part.stats.files_read;
        all.stats.files_corrupt += part.stats.files_corrupt;
        all.stats.files_dead += part.stats.files_dead;
        all.stats.files_skipped += part.stats.files_skipped;
        all.stats.entries += part.stats.entries;
        all.read_ahead += part.read_ahead;
    }
    if !single {
        pieces.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        if pieces.windows(2).any(|w| w[0].0.name == w[1].0.name) {
            return None;
        }
    }
    let (families, pieces) = pieces.into_iter().unzip();
    let encoded = Encoded {
        texts,
        pieces,
        trailer: format.map_or(&b""[..], Format::trailer),
    };
    Some((families, all, encoded))
}

/// Families encoded in pieces: each family's bytes are a range of one of
/// `texts` (one per unit of work), listed in output order in `pieces`, and
/// `trailer` follows them. Written out with vectored writes, so that the
/// pieces are never copied into one buffer before being written.
#[derive(Default)]
struct Encoded {
    texts: Vec<Vec<u8>>,
    pieces: Vec<(usize, Range<usize>)>,
    trailer: &'static [u8],
}

impl Encoded {
    /// `families` encoded in `format` on this thread.
    fn of(format: Format, families: &[Family]) -> Encoded {
        let mut text = Vec::new();
        let mut ends = Vec::new();
        format.encode_each(families, &mut text, &mut ends);
        Encoded {
            pieces: vec![(0, 0..text.len())],
            texts: vec![text],
            trailer: format.trailer(),
        }
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        self.pieces
            .iter()
            .map(|(p, r)| IoSlice::new(&self.texts[*p][r.clone()]))
            .chain(std::iter::once(IoSlice::new(self.trailer)))
            .collect()
    }

    /// Writes all of it to `w` (`Write::write_all_vectored` is unstable).
    fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        let mut slices = self.slices();
        let mut rest = &mut slices[..];
        IoSlice::advance_slices(&mut rest, 0);
        while !rest.is_empty() {
            match w.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends all of it to `out`; moves the text instead of copying it
    /// when `out` is empty and the pieces are one text in order.
    fn append_to(mut self, out: &mut Vec<u8>) {
        let mut end = 0;
        let in_order = self.pieces.iter().all(|(p, r)| {
            let next = *p == 0 && r.start == end;
            end = r.end;
            next
        });
        if out.is_empty() && in_order && self.texts.len() == 1 {
            let mut text = self.texts.swap_remove(0);
            text.truncate(end);
            text.extend_from_slice(self.trailer);
            *out = text;
            return;
        }
        let len: usize = self.pieces.iter().map(|(_, r)| r.len()).sum();
        out.reserve(len + self.trailer.len());
        for (p, r) in &self.pieces {
            out.extend_from_slice(&self.texts[*p][r.clone()]);
        }
        out.extend_from_slice(self.trailer);
    }
}

/// Where merging threads run.
///
/// Some kernels place a new thread on the CPU of the thread that spawned it
/// and move it only at a later load balance, or wake an idle CPU slowly: on
/// the 2-CPU virtual machines this was measured on (whose kernel packs
/// threads onto few virtual CPUs), the spawned merging thread usually shared
/// the spawner's CPU for 1 to 5 ms before running in parallel, a fifth of a
/// scrape (`docs/performance.md`). A merging thread that starts on its
/// spawner's CPU therefore moves itself off it: it narrows its own affinity
/// to the other allowed CPUs (the kernel migrates it at once) and restores
/// the affinity it had. The allowed set is never widened, so `taskset` and
/// cgroup cpusets are respected; where any step fails, the thread stays put.
mod placement {
    /// The CPU the calling thread runs on, where the system says.
    pub(super) fn current_cpu() -> Option<usize> {
        #[cfg(target_os = "linux")]
        {
            nix::sched::sched_getcpu().ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Moves the calling thread off CPU `spawner` if it runs there and
    /// another CPU is allowed.
    pub(super) fn leave_cpu(spawner: Option<usize>) {
        #[cfg(target_os = "linux")]
        {
            use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
            use nix::unistd::Pid;

            let Some(spawner) = spawner else { return };
            if current_cpu() != Some(spawner) {
                return;
            }
            let me = Pid::from_raw(0);
            let Ok(allowed) = sched_getaffinity(me) else {
                return;
            };
            let mut others = allowed;
            if others.unset(spawner).is_err()
                || !(0..CpuSet::count()).any(|c| others.is_set(c) == Ok(true))
            {
                return;
            }
            if sched_setaffinity(me, &others).is_ok() {
                // Now on another CPU; give the scheduler its choices back.
                let _ = sched_setaffinity(me, &allowed);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = spawner;
    }
}

impl prometheus::core::Collector for MultiProcessCollector {
    /// No descriptors: the metrics are only known when the files are read.
    /// A registry accepts one such collector.
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        Vec::new()
    }

    /// Collects, prints warnings to standard error, and converts with
    /// [`to_metric_families`]. If the directory cannot be read, prints the
    /// error and returns nothing.
    fn collect(&self) -> Vec<proto::MetricFamily> {
        match self.collect_families() {
            Ok(scrape) => {
                scrape.print_warnings();
                to_metric_families(&scrape.families)
            }
            Err(e) => {
                eprintln!("warning: cannot collect multiprocess metrics: {e}");
                Vec::new()
            }
        }
    }
}

/// Per-scrape state: the merger, reused buffers, warnings, counters.
#[derive(Default)]
struct ScrapeState {
    merger: Merger,
    buf: Vec<u8>,
    staged: Vec<(KeyId, f64, f64)>,
    warnings: Vec<Warning>,
    stats: Stats,
}

/// Why a file was not merged.
enum Skip {
    /// Nothing to say (empty file, vanished live gauge).
    Quiet,
    /// The writer is dead.
    Dead,
    /// Not readable as a file: warn.
    Other(String),
    /// Corrupt content: warn.
    Corrupt(String),
}

impl ScrapeState {
    /// Reads and merges the file `name` of the directory `dir`, open as
    /// `dirfd`.
    fn read_file(&mut self, dir: &Path, dirfd: &File, name: &str, kind: FileKind, pid: &str) {
        let outcome = read_image(dirfd, name, kind, &mut self.buf)
            .and_then(|used| self.merge_image(used, kind, pid));
        self.record(dir, name, outcome);
    }

    /// Merges a file read by another thread (see [`ReadAhead`]); returns
    /// a buffer for the next read.
    fn merge_read(
        &mut self,
        dir: &Path,
        name: &str,
        kind: FileKind,
        pid: &str,
        read: Read,
    ) -> Option<Vec<u8>> {
        let mut spare = None;
        let outcome = read.and_then(|image| {
            let used = image.len();
            spare = Some(std::mem::replace(&mut self.buf, image));
            self.merge_image(used, kind, pid)
        });
        self.record(dir, name, outcome);
        spare
    }

    /// Counts and warns about the outcome of reading and merging one file.
    fn record(&mut self, dir: &Path, name: &str, outcome: Result<Vec<TypeConflict>, Skip>) {
        match outcome {
            Ok(conflicts) => {
                self.stats.files_read += 1;
                for c in conflicts {
                    self.warn(dir.join(name), c.to_string());
                }
            }
            Err(Skip::Quiet) => self.stats.files_skipped += 1,
            Err(Skip::Dead) => self.stats.files_dead += 1,
            Err(Skip::Other(message)) => {
                self.stats.files_skipped += 1;
                self.warn(dir.join(name), message);
            }
            Err(Skip::Corrupt(why)) => {
                self.stats.files_corrupt += 1;
                self.warn(
                    dir.join(name),
                    format!("corrupt metrics file skipped: {why}"),
                );
            }
        }
    }

    fn warn(&mut self, path: PathBuf, message: String) {
        self.warnings.push(Warning { path, message });
    }

    /// Merges the file image `self.buf[..used]`; returns the type
    /// conflicts met.
    fn merge_image(
        &mut self,
        used: usize,
        kind: FileKind,
        pid: &str,
    ) -> Result<Vec<TypeConflict>, Skip> {
        let data = &self.buf[..used];
        self.staged.clear();
        self.merger.start_file();
        let entries = Entries::new(data).map_err(|c| Skip::Corrupt(c.to_string()))?;
        for e in entries {
            let e = e.map_err(|c| Skip::Corrupt(c.to_string()))?;
            match self.merger.resolve(kind, e.key) {
                Ok(id) => self.staged.push((id, e.value, e.timestamp)),
                Err(why) => {
                    let at = e.value_offset - format::value_offset(e.key.len());
                    return Err(corrupt(at, CorruptKind::BadKey(why.reason().to_owned())));
                }
            }
        }
        let report = self.merger.add_file(kind, pid, self.staged.iter().copied());
        Ok(report.conflicts)
    }
}

/// Reads the file `name` of the directory open as `dirfd` into `buf`;
/// returns its `used` length (the bytes of `buf` that hold it).
fn read_image(dirfd: &File, name: &str, kind: FileKind, buf: &mut Vec<u8>) -> Result<usize, Skip> {
    // Info files describe living processes, as live gauges do.
    let live = matches!(kind, FileKind::Gauge(m) if m.is_live()) || kind == FileKind::Info;
    let file = dead::open_no_follow_at(dirfd, name).map_err(|e| match e.kind() {
        // Removed by mark_process_dead between listing and opening.
        io::ErrorKind::NotFound if live => Skip::Quiet,
        io::ErrorKind::NotFound => Skip::Other("vanished before it could be read; skipped".into()),
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            Skip::Other("is a symbolic link; skipped".into())
        }
        _ => Skip::Other(format!("cannot open: {e}; skipped")),
    })?;
    let size = file_size(&file)?;
    if size == 0 {
        return Err(Skip::Quiet);
    }
    if size > MAX_FILE_SIZE {
        return Err(Skip::Other(format!(
            "{size} bytes is larger than the limit of {MAX_FILE_SIZE}; skipped"
        )));
    }

    let mut header = [0u8; HEADER_LEN];
    let n = read_full_at(&file, &mut header, 0)
        .map_err(|e| Skip::Other(format!("cannot read: {e}; skipped")))?;
    if n < HEADER_LEN {
        return Err(corrupt(0, CorruptKind::ShortHeader { len: n }));
    }
    let used = format::read_used(&header).unwrap_or(0);
    if used == 0 {
        return Err(Skip::Quiet);
    }
    if used < HEADER_LEN as i32 {
        return Err(corrupt(0, CorruptKind::BadUsed { used: used.into() }));
    }
    let used = used as usize;

    // A writer of this crate holds its lock while alive; if the probe
    // cannot tell (no marker, locking unsupported), read the file.
    if live && dead::probe_liveness(&file, &header) == Liveness::Dead {
        return Err(Skip::Dead);
    }

    // The file may have grown since fstat; look again before giving up.
    let mut size = size;
    if used as u64 > size {
        size = file_size(&file)?;
        if used as u64 > size {
            return Err(corrupt(
                0,
                CorruptKind::UsedPastEnd {
                    used,
                    len: size.try_into().unwrap_or(usize::MAX),
                },
            ));
        }
    }

    if buf.len() < used {
        buf.resize(used, 0);
    }
    let data = &mut buf[..used];
    data[..HEADER_LEN].copy_from_slice(&header);
    let n = read_full_at(&file, &mut data[HEADER_LEN..], HEADER_LEN as u64)
        .map_err(|e| Skip::Other(format!("cannot read: {e}; skipped")))?;
    if n < used - HEADER_LEN {
        return Err(Skip::Other(format!(
            "shrank to {} bytes while being read (used field {used}); skipped",
            HEADER_LEN + n
        )));
    }
    Ok(used)
}

fn corrupt(offset: usize, kind: CorruptKind) -> Skip {
    Skip::Corrupt(Corrupt { offset, kind }.to_string())
}

/// fstat: the size of a regular file.
fn file_size(file: &File) -> Result<u64, Skip> {
    let md = file
        .metadata()
        .map_err(|e| Skip::Other(format!("cannot stat: {e}; skipped")))?;
    if !md.file_type().is_file() {
        return Err(Skip::Other("not a regular file; skipped".into()));
    }
    Ok(md.len())
}

/// Positional read of up to `buf.len()` bytes; fewer only at end of file.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

// ---------------------------------------------------------------------------
// Conversion to the `prometheus` crate's model.

/// Converts merged families to the `prometheus` crate's `MetricFamily`
/// values, names and label names escaped as in the text format.
///
/// * Counters: a `COUNTER` family `<name>_total`; other samples (such as
///   `_created`) become `GAUGE` families of their own names.
/// * Gauges, info and state sets: a `GAUGE` family per sample name
///   (`<name>`, `<name>_info`), with the `pid` label where the mode keeps it.
/// * Histograms: a `HISTOGRAM` family with cumulative buckets (the `+Inf`
///   bucket left out: the `prometheus` encoders add it from the count),
///   `sample_count` and `sample_sum`.
/// * Summaries: a `SUMMARY` family with `sample_count`, `sample_sum` and
///   quantiles if any.
///
/// Counts are converted to integers (`u64`), as that model requires.
/// Families without samples are left out.
pub fn to_metric_families(families: &[Family]) -> Vec<proto::MetricFamily> {
    let mut out = Vec::new();
    for f in families {
        match f.kind {
            FamilyKind::Histogram | FamilyKind::Summary => out.extend(structured_family(f)),
            _ => simple_families(f, &mut out),
        }
    }
    out
}

type LabelRef<'a> = &'a (Arc<str>, Arc<str>);

fn label_pairs<'a>(labels: impl IntoIterator<Item = LabelRef<'a>>) -> Vec<proto::LabelPair> {
    labels
        .into_iter()
        .map(|(k, v)| {
            let mut p = proto::LabelPair::default();
            p.set_name(expose::escaped_label_name(k));
            p.set_value(v.to_string());
            p
        })
        .collect()
}

fn new_family(name: String, help: &str, typ: proto::MetricType) -> proto::MetricFamily {
    let mut mf = proto::MetricFamily::default();
    mf.set_name(name);
    mf.set_help(help.to_owned());
    mf.set_field_type(typ);
    mf
}

fn simple_families(f: &Family, out: &mut Vec<proto::MetricFamily>) {
    let total = format!("{}_total", f.name);
    let first = out.len();
    let mut names: Vec<&str> = Vec::new();
    for s in &f.samples {
        let idx = match names.iter().position(|n| *n == &*s.name) {
            Some(i) => first + i,
            None => {
                names.push(&s.name);
                let typ = if f.kind == FamilyKind::Counter && *s.name == *total {
                    proto::MetricType::COUNTER
                } else {
                    proto::MetricType::GAUGE
                };
                out.push(new_family(
                    expose::escaped_metric_name(&s.name),
                    &f.help,
                    typ,
                ));
                out.len() - 1
            }
        };
        let mut m = proto::Metric::from_label(label_pairs(&s.labels));
        if out[idx].get_field_type() == proto::MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(s.value);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(s.value);
            m.set_gauge(g);
        }
        out[idx].mut_metric().push(m);
    }
}

#[derive(Default)]
struct Structured {
    buckets: Vec<(f64, f64)>,
    quantiles: Vec<(f64, f64)>,
    sum: f64,
    count: Option<f64>,
}

fn to_count(v: f64) -> u64 {
    // Saturating; NaN becomes 0.
    v as u64
}

fn structured_family(f: &Family) -> Option<proto::MetricFamily> {
    let (bucket, sum, count) = (
        format!("{}_bucket", f.name),
        format!("{}_sum", f.name),
        format!("{}_count", f.name),
    );
    let hist = f.kind == FamilyKind::Histogram;
    let special = if hist { "le" } else { "quantile" };
    // Group by label set without `le`/`quantile`, in first-seen order.
    let mut groups: Vec<(Vec<LabelRef<'_>>, Structured)> = Vec::new();
    for s in &f.samples {
        let base: Vec<_> = s.labels.iter().filter(|(k, _)| &**k != special).collect();
        // `+Inf` parses too.
        let bound = s.label(special).and_then(|v| v.parse::<f64>().ok());
        let gi = match groups.iter().rposition(|(b, _)| *b == base) {
            Some(i) => i,
            None => {
                groups.push((base, Structured::default()));
                groups.len() - 1
            }
        };
        let g = &mut groups[gi].1;
        match (&*s.name, bound) {
            (n, Some(b)) if hist && n == bucket => g.buckets.push((b, s.value)),
            (n, Some(q)) if !hist && n == f.name => g.quantiles.push((q, s.value)),
            (n, None) if n == sum => g.sum += s.value,
            (n, None) if n == count => g.count = Some(g.count.unwrap_or(0.0) + s.value),
            _ => {}
        }
    }
    if groups.is_empty() {
        return None;
    }
    let typ = if hist {
        proto::MetricType::HISTOGRAM
    } else {
        proto::MetricType::SUMMARY
    };
    let mut mf = new_family(expose::escaped_metric_name(&f.name), &f.help, typ);
    for (base, mut g) in groups {
        let mut m = proto::Metric::from_label(label_pairs(base));
        g.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = g
            .count
            .or_else(|| g.buckets.last().map(|b| b.1))
            .unwrap_or(0.0);
        if hist {
            let mut h = proto::Histogram::default();
            h.set_sample_count(to_count(count));
            h.set_sample_sum(g.sum);
            h.set_bucket(
                g.buckets
                    .iter()
                    .filter(|(b, _)| *b != f64::INFINITY)
                    .map(|&(b, v)| {
                        let mut pb = proto::Bucket::default();
                        pb.set_upper_bound(b);
                        pb.set_cumulative_count(to_count(v));
                        pb
                    })
                    .collect(),
            );
            m.set_histogram(h);
        } else {
            let mut s = proto::Summary::default();
            s.set_sample_count(to_count(count));
            s.set_sample_sum(g.sum);
            s.set_quantile(
                g.quantiles
                    .iter()
                    .map(|&(q, v)| {
                        let mut pq = proto::Quantile::default();
                        pq.set_quantile(q);
                        pq.set_value(v);
                        pq
                    })
                    .collect(),
            );
            m.set_summary(s);
        }
        mf.mut_metric().push(m);
    }
    Some(mf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{LOCK_MARKER, build_file};
    use crate::key::encode_key;
    use crate::naming::GaugeMode;

    fn write(dir: &Path, name: &str, entries: &[(String, f64, f64)]) {
        let e: Vec<(&[u8], f64, f64)> = entries
            .iter()
            .map(|(k, v, t)| (k.as_bytes(), *v, *t))
            .collect();
        std::fs::write(dir.join(name), build_file(&e, 4096)).unwrap();
    }

    fn k(metric: &str, sample: &str, labels: &[(&str, &str)], help: &str) -> String {
        encode_key(metric, sample, labels, help)
    }

    /// A fixed directory; the expected output below was produced by
    /// prometheus_client 0.26's MultiProcessCollector + generate_latest on
    /// the same files (line order aside: Python follows directory order).
    fn fixed_dir(dir: &Path) {
        for (pid, n) in [("100", 1.0), ("200", 2.0)] {
            write(
                dir,
                &format!("counter_{pid}.db"),
                &[
                    (
                        k(
                            "requests",
                            "requests_total",
                            &[("path", "/a"), ("code", "200")],
                            "Requests served.",
                        ),
                        3.0 * n,
                        0.0,
                    ),
                    (
                        k(
                            "requests",
                            "requests_total",
                            &[("path", "/b\"\\\n"), ("code", "500")],
                            "Requests served.",
                        ),
                        n,
                        0.0,
                    ),
                ],
            );
            write(
                dir,
                &format!("histogram_{pid}.db"),
                &[
                    (
                        k(
                            "latency_seconds",
                            "latency_seconds_sum",
                            &[],
                            "Latency\\with\nnewline.",
                        ),
                        0.25 * n,
                        0.0,
                    ),
                    (
                        k(
                            "latency_seconds",
                            "latency_seconds_bucket",
                            &[("le", "0.1")],
                            "Latency\\with\nnewline.",
                        ),
                        n,
                        0.0,
                    ),
                    (
                        k(
                            "latency_seconds",
                            "latency_seconds_bucket",
                            &[("le", "1.0")],
                            "Latency\\with\nnewline.",
                        ),
                        1.0,
                        0.0,
                    ),
                    (
                        k(
                            "latency_seconds",
                            "latency_seconds_bucket",
                            &[("le", "1e+06")],
                            "Latency\\with\nnewline.",
                        ),
                        0.0,
                        0.0,
                    ),
                    (
                        k(
                            "latency_seconds",
                            "latency_seconds_bucket",
                            &[("le", "+Inf")],
                            "Latency\\with\nnewline.",
                        ),
                        0.0,
                        0.0,
                    ),
                ],
            );
            write(
                dir,
                &format!("gauge_all_{pid}.db"),
                &[(k("inflight", "inflight", &[], "In flight."), n, 0.0)],
            );
            write(
                dir,
                &format!("gauge_livesum_{pid}.db"),
                &[(
                    k("workers", "workers", &[("kind", "web")], "Workers."),
                    1.0,
                    0.0,
                )],
            );
            write(
                dir,
                &format!("gauge_mostrecent_{pid}.db"),
                &[
                    (
                        k("last_seen", "last_seen", &[], "Last seen."),
                        10.0 * n,
                        1000.0 + n,
                    ),
                    (k("never_set", "never_set", &[], "Never set."), 5.0, 0.0),
                ],
            );
            write(
                dir,
                &format!("summary_{pid}.db"),
                &[
                    (k("size_bytes", "size_bytes_count", &[], "Sizes."), 2.0, 0.0),
                    (k("size_bytes", "size_bytes_sum", &[], "Sizes."), 1.5e7, 0.0),
                ],
            );
        }
        // Names with characters outside the legacy set.
        write(
            dir,
            "counter_300.db",
            &[(
                k(
                    "odd.name",
                    "odd.name_total",
                    &[("lab-el", "v"), ("ünï", "x")],
                    "Odd \"name\".",
                ),
                1.0,
                0.0,
            )],
        );
    }

    const FIXED_TEXT: &[&str] = &[
        "# HELP inflight In flight.",
        "# TYPE inflight gauge",
        "inflight{pid=\"100\"} 1.0",
        "inflight{pid=\"200\"} 2.0",
        "# HELP last_seen Last seen.",
        "# TYPE last_seen gauge",
        "last_seen 20.0",
        "# HELP latency_seconds Latency\\\\with\\nnewline.",
        "# TYPE latency_seconds histogram",
        "latency_seconds_bucket{le=\"0.1\"} 3.0",
        "latency_seconds_bucket{le=\"1.0\"} 5.0",
        "latency_seconds_bucket{le=\"1e+06\"} 5.0",
        "latency_seconds_bucket{le=\"+Inf\"} 5.0",
        "latency_seconds_sum 0.75",
        "latency_seconds_count 5.0",
        "# HELP never_set Never set.",
        "# TYPE never_set gauge",
        "# HELP odd_name_total Odd \"name\".",
        "# TYPE odd_name_total counter",
        "odd_name_total{lab_el=\"v\",_n_=\"x\"} 1.0",
        "# HELP requests_total Requests served.",
        "# TYPE requests_total counter",
        "requests_total{code=\"200\",path=\"/a\"} 9.0",
        "requests_total{code=\"500\",path=\"/b\\\"\\\\\\n\"} 3.0",
        "# HELP size_bytes Sizes.",
        "# TYPE size_bytes summary",
        "size_bytes_count 4.0",
        "size_bytes_sum 3e+07",
        "# HELP workers Workers.",
        "# TYPE workers gauge",
        "workers{kind=\"web\"} 2.0",
    ];

    const FIXED_OPENMETRICS: &[&str] = &[
        "# HELP inflight In flight.",
        "# TYPE inflight gauge",
        "inflight{pid=\"100\"} 1.0",
        "inflight{pid=\"200\"} 2.0",
        "# HELP last_seen Last seen.",
        "# TYPE last_seen gauge",
        "last_seen 20.0",
        "# HELP latency_seconds Latency\\\\with\\nnewline.",
        "# TYPE latency_seconds histogram",
        "latency_seconds_bucket{le=\"0.1\"} 3.0",
        "latency_seconds_bucket{le=\"1.0\"} 5.0",
        "latency_seconds_bucket{le=\"1e+06\"} 5.0",
        "latency_seconds_bucket{le=\"+Inf\"} 5.0",
        "latency_seconds_sum 0.75",
        "latency_seconds_count 5.0",
        "# HELP never_set Never set.",
        "# TYPE never_set gauge",
        "# HELP odd_name Odd \\\"name\\\".",
        "# TYPE odd_name counter",
        "odd_name_total{lab_el=\"v\",_n_=\"x\"} 1.0",
        "# HELP requests Requests served.",
        "# TYPE requests counter",
        "requests_total{code=\"200\",path=\"/a\"} 9.0",
        "requests_total{code=\"500\",path=\"/b\\\"\\\\\\n\"} 3.0",
        "# HELP size_bytes Sizes.",
        "# TYPE size_bytes summary",
        "size_bytes_count 4.0",
        "size_bytes_sum 3e+07",
        "# HELP workers Workers.",
        "# TYPE workers gauge",
        "workers{kind=\"web\"} 2.0",
        "# EOF",
    ];

    #[test]
    fn fixed_directory_matches_python() {
        let dir = tempfile::tempdir().unwrap();
        fixed_dir(dir.path());
        let c = MultiProcessCollector::new(dir.path()).unwrap();
        let mut out = Vec::new();
        let scrape = c.encode_text(&mut out).unwrap();
        assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().collect::<Vec<_>>(), FIXED_TEXT);
        let mut out = Vec::new();
        c.encode_openmetrics(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().collect::<Vec<_>>(), FIXED_OPENMETRICS);
        let s = scrape.stats;
        assert_eq!(
            (s.files_read, s.files_corrupt, s.files_dead, s.files_skipped),
            (13, 0, 0, 0)
        );
        assert_eq!(s.families, 8);
        assert_eq!(s.samples, 15);
        assert_eq!(s.entries, 2 * (2 + 5 + 1 + 1 + 2 + 2) + 1);
    }

    #[test]
    fn bad_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = MultiProcessCollector::new(&file).unwrap_err();
        assert!(e.is_bad_dir());
        assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
        // Removed after creation: collecting fails.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let c = MultiProcessCollector::new(&sub).unwrap();
        std::fs::remove_dir(&sub).unwrap();
        let e = c.collect_families().unwrap_err();
        assert_eq!(e.path(), Some(sub.as_path()));
        assert!(c.encode_text(&mut Vec::new()).is_err());
    }

    #[test]
    fn corrupt_files_are_skipped_whole_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = k("c", "c_total", &[], "");
        write(d, "counter_1.db", &[(good.clone(), 1.0, 0.0)]);
        // A good entry, then a key that is not JSON: nothing of it counts.
        write(
            d,
            "counter_2.db",
            &[(good.clone(), 100.0, 0.0), ("[oops".into(), 1.0, 0.0)],
        );
        // Invalid UTF-8 in a key.
        let mut img = build_file(
            &[(good.as_bytes(), 100.0, 0.0), (b"[\"\xff\"]", 1.0, 0.0)],
            0,
        );
        std::fs::write(d.join("counter_3.db"), &img).unwrap();
        // `used` past the end of the file.
        img[0..4].copy_from_slice(&100_000i32.to_le_bytes());
        std::fs::write(d.join("counter_4.db"), &img).unwrap();
        // A short header.
        std::fs::write(d.join("counter_5.db"), [1u8, 2, 3]).unwrap();
        // A bad bucket bound.
        write(
            d,
            "histogram_6.db",
            &[(k("h", "h_bucket", &[("le", "x")], ""), 1.0, 0.0)],
        );
        // An empty metric name.
        write(d, "counter_7.db", &[(k("", "x", &[], ""), 1.0, 0.0)]);
        // A negative key length.
        let mut img = build_file(&[(good.as_bytes(), 100.0, 0.0)], 64);
        img[8..12].copy_from_slice(&(-1i32).to_le_bytes());
        std::fs::write(d.join("counter_8.db"), &img).unwrap();

        let c = MultiProcessCollector::new(d).unwrap();
        let s = c.collect_families().unwrap();
        assert_eq!(s.stats.files_read, 1);
        assert_eq!(s.stats.files_corrupt, 7, "{:?}", s.warnings);
        assert_eq!(s.warnings.len(), 7);
        let msgs: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
        for (file, what) in [
            ("counter_2.db", "key at offset 56"),
            ("counter_3.db", "not UTF-8"),
            ("counter_4.db", "past the end"),
            ("counter_5.db", "short header"),
            ("histogram_6.db", "le="),
            ("counter_7.db", "empty metric name"),
            ("counter_8.db", "negative key length"),
        ] {
            assert!(
                msgs.iter().any(|m| m.contains(file) && m.contains(what)),
                "{file} {what}: {msgs:#?}"
            );
        }
        assert_eq!(s.families.len(), 1);
        assert_eq!(s.families[0].samples[0].value, 1.0);
    }

    #[test]
    fn odd_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = k("c", "c_total", &[], "");
        write(d, "counter_1.db", &[(key.clone(), 1.0, 0.0)]);
        // Ignored quietly: not our names, empty files, never-written files.
        write(d, "foo_1.db", &[(key.clone(), 1.0, 0.0)]);
        write(d, "counter_1.db.tmp", &[(key.clone(), 1.0, 0.0)]);
        write(d, "gauge_bogus_1.db", &[(key.clone(), 1.0, 0.0)]);
        std::fs::write(d.join("counter_2.db"), b"").unwrap();
        std::fs::write(d.join("counter_3.db"), vec![0u8; 4096]).unwrap();
        // Skipped with a warning: directory, symlink, FIFO.
        std::fs::create_dir(d.join("counter_4.db")).unwrap();
        std::os::unix::fs::symlink(d.join("counter_1.db"), d.join("counter_5.db")).unwrap();
        let fifo =
            std::ffi::CString::new(d.join("counter_6.db").into_os_string().into_encoded_bytes())
                .unwrap();
        nix::unistd::mkfifo(fifo.as_c_str(), nix::sys::stat::Mode::S_IRWXU).unwrap();

        let s = MultiProcessCollector::new(d)
            .unwrap()
            .collect_families()
            .unwrap();
        assert_eq!(s.stats.files_read, 1);
        assert_eq!(s.stats.files_skipped, 5);
        let msgs: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        assert!(msgs[0].contains("counter_4.db") && msgs[0].contains("not a regular file"));
        assert!(msgs[1].contains("counter_5.db") && msgs[1].contains("symbolic link"));
        assert!(msgs[2].contains("counter_6.db") && msgs[2].contains("not a regular file"));
        assert_eq!(s.families[0].samples[0].value, 1.0);
    }

    #[test]
    fn dead_live_gauge_writers_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = k("w", "w", &[], "");
        let marked = |v: f64| {
            let mut img = build_file(&[(key.as_bytes(), v, 0.0)], 4096);
            img[4..8].copy_from_slice(&LOCK_MARKER);
            img
        };
        // Alive: the "writer" holds an exclusive lock on its own descriptor.
        std::fs::write(d.join("gauge_livesum_1.db"), marked(1.0)).unwrap();
        let alive = File::open(d.join("gauge_livesum_1.db")).unwrap();
        alive.lock().unwrap();
        // Dead: marked, nobody holds the lock.
        std::fs::write(d.join("gauge_livesum_2.db"), marked(10.0)).unwrap();
        // No marker (written by Python): always read.
        write(d, "gauge_livesum_3.db", &[(key.clone(), 100.0, 0.0)]);
        // Marked but not a live mode: always read.
        let sum = k("s", "s", &[], "");
        let mut img = build_file(&[(sum.as_bytes(), 1000.0, 0.0)], 4096);
        img[4..8].copy_from_slice(&LOCK_MARKER);
        std::fs::write(d.join("gauge_sum_4.db"), img).unwrap();

        let s = MultiProcessCollector::new(d)
            .unwrap()
            .collect_families()
            .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.stats.files_dead, 1);
        assert_eq!(s.stats.files_read, 3);
        let w = s.families.iter().find(|f| f.name == "w").unwrap();
        assert_eq!(w.samples[0].value, 101.0);
        let sf = s.families.iter().find(|f| f.name == "s").unwrap();
        assert_eq!(sf.samples[0].value, 1000.0);
        // The probe left no lock behind.
        let probe = File::open(d.join("gauge_livesum_2.db")).unwrap();
        probe.try_lock().unwrap();
        drop(alive);
    }

    #[test]
    fn type_conflicts_and_mixed_modes_are_warned() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = k("x", "x", &[], "");
        write(d, "counter_1.db", &[(key.clone(), 1.0, 0.0)]);
        write(d, "gauge_all_1.db", &[(key.clone(), 5.0, 0.0)]);
        write(d, "gauge_max_1.db", &[(k("y", "y", &[], ""), 5.0, 0.0)]);
        write(d, "gauge_min_1.db", &[(k("y", "y", &[], ""), 2.0, 0.0)]);
        let s = MultiProcessCollector::new(d)
            .unwrap()
            .collect_families()
            .unwrap();
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].path.ends_with("gauge_all_1.db"));
        assert!(s.warnings[0].message.contains("counter"));
        assert!(s.warnings[1].message.contains("using min"));
        assert_eq!(s.families[0].kind, FamilyKind::Counter);
        assert_eq!(s.families[1].samples[0].value, 2.0);
    }

    #[test]
    fn vanished_live_gauges_are_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let dirfd = dead::open_dir(dir.path()).unwrap();
        let mut st = ScrapeState::default();
        let live = FileKind::Gauge(GaugeMode::LiveSum);
        st.read_file(dir.path(), &dirfd, "gauge_livesum_9.db", live, "9");
        assert!(st.warnings.is_empty());
        st.read_file(dir.path(), &dirfd, "counter_9.db", FileKind::Counter, "9");
        assert_eq!(st.warnings.len(), 1);
        assert!(st.warnings[0].message.contains("vanished"));
        assert_eq!(st.stats.files_skipped, 2);
    }

    /// A directory with every file type, a corrupt file, mixed gauge modes
    /// and (with `conflict`) a metric in counter and histogram files.
    fn mixed_dir(dir: &Path, conflict: bool, mixed_modes: bool) {
        let hist = |le: &str| k("lat", "lat_bucket", &[("le", le), ("p", "/")], "L.");
        for w in 0..12 {
            let v = 0.1 * f64::from(w + 1);
            write(
                dir,
                &format!("counter_{w}.db"),
                &[(k("req", "req_total", &[], "R."), v, 0.0)],
            );
            let mut h = vec![
                (k("lat", "lat_sum", &[("p", "/")], "L."), v, 0.0),
                (hist("0.5"), 1.0, 0.0),
                (hist("+Inf"), 2.0, 0.0),
            ];
            if conflict && w == 7 {
                h.push((k("req", "req_sum", &[], "R."), 5.0, 0.0));
            }
            write(dir, &format!("histogram_{w}.db"), &h);
            let mode = ["all", "max", "min"][w as usize % 3];
            let name = if mixed_modes { "temp" } else { mode };
            write(
                dir,
                &format!("gauge_{mode}_{w}.db"),
                &[(k(name, name, &[], "T."), v, 0.0)],
            );
            write(
                dir,
                &format!("summary_{w}.db"),
                &[(k("sz", "sz_count", &[], "S."), 1.0, 0.0)],
            );
        }
        std::fs::write(dir.join("counter_99.db"), b"\x10\x00\x00\x00junkjunk").unwrap();
    }

    /// The names of the metrics files in `dir`, in directory order.
    fn listed(dir: &Path) -> Vec<(String, FileKind)> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter_map(|n| naming::parse_file_name(&n).map(|(k, _)| (n.clone(), k)))
            .collect()
    }

    /// Merges `names` of `dir` on up to `threads` threads, encoded in
    /// `format` by the merging threads: the text, the families, the part.
    fn merged(
        c: &MultiProcessCollector,
        dir: &Path,
        names: &[(String, FileKind)],
        threads: usize,
        format: Format,
    ) -> (String, Vec<Family>, Part) {
        let dirfd = dead::open_dir(dir).unwrap();
        let (families, part, encoded) = c.merge_all(&dirfd, names, threads, Some(format));
        let mut text = Vec::new();
        encoded.write_to(&mut text).unwrap();
        (String::from_utf8(text).unwrap(), families, part)
    }

    /// What two merges must agree on: text, warnings, counts.
    fn outcome(text: String, part: &Part) -> (String, Vec<String>, Stats) {
        let warnings = part.warnings.iter().map(|w| w.to_string()).collect();
        (text, warnings, part.stats.clone())
    }

    /// One kind of file only: one unit, merged by one thread while the
    /// others read ahead for it.
    #[test]
    fn read_ahead_equals_sequential() {
        let dir = tempfile::tempdir().unwrap();
        for w in 0..80u32 {
            let name = format!("histogram_{w}.db");
            match w {
                // Corrupt, empty, not a regular file: skipped, with warnings.
                7 => std::fs::write(dir.path().join(&name), b"\x30\x00\x00\x00junk").unwrap(),
                11 => std::fs::write(dir.path().join(&name), b"").unwrap(),
                13 => std::fs::create_dir(dir.path().join(&name)).unwrap(),
                _ => {
                    let v = 0.1 * f64::from(w + 1);
                    let mut entries = vec![(k("lat", "lat_sum", &[], "L."), v, 0.0)];
                    for (i, le) in ["0.1", "0.5", "+Inf"].iter().enumerate() {
                        entries.push((
                            k("lat", "lat_bucket", &[("le", le)], "L."),
                            v * i as f64,
                            0.0,
                        ));
                    }
                    // Files of very different sizes.
                    for i in 0..(w % 5) * 200 {
                        let p = i.to_string();
                        entries.push((k("big", "big_sum", &[("p", &p)], "B."), v, 0.0));
                    }
                    write(dir.path(), &name, &entries);
                }
            }
        }
        let c = MultiProcessCollector::new(dir.path()).unwrap();
        let names = listed(dir.path());
        let run = |threads| {
            let (text, families, part) = merged(&c, dir.path(), &names, threads, Format::Text);
            assert!(!families.is_empty());
            (outcome(text, &part), part.read_ahead)
        };
        let (one, none) = run(1);
        assert_eq!(none, 0);
        assert_eq!(one.1.len(), 2, "{:?}", one.1);
        assert_eq!((one.2.files_corrupt, one.2.files_skipped), (1, 2));
        for threads in 2..=4 {
            for _ in 0..5 {
                // How many files the helper gets to read depends on the
                // scheduler; the result may not.
                assert_eq!(run(threads).0, one, "{threads} threads");
            }
        }

        // The same with a helper that certainly read ahead: it reads the
        // first READ_AHEAD files before the merge starts, then goes on
        // beside it.
        let dirfd = dead::open_dir(dir.path()).unwrap();
        let all: Vec<usize> = (0..names.len()).collect();
        let units = vec![all];
        let aheads = ReadAheads::new(&units);
        aheads.units[0].active.store(true, Ordering::Release);
        for _ in 0..READ_AHEAD {
            let next = aheads.units[0].read_next(&dirfd, &names, &units[0], &aheads.buffered);
            assert!(matches!(next, Next::Read));
        }
        let next = aheads.units[0].read_next(&dirfd, &names, &units[0], &aheads.buffered);
        assert!(matches!(next, Next::Later), "no further than READ_AHEAD");
        let (families, part) = std::thread::scope(|s| {
            s.spawn(|| aheads.help(&dirfd, &names, &units));
            let ahead = Some((&aheads, 0));
            c.merge_files(&dirfd, &names, &units[0], &mut Vec::new(), None, ahead)
        });
        assert!(part.read_ahead >= READ_AHEAD);
        let (families, mut part, _) = combine(vec![(families, part)], None).unwrap();
        part.warnings.sort_by(|a, b| a.path.cmp(&b.path)); // as merge_all does
        let mut text = Vec::new();
        expose::encode_text(&families, &mut text);
        assert_eq!(outcome(String::from_utf8(text).unwrap(), &part), one);
        assert_eq!(aheads.buffered.load(Ordering::Acquire), 0);
    }

    /// Pieces from several parts come out in order through writers that
    /// take a few bytes at a time, are interrupted, or stop taking any.
    #[test]
    fn encoded_pieces_are_written_whole() {
        let encoded = Encoded {
            texts: vec![b"0123456789".to_vec(), b"abcdefghij".to_vec()],
            pieces: vec![(1, 0..4), (0, 0..3), (1, 4..4), (0, 3..10), (1, 4..10)],
            trailer: b"# EOF\n",
        };
        let expected = b"abcd0123456789efghij# EOF\n".to_vec();

        /// Takes at most 3 bytes per call, and is interrupted every other.
        struct Trickle(Vec<u8>, bool);
        impl Write for Trickle {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                let n = buf.len().min(3);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Trickle(Vec::new(), false);
        encoded.write_to(&mut w).unwrap();
        assert_eq!(w.0, expected);

        let mut v = Vec::new();
        encoded.write_to(&mut v).unwrap();
        assert_eq!(v, expected);

        // A writer that stops taking bytes is an error, not a loop.
        let mut full = [0u8; 5];
        let e = encoded.write_to(&mut &mut full[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        assert_eq!(&full, b"abcd0");

        let mut out = b"head ".to_vec();
        encoded.append_to(&mut out);
        assert_eq!(out, [&b"head "[..], &expected].concat());
    }

    #[test]
    fn parallel_merge_equals_sequential() {
        for (conflict, mixed_modes) in [(false, false), (false, true), (true, false)] {
            let dir = tempfile::tempdir().unwrap();
            mixed_dir(dir.path(), conflict, mixed_modes);
            let c = MultiProcessCollector::new(dir.path()).unwrap();
            let names = listed(dir.path());
            assert!(names.len() >= PARALLEL_MIN_FILES);
            let run = |threads| {
                let (text, families, part) = merged(&c, dir.path(), &names, threads, Format::Text);
                // Encoded by the merging threads as it would be afterwards.
                let mut after = Vec::new();
                expose::encode_text(&families, &mut after);
                assert_eq!(text.as_bytes(), after);
                let (om, families, _) =
                    merged(&c, dir.path(), &names, threads, Format::OpenMetrics);
                let mut after = Vec::new();
                expose::encode_openmetrics(&families, &mut after);
                assert_eq!(om.as_bytes(), after);
                (outcome(text, &part), part.merged_again)
            };
            let (one, again) = run(1);
            assert!(!again);
            let expected_warnings = 1 + usize::from(conflict) + usize::from(mixed_modes);
            assert_eq!(one.1.len(), expected_warnings, "{:?}", one.1);
            assert_eq!(one.2.files_corrupt, 1);
            for threads in 2..=4 {
                let (par, again) = run(threads);
                assert_eq!(par, one, "{threads} threads, {conflict} {mixed_modes}");
                // Order-sensitive directories are merged again on one
                // thread; the others are not.
                assert_eq!(again, conflict || mixed_modes, "{threads} threads");
            }
        }
    }

    #[test]
    fn files_of_any_size_are_read_whole() {
        // Large and small files alternate; each series counted once per
        // file.
        let dir = tempfile::tempdir().unwrap();
        let sizes = [3000, 10, 1, 700, 5000, 0, 20];
        for (w, &n) in sizes.iter().enumerate() {
            let entries: Vec<(String, f64, f64)> = (0..n)
                .map(|i| (k("c", "c_total", &[("i", &i.to_string())], "C."), 1.0, 0.0))
                .collect();
            write(dir.path(), &format!("counter_{w}.db"), &entries);
        }
        let s = MultiProcessCollector::new(dir.path())
            .unwrap()
            .collect_families()
            .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let samples = &s.families[0].samples;
        assert_eq!(samples.len(), 5000);
        for smp in samples {
            let i: usize = smp.label("i").unwrap().parse().unwrap();
            let want = sizes.iter().filter(|&&n| n > i).count();
            assert_eq!(smp.value, want as f64, "series {i}");
        }
    }

    #[test]
    fn many_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = k("c", "c_total", &[("a", "b")], "");
        let img = build_file(&[(key.as_bytes(), 1.0, 0.0)], 0);
        for i in 0..3000 {
            std::fs::write(dir.path().join(format!("counter_{i}.db")), &img).unwrap();
        }
        let s = MultiProcessCollector::new(dir.path())
            .unwrap()
            .collect_families()
            .unwrap();
        assert_eq!(s.stats.files_read, 3000);
        assert_eq!(s.families[0].samples[0].value, 3000.0);
    }

    #[test]
    fn prometheus_registry() {
        use prometheus::Encoder;
        let dir = tempfile::tempdir().unwrap();
        fixed_dir(dir.path());
        let reg = prometheus::Registry::new();
        reg.register(Box::new(MultiProcessCollector::new(dir.path()).unwrap()))
            .unwrap();
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&reg.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let want = "\
# HELP inflight In flight.
# TYPE inflight gauge
inflight{pid=\"100\"} 1
inflight{pid=\"200\"} 2
# HELP last_seen Last seen.
# TYPE last_seen gauge
last_seen 20
# HELP latency_seconds Latency\\\\with\\nnewline.
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.1\"} 3
latency_seconds_bucket{le=\"1\"} 5
latency_seconds_bucket{le=\"1000000\"} 5
latency_seconds_bucket{le=\"+Inf\"} 5
latency_seconds_sum 0.75
latency_seconds_count 5
# HELP odd_name_total Odd \"name\".
# TYPE odd_name_total counter
odd_name_total{lab_el=\"v\",_n_=\"x\"} 1
# HELP requests_total Requests served.
# TYPE requests_total counter
requests_total{code=\"200\",path=\"/a\"} 9
requests_total{code=\"500\",path=\"/b\\\"\\\\\\n\"} 3
# HELP size_bytes Sizes.
# TYPE size_bytes summary
size_bytes_sum 30000000
size_bytes_count 4
# HELP workers Workers.
# TYPE workers gauge
workers{kind=\"web\"} 2
";
        assert_eq!(text, want);
    }
}
