//! Compaction: folding the counter, histogram, summary and `sum`/`min`/`max`/`mostrecent`-gauge files of dead workers into one archive file per kind, crash-safely.
//!
//! The archive of a kind is `{kind}_@archive.db` (`counter_@archive.db`,
//! `gauge_sum_@archive.db`, ...): a name prometheus_client reads like any
//! other file (`@archive` stands where a pid would), and that no writer can
//! take (`@` is not allowed in a worker id). For each key it holds the
//! exact sum of the absorbed values, stored as one or more entries of that
//! same key whose values do not overlap in their bits (see [`fsum`]):
//! prometheus_client adds every entry of a key, so it reads the total
//! (rounded by its own additions), and our readers, which sum exactly when
//! compaction is on, read the same bits as before the compaction.
//!
//! A compaction holds the lock file exclusively and goes, per kind:
//! write the new archive to a temporary name (not `*.db`) and `fsync` it;
//! write the journal (naming the temporary file and the absorbed files) and
//! rename it into place; rename the temporary file over the archive; unlink
//! the absorbed files; unlink the journal; `fsync` the directory after each
//! rename or unlink. See [`coord`] for how readers and the next compaction
//! read a journal left by a crash.

pub(crate) mod coord;
mod fold;
pub(crate) mod fsum;

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use self::coord::{ARCHIVE_TEMP, JOURNAL_FILE, JOURNAL_TEMP, Journal};
use self::fold::{Fold, Rule};
use crate::error::{Error, Result};
use crate::format::naming::{self, FileKind, GaugeMode};
use crate::format::{Entries, HEADER_LEN, has_lock_marker};

/// The process identifier of archive files (`counter_@archive.db`).
pub const ARCHIVE_ID: &str = "@archive";

/// The kinds whose dead workers' files are folded: those whose values still
/// count after their writer died. Summed kinds keep exact sums; `min`, `max`
/// and `mostrecent` gauges keep the value their merge rule picks.
pub const COMPACTED_KINDS: [FileKind; 7] = [
    FileKind::Counter,
    FileKind::Histogram,
    FileKind::Summary,
    FileKind::Gauge(GaugeMode::Sum),
    FileKind::Gauge(GaugeMode::Min),
    FileKind::Gauge(GaugeMode::Max),
    FileKind::Gauge(GaugeMode::MostRecent),
];

/// The kinds that are summed: when compaction is on, our collector adds them
/// exactly.
pub(crate) const SUMMED_KINDS: [FileKind; 4] = [
    FileKind::Counter,
    FileKind::Histogram,
    FileKind::Summary,
    FileKind::Gauge(GaugeMode::Sum),
];

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compaction {
    /// Files folded into an archive and removed.
    pub absorbed: Vec<PathBuf>,
    /// Files left in place: corrupt, not regular files, or (with lock-based
    /// detection) their writer turned out to be alive.
    pub left: Vec<PathBuf>,
}

/// Folds the counter, histogram, summary and `sum`/`min`/`max`/`mostrecent`-gauge files of the dead
/// workers `ids` (pids or worker ids) into the directory's archive files and
/// removes them. Totals read by this crate's collector stay the same, bit for
/// bit; a crash at any point leaves a directory that reads the same and that
/// the next compaction repairs. Fails if a named worker's file (written by
/// this crate) is still locked by a living writer.
///
/// Turns compaction on for the directory (creates its lock file): from then
/// on this crate's readers sum exactly. Only safe when every reader of the
/// directory is this crate's (see `docs/reliability.md`).
///
/// ```
/// use prometheus_multiproc::{compact_dead_in, MultiProcessCollector};
/// use prometheus_multiproc::format::{build_file, encode_key};
/// # let tmp = tempfile::tempdir().unwrap();
/// let key = encode_key("jobs", "jobs_total", &[], "Jobs.");
/// for pid in ["1", "2"] {
///     let img = build_file(&[(key.as_bytes(), 0.1, 0.0)], 4096);
///     std::fs::write(tmp.path().join(format!("counter_{pid}.db")), img).unwrap();
/// }
/// let done = compact_dead_in(tmp.path(), &["1", "2"]).unwrap();
/// assert_eq!(done.absorbed.len(), 2);
/// assert!(tmp.path().join("counter_@archive.db").exists());
/// let s = MultiProcessCollector::new(tmp.path()).unwrap().collect_families().unwrap();
/// assert_eq!(s.families[0].samples[0].value, 0.2);
/// ```
pub fn compact_dead_in(dir: impl AsRef<Path>, ids: &[&str]) -> Result<Compaction> {
    let dir = dir.as_ref();
    for id in ids {
        if !naming::is_valid_worker_id(id) {
            return Err(Error::invalid_argument(
                crate::error::ArgumentKind::ProcessId,
                format!("invalid process id {id:?}"),
            ));
        }
    }
    compact(dir, Select::Ids(ids))
}

/// Folds, as [`compact_dead_in`] does, the files of every worker of this
/// crate found dead by lock probing (files of prometheus_client workers carry
/// no lock and are never judged dead here: name them to
/// [`compact_dead_in`]).
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// let done = prometheus_multiproc::compact_dead_auto_in(tmp.path()).unwrap();
/// assert!(done.absorbed.is_empty());
/// ```
pub fn compact_dead_auto_in(dir: impl AsRef<Path>) -> Result<Compaction> {
    compact(dir.as_ref(), Select::Auto)
}

/// Files folded per archive replacement.
const BATCH: usize = 256;

/// Which files a compaction takes.
#[derive(Clone, Copy)]
enum Select<'a> {
    /// The files of these workers, which must be dead.
    Ids(&'a [&'a str]),
    /// Files whose writer's lock is free.
    Auto,
}

fn compact(dir: &Path, select: Select<'_>) -> Result<Compaction> {
    naming::check_dir(dir, None)?;
    let dirfd = crate::open::open_dir(dir).map_err(|e| Error::io(dir, e))?;
    let _lock = coord::lock_exclusive(dir, &dirfd)?;
    let io = |e: io::Error| Error::io(dir, e);
    recover(&dirfd).map_err(io)?;
    let mut done = Compaction::default();
    for kind in COMPACTED_KINDS {
        let names = match select {
            Select::Ids(ids) => ids.iter().map(|id| kind.file_name(id)).collect(),
            Select::Auto => list_kind(dir, kind)?,
        };
        // Batches bound the descriptors held open (and locked) at once.
        for batch in names.chunks(BATCH) {
            fold_kind(dir, &dirfd, kind, batch, select, &mut done)?;
        }
    }
    Ok(done)
}

/// The files of `kind` in the directory, archive excepted.
fn list_kind(dir: &Path, kind: FileKind) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((k, id)) = naming::parse_file_name(name)
            && k == kind
            && id != ARCHIVE_ID
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// A dead worker's file, read and held locked (if it has a lock) until it
/// is removed, so that a new worker reusing its id starts a new file.
struct Absorbed {
    name: String,
    _file: File,
    mode: u32,
}

/// Folds the files `names` of `kind` into its archive.
fn fold_kind(
    dir: &Path,
    dirfd: &File,
    kind: FileKind,
    names: &[String],
    select: Select<'_>,
    done: &mut Compaction,
) -> Result<()> {
    let archive = kind.file_name(ARCHIVE_ID);
    let Some(rule) = Rule::of(kind) else {
        return Ok(());
    };
    let mut sums = Fold::new(rule);
    let mut absorbed = Vec::new();
    for name in names {
        let Some(file) = open_dead(dir, dirfd, name, select, done)? else {
            continue;
        };
        let mut scratch = Fold::new(rule);
        match read_entries(&file, &mut scratch) {
            Ok(()) => {
                sums.add_all(scratch);
                let mode = file.metadata().map_or(0o600, |m| m.mode());
                absorbed.push(Absorbed {
                    name: name.clone(),
                    _file: file,
                    mode,
                });
            }
            Err(_) => done.left.push(dir.join(name)),
        }
    }
    if absorbed.is_empty() {
        return Ok(());
    }
    match coord::open_at(dirfd, &archive, OFlag::O_RDONLY, Mode::empty()) {
        Ok(f) => {
            let mut old = Fold::new(rule);
            read_entries(&f, &mut old).map_err(|e| Error::io(dir.join(&archive), e))?;
            old.add_all(sums);
            sums = old;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(dir.join(&archive), e)),
    }
    // The archive is readable by whoever could read the files it replaces.
    let mode = absorbed.iter().fold(0o644, |m, a| m & a.mode) | 0o600;
    let journal = Journal {
        temp: ARCHIVE_TEMP.to_owned(),
        temp_ino: 0,
        archive,
        absorbed: absorbed.iter().map(|a| a.name.clone()).collect(),
    };
    commit(dir, dirfd, &sums.image(), mode, journal)?;
    done.absorbed
        .extend(absorbed.iter().map(|a| dir.join(&a.name)));
    Ok(())
}

/// Opens a file to absorb: `None` if it is gone, not a regular file (left),
/// or its writer is alive (left with lock-based detection; an error when
/// the caller said it is dead).
fn open_dead(
    dir: &Path,
    dirfd: &File,
    name: &str,
    select: Select<'_>,
    done: &mut Compaction,
) -> Result<Option<File>> {
    let path = dir.join(name);
    let file = match coord::open_at(dirfd, name, OFlag::O_RDONLY, Mode::empty()) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            done.left.push(path);
            return Ok(None);
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        done.left.push(path);
        return Ok(None);
    }
    let mut header = [0u8; HEADER_LEN];
    let marked = (&file).read_exact(&mut header).is_ok() && has_lock_marker(&header);
    let free = match file.try_lock() {
        Ok(()) => true,
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
    };
    // A file of this crate's writer whose lock is held: its writer lives.
    let alive = marked && !free;
    match select {
        Select::Ids(_) if alive => Err(Error::io(
            path,
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                "its writer is alive (holds the file's lock): not compacted",
            ),
        )),
        Select::Ids(_) => Ok(Some(file)),
        // Only this crate's files can be judged dead by their lock.
        Select::Auto if marked && free => Ok(Some(file)),
        Select::Auto => Ok(None),
    }
}

/// Reads a whole metrics file (bounded by its size and
/// [`MAX_FILE_SIZE`](crate::MAX_FILE_SIZE)) into `sums`.
fn read_entries(mut file: &File, sums: &mut Fold) -> io::Result<()> {
    let size = file.metadata()?.len();
    if size > crate::MAX_FILE_SIZE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "file too large"));
    }
    let mut buf = Vec::new();
    file.rewind()?;
    (&mut file).take(size).read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Ok(());
    }
    let entries = Entries::new(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    for e in entries {
        let e = e.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        sums.add(e.key, e.value, e.timestamp);
    }
    Ok(())
}

/// Installs a new archive and removes the absorbed files, journaled (see
/// the module docs), with a crash point after each step for the tests.
fn commit(dir: &Path, dirfd: &File, image: &[u8], mode: u32, mut journal: Journal) -> Result<()> {
    let at = |name: &str| dir.join(name);
    let errno = |name: &str| {
        let path = at(name);
        move |e: nix::Error| Error::io(path, io::Error::from(e))
    };
    journal.temp_ino =
        write_new(dirfd, ARCHIVE_TEMP, image, mode).map_err(|e| Error::io(at(ARCHIVE_TEMP), e))?;
    crash_point("temp-written");
    write_new(dirfd, JOURNAL_TEMP, journal.to_text().as_bytes(), 0o644)
        .map(drop)
        .map_err(|e| Error::io(at(JOURNAL_TEMP), e))?;
    renameat(dirfd, JOURNAL_TEMP, dirfd, JOURNAL_FILE).map_err(errno(JOURNAL_FILE))?;
    sync_dir(dir, dirfd)?;
    crash_point("journal-written");
    renameat(dirfd, ARCHIVE_TEMP, dirfd, journal.archive.as_str())
        .map_err(errno(&journal.archive))?;
    sync_dir(dir, dirfd)?;
    crash_point("renamed");
    for (i, name) in journal.absorbed.iter().enumerate() {
        remove(dirfd, name).map_err(errno(name))?;
        if i == 0 {
            crash_point("unlinked-one");
        }
    }
    sync_dir(dir, dirfd)?;
    crash_point("unlinked");
    remove(dirfd, JOURNAL_FILE).map_err(errno(JOURNAL_FILE))?;
    sync_dir(dir, dirfd)?;
    crash_point("done");
    Ok(())
}

/// Finishes or undoes what a crashed compaction left (called with the lock
/// held exclusively).
fn recover(dirfd: &File) -> io::Result<()> {
    remove(dirfd, JOURNAL_TEMP)?;
    if let Some(j) = coord::read_journal(dirfd)? {
        if !j.archive_pending(dirfd) {
            // The archive was replaced: the absorbed files are counted.
            for name in &j.absorbed {
                remove(dirfd, name)?;
            }
        }
        dirfd.sync_all()?;
        remove(dirfd, JOURNAL_FILE)?;
    }
    remove(dirfd, ARCHIVE_TEMP)?;
    dirfd.sync_all()
}

/// `unlinkat`; a missing file is not an error.
fn remove(dirfd: &File, name: &str) -> nix::Result<()> {
    match unlinkat(dirfd, name, UnlinkatFlags::NoRemoveDir) {
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        r => r,
    }
}

/// Creates `name` (replacing a leftover), writes `bytes`, and `fsync`s it;
/// returns its inode.
fn write_new(dirfd: &File, name: &str, bytes: &[u8], mode: u32) -> io::Result<u64> {
    remove(dirfd, name)?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
    let mut f = coord::open_at(dirfd, name, flags, Mode::from_bits_truncate(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(f.metadata()?.ino())
}

fn sync_dir(dir: &Path, dirfd: &File) -> Result<()> {
    dirfd.sync_all().map_err(|e| Error::io(dir, e))
}

/// Test hook: `PROMETHEUS_MULTIPROC_COMPACT_CRASH_AT=<step>` aborts the
/// process right after that step (see [`CRASH_AT_ENV`](crate::env::COMPACT_CRASH_AT_ENV)).
fn crash_point(step: &str) {
    if std::env::var_os(crate::env::COMPACT_CRASH_AT_ENV).is_some_and(|v| v == step) {
        std::process::abort();
    }
}
