//! A `metrics` facade recorder (feature `metrics`) backed by this crate's files, so that `counter!`, `gauge!` and `histogram!` from any crate land in the merged scrape.
//!
//! Install one [`Recorder`] per process with `metrics::set_global_recorder`
//! (in each worker after `fork`, or once in the supervisor before forking:
//! the handles move to each worker's own files on their first write, as all
//! metrics of this crate do). Then any code that emits through the facade
//! (your own, or libraries such as axum-prometheus) writes multiprocess
//! files that `MultiProcessCollector` and prometheus_client's collector both
//! merge.
//!
//! How facade metrics become Prometheus metrics (as
//! metrics-exporter-prometheus does it):
//!
//! * names: characters outside `[a-zA-Z0-9_:]` become `_` (`http.requests`
//!   → `http_requests`), and a leading digit gets a `_` before it; label
//!   names likewise within `[a-zA-Z0-9_]`. Labels are sorted by name.
//! * counters are Prometheus counters (`_total` is added on exposition,
//!   as for [`Counter`](crate::Counter)); gauges are gauges in
//!   [`GaugeMode::LiveSum`] unless configured otherwise; histograms use
//!   [`DEFAULT_BUCKETS`](crate::DEFAULT_BUCKETS) unless configured
//!   otherwise. Configuration applies per name prefix, the longest
//!   matching prefix winning (an exact name is a prefix of itself).
//! * descriptions (`describe_counter!`, ...) are the help text. A help text
//!   is written with each series when it is first used, so describe a
//!   metric before its first use.
//! * one metric name has one set of label names: a series with other label
//!   names (or a name used as two types) is refused like any duplicate of
//!   this crate ([`Error::is_duplicate`](crate::Error::is_duplicate)); it
//!   is reported once on stderr and its updates are dropped.
//!
//! ```
//! use prometheus_multiproc::integrations::facade::Recorder;
//! use prometheus_multiproc::{GaugeMode, MetricsDir, MultiProcessCollector};
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let recorder = Recorder::builder(&MetricsDir::open(tmp.path()).unwrap())
//!     .gauge_mode("queue_", GaugeMode::Max)
//!     .buckets("http_", vec![0.01, 0.1, 1.0])
//!     .build();
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::describe_counter!("jobs_total", "Jobs done.");
//!     metrics::counter!("jobs_total", "kind" => "email").increment(3);
//!     metrics::gauge!("queue_depth").set(7.0);
//!     metrics::histogram!("http.latency").record(0.05);
//! });
//! let mut text = Vec::new();
//! MultiProcessCollector::new(tmp.path()).unwrap().encode_text(&mut text).unwrap();
//! let text = String::from_utf8(text).unwrap();
//! assert!(text.contains("# HELP jobs_total Jobs done.\n"));
//! assert!(text.contains("jobs_total{kind=\"email\"} 3.0\n"));
//! assert!(text.contains("# TYPE queue_depth gauge\n"));
//! assert!(text.contains("http_latency_bucket{le=\"0.1\"} 1.0\n"));
//! ```

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ::metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};

use crate::error::Result;
use crate::format::naming::GaugeMode;
use crate::metrics::{CounterVec, GaugeVec, HistogramVec};
use crate::write::writer::MetricsDir;

/// A `metrics::Recorder` writing this crate's multiprocess files; see the
/// [module documentation](self).
pub struct Recorder {
    dir: MetricsDir,
    gauge_modes: Vec<(String, GaugeMode)>,
    buckets: Vec<(String, Vec<f64>)>,
    state: Mutex<State>,
}

/// Help texts and the families created so far, by sanitized name.
#[derive(Default)]
struct State {
    help: HashMap<String, String>,
    families: HashMap<String, Family>,
}

/// One family: its label names (sorted) and its metric.
struct Family {
    labels: Vec<String>,
    metric: FamilyMetric,
}

enum FamilyMetric {
    Counter(CounterVec),
    Gauge(GaugeVec),
    Histogram(HistogramVec),
}

/// Configures a [`Recorder`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = prometheus_multiproc::MetricsDir::open(tmp.path()).unwrap();
/// use prometheus_multiproc::{GaugeMode, integrations::facade::Recorder};
/// let recorder = Recorder::builder(&dir).gauge_mode("pool_", GaugeMode::Max).build();
/// ```
pub struct RecorderBuilder {
    dir: MetricsDir,
    gauge_modes: Vec<(String, GaugeMode)>,
    buckets: Vec<(String, Vec<f64>)>,
}

impl Recorder {
    /// A recorder with the defaults (live-sum gauges, default buckets).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = prometheus_multiproc::MetricsDir::open(tmp.path()).unwrap();
    /// let recorder = prometheus_multiproc::integrations::facade::Recorder::new(&dir);
    /// ```
    pub fn new(dir: &MetricsDir) -> Recorder {
        Recorder::builder(dir).build()
    }

    /// A [`RecorderBuilder`] for `dir`.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = prometheus_multiproc::MetricsDir::open(tmp.path()).unwrap();
    /// let recorder = prometheus_multiproc::integrations::facade::Recorder::builder(&dir).build();
    /// ```
    pub fn builder(dir: &MetricsDir) -> RecorderBuilder {
        RecorderBuilder {
            dir: dir.clone(),
            gauge_modes: Vec::new(),
            buckets: Vec::new(),
        }
    }
}

impl RecorderBuilder {
    /// Gauges whose (sanitized) name starts with `prefix` combine across
    /// processes in `mode` (default: [`GaugeMode::LiveSum`]).
    pub fn gauge_mode(mut self, prefix: &str, mode: GaugeMode) -> RecorderBuilder {
        self.gauge_modes.push((prefix.to_string(), mode));
        self
    }

    /// Histograms whose (sanitized) name starts with `prefix` use these
    /// bucket bounds (default: [`DEFAULT_BUCKETS`](crate::DEFAULT_BUCKETS)).
    pub fn buckets(mut self, prefix: &str, bounds: Vec<f64>) -> RecorderBuilder {
        self.buckets.push((prefix.to_string(), bounds));
        self
    }

    /// The recorder.
    pub fn build(self) -> Recorder {
        Recorder {
            dir: self.dir,
            gauge_modes: self.gauge_modes,
            buckets: self.buckets,
            state: Mutex::new(State::default()),
        }
    }
}

/// The value configured for the longest prefix of `name`, if any.
fn by_prefix<'a, T>(rules: &'a [(String, T)], name: &str) -> Option<&'a T> {
    rules
        .iter()
        .filter(|(p, _)| name.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, v)| v)
}

/// `name` with characters outside `[a-zA-Z0-9_]` (and `:` where
/// `colons`) replaced by `_`, and `_` before a leading digit.
fn sanitize(name: &str, colons: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
            c
        } else {
            '_'
        }
    }));
    out
}

/// Which kind of handle is being registered.
#[derive(Clone, Copy)]
enum Want {
    Counter,
    Gauge,
    Histogram,
}

impl Recorder {
    fn describe(&self, key: &KeyName, description: &SharedString) {
        let name = sanitize(std::borrow::Borrow::<str>::borrow(key), true);
        lock(&self.state).help.insert(name, description.to_string());
    }

    /// The family for `name` with label names `labels`, created on first
    /// use with the help described for it.
    fn family(
        &self,
        st: &mut State,
        want: Want,
        name: &str,
        labels: &[&str],
    ) -> Result<FamilyMetric> {
        if let Some(f) = st.families.get(name)
            && f.labels == labels
            && let Some(m) = f.metric.same_kind(want)
        {
            return Ok(m);
        }
        let help = st.help.get(name).cloned().unwrap_or_default();
        let opts = prometheus::Opts::new(name, help);
        let metric = match want {
            Want::Counter => FamilyMetric::Counter(CounterVec::new_in(&self.dir, opts, labels)?),
            Want::Gauge => {
                let mode = by_prefix(&self.gauge_modes, name).copied();
                let mode = mode.unwrap_or(GaugeMode::LiveSum);
                FamilyMetric::Gauge(GaugeVec::new_in(&self.dir, opts, labels, mode)?)
            }
            Want::Histogram => {
                let mut hopts = prometheus::HistogramOpts::from(opts);
                if let Some(b) = by_prefix(&self.buckets, name) {
                    hopts = hopts.buckets(b.clone());
                }
                FamilyMetric::Histogram(HistogramVec::new_in(&self.dir, hopts, labels)?)
            }
        };
        let same = metric.same_kind(want);
        st.families.entry(name.to_string()).or_insert(Family {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            metric,
        });
        // UNWRAP: `metric` was built for `want` just above.
        Ok(same.expect("metric of the kind asked for"))
    }

    /// The child of `key`'s family for its label values, or why not.
    fn child(&self, want: Want, key: &Key) -> Result<(FamilyMetric, Vec<String>)> {
        let name = sanitize(key.name(), true);
        let mut pairs: Vec<(String, String)> = key
            .labels()
            .map(|l| (sanitize(l.key(), false), l.value().to_string()))
            .collect();
        pairs.sort();
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let mut st = lock(&self.state);
        let family = self.family(&mut st, want, &name, &names)?;
        Ok((family, pairs.into_iter().map(|(_, v)| v).collect()))
    }

    fn refused(&self, key: &Key, err: &crate::Error) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        crate::metrics::warn_once(&WARNED, &format!("metrics facade: {}", key.name()), err);
    }
}

impl FamilyMetric {
    fn same_kind(&self, want: Want) -> Option<FamilyMetric> {
        match (self, want) {
            (FamilyMetric::Counter(c), Want::Counter) => Some(FamilyMetric::Counter(c.clone())),
            (FamilyMetric::Gauge(g), Want::Gauge) => Some(FamilyMetric::Gauge(g.clone())),
            (FamilyMetric::Histogram(h), Want::Histogram) => {
                Some(FamilyMetric::Histogram(h.clone()))
            }
            _ => None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn values(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

struct CounterHandle(crate::Counter);
struct GaugeHandle(crate::Gauge);
struct HistogramHandle(crate::Histogram);

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        // CAST: counts above 2^53 round, as in every f64 counter.
        self.0.inc_by(value as f64);
    }
    fn absolute(&self, value: u64) {
        // CAST: as above.
        let (target, now) = (value as f64, self.0.get());
        if target > now {
            self.0.inc_by(target - now);
        }
    }
}

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }
    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

impl ::metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }
    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }
    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> ::metrics::Counter {
        let made = self.child(Want::Counter, key).and_then(|(f, v)| match f {
            FamilyMetric::Counter(c) => c.get_metric_with_label_values(&values(&v)),
            _ => unreachable!("child returns the kind asked for"),
        });
        match made {
            Ok(c) => ::metrics::Counter::from_arc(Arc::new(CounterHandle(c))),
            Err(e) => {
                self.refused(key, &e);
                ::metrics::Counter::noop()
            }
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> ::metrics::Gauge {
        let made = self.child(Want::Gauge, key).and_then(|(f, v)| match f {
            FamilyMetric::Gauge(g) => g.get_metric_with_label_values(&values(&v)),
            _ => unreachable!("child returns the kind asked for"),
        });
        match made {
            Ok(g) => ::metrics::Gauge::from_arc(Arc::new(GaugeHandle(g))),
            Err(e) => {
                self.refused(key, &e);
                ::metrics::Gauge::noop()
            }
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> ::metrics::Histogram {
        let made = self.child(Want::Histogram, key).and_then(|(f, v)| match f {
            FamilyMetric::Histogram(h) => h.get_metric_with_label_values(&values(&v)),
            _ => unreachable!("child returns the kind asked for"),
        });
        match made {
            Ok(h) => ::metrics::Histogram::from_arc(Arc::new(HistogramHandle(h))),
            Err(e) => {
                self.refused(key, &e);
                ::metrics::Histogram::noop()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_as_the_prometheus_exporter_does() {
        assert_eq!(sanitize("http.requests-total", true), "http_requests_total");
        assert_eq!(sanitize("9lives", true), "_9lives");
        assert_eq!(sanitize("a:b", true), "a:b");
        assert_eq!(sanitize("a:b", false), "a_b");
        assert_eq!(sanitize("", true), "_");
    }

    #[test]
    fn the_longest_prefix_wins() {
        let rules = vec![
            ("a".to_string(), 1),
            ("ab".to_string(), 2),
            ("x".to_string(), 3),
        ];
        assert_eq!(by_prefix(&rules, "abc"), Some(&2));
        assert_eq!(by_prefix(&rules, "a"), Some(&1));
        assert_eq!(by_prefix(&rules, "b"), None);
    }

    #[test]
    fn other_label_names_for_one_name_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let r = Recorder::new(&MetricsDir::open(tmp.path()).unwrap());
        let a = Key::from_parts("jobs", vec![::metrics::Label::new("kind", "a")]);
        let b = Key::from_parts("jobs", vec![::metrics::Label::new("queue", "q")]);
        assert!(r.child(Want::Counter, &a).is_ok());
        assert!(r.child(Want::Counter, &a).is_ok());
        assert!(r.child(Want::Counter, &b).err().unwrap().is_duplicate());
        assert!(r.child(Want::Gauge, &a).err().unwrap().is_duplicate());
    }
}
