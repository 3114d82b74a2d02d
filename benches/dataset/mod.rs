//! A generated metrics directory for the collector benchmarks: `workers`
//! processes' files, as a pre-fork server running prometheus_client (or this
//! crate) leaves them.
//!
//! Files are built directly with `format::build_file` and `key::encode_key`
//! (the same bytes the writers produce) rather than by forking writers: that
//! takes a second instead of minutes for 256 workers. Each worker has the
//! same metrics as every other, but writes its entries in its own order (real
//! workers create series in the order requests arrive), with its own values.
//! Files are sized as the writers size them: at least 64 KiB, doubled as
//! needed, the tail left sparse (Python's writer `truncate`s, we
//! `posix_fallocate`; the collector reads only the `used` bytes either way).
//!
//! At `scale` 1.0 a worker writes 6,000 entries in 13 files:
//!
//! | file | metric | label sets | entries |
//! |---|---|---|---|
//! | counter | `http_requests_total{method,handler,status}` | 1,200 | 1,200 |
//! | counter | `jobs_processed_total{queue,result}` | 200 | 200 |
//! | counter | `bytes_sent_total{handler}`, `errors_total{kind}` | 100 + 100 | 200 |
//! | histogram | `http_request_duration_seconds{method,handler}`, 15 buckets | 160 | 2,560 |
//! | histogram | `db_query_duration_seconds{query}`, 15 buckets | 40 | 640 |
//! | summary | `payload_size_bytes{handler}` | 100 | 200 |
//! | gauge_all | `worker_memory_bytes{kind}` | 100 | 100 |
//! | gauge_liveall | `worker_connections{state}` | 50 | 50 |
//! | gauge_livesum | `inprogress_requests{handler}` | 200 | 200 |
//! | gauge_sum | `cache_items{cache}` | 100 | 100 |
//! | gauge_max / gauge_min | `queue_depth_max{queue}` / `free_slots_min{pool}` | 100 + 100 | 200 |
//! | gauge_livemax / gauge_livemin | `open_files_max{kind}` / `pool_idle_min{pool}` | 50 + 50 | 100 |
//! | gauge_mostrecent | `config_version{component}` | 200 | 200 |
//! | gauge_livemostrecent | `last_request_timestamp_seconds{handler}` | 50 | 50 |
//!
//! `scale` multiplies every label-set count.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use prometheus_multiproc::GaugeMode;
use prometheus_multiproc::format::FileKind;
use prometheus_multiproc::format::{INITIAL_SIZE, build_file};
use prometheus_multiproc::format::{encode_key, float_to_go_string};

/// The default histogram bounds (prometheus_client's), `+Inf` included.
pub const BUCKETS: [f64; 15] = prometheus_multiproc::DEFAULT_BUCKETS;

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const STATUSES: [&str; 5] = ["200", "201", "304", "404", "500"];
const RESULTS: [&str; 5] = ["ok", "retry", "failed", "timeout", "skipped"];

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// One entry per label set.
    Plain,
    /// `_sum` and 15 buckets per label set.
    Histogram,
    /// `_count` and `_sum` per label set.
    Summary,
}

struct Metric {
    kind: FileKind,
    name: &'static str,
    help: &'static str,
    shape: Shape,
    sets: usize,
    labels: fn(usize) -> Vec<(&'static str, String)>,
}

fn handler(i: usize) -> String {
    format!("/api/v1/resource_{i}")
}

fn metrics(scale: f64) -> Vec<Metric> {
    use FileKind::*;
    use GaugeMode as M;
    let n = |base: usize| ((base as f64 * scale).round() as usize).max(1);
    vec![
        Metric {
            kind: Counter,
            name: "http_requests",
            help: "Total HTTP requests.",
            shape: Shape::Plain,
            sets: n(1200),
            labels: |i| {
                vec![
                    ("method", METHODS[i % 4].into()),
                    ("status", STATUSES[(i / 4) % 5].into()),
                    ("handler", handler(i / 20)),
                ]
            },
        },
        Metric {
            kind: Counter,
            name: "jobs_processed",
            help: "Background jobs processed.",
            shape: Shape::Plain,
            sets: n(200),
            labels: |i| {
                vec![
                    ("result", RESULTS[i % 5].into()),
                    ("queue", format!("queue_{}", i / 5)),
                ]
            },
        },
        Metric {
            kind: Counter,
            name: "bytes_sent",
            help: "Response bytes sent.",
            shape: Shape::Plain,
            sets: n(100),
            labels: |i| vec![("handler", handler(i))],
        },
        Metric {
            kind: Counter,
            name: "errors",
            help: "Errors by kind.",
            shape: Shape::Plain,
            sets: n(100),
            labels: |i| vec![("kind", format!("error_kind_{i}"))],
        },
        Metric {
            kind: Histogram,
            name: "http_request_duration_seconds",
            help: "HTTP request latency.",
            shape: Shape::Histogram,
            sets: n(160),
            labels: |i| {
                vec![
                    ("method", METHODS[i % 4].into()),
                    ("handler", handler(i / 4)),
                ]
            },
        },
        Metric {
            kind: Histogram,
            name: "db_query_duration_seconds",
            help: "Database query latency.",
            shape: Shape::Histogram,
            sets: n(40),
            labels: |i| vec![("query", format!("select_table_{i}"))],
        },
        Metric {
            kind: Summary,
            name: "payload_size_bytes",
            help: "Request payload sizes.",
            shape: Shape::Summary,
            sets: n(100),
            labels: |i| vec![("handler", handler(i))],
        },
        gauge(
            M::All,
            "worker_memory_bytes",
            "Memory per worker.",
            n(100),
            |i| vec![("kind", format!("mem_kind_{i}"))],
        ),
        gauge(
            M::LiveAll,
            "worker_connections",
            "Connections per worker.",
            n(50),
            |i| vec![("state", format!("state_{i}"))],
        ),
        gauge(
            M::LiveSum,
            "inprogress_requests",
            "Requests in progress.",
            n(200),
            |i| vec![("handler", handler(i))],
        ),
        gauge(M::Sum, "cache_items", "Items in caches.", n(100), |i| {
            vec![("cache", format!("cache_{i}"))]
        }),
        gauge(
            M::Max,
            "queue_depth_max",
            "Deepest queue seen.",
            n(100),
            |i| vec![("queue", format!("queue_{i}"))],
        ),
        gauge(
            M::Min,
            "free_slots_min",
            "Fewest free slots.",
            n(100),
            |i| vec![("pool", format!("pool_{i}"))],
        ),
        gauge(
            M::LiveMax,
            "open_files_max",
            "Most open files.",
            n(50),
            |i| vec![("kind", format!("fd_kind_{i}"))],
        ),
        gauge(
            M::LiveMin,
            "pool_idle_min",
            "Fewest idle connections.",
            n(50),
            |i| vec![("pool", format!("pool_{i}"))],
        ),
        gauge(
            M::MostRecent,
            "config_version",
            "Config version loaded.",
            n(200),
            |i| vec![("component", format!("component_{i}"))],
        ),
        gauge(
            M::LiveMostRecent,
            "last_request_timestamp_seconds",
            "Time of the last request.",
            n(50),
            |i| vec![("handler", handler(i))],
        ),
    ]
}

fn gauge(
    mode: GaugeMode,
    name: &'static str,
    help: &'static str,
    sets: usize,
    labels: fn(usize) -> Vec<(&'static str, String)>,
) -> Metric {
    Metric {
        kind: FileKind::Gauge(mode),
        name,
        help,
        shape: Shape::Plain,
        sets,
        labels,
    }
}

/// Deterministic pseudo-random numbers (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One entry to write: its key and how to make its value.
struct KeyDef {
    key: String,
    /// Most-recent gauges store a timestamp.
    timestamped: bool,
    /// Bucket entries get small integer counts, sums and others floats.
    integer: bool,
}

/// The keys of one worker's files, by file kind, in creation order.
pub struct Layout {
    files: BTreeMap<FileKind, Vec<KeyDef>>,
}

impl Layout {
    pub fn new(scale: f64) -> Layout {
        let mut files: BTreeMap<FileKind, Vec<KeyDef>> = BTreeMap::new();
        for m in metrics(scale) {
            let out = files.entry(m.kind).or_default();
            let ts = matches!(m.kind, FileKind::Gauge(g) if g.is_most_recent());
            for i in 0..m.sets {
                let owned = (m.labels)(i);
                let labels: Vec<(&str, &str)> =
                    owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let mut push = |sample: &str, labels: &[(&str, &str)], integer: bool| {
                    out.push(KeyDef {
                        key: encode_key(m.name, sample, labels, m.help),
                        timestamped: ts,
                        integer,
                    })
                };
                match m.shape {
                    Shape::Plain => {
                        let sample = if m.kind == FileKind::Counter {
                            format!("{}_total", m.name)
                        } else {
                            m.name.to_string()
                        };
                        push(&sample, &labels, m.kind == FileKind::Counter);
                    }
                    Shape::Summary => {
                        push(&format!("{}_count", m.name), &labels, true);
                        push(&format!("{}_sum", m.name), &labels, false);
                    }
                    Shape::Histogram => {
                        push(&format!("{}_sum", m.name), &labels, false);
                        let bucket = format!("{}_bucket", m.name);
                        for b in BUCKETS {
                            let le = float_to_go_string(b);
                            let mut with_le = labels.clone();
                            with_le.push(("le", &le));
                            push(&bucket, &with_le, true);
                        }
                    }
                }
            }
        }
        Layout { files }
    }

    /// Entries per worker.
    pub fn entries(&self) -> usize {
        self.files.values().map(Vec::len).sum()
    }

    /// Writes worker `pid`'s files into `dir`. Series are created in an order
    /// of the worker's own (label sets shuffled, a histogram's or summary's
    /// entries kept together, as a writer creates them), unless `same_order`.
    /// Returns the bytes used.
    pub fn write_worker(&self, dir: &Path, pid: u32, same_order: bool) -> usize {
        let mut rng = Rng::new(u64::from(pid) + 1);
        let mut used = 0;
        for (kind, keys) in &self.files {
            // Group entries by series (a histogram's 16 entries, a summary's 2).
            let mut groups: Vec<&[KeyDef]> = Vec::new();
            let per = match kind {
                FileKind::Histogram => 1 + BUCKETS.len(),
                FileKind::Summary => 2,
                _ => 1,
            };
            for g in keys.chunks(per) {
                groups.push(g);
            }
            if !same_order {
                for i in (1..groups.len()).rev() {
                    let j = rng.below(i as u64 + 1) as usize;
                    groups.swap(i, j);
                }
            }
            let mut entries: Vec<(&[u8], f64, f64)> = Vec::with_capacity(keys.len());
            for g in groups {
                for k in g {
                    let v = if k.integer {
                        rng.below(1000) as f64
                    } else {
                        rng.below(1_000_000) as f64 / 1000.0
                    };
                    let ts = if k.timestamped {
                        1.7e9 + rng.below(1_000_000) as f64 / 1000.0
                    } else {
                        0.0
                    };
                    entries.push((k.key.as_bytes(), v, ts));
                }
            }
            let img = build_file(&entries, 0);
            used += img.len();
            let mut cap = INITIAL_SIZE;
            while cap < img.len() {
                cap *= 2;
            }
            let path = dir.join(kind.file_name(&pid.to_string()));
            let mut f = File::create(&path).unwrap();
            f.write_all(&img).unwrap();
            f.set_len(cap as u64).unwrap();
        }
        used
    }
}

/// Fills `dir` with `workers` workers' files (pids 10000, 10001, ...).
/// Returns (files, bytes used).
pub fn generate(dir: &Path, workers: usize, scale: f64, same_order: bool) -> (usize, usize) {
    let layout = Layout::new(scale);
    let mut used = 0;
    for w in 0..workers {
        used += layout.write_worker(dir, 10_000 + w as u32, same_order);
    }
    (workers * layout.files.len(), used)
}
