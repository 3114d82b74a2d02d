//! Duplicate metrics: refused within a process (as prometheus_client's `DuplicateTimeseries`), warned about across processes with the output left as prometheus_client's.

use prometheus::Opts;
use prometheus_multiproc::{
    CounterVec, FamilyKind, Gauge, GaugeMode, MultiProcessCollector, WarningKind,
};

use crate::common::{Dir, in_worker, run_py};

/// The case: two `CounterVec`s named `dup_total` with other labels,
/// then a `Gauge` of the same name, in one process.
#[test]
fn conflicting_metrics_in_one_process_are_refused() {
    let d = Dir::new();
    let dir = d.writer();
    let first = CounterVec::new_in(&dir, Opts::new("dup_total", "Dups."), &["a"]).unwrap();
    let second = CounterVec::new_in(&dir, Opts::new("dup_total", "Dups."), &["b"]).unwrap_err();
    assert!(second.is_duplicate(), "{second}");
    let gauge = Gauge::new_in(&dir, "dup_total", "Dups.", GaugeMode::All).unwrap_err();
    assert!(gauge.is_duplicate(), "{gauge}");
    assert_eq!(gauge.duplicate_names(), ["dup_total"]);
    // The same definition again is the same metric.
    let again = CounterVec::new_in(&dir, Opts::new("dup_total", "Dups."), &["a"]).unwrap();
    first.with_label_values(&["x"]).inc();
    again.with_label_values(&["x"]).inc();
    assert_eq!(first.with_label_values(&["x"]).get(), 2.0);
}

/// The text split into family blocks (each from its `# HELP` line), sorted.
fn family_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        match blocks.last_mut() {
            Some(b) if !line.starts_with("# HELP ") => b.push_str(line),
            _ => blocks.push(line.to_string()),
        }
    }
    blocks.sort();
    blocks
}

/// Two processes define `dup_total` differently (a counter `dup` and a
/// gauge `dup_total`): nothing can refuse that, so the collector prints
/// exactly what prometheus_client prints and warns, naming the files.
#[test]
fn a_cross_process_conflict_scrapes_like_python_and_warns() {
    let d = Dir::new();
    let counter_pid = in_worker(|| {
        let c = CounterVec::new_in(&d.writer(), Opts::new("dup_total", "Dups."), &["a"]).unwrap();
        c.with_label_values(&["1"]).inc_by(3.0);
    });
    let gauge_pid = in_worker(|| {
        Gauge::new_in(&d.writer(), "dup_total", "Dups.", GaugeMode::All)
            .unwrap()
            .set(5.0);
    });
    let mut ours = Vec::new();
    let scrape = MultiProcessCollector::new(d.path())
        .unwrap()
        .encode_text(&mut ours)
        .unwrap();
    let ours = String::from_utf8(ours).unwrap();
    let python = run_py(
        "py_collect.py",
        &[d.path().to_str().unwrap(), "--format", "text"],
    );
    // Family for family, byte for byte; families come in name order here
    // and in directory order from Python, as everywhere in this suite.
    assert_eq!(
        family_blocks(&ours),
        family_blocks(&python),
        "{ours}\n{python}"
    );
    assert_eq!(ours.matches("# TYPE dup_total ").count(), 2, "{ours}");

    assert_eq!(scrape.warnings.len(), 1, "{:?}", scrape.warnings);
    let WarningKind::NameClash { series, metrics } = &scrape.warnings[0].kind else {
        panic!("{:?}", scrape.warnings);
    };
    assert_eq!(series, "dup_total");
    // Sorted by name: the pair comes in the families' order, which is the
    // directory's listing order (as in Python), not something a test sets.
    let mut seen: Vec<(FamilyKind, &str, &[String])> = metrics
        .iter()
        .map(|m| (m.kind, m.name.as_str(), m.files.as_slice()))
        .collect();
    seen.sort_by_key(|&(_, name, _)| name);
    assert_eq!(
        seen,
        [
            (
                FamilyKind::Counter,
                "dup",
                &[format!("counter_{counter_pid}.db")][..]
            ),
            (
                FamilyKind::Gauge,
                "dup_total",
                &[format!("gauge_all_{gauge_pid}.db")][..]
            ),
        ]
    );
    // One line for people, naming both files.
    let line = scrape.warnings[0].to_string();
    assert!(
        line.contains(&format!("gauge_all_{gauge_pid}.db")),
        "{line}"
    );
}
