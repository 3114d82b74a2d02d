//! The generated directories: `files` counter files of `per_file` entries
//! each, keys shared by groups of `group` consecutive files.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use prometheus_multiproc::format::{
    HEADER_LEN, INITIAL_SIZE, build_file, encode_key, value_offset,
};

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// One point of the model: what a directory holds.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Counter files (one per worker).
    pub files: usize,
    /// Entries in each file.
    pub per_file: usize,
    /// Files that share one key set: `files` (every worker writes the same
    /// series) down to 1 (every series in one file only).
    pub group: usize,
}

impl Shape {
    /// Distinct series, the lines of the output.
    pub fn series(&self) -> usize {
        self.files.div_ceil(self.group) * self.per_file
    }

    /// Entries over all files.
    pub fn entries(&self) -> usize {
        self.files * self.per_file
    }
}

/// A generated directory, removed when dropped.
pub struct Generated {
    pub dir: tempfile::TempDir,
    /// Bytes of entries and headers (the `used` fields).
    pub used: u64,
    /// Bytes the writers would allocate (64 KiB, doubled as needed).
    pub allocated: u64,
    /// Per file: its path and the offset of its first entry's value.
    pub first_values: Vec<(std::path::PathBuf, u64)>,
}

/// The key of series `s`: a counter with two labels, about 100 bytes, as a
/// web app's request counter.
fn key(s: usize) -> String {
    let handler = format!("/api/v1/resource_{}", s / 4);
    encode_key(
        "app_requests",
        "app_requests_total",
        &[("handler", &handler), ("method", METHODS[s % 4])],
        "Requests handled.",
    )
}

/// Deterministic shuffle (xorshift64*): each worker creates its series in
/// its own order, as real workers do.
fn shuffle(v: &mut [usize], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        // CAST: the result is below i + 1, a usize.
        let j = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Writes the directory of `shape` under the temporary directory.
pub fn generate(shape: &Shape) -> io::Result<Generated> {
    let dir = tempfile::Builder::new().prefix("cost-model-").tempdir()?;
    let mut g = Generated {
        dir,
        used: 0,
        allocated: 0,
        first_values: Vec::with_capacity(shape.files),
    };
    let mut keys: Vec<String> = Vec::new();
    for f in 0..shape.files {
        let group = f / shape.group;
        if f % shape.group == 0 {
            let base = group * shape.per_file;
            keys = (base..base + shape.per_file).map(key).collect();
        }
        let mut order: Vec<usize> = (0..shape.per_file).collect();
        shuffle(&mut order, f as u64 + 1);
        let entries: Vec<(&[u8], f64, f64)> = order
            .iter()
            // CAST: small integers, exact in f64.
            .map(|&j| (keys[j].as_bytes(), ((f + j) % 1000) as f64, 0.0))
            .collect();
        let path = g.dir.path().join(format!("counter_{}.db", 10_000 + f));
        write_file(&path, &build_file(&entries, 0), &mut g)?;
        let first = HEADER_LEN + value_offset(keys[order[0]].len());
        g.first_values.push((path, first as u64));
    }
    Ok(g)
}

fn write_file(path: &Path, img: &[u8], g: &mut Generated) -> io::Result<()> {
    let mut cap = INITIAL_SIZE;
    while cap < img.len() {
        cap *= 2;
    }
    let mut f = File::create(path)?;
    f.write_all(img)?;
    f.set_len(cap as u64)?;
    g.used += img.len() as u64;
    g.allocated += cap as u64;
    Ok(())
}

/// Adds one to the first entry of every file, as workers do between two
/// scrapes (so that an incremental collector cannot skip unchanged files).
pub fn bump(g: &Generated, round: usize) -> io::Result<()> {
    for (path, off) in &g.first_values {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        // CAST: a round number, exact in f64.
        f.write_all_at(&(1000.0 + round as f64).to_le_bytes(), *off)?;
    }
    Ok(())
}
