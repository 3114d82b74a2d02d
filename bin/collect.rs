//! `collect`: the merged exposition of a metrics directory on stdout, warnings on stderr.

use std::io::Write;
use std::path::PathBuf;

use prometheus_multiproc::encoding::{Negotiated, negotiate};
use prometheus_multiproc::{Error, MultiProcessCollector};

use crate::CliResult;

/// Exposition formats.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Prometheus text format 0.0.4, as prometheus_client's generate_latest writes it.
    Text,
    /// OpenMetrics 1.0.0 text, ending with `# EOF`.
    Openmetrics,
}

#[derive(clap::Args)]
#[command(after_help = "\
Files that cannot be read or are corrupt are skipped with a warning on stderr \
(the exit status stays 0); a missing or unreadable directory is an error.")]
pub struct Args {
    /// Metrics directory [default: $PROMETHEUS_MULTIPROC_DIR]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Answer this HTTP `Accept` header value instead of --format: the
    /// format and name escaping prometheus_client 0.26 would choose for it
    /// (e.g. 'text/plain;version=1.0.0;escaping=allow-utf-8').
    #[arg(long, value_name = "HEADER", conflicts_with = "format")]
    accept: Option<String>,
    /// Add per-worker process metrics read from /proc/PID of every living
    /// worker in the directory (Linux).
    #[arg(long = "collector.process")]
    process_metrics: bool,
}

pub fn run(args: Args) -> CliResult {
    crate::tune_malloc_for_scrapes();
    let dir = crate::metrics_dir(args.dir)?;
    let collector = MultiProcessCollector::new(&dir)?.with_process_metrics(args.process_metrics);
    // Nothing is written unless the whole scrape succeeded: the families
    // are all merged and encoded before the first write.
    let wanted = match (args.accept, args.format) {
        (Some(accept), _) => negotiate(Some(&accept))?,
        (None, Format::Text) => Negotiated::text(),
        (None, Format::Openmetrics) => Negotiated::openmetrics(),
    };
    let mut out = std::io::stdout().lock();
    let scrape = collector
        .encode_negotiated(&wanted, &mut out)
        .and_then(|scrape| out.flush().map(|()| scrape))
        .map_err(failure)?;
    scrape.print_warnings();
    // The process exits next: freeing every sample one by one would only
    // add milliseconds to a large scrape.
    std::mem::forget(scrape);
    Ok(())
}

/// The failure for an error of `encode_*`: the collection failed (the
/// directory; the error is the library's), or writing to stdout did.
fn failure(e: std::io::Error) -> crate::Failure {
    match e.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(e) => crate::Failure(e.to_string()),
        None => crate::stdout_error(e),
    }
}
