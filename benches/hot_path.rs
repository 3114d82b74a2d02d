//! Hot-path cost of this crate's metrics (values in a mapped file) beside the
//! `prometheus` crate's in-memory metrics, in the same criterion group so that
//! both run under the same machine load.
//!
//! Every benchmark works on an existing series (files created, slots resolved,
//! children cached): the cost measured is the steady-state cost per call.
//!
//! The `2 threads` benchmarks run two threads hammering one series at the
//! same time (the worst case: one cache line bouncing between cores). Each
//! thread performs `iters` calls; the time reported is the wall-clock time from
//! the first thread's start to the last thread's end, divided by `iters`: the
//! time per call seen by each thread under contention (the pair completes two
//! calls in that time).
//!
//! Run: `cargo bench --bench hot_path` (filter with e.g. `-- counter_inc`).
//! The metrics directory is a temporary directory under `$TMPDIR` (default
//! `/tmp`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_multiproc as pm;

/// Values observed by the histogram benchmarks: spread over the buckets, so
/// that the bucket search is not always the same branch pattern.
const OBSERVATIONS: [f64; 8] = [0.003, 0.02, 0.07, 0.3, 0.8, 2.0, 6.0, 12.0];

/// Runs `op(i)` for `i` in `0..iters` on this thread; returns the elapsed
/// time. The loop index lives in a register, so the value passed to a metric
/// never goes through memory (a closure-captured `v += 1.0` does, and then a
/// store into the metric that the compiler cannot prove distinct from `v`
/// turns the benchmark into a store-to-load dependency chain).
#[inline(always)]
fn one_thread<F: Fn(u64)>(iters: u64, op: F) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        op(i);
    }
    start.elapsed()
}

/// Runs `op` `iters` times on each of two threads started together; returns
/// the wall-clock span from the earliest start to the latest end.
fn two_threads<F: Fn(u64) + Sync>(iters: u64, op: F) -> Duration {
    let barrier = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(i);
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

fn histogram_bounds() -> Vec<f64> {
    // The default 15 buckets: 14 finite bounds and +Inf (which the
    // `prometheus` crate adds itself).
    pm::DEFAULT_BUCKETS[..14].to_vec()
}

fn bench_counter(c: &mut Criterion, dir: &pm::MetricsDir) {
    let ours = pm::Counter::new_in(dir, "bench_counter_total", "Bench.").unwrap();
    let theirs = prometheus::Counter::new("bench_counter_total", "Bench.").unwrap();

    let mut g = c.benchmark_group("counter_inc");
    g.bench_function("multiproc/1 thread", |b| {
        b.iter_custom(|iters| one_thread(iters, |_| black_box(&ours).inc()))
    });
    g.bench_function("prometheus/1 thread", |b| {
        b.iter_custom(|iters| one_thread(iters, |_| black_box(&theirs).inc()))
    });
    g.bench_function("multiproc/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |_| black_box(&ours).inc()))
    });
    g.bench_function("prometheus/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |_| black_box(&theirs).inc()))
    });
    g.finish();
}

fn bench_gauge(c: &mut Criterion, dir: &pm::MetricsDir) {
    let ours = pm::Gauge::new_in(dir, "bench_gauge", "Bench.", pm::GaugeMode::LiveSum).unwrap();
    let theirs = prometheus::Gauge::new("bench_gauge", "Bench.").unwrap();

    let mut g = c.benchmark_group("gauge_set");
    g.bench_function("multiproc/1 thread", |b| {
        b.iter_custom(|iters| one_thread(iters, |i| black_box(&ours).set(i as f64)))
    });
    g.bench_function("prometheus/1 thread", |b| {
        b.iter_custom(|iters| one_thread(iters, |i| black_box(&theirs).set(i as f64)))
    });
    g.bench_function("multiproc/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| black_box(&ours).set(i as f64)))
    });
    g.bench_function("prometheus/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| black_box(&theirs).set(i as f64)))
    });
    g.finish();
}

fn bench_histogram(c: &mut Criterion, dir: &pm::MetricsDir) {
    let ours = pm::Histogram::with_opts_in(
        dir,
        prometheus::HistogramOpts::new("bench_histogram_seconds", "Bench.")
            .buckets(histogram_bounds()),
    )
    .unwrap();
    assert_eq!(ours.buckets().len(), 15);
    let theirs = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("bench_histogram_seconds", "Bench.")
            .buckets(histogram_bounds()),
    )
    .unwrap();
    let obs = |i: u64| OBSERVATIONS[(i % OBSERVATIONS.len() as u64) as usize];

    let mut g = c.benchmark_group("histogram_observe");
    g.bench_function("multiproc/1 thread", |b| {
        b.iter_custom(|iters| one_thread(iters, |i| black_box(&ours).observe(black_box(obs(i)))))
    });
    g.bench_function("prometheus/1 thread", |b| {
        b.iter_custom(|iters| one_thread(iters, |i| black_box(&theirs).observe(black_box(obs(i)))))
    });
    g.bench_function("multiproc/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| black_box(&ours).observe(black_box(obs(i)))))
    });
    g.bench_function("prometheus/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| black_box(&theirs).observe(black_box(obs(i)))))
    });
    g.finish();
}

fn bench_with_label_values(c: &mut Criterion, dir: &pm::MetricsDir) {
    let labels = ["method", "status"];
    let ours = pm::CounterVec::new_in(
        dir,
        prometheus::Opts::new("bench_requests_total", "Bench."),
        &labels,
    )
    .unwrap();
    let theirs = prometheus::CounterVec::new(
        prometheus::Opts::new("bench_requests_total", "Bench."),
        &labels,
    )
    .unwrap();
    // A realistic family: a few dozen children, the looked-up one among them.
    for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"] {
        for s in ["200", "201", "204", "301", "400", "404", "500", "503"] {
            ours.with_label_values(&[m, s]).inc();
            theirs.with_label_values(&[m, s]).inc();
        }
    }
    let values: [&str; 2] = ["GET", "200"];

    let mut g = c.benchmark_group("with_label_values");
    g.bench_function("multiproc/lookup", |b| {
        b.iter(|| black_box(&ours).with_label_values(black_box(&values)))
    });
    g.bench_function("prometheus/lookup", |b| {
        b.iter(|| black_box(&theirs).with_label_values(black_box(&values)))
    });
    g.bench_function("multiproc/lookup+inc", |b| {
        b.iter(|| black_box(&ours).with_label_values(black_box(&values)).inc())
    });
    g.bench_function("prometheus/lookup+inc", |b| {
        b.iter(|| {
            black_box(&theirs)
                .with_label_values(black_box(&values))
                .inc()
        })
    });
    g.finish();
}

fn hot_path(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = pm::MetricsDir::open(tmp.path()).unwrap();
    bench_counter(c, &dir);
    bench_gauge(c, &dir);
    bench_histogram(c, &dir);
    bench_with_label_values(c, &dir);
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_path
}
criterion_main!(benches);
