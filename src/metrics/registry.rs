//! Refuses a metric whose series names collide with a different metric created earlier in this process for the same directory, as prometheus_client's registry does.
//!
//! prometheus_client computes the names a metric "produces and clashes with"
//! from its family name and type: a counter `x` (given as `x` or `x_total`)
//! takes `x`, `x_total` and `x_created`; a histogram `x` takes `x`,
//! `x_bucket`, `x_sum`, `x_count` and `x_created`; a summary `x` takes `x`,
//! `x_sum`, `x_count` and `x_created`; an info `x` takes `x` and `x_info`;
//! gauges and enums take their name. A second metric that shares any of
//! these names is refused, unless it is the very same metric again (same
//! type, mode, help, labels, buckets or states): then it shares the first
//! one's series, which is harmless, and is accepted.
//!
//! Metrics are never unregistered. The table is per directory (canonical
//! path) and lives in this process; a forked child inherits it. It is only
//! touched under the writer's fork lock, so a fork never copies it locked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::naming::GaugeMode;
use crate::metrics::Desc;
use crate::write::writer::MetricsDir;

/// The type of a metric, with what else makes two metrics the same.
pub(crate) enum Kind<'a> {
    Counter,
    Gauge(GaugeMode),
    Histogram(&'a [f64]),
    Summary,
    Info,
    Enum(&'a [String]),
}

impl Kind<'_> {
    /// The suffixes prometheus_client adds to the family name.
    fn suffixes(&self) -> &'static [&'static str] {
        match self {
            Kind::Counter => &["_total", "_created"],
            Kind::Histogram(_) => &["_bucket", "_sum", "_count", "_created"],
            Kind::Summary => &["_sum", "_count", "_created"],
            Kind::Info => &["_info"],
            Kind::Gauge(_) | Kind::Enum(_) => &[],
        }
    }

    fn describe(&self) -> String {
        match self {
            Kind::Counter => "counter".to_string(),
            Kind::Gauge(mode) => format!("gauge ({})", mode.as_str()),
            Kind::Histogram(b) => format!("histogram (buckets {b:?})"),
            Kind::Summary => "summary".to_string(),
            Kind::Info => "info".to_string(),
            Kind::Enum(s) => format!("enum (states {s:?})"),
        }
    }
}

/// Everything that makes two metric definitions the same.
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    kind: String,
    name: String,
    help: String,
    const_labels: Vec<(String, String)>,
    label_names: Vec<String>,
}

type Table = HashMap<(PathBuf, String), Arc<Signature>>;

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

/// Registers the metric described by `desc` (its family name after suffix
/// handling) for `dir`, or fails with [`Error::is_duplicate`] if one of its
/// series names is taken by a different metric. Returns `desc`, so that
/// constructors can wrap their description in it.
pub(crate) fn checked(dir: &MetricsDir, kind: Kind<'_>, desc: Desc) -> Result<Desc> {
    let sig = Arc::new(Signature {
        kind: kind.describe(),
        name: desc.name.clone(),
        help: desc.help.clone(),
        const_labels: desc.const_labels.clone(),
        label_names: desc.label_names.clone(),
    });
    let names: Vec<String> = std::iter::once(desc.name.clone())
        .chain(kind.suffixes().iter().map(|s| format!("{}{s}", desc.name)))
        .collect();
    let path = std::fs::canonicalize(dir.path()).unwrap_or_else(|_| dir.path().to_path_buf());
    crate::write::writer::with_fork_lock(|| register(path, &names, sig))?;
    Ok(desc)
}

fn register(dir: PathBuf, names: &[String], sig: Arc<Signature>) -> Result<()> {
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let table = guard.get_or_insert_with(HashMap::new);
    let mut clashes = Vec::new();
    let mut existing = None;
    for n in names {
        if let Some(other) = table.get(&(dir.clone(), n.clone()))
            && **other != *sig
        {
            clashes.push(n.clone());
            existing.get_or_insert_with(|| Arc::clone(other));
        }
    }
    if let Some(other) = existing {
        return Err(Error::duplicate(
            &sig.name,
            clashes,
            format!("{} {:?}", other.kind, other.name),
        ));
    }
    for n in names {
        table
            .entry((dir.clone(), n.clone()))
            .or_insert_with(|| Arc::clone(&sig));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prometheus::{HistogramOpts, Opts};

    use crate::{
        Counter, CounterVec, Enum, Gauge, GaugeMode, Histogram, HistogramVec, Info, MetricsDir,
        Summary,
    };

    type Make = fn(&MetricsDir) -> crate::Result<()>;

    fn counter(
        name: &'static str,
        help: &'static str,
    ) -> impl Fn(&MetricsDir) -> crate::Result<()> {
        move |d| Counter::new_in(d, name, help).map(drop)
    }

    /// (what, first metric, second metric, is the second refused?)
    struct Case {
        name: &'static str,
        first: Make,
        second: Make,
        refused: bool,
    }

    #[test]
    fn collisions_as_prometheus_client_computes_them() {
        let cases = [
            Case {
                name: "same counter again",
                first: |d| counter("a_total", "A.")(d),
                second: |d| counter("a_total", "A.")(d),
                refused: false,
            },
            Case {
                name: "counter with and without _total is the same family",
                first: |d| counter("a", "A.")(d),
                second: |d| counter("a_total", "A.")(d),
                refused: false,
            },
            Case {
                name: "other help",
                first: |d| counter("a_total", "A.")(d),
                second: |d| counter("a_total", "Other.")(d),
                refused: true,
            },
            Case {
                name: "counter vecs with other labels",
                first: |d| CounterVec::new_in(d, Opts::new("dup_total", "D."), &["x"]).map(drop),
                second: |d| CounterVec::new_in(d, Opts::new("dup_total", "D."), &["y"]).map(drop),
                refused: true,
            },
            Case {
                name: "other constant labels",
                first: |d| {
                    Counter::with_opts_in(d, Opts::new("c", "C.").const_label("k", "1")).map(drop)
                },
                second: |d| {
                    Counter::with_opts_in(d, Opts::new("c", "C.").const_label("k", "2")).map(drop)
                },
                refused: true,
            },
            Case {
                name: "gauge named like a counter's _total",
                first: |d| counter("dup", "D.")(d),
                second: |d| Gauge::new_in(d, "dup_total", "D.", GaugeMode::LiveSum).map(drop),
                refused: true,
            },
            Case {
                name: "gauge in another mode",
                first: |d| Gauge::new_in(d, "g", "G.", GaugeMode::LiveSum).map(drop),
                second: |d| Gauge::new_in(d, "g", "G.", GaugeMode::Max).map(drop),
                refused: true,
            },
            Case {
                name: "gauge named like a histogram's _count",
                first: |d| Histogram::with_opts_in(d, HistogramOpts::new("lat", "L.")).map(drop),
                second: |d| Gauge::new_in(d, "lat_count", "L.", GaugeMode::All).map(drop),
                refused: true,
            },
            Case {
                name: "histogram with other buckets",
                first: |d| {
                    HistogramVec::new_in(
                        d,
                        HistogramOpts::new("h", "H.").buckets(vec![1.0, 2.0]),
                        &["p"],
                    )
                    .map(drop)
                },
                second: |d| {
                    HistogramVec::new_in(d, HistogramOpts::new("h", "H."), &["p"]).map(drop)
                },
                refused: true,
            },
            Case {
                name: "counter named like a summary's _sum",
                first: |d| Summary::new_in(d, "s", "S.").map(drop),
                second: |d| counter("s_sum", "S.")(d),
                refused: true,
            },
            Case {
                name: "gauge named like an info's _info",
                first: |d| Info::new_in(d, "build", "B.").map(drop),
                second: |d| Gauge::new_in(d, "build_info", "B.", GaugeMode::All).map(drop),
                refused: true,
            },
            Case {
                name: "enum with other states",
                first: |d| Enum::new_in(d, "mode", "M.", &["a", "b"]).map(drop),
                second: |d| Enum::new_in(d, "mode", "M.", &["a", "c"]).map(drop),
                refused: true,
            },
            Case {
                name: "unrelated names",
                first: |d| counter("requests", "R.")(d),
                second: |d| {
                    Gauge::new_in(d, "requests_in_progress", "R.", GaugeMode::LiveSum).map(drop)
                },
                refused: false,
            },
        ];
        for case in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = MetricsDir::open(tmp.path()).unwrap();
            (case.first)(&dir).unwrap();
            match (case.second)(&dir) {
                Ok(()) => assert!(!case.refused, "{}: accepted", case.name),
                Err(e) => {
                    assert!(case.refused, "{}: {e}", case.name);
                    assert!(e.is_duplicate(), "{}: {e}", case.name);
                }
            }
            // The same second metric in another directory is always fine.
            let other = tempfile::tempdir().unwrap();
            (case.second)(&MetricsDir::open(other.path()).unwrap()).unwrap();
        }
    }

    #[test]
    fn the_error_names_the_colliding_series() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        Histogram::with_opts_in(&dir, HistogramOpts::new("lat", "L.")).unwrap();
        let err = Summary::new_in(&dir, "lat", "L.").unwrap_err();
        assert_eq!(
            err.duplicate_names(),
            ["lat", "lat_sum", "lat_count", "lat_created"]
        );
        let msg = err.to_string();
        assert!(msg.contains("histogram"), "{msg}");
        assert!(msg.contains("\"lat\""), "{msg}");
    }
}
