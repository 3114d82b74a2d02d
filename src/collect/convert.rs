//! Conversion of merged families to the `prometheus` crate's data model.

use std::sync::Arc;

use prometheus::proto;

use crate::encoding::text;
use crate::merge::{Family, FamilyKind};

/// Converts merged families to the `prometheus` crate's `MetricFamily`
/// values, names and label names escaped as in the text format.
///
/// * Counters: a `COUNTER` family `<name>_total`; other samples (such as
///   `_created`) become `GAUGE` families of their own names.
/// * Gauges, info and state sets: a `GAUGE` family per sample name
///   (`<name>`, `<name>_info`), with the `pid` label where the mode keeps it.
/// * Histograms: a `HISTOGRAM` family with cumulative buckets (the `+Inf`
///   bucket left out: the `prometheus` encoders add it from the count),
///   `sample_count` and `sample_sum`.
/// * Summaries: a `SUMMARY` family with `sample_count`, `sample_sum` and
///   quantiles if any.
///
/// Counts are converted to integers (`u64`), as that model requires.
/// Families without samples are left out.
pub fn to_metric_families(families: &[Family]) -> Vec<proto::MetricFamily> {
    let mut out = Vec::new();
    for f in families {
        match f.kind {
            FamilyKind::Histogram | FamilyKind::Summary => out.extend(structured_family(f)),
            _ => simple_families(f, &mut out),
        }
    }
    out
}

type LabelRef<'a> = &'a (Arc<str>, Arc<str>);

fn label_pairs<'a>(labels: impl IntoIterator<Item = LabelRef<'a>>) -> Vec<proto::LabelPair> {
    labels
        .into_iter()
        .map(|(k, v)| {
            let mut p = proto::LabelPair::default();
            p.set_name(text::escaped_label_name(k));
            p.set_value(v.to_string());
            p
        })
        .collect()
}

fn new_family(name: String, help: &str, typ: proto::MetricType) -> proto::MetricFamily {
    let mut mf = proto::MetricFamily::default();
    mf.set_name(name);
    mf.set_help(help.to_owned());
    mf.set_field_type(typ);
    mf
}

fn simple_families(f: &Family, out: &mut Vec<proto::MetricFamily>) {
    let total = format!("{}_total", f.name);
    let first = out.len();
    let mut names: Vec<&str> = Vec::new();
    for s in &f.samples {
        let idx = match names.iter().position(|n| *n == &*s.name) {
            Some(i) => first + i,
            None => {
                names.push(&s.name);
                let typ = if f.kind == FamilyKind::Counter && *s.name == *total {
                    proto::MetricType::COUNTER
                } else {
                    proto::MetricType::GAUGE
                };
                out.push(new_family(text::escaped_metric_name(&s.name), &f.help, typ));
                out.len() - 1
            }
        };
        let mut m = proto::Metric::from_label(label_pairs(&s.labels));
        if out[idx].get_field_type() == proto::MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(s.value);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(s.value);
            m.set_gauge(g);
        }
        out[idx].mut_metric().push(m);
    }
}

#[derive(Default)]
struct Structured {
    buckets: Vec<(f64, f64)>,
    quantiles: Vec<(f64, f64)>,
    sum: f64,
    count: Option<f64>,
}

fn to_count(v: f64) -> u64 {
    // Saturating; NaN becomes 0.
    v as u64
}

fn structured_family(f: &Family) -> Option<proto::MetricFamily> {
    let hist = f.kind == FamilyKind::Histogram;
    let groups = structured_groups(f, hist);
    if groups.is_empty() {
        return None;
    }
    let typ = if hist {
        proto::MetricType::HISTOGRAM
    } else {
        proto::MetricType::SUMMARY
    };
    let mut mf = new_family(text::escaped_metric_name(&f.name), &f.help, typ);
    for (base, mut g) in groups {
        let mut m = proto::Metric::from_label(label_pairs(base));
        g.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = g
            .count
            .or_else(|| g.buckets.last().map(|b| b.1))
            .unwrap_or(0.0);
        if hist {
            m.set_histogram(histogram(&g, count));
        } else {
            m.set_summary(summary(&g, count));
        }
        mf.mut_metric().push(m);
    }
    Some(mf)
}

/// The samples of a histogram or summary family grouped by label set
/// without `le`/`quantile`, in first-seen order.
fn structured_groups(f: &Family, hist: bool) -> Vec<(Vec<LabelRef<'_>>, Structured)> {
    let (bucket, sum, count) = (
        format!("{}_bucket", f.name),
        format!("{}_sum", f.name),
        format!("{}_count", f.name),
    );
    let special = if hist { "le" } else { "quantile" };
    let mut groups: Vec<(Vec<LabelRef<'_>>, Structured)> = Vec::new();
    for s in &f.samples {
        let base: Vec<_> = s.labels.iter().filter(|(k, _)| &**k != special).collect();
        // `+Inf` parses too.
        let bound = s.label(special).and_then(|v| v.parse::<f64>().ok());
        let gi = match groups.iter().rposition(|(b, _)| *b == base) {
            Some(i) => i,
            None => {
                groups.push((base, Structured::default()));
                groups.len() - 1
            }
        };
        let g = &mut groups[gi].1;
        match (&*s.name, bound) {
            (n, Some(b)) if hist && n == bucket => g.buckets.push((b, s.value)),
            (n, Some(q)) if !hist && n == f.name => g.quantiles.push((q, s.value)),
            (n, None) if n == sum => g.sum += s.value,
            (n, None) if n == count => g.count = Some(g.count.unwrap_or(0.0) + s.value),
            _ => {}
        }
    }
    groups
}

/// A histogram of a group's sorted buckets (`+Inf` left out: it is the
/// count).
fn histogram(g: &Structured, count: f64) -> proto::Histogram {
    let mut h = proto::Histogram::default();
    h.set_sample_count(to_count(count));
    h.set_sample_sum(g.sum);
    h.set_bucket(
        g.buckets
            .iter()
            .filter(|(b, _)| *b != f64::INFINITY)
            .map(|&(b, v)| {
                let mut pb = proto::Bucket::default();
                pb.set_upper_bound(b);
                pb.set_cumulative_count(to_count(v));
                pb
            })
            .collect(),
    );
    h
}

/// A summary of a group's quantiles.
fn summary(g: &Structured, count: f64) -> proto::Summary {
    let mut s = proto::Summary::default();
    s.set_sample_count(to_count(count));
    s.set_sample_sum(g.sum);
    s.set_quantile(
        g.quantiles
            .iter()
            .map(|&(q, v)| {
                let mut pq = proto::Quantile::default();
                pq.set_quantile(q);
                pq.set_value(v);
                pq
            })
            .collect(),
    );
    s
}
