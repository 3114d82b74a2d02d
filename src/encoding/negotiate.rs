//! The `Accept` header negotiation of prometheus_client 0.26 (`choose_encoder`): which format, which name escaping, which `Content-Type`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use super::escaping::Escaping;
use super::text::{Encoder, Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use crate::error::Error;
use crate::merge::Family;

const OPENMETRICS: &str = "application/openmetrics-text";
const TEXT: &str = "text/plain";

/// The answer to an `Accept` header: a format, the escaping of names, and
/// the `Content-Type` to send, exactly as prometheus_client sends it.
///
/// ```
/// use prometheus_multiproc::encoding::Escaping;
/// use prometheus_multiproc::encoding::{Negotiated, negotiate};
///
/// // Prometheus 3's default scrape request.
/// let n = negotiate(Some(
///     "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
///      application/openmetrics-text;version=0.0.1;q=0.5,\
///      text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
///      text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
/// ))
/// .unwrap();
/// assert!(n.is_openmetrics());
/// assert_eq!(n.escaping(), Escaping::AllowUtf8);
/// assert_eq!(
///     n.content_type(),
///     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
/// );
///
/// // No header: the text format 0.0.4.
/// assert_eq!(negotiate(None).unwrap(), Negotiated::text());
/// assert_eq!(Negotiated::text().content_type(), "text/plain; version=0.0.4; charset=utf-8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    encoder: Encoder,
    content_type: Cow<'static, str>,
}

impl Negotiated {
    /// The text format 0.0.4 with `underscores`: prometheus_client's answer
    /// when nothing else qualifies.
    pub const fn text() -> Negotiated {
        Negotiated {
            encoder: Encoder {
                format: Format::Text,
                escaping: Escaping::Underscores,
            },
            content_type: Cow::Borrowed(TEXT_CONTENT_TYPE),
        }
    }

    /// OpenMetrics 1.0.0 with `underscores` and no `escaping=` in the
    /// content type: prometheus_client's answer to
    /// `application/openmetrics-text` without a version.
    pub const fn openmetrics() -> Negotiated {
        Negotiated {
            encoder: Encoder {
                format: Format::OpenMetrics,
                escaping: Escaping::Underscores,
            },
            content_type: Cow::Borrowed(OPENMETRICS_CONTENT_TYPE),
        }
    }

    /// The `Content-Type` header value of the response.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// How names outside the legacy character set are written.
    pub fn escaping(&self) -> Escaping {
        self.encoder.escaping
    }

    /// True for OpenMetrics, false for the Prometheus text format.
    pub fn is_openmetrics(&self) -> bool {
        self.encoder.format == Format::OpenMetrics
    }

    /// Appends `families` to `out` in this format and escaping (the
    /// OpenMetrics `# EOF` included).
    ///
    /// ```
    /// use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
    /// use prometheus_multiproc::encoding::negotiate;
    ///
    /// let fam = Family {
    ///     name: "http.requests".into(),
    ///     help: "Requests.".into(),
    ///     kind: FamilyKind::Counter,
    ///     gauge_mode: None,
    ///     samples: vec![Sample {
    ///         name: "http.requests_total".into(),
    ///         labels: vec![("rou.te".into(), "/a".into())],
    ///         value: 1.0,
    ///     }],
    /// };
    /// let n = negotiate(Some("application/openmetrics-text;version=1.0.0;escaping=dots")).unwrap();
    /// let mut out = Vec::new();
    /// n.encode(&[fam], &mut out);
    /// assert_eq!(
    ///     String::from_utf8(out).unwrap(),
    ///     "# HELP http_dot_requests Requests.\n# TYPE http_dot_requests counter\n\
    ///      http_dot_requests__total{rou_dot_te=\"/a\"} 1.0\n# EOF\n"
    /// );
    /// ```
    pub fn encode(&self, families: &[Family], out: &mut Vec<u8>) {
        self.encoder.encode_each(families, out, &mut Vec::new());
        out.extend_from_slice(self.encoder.trailer());
    }

    pub(crate) fn encoder(&self) -> Encoder {
        self.encoder
    }

    fn openmetrics_version(version: &str, escaping: Escaping) -> Negotiated {
        Negotiated {
            encoder: Encoder {
                format: Format::OpenMetrics,
                escaping,
            },
            content_type: Cow::Owned(format!(
                "{OPENMETRICS}; version={version}; charset=utf-8; escaping={escaping}"
            )),
        }
    }

    fn text_1_0_0(escaping: Escaping) -> Negotiated {
        Negotiated {
            encoder: Encoder {
                format: Format::Text,
                escaping,
            },
            content_type: Cow::Owned(format!(
                "{TEXT}; version=1.0.0; charset=utf-8; escaping={escaping}"
            )),
        }
    }
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated::text()
    }
}

/// An `Accept` header that prometheus_client cannot answer: a `version`
/// that Python cannot compare with 1.0.0 (e.g. `1.x`). prometheus_client
/// raises an exception for it, so its HTTP servers answer 500.
///
/// ```
/// use prometheus_multiproc::encoding::negotiate;
/// let err = negotiate(Some("text/plain;version=1.x")).unwrap_err();
/// assert_eq!(err.version(), "1.x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationError {
    version: String,
}

impl NegotiationError {
    /// The `version` parameter that could not be compared.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Accept header: version {:?} cannot be compared with 1.0.0",
            self.version
        )
    }
}

impl std::error::Error for NegotiationError {}

impl From<NegotiationError> for Error {
    fn from(e: NegotiationError) -> Self {
        Error::negotiation(e.version)
    }
}

/// Chooses the format, escaping and content type for an `Accept` header
/// value (`None` when the request has none), exactly as prometheus_client
/// 0.26's `choose_encoder` does.
///
/// The rules, as prometheus_client applies them (they are narrower than
/// HTTP's: no `q` weighting, media types compared case-sensitively):
///
/// * The comma-separated entries are taken in order; the first that
///   qualifies decides. `q` values play no part.
/// * `application/openmetrics-text` without a `version` parameter (or an
///   empty one) gives OpenMetrics 1.0.0 with `underscores` and the plain
///   OpenMetrics content type. With a version of at least 1.0.0 it gives
///   OpenMetrics with the entry's `escaping` and a content type that repeats
///   the version as sent, `escaping=` included. An older version (`0.0.1`)
///   does not qualify.
/// * `text/plain` with a version of at least 1.0.0 gives the text format
///   with the entry's `escaping` and the content type
///   `text/plain; version=1.0.0; charset=utf-8; escaping=…`. Without a
///   version, or an older one (`0.0.4`), it does not qualify.
/// * Nothing qualifying (also: no header, an empty one, `*/*`): the text
///   format 0.0.4 with `underscores`.
/// * An `escaping` value other than the four names is `underscores`; the
///   first `escaping` (and `version`) parameter of an entry counts.
/// * Versions compare as Python compares tuples of the dot-separated parts,
///   each read by Python's `int()` when it can be (`2` and `1.0.0.1` are
///   newer than 1.0.0, `1.0` is older). A part that is not a number where
///   the comparison needs it (`1.x`) makes prometheus_client fail the scrape
///   with an exception (HTTP 500): [`negotiate`] returns
///   [`NegotiationError`] then.
///
/// Only ASCII digits are read as digits (Python's `int()` also reads other
/// Unicode decimal digits; HTTP header values are ASCII).
///
/// ```
/// use prometheus_multiproc::encoding::Escaping;
/// use prometheus_multiproc::encoding::negotiate;
///
/// // Prometheus 2's default scrape request.
/// let n = negotiate(Some(
///     "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
///      text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
/// ))
/// .unwrap();
/// assert_eq!(
///     n.content_type(),
///     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
/// );
/// let n = negotiate(Some("text/plain;version=1.0.0;escaping=values")).unwrap();
/// assert_eq!(n.escaping(), Escaping::Values);
/// assert!(!n.is_openmetrics());
/// // OpenMetrics 0.0.1 alone does not qualify.
/// assert!(!negotiate(Some("application/openmetrics-text;version=0.0.1")).unwrap().is_openmetrics());
/// ```
pub fn negotiate(accept: Option<&str>) -> Result<Negotiated, NegotiationError> {
    for entry in accept.unwrap_or("").split(',') {
        let media = py_strip(entry.split(';').next().unwrap_or(""));
        if media == OPENMETRICS {
            let version = param(entry, "version").unwrap_or("");
            if version.is_empty() {
                return Ok(Negotiated::openmetrics());
            }
            if at_least_1_0_0(version)? {
                return Ok(Negotiated::openmetrics_version(version, escaping(entry)));
            }
        } else if media == TEXT {
            let version = param(entry, "version").unwrap_or("");
            if !version.is_empty() && at_least_1_0_0(version)? {
                return Ok(Negotiated::text_1_0_0(escaping(entry)));
            }
        }
    }
    Ok(Negotiated::text())
}

/// The value of the first `key=value` parameter of an entry named `key`:
/// a part holding `=`, stripped of surrounding whitespace, split at its
/// first `=` (the key is compared as it is, the value kept as it is).
fn param<'a>(entry: &'a str, key: &str) -> Option<&'a str> {
    entry
        .split(';')
        .filter(|part| part.contains('='))
        .filter_map(|part| py_strip(part).split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The entry's escaping: its first `escaping` parameter, `underscores` when
/// it has none or an unknown one.
fn escaping(entry: &str) -> Escaping {
    param(entry, "escaping").map_or(Escaping::Underscores, Escaping::from_param)
}

/// Python's `parse_version(version) >= (1, 0, 0)`: the dot-separated parts
/// compared in turn with 1, 0, 0; a part that is not an integer fails the
/// comparison (Python's `TypeError`).
fn at_least_1_0_0(version: &str) -> Result<bool, NegotiationError> {
    let mut parts = version.split('.');
    for want in [1u8, 0, 0] {
        let Some(part) = parts.next() else {
            // A shorter tuple equal so far is the smaller one.
            return Ok(false);
        };
        match py_int_cmp(part, want) {
            Some(Ordering::Equal) => continue,
            Some(order) => return Ok(order == Ordering::Greater),
            None => {
                return Err(NegotiationError {
                    version: version.to_owned(),
                });
            }
        }
    }
    Ok(true)
}

/// How Python's `int(part)` compares with `small` (0 to 9); `None` when
/// `int()` rejects `part`. `int()` takes surrounding whitespace (Rust's
/// whitespace set, unlike `str.strip()`), a sign, leading zeros and single
/// `_` between digits.
fn py_int_cmp(part: &str, small: u8) -> Option<Ordering> {
    let s = part.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let b = digits.as_bytes();
    let well_formed = b.first().is_some_and(u8::is_ascii_digit)
        && b.last().is_some_and(u8::is_ascii_digit)
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let mut significant = b.iter().filter(|c| **c != b'_').skip_while(|c| **c == b'0');
    let value = match (significant.next(), significant.next()) {
        (None, _) => 0,
        (Some(d), None) => d - b'0',
        // Two or more significant digits: at least 10.
        (Some(_), Some(_)) => {
            return Some(if negative {
                Ordering::Less
            } else {
                Ordering::Greater
            });
        }
    };
    if negative && value != 0 {
        return Some(Ordering::Less);
    }
    Some(value.cmp(&small))
}

/// Python's `str.strip()`: Unicode whitespace, and the ASCII separators
/// U+001C to U+001F, which Python also counts as whitespace.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int() {
        for (part, want) in [
            ("1", Some(Ordering::Equal)),
            (" 1\t", Some(Ordering::Equal)),
            ("\u{3000}01\u{85}", Some(Ordering::Equal)),
            ("\u{1f}01", None),
            ("+1", Some(Ordering::Equal)),
            ("-1", Some(Ordering::Less)),
            ("-0", Some(Ordering::Less)),
            ("0_1", Some(Ordering::Equal)),
            ("1_0", Some(Ordering::Greater)),
            ("2", Some(Ordering::Greater)),
            ("99999999999999999999999", Some(Ordering::Greater)),
            ("", None),
            ("_1", None),
            ("1_", None),
            ("1__0", None),
            ("1 0", None),
            ("x", None),
            ("+", None),
            ("١", None),
        ] {
            assert_eq!(py_int_cmp(part, 1), want, "{part:?}");
        }
        assert_eq!(py_int_cmp("-0", 0), Some(Ordering::Equal));
        assert_eq!(py_int_cmp("000", 0), Some(Ordering::Equal));
    }

    #[test]
    fn versions() {
        for (v, want) in [
            ("1.0.0", Ok(true)),
            ("1.0.0.0", Ok(true)),
            ("2", Ok(true)),
            ("2.x", Ok(true)),
            ("1.0", Ok(false)),
            ("0.0.4", Ok(false)),
            ("0.x", Ok(false)),
            ("1.0.-1", Ok(false)),
            ("1.x", Err(())),
            ("v1", Err(())),
        ] {
            assert_eq!(at_least_1_0_0(v).map_err(|_| ()), want, "{v:?}");
        }
    }

    #[test]
    fn params() {
        let e = "text/plain; version=1.0.0 ;escaping=dots;escaping=values;version =2";
        assert_eq!(param(e, "version"), Some("1.0.0"));
        assert_eq!(escaping(e), Escaping::Dots);
        assert_eq!(param("text/plain;version", "version"), None);
        assert_eq!(param("text/plain;version==1", "version"), Some("=1"));
        assert_eq!(
            escaping("text/plain;escaping=bogus;escaping=dots"),
            Escaping::Underscores
        );
    }

    #[test]
    fn unqualified_entries_fall_through() {
        let n = negotiate(Some(
            "application/openmetrics-text;version=0.0.1,text/plain;version=1.0.0;escaping=dots",
        ))
        .unwrap();
        assert!(!n.is_openmetrics());
        assert_eq!(n.escaping(), Escaping::Dots);
        let n = negotiate(Some(
            "Application/OpenMetrics-Text,application/openmetrics-text;q=0",
        ))
        .unwrap();
        assert_eq!(n, Negotiated::openmetrics());
        let n = negotiate(Some("application/openmetrics-text;version=2.5;escaping=x")).unwrap();
        assert_eq!(
            n.content_type(),
            "application/openmetrics-text; version=2.5; charset=utf-8; escaping=underscores"
        );
    }
}
