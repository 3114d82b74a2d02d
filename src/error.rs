//! The crate's one error type: what went wrong, and the path or variable involved.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A specialized `Result` for this crate.
///
/// ```
/// fn setup() -> prometheus_multiproc::Result<()> {
///     Ok(())
/// }
/// # setup().unwrap();
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from this crate.
///
/// The kind is private so that it can grow; use the accessors ([`Error::path`],
/// [`Error::io_error`], [`Error::is_label_count`], ...) to tell errors apart,
/// and `Display` for a message that names the path or variable involved.
///
/// ```
/// use prometheus_multiproc::MultiProcessCollector;
///
/// let err = MultiProcessCollector::new("/no/such/dir").unwrap_err();
/// assert_eq!(err.path().unwrap().to_str(), Some("/no/such/dir"));
/// assert!(err.to_string().contains("/no/such/dir"));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    /// Neither `PROMETHEUS_MULTIPROC_DIR` nor the deprecated variable is set.
    EnvNotSet { variable: &'static str },
    /// The metrics directory is missing, not a directory, or not usable.
    BadDir {
        path: PathBuf,
        variable: Option<&'static str>,
        reason: String,
    },
    /// An I/O error on a path.
    Io { path: PathBuf, source: io::Error },
    /// A metric or label name is not valid.
    InvalidName { what: &'static str, name: String },
    /// A metric name is nothing but the suffix its type removes (a counter
    /// named `_total`): the stored name would be empty.
    EmptyWithoutSuffix { name: String, suffix: &'static str },
    /// Another invalid argument: what kind, and the message to show.
    InvalidArgument { kind: ArgumentKind, message: String },
    /// The number of label values does not match the number of label names.
    LabelCount { expected: usize, got: usize },
    /// A file is full: its reserved address range cannot grow further.
    FileFull { path: PathBuf, limit: u64 },
    /// A metric's series names are taken by a different metric of this
    /// process (same directory).
    Duplicate {
        metric: String,
        names: Vec<String>,
        existing: String,
    },
    /// An existing metrics file that this process must not adopt (another
    /// user's, writable by others, hard-linked), which it could not move
    /// aside either.
    UntrustedFile {
        path: PathBuf,
        why: Distrust,
        rename: io::Error,
    },
    /// A request's `Accept` header cannot be answered: its `version` cannot
    /// be compared with 1.0.0.
    Negotiation { version: String },
}

/// Which argument an [`Error::is_invalid_argument`] error rejected (see
/// [`Error::argument_kind`]).
///
/// ```
/// use prometheus_multiproc::{ArgumentKind, Counter, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let c = Counter::new_in(&dir, "jobs_total", "Jobs.").unwrap();
/// let err = c.try_inc_by(-1.0).unwrap_err();
/// assert_eq!(err.argument_kind(), Some(ArgumentKind::NegativeIncrement));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArgumentKind {
    /// Histogram buckets: a NaN, not strictly increasing, or fewer than two.
    Buckets,
    /// A label name given twice, or an info label that is also a label of
    /// the metric.
    LabelConflict,
    /// Variable labels given to a metric without them (use its `*Vec`).
    VariableLabels,
    /// A counter increased by a negative amount.
    NegativeIncrement,
    /// An Enum's states (none, or one twice) or its name (not usable as
    /// the label that holds the state).
    EnumStates,
    /// An Enum set to a state it does not declare.
    UnknownState,
    /// A worker id not made of 1 to 64 characters of `[A-Za-z0-9.-]`.
    WorkerId,
    /// A process id (to mark dead) that cannot name a file.
    ProcessId,
    /// A raw metric key: too long or not a valid key.
    MetricKey,
    /// A gauge mode name that is not one of prometheus_client's.
    GaugeMode,
    /// `PROMETHEUS_MULTIPROC_FILE_MODE` is not octal permission bits.
    FileMode,
    /// A path excluded from HTTP metrics that does not start with `/`.
    ExcludedPath,
}

/// Why an existing metrics file is not adopted (see `write::adopt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Distrust {
    /// Not a regular file.
    NotRegular,
    /// Owned by another user.
    Owner { uid: u32, ours: u32 },
    /// Group or others may write it, beyond what the configured mode allows.
    Writable { mode: u32, allowed: u32 },
    /// It has other links than its name in the directory.
    Links(u64),
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::NotRegular => f.write_str("not a regular file"),
            Distrust::Owner { uid, ours } => {
                write!(f, "owned by uid {uid}, not by this process's uid {ours}")
            }
            Distrust::Writable { mode, allowed } => write!(
                f,
                "mode {mode:04o} lets group or others write it, beyond the configured file mode {allowed:04o}"
            ),
            Distrust::Links(n) => write!(f, "it has {n} hard links, not 1"),
        }
    }
}

impl Error {
    pub(crate) fn env_not_set(variable: &'static str) -> Self {
        Error {
            kind: ErrorKind::EnvNotSet { variable },
        }
    }

    pub(crate) fn bad_dir(
        path: impl Into<PathBuf>,
        variable: Option<&'static str>,
        reason: impl Into<String>,
    ) -> Self {
        Error {
            kind: ErrorKind::BadDir {
                path: path.into(),
                variable,
                reason: reason.into(),
            },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error {
            kind: ErrorKind::Io {
                path: path.into(),
                source,
            },
        }
    }

    pub(crate) fn invalid_name(what: &'static str, name: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidName {
                what,
                name: name.into(),
            },
        }
    }

    pub(crate) fn empty_without_suffix(name: impl Into<String>, suffix: &'static str) -> Self {
        Error {
            kind: ErrorKind::EmptyWithoutSuffix {
                name: name.into(),
                suffix,
            },
        }
    }

    pub(crate) fn invalid_argument(kind: ArgumentKind, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidArgument {
                kind,
                message: message.into(),
            },
        }
    }

    pub(crate) fn negotiation(version: String) -> Self {
        Error {
            kind: ErrorKind::Negotiation { version },
        }
    }

    pub(crate) fn label_count(expected: usize, got: usize) -> Self {
        Error {
            kind: ErrorKind::LabelCount { expected, got },
        }
    }

    pub(crate) fn file_full(path: impl Into<PathBuf>, limit: u64) -> Self {
        Error {
            kind: ErrorKind::FileFull {
                path: path.into(),
                limit,
            },
        }
    }

    pub(crate) fn duplicate(metric: &str, names: Vec<String>, existing: String) -> Self {
        Error {
            kind: ErrorKind::Duplicate {
                metric: metric.to_string(),
                names,
                existing,
            },
        }
    }

    pub(crate) fn untrusted_file(
        path: impl Into<PathBuf>,
        why: Distrust,
        rename: io::Error,
    ) -> Self {
        Error {
            kind: ErrorKind::UntrustedFile {
                path: path.into(),
                why,
                rename,
            },
        }
    }

    /// True when a metric was refused because its series names are taken
    /// by a different metric created earlier in this process for the same
    /// directory (as prometheus_client's `DuplicateTimeseries`).
    ///
    /// ```
    /// use prometheus_multiproc::{Counter, Gauge, GaugeMode, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = MetricsDir::open(tmp.path()).unwrap();
    /// Counter::new_in(&dir, "jobs_total", "Jobs.").unwrap();
    /// let err = Gauge::new_in(&dir, "jobs_total", "Jobs.", GaugeMode::LiveSum).unwrap_err();
    /// assert!(err.is_duplicate());
    /// assert_eq!(err.duplicate_names(), ["jobs_total"]);
    /// ```
    pub fn is_duplicate(&self) -> bool {
        matches!(self.kind, ErrorKind::Duplicate { .. })
    }

    /// The series names that collided, for [`Error::is_duplicate`] errors
    /// (empty otherwise).
    pub fn duplicate_names(&self) -> &[String] {
        match &self.kind {
            ErrorKind::Duplicate { names, .. } => names,
            _ => &[],
        }
    }

    /// The path this error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            ErrorKind::BadDir { path, .. }
            | ErrorKind::Io { path, .. }
            | ErrorKind::FileFull { path, .. }
            | ErrorKind::UntrustedFile { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The underlying I/O error, if this error came from one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when no metrics directory was configured in the environment.
    pub fn is_env_not_set(&self) -> bool {
        matches!(self.kind, ErrorKind::EnvNotSet { .. })
    }

    /// True when the metrics directory is missing or unusable.
    pub fn is_bad_dir(&self) -> bool {
        matches!(self.kind, ErrorKind::BadDir { .. })
    }

    /// True when a metric or label name was rejected.
    ///
    /// ```
    /// use prometheus_multiproc::{Counter, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let err = Counter::new_in(&dir, "_total", "Nothing left once `_total` goes.").unwrap_err();
    /// assert!(err.is_invalid_name());
    /// ```
    pub fn is_invalid_name(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::InvalidName { .. } | ErrorKind::EmptyWithoutSuffix { .. }
        )
    }

    /// True when an argument other than a name was rejected; see
    /// [`Error::argument_kind`] for which.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidArgument { .. })
    }

    /// Which argument was rejected, for [`Error::is_invalid_argument`]
    /// errors (`None` otherwise).
    ///
    /// ```
    /// use prometheus_multiproc::{ArgumentKind, Histogram, HistogramOpts, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let opts = HistogramOpts::new("lat_seconds", "Latency.").buckets(vec![2.0, 1.0]);
    /// let err = Histogram::with_opts_in(&dir, opts).unwrap_err();
    /// assert_eq!(err.argument_kind(), Some(ArgumentKind::Buckets));
    /// ```
    pub fn argument_kind(&self) -> Option<ArgumentKind> {
        match self.kind {
            ErrorKind::InvalidArgument { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// True when the wrong number of label values was given.
    pub fn is_label_count(&self) -> bool {
        matches!(self.kind, ErrorKind::LabelCount { .. })
    }

    /// True when an existing metrics file was not adopted because another
    /// user could change it (owned by another user, writable by group or
    /// others beyond the configured file mode, or hard-linked), and it could
    /// not be moved aside (a sticky directory lets only its owner rename it).
    /// The file is never mapped; [`Error::path`] names it.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = prometheus_multiproc::MetricsDir::open(tmp.path()).unwrap();
    /// let c = prometheus_multiproc::Counter::new_in(&dir, "ok_total", "Fine.");
    /// assert!(!c.is_err_and(|e| e.is_untrusted_file()));
    /// ```
    pub fn is_untrusted_file(&self) -> bool {
        matches!(self.kind, ErrorKind::UntrustedFile { .. })
    }

    /// True when a request's `Accept` header could not be answered (see
    /// [`NegotiationError`](crate::encoding::NegotiationError));
    /// prometheus_client answers such a request with HTTP 500.
    pub fn is_negotiation(&self) -> bool {
        matches!(self.kind, ErrorKind::Negotiation { .. })
    }

    /// True when the disk (or the file's reserved range) is full.
    pub fn is_storage_full(&self) -> bool {
        match &self.kind {
            ErrorKind::FileFull { .. } => true,
            ErrorKind::Io { source, .. } => {
                matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                )
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::EnvNotSet { variable } => write!(
                f,
                "{variable} is not set: set it to the shared metrics directory"
            ),
            ErrorKind::BadDir {
                path,
                variable: Some(var),
                reason,
            } => write!(f, "{var}={}: {reason}", path.display()),
            ErrorKind::BadDir {
                path,
                variable: None,
                reason,
            } => write!(f, "metrics directory {}: {reason}", path.display()),
            ErrorKind::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ErrorKind::InvalidName { what, name } => write!(f, "invalid {what} name {name:?}"),
            ErrorKind::EmptyWithoutSuffix { name, suffix } => write!(
                f,
                "invalid metric name {name:?}: nothing is left once the suffix {suffix:?} is removed"
            ),
            ErrorKind::InvalidArgument { message, .. } => f.write_str(message),
            ErrorKind::LabelCount { expected, got } => write!(
                f,
                "inconsistent label cardinality: expected {expected} label values, got {got}"
            ),
            ErrorKind::UntrustedFile { path, why, rename } => write!(
                f,
                "{}: existing metrics file not used: {why}; moving it aside failed: {rename}",
                path.display()
            ),
            ErrorKind::FileFull { path, limit } => write!(
                f,
                "{}: metrics file would exceed its reserved size of {limit} bytes",
                path.display()
            ),
            ErrorKind::Duplicate {
                metric,
                names,
                existing,
            } => write!(
                f,
                "duplicated timeseries: metric {metric:?} would produce {names:?}, \
                 already produced by the {existing} created earlier with another type, \
                 labels or help"
            ),
            ErrorKind::Negotiation { version } => write!(
                f,
                "Accept header: version {version:?} cannot be compared with 1.0.0"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            ErrorKind::UntrustedFile { rename, .. } => Some(rename),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match &err.kind {
            ErrorKind::Io { source, .. } => source.kind(),
            ErrorKind::EnvNotSet { .. } | ErrorKind::BadDir { .. } => io::ErrorKind::NotFound,
            ErrorKind::FileFull { .. } => io::ErrorKind::StorageFull,
            ErrorKind::UntrustedFile { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}
