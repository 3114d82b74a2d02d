//! Defensive reading of one metrics file: opened without following links, bounded by its real size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::dead::{self, Liveness};
use super::open;
use super::warning::WarningKind;
use crate::format::naming::FileKind;
use crate::format::{self, Corrupt, CorruptKind, HEADER_LEN};

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

/// A file read by a thread other than the one merging it: its image (the
/// `used` bytes), or why it is skipped.
pub(super) type Read = Result<Vec<u8>, Skip>;

/// Files larger than this (1 GiB) are skipped with a warning.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// Reads the file `name` of the directory open as `dirfd` into `buf`;
/// returns its `used` length (the bytes of `buf` that hold it).
pub(super) fn read_image(
    dirfd: &File,
    name: &str,
    kind: FileKind,
    buf: &mut Vec<u8>,
) -> Result<usize, Skip> {
    // Info files describe living processes, as live gauges do.
    let live = matches!(kind, FileKind::Gauge(m) if m.is_live()) || kind == FileKind::Info;
    let file = open::open_no_follow_at(dirfd, name).map_err(|e| match e.kind() {
        // Removed by mark_process_dead between listing and opening.
        io::ErrorKind::NotFound if live => Skip::Quiet,
        io::ErrorKind::NotFound => Skip::Other(WarningKind::Vanished),
        _ if e.raw_os_error() == Some(libc::ELOOP) => Skip::Other(WarningKind::SymbolicLink),
        _ => Skip::Other(WarningKind::unreadable("open", &e)),
    })?;
    let size = file_size(&file)?;
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
    let n = read_full_at(&file, &mut header, 0)
        .map_err(|e| Skip::Other(WarningKind::unreadable("read", &e)))?;
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
        .map_err(|e| Skip::Other(WarningKind::unreadable("read", &e)))?;
    if n < used - HEADER_LEN {
        return Err(Skip::Other(WarningKind::Shrank {
            len: HEADER_LEN + n,
            used,
        }));
    }
    Ok(used)
}

pub(super) fn corrupt(offset: usize, kind: CorruptKind) -> Skip {
    Skip::Corrupt(Corrupt { offset, kind })
}

/// fstat: the size of a regular file.
fn file_size(file: &File) -> Result<u64, Skip> {
    let md = file
        .metadata()
        .map_err(|e| Skip::Other(WarningKind::unreadable("stat", &e)))?;
    if !md.file_type().is_file() {
        return Err(Skip::Other(WarningKind::NotRegularFile));
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
