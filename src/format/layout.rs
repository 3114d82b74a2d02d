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
    /// A key length of zero: zero bytes where an entry should be (no
    /// writer makes an empty key; a hole in a sparse file reads as zeros).
    ZeroEntry,
    /// A key longer than [`MAX_KEY_LEN`].
    KeyTooLong {
        /// The key length field.
        len: usize,
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
            CorruptKind::ZeroEntry => write!(
                f,
                "zero bytes where an entry should be, at offset {}",
                self.offset
            ),
            CorruptKind::KeyTooLong { len } => write!(
                f,
                "key length {len} at offset {} is over the limit of {MAX_KEY_LEN}",
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
///
/// [`Entries::window`] iterates over a part of a file (a file read in
/// chunks): it stops, without an error, before the first entry that runs
/// past the end of the part, and [`offset`](Entries::offset) tells where to
/// go on.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    /// The bytes, from file offset `base` on.
    buf: &'a [u8],
    base: usize,
    used: usize,
    /// File offset of the next entry.
    pos: usize,
    failed: bool,
    /// Length of the entry that did not fit in the window (0: unknown).
    pending: usize,
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
            // CAST: positive i32 to usize.
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
            pos: HEADER_LEN,
            ..Entries::window(buf, 0, used)
        })
    }

    /// Iterates over the entries found in `window`, the bytes of a file
    /// from offset `start` (the start of an entry, [`HEADER_LEN`] for the
    /// first) on, in a file whose `used` field is `used` (checked by the
    /// caller). Stops before an entry that runs past the end of the window
    /// but not past `used`.
    ///
    /// ```
    /// use prometheus_multiproc::format::{build_file, entry_len, Entries, HEADER_LEN};
    /// let img = build_file(&[(b"[1]", 1.0, 0.0), (b"[2]", 2.0, 0.0)], 0);
    /// // A window that holds the first entry and half of the second.
    /// let cut = HEADER_LEN + entry_len(3) + 5;
    /// let mut e = Entries::window(&img[HEADER_LEN..cut], HEADER_LEN, img.len());
    /// assert_eq!(e.next().unwrap().unwrap().value, 1.0);
    /// assert!(e.next().is_none());
    /// assert_eq!(e.offset(), HEADER_LEN + entry_len(3));
    /// let at = e.offset();
    /// let mut rest = Entries::window(&img[at..], at, img.len());
    /// assert_eq!(rest.next().unwrap().unwrap().value, 2.0);
    /// assert_eq!(rest.offset(), img.len());
    /// ```
    pub fn window(window: &'a [u8], start: usize, used: usize) -> Self {
        Entries {
            buf: window,
            base: start,
            used,
            pos: start,
            failed: false,
            pending: 0,
        }
    }

    /// The `used` value in effect (8 for a never-written file).
    pub fn used(&self) -> usize {
        self.used
    }

    /// File offset of the next entry (`used` when all were read).
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// After a window stopped: the length of the entry that did not fit,
    /// if its length field was in the window (else 0).
    pub fn pending_len(&self) -> usize {
        self.pending
    }

    fn corrupt(at: usize, kind: CorruptKind) -> Corrupt {
        Corrupt { offset: at, kind }
    }

    /// The next entry; `None` if it runs past the end of the window.
    fn next_entry(&mut self) -> Result<Option<RawEntry<'a>>, Corrupt> {
        let at = self.pos;
        let used = self.used;
        if at + 4 > used {
            let kind = CorruptKind::EntryPastUsed { key_len: 0, used };
            return Err(Self::corrupt(at, kind));
        }
        let rel = at - self.base;
        let Some(len_bytes) = self.buf.get(rel..rel + 4) else {
            return Ok(None);
        };
        // UNWRAP: a 4-byte slice.
        let key_len = i32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
        if key_len < 0 {
            let kind = CorruptKind::NegativeKeyLen {
                len: key_len.into(),
            };
            return Err(Self::corrupt(at, kind));
        }
        // CAST: non-negative i32 to usize.
        let key_len = key_len as usize;
        let vo = value_offset(key_len);
        let Some(end) = at.checked_add(vo + 16).filter(|&e| e <= used) else {
            let kind = CorruptKind::EntryPastUsed { key_len, used };
            return Err(Self::corrupt(at, kind));
        };
        if key_len == 0 {
            return Err(Self::corrupt(at, CorruptKind::ZeroEntry));
        }
        if key_len > MAX_KEY_LEN {
            let kind = CorruptKind::KeyTooLong { len: key_len };
            return Err(Self::corrupt(at, kind));
        }
        let Some(data) = self.buf.get(rel..end - self.base) else {
            self.pending = end - at;
            return Ok(None);
        };
        let key = &data[4..4 + key_len];
        // UNWRAP: 8-byte slices, inside `data` (which is `vo + 16` long).
        let value = f64::from_le_bytes(data[vo..vo + 8].try_into().expect("8 bytes"));
        let timestamp = f64::from_le_bytes(data[vo + 8..vo + 16].try_into().expect("8 bytes"));
        self.pos = end;
        self.pending = 0;
        Ok(Some(RawEntry {
            key,
            value,
            timestamp,
            value_offset: at + vo,
        }))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<RawEntry<'a>, Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.used {
            return None;
        }
        match self.next_entry() {
            Ok(e) => e.map(Ok),
            Err(c) => {
                self.failed = true;
                Some(Err(c))
            }
        }
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
    fn zeros_and_huge_keys_are_corrupt() {
        // A hole where the second entry should be: the file ends in zeros
        // up to `used`.
        let mut img = build_file(&[(b"abc", 1.0, 0.0)], 4096);
        img[0..4].copy_from_slice(&4096i32.to_le_bytes());
        let got: Vec<_> = Entries::new(&img).unwrap().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().value, 1.0);
        let err = got[1].as_ref().unwrap_err();
        assert_eq!(
            (err.offset, &err.kind),
            (8 + entry_len(3), &CorruptKind::ZeroEntry)
        );
        assert!(
            err.to_string()
                .contains("zero bytes where an entry should be")
        );

        let long = MAX_KEY_LEN + 1;
        let mut img = vec![0u8; HEADER_LEN + entry_len(long)];
        let used = i32::try_from(img.len()).unwrap();
        img[0..4].copy_from_slice(&used.to_le_bytes());
        img[8..12].copy_from_slice(&i32::try_from(long).unwrap().to_le_bytes());
        let err = Entries::new(&img).unwrap().next().unwrap().unwrap_err();
        assert_eq!(err.kind, CorruptKind::KeyTooLong { len: long });
    }

    /// Cut anywhere into windows, a file gives the same entries, and the
    /// same error, as read whole.
    #[test]
    fn windows_give_what_the_whole_image_gives() {
        let keys: Vec<Vec<u8>> = (0..40).map(|i| vec![b'k'; 1 + i * 7]).collect();
        let entries: Vec<(&[u8], f64, f64)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_slice(), i as f64, 0.5))
            .collect();
        let mut bad = build_file(&entries, 0);
        let used = bad.len();
        bad.extend_from_slice(&[0u8; 64]);
        let bad_used = i32::try_from(bad.len()).unwrap();
        bad[0..4].copy_from_slice(&bad_used.to_le_bytes());
        for img in [build_file(&entries, 0), bad] {
            let whole: Vec<_> = Entries::new(&img).unwrap().collect();
            let used = Entries::new(&img).unwrap().used();
            for size in [1, 7, 24, 100, 333, used] {
                let mut got = Vec::new();
                let (mut at, mut need) = (HEADER_LEN, 0);
                while at < used {
                    // A window of `size` bytes, or of the entry that did
                    // not fit in the last one.
                    let end = (at + size.max(need)).min(used);
                    let mut e = Entries::window(&img[at..end], at, used);
                    got.extend(e.by_ref());
                    if got.last().is_some_and(Result::is_err) {
                        break;
                    }
                    need = if e.offset() == at {
                        e.pending_len().max(4)
                    } else {
                        0
                    };
                    at = e.offset();
                }
                assert_eq!(got, whole, "windows of {size}");
            }
        }
        assert!(used > 1000);
    }

    #[test]
    fn zero_used_is_empty() {
        let img = vec![0u8; 64];
        assert_eq!(Entries::new(&img).unwrap().count(), 0);
    }
}
