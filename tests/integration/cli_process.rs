//! `collect --collector.process`: the command's opt-in flag adds the per-worker process metrics of living workers, and only with the flag.

use prometheus_multiproc::Counter;

use crate::common::{Dir, Held};

#[test]
fn collect_process_flag() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "jobs_total", "Jobs.").unwrap();
    let big = {
        let c = c.clone();
        Held::spawn(move || {
            c.inc();
            // 64 MiB, touched: resident.
            let v = vec![1u8; 64 << 20];
            std::hint::black_box(&v);
            std::mem::forget(v);
        })
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prometheus-multiproc"))
        .args(["collect", "--collector.process", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "process_resident_memory_bytes{{pid=\"{}\"}} ",
            big.pid()
        )),
        "{text}"
    );
    let plain = std::process::Command::new(env!("CARGO_BIN_EXE_prometheus-multiproc"))
        .args(["collect", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8(plain.stdout)
            .unwrap()
            .contains("process_resident")
    );
    big.stop();
}
