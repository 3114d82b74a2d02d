//! What a predecessor (an earlier process with the same pid or worker id, Rust or Python) left in a metrics file: read entry by entry in bounded chunks, stopping at the first corrupt entry.
//!
//! A writer that continues a file needs its `used` and the offset of each
//! key's value. The file's `used` field says how much to read, but nothing
//! guarantees that the bytes are really there: a sparse file of 4 KiB on disk
//! can claim 1 GiB. Reading it whole would allocate and read 1 GiB (and hash
//! 44 million empty keys, since a hole reads as zeros). So the file is read
//! in chunks of [`CHUNK`] bytes (more only for one entry whose key is longer,
//! at most [`MAX_KEY_LEN`]) and parsed as it goes; the first corrupt entry
//! ends the reading. A hole reads as a zero key length, which no writer
//! produces (prometheus_client's keys are JSON arrays): corrupt. Reading is
//! thus bounded by the entries that are really in the file, and memory by
//! one chunk plus the keys found.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::format::{self, HEADER_LEN, MAX_KEY_LEN};

/// Bytes read per system call.
pub(crate) const CHUNK: usize = 64 * 1024;

/// What a predecessor left: `used` and each key's value offset.
#[derive(Debug, Default)]
pub(crate) struct Existing {
    pub(crate) used: usize,
    pub(crate) positions: HashMap<Box<str>, usize>,
}

/// Why a file cannot be continued.
#[derive(Debug)]
pub(crate) enum Unusable {
    Io(io::Error),
    ShortHeader {
        size: usize,
    },
    BadUsed {
        used: i32,
        size: usize,
    },
    /// The entry at `offset` is corrupt.
    Entry {
        offset: usize,
        why: BadEntry,
    },
}

/// What is wrong with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadEntry {
    /// Key length zero (a hole in a sparse file reads as zeros).
    EmptyKey,
    /// Key length negative or above [`MAX_KEY_LEN`].
    KeyLen(i32),
    /// The entry does not end inside `used`.
    PastUsed,
    /// The key is not UTF-8.
    NotUtf8,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Io(e) => write!(f, "cannot read it: {e}"),
            Unusable::ShortHeader { size } => write!(f, "short header: {size} bytes"),
            Unusable::BadUsed { used, size } => {
                write!(f, "used field {used} is invalid for a file of {size} bytes")
            }
            Unusable::Entry { offset, why } => {
                let why = match why {
                    BadEntry::EmptyKey => "empty key (a hole?)".to_string(),
                    BadEntry::KeyLen(n) => format!("key length {n}"),
                    BadEntry::PastUsed => "runs past used".to_string(),
                    BadEntry::NotUtf8 => "key is not UTF-8".to_string(),
                };
                write!(f, "corrupt entry at offset {offset}: {why}")
            }
        }
    }
}

/// Reads the entries of `file`, whose size is `size` bytes.
pub(crate) fn read(file: &File, size: usize) -> Result<Existing, Unusable> {
    if size < HEADER_LEN {
        return Err(Unusable::ShortHeader { size });
    }
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0).map_err(Unusable::Io)?;
    let used = format::read_used(&header).unwrap_or(0);
    if used == 0 {
        return Ok(Existing {
            used: HEADER_LEN,
            positions: HashMap::new(),
        });
    }
    // CAST: checked non-negative just before.
    if used < HEADER_LEN as i32 || used as usize > size {
        return Err(Unusable::BadUsed { used, size });
    }
    // CAST: `used` is positive (checked above).
    let used = used as usize;
    let mut window = Window::new(file, used);
    let mut positions = HashMap::new();
    let mut at = HEADER_LEN;
    while at < used {
        let bad = |why| Unusable::Entry { offset: at, why };
        let len_bytes: [u8; 4] = window
            .bytes(at, 4)?
            .ok_or(bad(BadEntry::PastUsed))?
            .try_into()
            .expect("4 bytes");
        let key_len = i32::from_le_bytes(len_bytes);
        if key_len == 0 {
            return Err(bad(BadEntry::EmptyKey));
        }
        // CAST: a positive i32 fits in usize.
        let key_len = usize::try_from(key_len)
            .ok()
            .filter(|&n| n <= MAX_KEY_LEN)
            .ok_or(bad(BadEntry::KeyLen(key_len)))?;
        let end = at + format::entry_len(key_len);
        if end > used {
            return Err(bad(BadEntry::PastUsed));
        }
        let key = window
            .bytes(at + 4, key_len)?
            .ok_or(bad(BadEntry::PastUsed))?;
        let key = std::str::from_utf8(key).map_err(|_| bad(BadEntry::NotUtf8))?;
        positions.insert(Box::from(key), at + format::value_offset(key_len));
        at = end;
    }
    Ok(Existing { used, positions })
}

/// A chunk of the file's first `limit` bytes, refilled as the parser moves on.
struct Window<'a> {
    file: &'a File,
    limit: usize,
    start: usize,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn new(file: &'a File, limit: usize) -> Self {
        Window {
            file,
            limit,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes `at..at + len`, or `None` if they are not all below `limit`.
    fn bytes(&mut self, at: usize, len: usize) -> Result<Option<&[u8]>, Unusable> {
        let Some(end) = at.checked_add(len).filter(|&e| e <= self.limit) else {
            return Ok(None);
        };
        if at < self.start || end > self.start + self.buf.len() {
            let want = len.max(CHUNK).min(self.limit - at);
            self.buf.clear();
            self.buf.resize(want, 0);
            // CAST: usize to u64 never truncates on supported targets.
            self.file
                .read_exact_at(&mut self.buf, at as u64)
                .map_err(Unusable::Io)?;
            self.start = at;
        }
        let from = at - self.start;
        Ok(Some(&self.buf[from..from + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(img: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(img).unwrap();
        f
    }

    #[test]
    fn positions_match_the_format_reader() {
        let long = "k".repeat(CHUNK + 5);
        let keys: Vec<String> = (0..5000)
            .map(|i| format!("key{i}"))
            .chain([long])
            .chain((0..10).map(|i| format!("after{i}")))
            .collect();
        let entries: Vec<(&[u8], f64, f64)> =
            keys.iter().map(|k| (k.as_bytes(), 1.0, 0.0)).collect();
        let img = format::build_file(&entries, 0);
        let got = read(&file_of(&img), img.len()).unwrap();
        let want = format::Entries::new(&img).unwrap();
        assert_eq!(got.used, want.used());
        let mut n = 0;
        for e in want {
            let e = e.unwrap();
            let k = std::str::from_utf8(e.key).unwrap();
            assert_eq!(got.positions.get(k), Some(&e.value_offset), "{k}");
            n += 1;
        }
        assert_eq!(got.positions.len(), n);
    }

    #[test]
    fn stops_at_the_first_corrupt_entry() {
        let mut img = format::build_file(&[(b"a", 1.0, 0.0)], 4096);
        let first_end = format::read_used(&img).unwrap() as usize;
        // Claim more than the one entry: zeros follow, as in a hole.
        img[..4].copy_from_slice(&4000i32.to_le_bytes());
        match read(&file_of(&img), img.len()) {
            Err(Unusable::Entry { offset, why }) => {
                assert_eq!((offset, why), (first_end, BadEntry::EmptyKey))
            }
            other => panic!("{other:?}"),
        }
        img[..4].copy_from_slice(&5000i32.to_le_bytes());
        assert!(matches!(
            read(&file_of(&img), img.len()),
            Err(Unusable::BadUsed { used: 5000, .. })
        ));
        img[..4].copy_from_slice(&0i32.to_le_bytes());
        assert_eq!(read(&file_of(&img), img.len()).unwrap().used, HEADER_LEN);
    }
}
