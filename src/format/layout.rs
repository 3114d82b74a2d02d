//! The on-disk byte layout of a metrics file: header, entries, padding (pure; no I/O, no unsafe).
//!
//! ```text
//! offset 0   i32 used      bytes of the file in use, header included (little-endian)
//! offset 4   4 bytes       zero in prometheus_client's files; b"pmlk" in ours (see below)
//! offset 8   entries, back to back, each 8-byte aligned:
//!            i32 key_len   length of the UTF-8 key
//!            key bytes     the JSON key (see `key`)
//!            padding       1 to 8 spaces, so that 4 + key_len + padding is a multiple of 8
//!            f64 value
//!            f64 timestamp seconds since the epoch (most-recent gauges), else 0.0
//! ```
//!
//! New files are [`INITIAL_SIZE`] bytes; capacity doubles when an entry does not
//! fit. An entry is written in full before `used` is raised to cover it, so a
//! reader never sees a half-written entry inside `used`.
//!
//! Bytes 4..8 are ignored by prometheus_client, both reading and writing. Files
//! written by this crate carry [`LOCK_MARKER`] there: it says "the writer of this
//! file holds an exclusive `flock` on it for as long as it lives", which lets the
//! collector recognise the files of dead workers (see `docs/format.md`).

use std::fmt;

/// Size of the header (`used` plus 4 reserved bytes).
pub const HEADER_LEN: usize = 8;
/// Size of a newly created file, as prometheus_client makes it.
pub const INITIAL_SIZE: usize = 1 << 16;
/// Marker in header bytes 4..8 of files whose writer holds an exclusive lock.
pub const LOCK_MARKER: [u8; 4] = *b"pmlk";
/// Largest key length this crate writes or accepts (1 MiB).
pub const MAX_KEY_LEN: usize = 1 << 20;

/// Number of space bytes after a key of `key_len` bytes (always 1 to 8).
///
/// ```
/// use prometheus_multiproc::format::padding_len;
/// assert_eq!(padding_len(4), 8); // 4 + 4 is aligned already: a full 8 spaces
/// assert_eq!(padding_len(3), 1);
/// ```
pub const fn padding_len(key_len: usize) -> usize {
    8 - (key_len + 4) % 8
}

/// Total size of an entry whose key is `key_len` bytes long.
///
/// ```
/// use prometheus_multiproc::format::entry_len;
/// assert_eq!(entry_len(3), 4 + 3 + 1 + 16);
/// ```
pub const fn entry_len(key_len: usize) -> usize {
    4 + key_len + padding_len(key_len) + 16
}

/// Offset of the value, relative to the start of the entry.
pub const fn value_offset(key_len: usize) -> usize {
    4 + key_len + padding_len(key_len)
}

/// Appends one entry (key, padding, value, timestamp) to `out`.
///
/// ```
/// use prometheus_multiproc::format::{encode_entry, entry_len};
/// let mut buf = Vec::new();
/// encode_entry(b"abc", 1.5, 0.0, &mut buf);
/// assert_eq!(buf.len(), entry_len(3));
/// assert_eq!(&buf[..8], &[3, 0, 0, 0, b'a', b'b', b'c', b' ']);
/// ```
pub fn encode_entry(key: &[u8], value: f64, timestamp: f64, out: &mut Vec<u8>) {
    let len = i32::try_from(key.len()).expect("key length fits in i32");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend(std::iter::repeat_n(b' ', padding_len(key.len())));
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
}

/// Builds a whole file image: header and entries, padded with zeros to at
/// least `min_size` bytes. Used by tests and tools.
///
/// ```
/// use prometheus_multiproc::format::{build_file, Entries};
/// let img = build_file(&[(b"k".as_slice(), 2.0, 0.0)], 64);
/// let e: Vec<_> = Entries::new(&img).unwrap().map(|e| e.unwrap().value).collect();
/// assert_eq!(e, vec![2.0]);
/// ```
pub fn build_file(entries: &[(&[u8], f64, f64)], min_size: usize) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    for (k, v, t) in entries {
        encode_entry(k, *v, *t, &mut out);
    }
    let used = i32::try_from(out.len()).expect("file fits in i32");
    out[..4].copy_from_slice(&used.to_le_bytes());
    if out.len() < min_size {
        out.resize(min_size, 0);
    }
    out
}

/// Reads the `used` field of a header, if the buffer holds one.
pub fn read_used(buf: &[u8]) -> Option<i32> {
    buf.get(..4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// True when the header carries [`LOCK_MARKER`].
pub fn has_lock_marker(buf: &[u8]) -> bool {
    buf.get(4..8) == Some(&LOCK_MARKER[..])
}

/// One entry as found in a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawEntry<'a> {
    /// The key bytes (not yet checked to be UTF-8 or JSON).
    pub key: &'a [u8],
    /// The value.
    pub value: f64,
    /// The timestamp (seconds), 0.0 when not set.
    pub timestamp: f64,
    /// Offset of the value within the file; the timestamp follows at +8.
    pub value_offset: usize,
}

/// Why a file's bytes are not a valid metrics file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptKind {
    /// Fewer than 8 bytes.
    ShortHeader {
        /// Bytes present.
        len: usize,
    },
    /// `used` is negative or smaller than the header, but not zero.
    BadUsed {
        /// The `used` field.
        used: i64,
    },
    /// `used` points past the end of the data.
    UsedPastEnd {
        /// The `used` field.
        used: usize,
        /// Bytes present.
        len: usize,
    },
    /// A key length is negative.
    NegativeKeyLen {
        /// The key length field.
        len: i64,
    },
    /// An entry does not fit inside `used`.
    EntryPastUsed {
        /// The key length field.
        key_len: usize,
        /// The `used` field.
        used: usize,
    },
    /// A key is not valid UTF-8.
    InvalidUtf8,
    /// A key is not the JSON array prometheus_client writes.
    BadKey(String),
}

/// A file is corrupt from `offset` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// Byte offset where the problem starts.
    pub offset: usize,
    /// What is wrong.
    pub kind: CorruptKind,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CorruptKind::ShortHeader { len } => {
                write!(f, "short header: {len} bytes, need {HEADER_LEN}")
            }
            CorruptKind::BadUsed { used } => write!(f, "invalid used field {used}"),
            CorruptKind::UsedPastEnd { used, len } => {
                write!(
                    f,
                    "used field {used} is past the end of the file ({len} bytes)"
                )
            }
            CorruptKind::NegativeKeyLen { len } => {
                write!(f, "negative key length {len} at offset {}", self.offset)
            }
            CorruptKind::EntryPastUsed { key_len, used } => write!(
                f,
                "entry with key length {key_len} at offset {} runs past used ({used})",
                self.offset
            ),
            CorruptKind::InvalidUtf8 => write!(f, "key at offset {} is not UTF-8", self.offset),
            CorruptKind::BadKey(why) => write!(f, "key at offset {}: {why}", self.offset),
        }
    }
}

impl std::error::Error for Corrupt {}

/// Iterator over the entries of a file image, validating as it goes.
///
/// Every read is bounds-checked against both `used` and the buffer: no input
/// makes it read outside the buffer, allocate, or loop. After the first error
/// it yields nothing more.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    buf: &'a [u8],
    used: usize,
    pos: usize,
    failed: bool,
}

impl<'a> Entries<'a> {
    /// Checks the header and prepares to iterate. A file whose `used` is 0
    /// (created but never written) has no entries.
    pub fn new(buf: &'a [u8]) -> Result<Self, Corrupt> {
        let used = read_used(buf).ok_or(Corrupt {
            offset: 0,
            kind: CorruptKind::ShortHeader { len: buf.len() },
        })?;
        if buf.len() < HEADER_LEN {
            return Err(Corrupt {
                offset: 0,
                kind: CorruptKind::ShortHeader { len: buf.len() },
            });
        }
        let used = if used == 0 {
            HEADER_LEN
        } else if used < HEADER_LEN as i32 {
            return Err(Corrupt {
                offset: 0,
                kind: CorruptKind::BadUsed { used: used.into() },
            });
        } else {
            used as usize
        };
        if used > buf.len() {
            return Err(Corrupt {
                offset: 0,
                kind: CorruptKind::UsedPastEnd {
                    used,
                    len: buf.len(),
                },
            });
        }
        Ok(Entries {
            buf,
            used,
            pos: HEADER_LEN,
            failed: false,
        })
    }

    /// The `used` value in effect (8 for a never-written file).
    pub fn used(&self) -> usize {
        self.used
    }

    fn next_entry(&mut self) -> Result<RawEntry<'a>, Corrupt> {
        let at = self.pos;
        let data = &self.buf[..self.used];
        let len_bytes = data.get(at..at + 4).ok_or(Corrupt {
            offset: at,
            kind: CorruptKind::EntryPastUsed {
                key_len: 0,
                used: self.used,
            },
        })?;
        let key_len = i32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
        if key_len < 0 {
            return Err(Corrupt {
                offset: at,
                kind: CorruptKind::NegativeKeyLen {
                    len: key_len.into(),
                },
            });
        }
        let key_len = key_len as usize;
        let vo = value_offset(key_len);
        let end = at.checked_add(vo + 16).filter(|&e| e <= self.used);
        let Some(end) = end else {
            return Err(Corrupt {
                offset: at,
                kind: CorruptKind::EntryPastUsed {
                    key_len,
                    used: self.used,
                },
            });
        };
        let key = &data[at + 4..at + 4 + key_len];
        let value = f64::from_le_bytes(data[at + vo..at + vo + 8].try_into().expect("8 bytes"));
        let timestamp =
            f64::from_le_bytes(data[at + vo + 8..at + vo + 16].try_into().expect("8 bytes"));
        self.pos = end;
        Ok(RawEntry {
            key,
            value,
            timestamp,
            value_offset: at + vo,
        })
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<RawEntry<'a>, Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.used {
            return None;
        }
        let r = self.next_entry();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_one_to_eight() {
        for len in 0..64 {
            let p = padding_len(len);
            assert!((1..=8).contains(&p), "len {len} padding {p}");
            assert_eq!((4 + len + p) % 8, 0);
        }
    }

    #[test]
    fn round_trip() {
        let img = build_file(&[(b"a", 1.0, 0.0), (b"bbbb", -2.5, 17.0)], 0);
        let got: Vec<_> = Entries::new(&img).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].key, b"a");
        assert_eq!(got[1].key, b"bbbb");
        assert_eq!(got[1].value, -2.5);
        assert_eq!(got[1].timestamp, 17.0);
        assert_eq!(got[0].value_offset % 8, 0);
        assert_eq!(got[1].value_offset % 8, 0);
    }

    #[test]
    fn corrupt_inputs_are_errors() {
        assert!(matches!(
            Entries::new(&[1, 2, 3]).unwrap_err().kind,
            CorruptKind::ShortHeader { len: 3 }
        ));
        let mut img = build_file(&[(b"abc", 1.0, 0.0)], 0);
        img[0..4].copy_from_slice(&1000i32.to_le_bytes());
        assert!(matches!(
            Entries::new(&img).unwrap_err().kind,
            CorruptKind::UsedPastEnd { .. }
        ));
        let mut img = build_file(&[(b"abc", 1.0, 0.0)], 0);
        img[8..12].copy_from_slice(&(-5i32).to_le_bytes());
        let errs: Vec<_> = Entries::new(&img).unwrap().collect();
        assert_eq!(errs.len(), 1);
        assert!(matches!(
            errs[0].as_ref().unwrap_err().kind,
            CorruptKind::NegativeKeyLen { len: -5 }
        ));
        let mut img = build_file(&[(b"abc", 1.0, 0.0)], 0);
        img[8..12].copy_from_slice(&i32::MAX.to_le_bytes());
        let errs: Vec<_> = Entries::new(&img).unwrap().collect();
        assert!(matches!(
            errs[0].as_ref().unwrap_err().kind,
            CorruptKind::EntryPastUsed { .. }
        ));
    }

    #[test]
    fn zero_used_is_empty() {
        let img = vec![0u8; 64];
        assert_eq!(Entries::new(&img).unwrap().count(), 0);
    }
}
