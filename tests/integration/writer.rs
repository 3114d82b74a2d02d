//! We write, the real prometheus_client reads: forked Rust workers, threads, growth, every gauge mode, pid reuse, worker ids, mark_process_dead.

use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    ArgumentKind, Counter, CounterVec, Gauge, GaugeMode, GaugeVec, Histogram, HistogramVec,
    Summary, SummaryVec, format, mark_process_dead_in,
};

use crate::common::{Dir, in_worker, py_samples, run_py, value_of};

const TRICKY: [&str; 6] = [
    "plain",
    "quote\"back\\slash",
    "new\nline\ttab",
    "café 中文",
    "emoji 😀",
    "",
];

#[test]
fn forked_workers_every_type_read_by_python() {
    let d = Dir::new();
    let w = d.writer();
    let reqs = CounterVec::new_in(
        &w,
        Opts::new("requests_total", "Requests \\ served\nby path."),
        &["path"],
    )
    .unwrap();
    let plain = Counter::new_in(&w, "events", "Events.").unwrap();
    let lat = HistogramVec::new_in(
        &w,
        HistogramOpts::new("latency_seconds", "Latency.").buckets(vec![0.1, 1.0, 1e7]),
        &["path"],
    )
    .unwrap();
    let size = SummaryVec::new_in(&w, Opts::new("size_bytes", "Sizes."), &["path"]).unwrap();
    let workers = 3;
    let mut pids = Vec::new();
    for i in 0..workers {
        pids.push(in_worker(|| {
            for (j, p) in TRICKY.iter().enumerate() {
                reqs.with_label_values(&[p]).inc_by((i * 10 + j) as f64);
                lat.with_label_values(&[p]).observe(0.05);
                lat.with_label_values(&[p]).observe(5.0 + i as f64);
                size.with_label_values(&[p]).observe(100.0);
            }
            plain.inc();
        }));
    }
    let s = py_samples(d.path());
    for (j, p) in TRICKY.iter().enumerate() {
        let want: f64 = (0..workers).map(|i| (i * 10 + j) as f64).sum();
        assert_eq!(
            value_of(&s, "requests_total", &[("path", p)]),
            Some(want),
            "{p:?}"
        );
        let b = |le| value_of(&s, "latency_seconds_bucket", &[("path", p), ("le", le)]);
        assert_eq!(b("0.1"), Some(3.0));
        assert_eq!(b("1.0"), Some(3.0));
        assert_eq!(b("1e+07"), Some(6.0));
        assert_eq!(b("+Inf"), Some(6.0));
        assert_eq!(
            value_of(&s, "latency_seconds_count", &[("path", p)]),
            Some(6.0)
        );
        assert_eq!(
            value_of(&s, "latency_seconds_sum", &[("path", p)]),
            Some(0.05 * 3.0 + 5.0 + 6.0 + 7.0)
        );
        assert_eq!(value_of(&s, "size_bytes_count", &[("path", p)]), Some(3.0));
        assert_eq!(value_of(&s, "size_bytes_sum", &[("path", p)]), Some(300.0));
    }
    assert_eq!(value_of(&s, "events_total", &[]), Some(3.0));
    // The parent never wrote: its files hold zeros, and nothing was counted twice.
    assert_eq!(reqs.with_label_values(&["plain"]).get(), 0.0);
    // Every key we wrote equals Python's json.dumps(json.loads(key), sort_keys=True).
    let report = run_py("py_check_keys.py", &[d.path().to_str().unwrap()]);
    assert!(report.contains("\"mismatches\": []"), "{report}");
}

/// UTF-8 metric and label names, as prometheus_client 0.26 accepts them:
/// written by forked workers, keys in Python's canonical form, and merged by
/// Python to the same values.
#[test]
fn utf8_names_as_prometheus_client_accepts_them() {
    let d = Dir::new();
    let w = d.writer();
    let labels = ["rou.te", "ü", "1x", ""];
    let c = CounterVec::new_in(&w, Opts::new("http.requests", "Requests."), &labels).unwrap();
    let g = Gauge::new_in(&w, "temp.°c 😀", "T.", GaugeMode::Sum).unwrap();
    for _ in 0..3 {
        in_worker(|| {
            c.with_label_values(&["/a", "q\"", "x", "e"]).inc();
            g.add(1.5);
        });
    }
    let report = run_py("py_check_keys.py", &[d.path().to_str().unwrap()]);
    assert!(report.contains("\"mismatches\": []"), "{report}");
    let s = py_samples(d.path());
    let route = [("rou.te", "/a"), ("ü", "q\""), ("1x", "x"), ("", "e")];
    assert_eq!(value_of(&s, "http.requests_total", &route), Some(3.0));
    assert_eq!(value_of(&s, "temp.°c 😀", &[]), Some(4.5));
}

#[test]
fn keys_are_python_json_dumps() {
    // Checked against Python's json.dumps(..., sort_keys=True) output.
    assert_eq!(
        format::encode_key("m", "m_total", &[("z", "1"), ("a", "é😀\u{7f}")], "h\n"),
        r#"["m", "m_total", {"a": "\u00e9\ud83d\ude00\u007f", "z": "1"}, "h\n"]"#
    );
}

#[test]
fn threads_lose_nothing() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "hits_total", "Hits.").unwrap();
    let h =
        Histogram::with_opts_in(&w, HistogramOpts::new("obs", "Obs.").buckets(vec![1.0])).unwrap();
    let g = Gauge::new_in(&w, "level", "Level.", GaugeMode::Sum).unwrap();
    in_worker(|| {
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..20_000 {
                        c.inc();
                        h.observe(0.5);
                        g.inc();
                    }
                });
            }
        });
    });
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "hits_total", &[]), Some(160_000.0));
    assert_eq!(value_of(&s, "obs_count", &[]), Some(160_000.0));
    assert_eq!(value_of(&s, "obs_sum", &[]), Some(80_000.0));
    assert_eq!(value_of(&s, "level", &[]), Some(160_000.0));
}

#[test]
fn fork_gives_the_child_its_own_files() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "jobs_total", "Jobs.").unwrap();
    let parent = std::process::id() as i32;
    // The parent writes first, in a worker standing in for the supervisor.
    let sup = in_worker(|| {
        c.inc_by(5.0);
        let child = in_worker(|| {
            // The child starts from its own (new) file: zero.
            assert_eq!(c.get(), 0.0);
            c.inc_by(2.0);
            assert_eq!(c.get(), 2.0);
        });
        // Nothing the child wrote landed in our file.
        assert_eq!(c.get(), 5.0);
        let _ = child;
    });
    let files = d.files();
    assert!(files.contains(&format!("counter_{sup}.db")), "{files:?}");
    // The test process created the counter (and its file) but never wrote.
    assert!(files.contains(&format!("counter_{parent}.db")), "{files:?}");
    assert_eq!(c.get(), 0.0);
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "jobs_total", &[]), Some(7.0));
}

#[test]
fn growth_past_64k() {
    let d = Dir::new();
    let w = d.writer();
    let c = CounterVec::new_in(&w, Opts::new("series_total", "Many series."), &["n"]).unwrap();
    let n = 5_000;
    let pid = in_worker(|| {
        for i in 0..n {
            c.with_label_values(&[&format!("series-{i}")])
                .inc_by(i as f64);
        }
    });
    let size = std::fs::metadata(d.path().join(format!("counter_{pid}.db")))
        .unwrap()
        .len();
    assert!(size > 65536, "file did not grow: {size}");
    assert!(size.is_power_of_two(), "capacity doubles: {size}");
    let s = py_samples(d.path());
    assert_eq!(s.len(), n);
    for i in [0, 1, 2_500, n - 1] {
        assert_eq!(
            value_of(&s, "series_total", &[("n", &format!("series-{i}"))]),
            Some(i as f64)
        );
    }
}

#[test]
fn every_gauge_mode_merges_like_python() {
    let d = Dir::new();
    let w = d.writer();
    let gauges: Vec<(GaugeMode, GaugeVec)> = GaugeMode::ALL
        .iter()
        .map(|&m| {
            let name = format!("g_{}", m.as_str());
            (
                m,
                GaugeVec::new_in(&w, Opts::new(name, "Gauge."), &["k"], m).unwrap(),
            )
        })
        .collect();
    let values = [3.0, -1.5, 7.25];
    let mut pids = Vec::new();
    for v in values {
        pids.push(in_worker(|| {
            for (_, g) in &gauges {
                g.with_label_values(&["x"]).set(v);
            }
        }));
        // Distinct timestamps for the most-recent modes.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let s = py_samples(d.path());
    for (m, _) in &gauges {
        let name = format!("g_{}", m.as_str());
        match m {
            GaugeMode::All | GaugeMode::LiveAll => {
                for (pid, v) in pids.iter().zip(values) {
                    assert_eq!(
                        value_of(&s, &name, &[("k", "x"), ("pid", &pid.to_string())]),
                        Some(v),
                        "{name}"
                    );
                }
            }
            GaugeMode::Min | GaugeMode::LiveMin => {
                assert_eq!(value_of(&s, &name, &[("k", "x")]), Some(-1.5))
            }
            GaugeMode::Max | GaugeMode::LiveMax => {
                assert_eq!(value_of(&s, &name, &[("k", "x")]), Some(7.25))
            }
            GaugeMode::Sum | GaugeMode::LiveSum => {
                assert_eq!(value_of(&s, &name, &[("k", "x")]), Some(8.75))
            }
            GaugeMode::MostRecent | GaugeMode::LiveMostRecent => {
                assert_eq!(value_of(&s, &name, &[("k", "x")]), Some(7.25), "{name}")
            }
            other => panic!("no expectation for gauge mode {other:?}"),
        }
    }
    // mark_process_dead removes exactly the live files of that pid.
    let before = d.files();
    mark_process_dead_in(d.path(), pids[2]).unwrap();
    let after = d.files();
    let removed: Vec<&String> = before.iter().filter(|f| !after.contains(f)).collect();
    let mut want: Vec<String> = GaugeMode::ALL
        .iter()
        .filter(|m| m.is_live())
        .map(|m| format!("gauge_{}_{}.db", m.as_str(), pids[2]))
        .collect();
    want.sort();
    assert_eq!(removed, want.iter().collect::<Vec<_>>());
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "g_livemax", &[("k", "x")]), Some(3.0));
    assert_eq!(value_of(&s, "g_max", &[("k", "x")]), Some(7.25));
    assert_eq!(value_of(&s, "g_livesum", &[("k", "x")]), Some(1.5));
}

#[test]
fn most_recent_gauges_allow_inc_with_a_timestamp() {
    let d = Dir::new();
    let w = d.writer();
    let g = Gauge::new_in(&w, "temp", "Temp.", GaugeMode::MostRecent).unwrap();
    in_worker(|| {
        g.set(10.0);
        g.inc();
        assert_eq!(g.get(), 11.0);
    });
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "temp", &[]), Some(11.0));
}

#[test]
fn pid_reuse_continues_the_predecessor() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "reused_total", "Reused.").unwrap();
    let k = format::encode_key("reused", "reused_total", &[], "Reused.");
    let dir = d.path().to_path_buf();
    in_worker(|| {
        // A predecessor with our pid (here: Python's layout, no lock marker)
        // left 5.0 in our file.
        let img = format::build_file(&[(k.as_bytes(), 5.0, 0.0)], format::INITIAL_SIZE);
        std::fs::write(dir.join(format!("counter_{}.db", std::process::id())), img).unwrap();
        c.inc();
        assert_eq!(c.get(), 6.0);
    });
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "reused_total", &[]), Some(6.0));
}

#[test]
fn worker_id_keeps_one_file_per_slot() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "slot_total", "Slot.").unwrap();
    for _ in 0..3 {
        in_worker(|| {
            prometheus_multiproc::set_worker_id("w7").unwrap();
            c.inc();
        });
    }
    // The test process's own file (from creating the counter) and one file
    // for slot w7, however many workers used it.
    let files = d.files();
    assert_eq!(
        files,
        vec![
            format!("counter_{}.db", std::process::id()),
            "counter_w7.db".to_string()
        ]
    );
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "slot_total", &[]), Some(3.0));
}

#[test]
fn bad_arguments_are_errors() {
    let d = Dir::new();
    let w = d.writer();
    // Names are UTF-8 but not empty, as in prometheus_client 0.26; a
    // counter's `_total` is not a name by itself.
    for bad in ["", "_total"] {
        assert!(Counter::new_in(&w, bad, "x").unwrap_err().is_invalid_name());
    }
    assert!(
        CounterVec::new_in(&w, Opts::new("ok", "x"), &["__reserved"])
            .unwrap_err()
            .is_invalid_name()
    );
    assert!(
        HistogramVec::new_in(&w, HistogramOpts::new("h", "x"), &["le"])
            .unwrap_err()
            .is_invalid_name()
    );
    assert_eq!(
        Histogram::with_opts_in(&w, HistogramOpts::new("h", "x").buckets(vec![2.0, 1.0]))
            .unwrap_err()
            .argument_kind(),
        Some(ArgumentKind::Buckets)
    );
    let v = CounterVec::new_in(&w, Opts::new("v_total", "x"), &["a", "b"]).unwrap();
    assert!(
        v.get_metric_with_label_values(&["1"])
            .unwrap_err()
            .is_label_count()
    );
    let r = std::panic::catch_unwind(|| v.with_label_values(&["1"]));
    assert!(r.is_err(), "with_label_values panics on a wrong count");
    let c = Counter::new_in(&w, "neg_total", "x").unwrap();
    assert_eq!(
        c.try_inc_by(-1.0).unwrap_err().argument_kind(),
        Some(ArgumentKind::NegativeIncrement)
    );
    assert!(c.try_inc_by(f64::NAN).is_err());
    assert_eq!(c.get(), 0.0);
    let s = Summary::new_in(&w, "s", "x").unwrap();
    s.observe(1.0);
    assert_eq!(s.get_sample_count(), 1);
}

#[test]
fn env_errors_name_the_variable_and_path() {
    let d = Dir::new();
    let dir = d.path().to_path_buf();
    // In a forked worker, so that changing the environment touches no other test.
    in_worker(|| {
        // SAFETY: the forked child is single-threaded.
        unsafe {
            std::env::remove_var("PROMETHEUS_MULTIPROC_DIR");
            std::env::remove_var("prometheus_multiproc_dir");
        }
        let e = Counter::new("x_total", "x").unwrap_err();
        assert!(e.is_env_not_set(), "{e}");
        assert!(e.to_string().contains("PROMETHEUS_MULTIPROC_DIR"), "{e}");
        // SAFETY: as above.
        unsafe { std::env::set_var("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/pm-dir") };
        let e = Counter::new("x_total", "x").unwrap_err();
        assert!(e.is_bad_dir());
        let msg = e.to_string();
        assert!(
            msg.contains("PROMETHEUS_MULTIPROC_DIR") && msg.contains("/nonexistent/pm-dir"),
            "{msg}"
        );
        // The deprecated lower-case variable is honoured.
        // SAFETY: as above.
        unsafe {
            std::env::remove_var("PROMETHEUS_MULTIPROC_DIR");
            std::env::set_var("prometheus_multiproc_dir", &dir);
        }
        Counter::new("legacy_total", "x").unwrap().inc();
    });
    let s = py_samples(d.path());
    assert_eq!(value_of(&s, "legacy_total", &[]), Some(1.0));
    let e = prometheus_multiproc::MetricsDir::open("/nonexistent/pm-dir").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/pm-dir"), "{e}");
    assert!(e.is_bad_dir());
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Counter>();
    check::<CounterVec>();
    check::<Gauge>();
    check::<GaugeVec>();
    check::<Histogram>();
    check::<HistogramVec>();
    check::<Summary>();
    check::<SummaryVec>();
    check::<prometheus_multiproc::MetricsDir>();
    check::<prometheus_multiproc::Error>();
}
