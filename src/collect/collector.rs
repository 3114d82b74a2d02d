//! The collector: scans the metrics directory, reads every file once, merges them ([`merge`](crate::merge)), and exposes the result.
//!
//! Reading is defensive, since the directory is shared with many writers
//! that may be starting, growing their files, or dying at any moment:
//!
//! * Only names prometheus_client would read are considered
//!   (`counter_{pid}.db`, `gauge_{mode}_{pid}.db`, ...); anything else is
//!   ignored. Files are merged in directory listing order, as prometheus_client
//!   globs them, so that sums round exactly as Python's do.
//! * The directory is opened once per scrape. Symbolic links, FIFOs,
//!   devices and other non-regular files are skipped with a warning and
//!   never opened: their type is known from the directory listing (`d_type`,
//!   or `lstat` where the file system does not fill it in). Names that would
//!   be a metrics file's but are not UTF-8 are skipped with a warning. Each
//!   file is opened with `openat(O_NOFOLLOW | O_NONBLOCK)` (and checked again
//!   with `fstat`, in case it was replaced), read with positional reads into
//!   one reused buffer, and closed before the next is opened: one descriptor
//!   at a time per merging thread, however many files there are. Files are
//!   never mapped, so a file truncated while being read cannot crash the
//!   reader; an incremental collector
//!   ([`with_incremental`](MultiProcessCollector::with_incremental)) maps
//!   only files that no other user can shrink (`docs/reliability.md`).
//! * Memory is bounded by what is really on disk and by a process-wide
//!   budget ([`READ_BUDGET`](crate::READ_BUDGET)). A file is read whole only if its `used` bytes
//!   are all allocated on disk (`st_blocks`) and its buffer can get a lease
//!   from the budget that all scrapes of the process share; otherwise
//!   (a sparse file, or no budget left) it is read and parsed in windows of
//!   1 MiB, stopping at the first corrupt entry (a hole reads as zeros, and
//!   zeros where an entry should be are corrupt). Both ways give the same
//!   result. A buffer that cannot be allocated skips the file with a
//!   warning, never aborts the process. Files larger than
//!   [`MAX_FILE_SIZE`](crate::MAX_FILE_SIZE)
//!   and keys longer than 1 MiB are skipped.
//! * Directories of 32 files or more are merged on as many threads as
//!   `available_parallelism` allows (at most 16), each taking the files of
//!   one kind (counters, histograms, one gauge mode, ...) at a time, merging
//!   them, building their families and, for an exposition, encoding them; a
//!   thread with no kind left reads files ahead for the threads still
//!   merging (a few files ahead, at most 32 MiB in all);
//!   `PROMETHEUS_MULTIPROC_COLLECT_THREADS=1`
//!   ([`COLLECT_THREADS_ENV`](crate::env::COLLECT_THREADS_ENV)) merges on the
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
//! * When compaction is on (the directory holds
//!   [`LOCK_FILE`](crate::LOCK_FILE); see
//!   [`compact_dead_in`](crate::compact_dead_in)), a scrape holds a shared
//!   lock on it while listing and reading, skips the files an interrupted
//!   compaction already folded, and adds counters, histograms, summaries and
//!   `sum` gauges exactly (rounded once), on one thread: totals then do not
//!   depend on file order nor on which files were folded, and may differ in
//!   the last bit from prometheus_client's sums.
//!
//! Where the result differs from prometheus_client's: Python fails the whole
//! scrape on a corrupt or empty file, on a vanished file of a non-live type,
//! and on a bad histogram bound, follows symbolic links, reads keys of any
//! length, and reads files whose names are not UTF-8; we skip the file and
//! warn. See [`merge`](crate::merge) for merge-order details.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::proto;

use super::budget::{self, Budget, ImageBuf};
use super::convert::to_metric_families;
use super::encoded::Encoded;
use super::parallel::Part;
use super::read::{Skipped, not_regular};
use super::warm::Warm;
pub use super::warning::{Warning, WarningKind};
use crate::encoding::Negotiated;
use crate::encoding::text;
use crate::encoding::text::{Encoder, Format};
use crate::error::{Error, Result};
use crate::format::naming::{self, FileKind};
use crate::merge::Family;
use crate::write::writer::MetricsDir;

/// A directory's metrics files in listing order, the inode number the
/// listing gives for each, and the files skipped unopened.
pub(super) type Listing = (Vec<(String, FileKind)>, Vec<u64>, Skipped);

/// Counters describing one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Files whose values were read in place, through the layout and
    /// mapping kept from an earlier scrape (see
    /// [`with_incremental`](MultiProcessCollector::with_incremental)).
    pub files_reused: usize,
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
#[non_exhaustive]
pub struct Scrape {
    /// Merged families, in prometheus_client's order (see
    /// [`merge`](crate::merge#order)).
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

    /// Appends the Prometheus text format of the families to `out`: a
    /// shorthand for [`Format::Text`](crate::encoding::Format)`.encode(&scrape.families, out)`.
    pub fn encode_text(&self, out: &mut Vec<u8>) {
        text::encode_text(&self.families, out)
    }

    /// Appends OpenMetrics text of the families to `out`: a shorthand for
    /// [`Format::OpenMetrics`](crate::encoding::Format)`.encode(&scrape.families, out)`.
    pub fn encode_openmetrics(&self, out: &mut Vec<u8>) {
        text::encode_openmetrics(&self.families, out)
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
/// use prometheus_multiproc::format::encode_key;
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
    pub(super) dir: PathBuf,
    pub(super) process_metrics: bool,
    /// Leases for file images: the process's (tests use their own).
    pub(super) budget: &'static Budget,
    /// Incremental scrapes: the state kept between them (shared by
    /// clones; `None` inside until the first scrape).
    pub(super) warm: Option<Arc<Mutex<Option<Warm>>>>,
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
            budget: &budget::GLOBAL,
            warm: None,
        })
    }

    /// A collector for the directory that `dir`'s metrics are written to,
    /// so a process that writes and scrapes names the directory once.
    ///
    /// ```
    /// use prometheus_multiproc::{Counter, MetricsDir, MultiProcessCollector};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = MetricsDir::open(tmp.path()).unwrap();
    /// Counter::new_in(&dir, "jobs_total", "Jobs.").unwrap().inc();
    /// let scrape = MultiProcessCollector::from_dir(&dir).unwrap().collect_families().unwrap();
    /// assert_eq!(scrape.families[0].name, "jobs");
    /// ```
    pub fn from_dir(dir: &MetricsDir) -> Result<Self> {
        Self::new(dir.path())
    }

    /// A collector for the directory named by `PROMETHEUS_MULTIPROC_DIR` (or
    /// the deprecated `prometheus_multiproc_dir`).
    pub fn from_env() -> Result<Self> {
        Ok(MultiProcessCollector {
            dir: crate::env::dir_from_env()?,
            process_metrics: false,
            budget: &budget::GLOBAL,
            warm: None,
        })
    }

    /// The metrics directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Also exports, at every scrape, the CPU, memory, file descriptors and
    /// start time of each living worker that has files in the directory,
    /// with a `pid` label, and their sums (Linux only; see
    /// `collect/procfs.rs` for the families and how workers are found).
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

    /// Makes scrapes incremental (or not again): the collector keeps, from
    /// one scrape to the next, each file's layout (its keys, parsed once,
    /// and where their values lie) and a read-only mapping of it, and then
    /// reads only the values, and the entries written since. The output is
    /// the same, byte for byte, as a cold scrape's. For a collector that
    /// scrapes the same directory many times (a server's `/metrics`); a
    /// one-off collection gains nothing.
    ///
    /// Files are mapped only if they are owned by our user, writable by
    /// no one else and have one link; others are read at every scrape. The
    /// first scrape, a scrape while another is under way on the same
    /// collector (or a clone), and scrapes while compaction is on
    /// ([`compact_dead_in`](crate::compact_dead_in)) read every file.
    /// Memory grows with files and distinct keys, not with scrapes; see
    /// `docs/performance.md` and `docs/reliability.md`.
    ///
    /// ```
    /// use prometheus_multiproc::{Counter, MetricsDir, MultiProcessCollector};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let jobs = Counter::new_in(&dir, "jobs_total", "Jobs.").unwrap();
    /// let collector = MultiProcessCollector::from_dir(&dir).unwrap().with_incremental(true);
    /// jobs.inc();
    /// assert_eq!(collector.collect_families().unwrap().stats.files_reused, 0);
    /// jobs.inc();
    /// let scrape = collector.collect_families().unwrap();
    /// assert_eq!(scrape.stats.files_reused, 1);
    /// assert_eq!(scrape.families[0].samples[0].value, 2.0);
    /// ```
    pub fn with_incremental(mut self, on: bool) -> Self {
        self.warm = on.then(|| Arc::new(Mutex::new(None)));
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
    pub(crate) fn scrape_into(&self, format: Encoder, out: &mut Vec<u8>) -> Result<Scrape> {
        let (scrape, encoded) = self.scrape(Some(format))?;
        encoded.append_to(out);
        Ok(scrape)
    }

    /// Scans, reads and merges; with `format`, also encodes the families in
    /// it, returned as the second element (the merging threads encode the
    /// families they merged).
    fn scrape(&self, format: Option<Encoder>) -> Result<(Scrape, Encoded)> {
        let start = Instant::now();
        let dirfd = crate::open::open_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        // Compaction on: hold its lock while listing and reading, and leave
        // out the files an interrupted compaction already folded.
        let coord = crate::compact::coord::begin_read(&self.dir, &dirfd)?;
        let (mut names, inodes, skipped) = self.scan_inodes()?;
        if let Some(c) = &coord {
            names.retain(|(name, _)| !c.skip.contains(name));
        }
        // No sorting: files are merged in directory listing order, which is
        // the order prometheus_client's glob sees them in, so that float sums
        // round exactly as Python's do (addition is not associative).

        // Process metrics join the families after the merge: encode then.
        let early = format.filter(|_| !self.process_metrics);
        let threads = crate::env::collect_threads();
        let warm = self.warm.as_ref().and_then(|w| w.try_lock().ok());
        let (mut families, mut st, mut encoded) = match (coord.is_some(), warm) {
            (true, warm) => {
                // Mappings would keep folded files' blocks allocated.
                warm.map(|mut w| w.take());
                self.merge_exact(&dirfd, &names, skipped, early)
            }
            (false, Some(mut warm)) => {
                self.merge_warm(&mut warm, &dirfd, &names, &inodes, skipped, early)
            }
            (false, None) => self.merge_all(&dirfd, &names, skipped, threads, early),
        };
        drop(coord);
        if self.process_metrics {
            let files = names.iter().map(|(n, _)| n.as_str());
            crate::collect::procfs::append(&self.dir, files, &mut families, &mut st.warnings);
            if let Some(format) = format {
                encoded = Encoded::of(format, &families);
            }
        }
        // Metrics defined differently by different processes: warned, not changed.
        let clashes = super::clash::warnings(&self.dir, &dirfd, &names, &families);
        st.warnings.extend(clashes);
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

    /// Merges `names` reusing (and then keeping) the layouts of `warm`;
    /// with `format`, also encodes the families.
    fn merge_warm(
        &self,
        warm: &mut Option<Warm>,
        dirfd: &std::fs::File,
        names: &[(String, FileKind)],
        inodes: &[u64],
        skipped: Skipped,
        format: Option<Encoder>,
    ) -> (Vec<Family>, Part, Encoded) {
        let state = warm.get_or_insert_with(Warm::new);
        let merged = state.merge(self, dirfd, names, inodes, skipped, format);
        if state.worn_out() {
            *warm = None;
        }
        merged
    }

    /// What the incremental state holds now (`None` before the first
    /// scrape or when not incremental).
    #[cfg(test)]
    pub(crate) fn warm_footprint(&self) -> Option<super::warm::Footprint> {
        let w = self.warm.as_ref()?.lock().ok()?;
        w.as_ref().map(Warm::footprint)
    }

    /// Lists the metrics files of the directory in listing order, with the
    /// warnings for those skipped without being opened: not regular files
    /// (known from `d_type`, or `lstat` where the file system does not say),
    /// and names that are not UTF-8.
    #[cfg(test)]
    pub(super) fn scan(&self) -> Result<(Vec<(String, FileKind)>, Skipped)> {
        let (names, _, skipped) = self.scan_inodes()?;
        Ok((names, skipped))
    }

    /// [`scan`](Self::scan), with the inode number the listing gives for
    /// each name (`d_ino`).
    pub(super) fn scan_inodes(&self) -> Result<Listing> {
        use std::os::unix::fs::DirEntryExt;
        let mut names: Vec<(String, FileKind)> = Vec::new();
        let mut inodes = Vec::new();
        let mut skipped = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                // A metrics file's name but for its bytes: prometheus_client
                // would read it; we cannot name its pid.
                if naming::parse_file_name(&os_name.to_string_lossy()).is_some() {
                    skipped.push((entry.path(), WarningKind::NonUtf8Name));
                }
                continue;
            };
            let Some((kind, _)) = naming::parse_file_name(name) else {
                continue;
            };
            match entry.file_type() {
                Ok(t) if !t.is_file() => skipped.push((entry.path(), not_regular(t))),
                // A regular file, or one that vanished (opening says which).
                _ => {
                    names.push((name.to_owned(), kind));
                    inodes.push(entry.ino());
                }
            }
        }
        Ok((names, inodes, skipped))
    }

    /// An empty buffer for file images, leasing from this collector's
    /// budget.
    pub(super) fn image_buf(&self) -> ImageBuf {
        ImageBuf::new(self.budget)
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
        let (scrape, encoded) = self.scrape(Some(Format::Text.into()))?;
        encoded.write_to(w)?;
        Ok(scrape)
    }

    /// Collects and writes OpenMetrics text (byte-compatible with
    /// prometheus_client's `openmetrics.exposition.generate_latest`) to `w`.
    /// Returns the scrape; the warnings are not printed. As with
    /// [`encode_text`](Self::encode_text), nothing is written if the
    /// collection fails.
    pub fn encode_openmetrics<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<Scrape> {
        let (scrape, encoded) = self.scrape(Some(Format::OpenMetrics.into()))?;
        encoded.write_to(w)?;
        Ok(scrape)
    }

    /// Collects and writes the format and name escaping an `Accept` header
    /// negotiated (see [`negotiate`](crate::encoding::negotiate)), as
    /// prometheus_client's encoder for that header writes it. As with
    /// [`encode_text`](Self::encode_text), nothing is written if the
    /// collection fails.
    ///
    /// ```
    /// use prometheus_multiproc::{CounterVec, MetricsDir, MultiProcessCollector};
    /// use prometheus_multiproc::encoding::negotiate;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let opts = prometheus::Opts::new("http.requests", "Requests.");
    /// CounterVec::new_in(&dir, opts, &["rou.te"]).unwrap().with_label_values(&["/a"]).inc();
    ///
    /// let wanted = negotiate(Some("text/plain;version=1.0.0;escaping=allow-utf-8")).unwrap();
    /// let mut out = Vec::new();
    /// MultiProcessCollector::new(tmp.path()).unwrap().encode_negotiated(&wanted, &mut out).unwrap();
    /// assert!(String::from_utf8(out).unwrap().ends_with("{\"http.requests_total\",\"rou.te\"=\"/a\"} 1.0\n"));
    /// ```
    pub fn encode_negotiated<W: Write + ?Sized>(
        &self,
        negotiated: &Negotiated,
        w: &mut W,
    ) -> io::Result<Scrape> {
        let (scrape, encoded) = self.scrape(Some(negotiated.encoder()))?;
        encoded.write_to(w)?;
        Ok(scrape)
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
