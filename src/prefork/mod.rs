//! A pre-fork supervisor: N worker processes share one listening socket; dead workers are marked dead and replaced.
//!
//! [`Supervisor::run`] forks the workers, each running your closure with a
//! [`Worker`] (its slot number, stable worker id and the shared listener),
//! then sleeps until a signal arrives:
//!
//! * `SIGCHLD`: every exited worker is reaped, its live gauges are removed
//!   ([`mark_worker_dead_in`](crate::mark_worker_dead_in)), and a
//!   replacement is forked into the same slot, with the same worker id, so
//!   the directory holds one file set per slot however often workers
//!   restart. A slot whose workers keep dying young is restarted with an
//!   exponential back-off.
//! * `SIGTERM`/`SIGINT`: every worker gets `SIGTERM`; those still running
//!   after [`Supervisor::shutdown_timeout`] get `SIGKILL`. All are reaped and
//!   marked dead, the supervisor's own live-gauge files (from metrics it
//!   created before forking) are removed, and `run` returns a [`Summary`].
//!
//! # What is safe before `run`
//!
//! A forked child gets a copy of the memory but only the thread that called
//! `fork`: a lock held by any other thread (the allocator's, stdout's, a
//! `Mutex` of yours, a runtime's) would stay locked in the child forever.
//! So `run` refuses to fork from a process with more than one thread
//! ([`SupervisorError::is_multi_threaded`]). Before `run`, do only
//! single-threaded set-up:
//!
//! * open the [`MetricsDir`](crate::MetricsDir) and create the metrics (the
//!   handles are inherited; a worker's first write opens the worker's own
//!   files; files the supervisor itself created are cleaned up by `run`);
//! * bind the listener, read configuration, open files.
//!
//! Start threads, thread pools and async runtimes (tokio) *inside* the
//! worker closure. In the child, the supervisor's signal handlers are
//! replaced by the defaults (a worker dies on `SIGTERM` unless it installs
//! its own handler, e.g. tokio's `signal` for a graceful stop), the worker
//! id is set before your closure runs, and on Linux the worker gets
//! `SIGTERM` if the supervisor dies. The child leaves through `_exit` with
//! code 0 when the closure returns `Ok`, 1 on `Err` (printed on stderr) and
//! 101 on a panic: it never returns into the supervisor's stack, so none of
//! the supervisor's destructors run twice.
//!
//! ```no_run
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpListener;
//! use prometheus_multiproc::{CounterVec, MetricsDir, prefork::Supervisor};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = MetricsDir::from_env()?;
//!     let requests = CounterVec::new_in(
//!         &dir,
//!         prometheus::Opts::new("requests_total", "Requests served."),
//!         &["status"],
//!     )?;
//!     let summary = Supervisor::new(TcpListener::bind("127.0.0.1:8000")?)
//!         .workers(4)
//!         .metrics_dir(dir.path())
//!         .run(|worker| -> std::io::Result<()> {
//!             for stream in worker.listener().incoming() {
//!                 let mut stream = stream?;
//!                 let mut line = String::new();
//!                 BufReader::new(&stream).read_line(&mut line)?;
//!                 requests.with_label_values(&["200"]).inc();
//!                 stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")?;
//!             }
//!             Ok(())
//!         })?;
//!     eprintln!("{} workers started in all", summary.started);
//!     Ok(())
//! }
//! ```

mod error;
mod run;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::SupervisorError;

/// Forks and supervises the worker processes of a pre-fork server; see the
/// [module documentation](self).
///
/// ```no_run
/// use prometheus_multiproc::prefork::Supervisor;
/// use std::time::Duration;
///
/// let summary = Supervisor::bind("127.0.0.1:8000")?
///     .workers(4)
///     .shutdown_timeout(Duration::from_secs(10))
///     .run(|worker| -> std::io::Result<()> {
///         for stream in worker.listener().incoming() {
///             drop(stream?); // serve it
///         }
///         Ok(())
///     })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Supervisor {
    listener: TcpListener,
    workers: usize,
    dir: Option<PathBuf>,
    worker_id_prefix: Option<String>,
    shutdown_timeout: Duration,
    min_uptime: Duration,
    backoff: (Duration, Duration),
    on_event: Box<dyn FnMut(&Event)>,
}

impl Supervisor {
    /// A supervisor for workers that share `listener`. Defaults: 2 workers,
    /// the directory from `PROMETHEUS_MULTIPROC_DIR`, worker ids `w0`,
    /// `w1`, ..., a 10 s shutdown timeout, restarts of workers that lived
    /// less than 1 s delayed by 100 ms doubling up to 10 s, events printed
    /// on stderr.
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(listener).workers(3);
    /// ```
    pub fn new(listener: TcpListener) -> Supervisor {
        Supervisor {
            listener,
            workers: 2,
            dir: None,
            worker_id_prefix: Some("w".to_string()),
            shutdown_timeout: Duration::from_secs(10),
            min_uptime: Duration::from_secs(1),
            backoff: (Duration::from_millis(100), Duration::from_secs(10)),
            on_event: Box::new(|e| eprintln!("prefork: {e}")),
        }
    }

    /// Binds a listener to `addr` (use a loopback address unless the
    /// server is meant to be reachable from other hosts) and returns
    /// [`Supervisor::new`] for it.
    ///
    /// ```
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::bind("127.0.0.1:0").unwrap();
    /// assert!(supervisor.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn bind(addr: impl std::net::ToSocketAddrs) -> Result<Supervisor, SupervisorError> {
        let listener = TcpListener::bind(addr).map_err(|e| SupervisorError::sys("bind", e))?;
        Ok(Supervisor::new(listener))
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(supervisor.local_addr().unwrap().port(), 0);
    /// ```
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The number of worker processes (at least 1).
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(l).workers(8);
    /// ```
    pub fn workers(mut self, n: usize) -> Supervisor {
        self.workers = n;
        self
    }

    /// The metrics directory whose files the workers write (default: the
    /// one named by `PROMETHEUS_MULTIPROC_DIR`). Dead workers' live gauges
    /// are removed from it.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let tmp = tempfile::tempdir().unwrap();
    /// let dir = prometheus_multiproc::MetricsDir::open(tmp.path()).unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(l).metrics_dir(dir.path());
    /// ```
    pub fn metrics_dir(mut self, dir: impl AsRef<Path>) -> Supervisor {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Names the workers' files `<prefix><slot>` (default prefix `w`: files
    /// `counter_w0.db`, ...), or after their pids with `None`. With ids, a
    /// replacement worker continues its slot's files and the directory
    /// stays at one file set per slot; with pids, every restart adds a file
    /// set. Give each server sharing a directory its own prefix. The ids
    /// must be valid for [`set_worker_id`](crate::set_worker_id).
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(l).worker_ids(Some("api-"));
    /// ```
    pub fn worker_ids(mut self, prefix: Option<&str>) -> Supervisor {
        self.worker_id_prefix = prefix.map(str::to_string);
        self
    }

    /// How long workers get to finish after `SIGTERM` before `SIGKILL`.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(l)
    ///     .shutdown_timeout(std::time::Duration::from_secs(30));
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Supervisor {
        self.shutdown_timeout = timeout;
        self
    }

    /// Restart back-off: a worker that exits less than `min_uptime` after
    /// it started counts as a crash; the n-th crash in a row of a slot
    /// delays its restart by `initial * 2^(n-1)`, at most `max`. A worker
    /// that lived longer is replaced at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(l).restart_backoff(
    ///     Duration::from_secs(2),
    ///     Duration::from_millis(250),
    ///     Duration::from_secs(30),
    /// );
    /// ```
    pub fn restart_backoff(
        mut self,
        min_uptime: Duration,
        initial: Duration,
        max: Duration,
    ) -> Supervisor {
        self.min_uptime = min_uptime;
        self.backoff = (initial, max.max(initial));
        self
    }

    /// Called in the supervisor for every [`Event`] (default: a line on
    /// stderr). Runs in the supervisor's loop, not in a signal handler: it
    /// may do anything but block for long.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let supervisor = prometheus_multiproc::prefork::Supervisor::new(l)
    ///     .on_event(|event| eprintln!("myserver: {event}"));
    /// ```
    pub fn on_event(mut self, f: impl FnMut(&Event) + 'static) -> Supervisor {
        self.on_event = Box::new(f);
        self
    }

    /// Forks the workers and supervises them until `SIGTERM` or `SIGINT`;
    /// see the [module documentation](self). `worker` runs in each child;
    /// an `Err` is printed on stderr and ends the worker with code 1.
    ///
    /// Fails before forking anything if the process has more than one
    /// thread, if the metrics directory is unusable or if no worker is
    /// asked for.
    pub fn run<F, E>(self, worker: F) -> Result<Summary, SupervisorError>
    where
        F: Fn(&Worker<'_>) -> Result<(), E>,
        E: std::fmt::Display,
    {
        run::run(self, &worker)
    }
}

/// What a worker's closure gets: its slot, its worker id and the shared
/// listener.
///
/// ```no_run
/// # use prometheus_multiproc::prefork::Supervisor;
/// Supervisor::bind("127.0.0.1:0")?.run(|worker| -> std::io::Result<()> {
///     eprintln!("slot {} ({:?}) pid {}", worker.index(), worker.id(), std::process::id());
///     let listener = worker.listener().try_clone()?; // an owned one, e.g. for tokio
///     Ok(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Worker<'a> {
    index: usize,
    id: Option<&'a str>,
    listener: &'a TcpListener,
    dir: &'a Path,
}

impl Worker<'_> {
    /// The worker's slot, `0..workers`; a replacement gets the slot of the
    /// worker it replaces.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The worker id its files are named after (`None`: the pid).
    pub fn id(&self) -> Option<&str> {
        self.id
    }

    /// The listening socket shared by all workers.
    pub fn listener(&self) -> &TcpListener {
        self.listener
    }

    /// The metrics directory (for a `/metrics` endpoint's collector).
    pub fn metrics_dir(&self) -> &Path {
        self.dir
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (the signal number).
    Signal(i32),
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Code(c) => write!(f, "exited with code {c}"),
            ExitReason::Signal(s) => match nix::sys::signal::Signal::try_from(*s) {
                Ok(sig) => write!(f, "was killed by {}", sig.as_str()),
                Err(_) => write!(f, "was killed by signal {s}"),
            },
        }
    }
}

/// Something the supervisor did or saw; passed to [`Supervisor::on_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A worker was forked into slot `index`.
    Started {
        /// The slot.
        index: usize,
        /// The worker's pid.
        pid: u32,
    },
    /// A worker ended and was marked dead; unless the supervisor is
    /// stopping, a replacement follows after `restart_in`.
    Exited {
        /// The slot.
        index: usize,
        /// The worker's pid.
        pid: u32,
        /// How it ended.
        reason: ExitReason,
        /// The back-off before its replacement is forked (`None` when
        /// stopping).
        restart_in: Option<Duration>,
    },
    /// `SIGTERM` or `SIGINT` arrived: the workers are being stopped.
    Stopping {
        /// The workers that got `SIGTERM`.
        workers: usize,
    },
    /// A worker did not stop within the shutdown timeout and got `SIGKILL`.
    Killed {
        /// The worker's pid.
        pid: u32,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Started { index, pid } => write!(f, "worker {index} started (pid {pid})"),
            Event::Exited {
                index,
                pid,
                reason,
                restart_in,
            } => {
                write!(f, "worker {index} (pid {pid}) {reason}; marked dead")?;
                match restart_in {
                    Some(d) if d.is_zero() => write!(f, ", replacing it"),
                    Some(d) => write!(f, ", replacing it in {} ms", d.as_millis()),
                    None => Ok(()),
                }
            }
            Event::Stopping { workers } => write!(f, "stopping {workers} workers"),
            Event::Killed { pid } => write!(f, "worker pid {pid} did not stop in time: SIGKILL"),
        }
    }
}

/// What [`Supervisor::run`] did, returned after a graceful stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Workers forked, replacements included.
    pub started: usize,
    /// Workers that ended before the stop (each was replaced).
    pub replaced: usize,
    /// Workers that had to be killed with `SIGKILL` at the stop.
    pub killed: usize,
}
