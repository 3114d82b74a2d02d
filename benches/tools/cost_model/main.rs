//! The collector's cost model: what a scrape costs per file, per entry and
//! per distinct series, measured on generated counter directories and
//! fitted by least squares, then projected to a large host.
//!
//! ```text
//! cargo run --release --example cost_model [-- --reps N] [--no-large] [--point F,E,G]...
//! ```
//!
//! Three axes, each varied with the others fixed (see `docs/performance.md`,
//! "Cost model"):
//!
//! * files: 16 to 4,096 files of the same 8 keys (entries grow with files,
//!   series stay 8);
//! * entries: 64 files sharing 100 to 100,000 keys (entries grow 64 times
//!   faster than series);
//! * series: 64 files of 16 to 16,000 keys each, none shared (1,024 to
//!   1,024,000 series, one entry each).
//!
//! Each point's directory is written with `format::build_file` (the bytes
//! prometheus_client's writer produces; every file in its own key order,
//! sized 64 KiB doubled, sparse past `used`) under `$TMPDIR`, and removed
//! afterwards. Per point: `reps` cold scrapes (a new `MultiProcessCollector`
//! each time, `encode_text` into a `Vec`; files in the page cache), and
//! `reps` warm ones (one incremental collector, every file's first value
//! changed before each scrape; its output is checked against a cold
//! scrape), median and range of wall time and median CPU time; then the
//! peak memory of one scrape in a fresh child process. The model is fitted
//! on the three axes; the large points (1,000 files × 10,000 entries, and
//! any `--point files,entries_per_file,group`: `group` files share a key
//! set) are predicted out of sample, then the model is projected to 1,000
//! workers × 100,000 series.
//!
//! `PROMETHEUS_MULTIPROC_COLLECT_THREADS` applies (`scripts/cost-model.sh`
//! sets 1: costs in one core's terms).

// Reads its CPU clock through libc: `unsafe` there, with a SAFETY comment.
#![allow(unsafe_code)]

mod fit;
mod generate;
mod measure;
mod report;
mod warm;

use std::io;
use std::path::Path;

use generate::Shape;

/// Which set a point belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Axis {
    Files,
    Entries,
    Series,
    /// Predicted out of sample, not fitted.
    Check,
}

impl Axis {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Axis::Files => "files",
            Axis::Entries => "entries",
            Axis::Series => "series",
            Axis::Check => "check",
        }
    }
}

/// What one point measured.
pub(crate) struct Point {
    pub(crate) axis: Axis,
    pub(crate) shape: Shape,
    pub(crate) used: u64,
    pub(crate) allocated: u64,
    pub(crate) out_bytes: usize,
    pub(crate) cold: measure::Timing,
    pub(crate) warm: Option<measure::Timing>,
    /// Peak MiB of a cold scrape, of two warm ones, and what the warm
    /// collector holds after (anonymous memory, output excluded).
    pub(crate) cold_peak: f64,
    pub(crate) warm_peak: Option<f64>,
    pub(crate) warm_held: Option<f64>,
}

struct Options {
    reps: usize,
    large: bool,
    extra: Vec<Shape>,
}

fn points(o: &Options) -> Vec<(Axis, Shape)> {
    let mut v = Vec::new();
    for files in [16, 64, 256, 1024, 4096] {
        v.push((
            Axis::Files,
            Shape {
                files,
                per_file: 8,
                group: files,
            },
        ));
    }
    for per_file in [100, 1_000, 10_000, 100_000] {
        v.push((
            Axis::Entries,
            Shape {
                files: 64,
                per_file,
                group: 64,
            },
        ));
    }
    for per_file in [16, 160, 1_600, 16_000] {
        v.push((
            Axis::Series,
            Shape {
                files: 64,
                per_file,
                group: 1,
            },
        ));
    }
    if o.large {
        v.push((
            Axis::Check,
            Shape {
                files: 1000,
                per_file: 10_000,
                group: 1000,
            },
        ));
        v.push((
            Axis::Check,
            Shape {
                files: 1000,
                per_file: 10_000,
                group: 100,
            },
        ));
    }
    v.extend(o.extra.iter().map(|s| (Axis::Check, *s)));
    v
}

fn measure_point(axis: Axis, shape: Shape, reps: usize) -> io::Result<Point> {
    let g = generate::generate(&shape)?;
    let (cold, out) = measure::cold(g.dir.path(), reps)?;
    let warm = measure::warm(&g, reps)?;
    let (cold_peak, _) = measure::memory(g.dir.path(), false)?;
    let (warm_peak, warm_held) = if warm.is_some() {
        let (p, h) = measure::memory(g.dir.path(), true)?;
        (Some(p), Some(h))
    } else {
        (None, None)
    };
    Ok(Point {
        axis,
        shape,
        used: g.used,
        allocated: g.allocated,
        out_bytes: out.len(),
        cold,
        warm,
        cold_peak,
        warm_peak,
        warm_held,
    })
}

fn parse_shape(s: &str) -> Option<Shape> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [files, per_file, group] if group >= 1 && files % group == 0 && per_file >= 1 => {
            Some(Shape {
                files,
                per_file,
                group,
            })
        }
        _ => None,
    }
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        reps: 5,
        large: true,
        extra: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => {
                o.reps = it.next().and_then(|n| n.parse().ok()).ok_or("--reps N")?;
            }
            "--no-large" => o.large = false,
            "--point" => {
                let s = it.next().and_then(|s| parse_shape(s));
                o.extra
                    .push(s.ok_or("--point FILES,ENTRIES_PER_FILE,GROUP (GROUP divides FILES)")?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.reps = o.reps.max(1);
    Ok(o)
}

/// `--write F,E,G`: generates one directory, keeps it and prints its path
/// (to profile a point with `collect_bench` or `perf`).
fn write_only(shape: &str) {
    let Some(shape) = parse_shape(shape) else {
        eprintln!("cost_model: --write FILES,ENTRIES_PER_FILE,GROUP");
        std::process::exit(2);
    };
    match generate::generate(&shape) {
        Ok(g) => println!("{}", g.dir.keep().display()),
        Err(e) => {
            eprintln!("cost_model: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, mode, dir] = args.as_slice()
        && flag == "--child"
    {
        if let Err(e) = measure::child(Path::new(dir), mode == "warm") {
            eprintln!("cost_model child: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let [flag, shape] = args.as_slice()
        && flag == "--write"
    {
        write_only(shape);
        return;
    }
    let o = options(&args).unwrap_or_else(|e| {
        eprintln!("cost_model: {e}\nusage: cost_model [--reps N] [--no-large] [--point F,E,G]...");
        std::process::exit(2);
    });
    report::machine(o.reps);
    let mut done = Vec::new();
    for (axis, shape) in points(&o) {
        match measure_point(axis, shape, o.reps) {
            Ok(p) => {
                report::progress(&p);
                done.push(p);
            }
            Err(e) => {
                eprintln!("cost_model: {shape:?}: {e}");
                std::process::exit(1);
            }
        }
    }
    report::table(&done);
    report::models(&done);
}
