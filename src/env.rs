//! Every `PROMETHEUS_MULTIPROC_*` environment variable: its name, its default, and how it is read.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::format::naming::check_dir;

/// The environment variable naming the shared metrics directory.
pub const ENV_VAR: &str = "PROMETHEUS_MULTIPROC_DIR";
/// The deprecated lower-case spelling, honoured with a warning.
pub const ENV_VAR_DEPRECATED: &str = "prometheus_multiproc_dir";
/// The number of threads a scrape may use to read and merge the files of
/// directories of 32 files or more (default: the available parallelism, at
/// most 16); `1` keeps a scrape on the calling thread. Results do not
/// depend on it.
///
/// ```
/// use prometheus_multiproc::env::COLLECT_THREADS_ENV;
/// assert_eq!(COLLECT_THREADS_ENV, "PROMETHEUS_MULTIPROC_COLLECT_THREADS");
/// ```
pub const COLLECT_THREADS_ENV: &str = "PROMETHEUS_MULTIPROC_COLLECT_THREADS";

/// Threads a scrape may use: [`COLLECT_THREADS_ENV`] if set (an unparsable
/// value means 1), else the available parallelism; between 1 and 16.
pub(crate) fn collect_threads() -> usize {
    let n = match std::env::var(COLLECT_THREADS_ENV) {
        Ok(v) => v.trim().parse::<usize>().unwrap_or(1),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    n.clamp(1, 16)
}

/// Test hook of compaction ([`compact_dead_in`](crate::compact_dead_in)):
/// set to a step name (`temp-written`, `journal-written`, `renamed`,
/// `unlinked-one`, `unlinked`, `done`), it makes the compacting process abort
/// right after that step, so that tests can check the directory a crash
/// leaves. Never set it in production.
///
/// ```
/// use prometheus_multiproc::env::COMPACT_CRASH_AT_ENV;
/// assert_eq!(COMPACT_CRASH_AT_ENV, "PROMETHEUS_MULTIPROC_COMPACT_CRASH_AT");
/// ```
pub const COMPACT_CRASH_AT_ENV: &str = "PROMETHEUS_MULTIPROC_COMPACT_CRASH_AT";

/// Environment variable with the octal permission bits for new files
/// (default `600`: owner only).
pub const FILE_MODE_ENV: &str = "PROMETHEUS_MULTIPROC_FILE_MODE";
/// Environment variable naming a stable worker id to use in file names
/// instead of the pid (see [`set_worker_id`](crate::set_worker_id)).
pub const WORKER_ID_ENV: &str = "PROMETHEUS_MULTIPROC_WORKER_ID";

/// The worker id set in [`WORKER_ID_ENV`], if any (validated by the caller).
pub(crate) fn worker_id() -> Option<String> {
    std::env::var(WORKER_ID_ENV).ok()
}

/// The permission bits for new files: [`FILE_MODE_ENV`], default `0o600`.
pub(crate) fn file_mode_from_env() -> Result<u32> {
    match std::env::var(FILE_MODE_ENV) {
        Ok(s) => u32::from_str_radix(s.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                Error::invalid_argument(
                    crate::error::ArgumentKind::FileMode,
                    format!("{FILE_MODE_ENV}={s:?}: expected octal permission bits such as 640"),
                )
            }),
        Err(_) => Ok(0o600),
    }
}

/// The directory variable [`dir_from_env`] reads: [`ENV_VAR`] if set, else
/// [`ENV_VAR_DEPRECATED`].
pub(crate) fn dir_var_in_use() -> &'static str {
    if std::env::var_os(ENV_VAR).is_some() {
        ENV_VAR
    } else {
        ENV_VAR_DEPRECATED
    }
}

/// Resolves the metrics directory from the environment.
///
/// `PROMETHEUS_MULTIPROC_DIR` wins; the deprecated `prometheus_multiproc_dir`
/// is used with a warning on stderr when only it is set. Errors name the
/// variable and the path.
///
/// ```no_run
/// let dir = prometheus_multiproc::env::dir_from_env().unwrap();
/// println!("metrics in {}", dir.display());
/// ```
pub fn dir_from_env() -> Result<PathBuf> {
    let (var, value) = if let Some(v) = std::env::var_os(ENV_VAR) {
        (ENV_VAR, v)
    } else if let Some(v) = std::env::var_os(ENV_VAR_DEPRECATED) {
        warn_deprecated_once();
        (ENV_VAR_DEPRECATED, v)
    } else {
        return Err(Error::env_not_set(ENV_VAR));
    };
    if value.is_empty() {
        return Err(Error::bad_dir("", Some(var), "is empty"));
    }
    let path = PathBuf::from(value);
    check_dir(&path, Some(var))?;
    Ok(path)
}

fn warn_deprecated_once() {
    // Not a `std::sync::Once`: a process forked while another thread ran
    // it would wait for that thread forever.
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::warn::line(format_args!(
            "warning: {ENV_VAR_DEPRECATED} is deprecated in favor of the upper case naming {ENV_VAR}"
        ));
    }
}
