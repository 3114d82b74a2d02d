//! Dropping dead workers' live gauges: `mark_process_dead` (as prometheus_client) and lock-based detection of workers that died without a hook.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::naming::{self, FileKind, GaugeMode};
use crate::format::{HEADER_LEN, has_lock_marker};

/// Removes the live-gauge files of process `pid` from the directory in
/// `PROMETHEUS_MULTIPROC_DIR`: exactly the files prometheus_client's
/// `mark_process_dead` removes (`gauge_live*_{pid}.db`), nothing else, so
/// counters never go backwards. Call it from the supervisor when a worker
/// exits. Missing files are not an error.
///
/// ```no_run
/// // In a supervisor, after waitpid() returned `pid`:
/// # let pid = 1234;
/// prometheus_multiproc::mark_process_dead(pid).unwrap();
/// ```
pub fn mark_process_dead(pid: i32) -> Result<()> {
    mark_process_dead_in(crate::env::dir_from_env()?, pid)
}

/// [`mark_process_dead`] for an explicit directory. Also accepts a worker id
/// (see [`set_worker_id`](crate::set_worker_id)) through
/// [`mark_worker_dead_in`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// std::fs::write(tmp.path().join("gauge_livesum_42.db"), b"").unwrap();
/// std::fs::write(tmp.path().join("counter_42.db"), b"").unwrap();
/// prometheus_multiproc::mark_process_dead_in(tmp.path(), 42).unwrap();
/// assert!(!tmp.path().join("gauge_livesum_42.db").exists());
/// assert!(tmp.path().join("counter_42.db").exists());
/// ```
pub fn mark_process_dead_in(dir: impl AsRef<Path>, pid: i32) -> Result<()> {
    mark_worker_dead_in(dir, &pid.to_string())
}

/// Removes the live-gauge files of the worker named `id` (a pid or a worker id).
pub fn mark_worker_dead_in(dir: impl AsRef<Path>, id: &str) -> Result<()> {
    let dir = dir.as_ref();
    naming::check_dir(dir, None)?;
    if !naming::is_valid_worker_id(id) {
        return Err(Error::invalid_argument(
            crate::error::ArgumentKind::ProcessId,
            format!("invalid process id {id:?}"),
        ));
    }
    for mode in GaugeMode::ALL.into_iter().filter(|m| m.is_live()) {
        let path = dir.join(FileKind::Gauge(mode).file_name(id));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// Liveness of a metrics file's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Liveness {
    /// Written by this crate; its writer holds the lock: alive.
    Alive,
    /// Written by this crate; nobody holds the lock: its writer is dead.
    Dead,
    /// No lock marker (written by prometheus_client): cannot tell.
    Unknown,
}

/// Tells whether the writer of the open `file` is alive, from the header's
/// lock marker and a non-blocking probe of its lock. The probe holds a
/// shared lock for an instant; writers retry briefly, so it blocks nobody.
pub fn probe_liveness(file: &File, header: &[u8]) -> Liveness {
    if header.len() < HEADER_LEN || !has_lock_marker(header) {
        return Liveness::Unknown;
    }
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Liveness::Dead
        }
        Err(std::fs::TryLockError::WouldBlock) => Liveness::Alive,
        Err(std::fs::TryLockError::Error(_)) => Liveness::Unknown,
    }
}

/// Removes the live-gauge files of dead workers that never had
/// `mark_process_dead` called for them (killed by `SIGKILL`, the OOM killer,
/// or a supervisor without a hook). Only files written by this crate are
/// judged (their writers hold a lock while alive); prometheus_client's files
/// are left alone. Returns the removed paths.
///
/// A file is removed while this call holds its lock, and a writer checks
/// after locking that its path still names the file it locked, so a new
/// process that reuses the pid at that moment starts a fresh file.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// let removed = prometheus_multiproc::remove_dead_live_files(tmp.path()).unwrap();
/// assert!(removed.is_empty());
/// ```
pub fn remove_dead_live_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    naming::check_dir(dir, None)?;
    let mut removed = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((FileKind::Gauge(mode), _)) = naming::parse_file_name(name) else {
            continue;
        };
        // Never open what is not a regular file (a FIFO, a device): the
        // type comes from the listing (`d_type`, else `lstat`).
        if !mode.is_live() || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = crate::open::open_no_follow(&path) else {
            continue;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut header = [0u8; HEADER_LEN];
        if (&file).read_exact(&mut header).is_err() || !has_lock_marker(&header) {
            continue;
        }
        // Hold an exclusive lock while removing, so no writer can be
        // half-way through opening it.
        if file.try_lock().is_ok() {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
            let _ = file.unlock();
        }
    }
    Ok(removed)
}
