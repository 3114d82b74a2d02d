//! `--web.config.file`: prometheus/exporter-toolkit's web configuration file (TLS with optional client certificates, bcrypt basic auth, extra response headers).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use hyper::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use crate::{CliResult, Failure, fail};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Known to exporter-toolkit, refused here when set (see `unsupported`).
    cert: Option<serde_yaml::Value>,
    key: Option<serde_yaml::Value>,
    client_ca: Option<serde_yaml::Value>,
    cipher_suites: Option<serde_yaml::Value>,
    curve_preferences: Option<serde_yaml::Value>,
    prefer_server_cipher_suites: Option<serde_yaml::Value>,
    client_allowed_sans: Option<serde_yaml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility; serve speaks HTTP/1.1 only.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers exporter-toolkit lets a web config file set.
const ALLOWED_HEADERS: [&str; 5] = [
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "content-security-policy",
];

/// What a web config file configures.
pub struct WebConfig {
    pub tls: Option<TlsAcceptor>,
    pub users: Option<Arc<BasicUsers>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl WebConfig {
    /// Reads and checks the file; every problem is a startup error naming it.
    pub fn load(path: &Path) -> CliResult<WebConfig> {
        let named = |e: Failure| fail!("--web.config.file {}: {}", path.display(), e.0);
        let text = std::fs::read_to_string(path).map_err(|e| named(e.into()))?;
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| named(e.into()))?
        };
        // Relative paths are relative to the file, as in exporter-toolkit.
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match file.tls_server_config {
            Some(t) => Some(tls_acceptor(t, base).map_err(named)?),
            None => None,
        };
        let users = match file.basic_auth_users {
            Some(u) if !u.is_empty() => Some(BasicUsers::new(u).map_err(named)?),
            _ => None,
        };
        let headers = headers(file.http_server_config.and_then(|h| h.headers)).map_err(named)?;
        Ok(WebConfig {
            tls,
            users,
            headers,
        })
    }
}

fn unsupported(t: &TlsFile) -> Option<&'static str> {
    [
        (t.cert.is_some(), "cert (inline; use cert_file)"),
        (t.key.is_some(), "key (inline; use key_file)"),
        (
            t.client_ca.is_some(),
            "client_ca (inline; use client_ca_file)",
        ),
        (t.cipher_suites.is_some(), "cipher_suites"),
        (t.curve_preferences.is_some(), "curve_preferences"),
        (
            t.prefer_server_cipher_suites.is_some(),
            "prefer_server_cipher_suites",
        ),
        (t.client_allowed_sans.is_some(), "client_allowed_sans"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

fn version(
    v: Option<&str>,
    default: &'static rustls::SupportedProtocolVersion,
) -> CliResult<&'static rustls::SupportedProtocolVersion> {
    match v {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(&rustls::version::TLS12),
        Some("TLS13") => Ok(&rustls::version::TLS13),
        Some(other) => Err(fail!(
            "tls_server_config: TLS version {other:?} is not supported (TLS12 or TLS13)"
        )),
    }
}

fn read_pem_file(base: &Path, p: &Path, what: &str) -> CliResult<Vec<u8>> {
    let full = base.join(p);
    std::fs::read(&full).map_err(|e| fail!("{what} {}: {e}", full.display()))
}

fn tls_acceptor(t: TlsFile, base: &Path) -> CliResult<TlsAcceptor> {
    if let Some(name) = unsupported(&t) {
        return Err(fail!("tls_server_config: {name} is not supported"));
    }
    let (Some(cert_file), Some(key_file)) = (&t.cert_file, &t.key_file) else {
        return Err(fail!(
            "tls_server_config: cert_file and key_file are required"
        ));
    };
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read_pem_file(base, cert_file, "cert_file")?)
            .collect::<Result<_, _>>()
            .map_err(|e| fail!("cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(fail!("cert_file {}: no certificate", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read_pem_file(base, key_file, "key_file")?)
        .map_err(|e| fail!("key_file {}: {e}", key_file.display()))?;
    let min = version(t.min_version.as_deref(), &rustls::version::TLS12)?;
    let max = version(t.max_version.as_deref(), &rustls::version::TLS13)?;
    let versions: Vec<_> = [&rustls::version::TLS12, &rustls::version::TLS13]
        .into_iter()
        .filter(|v| {
            (u16::from(min.version)..=u16::from(max.version)).contains(&u16::from(v.version))
        })
        .collect();
    if versions.is_empty() {
        return Err(fail!("tls_server_config: min_version is above max_version"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)?;
    let builder = match client_verifier(&t, base, provider)? {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| fail!("tls_server_config: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// exporter-toolkit's `client_auth_type`, of those rustls can do.
fn client_verifier(
    t: &TlsFile,
    base: &Path,
    provider: Arc<CryptoProvider>,
) -> CliResult<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>> {
    let kind = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let optional = match kind {
        "" | "NoClientCert" => return Ok(None),
        "RequireAndVerifyClientCert" => false,
        "VerifyClientCertIfGiven" => true,
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(fail!(
                "tls_server_config: client_auth_type {kind} (a certificate taken unverified) is not supported"
            ));
        }
        other => {
            return Err(fail!(
                "tls_server_config: unknown client_auth_type {other:?}"
            ));
        }
    };
    let Some(ca_file) = &t.client_ca_file else {
        return Err(fail!(
            "tls_server_config: client_auth_type {kind} needs client_ca_file"
        ));
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read_pem_file(base, ca_file, "client_ca_file")?) {
        let cert = cert.map_err(|e| fail!("client_ca_file {}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| fail!("client_ca_file {}: {e}", ca_file.display()))?;
    }
    let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if optional {
        b = b.allow_unauthenticated();
    }
    Ok(Some(b.build().map_err(|e| {
        fail!("client_ca_file {}: {e}", ca_file.display())
    })?))
}

fn headers(h: Option<BTreeMap<String, String>>) -> CliResult<Vec<(HeaderName, HeaderValue)>> {
    let mut out = Vec::new();
    for (name, value) in h.unwrap_or_default() {
        let lower = name.to_ascii_lowercase();
        if !ALLOWED_HEADERS.contains(&lower.as_str()) {
            return Err(fail!(
                "http_server_config: header {name:?} may not be set (allowed: {})",
                ALLOWED_HEADERS.join(", ")
            ));
        }
        let value = HeaderValue::from_str(&value)
            .map_err(|_| fail!("http_server_config: header {name}: invalid value"))?;
        // UNWRAP: every name of ALLOWED_HEADERS is a valid header name.
        out.push((
            HeaderName::from_bytes(lower.as_bytes()).expect("valid header name"),
            value,
        ));
    }
    Ok(out)
}

/// Most credentials remembered after a successful bcrypt check (bcrypt is
/// slow by design; a scraper sends the same credentials every time).
const VERIFIED_CACHE: usize = 1_000;

/// `basic_auth_users`: user names and bcrypt hashes of their passwords.
pub struct BasicUsers {
    users: BTreeMap<String, String>,
    /// Checked for an unknown user, so that its answer takes as long.
    dummy: String,
    verified: Mutex<HashSet<Vec<u8>>>,
}

impl BasicUsers {
    fn new(users: BTreeMap<String, String>) -> CliResult<Arc<Self>> {
        let mut cost = 10;
        for (user, hash) in &users {
            let parts = hash
                .parse::<bcrypt::HashParts>()
                .map_err(|e| fail!("basic_auth_users: {user}: not a bcrypt hash: {e}"))?;
            cost = parts.get_cost();
        }
        let dummy = bcrypt::hash_with_salt(b"", cost, [0x5a; 16])?
            .format_for_version(bcrypt::Version::TwoY);
        Ok(Arc::new(BasicUsers {
            users,
            dummy,
            verified: Mutex::new(HashSet::new()),
        }))
    }

    /// True when the request's basic credentials match a user's hash.
    pub async fn allows(self: &Arc<Self>, headers: &HeaderMap) -> bool {
        let Some(given) = basic_credentials(headers) else {
            return false;
        };
        let cache = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache().contains(&given) {
            return true;
        }
        let me = Arc::clone(self);
        let check = given.clone();
        let ok = tokio::task::spawn_blocking(move || me.verify(&check))
            .await
            .unwrap_or(false);
        if ok {
            let mut c = cache();
            if c.len() >= VERIFIED_CACHE {
                c.clear();
            }
            c.insert(given);
        }
        ok
    }

    fn verify(&self, given: &[u8]) -> bool {
        let Some(colon) = given.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, password) = (&given[..colon], &given[colon + 1..]);
        let known = std::str::from_utf8(user)
            .ok()
            .and_then(|u| self.users.get(u));
        let hash = known.unwrap_or(&self.dummy);
        let matches = bcrypt::verify(password, hash).unwrap_or(false);
        matches && known.is_some()
    }
}

/// The decoded `user:password` of a `Basic` Authorization header.
fn basic_credentials(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    if !value[..space].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(value[space + 1..].trim_ascii())
        .ok()
}
