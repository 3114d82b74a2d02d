//! What a scrape reports about a file it skipped or a merge remark: a typed kind, printed as one line.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::clash::ClashingMetric;
use crate::format::Corrupt;
use crate::merge::TypeConflict;

/// Something wrong with one file (or the directory); the scrape went on.
///
/// `Display` prints one line: the path, then what happened.
///
/// ```
/// use prometheus_multiproc::{MultiProcessCollector, WarningKind};
/// # let tmp = tempfile::tempdir().unwrap();
/// std::fs::write(tmp.path().join("counter_1.db"), b"\x10\x00\x00\x00\x00\x00\x00\x00\xff\xff").unwrap();
/// let scrape = MultiProcessCollector::new(tmp.path()).unwrap().collect_families().unwrap();
/// assert!(matches!(scrape.warnings[0].kind, WarningKind::Corrupt(_)));
/// assert!(scrape.warnings[0].to_string().contains("corrupt metrics file skipped"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The file (or directory) concerned.
    pub path: PathBuf,
    /// What happened.
    pub kind: WarningKind,
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// The file's content is corrupt (the reason and its offset); the file
    /// was skipped whole.
    Corrupt(Corrupt),
    /// Not a regular file (a FIFO, a device, a directory); skipped, never
    /// opened.
    NotRegularFile,
    /// A symbolic link; skipped, never followed.
    SymbolicLink,
    /// A metrics file's name, but not UTF-8 (the path shows it lossily);
    /// skipped.
    NonUtf8Name,
    /// Memory to read it (this many bytes) could not be allocated; skipped.
    OutOfMemory {
        /// The bytes asked for.
        bytes: usize,
    },
    /// Listed, then gone before it could be opened; skipped.
    Vanished,
    /// Could not be opened, examined or read (`op` is `open`, `stat` or
    /// `read`); skipped.
    Unreadable {
        /// The operation that failed.
        op: &'static str,
        /// The error's kind.
        error_kind: io::ErrorKind,
        /// The error's text.
        error: String,
    },
    /// Larger than [`MAX_FILE_SIZE`](crate::MAX_FILE_SIZE); skipped.
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Shorter than its `used` field said, while it was being read; skipped.
    Shrank {
        /// The bytes read.
        len: usize,
        /// The `used` field.
        used: usize,
    },
    /// The thread reading it ahead stopped (panicked) before finishing;
    /// skipped.
    ReadAborted,
    /// Entries dropped because their metric has another type in an earlier
    /// file.
    TypeConflict(TypeConflict),
    /// A gauge written with several multiprocess modes (the merge's remark).
    MixedGaugeModes(crate::merge::MixedModes),
    /// Metrics written by different processes produce the same series
    /// name, as prometheus_client's registry computes the names (a counter
    /// `x` and a gauge `x_total`, a histogram `x` and a gauge `x_count`):
    /// the output repeats it, exactly as prometheus_client's does. Within
    /// one process such a metric is refused
    /// ([`Error::is_duplicate`](crate::Error::is_duplicate)).
    NameClash {
        /// The series name both produce.
        series: String,
        /// The two metrics, with the files that hold them.
        metrics: Box<[ClashingMetric; 2]>,
    },
    /// A per-process metric left out because the files have a metric of
    /// that name.
    ProcessMetricShadowed {
        /// The metric's name.
        name: String,
    },
}

impl WarningKind {
    /// An [`Unreadable`](WarningKind::Unreadable) warning for `error`.
    pub(crate) fn unreadable(op: &'static str, error: &io::Error) -> Self {
        WarningKind::Unreadable {
            op,
            error_kind: error.kind(),
            error: error.to_string(),
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::Corrupt(c) => write!(f, "corrupt metrics file skipped: {c}"),
            WarningKind::NotRegularFile => f.write_str("not a regular file; skipped"),
            WarningKind::SymbolicLink => f.write_str("is a symbolic link; skipped"),
            WarningKind::NonUtf8Name => f.write_str("file name is not UTF-8; skipped"),
            WarningKind::OutOfMemory { bytes } => {
                write!(f, "cannot allocate {bytes} bytes to read it; skipped")
            }
            WarningKind::Vanished => f.write_str("vanished before it could be read; skipped"),
            WarningKind::Unreadable { op, error, .. } => write!(f, "cannot {op}: {error}; skipped"),
            WarningKind::TooLarge { size, limit } => {
                write!(
                    f,
                    "{size} bytes is larger than the limit of {limit}; skipped"
                )
            }
            WarningKind::Shrank { len, used } => write!(
                f,
                "shrank to {len} bytes while being read (used field {used}); skipped"
            ),
            WarningKind::ReadAborted => f.write_str("could not be read; skipped"),
            WarningKind::TypeConflict(c) => c.fmt(f),
            WarningKind::MixedGaugeModes(note) => write!(f, "{note}"),
            WarningKind::NameClash { series, metrics } => write!(
                f,
                "series {series:?} is produced by {} and by {}: processes define these \
                 metrics differently, and the output repeats the name as prometheus_client's does",
                metrics[0], metrics[1]
            ),
            WarningKind::ProcessMetricShadowed { name } => write!(
                f,
                "the metrics files already have a metric named {name}: the process metric is left out"
            ),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}
