//! `prefork::Supervisor` in a process of its own: this test binary has no
//! harness, so it runs on one thread, as a supervisor must (the
//! multi-threaded case is one of the scenarios). Each scenario forks real
//! workers; none asserts on timing, only on what happened.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::unistd::{Pid, getpid, getppid};
use prometheus_multiproc::prefork::{Event, ExitReason, Supervisor};
use prometheus_multiproc::prometheus::Opts;
use prometheus_multiproc::{CounterVec, Gauge, GaugeMode, MetricsDir, MultiProcessCollector};

fn main() {
    let scenarios: [(&str, fn()); 5] = [
        ("crash loop backs off", crash_loop_backs_off),
        (
            "panicking worker exits with 101",
            panicking_worker_exits_101,
        ),
        (
            "replacement continues the slot's files",
            replacement_continues_the_slots_files,
        ),
        (
            "stop escalates to SIGKILL after the timeout",
            stop_escalates_to_sigkill,
        ),
        ("refuses to fork with threads", refuses_to_fork_with_threads),
    ];
    for (name, f) in scenarios {
        eprint!("prefork_supervisor: {name} ... ");
        f();
        eprintln!("ok");
    }
}

/// Records every event; `stop_after` sends SIGTERM to this process when it
/// returns true for the events so far.
fn recorder(
    stop_after: impl Fn(&[Event]) -> bool + 'static,
) -> (Rc<RefCell<Vec<Event>>>, impl FnMut(&Event) + 'static) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&events);
    let mut sent = false;
    let f = move |e: &Event| {
        sink.borrow_mut().push(e.clone());
        if !sent && stop_after(&sink.borrow()) {
            sent = true;
            kill(getpid(), Signal::SIGTERM).unwrap();
        }
    };
    (events, f)
}

fn exits(events: &[Event]) -> Vec<(ExitReason, Option<Duration>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Exited {
                reason, restart_in, ..
            } => Some((*reason, *restart_in)),
            _ => None,
        })
        .collect()
}

fn supervisor(dir: &Path, workers: usize) -> Supervisor {
    Supervisor::bind("127.0.0.1:0")
        .unwrap()
        .workers(workers)
        .metrics_dir(dir)
}

/// Every worker fails at once: the n-th restart of the slot waits
/// 10 ms * 2^(n-1), at most 40 ms.
fn crash_loop_backs_off() {
    let tmp = tempfile::tempdir().unwrap();
    let (events, on_event) = recorder(|ev| exits(ev).len() >= 5);
    let summary = supervisor(tmp.path(), 1)
        .restart_backoff(
            Duration::from_secs(3600),
            Duration::from_millis(10),
            Duration::from_millis(40),
        )
        .on_event(on_event)
        .run(|_| Err("configuration is broken"))
        .unwrap();
    let ex = exits(&events.borrow());
    let ms = |n| Some(Duration::from_millis(n));
    let delays: Vec<_> = ex.iter().take(5).map(|(_, d)| *d).collect();
    assert_eq!(delays, [ms(10), ms(20), ms(40), ms(40), ms(40)], "{ex:?}");
    assert!(ex.iter().all(|(r, _)| *r == ExitReason::Code(1)), "{ex:?}");
    assert!(summary.replaced >= 5, "{summary:?}");
    assert!(summary.started >= 5, "{summary:?}");
}

fn panicking_worker_exits_101() {
    let tmp = tempfile::tempdir().unwrap();
    let (events, on_event) = recorder(|ev| !exits(ev).is_empty());
    supervisor(tmp.path(), 1)
        .on_event(on_event)
        .run(|_| -> Result<(), String> {
            std::panic::set_hook(Box::new(|_| {}));
            panic!("worker bug")
        })
        .unwrap();
    assert_eq!(exits(&events.borrow())[0].0, ExitReason::Code(101));
}

/// Metrics created in the supervisor before the fork, written by workers
/// that are replaced: the replacements continue their slot's files (one
/// file set per slot), the counts are exact, and no live gauge is left.
fn replacement_continues_the_slots_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = MetricsDir::open(tmp.path()).unwrap();
    let jobs = CounterVec::new_in(&dir, Opts::new("jobs_total", "Jobs."), &["slot"]).unwrap();
    let busy = Gauge::new_in(&dir, "busy", "Busy workers.", GaugeMode::LiveSum).unwrap();
    busy.set(0.0); // the supervisor's own live file, removed by `run`
    let (events, on_event) = recorder(|ev| exits(ev).len() >= 6);
    let summary = supervisor(tmp.path(), 2)
        .restart_backoff(Duration::ZERO, Duration::ZERO, Duration::ZERO)
        .on_event(on_event)
        .run(|w| -> Result<(), String> {
            // A SIGTERM from the stop waits until this incarnation is done,
            // so every increment belongs to an exit with code 0.
            block_sigterm().map_err(|e| e.to_string())?;
            busy.inc();
            jobs.with_label_values(&[&w.index().to_string()])
                .inc_by(10.0);
            Ok(())
        })
        .unwrap();
    let clean_exits = exits(&events.borrow())
        .iter()
        .filter(|(r, _)| *r == ExitReason::Code(0))
        .count();
    assert!(clean_exits >= 6, "{:?}", events.borrow());
    let mut text = Vec::new();
    MultiProcessCollector::new(tmp.path())
        .unwrap()
        .encode_text(&mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("jobs_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    // CAST: small whole numbers.
    assert_eq!(total, 10.0 * clean_exits as f64, "{text}");
    assert!(
        !text.contains("\nbusy "),
        "dead workers' live gauges: {text}"
    );
    let mut files: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["counter_w0.db", "counter_w1.db"], "{summary:?}");
}

/// Workers that ignore SIGTERM (blocked) are SIGKILLed after the timeout.
fn stop_escalates_to_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tempfile::tempdir().unwrap();
    let ready_dir = ready.path().to_path_buf();
    let (events, on_event) = recorder(|_| false);
    let summary = supervisor(tmp.path(), 2)
        .shutdown_timeout(Duration::from_millis(200))
        .on_event(on_event)
        .run(|w| -> Result<(), std::io::Error> {
            block_sigterm()?;
            std::fs::write(ready_dir.join(w.index().to_string()), b"")?;
            // The last worker to be ready asks the supervisor to stop.
            if std::fs::read_dir(&ready_dir)?.count() == 2 {
                kill(getppid(), Signal::SIGTERM)?;
            }
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap();
    assert_eq!(
        (summary.started, summary.replaced, summary.killed),
        (2, 0, 2)
    );
    let ev = events.borrow();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Killed { .. }))
            .count(),
        2
    );
    let ex = exits(&ev);
    assert_eq!(ex.len(), 2, "{ev:?}");
    assert!(
        ex.iter()
            .all(|(r, d)| *r == ExitReason::Signal(libc::SIGKILL) && d.is_none()),
        "{ev:?}"
    );
    // Reaped: no child of this process is left.
    assert_eq!(
        nix::sys::wait::waitpid(Pid::from_raw(-1), None),
        Err(nix::errno::Errno::ECHILD)
    );
}

fn block_sigterm() -> nix::Result<()> {
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&term), None)
}

fn refuses_to_fork_with_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || rx.recv());
    let (events, on_event) = recorder(|_| false);
    let err = supervisor(tmp.path(), 2)
        .on_event(on_event)
        .run(|_| Ok::<(), String>(()))
        .unwrap_err();
    assert!(err.is_multi_threaded(), "{err}");
    assert!(events.borrow().is_empty(), "forked anyway");
    drop(tx);
    helper.join().unwrap().unwrap_err();
}
