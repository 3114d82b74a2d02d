//! Reliability: full disk without SIGBUS, workers that die without a hook
//! (SIGKILL, also with a forked grandchild still alive), pid reuse, thousands
//! of files under a tiny descriptor limit, a churn soak with SIGKILLs while
//! scraping, and property tests of the file format and key codec.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::Scrape;
use prometheus_multiproc::{
    Counter, CounterVec, Gauge, GaugeMode, Histogram, MetricsDir, MultiProcessCollector, format,
    format::FileKind, remove_dead_live_files,
};

use crate::common::{Dir, PySample, fork_worker, py_samples, value_of, wait_ok};

// ---------------------------------------------------------------------------
// Helpers

/// Our collector's samples, in the shape of `common::PySample` so that
/// `common::value_of` works on both.
fn ours(dir: &Path) -> (Vec<PySample>, Scrape) {
    let scrape = MultiProcessCollector::new(dir)
        .expect("collector")
        .collect_families()
        .expect("scrape");
    let mut out = Vec::new();
    for f in &scrape.families {
        for s in &f.samples {
            out.push(PySample {
                family: f.name.clone(),
                typ: f.kind.as_str().to_string(),
                name: s.name.to_string(),
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value: s.value,
            });
        }
    }
    (out, scrape)
}

/// Control files shared by the test and its forked workers (ready flags,
/// release flags, reports). Files rather than pipes: nothing is inherited
/// that could keep a pipe open, and a worker whose test died stops by itself.
struct Ctl {
    dir: tempfile::TempDir,
}

impl Ctl {
    fn new() -> Ctl {
        Ctl {
            dir: tempfile::Builder::new()
                .prefix("pm-ctl-")
                .tempdir()
                .unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Atomically publishes `name` with `value`.
    fn post(&self, name: &str, value: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, value).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }
    /// Waits for `name` to be posted; `None` after `timeout`.
    fn wait(&self, name: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(v) = std::fs::read_to_string(self.path(name)) {
                return Some(v);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    /// False once the test has ended (its control directory is removed
    /// when the test returns or unwinds).
    fn test_running(&self) -> bool {
        self.dir.path().exists()
    }
    /// Like `wait`, but a missing post is a test failure.
    fn expect(&self, name: &str) -> String {
        self.wait(name, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("timed out waiting for {name}"))
    }
}

/// In a worker: blocks until the test posts `name` (or 60 s pass, or the
/// test is over), so that no worker outlives a failed test for long.
fn block_until(ctl: &Ctl, name: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    while !ctl.path(name).exists() && Instant::now() < end && ctl.test_running() {
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn sigkill(pid: Pid) {
    kill(pid, Signal::SIGKILL).expect("kill");
    match waitpid(pid, None).expect("waitpid") {
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => {}
        other => panic!("worker {pid} ended with {other:?}, not by our SIGKILL"),
    }
}

/// A small tmpfs, unmounted on drop (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "256k"). Fails the test, with the
    /// reason, if that is impossible: this test must never pass by skipping.
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("pm-tmpfs-")
            .tempdir()
            .unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Tmpfs { dir },
            Ok(o) => panic!(
                "cannot mount a {size} tmpfs at {} ({}: {}). The full-disk test needs root \
                 (or CAP_SYS_ADMIN), as in CI; run the suite as root.",
                dir.path().display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("cannot run mount(8) for the full-disk test: {e}"),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a worker still running): detach it anyway.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The sum of the values in one file whose keys pass `keep`; 0 for a file
/// that is missing or empty (a worker killed before or while creating it).
fn file_sum(path: &Path, keep: impl Fn(&format::ParsedKey) -> bool) -> f64 {
    let img = match std::fs::read(path) {
        Ok(img) if !img.is_empty() => img,
        Ok(_) => return 0.0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0.0,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    format::Entries::new(&img)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap())
        .filter(|e| keep(&format::decode_key(e.key).unwrap()))
        .map(|e| e.value)
        .sum()
}

// ---------------------------------------------------------------------------
// 1. Full disk

#[test]
fn full_disk_is_an_error_never_sigbus() {
    let fs = Tmpfs::mount("256k");
    let ctl = Ctl::new();
    let dir = fs.path().to_path_buf();
    // Everything happens in a worker: a SIGBUS would kill it, and wait_ok
    // would report the signal.
    let pid = fork_worker(|| {
        let w = MetricsDir::open(&dir).unwrap();
        let v = CounterVec::new_in(&w, Opts::new("fill_total", "Fill."), &["n"]).unwrap();
        let h = Histogram::with_opts_in(&w, HistogramOpts::new("lat", "Lat.").buckets(vec![1.0]))
            .unwrap();
        let long = "x".repeat(200);
        let mut series = Vec::new();
        let err = loop {
            let label = format!("{}{long}", series.len());
            match v.get_metric_with_label_values(&[&label]) {
                Ok(c) => {
                    c.inc();
                    series.push(c);
                }
                Err(e) => break e,
            }
            assert!(series.len() < 100_000, "the 256k tmpfs never filled up");
        };
        assert!(err.is_storage_full(), "not a storage-full error: {err}");
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
        // Existing series keep counting, through both paths.
        for c in &series {
            c.inc();
        }
        series[0].inc_by(3.0);
        v.with_label_values(&[&format!("1{long}")]).inc();
        h.observe(0.5);
        // The infallible path keeps a new series in memory (it counts, but
        // is not exported)...
        let extra = v.with_label_values(&["one too many"]);
        extra.inc();
        assert_eq!(extra.get(), 1.0);
        // ...and the series that existed before keep working.
        series[0].inc();
        assert_eq!(series[0].get(), 6.0);
        // A new metric type needs a new 64 KiB file: create gauges of one
        // mode after the other until the disk is really full. The one that
        // does not fit is refused, and leaves no empty file behind
        // (prometheus_client's collector fails on an empty file).
        let mut gauges = Vec::new();
        let (mode, e) = loop {
            let mode = GaugeMode::ALL[gauges.len()];
            match Gauge::new_in(&w, &format!("g_{}", mode.as_str()), "G.", mode) {
                Ok(g) => {
                    g.set(1.5);
                    gauges.push(g);
                }
                Err(e) => break (mode, e),
            }
        };
        assert!(e.is_storage_full(), "{e}");
        let refused = dir.join(FileKind::Gauge(mode).file_name(&std::process::id().to_string()));
        assert!(!refused.exists(), "{} left behind", refused.display());
        for g in &gauges {
            g.inc();
        }
        series[0].inc();
        assert_eq!(series[0].get(), 7.0);
        // A forked child needs files of its own, which do not fit: its
        // fallible calls say so, its infallible ones drop the value (with a
        // warning on stderr) and go on.
        wait_ok(fork_worker(|| {
            let e = series[0].try_inc_by(1.0).unwrap_err();
            assert!(e.is_storage_full(), "{e}");
            series[0].inc();
            h.observe(1.0);
            assert_eq!(series[0].get(), 0.0);
        }));
        ctl.post("series", &series.len().to_string());
        ctl.post("gauges", &gauges.len().to_string());
    });
    wait_ok(pid);
    let n: usize = ctl.expect("series").parse().unwrap();
    let gauges: usize = ctl.expect("gauges").parse().unwrap();
    assert!(n > 100, "only {n} series fit");
    let label = |i: usize| format!("{i}{}", "x".repeat(200));
    let check = |s: &[PySample], who: &str| {
        assert_eq!(
            s.iter().filter(|x| x.name == "fill_total").count(),
            n,
            "{who}: series"
        );
        assert_eq!(
            value_of(s, "fill_total", &[("n", &label(0))]),
            Some(7.0),
            "{who}"
        );
        assert_eq!(
            value_of(s, "fill_total", &[("n", &label(1))]),
            Some(3.0),
            "{who}"
        );
        for i in 2..n {
            assert_eq!(
                value_of(s, "fill_total", &[("n", &label(i))]),
                Some(2.0),
                "{who}"
            );
        }
        assert_eq!(value_of(s, "lat_count", &[]), Some(1.0), "{who}");
        if gauges > 0 {
            let pid = pid.to_string();
            assert_eq!(value_of(s, "g_all", &[("pid", &pid)]), Some(2.5), "{who}");
        }
    };
    let py = py_samples(fs.path());
    check(&py, "prometheus_client");
    let (ours, scrape) = ours(fs.path());
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    check(&ours, "ours");
    let mut files: Vec<String> = std::fs::read_dir(fs.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut want = vec![format!("counter_{pid}.db"), format!("histogram_{pid}.db")];
    want.extend(
        GaugeMode::ALL[..gauges]
            .iter()
            .map(|m| format!("gauge_{}_{pid}.db", m.as_str())),
    );
    want.sort();
    assert_eq!(files, want);
}

// ---------------------------------------------------------------------------
// 2. Dead workers without a hook

#[test]
fn sigkilled_worker_live_gauge_dropped_counter_kept() {
    let d = Dir::new();
    let ctl = Ctl::new();
    let dir = d.path().to_path_buf();
    let worker = |name: &'static str, gauge: f64, count: f64| {
        let (dir, ctl) = (&dir, &ctl);
        fork_worker(move || {
            let w = MetricsDir::open(dir).unwrap();
            Gauge::new_in(&w, "inflight", "In flight.", GaugeMode::LiveSum)
                .unwrap()
                .set(gauge);
            Counter::new_in(&w, "served_total", "Served.")
                .unwrap()
                .inc_by(count);
            ctl.post(&format!("ready-{name}"), "");
            block_until(ctl, &format!("release-{name}"));
        })
    };
    let dead = worker("dead", 5.0, 3.0);
    let alive = worker("alive", 7.0, 4.0);
    ctl.expect("ready-dead");
    ctl.expect("ready-alive");
    sigkill(dead);

    let (s, scrape) = ours(d.path());
    assert_eq!(
        value_of(&s, "inflight", &[]),
        Some(7.0),
        "dead worker's gauge counted"
    );
    assert_eq!(
        value_of(&s, "served_total", &[]),
        Some(7.0),
        "counters keep the dead"
    );
    assert_eq!(scrape.stats.files_dead, 1, "{:?}", scrape.stats);
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    // prometheus_client cannot tell (no hook ran): it still adds 5.
    assert_eq!(value_of(&py_samples(d.path()), "inflight", &[]), Some(12.0));

    let removed = remove_dead_live_files(d.path()).unwrap();
    assert_eq!(
        removed,
        vec![d.path().join(format!("gauge_livesum_{dead}.db"))]
    );
    let py = py_samples(d.path());
    assert_eq!(value_of(&py, "inflight", &[]), Some(7.0));
    assert_eq!(value_of(&py, "served_total", &[]), Some(7.0));
    let (s, scrape) = ours(d.path());
    assert_eq!(value_of(&s, "inflight", &[]), Some(7.0));
    assert_eq!(scrape.stats.files_dead, 0);

    ctl.post("release-alive", "");
    wait_ok(alive);
    // Now it is gone too (it exited normally, still without a hook).
    let (s, _) = ours(d.path());
    assert_eq!(value_of(&s, "inflight", &[]), None);
    assert_eq!(value_of(&s, "served_total", &[]), Some(7.0));
}

/// A worker forks a grandchild and is then SIGKILLed while the grandchild
/// lives on: the worker's lock must die with it. The grandchild inherits the
/// worker's descriptors and mappings, and either one keeps an `flock` alive;
/// the library must not let the grandchild keep them.
fn grandchild_does_not_keep_parent_alive(grandchild_writes: bool) {
    let d = Dir::new();
    let ctl = Ctl::new();
    let dir = d.path().to_path_buf();
    let w = MetricsDir::open(&dir).unwrap();
    // Created before any fork, as a pre-fork server does.
    let g = Gauge::new_in(&w, "inflight", "In flight.", GaugeMode::LiveSum).unwrap();
    let c = Counter::new_in(&w, "served_total", "Served.").unwrap();
    let worker = fork_worker(|| {
        g.set(5.0);
        c.inc();
        let grandchild = fork_worker(|| {
            if grandchild_writes {
                g.set(2.0);
                c.inc();
            }
            ctl.post("grandchild", &std::process::id().to_string());
            block_until(&ctl, "release");
        });
        let _ = grandchild;
        block_until(&ctl, "release");
    });
    let grandchild: i32 = ctl.expect("grandchild").parse().unwrap();
    sigkill(worker);
    // The grandchild lives on (reparented).
    assert!(kill(Pid::from_raw(grandchild), None).is_ok());

    let (s, scrape) = ours(d.path());
    // The test process's own file (0, alive) and the grandchild's, if any.
    let live = if grandchild_writes { 2.0 } else { 0.0 };
    assert_eq!(
        value_of(&s, "inflight", &[]),
        Some(live),
        "the dead worker's live gauge is still counted: its lock is held by the grandchild"
    );
    assert_eq!(
        value_of(&s, "served_total", &[]),
        Some(if grandchild_writes { 2.0 } else { 1.0 })
    );
    assert_eq!(scrape.stats.files_dead, 1, "{:?}", scrape.stats);
    let removed = remove_dead_live_files(d.path()).unwrap();
    assert_eq!(
        removed,
        vec![d.path().join(format!("gauge_livesum_{worker}.db"))]
    );
    ctl.post("release", "");
}

#[test]
fn lock_does_not_leak_to_a_silent_grandchild() {
    grandchild_does_not_keep_parent_alive(false);
}

#[test]
fn lock_does_not_leak_to_a_writing_grandchild() {
    grandchild_does_not_keep_parent_alive(true);
}

/// Workers SIGKILLed at random moments of their first metric write (when
/// they create their files) never leave an empty `.db` file: the file is
/// sized under a hidden name before it appears (prometheus_client's collector
/// fails on an empty file, for as long as it stays).
#[test]
fn sigkill_while_creating_files_leaves_no_empty_file() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "born_total", "Born.").unwrap();
    let h = Histogram::with_opts_in(&w, HistogramOpts::new("born_seconds", "Born.")).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut killed_early = 0;
    for _ in 0..150 {
        let pid = fork_worker(|| {
            loop {
                c.inc();
                h.observe(1.0);
            }
        });
        std::thread::sleep(Duration::from_micros(rng.below(400)));
        kill(pid, Signal::SIGKILL).unwrap();
        waitpid(pid, None).unwrap();
        if !d.path().join(format!("histogram_{pid}.db")).exists() {
            killed_early += 1;
        }
    }
    let mut empty = Vec::new();
    let mut hidden = 0;
    for e in std::fs::read_dir(d.path()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.starts_with('.') {
            hidden += 1;
        } else if e.metadata().unwrap().len() == 0 {
            empty.push(name);
        }
    }
    eprintln!(
        "150 workers killed, {killed_early} before their second file existed, {hidden} temporary files left"
    );
    assert!(empty.is_empty(), "empty files left behind: {empty:?}");
    assert_eq!(hidden, 0, "temporary files left behind");
    // Both collectors read the directory.
    let py = py_samples(d.path());
    let (s, scrape) = ours(d.path());
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    assert_eq!(
        value_of(&py, "born_total", &[]),
        value_of(&s, "born_total", &[])
    );
}

// ---------------------------------------------------------------------------
// 3. Pid reuse between Rust workers

/// Runs `f` in a worker that is pid 1 of a new pid namespace, so that two
/// such workers really have the same pid. Returns (helper, worker) pids as
/// seen from the test; the helper exits with 0 when the worker exited with
/// 0, with 9 when it was killed by SIGKILL, 1 otherwise.
fn spawn_as_pid_1(ctl: &Ctl, tag: &str, f: impl FnOnce()) -> (Pid, Pid) {
    let helper = fork_worker(|| {
        // SAFETY: plain system call on the forked (single-threaded) helper.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWPID) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWPID) failed: {} (the pid-reuse test needs root, as in CI)",
            std::io::Error::last_os_error()
        );
        let worker = fork_worker(f);
        ctl.post(&format!("outer-{tag}"), &worker.as_raw().to_string());
        let code = match waitpid(worker, None).unwrap() {
            WaitStatus::Exited(_, 0) => 0,
            WaitStatus::Signaled(_, Signal::SIGKILL, _) => 9,
            _ => 1,
        };
        // SAFETY: leaves the helper at once, as fork_worker's children do.
        unsafe { libc::_exit(code) }
    });
    let worker: i32 = ctl.expect(&format!("outer-{tag}")).parse().unwrap();
    (helper, Pid::from_raw(worker))
}

fn helper_exit(helper: Pid) -> i32 {
    match waitpid(helper, None).unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("helper ended with {other:?}"),
    }
}

#[test]
fn rust_worker_reusing_a_dead_rust_workers_pid_continues_its_counter() {
    let d = Dir::new();
    let ctl = Ctl::new();
    let dir = d.path().to_path_buf();
    let w = MetricsDir::open(&dir).unwrap();
    let c = Counter::new_in(&w, "reused_total", "Reused.").unwrap();
    // A: pid 1, counts 5, stays alive.
    let (helper_a, a) = spawn_as_pid_1(&ctl, "a", || {
        assert_eq!(std::process::id(), 1);
        c.inc_by(5.0);
        ctl.post("a-ready", "");
        block_until(&ctl, "never");
    });
    ctl.expect("a-ready");
    assert!(dir.join("counter_1.db").exists());
    // B: also pid 1 while A lives: the file is A's (locked), B must not write
    // into it.
    let (helper_b, _) = spawn_as_pid_1(&ctl, "b", || {
        let e = c.try_inc_by(1.0).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("counter_1.db") && msg.contains("locked"),
            "{msg}"
        );
    });
    assert_eq!(helper_exit(helper_b), 0, "B did not see the lock");
    // A dies without a hook; C, pid 1 again, takes the file over.
    kill(a, Signal::SIGKILL).unwrap();
    assert_eq!(helper_exit(helper_a), 9);
    let (helper_c, _) = spawn_as_pid_1(&ctl, "c", || {
        c.inc();
        assert_eq!(c.get(), 6.0, "C did not continue A's value");
    });
    assert_eq!(helper_exit(helper_c), 0, "C failed");
    let files = d.files();
    assert_eq!(
        files,
        vec![
            "counter_1.db".to_string(),
            format!("counter_{}.db", std::process::id())
        ]
    );
    let py = py_samples(d.path());
    assert_eq!(value_of(&py, "reused_total", &[]), Some(6.0));
    let (s, _) = ours(d.path());
    assert_eq!(value_of(&s, "reused_total", &[]), Some(6.0));
}

// ---------------------------------------------------------------------------
// 4. Many files, few descriptors

fn open_fds() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn ten_thousand_files_with_three_free_descriptors() {
    const N: usize = 10_000;
    let d = Dir::new();
    let total_key = format::encode_key("many", "many_total", &[], "Many.");
    let shard_keys: Vec<String> = (0..10)
        .map(|s| format::encode_key("many", "many_total", &[("shard", &s.to_string())], "Many."))
        .collect();
    for i in 0..N {
        let img = format::build_file(
            &[
                (total_key.as_bytes(), i as f64, 0.0),
                (shard_keys[i % 10].as_bytes(), 1.0, 0.0),
            ],
            0,
        );
        std::fs::write(d.path().join(format!("counter_{i}.db")), img).unwrap();
    }
    let ctl = Ctl::new();
    let dir = d.path().to_path_buf();
    wait_ok(fork_worker(|| {
        // Close what the worker inherited from the test harness (our copies
        // only), so that the limit below is tight.
        for fd in open_fds().into_iter().filter(|&fd| fd > 2) {
            // SAFETY: plain system call; no object of this (forked,
            // single-threaded) worker owns these descriptors: they belong
            // to the test process's other threads, which do not exist here.
            unsafe { libc::close(fd) };
        }
        // `open_fds` itself holds one descriptor while listing.
        let before = open_fds();
        let open = before.len() - 1;
        let highest = *before.iter().max().unwrap();
        // Room for 3 more descriptors (more only if numbers have gaps).
        let limit = (open as i32 + 3).max(highest + 1) as libc::rlim_t;
        let rl = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: plain system call with a valid pointer, in the forked worker.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
        let (s, scrape) = ours(&dir);
        assert!(scrape.warnings.is_empty(), "{:?}", &scrape.warnings[..1]);
        assert_eq!(scrape.stats.files_read, N);
        let want = (N * (N - 1) / 2) as f64;
        assert_eq!(value_of(&s, "many_total", &[]), Some(want));
        for shard in 0..10 {
            assert_eq!(
                value_of(&s, "many_total", &[("shard", &shard.to_string())]),
                Some((N / 10) as f64)
            );
        }
        // Nothing leaked.
        assert_eq!(open_fds().len(), before.len());
        ctl.post("ok", &format!("{}", limit as usize - open));
    }));
    let spare: usize = ctl.expect("ok").parse().unwrap();
    eprintln!("10,000 files merged with {spare} free descriptors");
}

// ---------------------------------------------------------------------------
// 5. Churn soak

/// Figures of one soak run.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub seconds: f64,
    pub scrapes: usize,
    pub kills_mid_way: usize,
    pub kills_after_done: usize,
    pub workers: usize,
    pub completed: u64,
    pub counted: f64,
    pub files: usize,
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct SoakWorker {
    pid: Pid,
    witness: PathBuf,
    /// `Some(k)`: does exactly k iterations, reports done, waits to be killed.
    finite: Option<u64>,
}

fn read_witness(path: &Path) -> (u64, bool) {
    // Killed before it created the file.
    let Ok(f) = File::open(path) else {
        return (0, false);
    };
    let mut n = [0u8; 8];
    let mut done = [0u8; 8];
    if f.read_exact_at(&mut n, 0).is_err() {
        // Killed before its first report.
        return (0, false);
    }
    let done = f.read_exact_at(&mut done, 8).is_ok() && u64::from_le_bytes(done) == 1;
    (u64::from_le_bytes(n), done)
}

/// The churn soak. `N = 4` worker slots; each worker loops `c.inc();
/// h.observe(0.25);` and after every iteration writes its iteration count
/// to its own witness file (`pwrite`, so it survives the worker's death).
///
/// "Completed" is made exact this way: an iteration is complete when the
/// worker has recorded it. A SIGKILL can land between the metric writes and
/// the record, so for a worker killed mid-way the file holds `w` or `w + 1`
/// increments (`w` = its record): never fewer (nothing completed is lost),
/// never more than one extra. Half the workers are *finite*: they do exactly
/// `K` iterations, report done, and are killed only after that; their files
/// must hold exactly `K`. The supervisor kills and replaces workers at
/// random while scraping with our collector in a loop: every scrape must
/// succeed without warnings, and the merged counter and histogram count must
/// never decrease. At the end, per-file values are checked against the
/// witnesses, and the merged totals (ours and prometheus_client's) against
/// the sum of the files.
fn churn_soak(duration: Duration, seed: u64) -> SoakReport {
    const SLOTS: usize = 4;
    const K: u64 = 5_000;
    let d = Dir::new();
    let ctl = Ctl::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "churn_total", "Churn.").unwrap();
    let h = Histogram::with_opts_in(&w, HistogramOpts::new("churn_seconds", "Churn.")).unwrap();
    let collector = MultiProcessCollector::new(d.path()).unwrap();
    let mut rng = Rng(seed | 1);
    let mut next_id = 0usize;
    let mut spawn = |rng: &mut Rng| -> SoakWorker {
        let witness = ctl.path(&format!("witness-{next_id}"));
        next_id += 1;
        let finite = (rng.below(2) == 0).then_some(K);
        let (c, h, wpath, ctl) = (&c, &h, &witness, &ctl);
        let pid = fork_worker(move || {
            let f = File::create(wpath).unwrap();
            let mut n: u64 = 0;
            loop {
                if finite == Some(n) {
                    f.write_all_at(&1u64.to_le_bytes(), 8).unwrap();
                    // Wait to be killed (or give up if the test is over).
                    block_until(ctl, "never");
                    return;
                }
                c.inc();
                h.observe(0.25);
                n += 1;
                f.write_all_at(&n.to_le_bytes(), 0).unwrap();
                if n.is_multiple_of(4096) && !ctl.test_running() {
                    return;
                }
            }
        });
        SoakWorker {
            pid,
            witness,
            finite,
        }
    };
    // (pid, witness count, finite) of every worker that ended.
    let mut ended: Vec<(Pid, u64, Option<u64>)> = Vec::new();
    let mut report = SoakReport::default();
    let mut slots: Vec<SoakWorker> = (0..SLOTS).map(|_| spawn(&mut rng)).collect();
    report.workers = SLOTS;
    let (mut last_total, mut last_count) = (0.0f64, 0.0f64);
    let start = Instant::now();
    let mut scrape_check = |report: &mut SoakReport| {
        let scrape = collector.collect_families().expect("scrape failed");
        assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
        let get = |name: &str| {
            scrape
                .families
                .iter()
                .flat_map(|f| &f.samples)
                .find(|s| &*s.name == name)
                .map_or(0.0, |s| s.value)
        };
        let (total, count) = (get("churn_total"), get("churn_seconds_count"));
        assert!(
            total >= last_total,
            "counter went back: {last_total} -> {total}"
        );
        assert!(
            count >= last_count,
            "histogram count went back: {last_count} -> {count}"
        );
        (last_total, last_count) = (total, count);
        report.scrapes += 1;
    };
    while start.elapsed() < duration {
        scrape_check(&mut report);
        if rng.below(3) == 0 {
            let i = rng.below(SLOTS as u64) as usize;
            let (n, done) = read_witness(&slots[i].witness);
            let kill_it = match slots[i].finite {
                Some(_) => done,
                None => true,
            };
            if kill_it {
                let old = std::mem::replace(&mut slots[i], spawn(&mut rng));
                report.workers += 1;
                sigkill(old.pid);
                // Read again: the worker may have gone on before the kill.
                let (n2, _) = read_witness(&old.witness);
                assert!(n2 >= n);
                if old.finite.is_some() {
                    report.kills_after_done += 1;
                } else {
                    report.kills_mid_way += 1;
                }
                ended.push((old.pid, n2, old.finite));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(15)));
    }
    // Stop the rest: finite ones once they are done, the others at once.
    for wk in slots {
        if wk.finite.is_some() {
            let end = Instant::now() + Duration::from_secs(60);
            while !read_witness(&wk.witness).1 {
                assert!(
                    Instant::now() < end,
                    "finite worker {} never finished",
                    wk.pid
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            report.kills_after_done += 1;
        } else {
            report.kills_mid_way += 1;
        }
        sigkill(wk.pid);
        ended.push((wk.pid, read_witness(&wk.witness).0, wk.finite));
    }
    scrape_check(&mut report);
    report.seconds = start.elapsed().as_secs_f64();

    // Per worker: its files against its witness. Workers are grouped by pid
    // in case a long run wraps the pid space (a reused pid continues the
    // file, see writer.rs): `slack` is the number of mid-way kills.
    let mut by_pid: std::collections::BTreeMap<i32, (u64, u64)> = Default::default();
    for (pid, n, finite) in &ended {
        if let Some(k) = finite {
            assert_eq!(n, k, "finite worker {pid} killed before it was done");
        }
        let e = by_pid.entry(pid.as_raw()).or_default();
        e.0 += n;
        e.1 += u64::from(finite.is_none());
        report.completed += n;
    }
    let mut sum_counter = 0.0;
    let mut sum_count = 0.0;
    for (pid, (n, slack)) in by_pid {
        let v = file_sum(&d.path().join(format!("counter_{pid}.db")), |_| true);
        let hc = file_sum(&d.path().join(format!("histogram_{pid}.db")), |k| {
            k.sample.ends_with("_bucket")
        });
        let (lo, hi) = (n as f64, (n + slack) as f64);
        assert!(
            lo <= v && v <= hi,
            "pid {pid}: recorded {n} completed ({slack} mid-way kills), counter file holds {v}"
        );
        assert!(
            lo <= hc && hc <= hi,
            "pid {pid}: recorded {n}, histogram count {hc}"
        );
        sum_counter += v;
        sum_count += hc;
    }
    report.counted = sum_counter;
    assert!(report.counted >= report.completed as f64);
    assert!(report.counted <= (report.completed + report.kills_mid_way as u64) as f64);
    // The last scrape (after every worker died) merged exactly the files.
    assert_eq!(last_total, sum_counter, "our merged counter");
    assert_eq!(last_count, sum_count, "our merged histogram count");
    let py = py_samples(d.path());
    assert_eq!(
        value_of(&py, "churn_total", &[]),
        Some(sum_counter),
        "prometheus_client"
    );
    assert_eq!(value_of(&py, "churn_seconds_count", &[]), Some(sum_count));
    let sum = value_of(&py, "churn_seconds_sum", &[]).unwrap();
    assert!((sum - 0.25 * sum_count).abs() <= 0.25 * report.kills_mid_way as f64);
    report.files = d.files().len();
    report
}

fn soak_seed() -> u64 {
    std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[test]
fn churn_soak_sigkill_while_scraping() {
    let seed = soak_seed();
    eprintln!("churn soak seed {seed} (SOAK_SEED={seed} to repeat)");
    let r = churn_soak(Duration::from_secs(3), seed);
    eprintln!("{r:?}");
    assert!(
        r.scrapes > 10 && r.kills_mid_way + r.kills_after_done > 4,
        "{r:?}"
    );
}

/// The long soak: `SOAK_SECONDS=600 scripts/soak.sh` (or run this test with
/// `--ignored`).
#[test]
#[ignore = "long; run with scripts/soak.sh [SECONDS]"]
fn churn_soak_long() {
    let secs: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = soak_seed();
    eprintln!("churn soak seed {seed}, {secs} s");
    let r = churn_soak(Duration::from_secs(secs), seed);
    println!(
        "SOAK seconds={:.1} seed={seed} scrapes={} workers={} sigkills_mid_way={} \
         sigkills_after_done={} increments_completed={} increments_counted={} \
         lost=0 files={}",
        r.seconds,
        r.scrapes,
        r.workers,
        r.kills_mid_way,
        r.kills_after_done,
        r.completed,
        r.counted,
        r.files
    );
}

// ---------------------------------------------------------------------------
// 6. Properties of the format and the key codec

mod props {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use prometheus_multiproc::format::FileKind;
    use prometheus_multiproc::format::ParsedKey;
    use prometheus_multiproc::format::{self, Entries, HEADER_LEN};
    use prometheus_multiproc::{GaugeMode, MultiProcessCollector};

    fn entries_of(img: &[u8]) -> Vec<(Vec<u8>, u64, u64)> {
        Entries::new(img)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.key.to_vec(), e.value.to_bits(), e.timestamp.to_bits())
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn key_round_trip(
            metric in any::<String>(),
            sample in any::<String>(),
            labels in btree_map(any::<String>(), any::<String>(), 0..6),
            help in any::<String>(),
        ) {
            let pairs: Vec<(&str, &str)> =
                labels.iter().rev().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let k = format::encode_key(&metric, &sample, &pairs, &help);
            prop_assert!(k.is_ascii(), "ensure_ascii output");
            let p = format::decode_key(k.as_bytes()).unwrap();
            let want = ParsedKey {
                metric,
                sample,
                labels: labels.into_iter().collect(),
                help,
            };
            prop_assert_eq!(p, want);
        }

        // Keys of at least one byte: an empty key is four zero bytes, what a
        // hole reads as, and is corrupt (`CorruptKind::ZeroEntry`).
        #[test]
        fn build_file_round_trip(
            entries in vec((vec(any::<u8>(), 1..80), any::<f64>(), any::<f64>()), 0..24),
            min_size in 0usize..2048,
        ) {
            let refs: Vec<(&[u8], f64, f64)> =
                entries.iter().map(|(k, v, t)| (k.as_slice(), *v, *t)).collect();
            let img = format::build_file(&refs, min_size);
            prop_assert!(img.len() >= min_size);
            let want: Vec<(Vec<u8>, u64, u64)> =
                entries.iter().map(|(k, v, t)| (k.clone(), v.to_bits(), t.to_bits())).collect();
            prop_assert_eq!(entries_of(&img), want);
        }

        #[test]
        fn mutated_files_never_panic(
            series in vec((".{0,12}", btree_map("[a-z]{1,3}", ".{0,6}", 0..3), any::<f64>()), 1..12),
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let keys: Vec<String> = series
                .iter()
                .map(|(m, l, _)| {
                    let l: Vec<(&str, &str)> = l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    format::encode_key(m, &format!("{m}_total"), &l, "h")
                })
                .collect();
            let refs: Vec<(&[u8], f64, f64)> =
                keys.iter().zip(&series).map(|(k, s)| (k.as_bytes(), s.2, 0.0)).collect();
            let mut img = format::build_file(&refs, 0);
            for (at, b) in &flips {
                let i = at.index(img.len());
                img[i] = *b;
            }
            if let Some(at) = cut {
                img.truncate(at.index(img.len() + 1));
            }
            if let Ok(entries) = Entries::new(&img) {
                let used = entries.used();
                prop_assert!((HEADER_LEN..=img.len()).contains(&used));
                let mut n = 0;
                for e in entries {
                    let Ok(e) = e else { break };
                    n += 1;
                    prop_assert!(n <= (used - HEADER_LEN) / 24);
                    prop_assert!(e.value_offset % 8 == 0 && e.value_offset + 16 <= used);
                    if let Ok(p) = format::decode_key(e.key) {
                        // Whatever decodes re-encodes to something that decodes the same.
                        let l: Vec<(&str, &str)> =
                            p.labels.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                        let again = format::encode_key(&p.metric, &p.sample, &l, &p.help);
                        prop_assert_eq!(format::decode_key(again.as_bytes()).unwrap(), p);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The collector over a directory holding one mutated file of any kind:
        /// the scrape succeeds and accounts for the file exactly once.
        #[test]
        fn collector_survives_mutated_files(
            kind in 0usize..15,
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let kinds: Vec<FileKind> = [FileKind::Counter, FileKind::Histogram, FileKind::Summary,
                FileKind::Info, FileKind::StateSet]
                .into_iter()
                .chain(GaugeMode::ALL.map(FileKind::Gauge))
                .collect();
            let k1 = format::encode_key("m", "m_total", &[("a", "x")], "h");
            let k2 = format::encode_key("m", "m_bucket", &[("le", "0.5")], "h");
            let mut img = format::build_file(&[(k1.as_bytes(), 1.0, 2.0), (k2.as_bytes(), 3.0, 0.0)], 0);
            for (at, b) in &flips {
                let i = at.index(img.len());
                img[i] = *b;
            }
            if let Some(at) = cut {
                img.truncate(at.index(img.len() + 1));
            }
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join(kinds[kind].file_name("1")), &img).unwrap();
            let scrape = MultiProcessCollector::new(tmp.path()).unwrap().collect_families().unwrap();
            let st = &scrape.stats;
            prop_assert_eq!(st.files_read + st.files_corrupt + st.files_dead + st.files_skipped, 1);
            let mut out = Vec::new();
            scrape.encode_text(&mut out);
            prop_assert!(std::str::from_utf8(&out).is_ok());
        }
    }

    #[test]
    fn labels_sorted_by_code_point_like_python() {
        // Python's sort_keys compares str by code point (not UTF-16 units):
        // "\uffff" sorts before "😀" although its UTF-16 unit is larger.
        let k = format::encode_key(
            "m",
            "m",
            &[("😀", "3"), ("\u{ffff}", "4"), ("é", "1"), ("z", "2")],
            "",
        );
        assert_eq!(
            k,
            r#"["m", "m", {"z": "2", "\u00e9": "1", "\uffff": "4", "\ud83d\ude00": "3"}, ""]"#
        );
    }
}
