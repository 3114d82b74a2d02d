//! The collector's cost model: what a scrape costs per file, per entry and
//! per distinct series, measured on generated counter directories and
//! fitted by least squares, then projected to a large host.
//!
//! ```text
//! cargo run --release --example cost_model [-- --reps N] [--large] [--point F,E,G]...
//! ```
//!
//! Three axes, each varied with the others fixed (see `docs/performance.md`,
//! "Cost model"):
//!
//! * files: 16 to 4,096 files of the same 8 keys (entries grow with files,
//!   series stay 8);
//! * entries: 40 files sharing 100 to 100,000 keys (entries grow 40 times
//!   faster than series; 4,000,000 entries at most, which a warm collector
//!   keeps whole);
//! * series: 64 files of 16 to 1,600 keys each (`--large`: 16,000), none
//!   shared (1,024 to 102,400 series, `--large` 1,024,000; one entry each).
//!
//! Each point's directory is written with `format::build_file` (the bytes
//! prometheus_client's writer produces; every file in its own key order,
//! sized 64 KiB doubled, sparse past `used`) under `$TMPDIR`, and removed
//! afterwards. Per point: `reps` cold scrapes (a new `MultiProcessCollector`
//! each time, `encode_text` into a `Vec`; files in the page cache), and
//! `reps` warm ones (one incremental collector, every file's first value
//! changed before each scrape; its output is checked against a cold
//! scrape), median and range of wall time and median CPU time; then the
//! peak memory of one scrape in a fresh child process (and, warm, what the
//! collector keeps). Two models are made from the three axes: one line
//! (constant costs per file, entry and series, least squares), and one
//! whose per-entry and per-series costs are read at each scale (they grow
//! as the distinct keys outgrow the caches; see `scale.rs`). The check
//! points (1,000 files × 10,000 shared entries; `--large` adds 1,000 ×
//! 10,000 in 100,000 series and 64 × 100,000; any `--point
//! files,entries_per_file,group`: `group` files share a key set) are
//! predicted out of sample by both, then both are projected to 1,000
//! workers × 100,000 series.
//!
//! `PROMETHEUS_MULTIPROC_COLLECT_THREADS` applies (`scripts/cost-model.sh`
//! sets 1: costs in one core's terms).

mod fit;
mod generate;
mod measure;
mod report;
mod scale;
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
    /// Files the warm scrapes reused (the fewest over the repetitions).
    pub(crate) warm_kept: Option<usize>,
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
    // 40 files: 4,000,000 entries at 100,000 keys, within what a warm
    // collector keeps (MAX_KEPT_ENTRIES, 4,194,304).
    for per_file in [100, 1_000, 10_000, 100_000] {
        v.push((
            Axis::Entries,
            Shape {
                files: 40,
                per_file,
                group: 40,
            },
        ));
    }
    let mut series = vec![16, 160, 1_600];
    if o.large {
        series.push(16_000);
    }
    for per_file in series {
        v.push((
            Axis::Series,
            Shape {
                files: 64,
                per_file,
                group: 1,
            },
        ));
    }
    v.push((
        Axis::Check,
        Shape {
            files: 1000,
            per_file: 10_000,
            group: 1000,
        },
    ));
    if o.large {
        v.push((
            Axis::Check,
            Shape {
                files: 1000,
                per_file: 10_000,
                group: 100,
            },
        ));
        v.push((
            Axis::Check,
            Shape {
                files: 64,
                per_file: 100_000,
                group: 64,
            },
        ));
    }
    v.extend(o.extra.iter().map(|s| (Axis::Check, *s)));
    v
}

fn measure_point(axis: Axis, shape: Shape, reps: usize) -> io::Result<Point> {
    let g = generate::generate(&shape)?;
    let (cold, out) = measure::cold(g.dir.path(), reps)?;
    let (warm, warm_kept) = match measure::warm(&g, reps)? {
        Some((t, kept)) => (Some(t), Some(kept)),
        None => (None, None),
    };
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
        warm_kept,
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
        large: false,
        extra: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => {
                o.reps = it.next().and_then(|n| n.parse().ok()).ok_or("--reps N")?;
            }
            "--large" => o.large = true,
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
        eprintln!("cost_model: {e}\nusage: cost_model [--reps N] [--large] [--point F,E,G]...");
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
