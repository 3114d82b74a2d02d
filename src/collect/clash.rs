//! Warns when metrics written by different processes produce the same series names (as prometheus_client's registry computes them), naming the files of each; the scrape itself stays exactly prometheus_client's.
//!
//! Within one process the metric constructors refuse such a metric
//! ([`Error::is_duplicate`](crate::Error::is_duplicate)); across processes
//! nothing can refuse it, and the merged output repeats a name (for example
//! a counter `dup` and a gauge `dup_total` both announce `dup_total`), which
//! Prometheus rejects. prometheus_client's collector prints the same bytes
//! without a word; the collector keeps the bytes and adds this warning.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::collector::{Warning, WarningKind};
use crate::format::Entries;
use crate::format::naming::FileKind;
use crate::merge::{Family, FamilyKind};

/// Files listed per metric in a warning; more are counted.
const FILES_SHOWN: usize = 3;

/// The series names prometheus_client's registry reserves for a family.
fn reserved_names(f: &Family) -> Vec<String> {
    let suffixes: &[&str] = match f.kind {
        FamilyKind::Counter => &["_total", "_created"],
        FamilyKind::Histogram => &["_bucket", "_sum", "_count", "_created"],
        FamilyKind::Summary => &["_sum", "_count", "_created"],
        FamilyKind::Info => &["_info"],
        FamilyKind::Gauge | FamilyKind::StateSet => &[],
    };
    std::iter::once(f.name.clone())
        .chain(suffixes.iter().map(|s| format!("{}{s}", f.name)))
        .collect()
}

/// Pairs of families (indices) that reserve a common name, with that name.
fn clashes(families: &[Family]) -> Vec<(String, usize, usize)> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut found: Vec<(String, usize, usize)> = Vec::new();
    for (i, f) in families.iter().enumerate() {
        for n in reserved_names(f) {
            match owner.get(&n) {
                Some(&j) if j != i => {
                    if !found.iter().any(|(_, a, b)| (*a, *b) == (j, i)) {
                        found.push((n, j, i));
                    }
                }
                Some(_) => {}
                None => {
                    owner.insert(n, i);
                }
            }
        }
    }
    found
}

/// One of two metrics whose series names clash (see
/// [`WarningKind::NameClash`](super::collector::WarningKind::NameClash)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClashingMetric {
    /// Its type.
    pub kind: FamilyKind,
    /// Its name as stored in the files (counters without `_total`).
    pub name: String,
    /// The first files (in directory order) that hold it.
    pub files: Vec<String>,
    /// How many more files hold it.
    pub more_files: usize,
}

impl std::fmt::Display for ClashingMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} ({}",
            self.kind,
            self.name,
            self.files.join(", ")
        )?;
        if self.more_files > 0 {
            write!(f, " and {} more", self.more_files)?;
        }
        f.write_str(")")
    }
}

/// One warning per pair of families that reserve a common series name.
/// Cheap when there is none (the usual case): the files are only read
/// again to name them when a clash is found.
pub(crate) fn warnings(
    dir: &Path,
    dirfd: &File,
    names: &[(String, FileKind)],
    families: &[Family],
) -> Vec<Warning> {
    clashes(families)
        .into_iter()
        .map(|(series, a, b)| Warning {
            path: dir.to_path_buf(),
            kind: WarningKind::NameClash {
                series,
                metrics: Box::new([
                    clashing(dirfd, names, &families[a]),
                    clashing(dirfd, names, &families[b]),
                ]),
            },
        })
        .collect()
}

/// The family with the files of its type that hold entries of its metric.
fn clashing(dirfd: &File, names: &[(String, FileKind)], f: &Family) -> ClashingMetric {
    let mut files = Vec::new();
    let mut more_files = 0usize;
    for (name, kind) in names {
        if FamilyKind::of(*kind) != f.kind || !holds_metric(dirfd, name, *kind, &f.name) {
            continue;
        }
        if files.len() < FILES_SHOWN {
            files.push(name.clone());
        } else {
            more_files += 1;
        }
    }
    ClashingMetric {
        kind: f.kind,
        name: f.name.clone(),
        files,
        more_files,
    }
}

/// Whether the file `name` has an entry of metric `metric`; unreadable or
/// corrupt files (warned about by the merge already) count as not, and so
/// do files that would only be read in windows (holes, or no lease from the
/// read budget): this check is for naming files in a warning, and never
/// reads more than the budget allows.
fn holds_metric(dirfd: &File, name: &str, kind: FileKind, metric: &str) -> bool {
    let buf = super::budget::ImageBuf::new(&super::budget::GLOBAL);
    let Ok(Some(image)) = super::read::read_ahead_image(dirfd, name, kind, buf) else {
        return false;
    };
    let Ok(entries) = Entries::new(&image) else {
        return false;
    };
    entries
        .map_while(Result::ok)
        .any(|e| crate::format::key::decode_key_ref(e.key).is_ok_and(|k| k.metric == metric))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str, kind: FamilyKind) -> Family {
        Family {
            name: name.into(),
            help: String::new(),
            kind,
            gauge_mode: None,
            samples: Vec::new(),
        }
    }

    #[test]
    fn clashing_names_are_found_once_per_pair() {
        let fams = [
            family("dup", FamilyKind::Counter),
            family("dup_total", FamilyKind::Gauge),
            family("lat", FamilyKind::Histogram),
            family("lat_count", FamilyKind::Gauge),
            family("requests_in_progress", FamilyKind::Gauge),
            family("requests", FamilyKind::Counter),
        ];
        assert_eq!(
            clashes(&fams),
            [
                ("dup_total".to_string(), 0, 1),
                ("lat_count".to_string(), 2, 3)
            ]
        );
    }
}
