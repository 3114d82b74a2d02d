//! Collects a metrics directory and writes the text exposition to stdout, or,
//! with `--repeat N`, times N collections in this one process and prints the
//! timings (used by `scripts/bench-vs-python.sh` for the in-process numbers).
//!
//! ```text
//! cargo run --release --example collect_bench -- DIR               # exposition on stdout
//! cargo run --release --example collect_bench -- DIR --repeat 20   # timings on stdout
//! cargo run --release --example collect_bench -- DIR --repeat 20 --incremental
//! ```
//!
//! `--incremental` scrapes with one collector made with
//! `with_incremental(true)`: its first scrape is timed apart (`first_ms`),
//! the repetitions reuse the layouts it kept. `--touch` adds 1.0 to the
//! first value of every file before each timed scrape (untimed; it changes
//! the directory's values, so every file kind is merged again).
//!
//! With `--repeat`, each repetition is a whole scrape as a server does it:
//! list, read, merge, encode into a buffer (not written anywhere). Output is
//! one line: `median_ms=.. min_ms=.. max_ms=.. cpu_ms=.. bytes=.. reps=..`,
//! plus `floor_ms=..`, the median time to list the directory and read every
//! file's used bytes without merging (the least any collector can do).
//! `cpu_ms` is the median CPU time of the process (all threads, user and
//! system) per scrape: less noisy than wall time on a busy machine.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use prometheus_multiproc::MultiProcessCollector;
use prometheus_multiproc::format::parse_file_name;
use prometheus_multiproc::format::{HEADER_LEN, read_used, value_offset};

fn raw_read(dir: &Path, buf: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("dir entry");
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if parse_file_name(name).is_none() {
            continue;
        }
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        let mut header = [0u8; HEADER_LEN];
        if f.read_exact_at(&mut header, 0).is_err() {
            continue;
        }
        let used = read_used(&header).unwrap_or(0).max(HEADER_LEN as i32) as usize;
        if buf.len() < used {
            buf.resize(used, 0);
        }
        if f.read_exact_at(&mut buf[HEADER_LEN..used], HEADER_LEN as u64)
            .is_ok()
        {
            total += used;
        }
    }
    total
}

/// Adds 1.0 to the first value of every metrics file in `dir` (in place,
/// as a writer does): every file changed, its layout not.
fn touch_every_file(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("dir entry");
        let name = e.file_name();
        if name.to_str().and_then(parse_file_name).is_none() {
            continue;
        }
        let Ok(f) = File::options().read(true).write(true).open(e.path()) else {
            continue;
        };
        let mut head = [0u8; HEADER_LEN + 4];
        if f.read_exact_at(&mut head, 0).is_err() || read_used(&head).unwrap_or(0) <= 8 {
            continue;
        }
        let key_len = u32::from_le_bytes(head[HEADER_LEN..].try_into().expect("4 bytes"));
        let at = (HEADER_LEN + value_offset(key_len as usize)) as u64;
        let mut v = [0u8; 8];
        if f.read_exact_at(&mut v, at).is_ok() {
            let bumped = f64::from_le_bytes(v) + 1.0;
            f.write_all_at(&bumped.to_le_bytes(), at).expect("write");
        }
    }
}

/// CPU time of the whole process (all threads), in milliseconds.
fn cpu_ms() -> f64 {
    use nix::time::{ClockId, clock_gettime};
    let ts = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("clock_gettime");
    // CAST: seconds and nanoseconds of a process's CPU time fit f64 exactly enough.
    ts.tv_sec() as f64 * 1e3 + ts.tv_nsec() as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let incremental = args.iter().any(|a| a == "--incremental");
    let dirty = args.iter().any(|a| a == "--touch");
    args.retain(|a| a != "--incremental" && a != "--touch");
    let (dir, repeat) = match args.as_slice() {
        [dir] => (dir.clone(), None),
        [dir, flag, n] if flag == "--repeat" => {
            (dir.clone(), Some(n.parse::<usize>().expect("--repeat N")))
        }
        _ => {
            eprintln!("usage: collect_bench DIR [--repeat N] [--incremental] [--touch]");
            std::process::exit(2);
        }
    };
    let collector = MultiProcessCollector::new(&dir).unwrap_or_else(|e| {
        eprintln!("collect_bench: {e}");
        std::process::exit(1);
    });
    let collector = collector.with_incremental(incremental);
    // An incremental collector's first scrape reads everything: timed
    // apart (`first_ms`), the repetitions are the scrapes after it.
    let first = incremental.then(|| {
        let t = Instant::now();
        collector.encode_text(&mut Vec::new()).expect("collect");
        t.elapsed().as_secs_f64() * 1e3
    });
    let Some(reps) = repeat else {
        let mut out = Vec::new();
        let scrape = collector.encode_text(&mut out).expect("collect");
        scrape.print_warnings();
        std::io::stdout().lock().write_all(&out).expect("stdout");
        return;
    };
    let reps = reps.max(1);
    let mut out = Vec::new();
    let mut times = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    for _ in 0..reps {
        out.clear();
        if dirty {
            touch_every_file(Path::new(&dir));
        }
        let c = cpu_ms();
        let t = Instant::now();
        collector.encode_text(&mut out).expect("collect");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(cpu_ms() - c);
    }
    let mut buf = Vec::new();
    let mut floor = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(raw_read(Path::new(&dir), &mut buf));
        floor.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    if let Some(first) = first {
        print!("first_ms={first:.3} ");
    }
    println!(
        "median_ms={:.3} min_ms={min:.3} max_ms={max:.3} cpu_ms={:.3} bytes={} reps={reps} floor_ms={:.3}",
        median(&mut times),
        median(&mut cpu),
        out.len(),
        median(&mut floor)
    );
}
