//! One arbitrary file in a metrics directory: the collector must not panic,
//! must not fail the scrape, must account for the file exactly once, and the
//! expositions it writes must be UTF-8.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prometheus_multiproc::format::FileKind;
use prometheus_multiproc::{GaugeMode, MultiProcessCollector};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pm-fuzz-collector-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

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

fuzz_target!(|data: &[u8]| {
    let Some((&sel, content)) = data.split_first() else {
        return;
    };
    let dir = dir();
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    std::fs::write(dir.join(kind(sel).file_name("1")), content).unwrap();
    let c = MultiProcessCollector::new(dir).unwrap();
    let scrape = c
        .collect_families()
        .expect("a scrape never fails because of a file");
    let st = &scrape.stats;
    assert_eq!(
        st.files_read + st.files_corrupt + st.files_dead + st.files_skipped,
        1,
        "{st:?}"
    );
    let mut out = Vec::new();
    scrape.encode_text(&mut out);
    assert!(std::str::from_utf8(&out).is_ok());
    out.clear();
    scrape.encode_openmetrics(&mut out);
    assert!(std::str::from_utf8(&out).is_ok());
    let _ = prometheus_multiproc::to_metric_families(&scrape.families);
});
