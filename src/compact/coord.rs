//! Coordination between compaction and our readers: the lock file, the journal, and which files they are trusted to be.
//!
//! * `.prometheus_multiproc.lock` (not `*.db`, so prometheus_client ignores
//!   it): readers hold a shared `flock` on it while they list and read the
//!   directory, the compactor an exclusive one for a whole compaction. Its
//!   existence means "compaction is on": readers then sum exactly.
//! * `.prometheus_multiproc.journal`: written (atomically, by rename) before
//!   an archive replaces the old one, removed once the absorbed files are
//!   gone. It names the new archive's temporary file and the absorbed files:
//!   while the temporary file exists the archive was not replaced yet (the
//!   journal is void); once it is gone, the absorbed files are counted in
//!   the archive and readers skip them. See `docs/reliability.md`.
//!
//! Both are only trusted when they are regular files (never followed
//! links), not writable by group or others, and owned by the effective user
//! or by the directory's owner.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fstatat};

use crate::error::{Error, Result};
use crate::format::naming;

/// The lock file's name.
pub const LOCK_FILE: &str = ".prometheus_multiproc.lock";
/// The journal's name.
pub const JOURNAL_FILE: &str = ".prometheus_multiproc.journal";
/// The journal while it is written.
pub(crate) const JOURNAL_TEMP: &str = ".prometheus_multiproc.journal.tmp";
/// A new archive while it is written.
pub(crate) const ARCHIVE_TEMP: &str = ".prometheus_multiproc.archive.tmp";
/// The first line of a journal.
const JOURNAL_MAGIC: &str = "prometheus-multiproc compaction journal 1";
/// How long a reader or the compactor waits for the lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// Largest journal read (names of absorbed files).
const MAX_JOURNAL: u64 = 16 << 20;

/// A reader's hold on the lock: compaction is on, and `skip` lists the files
/// an interrupted compaction already counted in an archive.
pub(crate) struct ReadCoord {
    _lock: File,
    pub(crate) skip: HashSet<String>,
}

/// A pending compaction step: the journal's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Journal {
    pub(crate) temp: String,
    /// The temporary archive's inode: a file of that name with another
    /// inode was made by someone else after the rename.
    pub(crate) temp_ino: u64,
    pub(crate) archive: String,
    pub(crate) absorbed: Vec<String>,
}

impl Journal {
    pub(crate) fn to_text(&self) -> String {
        let mut s = format!(
            "{JOURNAL_MAGIC}\ntemp {} {}\narchive {}\n",
            self.temp, self.temp_ino, self.archive
        );
        for d in &self.absorbed {
            s.push_str("absorbed ");
            s.push_str(d);
            s.push('\n');
        }
        s
    }

    /// True while the archive was not replaced yet: the temporary archive
    /// named by the journal is still there (same inode).
    pub(crate) fn archive_pending(&self, dirfd: &File) -> bool {
        fstatat(dirfd, self.temp.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_ino == self.temp_ino)
    }

    /// Parses a journal; every name must be a metrics file name (or the
    /// temporary archive), a single path component.
    pub(crate) fn parse(text: &str) -> Option<Journal> {
        let mut lines = text.lines();
        if lines.next()? != JOURNAL_MAGIC {
            return None;
        }
        let (temp, ino) = lines.next()?.strip_prefix("temp ")?.split_once(' ')?;
        let (temp, temp_ino) = (temp.to_owned(), ino.parse().ok()?);
        let archive = lines.next()?.strip_prefix("archive ")?.to_owned();
        let metrics_name = |n: &str| naming::parse_file_name(n).is_some() && !n.contains('/');
        if temp != ARCHIVE_TEMP || !metrics_name(&archive) {
            return None;
        }
        let mut absorbed = Vec::new();
        for l in lines {
            let n = l.strip_prefix("absorbed ")?;
            if !metrics_name(n) || n == archive {
                return None;
            }
            absorbed.push(n.to_owned());
        }
        Some(Journal {
            temp,
            temp_ino,
            archive,
            absorbed,
        })
    }
}

/// For a reader: if compaction is on (a trusted lock file exists), takes the
/// shared lock (waiting at most 10 s: a scrape that fails is better than a
/// value counted twice) and reads what an interrupted compaction left.
/// `None` when compaction is off or its files cannot be trusted (then there
/// is nothing to coordinate with).
pub(crate) fn begin_read(dir: &Path, dirfd: &File) -> Result<Option<ReadCoord>> {
    let lock = match open_trusted(dirfd, LOCK_FILE, OFlag::O_RDONLY) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(dir.join(LOCK_FILE), e)),
    };
    wait_lock(&lock, false).map_err(|e| Error::io(dir.join(LOCK_FILE), e))?;
    let mut skip = HashSet::new();
    if let Some(j) = read_journal(dirfd).map_err(|e| Error::io(dir.join(JOURNAL_FILE), e))?
        && !j.archive_pending(dirfd)
    {
        skip.extend(j.absorbed);
    }
    Ok(Some(ReadCoord { _lock: lock, skip }))
}

/// For the compactor: opens (or creates, readable by all, writable by its
/// owner: it holds no data) the lock file and takes it exclusively.
pub(crate) fn lock_exclusive(dir: &Path, dirfd: &File) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let create = OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL;
    let lock = match open_at(dirfd, LOCK_FILE, create, Mode::from_bits_truncate(0o644)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            match open_trusted(dirfd, LOCK_FILE, OFlag::O_RDONLY) {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Err(Error::io(
                        path,
                        io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            "compaction lock file not trusted (not a regular file owned by this user or the directory's owner, or writable by others): refusing to compact",
                        ),
                    ));
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    wait_lock(&lock, true).map_err(|e| Error::io(path, e))?;
    Ok(lock)
}

/// Reads the journal, if there is one. An untrusted or malformed journal is
/// an error: it cannot be ignored safely (the files it names may be counted
/// twice) nor obeyed.
pub(crate) fn read_journal(dirfd: &File) -> io::Result<Option<Journal>> {
    let mut f = match open_trusted(dirfd, JOURNAL_FILE, OFlag::O_RDONLY) {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "compaction journal not trusted",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    (&mut f).take(MAX_JOURNAL).read_to_string(&mut text)?;
    Journal::parse(&text)
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed compaction journal"))
}

/// `openat` without following links, not blocking, close-on-exec.
pub(crate) fn open_at(dirfd: &File, name: &str, flags: OFlag, mode: Mode) -> io::Result<File> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = openat(dirfd, name, flags, mode).map_err(io::Error::from)?;
    Ok(File::from(fd))
}

/// Opens a coordination file; `Ok(None)` if it is not to be trusted.
fn open_trusted(dirfd: &File, name: &str, flags: OFlag) -> io::Result<Option<File>> {
    let f = open_at(dirfd, name, flags, Mode::empty())?;
    let md = f.metadata()?;
    let dir_owner = dirfd.metadata()?.uid();
    let owner_ok = md.uid() == nix::unistd::geteuid().as_raw() || md.uid() == dir_owner;
    let trusted = md.file_type().is_file() && md.mode() & 0o022 == 0 && owner_ok;
    Ok(trusted.then_some(f))
}

/// Takes the lock, retrying for at most [`LOCK_WAIT`].
fn wait_lock(f: &File, exclusive: bool) -> io::Result<()> {
    let start = Instant::now();
    loop {
        let r = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "compaction lock held for more than 10 s",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_rejects_foreign_names() {
        let j = Journal {
            temp: ARCHIVE_TEMP.into(),
            temp_ino: 1234,
            archive: "counter_@archive.db".into(),
            absorbed: vec!["counter_12.db".into(), "counter_w3.db".into()],
        };
        assert_eq!(Journal::parse(&j.to_text()), Some(j.clone()));
        for bad in ["../counter_1.db", "passwd", "counter_@archive.db"] {
            let t = j.to_text() + &format!("absorbed {bad}\n");
            assert_eq!(Journal::parse(&t), None, "{bad}");
        }
        assert_eq!(
            Journal::parse(&j.to_text().replace(ARCHIVE_TEMP, "x.tmp")),
            None
        );
    }
}
