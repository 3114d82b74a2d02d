//! `serve --web.config.file`: TLS (certificates made by the openssl command), client certificates, bcrypt basic auth, checked with curl and a real Prometheus.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::Server;
use crate::common::{Dir, free_port, http_request, run_py};
use crate::sidecar::{Proc, wait_http};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all
/// signed by the CA, in `dir`: ca.crt, server.{crt,key}, client.{crt,key}.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ];
    ca.extend(ec);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        ),
        (
            "client",
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, crt, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        let subj = format!("/CN={name}");
        let mut req = vec!["req", "-subj", &subj, "-keyout", &key, "-out", &csr];
        req.extend(ec);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        );
    }
}

/// curl's exit status, then the HTTP status and headers and body it printed.
fn curl(args: &[&str]) -> (i32, String) {
    let o = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn status_of(out: &str) -> &str {
    out.split_whitespace().nth(1).unwrap_or("")
}

/// A directory with one counter, and a web config in `certs` with TLS and
/// a bcrypt user `prom` (password `s3cret`); `extra` is appended under
/// tls_server_config.
fn setup(certs: &Path, extra_tls: &str) -> Dir {
    make_certificates(certs);
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // Relative paths: relative to the config file.
    std::fs::write(
        certs.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra_tls}\
             basic_auth_users:\n  prom: '{hash}'\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
    )
    .unwrap();
    let d = Dir::new();
    run_py("py_write.py", &[d.path().to_str().unwrap(), "simple"]);
    d
}

#[test]
fn serve_web_config_tls_and_bcrypt_basic_auth() {
    let certs = Dir::new();
    let d = setup(certs.path(), "  min_version: TLS13\n");
    let web = certs.path().join("web.yml");
    let s = Server::start(d.path(), &["--web.config.file", web.to_str().unwrap()]);
    let url = format!("https://{}/metrics", s.addr);
    let ca = certs.path().join("ca.crt");
    let ca = ca.to_str().unwrap();

    let (code, out) = curl(&["--cacert", ca, "-u", "prom:s3cret", &url]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_of(&out), "200", "{out}");
    assert!(out.contains("\nsimple_requests_total{"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("\nx-frame-options: deny\r\n"),
        "{out}"
    );
    // The cached check answers the same.
    let (_, again) = curl(&["--cacert", ca, "-u", "prom:s3cret", &url]);
    assert_eq!(status_of(&again), "200");

    let (_, out) = curl(&["--cacert", ca, "-u", "prom:wrong", &url]);
    assert_eq!(status_of(&out), "401", "{out}");
    let (_, out) = curl(&["--cacert", ca, "-u", "other:s3cret", &url]);
    assert_eq!(status_of(&out), "401", "{out}");
    let (_, out) = curl(&["--cacert", ca, &url]);
    assert_eq!(status_of(&out), "401", "{out}");
    assert!(
        out.contains("WWW-Authenticate: Basic realm=")
            || out.contains("www-authenticate: Basic realm="),
        "{out}"
    );
    // The probes are behind the same auth, over TLS.
    let (_, out) = curl(&[
        "--cacert",
        ca,
        "-u",
        "prom:s3cret",
        &format!("https://{}/-/ready", s.addr),
    ]);
    assert_eq!(status_of(&out), "200", "{out}");

    // Not trusted without the CA; no TLS 1.2 (min_version); no plain HTTP.
    let (code, _) = curl(&["-u", "prom:s3cret", &url]);
    assert_ne!(code, 0);
    let (code, _) = curl(&[
        "--cacert",
        ca,
        "--tls-max",
        "1.2",
        "-u",
        "prom:s3cret",
        &url,
    ]);
    assert_ne!(code, 0);
    assert!(http_request(&s.addr, "GET", "/metrics", &[]).map_or(true, |r| r.status != 200));
}

#[test]
fn serve_web_config_client_certificates() {
    let certs = Dir::new();
    let d = setup(
        certs.path(),
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let web = certs.path().join("web.yml");
    let s = Server::start(d.path(), &["--web.config.file", web.to_str().unwrap()]);
    let url = format!("https://{}/metrics", s.addr);
    let p = |f: &str| certs.path().join(f).to_str().unwrap().to_string();
    let (code, out) = curl(&["--cacert", &p("ca.crt"), "-u", "prom:s3cret", &url]);
    assert_ne!(code, 0, "no client certificate: {out}");
    let (code, out) = curl(&[
        "--cacert",
        &p("ca.crt"),
        "--cert",
        &p("client.crt"),
        "--key",
        &p("client.key"),
        "-u",
        "prom:s3cret",
        &url,
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_of(&out), "200", "{out}");
    // A client certificate signed by another CA is refused.
    let other = Dir::new();
    make_certificates(other.path());
    let q = |f: &str| other.path().join(f).to_str().unwrap().to_string();
    let (code, _) = curl(&[
        "--cacert",
        &p("ca.crt"),
        "--cert",
        &q("client.crt"),
        "--key",
        &q("client.key"),
        "-u",
        "prom:s3cret",
        &url,
    ]);
    assert_ne!(code, 0);
}

#[test]
fn serve_web_config_errors_name_the_file() {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    let cases = [
        ("unknown: 1\n", "unknown field"),
        ("basic_auth_users:\n  prom: plain\n", "not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: x.crt\n  key_file: x.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "cipher_suites is not supported",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
            "missing.crt",
        ),
        (
            "tls_server_config:\n  key_file: x.key\n",
            "cert_file and key_file are required",
        ),
        (
            "http_server_config:\n  headers:\n    Content-Type: x\n",
            "may not be set",
        ),
    ];
    for (yaml, needle) in cases {
        let web = d.path().join("web.yml");
        std::fs::write(&web, yaml).unwrap();
        let o = crate::cli::cmd(&[
            "serve",
            "--dir",
            dir,
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            web.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{yaml}: {err}");
        assert!(
            err.contains(web.to_str().unwrap()) && err.contains(needle),
            "{yaml}: {err}"
        );
    }
}

#[test]
fn prometheus_scrapes_serve_over_tls_with_basic_auth() {
    let prom = std::env::var_os("PROMETHEUS_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/prometheus".into());
    assert!(prom.exists(), "Prometheus not found at {}", prom.display());
    let certs = Dir::new();
    let d = setup(certs.path(), "");
    let web = certs.path().join("web.yml");
    let s = Server::start(d.path(), &["--web.config.file", web.to_str().unwrap()]);

    let work = Dir::new();
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: multiproc\n    scheme: https\n\
             \x20   tls_config:\n      ca_file: {ca}\n\
             \x20   basic_auth:\n      username: prom\n      password: s3cret\n\
             \x20   static_configs:\n      - targets: ['{addr}']\n",
            ca = certs.path().join("ca.crt").display(),
            addr = s.addr,
        ),
    )
    .unwrap();
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let _prom = Proc(
        Command::new(&prom)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    wait_http(&prom_addr, "/-/ready", "prometheus");
    let query = |q: &str| -> Vec<serde_json::Value> {
        let r = http_request(&prom_addr, "GET", &format!("/api/v1/query?query={q}"), &[]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        let r = query("simple_requests_total");
        if !r.is_empty() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no samples reached Prometheus over TLS"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(result[0]["value"][1], "3", "{result:?}");
    assert_eq!(query("up")[0]["value"][1], "1");
}
