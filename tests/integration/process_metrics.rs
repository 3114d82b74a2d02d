//! Per-worker process metrics: the collector reads `/proc` for every living worker with files in the directory, and only for those.

use std::collections::BTreeSet;

use prometheus_multiproc::merge::Family;
use prometheus_multiproc::{Counter, MultiProcessCollector, WarningKind};

use crate::common::{Dir, Held, in_worker};

fn family<'a>(fams: &'a [Family], name: &str) -> &'a Family {
    fams.iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn by_pid(f: &Family) -> Vec<(i32, f64)> {
    f.samples
        .iter()
        .map(|s| (s.label("pid").unwrap().parse().unwrap(), s.value))
        .collect()
}

#[test]
fn living_workers_only() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "jobs_total", "Jobs.").unwrap();
    let small = {
        let c = c.clone();
        Held::spawn(move || c.inc())
    };
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
    // Exited: its files stay, its pid is not read.
    let dead = in_worker(|| c.inc());
    // A Python-style file (no lock marker) of a pid that does not exist.
    std::fs::copy(
        d.path().join(format!("counter_{dead}.db")),
        d.path().join("counter_4000000000.db"),
    )
    .unwrap();
    let me = std::process::id() as i32;

    let collector = MultiProcessCollector::new(d.path())
        .unwrap()
        .with_process_metrics(true);
    let s = collector.collect_families().unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let pids: BTreeSet<i32> = by_pid(family(&s.families, "process_cpu_seconds"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(pids, BTreeSet::from([me, small.pid(), big.pid()]));

    let rss = by_pid(family(&s.families, "process_resident_memory_bytes"));
    let of = |v: &[(i32, f64)], pid: i32| v.iter().find(|(p, _)| *p == pid).unwrap().1;
    assert!(
        of(&rss, big.pid()) > of(&rss, small.pid()) + 50.0 * 1024.0 * 1024.0,
        "{rss:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (pid, t) in by_pid(family(&s.families, "process_start_time_seconds")) {
        assert!(t > now - 24.0 * 3600.0 && t < now + 2.0, "{pid}: {t}");
        if pid != me {
            assert!(t > now - 120.0, "forked just now: {t}");
        }
    }
    for (_, n) in by_pid(family(&s.families, "process_open_fds")) {
        assert!(n >= 3.0, "{n}");
    }
    for (_, n) in by_pid(family(&s.families, "process_max_fds")) {
        assert!(n >= 64.0, "{n}");
    }
    let vsize = by_pid(family(&s.families, "process_virtual_memory_bytes"));
    assert!(vsize.iter().all(|(_, v)| *v > 0.0));
    let total = |name: &str| family(&s.families, name).samples[0].value;
    assert_eq!(total("multiproc_processes"), 3.0);
    assert_eq!(
        total("multiproc_process_resident_memory_bytes"),
        rss.iter().map(|(_, v)| v).sum::<f64>()
    );
    assert!(total("multiproc_process_cpu_seconds") >= 0.0);
    // The process families come after the application's.
    let ours = |f: &Family| f.name.starts_with("process_") || f.name.starts_with("multiproc_");
    let first = s.families.iter().position(ours).unwrap();
    assert!(first > 0 && s.families[first..].iter().all(ours));

    // Text exposition, as prometheus_client's ProcessCollector names them.
    let mut out = Vec::new();
    collector.encode_text(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter\n"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "process_cpu_seconds_total{{pid=\"{}\"}} ",
        big.pid()
    )));
    assert!(text.contains("# TYPE multiproc_processes gauge\nmultiproc_processes 3.0\n"));
    // Off by default.
    let plain = MultiProcessCollector::new(d.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert!(
        plain
            .families
            .iter()
            .all(|f| !f.name.starts_with("process_"))
    );

    let big_pid = big.pid();
    big.stop();
    let s = collector.collect_families().unwrap();
    let pids: BTreeSet<i32> = by_pid(family(&s.families, "process_resident_memory_bytes"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(!pids.contains(&big_pid));
    assert_eq!(pids, BTreeSet::from([me, small.pid()]));
    small.stop();
}

#[test]
fn application_metrics_win_name_clashes() {
    let d = Dir::new();
    let w = d.writer();
    Counter::new_in(&w, "process_cpu_seconds_total", "The app's own.")
        .unwrap()
        .inc_by(5.0);
    let s = MultiProcessCollector::new(d.path())
        .unwrap()
        .with_process_metrics(true)
        .collect_families()
        .unwrap();
    let f = family(&s.families, "process_cpu_seconds");
    assert_eq!(f.help, "The app's own.");
    assert_eq!(f.samples.len(), 1);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert_eq!(
        s.warnings[0].kind,
        WarningKind::ProcessMetricShadowed {
            name: "process_cpu_seconds".into()
        }
    );
    assert_eq!(
        family(&s.families, "multiproc_processes").samples[0].value,
        1.0
    );
}
