//! Scrape time after many worker restarts: pid-named files (one set per
//! process that ever ran) against stable worker ids (`set_worker_id`: one set
//! per slot, whatever the restarts).
//!
//! ```text
//! cargo run --release --example churn_files [RESTARTS] [SLOTS]
//! PYTHON=target/pyenv/bin/python cargo run --release --example churn_files
//! ```
//!
//! A worker's files are written once with this crate (a counter with 6
//! series, a histogram with 2 label sets of 15 buckets, a `livesum` gauge),
//! then copied under RESTARTS pid names into one directory and under SLOTS
//! worker ids into another, each file at its real 64 KiB size (sparse here;
//! a real writer allocates it). Both directories are then merged with
//! `MultiProcessCollector` (median of several runs, after one warm-up), and,
//! when `PYTHON` names an interpreter with prometheus_client, with
//! prometheus_client's collector (process time minus that of an empty
//! directory). Prints the timings; asserts only that the merged totals are
//! right.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    CounterVec, GaugeMode, GaugeVec, HistogramVec, MetricsDir, MultiProcessCollector,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes one worker's files into `dir` (this process is that worker).
fn write_template(dir: &Path) -> Res<()> {
    let w = MetricsDir::open(dir)?;
    let reqs = CounterVec::new_in(
        &w,
        Opts::new("http_requests_total", "Requests."),
        &["method", "path", "status"],
    )?;
    for (m, p, s) in [
        ("GET", "/", "200"),
        ("GET", "/api/items", "200"),
        ("GET", "/api/items", "404"),
        ("POST", "/api/items", "201"),
        ("POST", "/api/items", "400"),
        ("GET", "/health", "200"),
    ] {
        reqs.with_label_values(&[m, p, s]).inc();
    }
    let lat = HistogramVec::new_in(
        &w,
        HistogramOpts::new("http_request_duration_seconds", "Latency."),
        &["path"],
    )?;
    lat.with_label_values(&["/"]).observe(0.02);
    lat.with_label_values(&["/api/items"]).observe(0.2);
    let inflight = GaugeVec::new_in(
        &w,
        Opts::new("inflight", "In flight."),
        &["pool"],
        GaugeMode::LiveSum,
    )?;
    inflight.with_label_values(&["main"]).set(0.0);
    Ok(())
}

/// Copies every file of `template` (named `*_{pid}.db`) into `out` once per
/// identifier, cut to its used bytes and extended (sparse) to 64 KiB.
fn copy_as(template: &Path, out: &Path, ids: impl Iterator<Item = String> + Clone) -> Res<usize> {
    let me = std::process::id().to_string();
    let mut n = 0;
    for e in std::fs::read_dir(template)? {
        let e = e?;
        let name = e.file_name().into_string().map_err(|_| "bad name")?;
        let Some(prefix) = name.strip_suffix(&format!("_{me}.db")) else {
            continue;
        };
        let img = std::fs::read(e.path())?;
        let used = prometheus_multiproc::format::read_used(&img).ok_or("short file")? as usize;
        // Our files carry the lock marker; copies have no writer: clear it,
        // as if written by prometheus_client (so live gauges are counted).
        let mut img = img[..used].to_vec();
        img[4..8].fill(0);
        for id in ids.clone() {
            let f = std::fs::File::create(out.join(format!("{prefix}_{id}.db")))?;
            std::os::unix::fs::FileExt::write_all_at(&f, &img, 0)?;
            f.set_len(64 * 1024)?;
            n += 1;
        }
    }
    Ok(n)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time of our collector over `dir`, and the merged request total.
fn time_ours(dir: &Path, runs: usize) -> Res<(Duration, f64)> {
    let c = MultiProcessCollector::new(dir)?;
    let scrape = c.collect_families()?; // warm-up (and page cache)
    if !scrape.warnings.is_empty() {
        return Err(format!("warnings: {:?}", scrape.warnings).into());
    }
    let total = scrape
        .families
        .iter()
        .filter(|f| f.name == "http_requests")
        .flat_map(|f| &f.samples)
        .map(|s| s.value)
        .sum();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let s = c.collect_families()?;
        times.push(t.elapsed());
        std::hint::black_box(s);
    }
    Ok((median(times), total))
}

/// Median wall time of prometheus_client's collector (a fresh interpreter
/// per run, as a sidecar exporter's scrape is not).
fn time_python(python: &str, dir: &Path, runs: usize) -> Res<Duration> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/py_collect.py");
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(python)
            .arg(&script)
            .arg(dir)
            .args(["--format", "text"])
            .output()?;
        times.push(t.elapsed());
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
    }
    Ok(median(times))
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let restarts: usize = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let slots: usize = args.next().map_or(Ok(8), |s| s.parse())?;

    let template = tempfile::tempdir()?;
    write_template(template.path())?;
    let by_pid = tempfile::tempdir()?;
    let by_slot = tempfile::tempdir()?;
    let n_pid = copy_as(
        template.path(),
        by_pid.path(),
        (0..restarts).map(|i| (100_000 + i).to_string()),
    )?;
    let n_slot = copy_as(
        template.path(),
        by_slot.path(),
        (0..slots).map(|i| format!("w{i}")),
    )?;

    let (t_pid, total_pid) = time_ours(by_pid.path(), 5)?;
    let (t_slot, total_slot) = time_ours(by_slot.path(), 51)?;
    assert_eq!(total_pid, (6 * restarts) as f64, "merged total, pid-named");
    assert_eq!(total_slot, (6 * slots) as f64, "merged total, worker ids");

    let mib = |files: usize| files as f64 * 64.0 / 1024.0;
    println!(
        "after {restarts} worker restarts (one counter, histogram and livesum gauge file each):"
    );
    println!(
        "  pid-named files: {n_pid:>6} files, {:>7.1} MiB allocated by real writers, our collector {:>9.3} ms (median of 5)",
        mib(n_pid),
        t_pid.as_secs_f64() * 1e3
    );
    println!(
        "  worker ids ({slots}):  {n_slot:>6} files, {:>7.1} MiB allocated by real writers, our collector {:>9.3} ms (median of 51)",
        mib(n_slot),
        t_slot.as_secs_f64() * 1e3
    );
    if let Ok(python) = std::env::var("PYTHON") {
        let empty = tempfile::tempdir()?;
        let base = time_python(&python, empty.path(), 3)?;
        let p_pid = time_python(&python, by_pid.path(), 3)?.saturating_sub(base);
        let p_slot = time_python(&python, by_slot.path(), 5)?.saturating_sub(base);
        println!(
            "  prometheus_client (minus {:.0} ms interpreter start): pid-named {:.1} ms, worker ids {:.1} ms",
            base.as_secs_f64() * 1e3,
            p_pid.as_secs_f64() * 1e3,
            p_slot.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
