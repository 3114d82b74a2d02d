//! Python writes, we read — and a shared directory: our collector against prometheus_client's own `MultiProcessCollector` on the same files, byte for byte.

use std::collections::BTreeSet;
use std::path::Path;

use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    CounterVec, GaugeMode, GaugeVec, HistogramVec, MultiProcessCollector, SummaryVec,
    remove_dead_live_files,
};

use crate::common::{Dir, assert_same_body, in_worker, py_samples, random_dir, run_py};

fn ours_text(dir: &Path) -> String {
    let c = MultiProcessCollector::new(dir).unwrap();
    let mut out = Vec::new();
    let scrape = c.encode_text(&mut out).unwrap();
    assert!(
        scrape.warnings.is_empty(),
        "unexpected warnings: {:?}",
        scrape.warnings
    );
    String::from_utf8(out).unwrap()
}

fn ours_openmetrics(dir: &Path) -> String {
    let c = MultiProcessCollector::new(dir).unwrap();
    let mut out = Vec::new();
    c.encode_openmetrics(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn python_text(dir: &Path, format: &str) -> String {
    run_py(
        "py_collect.py",
        &[dir.to_str().unwrap(), "--format", format],
    )
}

/// Text and OpenMetrics bodies of our collector (with as many merging
/// threads as it chooses; the command's tests vary the number) and of
/// prometheus_client on `dir`, compared byte for byte.
fn assert_all_bodies_match_python(dir: &Path) {
    let py_text = python_text(dir, "text");
    let py_om = python_text(dir, "openmetrics");
    let c = MultiProcessCollector::new(dir).unwrap();
    let (mut text, mut om) = (Vec::new(), Vec::new());
    c.encode_text(&mut text).unwrap();
    c.encode_openmetrics(&mut om).unwrap();
    assert_same_body(&String::from_utf8(text).unwrap(), &py_text);
    assert_same_body(&String::from_utf8(om).unwrap(), &py_om);
}

#[test]
fn python_writes_every_type_we_read_identically() {
    let d = Dir::new();
    run_py("py_write.py", &[d.path().to_str().unwrap(), "all"]);
    let ours = ours_text(d.path());
    assert_all_bodies_match_python(d.path());
    assert!(ours_openmetrics(d.path()).ends_with("# EOF\n"));
    // Spot checks on values Python wrote (3 workers, k = 1..3).
    assert!(ours.contains("mp_errors_total 12.0\n"), "{ours}");
    assert!(ours.contains("# HELP mp_bytes_sent_total Bytes\\\\sent\\nover the wire.\n"));
    // Every gauge mode is present.
    for m in GaugeMode::ALL {
        assert!(
            ours.contains(&format!("# TYPE mp_gauge_{} gauge\n", m.as_str())),
            "{m}"
        );
    }
}

#[test]
fn python_floats_format_identically() {
    let d = Dir::new();
    run_py("py_write.py", &[d.path().to_str().unwrap(), "floats"]);
    assert!(ours_text(d.path()).contains("1e+20"));
    assert_all_bodies_match_python(d.path());
}

#[test]
fn samples_and_values_match_python() {
    let d = Dir::new();
    run_py("py_write.py", &[d.path().to_str().unwrap(), "all"]);
    let py = py_samples(d.path());
    let scrape = MultiProcessCollector::new(d.path())
        .unwrap()
        .collect_families()
        .unwrap();
    let mut ours = Vec::new();
    for f in &scrape.families {
        for s in &f.samples {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.sort();
            ours.push((s.name.to_string(), labels, s.value));
        }
    }
    assert_eq!(ours.len(), py.len());
    for p in &py {
        let found = ours
            .iter()
            .find(|(n, l, _)| *n == p.name && *l == p.labels)
            .unwrap_or_else(|| panic!("missing {} {:?}", p.name, p.labels));
        assert!(
            found.2 == p.value || (found.2.is_nan() && p.value.is_nan()),
            "{} {:?}: ours {} python {}",
            p.name,
            p.labels,
            found.2,
            p.value
        );
    }
}

#[test]
fn shared_directory_rust_and_python_workers() {
    let d = Dir::new();
    // Python workers write first...
    run_py("py_write.py", &[d.path().to_str().unwrap(), "simple"]);
    // ... then Rust workers write the same families with the same help.
    let w = d.writer();
    let py = py_samples(d.path());
    let fams: BTreeSet<(String, String)> = py
        .iter()
        .map(|s| (s.family.clone(), s.typ.clone()))
        .collect();
    assert!(!fams.is_empty());
    let reqs = CounterVec::new_in(
        &w,
        Opts::new("rust_requests_total", "Rust requests."),
        &["path"],
    )
    .unwrap();
    let lat = HistogramVec::new_in(
        &w,
        HistogramOpts::new("rust_latency_seconds", "Latency."),
        &["path"],
    )
    .unwrap();
    let sizes = SummaryVec::new_in(&w, Opts::new("rust_size", "Sizes."), &["path"]).unwrap();
    let temp = GaugeVec::new_in(
        &w,
        Opts::new("rust_temp", "Temp."),
        &["room"],
        GaugeMode::Max,
    )
    .unwrap();
    for i in 0..3 {
        in_worker(|| {
            reqs.with_label_values(&["/a\"b"]).inc_by(i as f64 + 1.0);
            lat.with_label_values(&["/a\"b"]).observe(0.2 * i as f64);
            sizes.with_label_values(&["/é"]).observe(10.0);
            temp.with_label_values(&["😀"]).set(20.0 + i as f64);
        });
    }
    // Both collectors agree on the mixed directory, byte for byte.
    let ours = ours_text(d.path());
    assert_all_bodies_match_python(d.path());
    assert!(
        ours.contains("rust_requests_total{path=\"/a\\\"b\"} 6.0\n"),
        "{ours}"
    );
    assert!(ours.contains("rust_temp{room=\"😀\"} 22.0\n"), "{ours}");
    // And Python's view of our files has the values we wrote.
    let after = py_samples(d.path());
    assert!(after.len() > py.len());
}

#[test]
fn our_writer_every_gauge_mode_both_collectors_agree() {
    let d = Dir::new();
    let w = d.writer();
    let gauges: Vec<GaugeVec> = GaugeMode::ALL
        .iter()
        .map(|&m| {
            GaugeVec::new_in(&w, Opts::new(format!("rg_{m}"), "Rust gauge."), &["k"], m).unwrap()
        })
        .collect();
    for v in [1.5, -2.0, 8.0] {
        in_worker(|| {
            for g in &gauges {
                g.with_label_values(&["a"]).set(v);
                g.with_label_values(&["b"]).set(v * 2.0);
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
    // The workers exited without mark_process_dead: our collector already
    // leaves out their live gauges (their locks are free); Python would count
    // them until the files are removed. Remove them, and both agree.
    let before = ours_text(d.path());
    assert!(!before.contains("rg_livesum{"), "{before}");
    assert!(before.contains("rg_sum{k=\"a\"} 7.5\n"), "{before}");
    let removed = remove_dead_live_files(d.path()).unwrap();
    assert_eq!(removed.len(), 3 * 5, "{removed:?}");
    assert_all_bodies_match_python(d.path());
}

/// Directories in many shapes, merged on one thread (few files) and in
/// parallel (32 files or more, on a machine with two CPUs or more): the
/// bodies are prometheus_client's, byte for byte (prometheus_client orders
/// families by their first entry in directory listing order, and samples by
/// the first entry of their label set, then their own).
#[test]
fn random_directories_come_out_in_python_order() {
    for (seed, files) in [(1, 5), (2, 40), (3, 90), (4, 64)] {
        let d = Dir::new();
        random_dir(d.path(), 0x9e37_79b9_7f4a_7c15 ^ seed, files);
        assert_all_bodies_match_python(d.path());
    }
}

/// Number formatting against Python itself: `repr` (sample values) and
/// prometheus_client's `floatToGoString` (`le` bounds) of 100,000
/// pseudo-random doubles of every magnitude, whole numbers, and values
/// halfway between two shortest spellings.
#[test]
fn float_formatting_matches_python() {
    use prometheus_multiproc::format::{float_to_go_string, python_repr};
    let mut values: Vec<f64> = vec![
        0.0,
        -0.0,
        1.6582067800885623e15,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        1e16,
        9007199254740993.0,
        0.1 + 0.2,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..100_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        values.push(match i % 4 {
            // Any bit pattern.
            0 => f64::from_bits(x),
            // Whole numbers, and sums of decimal fractions like 0.1.
            1 => (x % 100_000_000_000_000_000) as f64,
            2 => (x % 1_000_000) as f64 / 1000.0,
            // Values near 1e-4, 1e6 and 1e16, where the layout changes.
            _ => 10f64.powi([-4, 6, 16][(x % 3) as usize]) * (0.5 + (x % 1000) as f64 / 1000.0),
        });
    }
    let dir = Dir::new();
    let input = dir.tmp.path().join("floats.txt");
    let lines: String = values
        .iter()
        .map(|v| format!("{:016x}\n", v.to_bits()))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let py = run_py("py_floats.py", &[input.to_str().unwrap()]);
    let mut checked = 0;
    for (v, line) in values.iter().zip(py.lines()) {
        let (repr, go) = line.split_once('\t').unwrap();
        assert_eq!(python_repr(*v), repr, "repr of {v:e}");
        assert_eq!(float_to_go_string(*v), go, "floatToGoString of {v:e}");
        checked += 1;
    }
    assert_eq!(checked, values.len());
}
