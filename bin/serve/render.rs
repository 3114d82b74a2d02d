//! One scrape for `serve`: merge the directory, append the exporter's own `prometheus_multiproc_*` families, encode, compress.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_multiproc::MultiProcessCollector;
use prometheus_multiproc::Stats;
use prometheus_multiproc::encoding::Negotiated;
use prometheus_multiproc::integrations::{self, NameFilter};
use prometheus_multiproc::merge::{Family, FamilyKind, Sample};

use super::warn::{WarnKind, Warned};

/// What the client asked for: the negotiated format and escaping, and
/// whether to compress. Also the key of the bodies a merge shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub format: Negotiated,
    pub gzip: bool,
}

/// What a merge adds to the directory's families.
#[derive(Clone, Copy, Debug)]
pub struct MergeOptions {
    /// The exporter's own families (off with `--web.disable-exporter-metrics`).
    pub exporter_metrics: bool,
}

/// The application's families of one merge and their encodings, by
/// format: shared by later merges that give the same families (an
/// incremental collector makes those cheap to tell), so that an unchanged
/// directory is not encoded again.
pub struct AppFamilies {
    pub families: Vec<Family>,
    texts: Mutex<Vec<(Negotiated, Arc<Vec<u8>>)>>,
}

impl AppFamilies {
    pub fn new(families: Vec<Family>) -> AppFamilies {
        AppFamilies {
            families,
            texts: Mutex::new(Vec::new()),
        }
    }

    /// The families encoded in `format` (once per format).
    fn text(&self, format: &Negotiated) -> Arc<Vec<u8>> {
        let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, t)) = texts.iter().find(|(f, _)| f == format) {
            return Arc::clone(t);
        }
        let mut text = Vec::new();
        format.encode(&self.families, &mut text);
        let text = Arc::new(text);
        texts.push((format.clone(), Arc::clone(&text)));
        text
    }
}

/// Merges the directory with `collector`: the application's families,
/// and the exporter's own (if asked).
pub fn merge(
    collector: &MultiProcessCollector,
    opts: MergeOptions,
    warned: &Warned,
) -> prometheus_multiproc::Result<(Vec<Family>, Vec<Family>)> {
    let start = Instant::now();
    let scrape = collector.collect_families()?;
    for w in &scrape.warnings {
        warned.warn(WarnKind::of(&w.kind), w.to_string());
    }
    let families = scrape.families;
    if !opts.exporter_metrics {
        return Ok((families, Vec::new()));
    }
    let own = own_families(&scrape.stats, start.elapsed().as_secs_f64(), warned);
    // Names the application's families already show, in any form.
    let taken: HashSet<&str> = families
        .iter()
        .flat_map(|f| std::iter::once(f.name.as_str()).chain(f.samples.iter().map(|s| &*s.name)))
        .collect();
    let own: Vec<Family> = own
        .into_iter()
        .filter(|f| {
            let clash = taken.contains(f.name.as_str())
                || f.samples.iter().any(|s| taken.contains(&*s.name));
            if clash {
                warned.warn(
                    WarnKind::NAME_CLASH,
                    format!(
                        "the application has a metric named {}: the exporter's own is left out",
                        f.name
                    ),
                );
            }
            !clash
        })
        .collect();
    Ok((families, own))
}

/// The families cut to the samples `filter` names (`?name[]=`), as
/// prometheus_client's `Metric._restricted_metric` cuts them.
pub fn restrict(families: &[Family], filter: &NameFilter) -> Vec<Family> {
    let mut cut = families.to_vec();
    filter.restrict(&mut cut);
    cut
}

/// Encodes `families` in the form `wanted` (compressed if asked).
pub fn encode(families: &[Family], wanted: &Wanted) -> Vec<u8> {
    let mut body = Vec::new();
    wanted.format.encode(families, &mut body);
    compress(body, wanted)
}

/// Encodes the application's families `app` followed by the exporter's
/// `own` in the form `wanted` (compressed if asked): the bytes of encoding
/// them together, the application's taken from its kept encodings.
pub fn encode_with_own(app: &AppFamilies, own: &[Family], wanted: &Wanted) -> Vec<u8> {
    let text = app.text(&wanted.format);
    // The end of an exposition (OpenMetrics' `# EOF`), written once.
    let mut trailer = Vec::new();
    wanted.format.encode(&[], &mut trailer);
    let mut body = Vec::with_capacity(text.len() + 4096);
    body.extend_from_slice(text.strip_suffix(&trailer[..]).unwrap_or(&text));
    if own.is_empty() {
        body.extend_from_slice(&trailer);
    } else {
        wanted.format.encode(own, &mut body);
    }
    compress(body, wanted)
}

fn compress(body: Vec<u8>, wanted: &Wanted) -> Vec<u8> {
    if wanted.gzip {
        integrations::gzip(&body)
    } else {
        body
    }
}

/// The exporter's own families, all gauges (they describe this scrape).
pub fn own_families(stats: &Stats, seconds: f64, warned: &Warned) -> Vec<Family> {
    let gauge = |name: &str, help: &str, value: f64| {
        Family::new(
            name,
            help,
            FamilyKind::Gauge,
            vec![Sample::new(name, &[], value)],
        )
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
            "prometheus_multiproc_files_reused",
            "Metrics files of this scrape whose values were read in place, through the layout kept from an earlier scrape.",
            stats.files_reused as f64,
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
        warnings_family(warned),
    ]
}

/// `prometheus_multiproc_warnings_total{kind}`: warnings since startup,
/// printed or not.
fn warnings_family(warned: &Warned) -> Family {
    let name = "prometheus_multiproc_warnings_total";
    Family {
        name: "prometheus_multiproc_warnings".to_string(),
        help: "Warnings reported by the exporter since it started, printed or not.".to_string(),
        kind: FamilyKind::Counter,
        gauge_mode: None,
        samples: warned
            .counts()
            .into_iter()
            .map(|(kind, n)| Sample {
                name: name.into(),
                labels: vec![("kind".into(), kind.label().into())],
                // CAST: a count of warnings stays far below 2^53.
                value: n as f64,
            })
            .collect(),
    }
}
