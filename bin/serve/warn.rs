//! Warnings of `serve`: each distinct one printed once, at most a few lines a minute beyond the first, and every one counted by kind.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
pub enum WarnKind {
    /// A metrics file skipped or remarked on by the merge.
    File,
    /// A scrape that failed as a whole (the directory could not be read).
    ScrapeFailed,
    /// An exporter family left out because the application has its name.
    NameClash,
}

impl WarnKind {
    pub const ALL: [WarnKind; 3] = [WarnKind::File, WarnKind::ScrapeFailed, WarnKind::NameClash];

    pub fn label(self) -> &'static str {
        match self {
            WarnKind::File => "file",
            WarnKind::ScrapeFailed => "scrape_failed",
            WarnKind::NameClash => "name_clash",
        }
    }
}

#[derive(Default)]
struct Inner {
    seen: HashSet<String>,
    window_start: Option<Instant>,
    printed: u32,
    suppressed: u64,
    counts: [u64; WarnKind::ALL.len()],
}

/// Prints warnings on stderr without flooding it, and counts them.
#[derive(Default)]
pub struct Warned(Mutex<Inner>);

impl Warned {
    /// Counts `msg` and prints it unless it was printed before or the rate
    /// limit is reached.
    pub fn warn(&self, kind: WarnKind, msg: String) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.counts[kind as usize] += 1;
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
    pub fn counts(&self) -> [(WarnKind, u64); WarnKind::ALL.len()] {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        WarnKind::ALL.map(|k| (k, g.counts[k as usize]))
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
                w.warn(WarnKind::File, format!("file {i}"));
            }
            let g = w.0.lock().unwrap();
            assert_eq!(g.printed, LINES_PER_WINDOW, "round {round}");
        }
        w.warn(WarnKind::NameClash, "clash".into());
        let counts = w.counts();
        assert_eq!(counts[0], (WarnKind::File, 3 * (REMEMBERED as u64 + 500)));
        assert_eq!(counts[1], (WarnKind::ScrapeFailed, 0));
        assert_eq!(counts[2], (WarnKind::NameClash, 1));
        let g = w.0.lock().unwrap();
        assert_eq!(g.seen.len(), LINES_PER_WINDOW as usize);
    }
}
