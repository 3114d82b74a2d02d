//! What a scrape reports about a file it skipped or a merge remark: one line per warning.

use std::fmt;
use std::path::PathBuf;

/// Something wrong with one file (or the directory); the scrape went on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The file (or directory) concerned.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}
