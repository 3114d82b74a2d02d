//! Fixtures shared by the integration tests: temporary metrics directories,
//! forked workers, and the real Python prometheus_client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use prometheus_multiproc::MetricsDir;

/// A fresh metrics directory, removed on drop.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix("pm-test-")
                .tempdir()
                .expect("create temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn writer(&self) -> MetricsDir {
        MetricsDir::open(self.path()).expect("open metrics dir")
    }
    /// Names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter with prometheus_client 0.26.0. Tests fail (never
/// skip) when it is missing: `scripts/test.sh` installs it.
pub fn python() -> PathBuf {
    let p = std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/pyenv/bin/python"));
    assert!(
        p.exists(),
        "Python reference not found at {}: run scripts/setup-python.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Runs `tests/python/<script>` with `args`; panics with its stderr on failure.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

/// A merged sample as prometheus_client reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PySample {
    pub family: String,
    pub typ: String,
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// prometheus_client's own MultiProcessCollector over `dir`, as samples.
pub fn py_samples(dir: &Path) -> Vec<PySample> {
    let json = run_py("py_collect.py", &[dir.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("py_collect json");
    let mut out = Vec::new();
    for fam in v.as_array().expect("families") {
        for s in fam["samples"].as_array().expect("samples") {
            let mut labels: Vec<(String, String)> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            out.push(PySample {
                family: fam["name"].as_str().unwrap().to_string(),
                typ: fam["type"].as_str().unwrap().to_string(),
                name: s["name"].as_str().unwrap().to_string(),
                labels,
                value: parse_py_float(s["value"].as_str().unwrap()),
            });
        }
    }
    out
}

fn parse_py_float(s: &str) -> f64 {
    match s {
        "nan" => f64::NAN,
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("bad float {s:?}")),
    }
}

/// The value of one sample in `samples`, by name and labels (any order).
pub fn value_of(samples: &[PySample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    let found: Vec<&PySample> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .collect();
    assert!(found.len() <= 1, "duplicate sample {name} {labels:?}");
    found.first().map(|s| s.value)
}

/// Forks a child that runs `f` and exits with 0 if it returned without
/// panicking, 101 otherwise. Returns the child's pid.
pub fn fork_worker(f: impl FnOnce()) -> nix::unistd::Pid {
    // SAFETY: the child only runs `f` (metric writes, which the library makes
    // fork-safe) and then leaves with `_exit`, running no destructors or
    // atexit handlers of the parent.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
            // SAFETY: _exit is async-signal-safe and ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 101 }) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    }
}

/// Waits for `pid` and asserts that it exited with status 0.
pub fn wait_ok(pid: nix::unistd::Pid) {
    match nix::sys::wait::waitpid(pid, None).expect("waitpid") {
        nix::sys::wait::WaitStatus::Exited(_, 0) => {}
        other => panic!("worker {pid} ended with {other:?}"),
    }
}

/// Runs `f` in a forked worker and waits for it to succeed; returns its pid.
pub fn in_worker(f: impl FnOnce()) -> i32 {
    let pid = fork_worker(f);
    wait_ok(pid);
    pid.as_raw()
}
