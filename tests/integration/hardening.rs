//! Writer hardening (issue 12): forks under thread churn never hang, names
//! that are empty once their suffix is stripped are refused, files planted by
//! another user are never mapped, a huge predecessor file is not read whole,
//! and a full disk on the infallible path keeps the metric working in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    Counter, CounterVec, Enum, EnumVec, GaugeMode, GaugeVec, HistogramVec, Info, InfoVec,
    MetricsDir, MultiProcessCollector, SummaryVec,
};

use crate::common::{Dir, fork_worker, py_samples, value_of};

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
    let ours: Vec<String> = scrape
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| format!("{} {}", s.name, s.value))
        .collect();
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
