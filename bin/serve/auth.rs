//! HTTP basic and bearer authentication for `serve`: secrets read from files at startup, compared in constant time.

use std::path::Path;

use base64::Engine;
use hyper::header::{AUTHORIZATION, HeaderMap};

use crate::{CliResult, fail};

/// The credentials the server accepts. With both set, either one is enough.
#[derive(Default)]
pub struct Auth {
    /// `user:password`, as in the basic-auth file.
    basic: Option<Vec<u8>>,
    /// The bearer token.
    bearer: Option<Vec<u8>>,
}

/// Reads a secret file; only a trailing line ending is stripped.
fn read_secret(path: &Path, what: &str) -> CliResult<String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| fail!("{what} file {}: {e}", path.display()))?;
    let line = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if line.contains(['\n', '\r']) {
        return Err(fail!(
            "{what} file {}: expected a single line",
            path.display()
        ));
    }
    Ok(line.to_string())
}

impl Auth {
    /// Loads the configured files; any problem is a startup error.
    pub fn load(basic_file: Option<&Path>, bearer_file: Option<&Path>) -> CliResult<Auth> {
        let mut auth = Auth::default();
        if let Some(p) = basic_file {
            let line = read_secret(p, "basic auth")?;
            match line.split_once(':') {
                Some((user, _)) if !user.is_empty() => auth.basic = Some(line.into_bytes()),
                _ => {
                    return Err(fail!(
                        "basic auth file {}: expected one line user:password",
                        p.display()
                    ));
                }
            }
        }
        if let Some(p) = bearer_file {
            let token = read_secret(p, "bearer token")?;
            let token = token.trim();
            if token.is_empty() {
                return Err(fail!(
                    "bearer token file {}: the token is empty",
                    p.display()
                ));
            }
            auth.bearer = Some(token.as_bytes().to_vec());
        }
        Ok(auth)
    }

    /// True when no credentials are required.
    pub fn is_open(&self) -> bool {
        self.basic.is_none() && self.bearer.is_none()
    }

    /// True when the request carries acceptable credentials (or none are
    /// required).
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(value) = headers.get(AUTHORIZATION).map(|v| v.as_bytes()) else {
            return false;
        };
        let Some(space) = value.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, rest) = (&value[..space], value[space + 1..].trim_ascii());
        if scheme.eq_ignore_ascii_case(b"basic")
            && let Some(want) = &self.basic
        {
            return base64::engine::general_purpose::STANDARD
                .decode(rest)
                .is_ok_and(|given| constant_time_eq(want, &given));
        }
        if scheme.eq_ignore_ascii_case(b"bearer")
            && let Some(want) = &self.bearer
        {
            return constant_time_eq(want, rest);
        }
        false
    }

    /// True when a basic-auth file is configured.
    pub fn has_basic(&self) -> bool {
        self.basic.is_some()
    }

    /// The `WWW-Authenticate` challenges for a 401.
    pub fn challenges(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.basic.is_some() {
            v.push(BASIC_CHALLENGE);
        }
        if self.bearer.is_some() {
            v.push("Bearer realm=\"prometheus-multiproc\"");
        }
        v
    }
}

/// The `WWW-Authenticate` challenge for basic auth.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"prometheus-multiproc\", charset=\"UTF-8\"";

/// The library's one constant-time comparison, shared with its axum endpoint.
pub use prometheus_multiproc::integrations::auth::constant_time_eq;

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn basic_and_bearer() {
        let auth = Auth {
            basic: Some(b"prom:s3cret:x".to_vec()),
            bearer: Some(b"tok".to_vec()),
        };
        // "prom:s3cret:x"
        assert!(auth.allows(&headers("Basic cHJvbTpzM2NyZXQ6eA==")));
        assert!(auth.allows(&headers("basic cHJvbTpzM2NyZXQ6eA==")));
        assert!(!auth.allows(&headers("Basic cHJvbTpzM2NyZXQ=")));
        assert!(auth.allows(&headers("Bearer tok")));
        assert!(!auth.allows(&headers("Bearer tok2")));
        assert!(!auth.allows(&headers("Bearertok")));
        assert!(!auth.allows(&HeaderMap::new()));
        assert!(Auth::default().allows(&HeaderMap::new()));
    }
}
