//! The `metrics` facade (feature `metrics`): three forked workers emit through `counter!`, `gauge!` and `histogram!`; the merged scrape has exact totals and prometheus_client's collector reads the same.

use prometheus_multiproc::integrations::facade::Recorder;
use prometheus_multiproc::{GaugeMode, MetricsDir, MultiProcessCollector};

use crate::common::{Dir, fork_worker, run_py, wait_ok};

/// Stands in for a library instrumented through the facade only: it knows
/// nothing of this crate.
mod library {
    pub fn handle_jobs(worker: u64) {
        metrics::describe_counter!("jobs.processed", "Jobs processed.");
        metrics::describe_histogram!("job.seconds", "Job duration.");
        for i in 0..100u64 {
            let queue = if i % 4 == 0 { "slow" } else { "fast" };
            metrics::counter!("jobs.processed", "queue" => queue).increment(1);
            // CAST: small whole numbers.
            metrics::histogram!("job.seconds", "queue" => queue).record((i % 10) as f64 * 0.25);
        }
        metrics::counter!("bytes_total").increment(1000 * worker);
        // CAST: small whole numbers.
        metrics::gauge!("pool.size").set(worker as f64);
        metrics::gauge!("in_flight").increment(2.0);
        metrics::gauge!("in_flight").decrement(1.0);
    }
}

#[test]
fn three_forked_workers_emit_through_the_facade() {
    let d = Dir::new();
    let pids: Vec<_> = (1..=3u64)
        .map(|w| {
            let path = d.path().to_path_buf();
            fork_worker(move || {
                let dir = MetricsDir::open(&path).unwrap();
                let recorder = Recorder::builder(&dir)
                    .gauge_mode("pool_", GaugeMode::Max)
                    .gauge_mode("in_flight", GaugeMode::Sum)
                    .buckets("job_", vec![0.5, 1.0, 2.0])
                    .build();
                metrics::set_global_recorder(recorder).unwrap();
                library::handle_jobs(w);
            })
        })
        .collect();
    pids.into_iter().for_each(wait_ok);

    let mut ours = Vec::new();
    let scrape = MultiProcessCollector::new(d.path())
        .unwrap()
        .encode_text(&mut ours)
        .unwrap();
    assert!(scrape.warnings.is_empty(), "{:?}", scrape.warnings);
    let ours = String::from_utf8(ours).unwrap();
    for want in [
        "# HELP jobs_processed_total Jobs processed.\n",
        "jobs_processed_total{queue=\"slow\"} 75.0\n",
        "jobs_processed_total{queue=\"fast\"} 225.0\n",
        "bytes_total 6000.0\n",
        "# HELP job_seconds Job duration.\n",
        "job_seconds_bucket{le=\"0.5\",queue=\"fast\"} 60.0\n",
        "job_seconds_count{queue=\"slow\"} 75.0\n",
        "job_seconds_sum{queue=\"slow\"} 75.0\n",
        "pool_size 3.0\n",
        "in_flight 3.0\n",
    ] {
        assert!(ours.contains(want), "{want:?} not in\n{ours}");
    }
    let python = run_py(
        "py_collect.py",
        &[d.path().to_str().unwrap(), "--format", "text"],
    );
    // Line for line; families and samples come in another order from
    // Python (dictionary order), as everywhere in this suite.
    fn sorted(t: &str) -> Vec<&str> {
        let mut v: Vec<&str> = t.lines().collect();
        v.sort_unstable();
        v
    }
    assert_eq!(sorted(&ours), sorted(&python), "{ours}\n{python}");
}
