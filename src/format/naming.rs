//! File names (`counter_{pid}.db`, `gauge_{mode}_{pid}.db`, ...), gauge modes, and directory checks.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How a gauge's values from several processes are combined, as in
/// prometheus_client's `multiprocess_mode`.
///
/// The `Live*` modes drop the values of dead processes: their files are
/// removed by [`mark_process_dead`](crate::mark_process_dead), and files of
/// this crate's workers are recognised as dead even without it (their lock is
/// free).
///
/// ```
/// use prometheus_multiproc::GaugeMode;
/// assert_eq!(GaugeMode::LiveSum.as_str(), "livesum");
/// assert_eq!("mostrecent".parse::<GaugeMode>().unwrap(), GaugeMode::MostRecent);
/// assert!(GaugeMode::LiveMax.is_live());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GaugeMode {
    /// One sample per process, with a `pid` label (the default in Python).
    All,
    /// As `All`, living processes only.
    LiveAll,
    /// The smallest value of any process.
    Min,
    /// The smallest value of any living process.
    LiveMin,
    /// The largest value of any process.
    Max,
    /// The largest value of any living process.
    LiveMax,
    /// The sum over all processes.
    Sum,
    /// The sum over living processes.
    LiveSum,
    /// The value most recently `set` by any process.
    MostRecent,
    /// The value most recently `set` by any living process.
    LiveMostRecent,
}

impl GaugeMode {
    /// Every mode, in prometheus_client's documentation order.
    pub const ALL: [GaugeMode; 10] = [
        GaugeMode::All,
        GaugeMode::LiveAll,
        GaugeMode::Min,
        GaugeMode::LiveMin,
        GaugeMode::Max,
        GaugeMode::LiveMax,
        GaugeMode::Sum,
        GaugeMode::LiveSum,
        GaugeMode::MostRecent,
        GaugeMode::LiveMostRecent,
    ];

    /// The name used in file names and by prometheus_client.
    pub const fn as_str(self) -> &'static str {
        match self {
            GaugeMode::All => "all",
            GaugeMode::LiveAll => "liveall",
            GaugeMode::Min => "min",
            GaugeMode::LiveMin => "livemin",
            GaugeMode::Max => "max",
            GaugeMode::LiveMax => "livemax",
            GaugeMode::Sum => "sum",
            GaugeMode::LiveSum => "livesum",
            GaugeMode::MostRecent => "mostrecent",
            GaugeMode::LiveMostRecent => "livemostrecent",
        }
    }

    /// True for the modes that only count living processes.
    pub const fn is_live(self) -> bool {
        matches!(
            self,
            GaugeMode::LiveAll
                | GaugeMode::LiveMin
                | GaugeMode::LiveMax
                | GaugeMode::LiveSum
                | GaugeMode::LiveMostRecent
        )
    }

    /// True for `MostRecent` and `LiveMostRecent`, which store a timestamp
    /// with every `set`.
    pub const fn is_most_recent(self) -> bool {
        matches!(self, GaugeMode::MostRecent | GaugeMode::LiveMostRecent)
    }

    /// True when the merged output keeps one sample per process (`pid` label).
    pub const fn keeps_pid(self) -> bool {
        matches!(self, GaugeMode::All | GaugeMode::LiveAll)
    }
}

impl fmt::Display for GaugeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GaugeMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        GaugeMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_argument(
                    crate::error::ArgumentKind::GaugeMode,
                    format!("invalid gauge mode {s:?}"),
                )
            })
    }
}

/// The kind of a metrics file, from the first part(s) of its name.
///
/// ```
/// use prometheus_multiproc::format::{FileKind, parse_file_name};
/// use prometheus_multiproc::GaugeMode;
/// let (kind, pid) = parse_file_name("gauge_livesum_123.db").unwrap();
/// assert_eq!(kind, FileKind::Gauge(GaugeMode::LiveSum));
/// assert_eq!(pid, "123");
/// assert_eq!(kind.file_name("77"), "gauge_livesum_77.db");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FileKind {
    /// `counter_{pid}.db`
    Counter,
    /// `gauge_{mode}_{pid}.db`
    Gauge(GaugeMode),
    /// `histogram_{pid}.db`
    Histogram,
    /// `summary_{pid}.db`
    Summary,
    /// `info_{pid}.db`: Info metrics (an extension; prometheus_client reads it as type `info`).
    Info,
    /// `stateset_{pid}.db`: Enum metrics (an extension; prometheus_client reads it as type `stateset`).
    StateSet,
}

impl FileKind {
    /// The file name prefix, e.g. `counter` or `gauge_livesum`.
    pub fn prefix(self) -> String {
        match self {
            FileKind::Counter => "counter".into(),
            FileKind::Gauge(m) => format!("gauge_{}", m.as_str()),
            FileKind::Histogram => "histogram".into(),
            FileKind::Summary => "summary".into(),
            FileKind::Info => "info".into(),
            FileKind::StateSet => "stateset".into(),
        }
    }

    /// The Prometheus type name of the metrics in such a file.
    pub fn type_name(self) -> &'static str {
        match self {
            FileKind::Counter => "counter",
            FileKind::Gauge(_) => "gauge",
            FileKind::Histogram => "histogram",
            FileKind::Summary => "summary",
            FileKind::Info => "info",
            FileKind::StateSet => "stateset",
        }
    }

    /// The full file name for a process identifier.
    pub fn file_name(self, pid: &str) -> String {
        format!("{}_{pid}.db", self.prefix())
    }
}

/// Parses a metrics file name into its kind and process identifier, the way
/// prometheus_client splits it on `_`. Returns `None` for names that are not
/// ours (unknown prefix, no `.db` suffix, empty identifier).
pub fn parse_file_name(name: &str) -> Option<(FileKind, &str)> {
    let stem = name.strip_suffix(".db")?;
    let (prefix, rest) = stem.split_once('_')?;
    let (kind, pid) = match prefix {
        "counter" => (FileKind::Counter, rest),
        "histogram" => (FileKind::Histogram, rest),
        "summary" => (FileKind::Summary, rest),
        "info" => (FileKind::Info, rest),
        "stateset" => (FileKind::StateSet, rest),
        "gauge" => {
            let (mode, pid) = rest.split_once('_')?;
            (FileKind::Gauge(mode.parse().ok()?), pid)
        }
        _ => return None,
    };
    // prometheus_client takes the third `_`-part as the pid for gauges and
    // ignores the rest for other types; we insist on one clean identifier.
    if pid.is_empty() || pid.contains('_') {
        return None;
    }
    Some((kind, pid))
}

/// True for a usable worker id: 1 to 64 characters of `[A-Za-z0-9.-]`, not
/// `.` or `..` (so it can stand in a file name, between `_` and `.db`).
///
/// ```
/// use prometheus_multiproc::format::is_valid_worker_id;
/// assert!(is_valid_worker_id("w3") && is_valid_worker_id("1234"));
/// assert!(!is_valid_worker_id("a_b") && !is_valid_worker_id("..") && !is_valid_worker_id(""));
/// ```
pub fn is_valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && id != "."
        && id != ".."
}

/// Checks that `path` is an existing directory.
pub(crate) fn check_dir(path: &Path, var: Option<&'static str>) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::bad_dir(path, var, "is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::bad_dir(path, var, "does not exist"))
        }
        Err(e) => Err(Error::bad_dir(path, var, e.to_string())),
    }
}

/// Checks that `path` is a directory this process can create files in.
pub(crate) fn check_writable_dir(path: &Path, var: Option<&'static str>) -> Result<()> {
    check_dir(path, var)?;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::bad_dir(path, var, "contains a NUL byte"))?;
    match nix::unistd::access(c.as_c_str(), nix::unistd::AccessFlags::W_OK) {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::bad_dir(path, var, format!("is not writable: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let kinds = [
            FileKind::Counter,
            FileKind::Histogram,
            FileKind::Summary,
            FileKind::Info,
            FileKind::StateSet,
        ]
        .into_iter()
        .chain(GaugeMode::ALL.into_iter().map(FileKind::Gauge));
        for k in kinds {
            let n = k.file_name("4242");
            assert_eq!(parse_file_name(&n), Some((k, "4242")));
        }
    }

    #[test]
    fn foreign_names_are_ignored() {
        for n in [
            "foo_1.db",
            "counter_1.txt",
            "counter_.db",
            "gauge_bogus_1.db",
            "gauge_1.db",
            "counter.db",
        ] {
            assert_eq!(parse_file_name(n), None, "{n}");
        }
    }
}
