//! The supervisor's error type: which step failed, and why.

use std::fmt;
use std::io;

/// An error that stops a [`Supervisor`](super::Supervisor) from starting or
/// running.
///
/// The kind is private so that it can grow; use the accessors to tell
/// errors apart and `Display` for a one-line message.
///
/// ```
/// use prometheus_multiproc::prefork::Supervisor;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// // A test harness runs this on a thread of its own: the process has more
/// // than one thread, so forking would not be safe and `run` refuses.
/// let helper = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(1)));
/// let tmp = tempfile::tempdir().unwrap();
/// let err = Supervisor::new(listener)
///     .metrics_dir(tmp.path())
///     .run(|_worker| Ok::<(), std::io::Error>(()))
///     .unwrap_err();
/// assert!(err.is_multi_threaded());
/// # helper.join().unwrap();
/// ```
#[derive(Debug)]
pub struct SupervisorError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The process had more than one thread when it was about to fork.
    MultiThreaded { threads: usize },
    /// A system call of the supervisor failed.
    Sys {
        call: &'static str,
        source: io::Error,
    },
    /// The metrics directory or a worker id was not usable.
    Metrics(crate::Error),
    /// The configuration is not usable.
    Config(&'static str),
}

impl SupervisorError {
    pub(crate) fn multi_threaded(threads: usize) -> Self {
        SupervisorError {
            kind: Kind::MultiThreaded { threads },
        }
    }

    pub(crate) fn sys(call: &'static str, source: impl Into<io::Error>) -> Self {
        SupervisorError {
            kind: Kind::Sys {
                call,
                source: source.into(),
            },
        }
    }

    pub(crate) fn config(what: &'static str) -> Self {
        SupervisorError {
            kind: Kind::Config(what),
        }
    }

    /// True when `run` refused to fork because the process had more than
    /// one thread.
    pub fn is_multi_threaded(&self) -> bool {
        matches!(self.kind, Kind::MultiThreaded { .. })
    }

    /// True when the configuration was rejected (for example zero workers).
    pub fn is_config(&self) -> bool {
        matches!(self.kind, Kind::Config(_))
    }

    /// The underlying I/O error of a failed system call, if that is what
    /// this error is.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.kind {
            Kind::Sys { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The crate error about the metrics directory, if that is what this
    /// error is.
    pub fn metrics_error(&self) -> Option<&crate::Error> {
        match &self.kind {
            Kind::Metrics(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::Error> for SupervisorError {
    fn from(e: crate::Error) -> Self {
        SupervisorError {
            kind: Kind::Metrics(e),
        }
    }
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::MultiThreaded { threads } => write!(
                f,
                "supervisor: refusing to fork from a process with {threads} threads: \
                 start threads (runtimes, pools) in the workers, not before `run`"
            ),
            Kind::Sys { call, source } => write!(f, "supervisor: {call}: {source}"),
            Kind::Metrics(e) => write!(f, "supervisor: {e}"),
            Kind::Config(what) => write!(f, "supervisor: {what}"),
        }
    }
}

impl std::error::Error for SupervisorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Sys { source, .. } => Some(source),
            Kind::Metrics(e) => Some(e),
            _ => None,
        }
    }
}
