//! `Value`: one prometheus_client value (a counter's total, a gauge, a histogram bucket) in this process's file, written through the library's writer (see `prometheus_multiproc::RawValue`).
//!
//! The Python layer (`prometheus_multiproc.values`) makes the key and the
//! file prefix exactly as prometheus_client's `MultiProcessValue` does, and
//! binds `inc`, `set` and `get` straight to these methods.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use prometheus_multiproc::format::{FileKind, parse_file_name};
use prometheus_multiproc::{MetricsDir, RawValue};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;

/// One `MetricsDir` per path: all values of a directory share its open
/// (and locked) files, as one process must.
static DIRS: Mutex<Option<HashMap<PathBuf, MetricsDir>>> = Mutex::new(None);

fn metrics_dir(path: PathBuf) -> prometheus_multiproc::Result<MetricsDir> {
    let mut dirs = DIRS.lock().unwrap_or_else(PoisonError::into_inner);
    let dirs = dirs.get_or_insert_with(HashMap::new);
    if let Some(dir) = dirs.get(&path) {
        return Ok(dir.clone());
    }
    let dir = MetricsDir::open(&path)?;
    dirs.insert(path, dir.clone());
    Ok(dir)
}

/// The file kind of a prometheus_client file prefix (`counter`,
/// `gauge_livesum`, ...).
fn kind_of(prefix: &str) -> PyResult<FileKind> {
    parse_file_name(&format!("{prefix}_0.db"))
        .map(|(kind, _)| kind)
        .ok_or_else(|| PyValueError::new_err(format!("unknown metrics file prefix {prefix:?}")))
}

/// A value in this process's file `{prefix}_{id}.db` of directory `path`,
/// under `key` (prometheus_client's `mmap_key`).
#[pyclass(frozen, module = "prometheus_multiproc._native")]
pub struct Value {
    raw: RawValue,
}

#[pymethods]
impl Value {
    #[new]
    fn new(py: Python<'_>, path: PathBuf, prefix: &str, key: String) -> PyResult<Self> {
        let kind = kind_of(prefix)?;
        let raw = py
            .detach(|| RawValue::new_in(&metrics_dir(path)?, kind, key))
            .map_err(errors::to_py)?;
        Ok(Value { raw })
    }

    /// Adds `amount`; the timestamp becomes 0.
    fn inc(&self, amount: f64) -> PyResult<()> {
        self.raw.inc(amount).map_err(errors::to_py)
    }

    /// Sets the value, and the timestamp (`None`: 0).
    #[pyo3(signature = (value, timestamp=None))]
    fn set(&self, value: f64, timestamp: Option<f64>) -> PyResult<()> {
        self.raw
            .set(value, timestamp.unwrap_or(0.0))
            .map_err(errors::to_py)
    }

    /// This process's value.
    fn get(&self) -> PyResult<f64> {
        self.raw.get().map_err(errors::to_py)
    }
}

/// Names this process's files by `id` instead of its pid from now on (see
/// `prometheus_multiproc::set_worker_id`).
#[pyfunction]
pub fn set_worker_id(id: &str) -> PyResult<()> {
    prometheus_multiproc::set_worker_id(id).map_err(errors::to_py)
}
