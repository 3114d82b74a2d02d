//! gzip for `/metrics` responses (feature `gzip`): whether the client's `Accept-Encoding` allows it, and the compression.
//!
//! One decision for every path that serves metrics: [`Rendered::gzip_for`](super::Rendered::gzip_for)
//! (the [`render`](super::render) helpers), the axum endpoint and the
//! `serve` command all ask [`wants_gzip`].

use std::io::Write as _;

/// True when an `Accept-Encoding` header value allows gzip: `gzip` (or
/// `x-gzip`) listed with a non-zero `q`, or `*` with a non-zero `q` and
/// gzip not listed. Header values repeated in a request are joined with
/// `,` before the call.
///
/// ```
/// use prometheus_multiproc::integrations::wants_gzip;
///
/// assert!(wants_gzip("gzip, deflate, br"));
/// assert!(wants_gzip("*"));
/// assert!(!wants_gzip("gzip;q=0, *"));
/// assert!(!wants_gzip("identity"));
/// ```
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

/// `body` compressed with gzip (flate2's fast level: an exposition is
/// repetitive text, and a scrape should not wait on the compressor).
///
/// ```
/// use std::io::Read as _;
/// use prometheus_multiproc::integrations::gzip;
///
/// let packed = gzip(b"up 1.0\n");
/// let mut text = String::new();
/// flate2::read::GzDecoder::new(&packed[..]).read_to_string(&mut text).unwrap();
/// assert_eq!(text, "up 1.0\n");
/// ```
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // UNWRAP: writing to a Vec cannot fail.
    gz.write_all(body).expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding() {
        assert!(wants_gzip("gzip"));
        assert!(wants_gzip("GZIP"));
        assert!(wants_gzip("x-gzip;q=0.5"));
        assert!(wants_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(!wants_gzip("gzip;q=0"));
        assert!(!wants_gzip("gzip; q=0.000"));
        assert!(!wants_gzip("identity"));
        assert!(!wants_gzip(""));
        assert!(wants_gzip("*"));
        assert!(!wants_gzip("*;q=0"));
        assert!(!wants_gzip("gzip;q=0, *"));
        assert!(wants_gzip("br, *;q=0.1"));
    }

    #[test]
    fn round_trip() {
        use std::io::Read as _;
        let body = "x 1.0\n".repeat(1000);
        let packed = gzip(body.as_bytes());
        assert!(packed.len() < body.len() / 10);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}
