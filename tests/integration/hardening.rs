//! Writer hardening (issue 12): forks under thread churn never hang, names
//! that are empty once their suffix is stripped are refused, files planted by
//! another user are never mapped, a huge predecessor file is not read whole,
//! and a full disk on the infallible path keeps the metric working in memory.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    Counter, CounterVec, Enum, EnumVec, Gauge, GaugeMode, GaugeVec, HistogramVec, Info, InfoVec,
    MetricsDir, MultiProcessCollector, SummaryVec,
};

use crate::common::{Dir, PySample, fork_worker, py_samples, value_of};

/// Waits for `pid` until `deadline`; SIGKILLs it if it is still running then.
/// Returns the child's end, or `None` when it had to be killed (a hang).
fn wait_with_deadline(pid: Pid, deadline: Duration) -> Option<WaitStatus> {
    let end = Instant::now() + deadline;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
            WaitStatus::StillAlive => {}
            status => return Some(status),
        }
        if Instant::now() >= end {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One `*Vec` of each kind, plus an Info and an Enum used as plain handles.
#[derive(Clone)]
struct AllVecs {
    counters: CounterVec,
    gauges: GaugeVec,
    histograms: HistogramVec,
    summaries: SummaryVec,
    infos: InfoVec,
    enums: EnumVec,
    info: Info,
    state: Enum,
}

impl AllVecs {
    fn new(w: &MetricsDir) -> AllVecs {
        let h = HistogramOpts::new("fk_seconds", "H.").buckets(vec![1.0]);
        AllVecs {
            counters: CounterVec::new_in(w, Opts::new("fk_total", "C."), &["l"]).unwrap(),
            gauges: GaugeVec::new_in(w, Opts::new("fk_g", "G."), &["l"], GaugeMode::All).unwrap(),
            histograms: HistogramVec::new_in(w, h, &["l"]).unwrap(),
            summaries: SummaryVec::new_in(w, Opts::new("fk_s", "S."), &["l"]).unwrap(),
            infos: InfoVec::new_in(w, Opts::new("fk_i", "I."), &["l"]).unwrap(),
            enums: EnumVec::new_in(w, Opts::new("fk_e", "E."), &["l"], &["a", "b"]).unwrap(),
            info: Info::new_in(w, "fk_build", "B.").unwrap(),
            state: Enum::new_in(w, "fk_mode", "M.", &["a", "b"]).unwrap(),
        }
    }

    /// Creates (or finds) the series `label` of the vec `which` and uses it.
    fn touch(&self, which: u64, label: &str) {
        match which % 7 {
            0 => self.counters.with_label_values(&[label]).inc(),
            1 => self.gauges.with_label_values(&[label]).set(1.0),
            2 => self.histograms.with_label_values(&[label]).observe(0.5),
            3 => self.summaries.with_label_values(&[label]).observe(0.5),
            4 => self.infos.with_label_values(&[label]).info(&[("v", "1")]),
            5 => self.enums.with_label_values(&[label]).state("b"),
            // The Info handle's own lock, held while a new label set gets
            // its entry.
            _ => self.info.info(&[("v", label)]),
        }
    }
}

/// Pre-fork servers fork while other threads run. Three threads create new
/// series of every `*Vec` kind (and new Info label sets) in a loop while the
/// test forks 200 children; each child uses every vec and handle. A child
/// that is still running after 20 s is stuck (it inherited a lock that a
/// parent thread held at the fork) and fails the test.
#[test]
fn hardening_fork_under_churn_never_hangs() {
    const FORKS: u64 = 200;
    let dir = Dir::new();
    let w = dir.writer();
    let vecs = AllVecs::new(&w);
    let stop = Arc::new(AtomicBool::new(false));
    // The threads churn around each fork and pause while the test waits for
    // the child, which leaves the CPU to the child.
    let active = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let churn: Vec<_> = (0..3u64)
        .map(|t| {
            let (vecs, stop, made) = (vecs.clone(), Arc::clone(&stop), Arc::clone(&made));
            let active = Arc::clone(&active);
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if !active.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_micros(100));
                        continue;
                    }
                    vecs.touch(i + t, &format!("t{t}-{i}"));
                    i += 1;
                }
                made.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    let mut hung = Vec::new();
    let mut failed = Vec::new();
    for n in 0..FORKS {
        active.store(true, Ordering::Relaxed);
        // Let the threads get into their stride before the fork.
        std::thread::sleep(Duration::from_millis(3));
        let child = fork_worker(|| {
            for which in 0..7 {
                vecs.touch(which, "child");
            }
            vecs.state.state("b");
        });
        active.store(false, Ordering::Relaxed);
        match wait_with_deadline(child, Duration::from_secs(20)) {
            Some(WaitStatus::Exited(_, 0)) => {}
            Some(other) => failed.push((n, format!("{other:?}"))),
            None => {
                hung.push(n);
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in churn {
        t.join().unwrap();
    }
    assert!(
        hung.is_empty(),
        "fork {hung:?} of {FORKS}: the child hung (killed after 20 s)"
    );
    assert!(failed.is_empty(), "children failed: {failed:?}");
    assert!(
        made.load(Ordering::Relaxed) > FORKS,
        "the threads hardly ran"
    );
    // Every child counted its own "child" series once, in its own file.
    let scrape = MultiProcessCollector::new(dir.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    let child_total: f64 = scrape
        .families
        .iter()
        .filter(|f| f.name == "fk")
        .flat_map(|f| &f.samples)
        .filter(|s| s.labels.iter().any(|(k, v)| &**k == "l" && &**v == "child"))
        .map(|s| s.value)
        .sum();
    assert_eq!(child_total, FORKS as f64);
}

// ---------------------------------------------------------------------------
// 2. Names that are nothing but the suffix their type removes

/// A counter named `_total` (or an Info named `_info`) would be stored with
/// an empty name: our collector then skipped the worker's whole counter file
/// and prometheus_client's collector failed the scrape. Every constructor
/// refuses it now, with an error, and the other metrics are unaffected.
#[test]
fn hardening_names_empty_without_their_suffix_are_refused() {
    let dir = Dir::new();
    let w = dir.writer();
    let good = Counter::new_in(&w, "good_total", "Good.").unwrap();
    let info = Info::new_in(&w, "app", "App.").unwrap();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut check = |what: &str, r: prometheus_multiproc::Result<()>| match r {
        Ok(()) => accepted.push(what.to_string()),
        Err(e) => refused.push((what.to_string(), e)),
    };
    check(
        "Counter::new_in",
        Counter::new_in(&w, "_total", "Bad.").map(|c| c.inc()),
    );
    check(
        "Counter::with_opts_in",
        Counter::with_opts_in(&w, Opts::new("_total", "Bad.")).map(|c| c.inc()),
    );
    check(
        "CounterVec::new_in",
        CounterVec::new_in(&w, Opts::new("_total", "Bad."), &["l"])
            .map(|v| v.with_label_values(&["x"]).inc()),
    );
    check(
        "Info::new_in",
        Info::new_in(&w, "_info", "Bad.").map(|i| i.info(&[("v", "1")])),
    );
    check(
        "InfoVec::new_in",
        InfoVec::new_in(&w, Opts::new("_info", "Bad."), &["l"])
            .map(|v| v.with_label_values(&["x"]).info(&[("v", "1")])),
    );
    good.inc();
    info.info(&[("v", "2")]);
    // Both collectors see the good metrics.
    let scrape = MultiProcessCollector::new(dir.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    // Sorted: families come in directory-listing order, as in Python.
    let mut ours: Vec<String> = scrape
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| format!("{} {}", s.name, s.value))
        .collect();
    ours.sort();
    assert_eq!(ours, ["app_info 1", "good_total 1"], "our collector");
    let py = py_samples(dir.path());
    assert_eq!(
        value_of(&py, "good_total", &[]),
        Some(1.0),
        "prometheus_client"
    );
    assert_eq!(value_of(&py, "app_info", &[("v", "2")]), Some(1.0));
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    for (what, e) in &refused {
        assert!(e.is_invalid_name(), "{what}: {e}");
        assert!(e.to_string().contains("nothing is left"), "{what}: {e}");
    }
    // What prometheus_client accepts still works: a namespace leaves `ns_`.
    let ns = Counter::with_opts_in(&w, Opts::new("_total", "Ok.").namespace("ns")).unwrap();
    ns.inc();
    let py = py_samples(dir.path());
    assert_eq!(value_of(&py, "ns__total", &[]), Some(1.0));
}

// ---------------------------------------------------------------------------
// 3. Files planted by another user

/// How the file waiting at the worker's name was planted.
#[derive(Debug, Clone, Copy)]
enum Plant {
    /// Another user's, world-writable (the case).
    ForeignWorldWritable,
    /// Another user's, owner-only.
    ForeignOwnerOnly,
    /// Ours, but world-writable.
    OursWorldWritable,
    /// Ours and owner-only, but with a second name (a hard link).
    HardLinked,
}

/// A valid empty metrics file of 64 KiB (`used` = 8), as a worker would
/// find it and happily continue.
fn plant(dir: &Path, how: Plant) -> File {
    let path = dir.join("gauge_liveall_w1.db");
    let mut img = vec![0u8; 64 * 1024];
    img[..4].copy_from_slice(&8u32.to_le_bytes());
    std::fs::write(&path, &img).unwrap();
    let (uid, mode) = match how {
        Plant::ForeignWorldWritable => (65534, 0o666),
        Plant::ForeignOwnerOnly => (65534, 0o600),
        Plant::OursWorldWritable => (0, 0o666),
        Plant::HardLinked => (0, 0o600),
    };
    std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    if matches!(how, Plant::HardLinked) {
        std::fs::hard_link(&path, dir.join("planted-handle")).unwrap();
    }
    File::options().read(true).write(true).open(&path).unwrap()
}

fn step(s: &mut UnixStream, send: u8) -> Option<u8> {
    s.write_all(&[send]).ok()?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).ok()?;
    Some(b[0])
}

/// A world-writable sticky directory, as a shared metrics directory may be.
fn shared_dir() -> Dir {
    let dir = Dir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Another user plants `gauge_liveall_w1.db` before worker `w1` starts, then
/// truncates it while the worker runs. The worker must not adopt it: it
/// moves it aside, writes a fresh file of its own, and the truncation cannot
/// reach it (before the fix: the worker mapped the planted file and died of
/// SIGBUS on its next `set`).
#[test]
fn hardening_planted_file_is_never_mapped() {
    for how in [
        Plant::ForeignWorldWritable,
        Plant::ForeignOwnerOnly,
        Plant::OursWorldWritable,
        Plant::HardLinked,
    ] {
        let dir = shared_dir();
        let planted = plant(dir.path(), how);
        let planted_ino = planted.metadata().unwrap().ino();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let path = dir.path().to_path_buf();
        let worker = fork_worker(move || {
            let mut s = theirs;
            prometheus_multiproc::set_worker_id("w1").unwrap();
            let w = MetricsDir::open(&path).unwrap();
            let g = Gauge::new_in(&w, "live", "Live.", GaugeMode::LiveAll).unwrap();
            g.set(5.0);
            assert_eq!(step(&mut s, b'1'), Some(b'2'));
            g.set(8.0);
            assert_eq!(step(&mut s, b'3'), Some(b'4'));
        });
        let mut b = [0u8; 1];
        ours.read_exact(&mut b).unwrap();
        // The planted file's owner truncates it under the worker.
        planted.set_len(0).unwrap();
        let reply = step(&mut ours, b'2');
        let scrape = MultiProcessCollector::new(dir.path())
            .unwrap()
            .collect_families()
            .unwrap();
        let _ = ours.write_all(b"4");
        let end = wait_with_deadline(worker, Duration::from_secs(30));
        assert_eq!(
            (reply, end),
            (Some(b'3'), Some(WaitStatus::Exited(worker, 0))),
            "{how:?}: the worker did not survive the truncation"
        );
        // The worker's file is its own; the planted one was moved aside.
        let meta = std::fs::symlink_metadata(dir.path().join("gauge_liveall_w1.db")).unwrap();
        assert_ne!(meta.ino(), planted_ino, "{how:?}: planted file adopted");
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777, meta.nlink()),
            (0, 0o600, 1)
        );
        let aside: Vec<String> = dir
            .files()
            .into_iter()
            .filter(|f| f.starts_with("gauge_liveall_w1.db.untrusted-"))
            .collect();
        assert_eq!(aside.len(), 1, "{how:?}: {:?}", dir.files());
        let aside_ino = std::fs::metadata(dir.path().join(&aside[0])).unwrap().ino();
        assert_eq!(aside_ino, planted_ino);
        let live: Vec<(String, f64)> = scrape
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .map(|s| (s.labels[0].1.to_string(), s.value))
            .collect();
        assert_eq!(live, [("w1".to_string(), 8.0)], "{how:?}");
        assert!(scrape.warnings.is_empty(), "{how:?}: {:?}", scrape.warnings);
    }
}

/// In a sticky directory a worker of another user cannot move the planted
/// file aside: it refuses it with an error naming the path, and leaves it
/// alone.
#[test]
fn hardening_planted_file_in_sticky_dir_is_refused() {
    let dir = shared_dir();
    let planted = plant(dir.path(), Plant::ForeignWorldWritable);
    let path = dir.path().to_path_buf();
    let worker = fork_worker(move || {
        // The worker runs as a third user (65533).
        nix::unistd::setgid(nix::unistd::Gid::from_raw(65533)).unwrap();
        nix::unistd::setuid(nix::unistd::Uid::from_raw(65533)).unwrap();
        prometheus_multiproc::set_worker_id("w1").unwrap();
        let w = MetricsDir::open(&path).unwrap();
        let e = Gauge::new_in(&w, "live", "Live.", GaugeMode::LiveAll).unwrap_err();
        assert!(e.is_untrusted_file(), "{e}");
        assert_eq!(e.path(), Some(path.join("gauge_liveall_w1.db").as_path()));
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
    });
    assert_eq!(
        wait_with_deadline(worker, Duration::from_secs(30)),
        Some(WaitStatus::Exited(worker, 0))
    );
    assert_eq!(dir.files(), ["gauge_liveall_w1.db"]);
    assert_eq!(planted.metadata().unwrap().len(), 64 * 1024);
}

// ---------------------------------------------------------------------------
// 4. A huge sparse predecessor file

/// Bytes this process has read through `read(2)`-like calls (`rchar`).
fn bytes_read_so_far() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// A worker continuing its slot's file finds a sparse file of 1 GiB (a few
/// KiB on disk) whose `used` is 1 GiB - 8: two real entries, then a hole.
/// It reads only up to the hole, moves the file aside as corrupt, and starts
/// a fresh one (before the fix it read the whole GiB into one allocation,
/// and hashed 44 million empty keys, under the slow lock).
#[test]
fn hardening_sparse_predecessor_is_not_read_whole() {
    const GIB: u64 = 1 << 30;
    let dir = Dir::new();
    let path = dir.path().join("counter_w9.db");
    let mut img = prometheus_multiproc::format::build_file(
        &[
            (b"[\"a\", \"a_total\", {}, \"A.\"]", 3.0, 0.0),
            (b"[\"b\", \"b_total\", {}, \"B.\"]", 4.0, 0.0),
        ],
        4096,
    );
    img[..4].copy_from_slice(&((GIB - 8) as i32).to_le_bytes());
    std::fs::write(&path, &img).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(GIB)
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let p = dir.path().to_path_buf();
    let worker = fork_worker(move || {
        let mut s = theirs;
        prometheus_multiproc::set_worker_id("w9").unwrap();
        let w = MetricsDir::open(&p).unwrap();
        let before = bytes_read_so_far();
        let c = Counter::new_in(&w, "c_total", "C.").unwrap();
        let read = bytes_read_so_far() - before;
        c.inc();
        s.write_all(&read.to_le_bytes()).unwrap();
    });
    let mut b = [0u8; 8];
    ours.read_exact(&mut b).unwrap();
    let read = u64::from_le_bytes(b);
    assert_eq!(
        wait_with_deadline(worker, Duration::from_secs(120)),
        Some(WaitStatus::Exited(worker, 0))
    );
    assert!(
        read < 1 << 20,
        "the worker read {read} bytes of the predecessor"
    );
    // Moved aside as corrupt; the fresh file holds only the new counter.
    let files = dir.files();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[1].starts_with("counter_w9.db.corrupt-"), "{files:?}");
    let scrape = MultiProcessCollector::new(dir.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    let got: Vec<String> = scrape
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| format!("{} {}", s.name, s.value))
        .collect();
    assert_eq!(got, ["c_total 1"]);
}

// ---------------------------------------------------------------------------
// 5. A full disk on the infallible path

/// A tmpfs of `size`, unmounted on drop. Fails the test (never skips) when
/// it cannot be mounted: the suite runs as root.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("pm-tmpfs-")
            .tempdir()
            .unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs (run the suite as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

fn early(i: usize) -> String {
    format!("early{i}")
}

/// On a 512 KiB tmpfs a worker creates 20,000 new series with
/// `with_label_values(..).inc()`. The disk fills up after a few thousand:
/// the rest are kept in memory (they count, but are not exported), one
/// warning is printed, and the worker exits 0; the series created before
/// are exported with their exact values (before the fix: the first series
/// that did not fit panicked).
#[test]
fn hardening_full_disk_with_label_values_keeps_working_in_memory() {
    let fs = Tmpfs::mount("512k");
    let dir = fs.0.path().to_path_buf();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("stderr");
    let (d, l) = (dir.clone(), log.clone());
    let worker = fork_worker(move || {
        let f = File::create(&l).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        // SAFETY: dup2 on two open descriptors of this single-threaded
        // forked worker; fd 2 now writes to the log file.
        let got = unsafe { libc::dup2(fd, 2) };
        assert_eq!(got, 2);
        let w = MetricsDir::open(&d).unwrap();
        let v = CounterVec::new_in(&w, Opts::new("fill_total", "Fill."), &["n"]).unwrap();
        let h = HistogramVec::new_in(&w, HistogramOpts::new("fill_seconds", "H."), &["n"]).unwrap();
        let g = GaugeVec::new_in(&w, Opts::new("fill_g", "G."), &["n"], GaugeMode::All).unwrap();
        let s = SummaryVec::new_in(&w, Opts::new("fill_s", "S."), &["n"]).unwrap();
        let e = EnumVec::new_in(&w, Opts::new("fill_e", "E."), &["n"], &["a", "b"]).unwrap();
        for i in 0..100 {
            v.with_label_values(&[&early(i)]).inc_by(i as f64 + 1.0);
        }
        h.with_label_values(&["early"]).observe(0.5);
        let pad = "x".repeat(40);
        for i in 0..20_000 {
            v.with_label_values(&[&format!("new{i}{pad}")]).inc();
        }
        // The disk is full now: the fallible path says so...
        let err = v
            .get_metric_with_label_values(&["not yet seen"])
            .unwrap_err();
        assert!(err.is_storage_full(), "{err}");
        // ...and series kept in memory count like any other, and stay.
        let last = v.with_label_values(&[&format!("new19999{pad}")]);
        last.inc();
        assert_eq!(last.get(), 2.0);
        assert_eq!(v.with_label_values(&[&format!("new19999{pad}")]).get(), 2.0);
        // Every kind of *Vec goes on, whether its series fit or not.
        for i in 0..2_000 {
            let n = format!("more{i}{pad}");
            h.with_label_values(&[&n]).observe(0.5);
            g.with_label_values(&[&n]).set(3.0);
            s.with_label_values(&[&n]).observe(2.0);
            e.with_label_values(&[&n]).state("b");
        }
        let n = format!("more1999{pad}");
        assert_eq!(h.with_label_values(&[&n]).get_sample_count(), 1);
        assert_eq!(g.with_label_values(&[&n]).get(), 3.0);
        assert_eq!(s.with_label_values(&[&n]).get_sample_sum(), 2.0);
        assert_eq!(e.with_label_values(&[&n]).get(), "b");
        // The series made before the disk filled up keep counting.
        for i in 0..100 {
            v.with_label_values(&[&early(i)]).inc();
        }
        // Wrong label counts still panic, like the prometheus crate.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            v.with_label_values(&["a", "b"])
        }));
        assert!(r.is_err());
    });
    let end = wait_with_deadline(worker, Duration::from_secs(600));
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(end, Some(WaitStatus::Exited(worker, 0)), "stderr: {stderr}");
    let warned = stderr
        .lines()
        .filter(|l| l.contains("kept in memory"))
        .count();
    assert_eq!(warned, 1, "stderr: {stderr}");
    let check = |samples: &[PySample], who: &str| {
        for i in 0..100 {
            let want = i as f64 + 2.0;
            assert_eq!(
                value_of(samples, "fill_total", &[("n", &early(i))]),
                Some(want),
                "{who}"
            );
        }
        let stored = samples.iter().filter(|x| x.name == "fill_total").count();
        assert!(stored > 100 && stored < 20_100, "{who}: {stored} series");
        assert_eq!(
            value_of(samples, "fill_seconds_count", &[("n", "early")]),
            Some(1.0)
        );
    };
    check(&py_samples(&dir), "prometheus_client");
    let scrape = MultiProcessCollector::new(&dir)
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    let ours: Vec<PySample> = scrape
        .families
        .iter()
        .flat_map(|f| {
            f.samples.iter().map(|s| PySample {
                family: f.name.clone(),
                typ: f.kind.as_str().to_string(),
                name: s.name.to_string(),
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value: s.value,
            })
        })
        .collect();
    check(&ours, "ours");
}
