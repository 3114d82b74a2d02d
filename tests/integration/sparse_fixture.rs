//! Fixtures of the bounded-reading tests: a normal metrics directory, and a sparse file whose `used` says 1 GiB.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use prometheus_multiproc::format;

/// A normal directory: 16 workers' counters and histograms, 2,000 series.
pub fn normal_dir(dir: &Path) {
    let bounds = ["0.1", "0.5", "1.0", "+Inf"];
    for w in 0..16 {
        let keys: Vec<String> = (0..100)
            .map(|i| {
                let path = format!("/p{i}");
                format::encode_key("req", "req_total", &[("path", &path)], "Requests.")
            })
            .collect();
        let entries: Vec<(&[u8], f64, f64)> =
            keys.iter().map(|k| (k.as_bytes(), 1.0, 0.0)).collect();
        let img = format::build_file(&entries, 1 << 16);
        std::fs::write(dir.join(format!("counter_{w}.db")), img).unwrap();
        let keys: Vec<String> = (0..25)
            .flat_map(|i| {
                let path = format!("/p{i}");
                bounds.iter().map(move |le| {
                    let labels = [("path", path.as_str()), ("le", le)];
                    format::encode_key("lat", "lat_bucket", &labels, "Latency.")
                })
            })
            .collect();
        let entries: Vec<(&[u8], f64, f64)> =
            keys.iter().map(|k| (k.as_bytes(), 2.0, 0.0)).collect();
        let img = format::build_file(&entries, 1 << 16);
        std::fs::write(dir.join(format!("histogram_{w}.db")), img).unwrap();
    }
}

/// Plants `counter_666.db`: one valid entry on disk, `used` = 1 GiB − 8,
/// size 1 GiB; the rest is a hole (4 KiB on disk).
pub fn plant_sparse(dir: &Path) -> PathBuf {
    let path = dir.join("counter_666.db");
    let k = format::encode_key("req", "req_total", &[("path", "/p0")], "Requests.");
    let mut img = format::build_file(&[(k.as_bytes(), 1000.0, 0.0)], 0);
    img[..4].copy_from_slice(&((1i32 << 30) - 8).to_le_bytes());
    let f = File::create(&path).unwrap();
    f.write_all_at(&img, 0).unwrap();
    f.set_len(1 << 30).unwrap();
    let blocks = std::os::unix::fs::MetadataExt::blocks(&f.metadata().unwrap());
    assert!(blocks * 512 < 1 << 20, "not sparse: {blocks} blocks");
    path
}
