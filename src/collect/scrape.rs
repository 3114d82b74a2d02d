//! Per-scrape state: merging one file image at a time (read whole, or in windows), and recording why a file was skipped.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::budget::{self, CHUNK, FREE_BYTES, ImageBuf};
use super::collector::Stats;
use super::read::{
    Opened, Skip, cannot_read, corrupt, open_image, read_full_at, read_whole, shrank,
};
use super::warning::{Warning, WarningKind};
use crate::format::naming::FileKind;
use crate::format::{self, CorruptKind, Entries, HEADER_LEN};
use crate::merge::{KeyId, Merger, TypeConflict};

/// Per-scrape state: the merger, reused buffers, warnings, counters.
#[derive(Default)]
pub(super) struct ScrapeState {
    pub(super) merger: Merger,
    pub(super) buf: ImageBuf,
    pub(super) staged: Vec<(KeyId, f64, f64)>,
    pub(super) warnings: Vec<Warning>,
    pub(super) stats: Stats,
}

impl ScrapeState {
    /// Reads and merges the file `name` of the directory `dir`, open as
    /// `dirfd`: whole if its `used` bytes are on disk and the budget lets
    /// its buffer grow to hold them, else in chunks.
    pub(super) fn read_file(
        &mut self,
        dir: &Path,
        dirfd: &File,
        name: &str,
        kind: FileKind,
        pid: &str,
    ) {
        let outcome = self
            .stage_file(dirfd, name, kind)
            .map(|()| self.add_staged(kind, pid));
        self.record(dir, name, outcome);
    }

    /// Reads the file `name` and resolves its entries into `self.staged`,
    /// without merging them: whole if its `used` bytes are on disk and the
    /// budget lets its buffer grow to hold them, else in chunks.
    pub(super) fn stage_file(
        &mut self,
        dirfd: &File,
        name: &str,
        kind: FileKind,
    ) -> Result<(), Skip> {
        let file = open_image(dirfd, name, kind)?;
        if file.dense && self.buf.try_grow(file.used) {
            read_whole(&file, &mut self.buf)?;
            self.stage_image(file.used, kind)
        } else {
            self.stage_chunked(&file, kind)
        }
    }

    /// Merges the entries staged for one file; returns the type conflicts
    /// met.
    pub(super) fn add_staged(&mut self, kind: FileKind, pid: &str) -> Vec<TypeConflict> {
        let report = self.merger.add_file(kind, pid, self.staged.iter().copied());
        report.conflicts
    }

    /// Merges a file read by another thread (see
    /// [`ReadAhead`](super::parallel::ReadAhead)); returns a buffer for the
    /// next read.
    pub(super) fn merge_read(
        &mut self,
        dir: &Path,
        name: &str,
        kind: FileKind,
        pid: &str,
        read: Result<ImageBuf, Skip>,
    ) -> Option<ImageBuf> {
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
        self.stage_image(used, kind)?;
        Ok(self.add_staged(kind, pid))
    }

    /// Resolves the entries of the file image `self.buf[..used]` into
    /// `self.staged`.
    fn stage_image(&mut self, used: usize, kind: FileKind) -> Result<(), Skip> {
        let data = &self.buf[..used];
        self.staged.clear();
        self.merger.start_file();
        let mut entries = Entries::new(data).map_err(Skip::Corrupt)?;
        stage(&mut self.merger, &mut self.staged, None, kind, &mut entries)
    }

    /// [`stage_image`](Self::stage_image) of the image `self.buf[..used]`,
    /// also recording the file offset of each staged entry's value in
    /// `offsets` (for a collector that keeps layouts).
    pub(super) fn stage_image_at(
        &mut self,
        used: usize,
        kind: FileKind,
        offsets: &mut Vec<u32>,
    ) -> Result<(), Skip> {
        let data = &self.buf[..used];
        self.staged.clear();
        offsets.clear();
        self.merger.start_file();
        let mut entries = Entries::new(data).map_err(Skip::Corrupt)?;
        stage(
            &mut self.merger,
            &mut self.staged,
            Some(offsets),
            kind,
            &mut entries,
        )
    }

    /// Resolves the entries of `file` into `self.staged`, read in windows of [`CHUNK`] bytes (of [`FREE_BYTES`]
    /// if the budget has no lease for a chunk; larger only for an entry that
    /// does not fit, of at most 1 MiB), parsed as they come: memory stays
    /// bounded whatever `used` says, and a hole (zeros) ends the read at its
    /// first window. The result is the same as [`stage_image`]'s.
    ///
    /// [`stage_image`]: Self::stage_image
    pub(super) fn stage_chunked(&mut self, file: &Opened, kind: FileKind) -> Result<(), Skip> {
        self.staged.clear();
        self.merger.start_file();
        let window = if self.buf.try_grow(CHUNK) {
            CHUNK
        } else {
            grow(&mut self.buf, FREE_BYTES)?;
            self.buf.len()
        };
        let used = file.used;
        let (mut at, mut need) = (HEADER_LEN, 0);
        while at < used {
            let len = window.max(need).min(used - at);
            debug_assert!(len <= CHUNK.max(budget::MAX_ENTRY));
            grow(&mut self.buf, len)?;
            // CAST: usize to u64, lossless.
            let n =
                read_full_at(&file.file, &mut self.buf[..len], at as u64).map_err(cannot_read)?;
            if n < len {
                return Err(shrank(used, at + n));
            }
            let mut entries = Entries::window(&self.buf[..len], at, used);
            stage(&mut self.merger, &mut self.staged, None, kind, &mut entries)?;
            // An entry that did not fit: a window as large as it next.
            need = if entries.offset() == at {
                entries.pending_len().max(4)
            } else {
                0
            };
            at = entries.offset();
        }
        Ok(())
    }
}

/// Resolves the keys of `entries` and stages them with their values, for
/// one `add_file` (with `offsets`, also where each value is in the file);
/// stops at the first corrupt entry.
pub(super) fn stage(
    merger: &mut Merger,
    staged: &mut Vec<(KeyId, f64, f64)>,
    mut offsets: Option<&mut Vec<u32>>,
    kind: FileKind,
    entries: &mut Entries<'_>,
) -> Result<(), Skip> {
    for e in entries {
        let e = e.map_err(Skip::Corrupt)?;
        match merger.resolve(kind, e.key) {
            Ok(id) => {
                // Entries are at least 24 bytes on disk; a full disk's
                // worth of them must not abort the process.
                reserve_one(staged)?;
                staged.push((id, e.value, e.timestamp));
                if let Some(offsets) = offsets.as_deref_mut() {
                    reserve_one(offsets)?;
                    // CAST: files are at most MAX_FILE_SIZE (1 GiB) long.
                    offsets.push(e.value_offset as u32);
                }
            }
            Err(why) => {
                let at = e.value_offset - format::value_offset(e.key.len());
                return Err(corrupt(at, CorruptKind::BadKey(why.reason().to_owned())));
            }
        }
    }
    Ok(())
}

/// Room for one more element in `v`, grown without aborting the process
/// if memory runs out.
fn reserve_one<T>(v: &mut Vec<T>) -> Result<(), Skip> {
    if v.len() == v.capacity() {
        let more = v.len().max(256);
        let bytes = (v.len() + more) * std::mem::size_of::<T>();
        v.try_reserve(more)
            .map_err(|_| Skip::Other(WarningKind::OutOfMemory { bytes }))?;
    }
    Ok(())
}

/// Grows `buf` to `n` bytes (at most [`CHUNK`] or one entry) whatever the
/// budget says.
fn grow(buf: &mut ImageBuf, n: usize) -> Result<(), Skip> {
    buf.force_grow(n)
        .map_err(|_| Skip::Other(WarningKind::OutOfMemory { bytes: n }))
}
