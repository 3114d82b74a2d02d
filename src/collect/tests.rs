//! Tests of the collector: fixed directories against Python's output, odd and corrupt files, parallel and read-ahead merges.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use std::os::unix::fs::FileExt;

use super::budget::{Budget, CHUNK};
use super::collector::*;
use super::encoded::Encoded;
use super::parallel::*;
use super::scrape::ScrapeState;
use super::warning::WarningKind;
use crate::encoding::text::{self, Format};
use crate::format::key::encode_key;
use crate::format::naming::GaugeMode;
use crate::format::naming::{self, FileKind};
use crate::format::{self, HEADER_LEN, LOCK_MARKER, build_file};
use crate::merge::{Family, FamilyKind};
use crate::open;

fn write(dir: &Path, name: &str, entries: &[(String, f64, f64)]) {
    let e: Vec<(&[u8], f64, f64)> = entries
        .iter()
        .map(|(k, v, t)| (k.as_bytes(), *v, *t))
        .collect();
    std::fs::write(dir.join(name), build_file(&e, 4096)).unwrap();
}

fn k(metric: &str, sample: &str, labels: &[(&str, &str)], help: &str) -> String {
    encode_key(metric, sample, labels, help)
}

/// A fixed directory; the expected output below was produced by
/// prometheus_client 0.26's MultiProcessCollector + generate_latest on
/// the same files, in one directory listing order (the order of the
/// lines follows the listing, which a test cannot choose: the interop
/// tests compare whole bodies with Python's on the same directory).
fn fixed_dir(dir: &Path) {
    for (pid, n) in [("100", 1.0), ("200", 2.0)] {
        write(
            dir,
            &format!("counter_{pid}.db"),
            &[
                (
                    k(
                        "requests",
                        "requests_total",
                        &[("path", "/a"), ("code", "200")],
                        "Requests served.",
                    ),
                    3.0 * n,
                    0.0,
                ),
                (
                    k(
                        "requests",
                        "requests_total",
                        &[("path", "/b\"\\\n"), ("code", "500")],
                        "Requests served.",
                    ),
                    n,
                    0.0,
                ),
            ],
        );
        write(
            dir,
            &format!("histogram_{pid}.db"),
            &[
                (
                    k(
                        "latency_seconds",
                        "latency_seconds_sum",
                        &[],
                        "Latency\\with\nnewline.",
                    ),
                    0.25 * n,
                    0.0,
                ),
                (
                    k(
                        "latency_seconds",
                        "latency_seconds_bucket",
                        &[("le", "0.1")],
                        "Latency\\with\nnewline.",
                    ),
                    n,
                    0.0,
                ),
                (
                    k(
                        "latency_seconds",
                        "latency_seconds_bucket",
                        &[("le", "1.0")],
                        "Latency\\with\nnewline.",
                    ),
                    1.0,
                    0.0,
                ),
                (
                    k(
                        "latency_seconds",
                        "latency_seconds_bucket",
                        &[("le", "1e+06")],
                        "Latency\\with\nnewline.",
                    ),
                    0.0,
                    0.0,
                ),
                (
                    k(
                        "latency_seconds",
                        "latency_seconds_bucket",
                        &[("le", "+Inf")],
                        "Latency\\with\nnewline.",
                    ),
                    0.0,
                    0.0,
                ),
            ],
        );
        write(
            dir,
            &format!("gauge_all_{pid}.db"),
            &[(k("inflight", "inflight", &[], "In flight."), n, 0.0)],
        );
        write(
            dir,
            &format!("gauge_livesum_{pid}.db"),
            &[(
                k("workers", "workers", &[("kind", "web")], "Workers."),
                1.0,
                0.0,
            )],
        );
        write(
            dir,
            &format!("gauge_mostrecent_{pid}.db"),
            &[
                (
                    k("last_seen", "last_seen", &[], "Last seen."),
                    10.0 * n,
                    1000.0 + n,
                ),
                (k("never_set", "never_set", &[], "Never set."), 5.0, 0.0),
            ],
        );
        write(
            dir,
            &format!("summary_{pid}.db"),
            &[
                (k("size_bytes", "size_bytes_count", &[], "Sizes."), 2.0, 0.0),
                (k("size_bytes", "size_bytes_sum", &[], "Sizes."), 1.5e7, 0.0),
            ],
        );
    }
    // Names with characters outside the legacy set.
    write(
        dir,
        "counter_300.db",
        &[(
            k(
                "odd.name",
                "odd.name_total",
                &[("lab-el", "v"), ("ünï", "x")],
                "Odd \"name\".",
            ),
            1.0,
            0.0,
        )],
    );
}

const FIXED_TEXT: &[&str] = &[
    "# HELP inflight In flight.",
    "# TYPE inflight gauge",
    "inflight{pid=\"100\"} 1.0",
    "inflight{pid=\"200\"} 2.0",
    "# HELP last_seen Last seen.",
    "# TYPE last_seen gauge",
    "last_seen 20.0",
    "# HELP latency_seconds Latency\\\\with\\nnewline.",
    "# TYPE latency_seconds histogram",
    "latency_seconds_bucket{le=\"0.1\"} 3.0",
    "latency_seconds_bucket{le=\"1.0\"} 5.0",
    "latency_seconds_bucket{le=\"1e+06\"} 5.0",
    "latency_seconds_bucket{le=\"+Inf\"} 5.0",
    "latency_seconds_sum 0.75",
    "latency_seconds_count 5.0",
    "# HELP never_set Never set.",
    "# TYPE never_set gauge",
    "# HELP odd_name_total Odd \"name\".",
    "# TYPE odd_name_total counter",
    "odd_name_total{lab_el=\"v\",_n_=\"x\"} 1.0",
    "# HELP requests_total Requests served.",
    "# TYPE requests_total counter",
    "requests_total{code=\"200\",path=\"/a\"} 9.0",
    "requests_total{code=\"500\",path=\"/b\\\"\\\\\\n\"} 3.0",
    "# HELP size_bytes Sizes.",
    "# TYPE size_bytes summary",
    "size_bytes_count 4.0",
    "size_bytes_sum 3e+07",
    "# HELP workers Workers.",
    "# TYPE workers gauge",
    "workers{kind=\"web\"} 2.0",
];

const FIXED_OPENMETRICS: &[&str] = &[
    "# HELP inflight In flight.",
    "# TYPE inflight gauge",
    "inflight{pid=\"100\"} 1.0",
    "inflight{pid=\"200\"} 2.0",
    "# HELP last_seen Last seen.",
    "# TYPE last_seen gauge",
    "last_seen 20.0",
    "# HELP latency_seconds Latency\\\\with\\nnewline.",
    "# TYPE latency_seconds histogram",
    "latency_seconds_bucket{le=\"0.1\"} 3.0",
    "latency_seconds_bucket{le=\"1.0\"} 5.0",
    "latency_seconds_bucket{le=\"1e+06\"} 5.0",
    "latency_seconds_bucket{le=\"+Inf\"} 5.0",
    "latency_seconds_sum 0.75",
    "latency_seconds_count 5.0",
    "# HELP never_set Never set.",
    "# TYPE never_set gauge",
    "# HELP odd_name Odd \\\"name\\\".",
    "# TYPE odd_name counter",
    "odd_name_total{lab_el=\"v\",_n_=\"x\"} 1.0",
    "# HELP requests Requests served.",
    "# TYPE requests counter",
    "requests_total{code=\"200\",path=\"/a\"} 9.0",
    "requests_total{code=\"500\",path=\"/b\\\"\\\\\\n\"} 3.0",
    "# HELP size_bytes Sizes.",
    "# TYPE size_bytes summary",
    "size_bytes_count 4.0",
    "size_bytes_sum 3e+07",
    "# HELP workers Workers.",
    "# TYPE workers gauge",
    "workers{kind=\"web\"} 2.0",
    "# EOF",
];

#[test]
fn fixed_directory_matches_python() {
    let dir = tempfile::tempdir().unwrap();
    fixed_dir(dir.path());
    let c = MultiProcessCollector::new(dir.path()).unwrap();
    let mut out = Vec::new();
    let scrape = c.encode_text(&mut out).unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    let sorted = |text: &str, want: &[&str]| {
        let mut got: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut want: Vec<&str> = want.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    };
    sorted(&String::from_utf8(out).unwrap(), FIXED_TEXT);
    let mut out = Vec::new();
    c.encode_openmetrics(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("# EOF\n"));
    sorted(&text, FIXED_OPENMETRICS);
    let s = scrape.stats;
    assert_eq!(
        (s.files_read, s.files_corrupt, s.files_dead, s.files_skipped),
        (13, 0, 0, 0)
    );
    assert_eq!(s.families, 8);
    assert_eq!(s.samples, 15);
    assert_eq!(s.entries, 2 * (2 + 5 + 1 + 1 + 2 + 2) + 1);
}

#[test]
fn bad_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let e = MultiProcessCollector::new(&file).unwrap_err();
    assert!(e.is_bad_dir());
    assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    // Removed after creation: collecting fails.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let c = MultiProcessCollector::new(&sub).unwrap();
    std::fs::remove_dir(&sub).unwrap();
    let e = c.collect_families().unwrap_err();
    assert_eq!(e.path(), Some(sub.as_path()));
    assert!(c.encode_text(&mut Vec::new()).is_err());
}

#[test]
fn corrupt_files_are_skipped_whole_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = k("c", "c_total", &[], "");
    write(d, "counter_1.db", &[(good.clone(), 1.0, 0.0)]);
    // A good entry, then a key that is not JSON: nothing of it counts.
    write(
        d,
        "counter_2.db",
        &[(good.clone(), 100.0, 0.0), ("[oops".into(), 1.0, 0.0)],
    );
    // Invalid UTF-8 in a key.
    let mut img = build_file(
        &[(good.as_bytes(), 100.0, 0.0), (b"[\"\xff\"]", 1.0, 0.0)],
        0,
    );
    std::fs::write(d.join("counter_3.db"), &img).unwrap();
    // `used` past the end of the file.
    img[0..4].copy_from_slice(&100_000i32.to_le_bytes());
    std::fs::write(d.join("counter_4.db"), &img).unwrap();
    // A short header.
    std::fs::write(d.join("counter_5.db"), [1u8, 2, 3]).unwrap();
    // A bad bucket bound.
    write(
        d,
        "histogram_6.db",
        &[(k("h", "h_bucket", &[("le", "x")], ""), 1.0, 0.0)],
    );
    // An empty metric name.
    write(d, "counter_7.db", &[(k("", "x", &[], ""), 1.0, 0.0)]);
    // A negative key length.
    let mut img = build_file(&[(good.as_bytes(), 100.0, 0.0)], 64);
    img[8..12].copy_from_slice(&(-1i32).to_le_bytes());
    std::fs::write(d.join("counter_8.db"), &img).unwrap();

    let c = MultiProcessCollector::new(d).unwrap();
    let s = c.collect_families().unwrap();
    assert_eq!(s.stats.files_read, 1);
    assert_eq!(s.stats.files_corrupt, 7, "{:?}", s.warnings);
    assert_eq!(s.warnings.len(), 7);
    assert!(
        s.warnings
            .iter()
            .all(|w| matches!(w.kind, WarningKind::Corrupt(_))),
        "{:?}",
        s.warnings
    );
    // The typed reason still prints what and where.
    let msgs: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
    for (file, what) in [
        ("counter_2.db", "key at offset 56"),
        ("counter_3.db", "not UTF-8"),
        ("counter_4.db", "past the end"),
        ("counter_5.db", "short header"),
        ("histogram_6.db", "le="),
        ("counter_7.db", "empty metric name"),
        ("counter_8.db", "negative key length"),
    ] {
        assert!(
            msgs.iter().any(|m| m.contains(file) && m.contains(what)),
            "{file} {what}: {msgs:#?}"
        );
    }
    assert_eq!(s.families.len(), 1);
    assert_eq!(s.families[0].samples[0].value, 1.0);
}

#[test]
fn odd_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = k("c", "c_total", &[], "");
    write(d, "counter_1.db", &[(key.clone(), 1.0, 0.0)]);
    // Ignored quietly: not our names, empty files, never-written files.
    write(d, "foo_1.db", &[(key.clone(), 1.0, 0.0)]);
    write(d, "counter_1.db.tmp", &[(key.clone(), 1.0, 0.0)]);
    write(d, "gauge_bogus_1.db", &[(key.clone(), 1.0, 0.0)]);
    std::fs::write(d.join("counter_2.db"), b"").unwrap();
    std::fs::write(d.join("counter_3.db"), vec![0u8; 4096]).unwrap();
    // Skipped with a warning: directory, symlink, FIFO.
    std::fs::create_dir(d.join("counter_4.db")).unwrap();
    std::os::unix::fs::symlink(d.join("counter_1.db"), d.join("counter_5.db")).unwrap();
    let fifo = std::ffi::CString::new(d.join("counter_6.db").into_os_string().into_encoded_bytes())
        .unwrap();
    nix::unistd::mkfifo(fifo.as_c_str(), nix::sys::stat::Mode::S_IRWXU).unwrap();

    let s = MultiProcessCollector::new(d)
        .unwrap()
        .collect_families()
        .unwrap();
    assert_eq!(s.stats.files_read, 1);
    assert_eq!(s.stats.files_skipped, 5);
    let msgs: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    let kinds: Vec<(&Path, &WarningKind)> = s
        .warnings
        .iter()
        .map(|w| (w.path.as_path(), &w.kind))
        .collect();
    assert!(kinds[0].0.ends_with("counter_4.db") && *kinds[0].1 == WarningKind::NotRegularFile);
    assert!(kinds[1].0.ends_with("counter_5.db") && *kinds[1].1 == WarningKind::SymbolicLink);
    assert!(kinds[2].0.ends_with("counter_6.db") && *kinds[2].1 == WarningKind::NotRegularFile);
    assert_eq!(s.families[0].samples[0].value, 1.0);
}

#[test]
fn dead_live_gauge_writers_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = k("w", "w", &[], "");
    let marked = |v: f64| {
        let mut img = build_file(&[(key.as_bytes(), v, 0.0)], 4096);
        img[4..8].copy_from_slice(&LOCK_MARKER);
        img
    };
    // Alive: the "writer" holds an exclusive lock on its own descriptor.
    std::fs::write(d.join("gauge_livesum_1.db"), marked(1.0)).unwrap();
    let alive = File::open(d.join("gauge_livesum_1.db")).unwrap();
    alive.lock().unwrap();
    // Dead: marked, nobody holds the lock.
    std::fs::write(d.join("gauge_livesum_2.db"), marked(10.0)).unwrap();
    // No marker (written by Python): always read.
    write(d, "gauge_livesum_3.db", &[(key.clone(), 100.0, 0.0)]);
    // Marked but not a live mode: always read.
    let sum = k("s", "s", &[], "");
    let mut img = build_file(&[(sum.as_bytes(), 1000.0, 0.0)], 4096);
    img[4..8].copy_from_slice(&LOCK_MARKER);
    std::fs::write(d.join("gauge_sum_4.db"), img).unwrap();

    let s = MultiProcessCollector::new(d)
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.stats.files_dead, 1);
    assert_eq!(s.stats.files_read, 3);
    let w = s.families.iter().find(|f| f.name == "w").unwrap();
    assert_eq!(w.samples[0].value, 101.0);
    let sf = s.families.iter().find(|f| f.name == "s").unwrap();
    assert_eq!(sf.samples[0].value, 1000.0);
    // The probe left no lock behind.
    let probe = File::open(d.join("gauge_livesum_2.db")).unwrap();
    probe.try_lock().unwrap();
    drop(alive);
}

#[test]
fn type_conflicts_and_mixed_modes_are_warned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = k("x", "x", &[], "");
    write(d, "counter_1.db", &[(key.clone(), 1.0, 0.0)]);
    write(d, "gauge_all_1.db", &[(key.clone(), 5.0, 0.0)]);
    write(d, "gauge_max_1.db", &[(k("y", "y", &[], ""), 5.0, 0.0)]);
    write(d, "gauge_min_1.db", &[(k("y", "y", &[], ""), 2.0, 0.0)]);
    let s = MultiProcessCollector::new(d)
        .unwrap()
        .collect_families()
        .unwrap();
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].path.ends_with("gauge_all_1.db"));
    assert!(
        matches!(&s.warnings[0].kind, WarningKind::TypeConflict(c) if c.family_kind == FamilyKind::Counter),
        "{:?}",
        s.warnings[0]
    );
    assert!(
        matches!(&s.warnings[1].kind, WarningKind::MixedGaugeModes(note) if note.used == GaugeMode::Min),
        "{:?}",
        s.warnings[1]
    );
    let family = |name: &str| s.families.iter().find(|f| f.name == name).unwrap();
    assert_eq!(family("x").kind, FamilyKind::Counter);
    assert_eq!(family("y").samples[0].value, 2.0);
}

#[test]
fn vanished_live_gauges_are_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let dirfd = open::open_dir(dir.path()).unwrap();
    let mut st = ScrapeState::default();
    let live = FileKind::Gauge(GaugeMode::LiveSum);
    st.read_file(dir.path(), &dirfd, "gauge_livesum_9.db", live, "9");
    assert!(st.warnings.is_empty());
    st.read_file(dir.path(), &dirfd, "counter_9.db", FileKind::Counter, "9");
    assert_eq!(st.warnings.len(), 1);
    assert_eq!(st.warnings[0].kind, WarningKind::Vanished);
    assert_eq!(st.stats.files_skipped, 2);
}

/// A directory with every file type, a corrupt file, mixed gauge modes
/// and (with `conflict`) a metric in counter and histogram files.
fn mixed_dir(dir: &Path, conflict: bool, mixed_modes: bool) {
    let hist = |le: &str| k("lat", "lat_bucket", &[("le", le), ("p", "/")], "L.");
    for w in 0..12 {
        let v = 0.1 * f64::from(w + 1);
        write(
            dir,
            &format!("counter_{w}.db"),
            &[(k("req", "req_total", &[], "R."), v, 0.0)],
        );
        let mut h = vec![
            (k("lat", "lat_sum", &[("p", "/")], "L."), v, 0.0),
            (hist("0.5"), 1.0, 0.0),
            (hist("+Inf"), 2.0, 0.0),
        ];
        if conflict && w == 7 {
            h.push((k("req", "req_sum", &[], "R."), 5.0, 0.0));
        }
        write(dir, &format!("histogram_{w}.db"), &h);
        let mode = ["all", "max", "min"][w as usize % 3];
        let name = if mixed_modes { "temp" } else { mode };
        write(
            dir,
            &format!("gauge_{mode}_{w}.db"),
            &[(k(name, name, &[], "T."), v, 0.0)],
        );
        write(
            dir,
            &format!("summary_{w}.db"),
            &[(k("sz", "sz_count", &[], "S."), 1.0, 0.0)],
        );
    }
    std::fs::write(dir.join("counter_99.db"), b"\x10\x00\x00\x00junkjunk").unwrap();
}

/// The names of the metrics files in `dir`, in directory order.
fn listed(dir: &Path) -> Vec<(String, FileKind)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| naming::parse_file_name(&n).map(|(k, _)| (n.clone(), k)))
        .collect()
}

/// Merges `names` of `dir` on up to `threads` threads, encoded in
/// `format` by the merging threads: the text, the families, the part.
fn merged(
    c: &MultiProcessCollector,
    dir: &Path,
    names: &[(String, FileKind)],
    threads: usize,
    format: Format,
) -> (String, Vec<Family>, Part) {
    let dirfd = open::open_dir(dir).unwrap();
    let (families, part, encoded) =
        c.merge_all(&dirfd, names, Vec::new(), threads, Some(format.into()));
    let mut text = Vec::new();
    encoded.write_to(&mut text).unwrap();
    (String::from_utf8(text).unwrap(), families, part)
}

/// What two merges must agree on: text, warnings, counts.
fn outcome(text: String, part: &Part) -> (String, Vec<String>, Stats) {
    let warnings = part.warnings.iter().map(|w| w.to_string()).collect();
    (text, warnings, part.stats.clone())
}

/// One kind of file only: one unit, merged by one thread while the
/// others read ahead for it.
#[test]
fn read_ahead_equals_sequential() {
    let dir = tempfile::tempdir().unwrap();
    for w in 0..80u32 {
        let name = format!("histogram_{w}.db");
        match w {
            // Corrupt, empty, not a regular file: skipped, with warnings.
            7 => std::fs::write(dir.path().join(&name), b"\x30\x00\x00\x00junk").unwrap(),
            11 => std::fs::write(dir.path().join(&name), b"").unwrap(),
            13 => std::fs::create_dir(dir.path().join(&name)).unwrap(),
            _ => {
                let v = 0.1 * f64::from(w + 1);
                let mut entries = vec![(k("lat", "lat_sum", &[], "L."), v, 0.0)];
                for (i, le) in ["0.1", "0.5", "+Inf"].iter().enumerate() {
                    entries.push((
                        k("lat", "lat_bucket", &[("le", le)], "L."),
                        v * i as f64,
                        0.0,
                    ));
                }
                // Files of very different sizes.
                for i in 0..(w % 5) * 200 {
                    let p = i.to_string();
                    entries.push((k("big", "big_sum", &[("p", &p)], "B."), v, 0.0));
                }
                write(dir.path(), &name, &entries);
            }
        }
    }
    let c = MultiProcessCollector::new(dir.path()).unwrap();
    let names = listed(dir.path());
    let run = |threads| {
        let (text, families, part) = merged(&c, dir.path(), &names, threads, Format::Text);
        assert!(!families.is_empty());
        (outcome(text, &part), part.read_ahead)
    };
    let (one, none) = run(1);
    assert_eq!(none, 0);
    assert_eq!(one.1.len(), 2, "{:?}", one.1);
    assert_eq!((one.2.files_corrupt, one.2.files_skipped), (1, 2));
    for threads in 2..=4 {
        for _ in 0..5 {
            // How many files the helper gets to read depends on the
            // scheduler; the result may not.
            assert_eq!(run(threads).0, one, "{threads} threads");
        }
    }

    // The same with a helper that certainly read ahead: it reads the
    // first READ_AHEAD files before the merge starts, then goes on
    // beside it.
    let dirfd = open::open_dir(dir.path()).unwrap();
    let all: Vec<usize> = (0..names.len()).collect();
    let units = vec![all];
    let aheads = ReadAheads::new(&units, c.budget);
    aheads.units[0].active.store(true, Ordering::Release);
    for _ in 0..READ_AHEAD {
        let next = aheads.units[0].read_next(&dirfd, &names, &units[0], &aheads.buffered);
        assert!(matches!(next, Next::Read));
    }
    let next = aheads.units[0].read_next(&dirfd, &names, &units[0], &aheads.buffered);
    assert!(matches!(next, Next::Later), "no further than READ_AHEAD");
    let (families, part) = std::thread::scope(|s| {
        s.spawn(|| aheads.help(&dirfd, &names, &units));
        let ahead = Some((&aheads, 0));
        c.merge_files(&dirfd, &names, &units[0], &mut c.image_buf(), None, ahead)
    });
    assert!(part.read_ahead >= READ_AHEAD);
    let (families, mut part, _) = combine(vec![(families, part)], None).unwrap();
    part.warnings.sort_by(|a, b| a.path.cmp(&b.path)); // as merge_all does
    let mut text = Vec::new();
    text::encode_text(&families, &mut text);
    assert_eq!(outcome(String::from_utf8(text).unwrap(), &part), one);
    assert_eq!(aheads.buffered.load(Ordering::Acquire), 0);
}

/// Pieces from several parts come out in order through writers that
/// take a few bytes at a time, are interrupted, or stop taking any.
#[test]
fn encoded_pieces_are_written_whole() {
    let encoded = Encoded {
        texts: vec![b"0123456789".to_vec(), b"abcdefghij".to_vec()],
        pieces: vec![(1, 0..4), (0, 0..3), (1, 4..4), (0, 3..10), (1, 4..10)],
        trailer: b"# EOF\n",
    };
    let expected = b"abcd0123456789efghij# EOF\n".to_vec();

    /// Takes at most 3 bytes per call, and is interrupted every other.
    struct Trickle(Vec<u8>, bool);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = Trickle(Vec::new(), false);
    encoded.write_to(&mut w).unwrap();
    assert_eq!(w.0, expected);

    let mut v = Vec::new();
    encoded.write_to(&mut v).unwrap();
    assert_eq!(v, expected);

    // A writer that stops taking bytes is an error, not a loop.
    let mut full = [0u8; 5];
    let e = encoded.write_to(&mut &mut full[..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    assert_eq!(&full, b"abcd0");

    let mut out = b"head ".to_vec();
    encoded.append_to(&mut out);
    assert_eq!(out, [&b"head "[..], &expected].concat());
}

#[test]
fn parallel_merge_equals_sequential() {
    for (conflict, mixed_modes) in [(false, false), (false, true), (true, false)] {
        let dir = tempfile::tempdir().unwrap();
        mixed_dir(dir.path(), conflict, mixed_modes);
        let c = MultiProcessCollector::new(dir.path()).unwrap();
        let names = listed(dir.path());
        assert!(names.len() >= PARALLEL_MIN_FILES);
        let run = |threads| {
            let (text, families, part) = merged(&c, dir.path(), &names, threads, Format::Text);
            // Encoded by the merging threads as it would be afterwards.
            let mut after = Vec::new();
            text::encode_text(&families, &mut after);
            assert_eq!(text.as_bytes(), after);
            let (om, families, _) = merged(&c, dir.path(), &names, threads, Format::OpenMetrics);
            let mut after = Vec::new();
            text::encode_openmetrics(&families, &mut after);
            assert_eq!(om.as_bytes(), after);
            (outcome(text, &part), part.merged_again)
        };
        let (one, again) = run(1);
        assert!(!again);
        let expected_warnings = 1 + usize::from(conflict) + usize::from(mixed_modes);
        assert_eq!(one.1.len(), expected_warnings, "{:?}", one.1);
        assert_eq!(one.2.files_corrupt, 1);
        for threads in 2..=4 {
            let (par, again) = run(threads);
            assert_eq!(par, one, "{threads} threads, {conflict} {mixed_modes}");
            // Order-sensitive directories are merged again on one
            // thread; the others are not.
            assert_eq!(again, conflict || mixed_modes, "{threads} threads");
        }
    }
}

#[test]
fn files_of_any_size_are_read_whole() {
    // Large and small files alternate; each series counted once per
    // file.
    let dir = tempfile::tempdir().unwrap();
    let sizes = [3000, 10, 1, 700, 5000, 0, 20];
    for (w, &n) in sizes.iter().enumerate() {
        let entries: Vec<(String, f64, f64)> = (0..n)
            .map(|i| (k("c", "c_total", &[("i", &i.to_string())], "C."), 1.0, 0.0))
            .collect();
        write(dir.path(), &format!("counter_{w}.db"), &entries);
    }
    let s = MultiProcessCollector::new(dir.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let samples = &s.families[0].samples;
    assert_eq!(samples.len(), 5000);
    for smp in samples {
        let i: usize = smp.label("i").unwrap().parse().unwrap();
        let want = sizes.iter().filter(|&&n| n > i).count();
        assert_eq!(smp.value, want as f64, "series {i}");
    }
}

/// A collector of `dir` leasing from a budget of its own.
fn with_budget(dir: &Path, limit: usize) -> (MultiProcessCollector, &'static Budget) {
    let budget: &'static Budget = Box::leak(Box::new(Budget::new(limit)));
    let c = MultiProcessCollector {
        budget,
        ..MultiProcessCollector::new(dir).unwrap()
    };
    (c, budget)
}

/// Without budget, files are read in windows (of 64 KiB: no lease for
/// 1 MiB), helpers leave them to the merging threads, and the result is
/// the same, bit for bit.
#[test]
fn chunked_reading_equals_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    mixed_dir(d, true, true);
    // Files of up to 1.3 MB, entries of up to 100 KB across windows,
    // and a corrupt entry far into a large file.
    for w in 0..6u32 {
        let mut entries: Vec<(String, f64, f64)> = (0..w * 1500)
            .map(|i| {
                let help = "h".repeat((i % 97) as usize * 4);
                (
                    k("big", "big_total", &[("i", &i.to_string())], &help),
                    1.0,
                    0.0,
                )
            })
            .collect();
        let help = "x".repeat(100_000);
        entries.insert(
            entries.len() / 2,
            (k("wide", "wide_total", &[], &help), 2.0, 0.0),
        );
        if w == 5 {
            entries.push(("[\"not json".into(), 1.0, 0.0));
        }
        write(d, &format!("counter_big{w}.db"), &entries);
    }
    let names = listed(d);
    let whole = MultiProcessCollector::new(d).unwrap();
    let (chunked, budget) = with_budget(d, 0);
    for threads in 1..=3 {
        let (text, _, part) = merged(&whole, d, &names, threads, Format::Text);
        let one = outcome(text, &part);
        assert_eq!(one.2.files_corrupt, 2, "{:?}", one.1);
        assert!(one.0.contains("wide_total 10.0\n"));
        let (text, _, part) = merged(&chunked, d, &names, threads, Format::Text);
        assert_eq!(outcome(text, &part), one, "{threads} threads");
        assert_eq!(budget.leased(), 0, "leases given back");
    }
    // Only the windows' sizes were ever leased, never a file's.
    assert!(
        budget.peak() <= 2 * super::budget::MAX_ENTRY,
        "{}",
        budget.peak()
    );
}

/// A file whose `used` says 1 GiB, with one entry on disk: one window
/// is read, the hole is corrupt, nothing near 1 GiB is leased.
#[test]
fn a_sparse_file_costs_one_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = k("c", "c_total", &[], "");
    write(d, "counter_1.db", &[(key.clone(), 1.0, 0.0)]);
    let mut img = build_file(&[(key.as_bytes(), 5.0, 0.0)], 0);
    let used = (1u64 << 30) - 8;
    img[0..4].copy_from_slice(&i32::try_from(used).unwrap().to_le_bytes());
    let f = File::create(d.join("counter_2.db")).unwrap();
    f.write_all_at(&img, 0).unwrap();
    f.set_len(1 << 30).unwrap();
    let (c, budget) = with_budget(d, usize::MAX);
    let s = c.collect_families().unwrap();
    assert_eq!(s.stats.files_corrupt, 1);
    assert_eq!(s.warnings.len(), 1);
    assert!(s.warnings[0].path.ends_with("counter_2.db"));
    let at = HEADER_LEN + format::entry_len(key.len());
    let want = format!("zero bytes where an entry should be, at offset {at}");
    assert!(
        s.warnings[0].to_string().ends_with(&want),
        "{}",
        s.warnings[0]
    );
    assert!(matches!(
        &s.warnings[0].kind,
        WarningKind::Corrupt(c) if c.kind == format::CorruptKind::ZeroEntry && c.offset == at
    ));
    assert_eq!(s.families[0].samples[0].value, 1.0);
    assert!(budget.peak() <= CHUNK, "{}", budget.peak());
}

/// Non-regular files and names that are not UTF-8 are skipped while
/// listing, before anything opens them.
#[test]
fn odd_entries_are_skipped_unopened() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "counter_1.db", &[(k("c", "c_total", &[], ""), 1.0, 0.0)]);
    std::fs::create_dir(d.join("counter_2.db")).unwrap();
    std::os::unix::fs::symlink(d.join("counter_1.db"), d.join("counter_3.db")).unwrap();
    let fifo = d.join("gauge_livesum_4.db");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"counter_\xff.db");
    std::fs::write(d.join(odd), b"").unwrap();
    // Not a metrics file name either way: ignored.
    std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"x\xff.db")), b"").unwrap();
    let c = MultiProcessCollector::new(d).unwrap();
    let (names, mut skipped) = c.scan().unwrap();
    assert_eq!(names, vec![("counter_1.db".to_owned(), FileKind::Counter)]);
    skipped.sort_by(|a, b| a.0.cmp(&b.0));
    let want = [
        ("counter_2.db".as_bytes(), WarningKind::NotRegularFile),
        (b"counter_3.db", WarningKind::SymbolicLink),
        (b"counter_\xff.db", WarningKind::NonUtf8Name),
        (b"gauge_livesum_4.db", WarningKind::NotRegularFile),
    ];
    let got: Vec<_> = skipped
        .iter()
        .map(|(p, why)| (p.file_name().unwrap().as_bytes(), why))
        .collect();
    assert_eq!(got, want.iter().map(|(n, w)| (*n, w)).collect::<Vec<_>>());
    let s = c.collect_families().unwrap();
    assert_eq!((s.stats.files_read, s.stats.files_skipped), (1, 4));
    let msgs: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
    assert!(msgs[2].ends_with("counter_\u{fffd}.db: file name is not UTF-8; skipped"));
}

#[test]
fn many_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = k("c", "c_total", &[("a", "b")], "");
    let img = build_file(&[(key.as_bytes(), 1.0, 0.0)], 0);
    for i in 0..3000 {
        std::fs::write(dir.path().join(format!("counter_{i}.db")), &img).unwrap();
    }
    let s = MultiProcessCollector::new(dir.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert_eq!(s.stats.files_read, 3000);
    assert_eq!(s.families[0].samples[0].value, 3000.0);
}

#[test]
fn prometheus_registry() {
    use prometheus::Encoder;
    let dir = tempfile::tempdir().unwrap();
    fixed_dir(dir.path());
    let reg = prometheus::Registry::new();
    reg.register(Box::new(MultiProcessCollector::new(dir.path()).unwrap()))
        .unwrap();
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&reg.gather(), &mut out)
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let want = "\
# HELP inflight In flight.
# TYPE inflight gauge
inflight{pid=\"100\"} 1
inflight{pid=\"200\"} 2
# HELP last_seen Last seen.
# TYPE last_seen gauge
last_seen 20
# HELP latency_seconds Latency\\\\with\\nnewline.
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.1\"} 3
latency_seconds_bucket{le=\"1\"} 5
latency_seconds_bucket{le=\"1000000\"} 5
latency_seconds_bucket{le=\"+Inf\"} 5
latency_seconds_sum 0.75
latency_seconds_count 5
# HELP odd_name_total Odd \"name\".
# TYPE odd_name_total counter
odd_name_total{lab_el=\"v\",_n_=\"x\"} 1
# HELP requests_total Requests served.
# TYPE requests_total counter
requests_total{code=\"200\",path=\"/a\"} 9
requests_total{code=\"500\",path=\"/b\\\"\\\\\\n\"} 3
# HELP size_bytes Sizes.
# TYPE size_bytes summary
size_bytes_sum 30000000
size_bytes_count 4
# HELP workers Workers.
# TYPE workers gauge
workers{kind=\"web\"} 2
";
    assert_eq!(text, want);
}
