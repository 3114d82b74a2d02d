//! Metric and label names outside the legacy character set, written as prometheus_client 0.26 writes them under each `escaping=` scheme.
//!
//! The legacy character sets are `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names
//! and `[a-zA-Z_][a-zA-Z0-9_]*` (not starting with `__`) for label names.
//! prometheus_client tests them with Python's `re.match(...$)`, where `$`
//! also matches before a final newline: `"abc\n"` counts as legacy, and is
//! written as it is. Names outside the set are written, per scheme:
//!
//! | scheme        | `http.requests` (metric) | `rou.te` (label) |
//! |---------------|--------------------------|------------------|
//! | `allow-utf-8` | `"http.requests"`        | `"rou.te"`       |
//! | `underscores` | `http_requests`          | `rou_te`         |
//! | `dots`        | `http_dot_requests`      | `rou_dot_te`     |
//! | `values`      | `U__http_2e_requests`    | `U__rou_2e_te`   |
//!
//! Under `dots` every name is rewritten, legacy or not (`_` becomes `__`).
//! The encoders also use the low-level rewrite directly where
//! prometheus_client calls its low-level `_escape` (OpenMetrics sample
//! names), which rewrites under `dots` and `values` even legacy names.

use std::fmt;

/// How metric and label names outside the legacy character set are written:
/// the `escaping=` parameter of the `Accept` and `Content-Type` headers.
///
/// ```
/// use prometheus_multiproc::encoding::Escaping;
///
/// assert_eq!(Escaping::AllowUtf8.metric_name("http.requests"), "\"http.requests\"");
/// assert_eq!(Escaping::Underscores.metric_name("http.requests"), "http_requests");
/// assert_eq!(Escaping::Dots.label_name("rou.te"), "rou_dot_te");
/// assert_eq!(Escaping::Values.label_name("rou.te"), "U__rou_2e_te");
/// assert_eq!(Escaping::default(), Escaping::Underscores);
/// assert_eq!(Escaping::AllowUtf8.to_string(), "allow-utf-8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Escaping {
    /// `allow-utf-8`: names kept as they are, in double quotes when outside
    /// the legacy set (with `\`, newline and `"` backslash-escaped).
    AllowUtf8,
    /// `underscores` (the default): each character outside the legacy set
    /// becomes `_`.
    #[default]
    Underscores,
    /// `dots`: `_` becomes `__`, `.` becomes `_dot_`, any other character
    /// outside the legacy set `__`.
    Dots,
    /// `values`: `U__` then each character, `_` as `__` and a character
    /// outside the legacy set as `_<hex code point>_`.
    Values,
}

impl Escaping {
    /// The parameter value, as in `escaping=allow-utf-8`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }

    /// The scheme an `escaping=` value names, as prometheus_client reads it:
    /// exact (case-sensitive) names, anything else is `underscores`.
    pub(crate) fn from_param(value: &str) -> Escaping {
        [
            Escaping::AllowUtf8,
            Escaping::Underscores,
            Escaping::Dots,
            Escaping::Values,
        ]
        .into_iter()
        .find(|e| e.as_str() == value)
        .unwrap_or_default()
    }

    /// A metric name as it appears in `# HELP`/`# TYPE` lines and text-format
    /// samples under this scheme (prometheus_client's `escape_metric_name`).
    pub fn metric_name(self, name: &str) -> String {
        let mut out = Vec::with_capacity(name.len() + 2);
        push_metric_name(&mut out, name, self);
        into_string(out)
    }

    /// A label name as written under this scheme (prometheus_client's
    /// `escape_label_name`).
    pub fn label_name(self, name: &str) -> String {
        let mut out = Vec::with_capacity(name.len() + 2);
        push_label_name(&mut out, name, self);
        into_string(out)
    }
}

impl fmt::Display for Escaping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn into_string(bytes: Vec<u8>) -> String {
    // UNWRAP: escaping copies whole UTF-8 characters of a `str` and adds
    // ASCII only.
    String::from_utf8(bytes).expect("escaping keeps UTF-8")
}

/// Which characters a name may hold unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// `[a-zA-Z_:]`, digits after the first character.
    Metric,
    /// `[a-zA-Z_]`, digits after the first character.
    Label,
}

impl Charset {
    /// True when `c`, at character index `i`, needs no escaping.
    fn allows(self, c: char, i: usize) -> bool {
        c.is_ascii_alphabetic()
            || c == '_'
            || (i > 0 && c.is_ascii_digit())
            || (self == Charset::Metric && c == ':')
    }
}

/// True when `s` is a legacy metric name (prometheus_client's
/// `_is_valid_legacy_metric_name`, final-newline quirk included).
pub(crate) fn is_legacy_metric_name(s: &str) -> bool {
    is_legacy(s, Charset::Metric)
}

/// True when `s` is a legacy label name: the character set, and not
/// reserved (starting with `__`).
pub(crate) fn is_legacy_label_name(s: &str) -> bool {
    in_label_set(s) && !s.starts_with("__")
}

/// True when `s` matches `^[a-zA-Z_][a-zA-Z0-9_]*$` (final-newline quirk
/// included), reserved or not.
pub(crate) fn in_label_set(s: &str) -> bool {
    is_legacy(s, Charset::Label)
}

/// `^[first][rest]*$` as Python's `re.match` tests it: `$` also matches
/// before a final newline.
fn is_legacy(s: &str, set: Charset) -> bool {
    // Every allowed character is ASCII, so bytes can be tested one by one:
    // a byte of a multi-byte character is never allowed. Once per name of
    // every sample: a table, not a chain of comparisons.
    let body = s.strip_suffix('\n').unwrap_or(s).as_bytes();
    let (first_ok, rest_ok) = match set {
        Charset::Metric => (&METRIC_FIRST, &METRIC_REST),
        Charset::Label => (&LABEL_FIRST, &LABEL_REST),
    };
    match body.split_first() {
        Some((&first, rest)) => {
            first_ok[usize::from(first)] && rest.iter().all(|&b| rest_ok[usize::from(b)])
        }
        None => false,
    }
}

/// The bytes [`Charset::allows`] allows, first and later, as lookup tables.
const METRIC_FIRST: [bool; 256] = byte_table(Charset::Metric, 0);
const METRIC_REST: [bool; 256] = byte_table(Charset::Metric, 1);
const LABEL_FIRST: [bool; 256] = byte_table(Charset::Label, 0);
const LABEL_REST: [bool; 256] = byte_table(Charset::Label, 1);

const fn byte_table(set: Charset, i: usize) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        // CAST: b < 128, an ASCII character.
        let c = b as u8 as char;
        t[b] = c.is_ascii_alphabetic()
            || c == '_'
            || (i > 0 && c.is_ascii_digit())
            || (matches!(set, Charset::Metric) && c == ':');
        b += 1;
    }
    t
}

/// Appends a metric name as prometheus_client's `escape_metric_name` writes
/// it.
pub(crate) fn push_metric_name(out: &mut Vec<u8>, s: &str, esc: Escaping) {
    push_name(out, s, esc, is_legacy_metric_name(s), Charset::Metric);
}

/// Appends a label name as prometheus_client's `escape_label_name` writes
/// it.
pub(crate) fn push_label_name(out: &mut Vec<u8>, s: &str, esc: Escaping) {
    push_name(out, s, esc, is_legacy_label_name(s), Charset::Label);
}

fn push_name(out: &mut Vec<u8>, s: &str, esc: Escaping, legacy: bool, set: Charset) {
    if s.is_empty() {
        return;
    }
    match esc {
        Escaping::AllowUtf8 if !legacy => {
            out.push(b'"');
            push_escaped_name(out, s, esc, set);
            out.push(b'"');
        }
        Escaping::Underscores | Escaping::Values if legacy => out.extend_from_slice(s.as_bytes()),
        _ => push_escaped_name(out, s, esc, set),
    }
}

/// Appends `s` rewritten by `esc` without the legacy test (prometheus_client's
/// `_escape`): `allow-utf-8` backslash-escapes `\`, newline and `"`; the
/// other schemes rewrite each character outside `set`.
pub(crate) fn push_escaped_name(out: &mut Vec<u8>, s: &str, esc: Escaping, set: Charset) {
    match esc {
        Escaping::AllowUtf8 => push_backslashed(out, s),
        Escaping::Underscores => {
            for (i, c) in s.chars().enumerate() {
                // CAST: an allowed character is ASCII.
                out.push(if set.allows(c, i) { c as u8 } else { b'_' });
            }
        }
        Escaping::Dots => {
            for (i, c) in s.chars().enumerate() {
                match c {
                    '_' => out.extend_from_slice(b"__"),
                    '.' => out.extend_from_slice(b"_dot_"),
                    // CAST: an allowed character is ASCII.
                    c if set.allows(c, i) => out.push(c as u8),
                    _ => out.extend_from_slice(b"__"),
                }
            }
        }
        Escaping::Values => {
            out.extend_from_slice(b"U__");
            for (i, c) in s.chars().enumerate() {
                match c {
                    '_' => out.extend_from_slice(b"__"),
                    // CAST: an allowed character is ASCII.
                    c if set.allows(c, i) => out.push(c as u8),
                    // A `str` holds no surrogates, so Python's `_FFFD_` case
                    // cannot arise.
                    c => out.extend_from_slice(format!("_{:x}_", u32::from(c)).as_bytes()),
                }
            }
        }
    }
}

/// Appends `s` with `\`, newline and `"` backslash-escaped (label values,
/// OpenMetrics help text, quoted names).
pub(crate) fn push_backslashed(out: &mut Vec<u8>, s: &str) {
    push_escapes(out, s, true);
}

/// Appends `s` with `\` and newline backslash-escaped, and `"` too when
/// `quote` (the text format's help text leaves `"` as it is).
pub(crate) fn push_escapes(out: &mut Vec<u8>, s: &str, quote: bool) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quote => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte tables of `is_legacy` accept what [`Charset::allows`] accepts,
    /// character by character.
    #[test]
    fn byte_tables_agree_with_allows() {
        let reference = |s: &str, set: Charset| {
            let body = s.strip_suffix('\n').unwrap_or(s);
            !body.is_empty() && body.chars().enumerate().all(|(i, c)| set.allows(c, i))
        };
        let chars: Vec<char> = (0u32..0x250)
            .chain([0x2028, 0xfeff, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        for set in [Charset::Metric, Charset::Label] {
            for &a in &chars {
                for s in [
                    format!("{a}"),
                    format!("a{a}"),
                    format!("{a}b"),
                    format!("x{a}\n"),
                ] {
                    assert_eq!(is_legacy(&s, set), reference(&s, set), "{s:?}");
                }
            }
        }
    }

    const ALL: [Escaping; 4] = [
        Escaping::AllowUtf8,
        Escaping::Underscores,
        Escaping::Dots,
        Escaping::Values,
    ];

    #[test]
    fn param_names() {
        for e in ALL {
            assert_eq!(Escaping::from_param(e.as_str()), e);
        }
        for other in ["", "Allow-UTF-8", "dots ", "utf8", "none"] {
            assert_eq!(
                Escaping::from_param(other),
                Escaping::Underscores,
                "{other:?}"
            );
        }
    }

    /// Each row: a name, then its metric-name and label-name forms under
    /// allow-utf-8, underscores, dots and values. Taken from
    /// prometheus_client 0.26 (`escape_metric_name`, `escape_label_name`).
    #[test]
    fn names_under_each_scheme() {
        #[rustfmt::skip]
        let rows: &[(&str, [&str; 4], [&str; 4])] = &[
            ("http.requests",
             ["\"http.requests\"", "http_requests", "http_dot_requests", "U__http_2e_requests"],
             ["\"http.requests\"", "http_requests", "http_dot_requests", "U__http_2e_requests"]),
            ("ok_name",
             ["ok_name", "ok_name", "ok__name", "ok_name"],
             ["ok_name", "ok_name", "ok__name", "ok_name"]),
            ("a:b",
             ["a:b", "a:b", "a:b", "a:b"],
             ["\"a:b\"", "a_b", "a__b", "U__a_3a_b"]),
            ("1st",
             ["\"1st\"", "_st", "__st", "U___31_st"],
             ["\"1st\"", "_st", "__st", "U___31_st"]),
            ("__x",
             ["__x", "__x", "____x", "__x"],
             ["\"__x\"", "__x", "____x", "U______x"]),
            ("ü\"\\\n",
             ["\"ü\\\"\\\\\\n\"", "____", "________", "U___fc__22__5c__a_"],
             ["\"ü\\\"\\\\\\n\"", "____", "________", "U___fc__22__5c__a_"]),
            ("abc\n",
             ["abc\\n", "abc\n", "abc__", "abc\n"],
             ["abc\\n", "abc\n", "abc__", "abc\n"]),
            ("😀", ["\"😀\"", "_", "__", "U___1f600_"], ["\"😀\"", "_", "__", "U___1f600_"]),
            ("", ["", "", "", ""], ["", "", "", ""]),
        ];
        for (name, metric, label) in rows {
            for (i, e) in ALL.into_iter().enumerate() {
                assert_eq!(e.metric_name(name), metric[i], "metric {name:?} {e}");
                assert_eq!(e.label_name(name), label[i], "label {name:?} {e}");
            }
        }
    }

    #[test]
    fn legacy_sets() {
        assert!(is_legacy_metric_name("a:b_1") && is_legacy_metric_name("x\n"));
        assert!(!is_legacy_metric_name("") && !is_legacy_metric_name("\n"));
        assert!(!is_legacy_metric_name("a\nb") && !is_legacy_metric_name("1a"));
        assert!(is_legacy_label_name("le") && !is_legacy_label_name("__name"));
        assert!(!is_legacy_label_name("a:b") && !is_legacy_label_name("__\n"));
    }
}
