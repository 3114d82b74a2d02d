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
                return Err(Error::invalid_argument(format!(
                    "duplicate label name {l:?}"
                )));
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

/// Checks a metric name against `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn validate_metric_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_name("metric", name))
    }
}

/// Checks a label name against `[a-zA-Z_][a-zA-Z0-9_]*`, not starting `__`.
pub(crate) fn validate_label_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    } && !name.starts_with("__");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_name("label", name))
    }
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

    #[test]
    fn names() {
        for ok in ["a", "_a", "a:b", "A_1"] {
            validate_metric_name(ok).unwrap();
        }
        for bad in ["", "1a", "a-b", "a b", "é"] {
            assert!(validate_metric_name(bad).unwrap_err().is_invalid_name());
        }
        for ok in ["a", "_a", "le"] {
            validate_label_name(ok).unwrap();
        }
        for bad in ["", "1a", "a:b", "__x"] {
            assert!(validate_label_name(bad).is_err(), "{bad}");
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
