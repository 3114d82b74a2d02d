//! `mark-dead`: remove the live-gauge files of dead workers, by pid or by lock probing.

use std::io::Write;
use std::path::PathBuf;

use prometheus_multiproc::format::FileKind;
use prometheus_multiproc::{
    GaugeMode, compact_dead_auto_in, compact_dead_in, mark_worker_dead_in, remove_dead_live_files,
};

use crate::{CliResult, fail, metrics_dir};

#[derive(clap::Args)]
#[command(after_help = "\
For each PID, removes exactly the files prometheus_client's mark_process_dead \
removes (gauge_live*_PID.db); counters, histograms and other gauges stay, so \
totals never go backwards. A PID may also be a worker id (see set_worker_id). \
With --auto, removes the live-gauge files whose writer (a process using this \
crate) is dead, found by probing their locks. With --compact, also folds the \
counter, histogram, summary and sum/min/max/mostrecent-gauge files of those workers into one \
archive file per kind (totals unchanged) and removes them: only safe when \
every reader of the directory is prometheus-multiproc (docs/reliability.md). \
Prints each removed path.")]
pub struct Args {
    /// Metrics directory [default: $PROMETHEUS_MULTIPROC_DIR]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Also remove the live-gauge files of every dead worker found by lock probing.
    #[arg(long)]
    auto: bool,
    /// Also fold the dead workers' counter, histogram, summary and sum/min/max/mostrecent-gauge
    /// files into the directory's archive files (turns compaction on).
    #[arg(long)]
    compact: bool,
    /// Process ids (or worker ids) of workers that have exited.
    #[arg(value_name = "PID")]
    pids: Vec<String>,
}

pub fn run(args: Args) -> CliResult {
    if args.pids.is_empty() && !args.auto {
        return Err(fail!("mark-dead: give one or more PIDs, or --auto"));
    }
    for id in &args.pids {
        if !prometheus_multiproc::format::is_valid_worker_id(id) {
            return Err(fail!(
                "mark-dead: invalid PID or worker id {id:?}: use a number or 1 to 64 characters of [A-Za-z0-9.-]"
            ));
        }
    }
    let dir = metrics_dir(args.dir)?;
    let mut removed = Vec::new();
    for id in &args.pids {
        // The files that exist now; those gone afterwards were removed by us.
        let candidates: Vec<PathBuf> = GaugeMode::ALL
            .into_iter()
            .filter(|m| m.is_live())
            .map(|m| dir.join(FileKind::Gauge(m).file_name(id)))
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .collect();
        mark_worker_dead_in(&dir, id)?;
        removed.extend(
            candidates
                .into_iter()
                .filter(|p| std::fs::symlink_metadata(p).is_err()),
        );
    }
    if args.auto {
        removed.extend(remove_dead_live_files(&dir)?);
    }
    if args.compact {
        let ids: Vec<&str> = args.pids.iter().map(String::as_str).collect();
        removed.extend(compact_dead_in(&dir, &ids)?.absorbed);
        if args.auto {
            removed.extend(compact_dead_auto_in(&dir)?.absorbed);
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for p in &removed {
        writeln!(out, "{}", p.display()).map_err(crate::stdout_error)?;
    }
    out.flush().map_err(crate::stdout_error)
}
