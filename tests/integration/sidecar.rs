//! End to end, loopback only: `serve` as the sidecar of a real gunicorn + Flask app using prometheus_client, and a real Prometheus server scraping `serve`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Dir, free_port, http_request, python, repo, run_py};

/// A child process killed (and reaped) when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `prometheus-multiproc serve` on an ephemeral loopback port and
/// returns it with its address.
fn start_serve(dir: &Path) -> (Proc, String) {
    start_serve_with(dir, &[])
}

/// `start_serve` with more flags.
fn start_serve_with(dir: &Path, extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prometheus-multiproc"))
        .args(["serve", "--dir"])
        .arg(dir)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    // Keep draining stderr so that warnings never block the server.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), addr)
}

/// Waits until `GET path` on `addr` answers 200.
pub(crate) fn wait_http(addr: &str, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http_request(addr, "GET", path, &[])
            && r.status == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not come up on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `app_requests_total` samples of an exposition, by label string.
fn request_counters(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("app_requests_total{"))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn gunicorn_app_with_serve_sidecar() {
    let d = Dir::new();
    let app_addr = format!("127.0.0.1:{}", free_port());
    let gunicorn = python().parent().unwrap().join("gunicorn");
    let app = Proc(
        Command::new(&gunicorn)
            .args(["-c", "gunicorn_conf.py", "flask_app:app"])
            .current_dir(repo().join("tests/python"))
            .env("PROMETHEUS_MULTIPROC_DIR", d.path())
            .env("APP_BIND", &app_addr)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn"),
    );
    wait_http(&app_addr, "/", "gunicorn");
    let (_serve, addr) = start_serve(d.path());

    // Traffic from two client threads while the main thread scrapes.
    let paths = ["/", "/items/7", "/items/123", "/fail"];
    let per_thread = 150;
    let clients: Vec<_> = (0..2)
        .map(|t| {
            let app = app_addr.clone();
            std::thread::spawn(move || {
                let mut made: BTreeMap<(String, u16), u32> = BTreeMap::new();
                for i in 0..per_thread {
                    let p = paths[(i + t) % paths.len()];
                    let r = http_request(&app, "GET", p, &[]).expect("app request");
                    let label = if p.starts_with("/items") { "/items" } else { p };
                    *made.entry((label.to_string(), r.status)).or_default() += 1;
                }
                made
            })
        })
        .collect();
    let mut scrapes = 0;
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    while clients.iter().any(|c| !c.is_finished()) || scrapes < 5 {
        let r = http_request(&addr, "GET", "/metrics", &[]).expect("scrape");
        assert_eq!(r.status, 200, "scrape failed: {}", r.text());
        let now = request_counters(&r.text());
        for (series, v) in &last {
            let cur = now.get(series).copied().unwrap_or(0.0);
            assert!(cur >= *v, "{series} went down: {v} -> {cur}");
        }
        last = now;
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The readiness probe's one successful `GET /` counts too.
    let mut made: BTreeMap<(String, u16), u32> = BTreeMap::from([(("/".to_string(), 200), 1)]);
    for c in clients {
        for (k, n) in c.join().unwrap() {
            *made.entry(k).or_default() += n;
        }
    }
    assert!(scrapes >= 5);

    // Workers were restarted by max_requests: more pids than workers.
    let pids: std::collections::BTreeSet<String> = d
        .files()
        .into_iter()
        .filter_map(|f| f.strip_prefix("counter_").map(|s| s.to_string()))
        .collect();
    assert!(pids.len() > 3, "no worker restarts seen: {pids:?}");

    // Every request counted exactly once, across restarts.
    let r = http_request(&addr, "GET", "/metrics", &[]).unwrap();
    let text = r.text();
    let counted = request_counters(&text);
    for ((path, status), n) in &made {
        let series = format!("app_requests_total{{path=\"{path}\",status=\"{status}\"}}");
        assert_eq!(
            counted.get(&series),
            Some(&f64::from(*n)),
            "{series}\n{text}"
        );
    }
    assert_eq!(
        counted.values().sum::<f64>(),
        f64::from(2 * per_thread as u32 + 1)
    );

    // Stop the app (its child_exit hook marks every worker dead), so the
    // directory is quiet; then serve's body, up to its own families (which
    // come last), is prometheus_client's own collector's, byte for byte.
    drop(app);
    let r = http_request(&addr, "GET", "/metrics", &[]).unwrap();
    let text = r.text();
    assert_eq!(request_counters(&text), counted);
    let (ours, own) = text.split_at(
        text.find("# HELP prometheus_multiproc_")
            .expect("own families"),
    );
    assert!(!own.contains("app_"), "{own}");
    // Without its own families, serve's whole body is prometheus_client's,
    // in text and in OpenMetrics.
    let (_bare, bare) = start_serve_with(d.path(), &["--web.disable-exporter-metrics"]);
    for (format, accept) in [
        ("text", None),
        (
            "openmetrics",
            Some("application/openmetrics-text; version=1.0.0"),
        ),
    ] {
        let py_out = run_py(
            "py_collect.py",
            &[d.path().to_str().unwrap(), "--format", format],
        );
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let body = http_request(&bare, "GET", "/metrics", &headers)
            .unwrap()
            .text();
        assert_eq!(body, py_out, "{format}");
        if format == "text" {
            assert_eq!(ours, py_out);
        }
    }
}

#[test]
fn prometheus_server_scrapes_serve() {
    let prom = std::env::var_os("PROMETHEUS_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/prometheus".into());
    assert!(
        prom.exists(),
        "Prometheus not found at {}: run scripts/setup-prometheus.sh (scripts/test.sh does)",
        prom.display()
    );
    let d = Dir::new();
    run_py("py_write.py", &[d.path().to_str().unwrap(), "simple"]);
    let (_serve, addr) = start_serve(d.path());

    let work = Dir::new();
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: multiproc\n    static_configs:\n      - targets: ['{addr}']\n"
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
        let r = http_request(&prom_addr, "GET", &format!("/api/v1/query?query={q}"), &[])
            .expect("query prometheus");
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        let r = query("simple_requests_total");
        if !r.is_empty() {
            break r;
        }
        assert!(Instant::now() < deadline, "no samples reached Prometheus");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["metric"]["code"], "200");
    assert_eq!(result[0]["metric"]["job"], "multiproc");
    assert_eq!(result[0]["value"][1], "3");
    let up = query("up");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let count = query("simple_latency_seconds_count");
    assert_eq!(count[0]["value"][1], "2", "{count:?}");
    let inflight = query("simple_inflight");
    assert_eq!(inflight[0]["value"][1], "3", "{inflight:?}");
    let own = query("prometheus_multiproc_scrape_duration_seconds");
    assert!(!own.is_empty(), "the exporter's own families are scraped");
}
