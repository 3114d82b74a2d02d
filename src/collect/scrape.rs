//! Per-scrape state: merging one file image at a time, and recording why a file was skipped.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::collector::Stats;
use super::read::{Read, Skip, corrupt, read_image};
use super::warning::{Warning, WarningKind};
use crate::format::naming::FileKind;
use crate::format::{self, CorruptKind, Entries};
use crate::merge::{KeyId, Merger, TypeConflict};

/// Per-scrape state: the merger, reused buffers, warnings, counters.
#[derive(Default)]
pub(super) struct ScrapeState {
    pub(super) merger: Merger,
    pub(super) buf: Vec<u8>,
    pub(super) staged: Vec<(KeyId, f64, f64)>,
    pub(super) warnings: Vec<Warning>,
    pub(super) stats: Stats,
}

impl ScrapeState {
    /// Reads and merges the file `name` of the directory `dir`, open as
    /// `dirfd`.
    pub(super) fn read_file(
        &mut self,
        dir: &Path,
        dirfd: &File,
        name: &str,
        kind: FileKind,
        pid: &str,
    ) {
        let outcome = read_image(dirfd, name, kind, &mut self.buf)
            .and_then(|used| self.merge_image(used, kind, pid));
        self.record(dir, name, outcome);
    }

    /// Merges a file read by another thread (see [`ReadAhead`]); returns
    /// a buffer for the next read.
    pub(super) fn merge_read(
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
    pub(super) fn record(
        &mut self,
        dir: &Path,
        name: &str,
        outcome: Result<Vec<TypeConflict>, Skip>,
    ) {
        match outcome {
            Ok(conflicts) => {
                self.stats.files_read += 1;
                for c in conflicts {
                    self.warn(dir.join(name), WarningKind::TypeConflict(c));
                }
            }
            Err(Skip::Quiet) => self.stats.files_skipped += 1,
            Err(Skip::Dead) => self.stats.files_dead += 1,
            Err(Skip::Other(kind)) => {
                self.stats.files_skipped += 1;
                self.warn(dir.join(name), kind);
            }
            Err(Skip::Corrupt(why)) => {
                self.stats.files_corrupt += 1;
                self.warn(dir.join(name), WarningKind::Corrupt(why));
            }
        }
    }

    fn warn(&mut self, path: PathBuf, kind: WarningKind) {
        self.warnings.push(Warning { path, kind });
    }

    /// Merges the file image `self.buf[..used]`; returns the type
    /// conflicts met.
    pub(super) fn merge_image(
        &mut self,
        used: usize,
        kind: FileKind,
        pid: &str,
    ) -> Result<Vec<TypeConflict>, Skip> {
        let data = &self.buf[..used];
        self.staged.clear();
        self.merger.start_file();
        let entries = Entries::new(data).map_err(Skip::Corrupt)?;
        for e in entries {
            let e = e.map_err(Skip::Corrupt)?;
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
