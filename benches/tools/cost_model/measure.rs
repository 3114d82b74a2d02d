//! Timing a point (cold: a fresh collector per scrape; warm: one reused
//! incremental collector) and measuring a scrape's memory in a child
//! process.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use prometheus_multiproc::MultiProcessCollector;

use crate::generate::{Generated, bump};

/// Wall and CPU milliseconds of each repetition.
#[derive(Default)]
pub struct Timing {
    pub wall: Vec<f64>,
    pub cpu: Vec<f64>,
}

/// Median, min and max of a sample.
pub fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

/// CPU time of the whole process (all threads), in milliseconds.
fn cpu_ms() -> f64 {
    use nix::time::{ClockId, clock_gettime};
    let ts = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("clock_gettime");
    // CAST: seconds and nanoseconds of a process's CPU time fit f64 exactly enough.
    ts.tv_sec() as f64 * 1e3 + ts.tv_nsec() as f64 / 1e6
}

/// One timed `encode_text` into `out` (cleared first). Returns the files
/// the scrape reused from the previous one (0 for a cold scrape).
fn timed(c: &MultiProcessCollector, out: &mut Vec<u8>, t: &mut Timing) -> io::Result<usize> {
    out.clear();
    let cpu = cpu_ms();
    let start = Instant::now();
    let scrape = c.encode_text(out)?;
    t.wall.push(start.elapsed().as_secs_f64() * 1e3);
    t.cpu.push(cpu_ms() - cpu);
    if !scrape.warnings.is_empty() {
        return Err(io::Error::other(format!("warnings: {:?}", scrape.warnings)));
    }
    Ok(scrape.stats.files_reused)
}

/// `reps` cold scrapes, each by a collector made for it. Returns the
/// timings and the last exposition.
pub fn cold(dir: &Path, reps: usize) -> io::Result<(Timing, Vec<u8>)> {
    let mut t = Timing::default();
    let mut out = Vec::new();
    for _ in 0..reps {
        let c = MultiProcessCollector::new(dir).map_err(io::Error::other)?;
        timed(&c, &mut out, &mut t)?;
    }
    Ok((t, out))
}

/// An incremental collector, when the library has one.
pub fn warm_collector(dir: &Path) -> io::Result<Option<MultiProcessCollector>> {
    let c = MultiProcessCollector::new(dir).map_err(io::Error::other)?;
    Ok(crate::warm::incremental(c))
}

/// `reps` scrapes by one incremental collector, after one untimed scrape
/// that learns the layouts; every file's first value changes before each
/// timed scrape. The last exposition is checked against a cold scrape of
/// the same files. Returns the timings and the fewest files a timed scrape
/// reused (the collector keeps at most `MAX_KEPT_ENTRIES` entries' layouts;
/// other files are read whole every time), or `None` when the library has
/// no incremental collector.
pub fn warm(g: &Generated, reps: usize) -> io::Result<Option<(Timing, usize)>> {
    let Some(c) = warm_collector(g.dir.path())? else {
        return Ok(None);
    };
    let mut t = Timing::default();
    let mut out = Vec::new();
    timed(&c, &mut out, &mut Timing::default())?;
    let mut reused = usize::MAX;
    for round in 0..reps {
        bump(g, round)?;
        reused = reused.min(timed(&c, &mut out, &mut t)?);
    }
    let (_, cold_out) = cold(g.dir.path(), 1)?;
    if cold_out != out {
        return Err(io::Error::other("warm exposition differs from a cold one"));
    }
    Ok(Some((t, reused)))
}

/// Fields of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The child's side: one cold scrape (or, `warm`, two scrapes by one
/// incremental collector), then `peak_kib=` (VmHWM minus the VmRSS before
/// the scrape) and `anon_kib=` (anonymous memory still held, collector
/// alive, minus that before and the output buffer).
pub fn child(dir: &Path, warm: bool) -> io::Result<()> {
    let rss0 = status_kib("VmRSS:");
    let anon0 = status_kib("RssAnon:");
    let mut out = Vec::new();
    let c = if warm {
        let c = warm_collector(dir)?.ok_or_else(|| io::Error::other("no incremental collector"))?;
        c.encode_text(&mut out)?;
        out.clear();
        c
    } else {
        MultiProcessCollector::new(dir).map_err(io::Error::other)?
    };
    c.encode_text(&mut out)?;
    // CAST: a buffer's capacity in KiB fits u64.
    let out_kib = (out.capacity() / 1024) as u64;
    let anon = status_kib("RssAnon:").saturating_sub(anon0 + out_kib);
    let peak = status_kib("VmHWM:").saturating_sub(rss0);
    std::hint::black_box((&c, &out));
    println!("peak_kib={peak} anon_kib={anon}");
    Ok(())
}

/// Runs [`child`] in a fresh process: (peak MiB, anonymous MiB held).
pub fn memory(dir: &Path, warm: bool) -> io::Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let mode = if warm { "warm" } else { "cold" };
    let out = Command::new(exe)
        .arg("--child")
        .arg(mode)
        .arg(dir)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> f64 {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    Ok((field("peak_kib="), field("anon_kib=")))
}
