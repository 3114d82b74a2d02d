//! One scrape for `serve`: merge the directory, append the exporter's own `prometheus_multiproc_*` families, encode, compress.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_multiproc::encoding::{Negotiated, NegotiationError};
use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
use prometheus_multiproc::{MultiProcessCollector, Stats};

/// What the client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The `Accept` header's answer (an error fails the scrape).
    pub format: Result<Negotiated, NegotiationError>,
    pub gzip: bool,
}

/// An encoded response body.
pub struct Rendered {
    pub body: Vec<u8>,
    pub content_type: String,
    pub gzip: bool,
}

/// Remembers which warnings were printed, so that a corrupt file is reported
/// once, not at every scrape.
#[derive(Default)]
pub struct Warned(Mutex<HashSet<String>>);

impl Warned {
    /// Prints `msg` on stderr unless it was printed before.
    pub fn warn(&self, msg: String) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= 10_000 {
            seen.clear();
        }
        if seen.insert(msg.clone()) {
            eprintln!("prometheus-multiproc: warning: {msg}");
        }
    }
}

/// Merges `dir` and encodes the result with the exporter's own families.
pub fn render(
    dir: &Path,
    process_metrics: bool,
    wanted: Wanted,
    warned: &Warned,
) -> prometheus_multiproc::Result<Rendered> {
    let format = wanted.format?;
    let start = Instant::now();
    let scrape = MultiProcessCollector::new(dir)?
        .with_process_metrics(process_metrics)
        .collect_families()?;
    for w in &scrape.warnings {
        warned.warn(w.to_string());
    }
    let mut families = scrape.families;
    let own = own_families(&scrape.stats, start.elapsed().as_secs_f64());
    // Names the application's families already show, in any form.
    let taken: HashSet<&str> = families
        .iter()
        .flat_map(|f| std::iter::once(f.name.as_str()).chain(f.samples.iter().map(|s| &*s.name)))
        .collect();
    let own: Vec<Family> = own
        .into_iter()
        .filter(|f| {
            let clash = taken.contains(f.name.as_str());
            if clash {
                warned.warn(format!(
                    "the application has a metric named {}: the exporter's own is left out",
                    f.name
                ));
            }
            !clash
        })
        .collect();
    families.extend(own);

    let mut body = Vec::new();
    format.encode(&families, &mut body);
    if wanted.gzip {
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        gz.write_all(&body).expect("writing to a Vec cannot fail");
        body = gz.finish().expect("writing to a Vec cannot fail");
    }
    Ok(Rendered {
        body,
        content_type: format.content_type().to_owned(),
        gzip: wanted.gzip,
    })
}

/// The exporter's own families, all gauges (they describe this scrape).
pub fn own_families(stats: &Stats, seconds: f64) -> Vec<Family> {
    let gauge = |name: &str, help: &str, value: f64| Family {
        name: name.to_string(),
        help: help.to_string(),
        kind: FamilyKind::Gauge,
        gauge_mode: None,
        samples: vec![Sample {
            name: name.into(),
            labels: Vec::new(),
            value,
        }],
    };
    vec![
        gauge(
            "prometheus_multiproc_scrape_duration_seconds",
            "Time this scrape spent reading and merging the metrics files.",
            seconds,
        ),
        gauge(
            "prometheus_multiproc_files_read",
            "Metrics files read and merged in this scrape.",
            stats.files_read as f64,
        ),
        gauge(
            "prometheus_multiproc_files_corrupt",
            "Metrics files skipped in this scrape because their content is corrupt.",
            stats.files_corrupt as f64,
        ),
        gauge(
            "prometheus_multiproc_files_dead",
            "Live-gauge files skipped in this scrape because their writer is dead.",
            stats.files_dead as f64,
        ),
        gauge(
            "prometheus_multiproc_series_merged",
            "Samples in the merged output of this scrape, the exporter's own not included.",
            stats.samples as f64,
        ),
    ]
}

/// True when the `Accept-Encoding` header allows gzip (`gzip` or `*` with a
/// non-zero `q`, and gzip not refused by name).
pub fn wants_gzip(accept_encoding: &str) -> bool {
    let mut star = false;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return !q_is_zero(parts);
        }
        if coding == "*" {
            star = !q_is_zero(parts);
        }
    }
    star
}

fn q_is_zero<'a>(params: impl Iterator<Item = &'a str>) -> bool {
    params.into_iter().any(|p| {
        p.trim()
            .strip_prefix("q=")
            .or_else(|| p.trim().strip_prefix("Q="))
            .and_then(|q| q.trim().parse::<f64>().ok())
            .is_some_and(|q| q <= 0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert!(wants_gzip("gzip"));
        assert!(wants_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(!wants_gzip("gzip;q=0"));
        assert!(!wants_gzip("identity"));
        assert!(wants_gzip("*"));
        assert!(!wants_gzip("gzip;q=0, *"));
    }
}
