//! The one OpenMetrics `Accept` check, as prometheus_client decides.

/// True when an `Accept` header value asks for OpenMetrics: some listed
/// media type is `application/openmetrics-text` (any case) and its `q`
/// parameter, if any, is not 0.
///
/// ```
/// use prometheus_multiproc::encoding::wants_openmetrics;
/// assert!(wants_openmetrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
/// assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
/// assert!(!wants_openmetrics("text/plain;version=0.0.4"));
/// assert!(!wants_openmetrics("*/*"));
/// ```
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/openmetrics-text")
            && !parts.any(|p| {
                let p = p.trim();
                p.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("q="))
                    && p[2..].trim().parse::<f64>().is_ok_and(|q| q <= 0.0)
            })
    })
}
