//! `prometheus_multiproc._native`: the Rust collector, exposition and `mark_process_dead` for Python, behind the pure-Python layer in `prometheus_multiproc/`.
//!
//! Every function releases the GIL while it reads and merges the directory,
//! and turns the library's errors into Python exceptions (module `errors`).
//! Warnings about single files are returned as strings, for the Python
//! layer to pass to `warnings.warn`. A panic (none is expected: the library
//! does not panic on bad input) reaches Python as pyo3's `PanicException`,
//! never as an abort.

mod errors;
mod objects;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prometheus_multiproc::MultiProcessCollector;
use prometheus_multiproc::integrations;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Directories whose collectors are kept, at most.
const KEPT_DIRECTORIES: usize = 8;

/// An incremental collector for `path`, kept for the process's life (for
/// the last [`KEPT_DIRECTORIES`] directories): an app's `/metrics` scrapes
/// one directory again and again, and a kept collector reads only the
/// values (`MultiProcessCollector::with_incremental`). If another thread
/// holds the list (or held it when this process was forked from one that
/// did), a new collector does this scrape.
fn kept_collector(path: &Path) -> prometheus_multiproc::Result<MultiProcessCollector> {
    static KEPT: Mutex<Vec<(PathBuf, MultiProcessCollector)>> = Mutex::new(Vec::new());
    let Ok(mut kept) = KEPT.try_lock() else {
        return MultiProcessCollector::new(path);
    };
    if let Some((_, c)) = kept.iter().find(|(p, _)| p == path) {
        return Ok(c.clone());
    }
    let c = MultiProcessCollector::new(path)?.with_incremental(true);
    if kept.len() >= KEPT_DIRECTORIES {
        kept.remove(0);
    }
    kept.push((path.to_path_buf(), c.clone()));
    Ok(c)
}

/// Collects the directory `path` and returns `(metrics, warnings)`:
/// `prometheus_client.metrics_core.Metric` objects equal to those
/// prometheus_client's `MultiProcessCollector.collect()` returns, and one
/// string per file that was skipped.
#[pyfunction]
fn collect<'py>(py: Python<'py>, path: PathBuf) -> PyResult<(Bound<'py, PyList>, Vec<String>)> {
    let scrape = py
        .detach(|| kept_collector(&path)?.collect_families())
        .map_err(errors::to_py)?;
    let metrics = objects::metrics(py, &scrape.families)?;
    let warnings = scrape.warnings.iter().map(|w| w.to_string()).collect();
    Ok((metrics, warnings))
}

/// Collects the directory `path` and encodes it for the `Accept` header
/// `accept` (`None`: no header), cut to the `name[]` fields of the URL
/// query string `query` if any: the format, name escaping and content type
/// chosen as prometheus_client 0.26's `choose_encoder` chooses them
/// (`prometheus_multiproc::integrations::render_request`). Returns
/// `(body, content_type, warnings)`. A header prometheus_client fails on
/// (a version such as `1.x`) raises `TypeError`, as `choose_encoder` does.
#[pyfunction]
#[pyo3(signature = (path, accept=None, query=None))]
fn render<'py>(
    py: Python<'py>,
    path: PathBuf,
    accept: Option<String>,
    query: Option<String>,
) -> PyResult<(Bound<'py, PyBytes>, String, Vec<String>)> {
    let rendered = py
        .detach(|| {
            let collector = kept_collector(&path)?;
            // The one place where the format is chosen and the body encoded.
            integrations::render_request(&collector, accept.as_deref(), query.as_deref())
        })
        .map_err(errors::to_py)?;
    let warnings = rendered.warnings.iter().map(|w| w.to_string()).collect();
    Ok((
        PyBytes::new(py, &rendered.body),
        rendered.content_type,
        warnings,
    ))
}

/// Removes the live-gauge files (`gauge_live*_{id}.db`) of the process or
/// worker `id` from the directory `path`.
#[pyfunction]
fn mark_process_dead(py: Python<'_>, id: String, path: PathBuf) -> PyResult<()> {
    py.detach(|| prometheus_multiproc::mark_worker_dead_in(&path, &id))
        .map_err(errors::to_py)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(collect, m)?)?;
    m.add_function(wrap_pyfunction!(render, m)?)?;
    m.add_function(wrap_pyfunction!(mark_process_dead, m)?)?;
    m.add_function(wrap_pyfunction!(value::set_worker_id, m)?)?;
    m.add_class::<value::Value>()?;
    Ok(())
}
