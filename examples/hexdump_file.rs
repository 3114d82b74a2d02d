//! Writes one counter to a directory, for the hexdump in docs/format.md.
use prometheus_multiproc::{CounterVec, MetricsDir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: hexdump_file DIR")?;
    let dir = MetricsDir::open(dir)?;
    let jobs = CounterVec::new_in(
        &dir,
        prometheus::Opts::new("jobs_total", "Jobs done."),
        &["queue"],
    )?;
    jobs.with_label_values(&["mail"]).inc_by(3.0);
    Ok(())
}
