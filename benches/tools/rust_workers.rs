//! Fills a metrics directory the way a pre-fork Rust server does: WORKERS
//! forked processes, each writing through this crate's writer (so the files
//! are created, grown and filled as in production) 1,600 counter series and
//! 200 histograms of 15 buckets, in an order of its own. Used by
//! `docs/performance.md` for the scrape of a directory with two kinds of
//! file only, where most of the work is one kind.
//!
//! ```text
//! cargo run --release --example rust_workers -- DIR [WORKERS]   # default 64
//! ```
//!
//! DIR is emptied first (it must not hold anything else).
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{CounterVec, HistogramVec, MetricsDir};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One worker's series, in an order of its own (seeded by `worker`).
fn work(dir: &MetricsDir, worker: u64) -> Res<()> {
    let labels = ["method", "status", "handler"];
    let opts = Opts::new("http_requests_total", "Requests handled.");
    let requests = CounterVec::new_in(dir, opts, &labels)?;
    let opts = HistogramOpts::new("http_request_duration_seconds", "Request latency.");
    let latency = HistogramVec::new_in(dir, opts, &["handler", "method"])?;
    let mut order: Vec<usize> = (0..1600).collect();
    let mut x = (worker + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    for &i in &order {
        let method = ["GET", "POST", "PUT", "DELETE"][i % 4];
        let status = ["200", "201", "404", "500"][(i / 4) % 4];
        let handler = format!("/api/v1/resource{}", i / 16);
        requests
            .get_metric_with_label_values(&[method, status, &handler])?
            .inc_by(i as f64);
        if i < 200 {
            latency
                .get_metric_with_label_values(&[&handler, method])?
                .observe(0.01 * i as f64);
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        return Err("usage: rust_workers DIR [WORKERS]".into());
    };
    let workers: u64 = match args.get(1) {
        Some(n) => n.parse()?,
        None => 64,
    };
    if std::path::Path::new(path).exists() {
        std::fs::remove_dir_all(path)?;
    }
    std::fs::create_dir_all(path)?;
    let dir = MetricsDir::open(path)?;
    for worker in 0..workers {
        // SAFETY: the process is single-threaded here; the child only runs
        // `work` (this crate's writer moves its handles to the child's own
        // files after the fork) and exits without returning.
        match unsafe { libc::fork() } {
            -1 => return Err(std::io::Error::last_os_error().into()),
            0 => {
                let code = match work(&dir, worker) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("worker {worker}: {e}");
                        1
                    }
                };
                std::process::exit(code);
            }
            pid => {
                let mut status = 0;
                // SAFETY: waits for the child just forked; `status` is a
                // valid out pointer.
                if unsafe { libc::waitpid(pid, &mut status, 0) } != pid || status != 0 {
                    return Err(format!("worker {worker} failed (status {status})").into());
                }
            }
        }
    }
    let files = std::fs::read_dir(path)?.count();
    println!("{path}: {workers} workers, {files} files");
    Ok(())
}
