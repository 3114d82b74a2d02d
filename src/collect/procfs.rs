//! Per-worker process metrics (Linux): CPU, memory, file descriptors and start time of every living process that has files in the metrics directory, read from `/proc` at scrape time.
//!
//! Enabled with
//! [`MultiProcessCollector::with_process_metrics`](crate::MultiProcessCollector::with_process_metrics).
//! The processes are found by the `{pid}` part of the file names, numeric
//! identifiers only (workers named with
//! [`set_worker_id`](crate::set_worker_id) are not pids and are left out).
//! A pid counts as a living worker when:
//!
//! * its files were written by this crate and their writer still holds its
//!   lock ([`probe_liveness`](crate::probe_liveness) says
//!   [`Alive`](crate::Liveness::Alive)): so a process that merely reused
//!   the pid of a dead worker is never read;
//! * its files were written by prometheus_client (no lock marker) and
//!   `/proc/{pid}` exists. Python files carry no lock, so here a reused pid
//!   cannot be told apart.
//!
//! Exported, per worker with a `pid` label (the names and help texts of
//! prometheus_client's `ProcessCollector`):
//!
//! | family | type |
//! | --- | --- |
//! | `process_cpu_seconds_total` | counter: user + system CPU seconds |
//! | `process_resident_memory_bytes` | gauge |
//! | `process_virtual_memory_bytes` | gauge |
//! | `process_open_fds` | gauge (left out where `/proc/{pid}/fd` is not readable) |
//! | `process_max_fds` | gauge: the soft limit on open files |
//! | `process_start_time_seconds` | gauge: seconds since the epoch |
//!
//! and summed over the living workers, without a `pid` label, under names
//! that cannot collide with the per-worker ones:
//!
//! | family | type |
//! | --- | --- |
//! | `multiproc_processes` | gauge: living workers found |
//! | `multiproc_process_cpu_seconds` | gauge: CPU seconds of the living workers (drops when a worker exits, hence not a counter) |
//! | `multiproc_process_resident_memory_bytes` | gauge |
//! | `multiproc_process_virtual_memory_bytes` | gauge |
//! | `multiproc_process_open_fds` | gauge |
//!
//! A family whose name the application's own metrics already use is left
//! out, with a warning. On other systems nothing is added.

use std::path::Path;

use crate::collect::warning::Warning;
use crate::merge::Family;

/// Appends the process families for the living processes behind
/// `file_names` (names in `dir`), after the application's families.
pub(crate) fn append<'a>(
    dir: &Path,
    file_names: impl IntoIterator<Item = &'a str>,
    families: &mut Vec<Family>,
    warnings: &mut Vec<Warning>,
) {
    #[cfg(target_os = "linux")]
    linux::append(dir, file_names, families, warnings);
    #[cfg(not(target_os = "linux"))]
    let _ = (dir, file_names, families, warnings);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use crate::collect::dead::{self, Liveness};
    use crate::collect::warning::{Warning, WarningKind};
    use crate::format::HEADER_LEN;
    use crate::format::naming::{self, GaugeMode};
    use crate::merge::{Family, FamilyKind, Sample};

    /// What `/proc` says about one process.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) struct ProcStats {
        pub cpu_seconds: f64,
        pub start_time_seconds: f64,
        pub virtual_bytes: f64,
        pub resident_bytes: f64,
        pub open_fds: Option<f64>,
        pub max_fds: Option<f64>,
    }

    /// Parses `/proc/{pid}/stat` as prometheus_client's ProcessCollector
    /// does: the fields after the command name (which may contain spaces and
    /// parentheses, hence the last `)`).
    pub(super) fn parse_stat(
        stat: &str,
        ticks: f64,
        page_size: f64,
        boot_time: f64,
    ) -> Option<(f64, f64, f64, f64)> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| parts.get(i).and_then(|s| s.parse::<f64>().ok());
        let cpu = (num(11)? + num(12)?) / ticks;
        let start = num(19)? / ticks + boot_time;
        let vsize = num(20)?;
        let rss = num(21)? * page_size;
        Some((cpu, start, vsize, rss))
    }

    /// The soft `Max open files` limit from `/proc/{pid}/limits`.
    pub(super) fn parse_max_fds(limits: &str) -> Option<f64> {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let soft = line["Max open files".len()..].split_whitespace().next()?;
        match soft {
            "unlimited" => Some(f64::INFINITY),
            s => s.parse().ok(),
        }
    }

    fn boot_time() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    }

    fn sysconf(var: nix::unistd::SysconfVar) -> Option<f64> {
        match nix::unistd::sysconf(var) {
            Ok(Some(v)) if v > 0 => Some(v as f64),
            _ => None,
        }
    }

    fn read_proc(pid: u32, ticks: f64, page_size: f64, boot: f64) -> Option<ProcStats> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (cpu_seconds, start_time_seconds, virtual_bytes, resident_bytes) =
            parse_stat(&stat, ticks, page_size, boot)?;
        let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| d.filter(|e| e.is_ok()).count() as f64);
        let max_fds = std::fs::read_to_string(format!("/proc/{pid}/limits"))
            .ok()
            .and_then(|l| parse_max_fds(&l));
        Some(ProcStats {
            cpu_seconds,
            start_time_seconds,
            virtual_bytes,
            resident_bytes,
            open_fds,
            max_fds,
        })
    }

    /// Liveness of the writer of `path` (see the module docs).
    fn probe(path: &Path) -> Liveness {
        let Ok(file) = crate::open::open_no_follow(path) else {
            return Liveness::Unknown;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Liveness::Unknown;
        }
        let mut header = [0u8; HEADER_LEN];
        use std::os::unix::fs::FileExt;
        match file.read_exact_at(&mut header, 0) {
            Ok(()) => dead::probe_liveness(&file, &header),
            Err(_) => Liveness::Unknown,
        }
    }

    /// The living pids among the files named `file_names`.
    pub(super) fn living_pids<'a>(
        dir: &Path,
        file_names: impl IntoIterator<Item = &'a str>,
    ) -> Vec<u32> {
        let mut by_pid: BTreeMap<u32, Vec<&'a str>> = BTreeMap::new();
        for name in file_names {
            if let Some((_, pid)) = naming::parse_file_name(name)
                && let Ok(p) = pid.parse::<u32>()
                && p > 0
                && pid.bytes().all(|b| b.is_ascii_digit())
            {
                by_pid.entry(p).or_default().push(name);
            }
        }
        by_pid
            .into_iter()
            .filter(|(pid, names)| {
                let mut marked = false;
                for n in names {
                    match probe(&dir.join(n)) {
                        Liveness::Alive => return true,
                        Liveness::Dead => marked = true,
                        Liveness::Unknown => {}
                    }
                }
                // Only unmarked (Python) files: is there such a process?
                !marked && Path::new(&format!("/proc/{pid}")).exists()
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    pub(super) fn append<'a>(
        dir: &Path,
        file_names: impl IntoIterator<Item = &'a str>,
        families: &mut Vec<Family>,
        warnings: &mut Vec<Warning>,
    ) {
        let pids = living_pids(dir, file_names);
        let (Some(ticks), Some(page_size), Some(boot)) = (
            sysconf(nix::unistd::SysconfVar::CLK_TCK),
            sysconf(nix::unistd::SysconfVar::PAGE_SIZE),
            boot_time(),
        ) else {
            return;
        };
        let stats: Vec<(u32, ProcStats)> = pids
            .into_iter()
            .filter_map(|pid| read_proc(pid, ticks, page_size, boot).map(|s| (pid, s)))
            .collect();
        for f in build_families(&stats) {
            if families.iter().any(|g| g.name == f.name) {
                warnings.push(Warning {
                    path: dir.to_path_buf(),
                    kind: WarningKind::ProcessMetricShadowed {
                        name: f.name.clone(),
                    },
                });
                continue;
            }
            families.push(f);
        }
    }

    /// The process families: one sample per worker (labelled by pid), then
    /// the living workers' sums.
    pub(super) fn build_families(stats: &[(u32, ProcStats)]) -> Vec<Family> {
        let mut families = per_pid_families(stats);
        families.extend(summed_families(stats));
        families
    }

    type Get<'a> = &'a dyn Fn(&ProcStats) -> Option<f64>;

    /// prometheus_client's process families, one sample per worker.
    fn per_pid_families(stats: &[(u32, ProcStats)]) -> Vec<Family> {
        let pids: Vec<Arc<str>> = stats
            .iter()
            .map(|(p, _)| Arc::from(p.to_string()))
            .collect();
        let per_pid = |name: &str, help: &str, kind: FamilyKind, get: Get| {
            per_pid_family(stats, &pids, name, help, kind, get)
        };
        let g = FamilyKind::Gauge;
        vec![
            per_pid(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                FamilyKind::Counter,
                &|s| Some(s.cpu_seconds),
            ),
            per_pid(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                g,
                &|s| s.max_fds,
            ),
            per_pid(
                "process_open_fds",
                "Number of open file descriptors.",
                g,
                &|s| s.open_fds,
            ),
            per_pid(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                g,
                &|s| Some(s.resident_bytes),
            ),
            per_pid(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                g,
                &|s| Some(s.start_time_seconds),
            ),
            per_pid(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                g,
                &|s| Some(s.virtual_bytes),
            ),
        ]
    }

    /// Sums over the living workers.
    fn summed_families(stats: &[(u32, ProcStats)]) -> Vec<Family> {
        let summed = |name: &str, help: &str, get: Get| summed_family(stats, name, help, get);
        vec![
            summed(
                "multiproc_processes",
                "Living worker processes found in the metrics directory.",
                &|_| Some(1.0),
            ),
            summed(
                "multiproc_process_cpu_seconds",
                "User and system CPU seconds of the living workers, summed (drops when a worker exits).",
                &|s| Some(s.cpu_seconds),
            ),
            summed(
                "multiproc_process_open_fds",
                "Open file descriptors of the living workers, summed.",
                &|s| s.open_fds,
            ),
            summed(
                "multiproc_process_resident_memory_bytes",
                "Resident memory of the living workers in bytes, summed.",
                &|s| Some(s.resident_bytes),
            ),
            summed(
                "multiproc_process_virtual_memory_bytes",
                "Virtual memory of the living workers in bytes, summed.",
                &|s| Some(s.virtual_bytes),
            ),
        ]
    }

    /// One family with a sample per worker that has the value.
    fn per_pid_family(
        stats: &[(u32, ProcStats)],
        pids: &[Arc<str>],
        name: &str,
        help: &str,
        kind: FamilyKind,
        get: Get,
    ) -> Family {
        let pid_label: Arc<str> = Arc::from("pid");
        let sample: Arc<str> = match kind {
            FamilyKind::Counter => Arc::from(format!("{name}_total")),
            _ => Arc::from(name),
        };
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            gauge_mode: (kind == FamilyKind::Gauge).then_some(GaugeMode::All),
            samples: stats
                .iter()
                .zip(pids)
                .filter_map(|((_, s), pid)| {
                    get(s).map(|value| Sample {
                        name: sample.clone(),
                        labels: vec![(pid_label.clone(), pid.clone())],
                        value,
                    })
                })
                .collect(),
        }
    }

    /// One live-sum gauge: the value summed over the workers.
    fn summed_family(stats: &[(u32, ProcStats)], name: &str, help: &str, get: Get) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind: FamilyKind::Gauge,
            gauge_mode: Some(GaugeMode::LiveSum),
            samples: vec![Sample {
                name: Arc::from(name),
                labels: Vec::new(),
                value: stats.iter().filter_map(|(_, s)| get(s)).sum(),
            }],
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::*;
    use crate::format::build_file;
    use crate::format::key::encode_key;

    #[test]
    fn stat_parsing() {
        // A command name with spaces and a parenthesis.
        let stat = "4242 (my (weird) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 1 0 \
                    12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let (cpu, start, vsize, rss) = parse_stat(stat, 100.0, 4096.0, 1_000_000.0).unwrap();
        assert_eq!(cpu, 2.0);
        assert_eq!(start, 1_000_123.45);
        assert_eq!(vsize, 104_857_600.0);
        assert_eq!(rss, 2560.0 * 4096.0);
        assert_eq!(parse_stat("1 (x) S 1 2", 100.0, 4096.0, 0.0), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files"
            ),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn python_files_need_a_living_process() {
        let tmp = tempfile::tempdir().unwrap();
        let key = encode_key("c", "c_total", &[], "");
        let img = build_file(&[(key.as_bytes(), 1.0, 0.0)], 4096);
        let me = std::process::id();
        // Unmarked (as Python writes them): alive if /proc/{pid} exists.
        let names = [
            format!("counter_{me}.db"),
            "counter_4000000000.db".to_string(),
            "counter_w3.db".to_string(),
            "gauge_all_0.db".to_string(),
        ];
        for n in &names {
            std::fs::write(tmp.path().join(n), &img).unwrap();
        }
        let pids = living_pids(tmp.path(), names.iter().map(String::as_str));
        assert_eq!(pids, [me]);
    }
}
