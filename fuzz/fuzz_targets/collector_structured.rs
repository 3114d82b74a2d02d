//! Well-formed files with arbitrary content: keys built with `encode_key`
//! from arbitrary names, labels, help texts and values, spread over several
//! files of any kind. Reaches the merge rules (histogram bounds, gauge modes,
//! type conflicts, duplicate series) that random bytes rarely get to.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prometheus_multiproc::format::{LOCK_MARKER, build_file};
use prometheus_multiproc::format::encode_key;
use prometheus_multiproc::format::FileKind;
use prometheus_multiproc::{GaugeMode, MultiProcessCollector};

#[derive(Arbitrary, Debug)]
struct Series {
    metric: String,
    suffix: u8,
    labels: Vec<(String, String)>,
    le: u8,
    help: String,
    value: f64,
    timestamp: f64,
}

#[derive(Arbitrary, Debug)]
struct File {
    kind: u8,
    pid: u8,
    marker: bool,
    series: Vec<Series>,
}

const SUFFIXES: [&str; 8] = [
    "", "_total", "_bucket", "_sum", "_count", "_created", "_info", "_x",
];
const LES: [&str; 8] = ["0.1", "1.0", "+Inf", "1e+07", "-Inf", "nan", "abc", ""];

fn kind(b: u8) -> FileKind {
    match b % 15 {
        0 => FileKind::Counter,
        1 => FileKind::Histogram,
        2 => FileKind::Summary,
        3 => FileKind::Info,
        4 => FileKind::StateSet,
        n => FileKind::Gauge(GaugeMode::ALL[usize::from(n - 5)]),
    }
}

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pm-fuzz-structured-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|files: Vec<File>| {
    let dir = dir();
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for f in files.iter().take(8) {
        let keys: Vec<String> = f
            .series
            .iter()
            .take(64)
            .map(|s| {
                let sample = format!("{}{}", s.metric, SUFFIXES[usize::from(s.suffix % 8)]);
                let mut labels: Vec<(&str, &str)> = s
                    .labels
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                if s.suffix % 8 == 2 && s.le < 200 {
                    labels.push(("le", LES[usize::from(s.le % 8)]));
                }
                encode_key(&s.metric, &sample, &labels, &s.help)
            })
            .collect();
        let entries: Vec<(&[u8], f64, f64)> = keys
            .iter()
            .zip(&f.series)
            .map(|(k, s)| (k.as_bytes(), s.value, s.timestamp))
            .collect();
        let mut img = build_file(&entries, 0);
        if f.marker {
            img[4..8].copy_from_slice(&LOCK_MARKER);
        }
        std::fs::write(dir.join(kind(f.kind).file_name(&f.pid.to_string())), img).unwrap();
    }
    let c = MultiProcessCollector::new(dir).unwrap();
    let scrape = c
        .collect_families()
        .expect("a scrape never fails because of a file");
    let mut out = Vec::new();
    scrape.encode_text(&mut out);
    assert!(std::str::from_utf8(&out).is_ok());
    out.clear();
    scrape.encode_openmetrics(&mut out);
    assert!(std::str::from_utf8(&out).is_ok());
    let _ = prometheus_multiproc::to_metric_families(&scrape.families);
});
