//! `collect` on a directory with a sparse file: its memory stays bounded by what is on disk (issue 12, item 4).

use std::path::Path;
use std::process::Command;

use crate::common::Dir;
use crate::sparse_fixture::{normal_dir, plant_sparse};

/// Runs `collect --dir dir` under `/usr/bin/time`: its peak RSS in KiB,
/// stdout, stderr.
fn collect_peak(dir: &Path) -> (u64, String, String) {
    let rss = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss.path())
        .arg(env!("CARGO_BIN_EXE_prometheus-multiproc"))
        .args(["collect", "--dir"])
        .arg(dir)
        .output()
        .expect("/usr/bin/time (Debian package `time`) runs the command");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "collect failed: {stderr}");
    let kib = std::fs::read_to_string(rss.path()).unwrap();
    let kib = kib.trim().parse().unwrap_or_else(|_| panic!("{kib:?}"));
    (kib, String::from_utf8(out.stdout).unwrap(), stderr)
}

/// A file of 4 KiB on disk whose `used` says 1 GiB costs one window of
/// reading, not 1 GiB: `collect` exits 0, names the file, and its peak RSS
/// stays within 64 MiB of the normal directory's (it was 1 GiB more).
#[test]
fn sparse_file_costs_what_is_on_disk() {
    let normal = Dir::new();
    normal_dir(normal.path());
    let both = Dir::new();
    normal_dir(both.path());
    let sparse = plant_sparse(both.path());
    let (base, want, quiet) = collect_peak(normal.path());
    assert!(quiet.is_empty(), "{quiet}");
    let (peak, got, warnings) = collect_peak(both.path());
    assert_eq!(got, want, "the sparse file adds nothing");
    assert!(want.contains("req_total{path=\"/p0\"} 16.0\n"), "{want}");
    let line = format!(
        "warning: {}: corrupt metrics file skipped",
        sparse.display()
    );
    assert!(warnings.contains(&line), "{warnings}");
    assert!(warnings.contains("zero bytes where an entry should be"));
    eprintln!("peak RSS: normal directory {base} KiB, with the sparse file {peak} KiB");
    assert!(peak < base + 64 * 1024, "{peak} KiB against {base} KiB");
}
