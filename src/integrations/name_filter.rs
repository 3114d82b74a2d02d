//! The `?name[]=…` query parameter of a `/metrics` request: families cut to the requested sample names, as prometheus_client cuts them.
//!
//! prometheus_client reads the query with Python's `urllib.parse.parse_qs`
//! and, when `name[]` is present, keeps of each family only the samples
//! whose name is one of the values (`Metric._restricted_metric`), dropping
//! families left without samples. Family names, help and types stay, so a
//! counter asked for by `c_total` still announces `# TYPE c_total counter`.
//! (Its own restricted registry yields nothing at all in multiprocess mode,
//! since the multiprocess collector describes no names; this filter keeps
//! what was asked for.)

use std::collections::HashSet;

use crate::merge::Family;

/// The sample names a request asked for with `name[]`.
///
/// ```
/// use prometheus_multiproc::integrations::NameFilter;
///
/// let f = NameFilter::from_query("name[]=http.requests_total&name%5B%5D=up&x=1").unwrap();
/// assert!(f.contains("http.requests_total") && f.contains("up"));
/// assert!(!f.contains("x"));
/// // No `name[]`, or only empty values: no filter.
/// assert!(NameFilter::from_query("name[]=&debug=1").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameFilter {
    names: HashSet<String>,
}

impl NameFilter {
    /// A filter keeping the samples named in `names`.
    pub fn new<I, S>(names: I) -> NameFilter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        NameFilter {
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// The `name[]` values of a URL query string (the part after `?`), read
    /// as Python's `parse_qs` reads them: fields split at `&`, `+` as a
    /// space, `%XX` decoded as UTF-8 (invalid bytes as U+FFFD), fields
    /// without `=` or with an empty value ignored. `None` when no field
    /// `name[]` remains: the request asks for everything.
    pub fn from_query(query: &str) -> Option<NameFilter> {
        let names: HashSet<String> = query
            .split('&')
            .filter_map(|field| field.split_once('='))
            .filter(|(_, value)| !value.is_empty())
            .filter(|(key, _)| unquote_plus(key) == "name[]")
            .map(|(_, value)| unquote_plus(value))
            .collect();
        (!names.is_empty()).then_some(NameFilter { names })
    }

    /// True when samples named `name` are kept.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Keeps in each family only the samples this filter names, in their
    /// order, and drops families left without samples.
    ///
    /// ```
    /// use prometheus_multiproc::merge::{Family, FamilyKind, Sample};
    /// use prometheus_multiproc::integrations::NameFilter;
    ///
    /// let sample = |name: &str| Sample { name: name.into(), labels: vec![], value: 1.0 };
    /// let mut families = vec![
    ///     Family {
    ///         name: "h".into(),
    ///         help: String::new(),
    ///         kind: FamilyKind::Histogram,
    ///         gauge_mode: None,
    ///         samples: vec![sample("h_sum"), sample("h_count")],
    ///     },
    ///     Family {
    ///         name: "g".into(),
    ///         help: String::new(),
    ///         kind: FamilyKind::Gauge,
    ///         gauge_mode: None,
    ///         samples: vec![sample("g")],
    ///     },
    /// ];
    /// NameFilter::new(["h_count"]).restrict(&mut families);
    /// assert_eq!(families.len(), 1);
    /// assert_eq!(&*families[0].samples[0].name, "h_count");
    /// ```
    pub fn restrict(&self, families: &mut Vec<Family>) {
        for f in families.iter_mut() {
            f.samples.retain(|s| self.contains(&s.name));
        }
        families.retain(|f| !f.samples.is_empty());
    }
}

/// Python's `unquote(s.replace('+', ' '))`: each run of ASCII characters is
/// percent-decoded to bytes and read as UTF-8 with U+FFFD for invalid
/// sequences; other characters and malformed `%` escapes stay as they are.
fn unquote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = Vec::new();
    for c in s.chars() {
        if c.is_ascii() {
            // CAST: an ASCII character is one byte.
            run.push(if c == '+' { b' ' } else { c as u8 });
        } else {
            flush_run(&mut run, &mut out);
            out.push(c);
        }
    }
    flush_run(&mut run, &mut out);
    out
}

/// Percent-decodes an ASCII run into `out`.
fn flush_run(run: &mut Vec<u8>, out: &mut String) {
    let mut bytes = Vec::with_capacity(run.len());
    let mut i = 0;
    while i < run.len() {
        let hex = run.get(i + 1..i + 3).and_then(|h| {
            let h = std::str::from_utf8(h).ok()?;
            // `from_str_radix` would take a sign: require two hex digits.
            h.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u8::from_str_radix(h, 16).ok())?
        });
        match (run[i], hex) {
            (b'%', Some(b)) => {
                bytes.push(b);
                i += 3;
            }
            (b, _) => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoting_like_python() {
        // Expected values from Python 3.11's urllib.parse.unquote_plus.
        for (s, want) in [
            ("a+b", "a b"),
            ("%41%4a%4A", "AJJ"),
            ("%zz%4", "%zz%4"),
            ("%+1", "% 1"),
            ("%C3%A9", "é"),
            ("%C3", "\u{fffd}"),
            ("%C3é%A9", "\u{fffd}é\u{fffd}"),
            ("name%5B%5D", "name[]"),
        ] {
            assert_eq!(unquote_plus(s), want, "{s:?}");
        }
    }

    #[test]
    fn query_fields() {
        let f = NameFilter::from_query("name[]=a&name[]&&name[]=&name[]=b=c&x=d").unwrap();
        assert_eq!(f, NameFilter::new(["a", "b=c"]));
        assert!(NameFilter::from_query("").is_none());
        assert!(NameFilter::from_query("name=a").is_none());
        let f = NameFilter::from_query("name[]=a;name[]=b").unwrap();
        assert_eq!(f, NameFilter::new(["a;name[]=b"]));
    }
}
