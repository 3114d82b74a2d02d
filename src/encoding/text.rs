//! Text exposition of merged families: the Prometheus text format and OpenMetrics, line for line as prometheus_client writes them.
//!
//! [`encode_text`] writes what prometheus_client's
//! `prometheus_client.exposition.generate_latest` writes, and
//! [`encode_openmetrics`] what
//! `prometheus_client.openmetrics.exposition.generate_latest` writes (both
//! with their default `underscores` name escaping), given the same families;
//! [`Negotiated::encode`](crate::negotiate::Negotiated::encode) writes them
//! under the [`Escaping`] a request negotiated.
//! Families and samples come in the order the [`Family`] list has
//! (prometheus_client's, when it comes from [`Merger`](crate::merge::Merger));
//! each line is byte-identical to Python's.
//!
//! The text format, as prometheus_client writes it:
//!
//! * Counters are announced as `<name>_total`, info metrics as `<name>_info`
//!   with type `gauge`, state sets with type `gauge`.
//! * Help text escapes `\` and newline; label values escape `\`, newline and
//!   `"`; values are written as `floatToGoString` writes them (`1.0`, `+Inf`,
//!   `1e+06`).
//! * Metric and label names outside the legacy character set are escaped as
//!   [`Escaping`](super::Escaping) describes (by default each offending character
//!   becomes `_`); under `allow-utf-8` such a sample name moves into the
//!   braces, quoted: `{"http.requests_total","rou.te"="/a"} 1.0`.
//! * Samples named `<name>_created`, `<name>_gsum` or `<name>_gcount` go into
//!   extra `gauge` families after their family.
//!
//! OpenMetrics differs: the family name is never suffixed, the type is the
//! family's own (`counter`, `info`, `stateset`, ...), help text also escapes
//! `"`, sample names are escaped with the label-name character set (so `:`
//! becomes `_`; under `dots` and `values` even legacy sample names are
//! rewritten, as prometheus_client does), and the output ends with `# EOF`.

use super::escaping::{
    Charset, Escaping, is_legacy_metric_name, push_backslashed, push_escaped_name, push_label_name,
    push_metric_name,
};
use crate::format::key::{decimal_digits, push_float_to_go_string};
use crate::merge::{Family, FamilyKind, Sample};

/// Content type of the text format, as prometheus_client sends it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics 1.0.0, as prometheus_client sends it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Appends the text format of `families` to `out` (what
/// [`Format::encode`] does for [`Format::Text`]).
///
/// ```
/// use prometheus_multiproc::encoding::Format;
/// use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
///
/// let fam = Family {
///     name: "req".into(),
///     help: "Requests.".into(),
///     kind: FamilyKind::Counter,
///     gauge_mode: None,
///     samples: vec![Sample {
///         name: "req_total".into(),
///         labels: vec![("path".into(), "/\"x\"".into())],
///         value: 3.0,
///     }],
/// };
/// let mut out = Vec::new();
/// Format::Text.encode(&[fam], &mut out);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{path=\"/\\\"x\\\"\"} 3.0\n"
/// );
/// ```
pub(crate) fn encode_text(families: &[Family], out: &mut Vec<u8>) {
    Encoder::from(Format::Text).encode_each(families, out, &mut Vec::new());
}

/// Appends OpenMetrics text for `families` to `out`, `# EOF` included
/// (what [`Format::encode`] does for [`Format::OpenMetrics`]).
///
/// ```
/// use prometheus_multiproc::encoding::Format;
/// use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
///
/// let fam = Family {
///     name: "req".into(),
///     help: "Requests.".into(),
///     kind: FamilyKind::Counter,
///     gauge_mode: None,
///     samples: vec![Sample { name: "req_total".into(), labels: vec![], value: 3.0 }],
/// };
/// let mut out = Vec::new();
/// Format::OpenMetrics.encode(&[fam], &mut out);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "# HELP req Requests.\n# TYPE req counter\nreq_total 3.0\n# EOF\n"
/// );
/// ```
pub(crate) fn encode_openmetrics(families: &[Family], out: &mut Vec<u8>) {
    let encoder = Encoder::from(Format::OpenMetrics);
    encoder.encode_each(families, out, &mut Vec::new());
    out.extend_from_slice(encoder.trailer());
}

/// A guess of the bytes per sample, to size the output buffer once.
const BYTES_PER_SAMPLE: usize = 72;

type FamilyEncoder = fn(&Family, &mut Vec<u8>, &mut Scratch);

fn reserve_for(families: &[Family], out: &mut Vec<u8>) {
    let samples: usize = families.iter().map(|f| f.samples.len()).sum();
    out.reserve(samples.saturating_mul(BYTES_PER_SAMPLE));
}

/// An exposition format: the Prometheus text format or OpenMetrics text.
/// [`Format::encode`] is the one way to turn [`Family`]s into bytes; a
/// [`Negotiated`](super::Negotiated) format (from a request's `Accept`)
/// adds the escaping of names, and the collector's `encode_text` /
/// `encode_openmetrics` are shorthands for these.
///
/// ```
/// use prometheus_multiproc::encoding::Format;
/// assert_eq!(Format::Text.content_type(), "text/plain; version=0.0.4; charset=utf-8");
/// let mut out = Vec::new();
/// Format::OpenMetrics.encode(&[], &mut out);
/// assert_eq!(out, b"# EOF\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text, `# EOF` included.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Appends the encoding of `families` to `out`, trailer included
    /// (byte-compatible with prometheus_client's `generate_latest`).
    pub fn encode(self, families: &[Family], out: &mut Vec<u8>) {
        match self {
            Format::Text => encode_text(families, out),
            Format::OpenMetrics => encode_openmetrics(families, out),
        }
    }
}

/// A format and the escaping of its names, for encoding families in pieces:
/// the collector encodes each unit's families on the thread that merged
/// them, then puts the pieces in name order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoder {
    pub(crate) format: Format,
    pub(crate) escaping: Escaping,
}

impl From<Format> for Encoder {
    /// `format` with prometheus_client's default escaping, `underscores`.
    fn from(format: Format) -> Encoder {
        Encoder {
            format,
            escaping: Escaping::Underscores,
        }
    }
}

impl Encoder {
    /// Appends the encoding of each family of `families` to `out` (without
    /// the OpenMetrics trailer), and the end offset in `out` of each
    /// family's bytes to `ends`.
    pub(crate) fn encode_each(self, families: &[Family], out: &mut Vec<u8>, ends: &mut Vec<usize>) {
        let encode: FamilyEncoder = match self.format {
            Format::Text => text_family,
            Format::OpenMetrics => openmetrics_family,
        };
        reserve_for(families, out);
        let mut scratch = Scratch {
            escaping: self.escaping,
            ..Scratch::default()
        };
        for f in families {
            encode(f, out, &mut scratch);
            ends.push(out.len());
        }
    }

    /// What follows the last family.
    pub(crate) fn trailer(self) -> &'static [u8] {
        match self.format {
            Format::Text => b"",
            Format::OpenMetrics => b"# EOF\n",
        }
    }
}

/// Reusable buffers, and the escaping of names.
#[derive(Default)]
struct Scratch {
    float: String,
    name: String,
    labels: Vec<usize>,
    escaping: Escaping,
}

/// The suffixes prometheus_client moves into separate gauge families, in
/// the order it writes them (sorted).
const OM_SUFFIXES: [&str; 3] = ["_created", "_gcount", "_gsum"];

fn text_family(f: &Family, out: &mut Vec<u8>, sc: &mut Scratch) {
    sc.name.clear();
    sc.name.push_str(&f.name);
    let typ = match f.kind {
        FamilyKind::Counter => {
            sc.name.push_str("_total");
            "counter"
        }
        FamilyKind::Info => {
            sc.name.push_str("_info");
            "gauge"
        }
        FamilyKind::StateSet | FamilyKind::Gauge => "gauge",
        FamilyKind::Histogram => "histogram",
        FamilyKind::Summary => "summary",
    };
    let mname = std::mem::take(&mut sc.name);
    text_header(out, &mname, &f.help, typ, sc.escaping);
    sc.name = mname;

    let suffix_of = |s: &Sample| -> Option<usize> {
        let rest = s.name.strip_prefix(f.name.as_str())?;
        OM_SUFFIXES.iter().position(|x| *x == rest)
    };
    let mut deferred = [false; 3];
    for s in &f.samples {
        match suffix_of(s) {
            Some(i) => deferred[i] = true,
            None => text_sample(out, s, sc),
        }
    }
    for (i, suffix) in OM_SUFFIXES.iter().enumerate() {
        if !deferred[i] {
            continue;
        }
        let name = format!("{}{suffix}", f.name);
        text_header(out, &name, &f.help, "gauge", sc.escaping);
        for s in f.samples.iter().filter(|s| suffix_of(s) == Some(i)) {
            text_sample(out, s, sc);
        }
    }
}

fn text_header(out: &mut Vec<u8>, name: &str, help: &str, typ: &str, esc: Escaping) {
    out.extend_from_slice(b"# HELP ");
    push_metric_name(out, name, esc);
    out.push(b' ');
    push_escaped(out, help, false);
    out.extend_from_slice(b"\n# TYPE ");
    push_metric_name(out, name, esc);
    out.push(b' ');
    out.extend_from_slice(typ.as_bytes());
    out.push(b'\n');
}

/// A text-format sample: `name{labels} value`, or under `allow-utf-8` with
/// a name outside the legacy set, `{"name",labels} value` (braces even
/// without labels).
fn text_sample(out: &mut Vec<u8>, s: &Sample, sc: &mut Scratch) {
    let esc = sc.escaping;
    if esc != Escaping::AllowUtf8 || is_legacy_metric_name(&s.name) {
        push_metric_name(out, &s.name, esc);
        push_labels(out, s, sc);
    } else {
        out.push(b'{');
        push_metric_name(out, &s.name, esc);
        if !s.labels.is_empty() {
            out.push(b',');
            push_label_pairs(out, s, sc);
        }
        out.push(b'}');
    }
    push_value(out, s.value, sc);
}

fn openmetrics_family(f: &Family, out: &mut Vec<u8>, sc: &mut Scratch) {
    let esc = sc.escaping;
    out.extend_from_slice(b"# HELP ");
    push_metric_name(out, &f.name, esc);
    out.push(b' ');
    push_escaped(out, &f.help, true);
    out.extend_from_slice(b"\n# TYPE ");
    push_metric_name(out, &f.name, esc);
    out.push(b' ');
    out.extend_from_slice(f.kind.as_str().as_bytes());
    out.push(b'\n');
    for s in &f.samples {
        openmetrics_sample(out, s, sc);
        push_value(out, s.value, sc);
    }
}

/// An OpenMetrics sample's name and labels. The name is rewritten with the
/// label-name character set, legacy or not; under `allow-utf-8` a name
/// outside the legacy set moves into the braces, quoted (no braces when
/// there is neither a name nor a label).
fn openmetrics_sample(out: &mut Vec<u8>, s: &Sample, sc: &mut Scratch) {
    let esc = sc.escaping;
    if esc != Escaping::AllowUtf8 || is_legacy_metric_name(&s.name) {
        push_escaped_name(out, &s.name, esc, Charset::Label);
        push_labels(out, s, sc);
    } else if !s.name.is_empty() || !s.labels.is_empty() {
        out.push(b'{');
        push_metric_name(out, &s.name, esc);
        if !s.labels.is_empty() {
            out.push(b',');
            push_label_pairs(out, s, sc);
        }
        out.push(b'}');
    }
}

/// ` value\n`
fn push_value(out: &mut Vec<u8>, v: f64, sc: &mut Scratch) {
    out.push(b' ');
    // Fast path: whole numbers below a million print as `123.0` (Python's
    // repr; floatToGoString only rewrites positive values from 1e6 on).
    if v.fract() == 0.0 && v.abs() < 1e6 && !(v == 0.0 && v.is_sign_negative()) {
        if v < 0.0 {
            out.push(b'-');
        }
        let mut digits = [0u8; 20];
        out.extend_from_slice(decimal_digits(v.abs() as u64, &mut digits));
        out.extend_from_slice(b".0\n");
        return;
    }
    sc.float.clear();
    push_float_to_go_string(&mut sc.float, v);
    out.extend_from_slice(sc.float.as_bytes());
    out.push(b'\n');
}

/// `{a="x",b="y"}` sorted by label name, or nothing without labels.
fn push_labels(out: &mut Vec<u8>, s: &Sample, sc: &mut Scratch) {
    if s.labels.is_empty() {
        return;
    }
    out.push(b'{');
    push_label_pairs(out, s, sc);
    out.push(b'}');
}

/// `a="x",b="y"` sorted by label name.
fn push_label_pairs(out: &mut Vec<u8>, s: &Sample, sc: &mut Scratch) {
    let esc = sc.escaping;
    let sorted = s.labels.windows(2).all(|w| w[0].0 < w[1].0);
    let mut write = |i: usize, (k, v): &(std::sync::Arc<str>, std::sync::Arc<str>)| {
        if i > 0 {
            out.push(b',');
        }
        push_label_name(out, k, esc);
        out.extend_from_slice(b"=\"");
        push_backslashed(out, v);
        out.push(b'"');
    };
    if sorted {
        for (i, l) in s.labels.iter().enumerate() {
            write(i, l);
        }
    } else {
        // Not from a `Merger`: sort as Python does, by (name, value).
        sc.labels.clear();
        sc.labels.extend(0..s.labels.len());
        sc.labels.sort_by(|&a, &b| s.labels[a].cmp(&s.labels[b]));
        for (i, &j) in sc.labels.iter().enumerate() {
            write(i, &s.labels[j]);
        }
    }
}

/// Escapes `\` and newline (text-format help), and `"` too when `quote`.
fn push_escaped(out: &mut Vec<u8>, s: &str, quote: bool) {
    super::escaping::push_escapes(out, s, quote);
}

/// A metric name escaped as in the text format.
pub(crate) fn escaped_metric_name(s: &str) -> String {
    Escaping::Underscores.metric_name(s)
}

/// A label name escaped as in the text format.
pub(crate) fn escaped_label_name(s: &str) -> String {
    Escaping::Underscores.label_name(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: &[Family]) -> String {
        let mut v = Vec::new();
        encode_text(f, &mut v);
        String::from_utf8(v).unwrap()
    }

    fn om(f: &[Family]) -> String {
        let mut v = Vec::new();
        encode_openmetrics(f, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn name_escaping() {
        let mut v = Vec::new();
        for (s, want) in [
            ("ok:name_1", "ok:name_1"),
            ("1abc", "_abc"),
            ("a.b-c", "a_b_c"),
            ("héllo", "h_llo"),
            ("a\n", "a\n"), // Python's `$` accepts a final newline
            ("a\nb", "a_b"),
            ("", ""),
        ] {
            v.clear();
            push_metric_name(&mut v, s, Escaping::Underscores);
            assert_eq!(String::from_utf8_lossy(&v), want, "{s:?}");
        }
        for (s, want) in [
            ("le", "le"),
            ("a:b", "a_b"),
            ("__x", "__x"),
            ("__x\n", "__x_"),
            ("9", "_"),
            ("ü1", "_1"),
        ] {
            v.clear();
            push_label_name(&mut v, s, Escaping::Underscores);
            assert_eq!(String::from_utf8_lossy(&v), want, "{s:?}");
        }
    }

    #[test]
    fn text_format_munging() {
        let fams = [
            Family::new(
                "c",
                "a\\b\nc\"d",
                FamilyKind::Counter,
                vec![
                    Sample::new("c_total", &[], 1.0),
                    Sample::new("c_created", &[], 5.0),
                ],
            ),
            Family::new(
                "i",
                "",
                FamilyKind::Info,
                vec![Sample::new("i_info", &[("v", "1")], 1.0)],
            ),
            Family::new(
                "s",
                "S",
                FamilyKind::StateSet,
                vec![Sample::new("s", &[("s", "a")], 1.0)],
            ),
            Family::new(
                "h:x",
                "H",
                FamilyKind::Histogram,
                vec![
                    Sample::new("h:x_bucket", &[("le", "+Inf")], 2.0),
                    Sample::new("h:x_sum", &[], 1e7),
                    Sample::new("h:x_count", &[], 2.0),
                ],
            ),
        ];
        assert_eq!(
            text(&fams),
            "# HELP c_total a\\\\b\\nc\"d\n# TYPE c_total counter\nc_total 1.0\n\
             # HELP c_created a\\\\b\\nc\"d\n# TYPE c_created gauge\nc_created 5.0\n\
             # HELP i_info \n# TYPE i_info gauge\ni_info{v=\"1\"} 1.0\n\
             # HELP s S\n# TYPE s gauge\ns{s=\"a\"} 1.0\n\
             # HELP h:x H\n# TYPE h:x histogram\nh:x_bucket{le=\"+Inf\"} 2.0\nh:x_sum 1e+07\nh:x_count 2.0\n"
        );
        assert_eq!(
            om(&fams),
            "# HELP c a\\\\b\\nc\\\"d\n# TYPE c counter\nc_total 1.0\nc_created 5.0\n\
             # HELP i \n# TYPE i info\ni_info{v=\"1\"} 1.0\n\
             # HELP s S\n# TYPE s stateset\ns{s=\"a\"} 1.0\n\
             # HELP h:x H\n# TYPE h:x histogram\nh_x_bucket{le=\"+Inf\"} 2.0\nh_x_sum 1e+07\nh_x_count 2.0\n\
             # EOF\n"
        );
    }

    #[test]
    fn labels_sorted_and_escaped() {
        let f = [Family::new(
            "g",
            "",
            FamilyKind::Gauge,
            vec![Sample::new(
                "g",
                &[("z", "a\\b"), ("a.b", "x\ny\"")],
                f64::NAN,
            )],
        )];
        assert_eq!(
            text(&f),
            "# HELP g \n# TYPE g gauge\ng{a_b=\"x\\ny\\\"\",z=\"a\\\\b\"} NaN\n"
        );
    }

    #[test]
    fn value_formatting() {
        let mut sc = Scratch::default();
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            7.0,
            10.0,
            999999.0,
            -999999.0,
            1e6,
            1234567.0,
            -1234567.0,
            0.5,
            -2.5,
            1e16,
            1e-5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123456789.0,
        ] {
            let mut out = Vec::new();
            push_value(&mut out, v, &mut sc);
            let want = format!(" {}\n", crate::format::key::float_to_go_string(v));
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn streaming_matches_in_memory_for_large_output() {
        let samples: Vec<Sample> = (0..5000)
            .map(|i| Sample::new("g", &[("i", &i.to_string())], i as f64))
            .collect();
        let f = [
            Family::new("g", "", FamilyKind::Gauge, samples.clone()),
            Family::new("h", "", FamilyKind::Gauge, samples),
        ];
        let t = text(&f);
        assert_eq!(t.lines().count(), 4 + 10000);
        let o = om(&f);
        assert!(o.ends_with("# EOF\n"));
    }
}
