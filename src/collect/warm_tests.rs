//! Tests of incremental scrapes: at every step of a directory's life (values changing, entries appended, files added, removed, replaced, rewritten shorter, made untrusted, corrupted), a kept collector's output equals a new collector's, byte for byte; and what it keeps does not grow with scrapes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use super::collector::*;
use super::warm::Footprint;
use super::warning::WarningKind;
use crate::format::key::encode_key;
use crate::format::{Entries, HEADER_LEN, LOCK_MARKER, build_file, encode_entry};

/// A deterministic pseudo-random sequence (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        // CAST: the remainder is below n, a usize.
        (self.next() % n as u64) as usize
    }
    fn value(&mut self) -> f64 {
        // Non-integers, so that the order of additions shows in the bits.
        // CAST: below 2^20, exact in f64.
        (self.next() % (1 << 20)) as f64 / 7.0
    }
}

/// File kinds of the test directory, with the keys their files may hold.
const KINDS: [&str; 9] = [
    "counter",
    "histogram",
    "summary",
    "gauge_all",
    "gauge_liveall",
    "gauge_max",
    "gauge_min",
    "gauge_livesum",
    "gauge_mostrecent",
];

/// The `i`th key a file of `kind` may hold.
fn key(kind: &str, i: usize) -> String {
    let path = format!("/p{}", i % 7);
    let code = ["200", "500"][i % 2];
    match kind {
        "counter" => encode_key("req", "req_total", &[("code", code), ("path", &path)], "R."),
        "histogram" => {
            let les = ["0.1", "0.5", "1.0", "+Inf"];
            if i.is_multiple_of(5) {
                encode_key("lat", "lat_sum", &[("path", &path)], "L.")
            } else {
                let le = les[i % 4];
                encode_key("lat", "lat_bucket", &[("le", le), ("path", &path)], "L.")
            }
        }
        "summary" => {
            let sample = ["sz_count", "sz_sum"][i % 2];
            encode_key("sz", sample, &[("path", &path)], "S.")
        }
        g => {
            let name = g.trim_start_matches("gauge_");
            encode_key(
                &format!("g_{name}"),
                &format!("g_{name}"),
                &[("path", &path)],
                "G.",
            )
        }
    }
}

/// The value offsets of the entries of the file at `path`, and its
/// `used` field.
fn layout(path: &Path) -> (Vec<usize>, usize) {
    let img = std::fs::read(path).unwrap();
    let e = Entries::new(&img).unwrap();
    let used = e.used();
    // Up to a corrupt entry, if one was appended.
    (
        e.map_while(Result::ok).map(|e| e.value_offset).collect(),
        used,
    )
}

/// Appends an entry in place, as a writer does: the entry past `used`,
/// growing the file (doubling) if it does not fit, then `used`.
fn append(path: &Path, key: &str, value: f64, ts: f64) {
    let (_, used) = layout(path);
    let mut entry = Vec::new();
    encode_entry(key.as_bytes(), value, ts, &mut entry);
    let f = OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    // CAST: test files are small.
    if (used + entry.len()) as u64 > len {
        f.set_len(len * 2).unwrap();
    }
    f.write_all_at(&entry, used as u64).unwrap();
    let new_used = u32::try_from(used + entry.len()).unwrap();
    f.write_all_at(&new_used.to_le_bytes(), 0).unwrap();
}

/// Sets the value (and timestamp) of the `i`th entry in place.
fn set_value(path: &Path, i: usize, value: f64, ts: f64) {
    let (offsets, _) = layout(path);
    let Some(&off) = offsets.get(i % offsets.len().max(1)) else {
        return;
    };
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&value.to_le_bytes(), off as u64).unwrap();
    f.write_all_at(&ts.to_le_bytes(), off as u64 + 8).unwrap();
}

fn new_file(path: &Path, entries: &[(String, f64, f64)]) {
    let e: Vec<(&[u8], f64, f64)> = entries
        .iter()
        .map(|(k, v, t)| (k.as_bytes(), *v, *t))
        .collect();
    std::fs::write(path, build_file(&e, 4096)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A scrape's text, warnings and counts (without the counts that differ
/// between a kept and a new collector by design).
fn outcome(c: &MultiProcessCollector, openmetrics: bool) -> (String, Vec<String>, Stats) {
    let mut out = Vec::new();
    let s = if openmetrics {
        c.encode_openmetrics(&mut out).unwrap()
    } else {
        c.encode_text(&mut out).unwrap()
    };
    let mut stats = s.stats.clone();
    stats.files_reused = 0;
    stats.duration = Default::default();
    let warnings = s.warnings.iter().map(|w| w.to_string()).collect();
    (String::from_utf8(out).unwrap(), warnings, stats)
}

/// Rewrites the file at `path` in place with the first half of its
/// entries: `used` goes down, the size stays.
fn rewrite_shorter(path: &Path) {
    let img = std::fs::read(path).unwrap();
    let entries: Vec<_> = Entries::new(&img)
        .unwrap()
        .map_while(Result::ok)
        .map(|e| (e.key.to_vec(), e.value, e.timestamp))
        .collect();
    let keep = entries.len() / 2;
    let e: Vec<(&[u8], f64, f64)> = entries[..keep]
        .iter()
        .map(|(k, v, t)| (k.as_slice(), *v, *t))
        .collect();
    let mut short = build_file(&e, 0);
    short.resize(img.len(), 0);
    let f = File::options().write(true).open(path).unwrap();
    f.write_all_at(&short, 0).unwrap();
}

/// Appends a corrupt entry (a negative key length) to the file at `path`,
/// if it has room.
fn append_corrupt(path: &Path) {
    let (_, used) = layout(path);
    let f = OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    if (used + 24) as u64 <= len {
        f.write_all_at(&(-5i32).to_le_bytes(), used as u64).unwrap();
        let u = u32::try_from(used + 24).unwrap();
        f.write_all_at(&u.to_le_bytes(), 0).unwrap();
    }
}

/// One random change to the directory.
fn mutate(dir: &Path, rng: &mut Rng, step: usize) -> &'static str {
    let kind = KINDS[rng.below(KINDS.len())];
    let pid = rng.below(6);
    let name = format!("{kind}_{pid}.db");
    let path = dir.join(&name);
    let exists = path.exists();
    let op = rng.below(100);
    let entry = |rng: &mut Rng| {
        let ts = if rng.below(3) == 0 { 0.0 } else { rng.value() };
        (key(kind, rng.below(40)), rng.value(), ts)
    };
    match op {
        _ if !exists => {
            let n = 1 + rng.below(12);
            let entries: Vec<_> = (0..n).map(|_| entry(rng)).collect();
            new_file(&path, &entries);
            "created"
        }
        0..=44 => {
            set_value(&path, rng.below(64), rng.value(), rng.value());
            "value"
        }
        45..=74 => {
            let (k, v, t) = entry(rng);
            append(&path, &k, v, t);
            "appended"
        }
        75..=81 => {
            std::fs::remove_file(&path).unwrap();
            "removed"
        }
        82..=87 => {
            // A new inode under the same name.
            let tmp = dir.join(format!("tmp{step}"));
            let entries: Vec<_> = (0..1 + rng.below(8)).map(|_| entry(rng)).collect();
            new_file(&tmp, &entries);
            std::fs::rename(&tmp, &path).unwrap();
            "replaced"
        }
        88..=91 => {
            rewrite_shorter(&path);
            "shrunk"
        }
        92..=95 => {
            let mode = if rng.below(2) == 0 { 0o664 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            "permissions"
        }
        _ => {
            append_corrupt(&path);
            "corrupted"
        }
    }
}

#[test]
fn kept_collector_equals_a_new_one_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let warm = MultiProcessCollector::new(d)
        .unwrap()
        .with_incremental(true);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut reused = 0;
    let mut ops = std::collections::BTreeMap::new();
    for step in 0..600 {
        // Several changes between scrapes, as between two real scrapes.
        for _ in 0..1 + rng.below(4) {
            *ops.entry(mutate(d, &mut rng, step)).or_insert(0) += 1;
        }
        let om = step % 3 == 0;
        let cold = MultiProcessCollector::new(d).unwrap();
        let want = outcome(&cold, om);
        let got = outcome(&warm, om);
        assert_eq!(got, want, "step {step}");
        let mut out = Vec::new();
        reused += warm.encode_text(&mut out).unwrap().stats.files_reused;
    }
    // Every kind of change happened, and kept layouts were used.
    assert_eq!(ops.len(), 8, "{ops:?}");
    assert!(reused > 600 * 10, "{reused}");
}

#[test]
fn values_are_read_in_place_and_memory_does_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for pid in 0..8 {
        let entries: Vec<_> = (0..40).map(|i| (key("counter", i), 1.0, 0.0)).collect();
        new_file(&d.join(format!("counter_{pid}.db")), &entries);
    }
    let c = MultiProcessCollector::new(d)
        .unwrap()
        .with_incremental(true);
    let first = c.collect_families().unwrap();
    assert_eq!(first.stats.files_reused, 0);
    let kept = c.warm_footprint().unwrap();
    assert_eq!((kept.files, kept.entries, kept.merges), (8, 320, 1));
    // Nothing changed: the first scrape's merge is reused (also right
    // after the first scrape, whose files were all read cold).
    let again = c.collect_families().unwrap();
    assert_eq!(again.families, first.families);
    assert_eq!(c.warm_footprint().unwrap(), kept);
    let mut rng = Rng(7);
    for round in 0..300 {
        let pid = rng.below(8);
        set_value(
            &d.join(format!("counter_{pid}.db")),
            rng.below(40),
            rng.value(),
            0.0,
        );
        let s = c.collect_families().unwrap();
        assert_eq!(s.stats.files_reused, 8, "round {round}");
        let cold = MultiProcessCollector::new(d)
            .unwrap()
            .collect_families()
            .unwrap();
        assert_eq!(s.families, cold.families, "round {round}");
    }
    // Every round changed a value: merged again each time, and nothing
    // else grew.
    let now = c.warm_footprint().unwrap();
    assert_eq!(now.merges, kept.merges + 300);
    assert_eq!(
        Footprint {
            merges: kept.merges,
            ..now
        },
        kept
    );
}

#[test]
fn state_of_files_gone_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = MultiProcessCollector::new(d)
        .unwrap()
        .with_incremental(true);
    // Workers come and go, each with series of its own.
    for w in 0..200 {
        let path = d.join(format!("counter_{w}.db"));
        let entries: Vec<_> = (0..50)
            .map(|i| {
                (
                    encode_key(
                        "c",
                        "c_total",
                        &[("w", &w.to_string()), ("i", &i.to_string())],
                        "",
                    ),
                    1.0,
                    0.0,
                )
            })
            .collect();
        new_file(&path, &entries);
        c.collect_families().unwrap();
        std::fs::remove_file(&path).unwrap();
        let kept = c.warm_footprint().unwrap_or(Footprint {
            files: 0,
            entries: 0,
            keys: 0,
            series: 0,
            merges: 0,
        });
        assert!(kept.keys <= 2 * 4096 + 100, "worker {w}: {kept:?}");
    }
}

#[test]
fn untrusted_files_are_read_not_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let entries = [(key("counter", 1), 2.5, 0.0)];
    new_file(&d.join("counter_1.db"), &entries);
    new_file(&d.join("counter_2.db"), &entries);
    // Group-writable: someone else could shrink it under a mapping.
    std::fs::set_permissions(
        d.join("counter_2.db"),
        std::fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    // Two links: another name may be someone else's handle.
    new_file(&d.join("counter_3.db"), &entries);
    std::fs::hard_link(d.join("counter_3.db"), d.join("elsewhere")).unwrap();
    let c = MultiProcessCollector::new(d)
        .unwrap()
        .with_incremental(true);
    for _ in 0..3 {
        let s = c.collect_families().unwrap();
        assert_eq!(s.families[0].samples[0].value, 7.5);
    }
    let s = c.collect_families().unwrap();
    assert_eq!(s.stats.files_read, 3);
    assert_eq!(s.stats.files_reused, 1);
    assert_eq!(c.warm_footprint().unwrap().files, 1);
}

#[test]
fn kept_live_files_are_probed_at_every_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key("gauge_livesum", 0);
    let mut img = build_file(&[(k.as_bytes(), 4.0, 0.0)], 4096);
    img[4..8].copy_from_slice(&LOCK_MARKER);
    let path = d.join("gauge_livesum_1.db");
    std::fs::write(&path, &img).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = MultiProcessCollector::new(d)
        .unwrap()
        .with_incremental(true);
    let writer = File::open(&path).unwrap();
    writer.lock().unwrap();
    let alive = c.collect_families().unwrap();
    assert_eq!(alive.stats.files_dead, 0);
    assert_eq!(alive.families[0].samples[0].value, 4.0);
    // Still alive, read through the kept layout.
    let again = c.collect_families().unwrap();
    assert_eq!((again.stats.files_reused, again.stats.files_dead), (1, 0));
    // The writer dies: its lock goes with it.
    drop(writer);
    let dead = c.collect_families().unwrap();
    assert_eq!(dead.stats.files_dead, 1);
    assert!(dead.families.is_empty(), "{:?}", dead.families);
    // The probe left no lock behind.
    File::open(&path).unwrap().try_lock().unwrap();
}

#[test]
fn a_corrupt_tail_skips_the_file_as_a_cold_scrape_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("counter_1.db");
    new_file(&path, &[(key("counter", 0), 1.0, 0.0)]);
    new_file(&d.join("counter_2.db"), &[(key("counter", 0), 2.0, 0.0)]);
    let c = MultiProcessCollector::new(d)
        .unwrap()
        .with_incremental(true);
    assert_eq!(
        c.collect_families().unwrap().families[0].samples[0].value,
        3.0
    );
    // An entry whose key is not JSON.
    append(&path, "not a key", 5.0, 0.0);
    let s = c.collect_families().unwrap();
    assert_eq!(s.families[0].samples[0].value, 2.0);
    assert_eq!(s.stats.files_corrupt, 1);
    assert!(
        matches!(&s.warnings[0].kind, WarningKind::Corrupt(c) if c.offset > HEADER_LEN),
        "{:?}",
        s.warnings
    );
    let cold = MultiProcessCollector::new(d)
        .unwrap()
        .collect_families()
        .unwrap();
    assert_eq!(
        s.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        cold.warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
    );
}

/// Scrapes while a writer thread increments counters, observes histograms
/// and adds label sets (entries appended, files grown): every scrape's
/// counter total is at least the last one's (nothing read twice or torn),
/// and once the writer stops, the kept collector equals a new one.
#[test]
fn scrapes_during_writes_are_monotonic_and_end_exact() {
    use crate::{CounterVec, HistogramOpts, HistogramVec, MetricsDir, Opts};
    use std::sync::atomic::{AtomicBool, Ordering};

    let tmp = tempfile::tempdir().unwrap();
    let dir = MetricsDir::open(tmp.path()).unwrap();
    let jobs = CounterVec::new_in(&dir, Opts::new("jobs_total", "Jobs."), &["n"]).unwrap();
    let lat = HistogramVec::new_in(&dir, HistogramOpts::new("lat", "L."), &["n"]).unwrap();
    let c = MultiProcessCollector::from_dir(&dir)
        .unwrap()
        .with_incremental(true);
    let stop = AtomicBool::new(false);
    let total = |s: &Scrape| -> f64 {
        s.families
            .iter()
            .filter(|f| f.name == "jobs")
            .flat_map(|f| &f.samples)
            .map(|s| s.value)
            .sum()
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // New label sets now and then: entries appended, files grown.
                let n = (i % 1000).to_string();
                jobs.with_label_values(&[&n]).inc();
                lat.with_label_values(&[&n]).observe(i as f64 / 1000.0);
                i += 1;
            }
        });
        let mut last = 0.0;
        for _ in 0..60 {
            let s = c.collect_families().unwrap();
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
            let t = total(&s);
            assert!(t >= last, "the total went down: {last} -> {t}");
            last = t;
        }
        stop.store(true, Ordering::Relaxed);
    });
    let kept = outcome(&c, false);
    let new = outcome(&MultiProcessCollector::from_dir(&dir).unwrap(), false);
    assert_eq!(kept, new);
    assert!(
        kept.0.contains("jobs_total{n=\"999\"}"),
        "the writer added every label set"
    );
}
