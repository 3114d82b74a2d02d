//! The public API's promises: the types a server shares between threads are `Send + Sync`, and a collector can be built from the writers' `MetricsDir`.

use prometheus_multiproc::{
    Counter, CounterVec, EnumVec, Gauge, GaugeMode, GaugeVec, HistogramVec, InfoVec, MetricsDir,
    MultiProcessCollector, SummaryVec,
};

use crate::common::Dir;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn shared_types_are_send_and_sync() {
    assert_send_sync::<MultiProcessCollector>();
    assert_send_sync::<MetricsDir>();
    assert_send_sync::<CounterVec>();
    assert_send_sync::<GaugeVec>();
    assert_send_sync::<HistogramVec>();
    assert_send_sync::<SummaryVec>();
    assert_send_sync::<InfoVec>();
    assert_send_sync::<EnumVec>();
    assert_send_sync::<Counter>();
    assert_send_sync::<Gauge>();
}

#[test]
fn collector_from_metrics_dir() {
    let d = Dir::new();
    let w = d.writer();
    Counter::new_in(&w, "jobs_total", "Jobs.")
        .unwrap()
        .inc_by(2.0);
    Gauge::new_in(&w, "temp", "Temperature.", GaugeMode::Max)
        .unwrap()
        .set(3.5);
    let from_dir = MultiProcessCollector::from_dir(&w).unwrap();
    assert_eq!(from_dir.dir(), d.path());
    let mut a = Vec::new();
    from_dir.encode_text(&mut a).unwrap();
    let mut b = Vec::new();
    MultiProcessCollector::new(d.path())
        .unwrap()
        .encode_text(&mut b)
        .unwrap();
    let b = String::from_utf8(b).unwrap();
    assert!(b.contains("jobs_total 2.0\n"), "{b}");
    assert_eq!(String::from_utf8(a).unwrap(), b);
}
