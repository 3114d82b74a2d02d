//! Warnings of `serve`: each distinct one printed once, at most a few lines a minute beyond the first, and every one counted by kind.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_multiproc::WarningKind;

/// Distinct warnings remembered (so printed only once). Past this many, new
/// ones are still printed under the rate limit, but not remembered.
const REMEMBERED: usize = 10_000;
/// Lines printed per [`WINDOW`] at most; the rest are counted and summed up
/// in one line when the window ends.
const LINES_PER_WINDOW: u32 = 100;
const WINDOW: Duration = Duration::from_secs(60);

/// Where a warning comes from: the `kind` label of
/// `prometheus_multiproc_warnings_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarnKind(usize);

/// The labels, in the order they are exported: one per kind of the merge's
/// warnings, then the exporter's own.
const LABELS: [&str; 14] = [
    "corrupt",
    "not_regular_file",
    "symbolic_link",
    "vanished",
    "unreadable",
    "too_large",
    "shrank",
    "read_aborted",
    "type_conflict",
    "mixed_gauge_modes",
    "process_metric_shadowed",
    "other",
    "scrape_failed",
    "name_clash",
];

impl WarnKind {
    /// A scrape that failed as a whole (the directory could not be read).
    pub const SCRAPE_FAILED: WarnKind = WarnKind(12);
    /// An exporter family left out because the application has its name.
    pub const NAME_CLASH: WarnKind = WarnKind(13);

    /// The kind of one of the merge's warnings.
    pub fn of(w: &WarningKind) -> WarnKind {
        WarnKind(match w {
            WarningKind::Corrupt(_) => 0,
            WarningKind::NotRegularFile => 1,
            WarningKind::SymbolicLink => 2,
            WarningKind::Vanished => 3,
            WarningKind::Unreadable { .. } => 4,
            WarningKind::TooLarge { .. } => 5,
            WarningKind::Shrank { .. } => 6,
            WarningKind::ReadAborted => 7,
            WarningKind::TypeConflict(_) => 8,
            WarningKind::MixedGaugeModes(_) => 9,
            WarningKind::ProcessMetricShadowed { .. } => 10,
            _ => 11,
        })
    }

    pub fn label(self) -> &'static str {
        LABELS[self.0]
    }
}

#[derive(Default)]
struct Inner {
    seen: HashSet<String>,
    window_start: Option<Instant>,
    printed: u32,
    suppressed: u64,
    counts: [u64; LABELS.len()],
}

/// Prints warnings on stderr without flooding it, and counts them.
#[derive(Default)]
pub struct Warned(Mutex<Inner>);

impl Warned {
    /// Counts `msg` and prints it unless it was printed before or the rate
    /// limit is reached.
    pub fn warn(&self, kind: WarnKind, msg: String) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.counts[kind.0] += 1;
        if g.seen.contains(&msg) {
            return;
        }
        let now = Instant::now();
        let mut err = std::io::stderr().lock();
        match g.window_start {
            Some(start) if now.duration_since(start) < WINDOW => {}
            _ => {
                if g.suppressed > 0 {
                    let _ = writeln!(
                        err,
                        "prometheus-multiproc: warning: {} more warnings not printed in the last minute (see prometheus_multiproc_warnings_total)",
                        g.suppressed
                    );
                }
                g.window_start = Some(now);
                g.printed = 0;
                g.suppressed = 0;
            }
        }
        if g.printed >= LINES_PER_WINDOW {
            g.suppressed += 1;
            return;
        }
        g.printed += 1;
        let _ = writeln!(err, "prometheus-multiproc: warning: {msg}");
        if g.seen.len() < REMEMBERED {
            g.seen.insert(msg);
        }
    }

    /// How many warnings of each kind were reported since startup.
    pub fn counts(&self) -> [(WarnKind, u64); LABELS.len()] {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::array::from_fn(|i| (WarnKind(i), g.counts[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_warning_and_prints_at_most_the_limit() {
        let w = Warned::default();
        for round in 0..3 {
            for i in 0..(REMEMBERED + 500) {
                w.warn(WarnKind(0), format!("file {i}"));
            }
            let g = w.0.lock().unwrap();
            assert_eq!(g.printed, LINES_PER_WINDOW, "round {round}");
        }
        w.warn(WarnKind::NAME_CLASH, "clash".into());
        let counts = w.counts();
        assert_eq!(counts[0], (WarnKind(0), 3 * (REMEMBERED as u64 + 500)));
        assert_eq!(counts[12], (WarnKind::SCRAPE_FAILED, 0));
        assert_eq!(counts[13], (WarnKind::NAME_CLASH, 1));
        assert_eq!(WarnKind::NAME_CLASH.label(), "name_clash");
        let g = w.0.lock().unwrap();
        assert_eq!(g.seen.len(), LINES_PER_WINDOW as usize);
    }
}
