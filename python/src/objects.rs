//! Merged families as prometheus_client objects: `Metric(name, help, type)` with `Sample(name, labels, value)` samples, as prometheus_client's `MultiProcessCollector` builds them.
//!
//! Equal to Python's (`Metric.__eq__` compares name, help, type, unit and
//! the sample list), with the label dicts filled in Python's insertion
//! order too (sorted by name; a bucket's `le` and an `all`/`liveall`
//! gauge's `pid` last), and gauges carrying `_multiprocess_mode`.
//!
//! Speed: every distinct string (names, label names and values, which the
//! merge shares as `Arc<str>`) becomes one Python `str`, looked up by its
//! address; samples are made with `tuple.__new__(Sample, ...)`, the C-level
//! constructor of the named tuple, rather than through its Python
//! `__new__`.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_multiproc::{Family, FamilyKind, GaugeMode, Sample};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple};

/// The `Metric` objects for `families`, in their order.
pub fn metrics<'py>(py: Python<'py>, families: &[Family]) -> PyResult<Bound<'py, PyList>> {
    let mut builder = Builder::new(py)?;
    let list = PyList::empty(py);
    for family in families {
        list.append(builder.metric(family)?)?;
    }
    Ok(list)
}

/// The classes and caches used while building one scrape's objects.
struct Builder<'py> {
    py: Python<'py>,
    metric_class: Bound<'py, PyAny>,
    sample_class: Bound<'py, PyAny>,
    /// `tuple.__new__`.
    tuple_new: Bound<'py, PyAny>,
    /// `Sample`'s fields after `value` (timestamp, exemplar, ...): `None`.
    extra_fields: usize,
    /// Python strings by the address of the merge's shared string.
    strings: HashMap<*const u8, Bound<'py, PyString>>,
}

impl<'py> Builder<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let metric_class = py
            .import("prometheus_client.metrics_core")?
            .getattr("Metric")?;
        let sample_class = py.import("prometheus_client.samples")?.getattr("Sample")?;
        let fields = sample_class.getattr("_fields")?.len()?;
        let tuple_new = py.get_type::<PyTuple>().getattr("__new__")?;
        Ok(Builder {
            py,
            metric_class,
            sample_class,
            tuple_new,
            extra_fields: fields.saturating_sub(3),
            strings: HashMap::new(),
        })
    }

    fn metric(&mut self, family: &Family) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let kind = family.kind.as_str();
        let metric = self
            .metric_class
            .call1((family.name.as_str(), family.help.as_str(), kind))?;
        if let Some(mode) = family.gauge_mode {
            metric.setattr(intern!(py, "_multiprocess_mode"), mode.as_str())?;
        }
        let last = last_label(family);
        let samples = family
            .samples
            .iter()
            .map(|s| self.sample(s, last))
            .collect::<PyResult<Vec<_>>>()?;
        metric.setattr(intern!(py, "samples"), PyList::new(py, samples)?)?;
        Ok(metric)
    }

    /// `Sample(name, labels, value)`, the label `last` (if the sample has
    /// it) inserted last.
    fn sample(&mut self, s: &Sample, last: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let labels = PyDict::new(py);
        let mut deferred = None;
        for (name, value) in &s.labels {
            if Some(&**name) == last {
                deferred = Some((name, value));
                continue;
            }
            labels.set_item(self.string(name), self.string(value))?;
        }
        if let Some((name, value)) = deferred {
            labels.set_item(self.string(name), self.string(value))?;
        }
        let mut items: Vec<Bound<'py, PyAny>> = Vec::with_capacity(3 + self.extra_fields);
        items.push(self.string(&s.name).into_any());
        items.push(labels.into_any());
        items.push(PyFloat::new(py, s.value).into_any());
        items.extend(std::iter::repeat_n(
            py.None().into_bound(py),
            self.extra_fields,
        ));
        self.tuple_new
            .call1((&self.sample_class, PyTuple::new(py, items)?))
    }

    /// The Python string for a string of the merge, made once per scrape.
    fn string(&mut self, s: &Arc<str>) -> Bound<'py, PyString> {
        let py = self.py;
        self.strings
            .entry(Arc::as_ptr(s).cast::<u8>())
            .or_insert_with(|| PyString::new(py, s))
            .clone()
    }
}

/// The label prometheus_client appends after the sorted ones: `le` in
/// histograms, `pid` in gauges that keep one sample per process.
fn last_label(family: &Family) -> Option<&'static str> {
    match (family.kind, family.gauge_mode) {
        (FamilyKind::Histogram, _) => Some("le"),
        (FamilyKind::Gauge, Some(GaugeMode::All | GaugeMode::LiveAll)) => Some("pid"),
        _ => None,
    }
}
