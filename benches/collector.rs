//! Collector benchmarks: merge and encode a generated directory (see
//! `dataset/mod.rs`: 6,000 entries per worker at scale 1, all metric types and
//! gauge modes), beside the floor of merely reading the files' bytes.
//!
//! Groups:
//! * `collect_64x6000`: the reference directory (64 workers × 6,000
//!   entries): `raw_read` (list the directory, open each file, read its
//!   `used` bytes: the least any collector must do), `collect_families`
//!   (read + merge), `encode_only` (text encoding of merged families),
//!   `encode_text` (all of it, into a `Vec`, as the CLI does; as many
//!   threads as the collector chooses), `encode_text_1_thread` and
//!   `encode_text_2_thread` (the same with
//!   `PROMETHEUS_MULTIPROC_COLLECT_THREADS` set), `encode_text_compaction_on`
//!   (compaction turned on: lock taken, summed kinds added exactly), and
//!   `encode_text_same_order` (every worker created its series in the same
//!   order: the merger's best case).
//! * `workers`: `encode_text` for 1, 16, 64 and 256 workers × 6,000 entries.
//! * `series`: `encode_text` for 64 workers × 1,500, 6,000 and 24,000 entries.
//!
//! Before the benchmarks, a table with every directory's size, output size
//! and peak memory is printed. Peak memory is the `VmHWM` (peak resident set)
//! of a fresh child process (this binary, re-executed) that runs one
//! `encode_text`, minus that of a child that does nothing.
//!
//! Run: `cargo bench --bench collector` (filter: `-- workers`). Directories
//! are generated under `$TMPDIR` (default `/tmp`) and removed afterwards.
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

mod dataset;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use prometheus_multiproc::MultiProcessCollector;
use prometheus_multiproc::format::parse_file_name;
use prometheus_multiproc::format::{HEADER_LEN, read_used};

const CHILD_ENV: &str = "PM_COLLECTOR_BENCH_CHILD";

/// Generated directories, made on first use.
struct Dirs {
    root: tempfile::TempDir,
    made: HashMap<(usize, u32, bool), (PathBuf, usize)>,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            root: tempfile::tempdir().unwrap(),
            made: HashMap::new(),
        }
    }

    /// Entries in the directory of `workers` workers at `scale`, without
    /// generating it.
    fn entries(workers: usize, scale_milli: u32) -> usize {
        dataset::Layout::new(f64::from(scale_milli) / 1000.0).entries() * workers
    }

    /// The directory of `workers` workers at `scale` (in thousandths),
    /// generated on first use, and its number of entries.
    fn get(&mut self, workers: usize, scale_milli: u32, same_order: bool) -> (PathBuf, usize) {
        let root = self.root.path().to_path_buf();
        self.made
            .entry((workers, scale_milli, same_order))
            .or_insert_with(|| {
                let path = root.join(format!(
                    "w{workers}_s{scale_milli}{}",
                    if same_order { "_same" } else { "" }
                ));
                std::fs::create_dir(&path).unwrap();
                let scale = f64::from(scale_milli) / 1000.0;
                dataset::generate(&path, workers, scale, same_order);
                let entries = dataset::Layout::new(scale).entries() * workers;
                (path, entries)
            })
            .clone()
    }
}

/// Lists the directory and reads each metrics file's `used` bytes, with one
/// reused buffer: the floor for any collector. Returns the bytes read.
fn raw_read(dir: &Path, buf: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if parse_file_name(name).is_none() {
            continue;
        }
        let f = File::open(e.path()).unwrap();
        let mut header = [0u8; HEADER_LEN];
        f.read_exact_at(&mut header, 0).unwrap();
        let used = read_used(&header).unwrap() as usize;
        if buf.len() < used {
            buf.resize(used, 0);
        }
        f.read_exact_at(&mut buf[HEADER_LEN..used], HEADER_LEN as u64)
            .unwrap();
        total += used;
    }
    total
}

fn encode_text(dir: &Path, out: &mut Vec<u8>) -> usize {
    out.clear();
    let c = MultiProcessCollector::new(dir).unwrap();
    let scrape = c.encode_text(out).unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    out.len()
}

/// Sets (or, with `None`, removes) `PROMETHEUS_MULTIPROC_COLLECT_THREADS`,
/// the collector's thread count.
fn set_threads(n: Option<usize>) {
    const VAR: &str = "PROMETHEUS_MULTIPROC_COLLECT_THREADS";
    // SAFETY: no other thread of this process reads or writes the
    // environment now: criterion runs benchmarks on the main thread, and
    // the collector reads the variable on the calling thread before it
    // starts (and after it has joined) its own threads.
    unsafe {
        match n {
            Some(n) => std::env::set_var(VAR, n.to_string()),
            None => std::env::remove_var(VAR),
        }
    }
}

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// In a child: runs one `encode_text` (unless `dir` is empty) and prints
/// the peak RSS in KiB.
fn child_main(dir: &str) {
    if !dir.is_empty() {
        let mut out = Vec::new();
        std::hint::black_box(encode_text(Path::new(dir), &mut out));
    }
    println!("{}", vm_hwm_kib());
}

/// Peak RSS (KiB) of a child process running one `encode_text` on `dir`
/// (or nothing, for an empty path).
fn child_peak_kib(dir: &Path) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn du_used(dir: &Path) -> (usize, usize) {
    let mut buf = Vec::new();
    let files = std::fs::read_dir(dir).unwrap().count();
    (files, raw_read(dir, &mut buf))
}

fn print_table(dirs: &mut Dirs) {
    let base = child_peak_kib(Path::new(""));
    println!(
        "collector bench: datasets (peak RSS of one encode_text in a fresh process, minus an idle one: {base} KiB)"
    );
    println!(
        "{:>8} {:>8} {:>10} {:>7} {:>10} {:>12} {:>10} {:>12}",
        "workers",
        "entries",
        "per worker",
        "files",
        "used MiB",
        "output lines",
        "output MiB",
        "peak RSS MiB"
    );
    for (workers, scale) in [
        (1, 1000),
        (16, 1000),
        (64, 250),
        (64, 1000),
        (64, 4000),
        (256, 1000),
    ] {
        let (path, entries) = dirs.get(workers, scale, false);
        let (files, used) = du_used(&path);
        let mut out = Vec::new();
        encode_text(&path, &mut out);
        let lines = out.iter().filter(|b| **b == b'\n').count();
        let peak = child_peak_kib(&path).saturating_sub(base);
        println!(
            "{:>8} {:>8} {:>10} {:>7} {:>10.1} {:>12} {:>10.1} {:>12.1}",
            workers,
            entries,
            entries / workers,
            files,
            used as f64 / (1 << 20) as f64,
            lines,
            out.len() as f64 / (1 << 20) as f64,
            peak as f64 / 1024.0
        );
    }
}

// Directories are generated inside the benchmark closures, which criterion
// only calls for benchmarks that pass the command line's filter.
fn bench_reference(c: &mut Criterion, dirs: &mut Dirs) {
    let mut g = c.benchmark_group("collect_64x6000");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(Dirs::entries(64, 1000) as u64));
    let mut buf = Vec::new();
    let mut out = Vec::new();
    g.bench_function("raw_read", |b| {
        let (path, _) = dirs.get(64, 1000, false);
        b.iter(|| raw_read(&path, &mut buf))
    });
    g.bench_function("collect_families", |b| {
        let collector = MultiProcessCollector::new(dirs.get(64, 1000, false).0).unwrap();
        b.iter(|| collector.collect_families().unwrap())
    });
    g.bench_function("encode_only", |b| {
        let collector = MultiProcessCollector::new(dirs.get(64, 1000, false).0).unwrap();
        let scrape = collector.collect_families().unwrap();
        b.iter(|| {
            out.clear();
            scrape.encode_text(&mut out);
            out.len()
        })
    });
    g.bench_function("encode_text", |b| {
        let (path, _) = dirs.get(64, 1000, false);
        b.iter(|| encode_text(&path, &mut out))
    });
    g.bench_function("encode_text_compaction_on", |b| {
        // The same directory with compaction turned on (nothing folded):
        // the lock is taken and the summed kinds are added exactly.
        let (path, _) = dirs.get(64, 1000, false);
        prometheus_multiproc::compact_dead_in(&path, &[]).unwrap();
        b.iter(|| encode_text(&path, &mut out));
        std::fs::remove_file(path.join(prometheus_multiproc::LOCK_FILE)).unwrap();
    });
    for threads in [1, 2] {
        g.bench_function(format!("encode_text_{threads}_thread"), |b| {
            let (path, _) = dirs.get(64, 1000, false);
            set_threads(Some(threads));
            b.iter(|| encode_text(&path, &mut out));
            set_threads(None);
        });
    }
    g.bench_function("encode_text_same_order", |b| {
        let (path, _) = dirs.get(64, 1000, true);
        b.iter(|| encode_text(&path, &mut out))
    });
    g.finish();
}

fn bench_scaling(c: &mut Criterion, dirs: &mut Dirs) {
    let mut out = Vec::new();
    let mut g = c.benchmark_group("workers");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for workers in [1, 16, 64, 256] {
        g.throughput(Throughput::Elements(Dirs::entries(workers, 1000) as u64));
        g.bench_function(BenchmarkId::new("encode_text", workers), |b| {
            let (path, _) = dirs.get(workers, 1000, false);
            b.iter(|| encode_text(&path, &mut out))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("series");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for scale in [250, 1000, 4000] {
        let entries = Dirs::entries(64, scale);
        g.throughput(Throughput::Elements(entries as u64));
        g.bench_function(
            BenchmarkId::new("encode_text_64_workers", entries / 64),
            |b| {
                let (path, _) = dirs.get(64, scale, false);
                b.iter(|| encode_text(&path, &mut out))
            },
        );
    }
    g.finish();
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_main(&dir);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut dirs = Dirs::new();
    // The table costs a few seconds; skip it with PM_BENCH_NO_TABLE=1 (and
    // in `cargo test --benches`, `--list`).
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick && std::env::var_os("PM_BENCH_NO_TABLE").is_none() {
        print_table(&mut dirs);
    }
    bench_reference(&mut c, &mut dirs);
    bench_scaling(&mut c, &mut dirs);
    c.final_summary();
}
