//! The library's errors as Python exceptions.
//!
//! * An I/O error on a path, or a full disk: `OSError(errno, message,
//!   path)`, which Python turns into the matching subclass
//!   (`FileNotFoundError`, `PermissionError`, ...).
//! * A missing or unusable directory, an unset variable, a bad argument or
//!   name: `ValueError`, as prometheus_client raises for a bad directory.
//!
//! * An `Accept` header prometheus_client's `choose_encoder` fails on (a
//!   version that is not a number): `TypeError`, as it raises.
//!
//! The message is the library's, which names the path or variable.

use prometheus_multiproc::Error;
use pyo3::PyErr;
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};

/// The Python exception for `err`.
pub fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    if err.is_negotiation() {
        return PyTypeError::new_err(message);
    }
    let errno = match err.io_error().and_then(|e| e.raw_os_error()) {
        Some(n) => Some(n),
        None if err.is_storage_full() => Some(libc::ENOSPC),
        None => None,
    };
    match (errno, err.path()) {
        (Some(errno), Some(path)) => {
            PyOSError::new_err((errno, message, path.to_string_lossy().into_owned()))
        }
        (Some(errno), None) => PyOSError::new_err((errno, message)),
        (None, _) => PyValueError::new_err(message),
    }
}
