//! `collect` on a directory written by prometheus_client workers AND the library's writers (shared and own families): prometheus_client's `generate_latest` bytes, text and OpenMetrics.

use prometheus::{HistogramOpts, Opts};
use prometheus_multiproc::{
    CounterVec, Gauge, GaugeMode, GaugeVec, HistogramVec, MetricsDir, Summary,
};

use crate::cli::cmd;
use crate::common::{Dir, assert_same_body, in_worker, run_py};

/// Two forked Rust workers write families Python's "all" scenario also
/// writes (same names, help and labels) and families of their own, of every
/// type and of the gauge modes whose merge does not depend on the writer
/// being alive.
fn rust_workers(d: &Dir) {
    for i in 0..2 {
        in_worker(|| {
            let w = MetricsDir::open(d.path()).unwrap();
            let k = f64::from(i + 1);
            let reqs = CounterVec::new_in(
                &w,
                Opts::new("mp_requests", "Requests handled."),
                &["method", "path"],
            )
            .unwrap();
            reqs.with_label_values(&["GET", "/"]).inc_by(10.0 * k);
            reqs.with_label_values(&["PUT", "/rust"]).inc_by(k);
            let lat = HistogramVec::new_in(
                &w,
                HistogramOpts::new("mp_latency_seconds", "Latency (default buckets)."),
                &["route"],
            )
            .unwrap();
            lat.with_label_values(&["/"]).observe(0.07 * k);
            lat.with_label_values(&["/rust"]).observe(2.0);
            for mode in [
                GaugeMode::All,
                GaugeMode::Min,
                GaugeMode::Max,
                GaugeMode::Sum,
            ] {
                let name = format!("mp_gauge_{mode}");
                let g = GaugeVec::new_in(
                    &w,
                    Opts::new(name.as_str(), format!("Gauge in {mode} mode.")),
                    &["shard"],
                    mode,
                )
                .unwrap();
                g.with_label_values(&["a"]).set(5.0 * k);
                g.with_label_values(&["rust"]).set(-k);
                Gauge::new_in(&w, &format!("rs_{mode}"), "Rust only.", mode)
                    .unwrap()
                    .set(k);
            }
            Summary::new_in(&w, "rs_summary", "Rust summary.")
                .unwrap()
                .observe(0.5 * k);
        });
    }
}

/// The step 5 check of issue 13: `collect --dir D` (default text) and
/// `collect --format openmetrics` print exactly what prometheus_client
/// prints on a directory of Python- and Rust-written files.
#[test]
fn collect_on_a_mixed_directory_is_python_byte_for_byte() {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    run_py("py_write.py", &[dir, "all"]);
    rust_workers(&d);
    for (format, args) in [
        ("text", &["collect", "--dir", dir][..]),
        (
            "openmetrics",
            &["collect", "--dir", dir, "--format", "openmetrics"][..],
        ),
    ] {
        let py = run_py("py_collect.py", &[dir, "--format", format]);
        let o = cmd(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ours = String::from_utf8(o.stdout).unwrap();
        assert!(
            ours.contains("rs_summary") && ours.contains("/rust"),
            "{ours}"
        );
        assert_same_body(&ours, &py);
    }
}
