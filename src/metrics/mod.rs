//! The metric types (counter, gauge, histogram, summary, info, enum and their `*Vec`s), mirroring the `prometheus` crate's API.

mod counter;
mod gauge;
mod histogram;
mod info;
mod registry;
mod stateset;
mod summary;
mod timer;
pub mod timing;
mod vec;

pub use counter::{Counter, CounterVec};
pub use gauge::{Gauge, GaugeVec};
pub use histogram::{DEFAULT_BUCKETS, Histogram, HistogramTimer, HistogramVec};
pub use info::{Info, InfoVec};
pub use stateset::{Enum, EnumVec};
pub use summary::{Summary, SummaryVec};
pub use timer::HistogramVecTimer;
pub use vec::{MetricVec, VecChild};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::encoding::escaping::{in_label_set, is_legacy_metric_name};
use crate::error::{Error, Result};
use registry::{Kind, checked};

/// A validated description shared by every child of a metric.
#[derive(Debug, Clone)]
pub(crate) struct Desc {
    /// The metric name as stored in keys (counters without `_total`).
    pub(crate) name: String,
    pub(crate) help: String,
    /// Constant labels, sorted by name.
    pub(crate) const_labels: Vec<(String, String)>,
    /// Variable label names, in the order values are given.
    pub(crate) label_names: Vec<String>,
}

impl Desc {
    /// Validates `opts` for a metric that reserves `reserved` label names.
    pub(crate) fn new(opts: &prometheus::Opts, reserved: &[&str]) -> Result<Desc> {
        let name = opts.fq_name();
        validate_metric_name(&name)?;
        let mut const_labels: Vec<(String, String)> = opts
            .const_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        const_labels.sort();
        let label_names = opts.variable_labels.clone();
        let mut seen: Vec<&str> = Vec::new();
        for l in const_labels
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(label_names.iter().map(String::as_str))
        {
            validate_label_name(l)?;
            if reserved.contains(&l) {
                return Err(Error::invalid_name(
                    "label (reserved for this metric type)",
                    l,
                ));
            }
            if seen.contains(&l) {
                return Err(Error::invalid_argument(
                    crate::error::ArgumentKind::LabelConflict,
                    format!("duplicate label name {l:?}"),
                ));
            }
            seen.push(l);
        }
        Ok(Desc {
            name,
            help: opts.help.clone(),
            const_labels,
            label_names,
        })
    }

    /// Same description, with variable labels replaced by `names`.
    pub(crate) fn with_labels(
        opts: &prometheus::Opts,
        names: &[&str],
        reserved: &[&str],
    ) -> Result<Desc> {
        let mut opts = opts.clone();
        opts.variable_labels = names.iter().map(|s| s.to_string()).collect();
        Desc::new(&opts, reserved)
    }

    /// The label pairs of a child: constant labels plus `values`, checked
    /// for count.
    pub(crate) fn label_pairs<'a>(&'a self, values: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>> {
        if values.len() != self.label_names.len() {
            return Err(Error::label_count(self.label_names.len(), values.len()));
        }
        Ok(self
            .const_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                self.label_names
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().copied()),
            )
            .collect())
    }
}

/// Removes `suffix` from the stored name, as prometheus_client removes a
/// counter's `_total`, and refuses a name that nothing is left of: an empty
/// stored name makes prometheus_client's collector fail the whole scrape, and
/// ours skip the whole file.
pub(crate) fn strip_name_suffix(desc: &mut Desc, suffix: &'static str) -> Result<()> {
    if let Some(stripped) = desc.name.strip_suffix(suffix) {
        if stripped.is_empty() {
            return Err(Error::empty_without_suffix(desc.name.as_str(), suffix));
        }
        desc.name.truncate(stripped.len());
    }
    // What is left of a valid name is valid unless empty; checked anyway.
    validate_metric_name(&desc.name)
}

/// The environment variable that restricts names to the legacy character
/// sets, as in prometheus_client (`true`, `1` or `t`, any case).
pub(crate) const LEGACY_VALIDATION_ENV: &str = "PROMETHEUS_LEGACY_NAME_VALIDATION";

/// True when [`LEGACY_VALIDATION_ENV`] asks for legacy names; read once, as
/// prometheus_client reads it once at import.
fn legacy_validation() -> bool {
    static LEGACY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LEGACY.get_or_init(|| {
        std::env::var(LEGACY_VALIDATION_ENV)
            .is_ok_and(|v| matches!(v.to_lowercase().as_str(), "true" | "1" | "t"))
    })
}

/// Checks a metric name as prometheus_client 0.26 does: any non-empty
/// UTF-8 name (`http.requests`, `temp.°c`), or only
/// `[a-zA-Z_:][a-zA-Z0-9_:]*` under [`LEGACY_VALIDATION_ENV`].
pub(crate) fn validate_metric_name(name: &str) -> Result<()> {
    check_metric_name(name, legacy_validation())
}

fn check_metric_name(name: &str, legacy: bool) -> Result<()> {
    if name.is_empty() || (legacy && !is_legacy_metric_name(name)) {
        return Err(Error::invalid_name("metric", name));
    }
    Ok(())
}

/// Checks a label name as prometheus_client 0.26 does: any UTF-8 name not
/// reserved (starting with `__`; Python's `^__.*$`, where `.` stops at a
/// newline and `$` also matches before a final one), or only
/// `[a-zA-Z_][a-zA-Z0-9_]*` under [`LEGACY_VALIDATION_ENV`].
pub(crate) fn validate_label_name(name: &str) -> Result<()> {
    check_label_name(name, legacy_validation())
}

fn check_label_name(name: &str, legacy: bool) -> Result<()> {
    let reserved = name.strip_prefix("__").is_some_and(|rest| {
        let rest = rest.strip_suffix('\n').unwrap_or(rest);
        !rest.contains('\n')
    });
    if reserved || (legacy && !in_label_set(name)) {
        return Err(Error::invalid_name("label", name));
    }
    Ok(())
}

/// Reports an error on an infallible path (`inc`, `set`, `observe`) once per
/// metric child, on stderr. Such errors are rare: a fork child that cannot
/// create its file (disk full, directory gone).
#[cold]
#[inline(never)]
pub(crate) fn warn_once(flag: &AtomicBool, what: &str, err: &Error) {
    if !flag.swap(true, Ordering::Relaxed) {
        crate::warn::warn(format_args!(
            "{what}: {err} (further errors for this series are not shown)"
        ));
    }
}

/// Seconds since the Unix epoch, as stored in most-recent gauges.
pub(crate) fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taken from prometheus_client 0.26 (`Counter(name, ..., [label])`).
    #[test]
    fn names_as_prometheus_client_validates_them() {
        for ok in ["a", "_a", "a:b", "A_1", "1a", "a-b", "a b.c", "é", "😀"] {
            check_metric_name(ok, false).unwrap();
        }
        assert!(check_metric_name("", false).unwrap_err().is_invalid_name());
        for ok in [
            "a", "_a", "le", "", "1a", "a:b", "rou.te", "ü", "__\nb", "_\n_b",
        ] {
            check_label_name(ok, false).unwrap();
        }
        for bad in ["__x", "__", "__b\n"] {
            assert!(
                check_label_name(bad, false).unwrap_err().is_invalid_name(),
                "{bad:?}"
            );
        }
    }

    /// Under `PROMETHEUS_LEGACY_NAME_VALIDATION=true`.
    #[test]
    fn legacy_names() {
        for ok in ["a", "_a", "a:b", "A_1", "a\n"] {
            check_metric_name(ok, true).unwrap();
        }
        for bad in ["", "1a", "a-b", "a b", "é"] {
            assert!(check_metric_name(bad, true).unwrap_err().is_invalid_name());
        }
        for ok in ["a", "_a", "le"] {
            check_label_name(ok, true).unwrap();
        }
        for bad in ["", "1a", "a:b", "__x", "ü", "__\nb"] {
            assert!(check_label_name(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_empty_without_their_suffix() {
        struct Case {
            name: &'static str,
            namespace: &'static str,
            suffix: &'static str,
            want: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "_total",
                namespace: "",
                suffix: "_total",
                want: None,
            },
            Case {
                name: "_info",
                namespace: "",
                suffix: "_info",
                want: None,
            },
            Case {
                name: "a_total",
                namespace: "",
                suffix: "_total",
                want: Some("a"),
            },
            Case {
                name: "_total",
                namespace: "ns",
                suffix: "_total",
                want: Some("ns_"),
            },
            Case {
                name: "x_total_total",
                namespace: "",
                suffix: "_total",
                want: Some("x_total"),
            },
            Case {
                name: "total",
                namespace: "",
                suffix: "_total",
                want: Some("total"),
            },
            Case {
                name: "__total",
                namespace: "",
                suffix: "_total",
                want: Some("_"),
            },
        ];
        for c in cases {
            let opts = prometheus::Opts::new(c.name, "h").namespace(c.namespace);
            let mut desc = Desc::new(&opts, &[]).unwrap();
            match (strip_name_suffix(&mut desc, c.suffix), c.want) {
                (Ok(()), Some(want)) => assert_eq!(desc.name, want, "{}", c.name),
                (Err(e), None) => {
                    assert!(e.is_invalid_name(), "{}: {e}", c.name);
                    assert!(e.to_string().contains(c.suffix), "{e}");
                }
                (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
            }
        }
    }
}
