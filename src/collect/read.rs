//! Defensive reading of one metrics file: never opening what is not a regular file, never following links, bounded by what is on disk and by the read budget.

use std::fs::{File, FileType, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use super::budget::ImageBuf;
use super::dead::{self, Liveness};
use super::warning::WarningKind;
use crate::format::naming::FileKind;
use crate::format::{self, Corrupt, CorruptKind, HEADER_LEN};
use crate::open;

/// Why a file was not merged.
pub(super) enum Skip {
    /// Nothing to say (empty file, vanished live gauge).
    Quiet,
    /// The writer is dead.
    Dead,
    /// Not readable as a file: warn.
    Other(WarningKind),
    /// Corrupt content: warn.
    Corrupt(Corrupt),
}

/// Files skipped while listing the directory, unopened, and why.
pub(super) type Skipped = Vec<(PathBuf, WarningKind)>;

/// The warning for a directory entry of type `t`, which is not a regular
/// file.
pub(super) fn not_regular(t: FileType) -> WarningKind {
    if t.is_symlink() {
        WarningKind::SymbolicLink
    } else {
        WarningKind::NotRegularFile
    }
}

/// A file read by a thread other than the one merging it.
pub(super) enum Read {
    /// Its image (the `used` bytes).
    Image(ImageBuf),
    /// Why it is skipped.
    Skipped(Skip),
    /// Left to the merging thread, which reads it in chunks: a file with
    /// holes, or one whose image gets no lease from the budget.
    Left,
}

/// Files larger than this (1 GiB) are skipped with a warning.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// A metrics file opened for reading, its header read and checked.
pub(super) struct Opened {
    pub(super) file: File,
    pub(super) header: [u8; HEADER_LEN],
    /// The `used` field: at least [`HEADER_LEN`], at most the file's size.
    pub(super) used: usize,
    /// Its `used` bytes are allocated on disk (no hole): it may be read
    /// whole.
    pub(super) dense: bool,
    /// Its last `fstat` (the size in it may be below `used` if the file
    /// grew since; `used` was checked against a later one).
    pub(super) meta: Metadata,
}

/// Opens the file `name` of the directory open as `dirfd`, reads and
/// checks its header; skips files of dead writers.
pub(super) fn open_image(dirfd: &File, name: &str, kind: FileKind) -> Result<Opened, Skip> {
    // Info files describe living processes, as live gauges do.
    let live = matches!(kind, FileKind::Gauge(m) if m.is_live()) || kind == FileKind::Info;
    let file = open::open_no_follow_at(dirfd, name).map_err(|e| match e.kind() {
        // Removed by mark_process_dead between listing and opening.
        io::ErrorKind::NotFound if live => Skip::Quiet,
        io::ErrorKind::NotFound => Skip::Other(WarningKind::Vanished),
        _ if e.raw_os_error() == Some(libc::ELOOP) => Skip::Other(WarningKind::SymbolicLink),
        _ => Skip::Other(WarningKind::unreadable("open", &e)),
    })?;
    let (mut size, mut allocated, mut meta) = file_size(&file)?;
    if size == 0 {
        return Err(Skip::Quiet);
    }
    if size > MAX_FILE_SIZE {
        return Err(Skip::Other(WarningKind::TooLarge {
            size,
            limit: MAX_FILE_SIZE,
        }));
    }

    let mut header = [0u8; HEADER_LEN];
    let n = read_full_at(&file, &mut header, 0).map_err(cannot_read)?;
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
    // CAST: positive i32 to usize.
    let used = used as usize;

    // A writer of this crate holds its lock while alive; if the probe
    // cannot tell (no marker, locking unsupported), read the file.
    if live && dead::probe_liveness(&file, &header) == Liveness::Dead {
        return Err(Skip::Dead);
    }

    // The file may have grown since fstat; look again before giving up.
    if used as u64 > size.min(allocated) {
        (size, allocated, meta) = file_size(&file)?;
    }
    if used as u64 > size {
        return Err(corrupt(
            0,
            CorruptKind::UsedPastEnd {
                used,
                len: size.try_into().unwrap_or(usize::MAX),
            },
        ));
    }
    Ok(Opened {
        file,
        header,
        used,
        dense: used as u64 <= allocated,
        meta,
    })
}

/// Reads the `used` bytes of `file` into `buf[..used]` (`buf` must be as
/// long).
pub(super) fn read_whole(file: &Opened, buf: &mut [u8]) -> Result<(), Skip> {
    let used = file.used;
    let data = &mut buf[..used];
    data[..HEADER_LEN].copy_from_slice(&file.header);
    let n = read_full_at(&file.file, &mut data[HEADER_LEN..], HEADER_LEN as u64)
        .map_err(cannot_read)?;
    if n < used - HEADER_LEN {
        return Err(shrank(used, HEADER_LEN + n));
    }
    Ok(())
}

/// For a thread reading ahead: the image of the file `name`, read into
/// `buf`; `None` if it is to be read in chunks by the merging thread (see
/// [`ScrapeState::read_file`](super::scrape::ScrapeState::read_file)).
pub(super) fn read_ahead_image(
    dirfd: &File,
    name: &str,
    kind: FileKind,
    mut buf: ImageBuf,
) -> Result<Option<ImageBuf>, Skip> {
    let file = open_image(dirfd, name, kind)?;
    if !file.dense || !buf.try_grow(file.used) {
        return Ok(None);
    }
    read_whole(&file, &mut buf)?;
    buf.truncate(file.used);
    Ok(Some(buf))
}

pub(super) fn corrupt(offset: usize, kind: CorruptKind) -> Skip {
    Skip::Corrupt(Corrupt { offset, kind })
}

pub(super) fn cannot_read(e: io::Error) -> Skip {
    Skip::Other(WarningKind::unreadable("read", &e))
}

pub(super) fn shrank(used: usize, len: usize) -> Skip {
    Skip::Other(WarningKind::Shrank { len, used })
}

/// fstat: the size of a regular file, and the bytes allocated to it.
fn file_size(file: &File) -> Result<(u64, u64, Metadata), Skip> {
    let md = file
        .metadata()
        .map_err(|e| Skip::Other(WarningKind::unreadable("stat", &e)))?;
    if !md.file_type().is_file() {
        return Err(Skip::Other(not_regular(md.file_type())));
    }
    // `st_blocks` counts 512-byte units.
    Ok((md.len(), md.blocks().saturating_mul(512), md))
}

/// Positional read of up to `buf.len()` bytes; fewer only at end of file.
pub(super) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
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
