//! What the tool prints: the machine, the measured table (Markdown), the
//! fitted models, their out-of-sample checks and the projection.

use crate::fit::{Model, Obs, fit};
use crate::measure::{Timing, summary};
use crate::scale::ScaleModel;
use crate::{Axis, Point};

const MIB: f64 = 1024.0 * 1024.0;

fn first_line(path: &str, prefix: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(prefix)
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// One line naming the machine and the settings.
pub fn machine(reps: usize) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = first_line("/proc/cpuinfo", "model name");
    let mem = first_line("/proc/meminfo", "MemTotal");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let threads = std::env::var(prometheus_multiproc::env::COLLECT_THREADS_ENV)
        .unwrap_or_else(|_| "unset (all CPUs)".into());
    let tmp = std::env::temp_dir();
    let warm = if crate::warm::AVAILABLE {
        "cold and warm"
    } else {
        "cold only (no incremental collector in this build)"
    };
    println!(
        "machine: {cpus} CPUs ({model}), {mem} RAM, kernel {}, load {}; collect threads {threads}; {reps} reps per point, {warm}; files under {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        tmp.display()
    );
}

fn ms(t: &Timing) -> String {
    let (m, lo, hi) = summary(&t.wall);
    format!("{m:.3} ({lo:.3}–{hi:.3})")
}

fn cpu(t: &Timing) -> String {
    format!("{:.3}", summary(&t.cpu).0)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.1}"))
}

/// One line on standard error per point done.
pub fn progress(p: &Point) {
    eprintln!(
        "{:>7} {:>5} files × {:>6} entries, {:>8} series: cold {} ms{}",
        p.axis.name(),
        p.shape.files,
        p.shape.per_file,
        p.shape.series(),
        ms(&p.cold),
        p.warm
            .as_ref()
            .map_or(String::new(), |w| format!(", warm {} ms", ms(w)))
    );
}

/// The measured table, in Markdown.
pub fn table(points: &[Point]) {
    println!();
    println!(
        "| axis | files | entries/file | series | entries | used MiB | output KiB | cold ms, median (min–max) | cold CPU ms | warm ms, median (min–max) | warm CPU ms | warm files kept | peak MiB cold | peak MiB warm | held MiB warm |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for p in points {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
            p.axis.name(),
            p.shape.files,
            p.shape.per_file,
            p.shape.series(),
            p.shape.entries(),
            p.used as f64 / MIB,
            p.out_bytes as f64 / 1024.0,
            ms(&p.cold),
            cpu(&p.cold),
            p.warm.as_ref().map_or("–".into(), ms),
            p.warm.as_ref().map_or("–".into(), cpu),
            p.warm_kept.map_or("–".into(), |k| k.to_string()),
            p.cold_peak,
            opt(p.warm_peak),
            opt(p.warm_held),
        );
    }
}

fn obs(points: &[Point], y: impl Fn(&Point) -> Option<f64>) -> Vec<Obs> {
    points
        .iter()
        .filter(|p| p.axis != Axis::Check)
        .filter_map(|p| {
            Some(Obs {
                // CAST: counts far below 2^53.
                files: p.shape.files as f64,
                entries: p.shape.entries() as f64,
                series: p.shape.series() as f64,
                y: y(p)?,
            })
        })
        .collect()
}

fn model_line(name: &str, m: Option<Model>) {
    match m {
        Some(m) => println!(
            "{name:<16} {:>9.0} ns/file {:>7.1} ns/entry {:>7.0} ns/series {:>9.3} ms fixed",
            m.per_file * 1e6,
            m.per_entry * 1e6,
            m.per_series * 1e6,
            m.fixed
        ),
        None => println!("{name:<16} (not enough points)"),
    }
}

/// The time models, in ms: one line fitted over every axis (cold/warm ×
/// wall/CPU), and the scale-dependent ones (wall).
struct Models {
    cold: Option<Model>,
    cold_cpu: Option<Model>,
    warm: Option<Model>,
    warm_cpu: Option<Model>,
    cold_scale: Option<ScaleModel>,
    warm_scale: Option<ScaleModel>,
}

fn med(t: &Timing) -> f64 {
    summary(&t.wall).0
}

fn med_cpu(t: &Timing) -> f64 {
    summary(&t.cpu).0
}

/// Fits, prints the coefficients, the checks and the projection.
pub fn models(points: &[Point]) {
    let m = Models {
        cold: fit(&obs(points, |p| Some(med(&p.cold)))),
        cold_cpu: fit(&obs(points, |p| Some(med_cpu(&p.cold)))),
        warm: fit(&obs(points, |p| p.warm.as_ref().map(med))),
        warm_cpu: fit(&obs(points, |p| p.warm.as_ref().map(med_cpu))),
        cold_scale: ScaleModel::build(points, |p| Some(med(&p.cold))),
        warm_scale: ScaleModel::build(points, |p| p.warm.as_ref().map(med)),
    };
    println!();
    println!(
        "one line: time ≈ a·files + b·entries + c·series + d (least squares on the files/entries/series points, relative error)"
    );
    model_line("cold wall", m.cold);
    model_line("cold CPU", m.cold_cpu);
    model_line("warm wall", m.warm);
    model_line("warm CPU", m.warm_cpu);
    println!();
    println!(
        "by scale: time ≈ d + a·files + c(S)·series + b(S)·(entries − series), c and b read at each level S of distinct series (wall)"
    );
    scale_lines("cold", m.cold_scale.as_ref());
    scale_lines("warm", m.warm_scale.as_ref());
    checks(points, &m);
    projection(points, &m);
}

fn scale_lines(name: &str, m: Option<&ScaleModel>) {
    let Some(m) = m else {
        println!("{name}: (not enough points)");
        return;
    };
    let levels = |v: &[(f64, f64)]| {
        v.iter()
            .map(|(s, c)| format!("{s:.0}: {:.0}", c * 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{name}: {:.0} ns/file (with its 8 entries), {:.3} ms fixed; ns/series at S = {}; ns/entry after the first at S = {}",
        m.per_file * 1e6,
        m.fixed,
        levels(&m.per_series),
        levels(&m.per_entry)
    );
}

fn predict(m: Option<Model>, files: f64, entries: f64, series: f64) -> Option<f64> {
    m.map(|m| m.predict(files, entries, series))
}

fn predict_scale(m: Option<&ScaleModel>, files: f64, entries: f64, series: f64) -> Option<f64> {
    m.map(|m| m.predict(files, entries, series))
}

/// The share of `entries` whose layouts a warm collector keeps
/// (`MAX_KEPT_ENTRIES`); the files of the rest are read whole, as cold.
fn kept_share(entries: f64) -> f64 {
    // CAST: 2^22, exact.
    (prometheus_multiproc::MAX_KEPT_ENTRIES as f64 / entries).min(1.0)
}

/// A warm prediction: the kept share at the warm cost, the rest cold.
fn mix(warm: Option<f64>, cold: Option<f64>, entries: f64) -> Option<f64> {
    let q = kept_share(entries);
    Some(q * warm? + (1.0 - q) * cold?)
}

fn cell(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2}"))
}

fn checks(points: &[Point], m: &Models) {
    println!();
    println!(
        "measured against the models, ms (check points were not fitted; the by-scale model is exact on the points it was read from; warm beyond MAX_KEPT_ENTRIES mixed with cold):"
    );
    println!(
        "| point | files | entries/file | series | cold | one line | by scale | warm | one line | by scale |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for p in points {
        // CAST: counts far below 2^53.
        let (f, e, s) = (
            p.shape.files as f64,
            p.shape.entries() as f64,
            p.shape.series() as f64,
        );
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
            p.axis.name(),
            p.shape.files,
            p.shape.per_file,
            p.shape.series(),
            med(&p.cold),
            cell(predict(m.cold, f, e, s)),
            cell(predict_scale(m.cold_scale.as_ref(), f, e, s)),
            cell(p.warm.as_ref().map(med)),
            cell(mix(predict(m.warm, f, e, s), predict(m.cold, f, e, s), e)),
            cell(mix(
                predict_scale(m.warm_scale.as_ref(), f, e, s),
                predict_scale(m.cold_scale.as_ref(), f, e, s),
                e
            )),
        );
    }
}

/// The hosts projected to: name, files, entries, series.
const SCENARIOS: [(&str, f64, f64, f64); 5] = [
    (
        "1,000 workers, each writes all 100k series",
        4000.0,
        1e8,
        1e5,
    ),
    (
        "1,000 workers, all 100k series, 1M output series",
        4000.0,
        1e8,
        1e6,
    ),
    (
        "1,000 workers, each writes 10k of 100k series",
        4000.0,
        1e7,
        1e5,
    ),
    (
        "1,000 workers, 10k each, 1M output series",
        4000.0,
        1e7,
        1e6,
    ),
    (
        "one shard of 64 workers, all 100k series",
        256.0,
        6.4e6,
        1e5,
    ),
];

/// Bytes per entry on disk (used, allocated) and of output per series,
/// from the largest points; peak memory per series and per entry from a
/// fit (unweighted: the large points decide).
fn projection(points: &[Point], m: &Models) {
    let biggest = |key: fn(&Point) -> usize| points.iter().max_by_key(|p| key(p));
    let (Some(pe), Some(ps)) = (
        biggest(|p| p.shape.entries()),
        biggest(|p| p.shape.series()),
    ) else {
        return;
    };
    // CAST: sizes and counts far below 2^53.
    let used_per_entry = pe.used as f64 / pe.shape.entries() as f64;
    let alloc_per_entry = pe.allocated as f64 / pe.shape.entries() as f64;
    let out_per_series = ps.out_bytes as f64 / ps.shape.series() as f64;
    let mem = crate::fit::fit_unweighted(&obs(points, |p| Some(p.cold_peak)));
    let held = crate::fit::fit_unweighted(&obs(points, |p| p.warm_held));
    println!();
    println!(
        "per entry on disk: {used_per_entry:.1} bytes used, {alloc_per_entry:.1} allocated; output: {out_per_series:.1} bytes per series"
    );
    mem_line("cold peak", mem);
    mem_line("warm held", held);
    println!();
    println!(
        "projection (4 files per worker; times from the by-scale model, one line in parentheses):"
    );
    println!(
        "| host | files | entries | series | cold ms | warm ms | used GiB | allocated GiB | output MiB | cold peak MiB | warm held MiB |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let whole = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.0}"));
    for (name, f, e, s) in SCENARIOS {
        println!(
            "| {name} | {f:.0} | {e:.0e} | {s:.0e} | {} ({}) | {} ({}) | {:.1} | {:.1} | {:.0} | {} | {} |",
            whole(predict_scale(m.cold_scale.as_ref(), f, e, s)),
            whole(predict(m.cold, f, e, s)),
            whole(mix(
                predict_scale(m.warm_scale.as_ref(), f, e, s),
                predict_scale(m.cold_scale.as_ref(), f, e, s),
                e
            )),
            whole(mix(predict(m.warm, f, e, s), predict(m.cold, f, e, s), e)),
            used_per_entry * e / (MIB * 1024.0),
            alloc_per_entry * e / (MIB * 1024.0),
            out_per_series * s / MIB,
            whole(predict(mem, f, e, s)),
            whole(predict(held, f * kept_share(e), e * kept_share(e), s)),
        );
    }
}

/// A memory model (fitted in MiB), per item in bytes.
fn mem_line(name: &str, m: Option<Model>) {
    match m {
        Some(m) => println!(
            "{name:<16} {:>9.0} B/file {:>9.1} B/entry {:>7.0} B/series {:>9.1} MiB fixed",
            m.per_file * MIB,
            m.per_entry * MIB,
            m.per_series * MIB,
            m.fixed
        ),
        None => println!("{name:<16} (not enough points)"),
    }
}
