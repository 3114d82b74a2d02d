//! Fixtures shared by the integration tests: temporary metrics directories,
//! forked workers, and the real Python prometheus_client.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use prometheus_multiproc::MetricsDir;

/// A fresh metrics directory, removed on drop.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix("pm-test-")
                .tempdir()
                .expect("create temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn writer(&self) -> MetricsDir {
        MetricsDir::open(self.path()).expect("open metrics dir")
    }
    /// Names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

/// The repository root (also for the command's package in `bin/`, whose
/// tests share these fixtures: its nearest ancestor holding `tests/python`).
pub fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("tests/python").is_dir())
        .unwrap_or(here)
        .to_path_buf()
}

/// The Python interpreter with prometheus_client 0.26.0. Tests fail (never
/// skip) when it is missing: `scripts/test.sh` installs it.
pub fn python() -> PathBuf {
    let p = std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/pyenv/bin/python"));
    // Absolute, since some tests run its neighbours (gunicorn) from another
    // working directory.
    let p = std::path::absolute(&p).unwrap_or(p);
    assert!(
        p.exists(),
        "Python reference not found at {}: run scripts/setup-python.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Runs `tests/python/<script>` with `args`; panics with its stderr on failure.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

/// A merged sample as prometheus_client reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PySample {
    pub family: String,
    pub typ: String,
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// prometheus_client's own MultiProcessCollector over `dir`, as samples.
pub fn py_samples(dir: &Path) -> Vec<PySample> {
    let json = run_py(
        "py_collect.py",
        &[dir.to_str().unwrap(), "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("py_collect json");
    let mut out = Vec::new();
    for fam in v.as_array().expect("families") {
        for s in fam["samples"].as_array().expect("samples") {
            let mut labels: Vec<(String, String)> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            out.push(PySample {
                family: fam["name"].as_str().unwrap().to_string(),
                typ: fam["type"].as_str().unwrap().to_string(),
                name: s["name"].as_str().unwrap().to_string(),
                labels,
                value: parse_py_float(s["value"].as_str().unwrap()),
            });
        }
    }
    out
}

fn parse_py_float(s: &str) -> f64 {
    match s {
        "nan" => f64::NAN,
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("bad float {s:?}")),
    }
}

/// The value of one sample in `samples`, by name and labels (any order).
pub fn value_of(samples: &[PySample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    let found: Vec<&PySample> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .collect();
    assert!(found.len() <= 1, "duplicate sample {name} {labels:?}");
    found.first().map(|s| s.value)
}

/// Forks a child that runs `f` and exits with 0 if it returned without
/// panicking, 101 otherwise. Returns the child's pid.
pub fn fork_worker(f: impl FnOnce()) -> nix::unistd::Pid {
    static TEST_PROCESS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let top = *TEST_PROCESS.get_or_init(std::process::id);
    // SAFETY: the child only runs `f` (metric writes, which the library makes
    // fork-safe) and then leaves with `_exit`, running no destructors or
    // atexit handlers of the parent.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            // Workers of the test process die with the thread that forked
            // them, so a failed test never leaves workers behind (they would
            // hold the test runner's output pipes open). Grandchildren keep
            // the default: some tests need them to outlive their parent.
            if nix::unistd::getppid().as_raw() as u32 == top {
                // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and
                // has no memory effects.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            }
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
            // SAFETY: _exit is async-signal-safe and ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 101 }) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    }
}

/// Waits for `pid` and asserts that it exited with status 0.
pub fn wait_ok(pid: nix::unistd::Pid) {
    match nix::sys::wait::waitpid(pid, None).expect("waitpid") {
        nix::sys::wait::WaitStatus::Exited(_, 0) => {}
        other => panic!("worker {pid} ended with {other:?}"),
    }
}

/// Runs `f` in a forked worker and waits for it to succeed; returns its pid.
pub fn in_worker(f: impl FnOnce()) -> i32 {
    let pid = fork_worker(f);
    wait_ok(pid);
    pid.as_raw()
}

/// A minimal HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
/// Loopback only; bodies are read to EOF (no chunked encoding expected from
/// servers that close the connection; chunked bodies are decoded).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| std::io::Error::other("bad chunk"))?;
        let size_str = String::from_utf8_lossy(&b[..nl]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        b = &b[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A forked worker that runs `f`, reports ready, and exits when told to
/// (or is killed if the test fails first).
pub struct Held {
    pid: nix::unistd::Pid,
    ctl: std::os::unix::net::UnixStream,
    stopped: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

impl Held {
    pub fn spawn(f: impl FnOnce()) -> Held {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let pid = fork_worker(move || {
            f();
            let mut s = theirs;
            s.write_all(b"r").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
        });
        let mut ctl = ours;
        let mut b = [0u8; 1];
        ctl.read_exact(&mut b).unwrap();
        Held {
            pid,
            ctl,
            stopped: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    pub fn stop(mut self) {
        self.stopped = true;
        self.ctl.write_all(b"q").unwrap();
        wait_ok(self.pid);
    }
}

/// Both bodies are the same bytes, order included; on failure, shows the
/// first line that differs.
pub fn assert_same_body(ours: &str, python: &str) {
    if ours != python {
        let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), python.lines().collect());
        let at = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let show = |v: &[&str]| v[at.saturating_sub(3)..(at + 4).min(v.len())].join("\n");
        panic!(
            "bodies differ at line {} ({} and {} lines)\n--- ours:\n{}\n--- python:\n{}",
            at + 1,
            a.len(),
            b.len(),
            show(&a),
            show(&b)
        );
    }
    assert!(
        ours.lines().count() > 3,
        "suspiciously small output: {ours}"
    );
}

/// A pseudo-random number generator (xorshift64), for reproducible
/// directories.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Writes `files` files (through the file layout, as any writer would) of
/// every type prometheus_client writes and every gauge mode: keys in a
/// different order in each file, label sets spread over the files,
/// histogram label sets with buckets only and with `_count` entries,
/// most-recent gauges never set in some files, one gauge written in three
/// modes, one file with no entries.
pub fn random_dir(dir: &Path, seed: u64, files: usize) {
    use prometheus_multiproc::format::build_file;
    use prometheus_multiproc::format::encode_key;
    let mut rng = Rng(seed);
    let kinds: Vec<String> = ["counter", "summary", "histogram"]
        .iter()
        .map(|s| s.to_string())
        .chain(
            prometheus_multiproc::GaugeMode::ALL
                .iter()
                .map(|m| format!("gauge_{m}")),
        )
        .collect();
    for i in 0..files {
        let kind = &kinds[(i + rng.below(3)) % kinds.len()];
        let mut entries: Vec<(String, f64, f64)> = Vec::new();
        let label = |rng: &mut Rng| ["a", "b", "c", "d"][rng.below(4)].to_string();
        let value = |rng: &mut Rng| [0.1, 0.2, 1.0, 3.5, 1e16, -2.25][rng.below(6)];
        for m in 0..3 {
            let l = label(&mut rng);
            let labels = [("l", l.as_str())];
            let help = format!("Help {m}.");
            match kind.as_str() {
                "counter" => {
                    let name = format!("c{m}");
                    let key = encode_key(&name, &format!("{name}_total"), &labels, &help);
                    entries.push((key, value(&mut rng), 0.0));
                }
                "summary" => {
                    let name = format!("s{m}");
                    for suffix in ["_count", "_sum"] {
                        let key = encode_key(&name, &format!("{name}{suffix}"), &labels, &help);
                        entries.push((key, value(&mut rng), 0.0));
                    }
                }
                "histogram" => {
                    let name = format!("h{m}");
                    // Label set "d" never has a `_sum`; "c" has a `_count`.
                    if l != "d" {
                        let key = encode_key(&name, &format!("{name}_sum"), &labels, &help);
                        entries.push((key, value(&mut rng), 0.0));
                    }
                    if l == "c" {
                        let key = encode_key(&name, &format!("{name}_count"), &labels, &help);
                        entries.push((key, 7.0, 0.0));
                    }
                    for le in ["0.1", "1.0", "+Inf", "5e-05"] {
                        let key = encode_key(
                            &name,
                            &format!("{name}_bucket"),
                            &[("l", l.as_str()), ("le", le)],
                            &help,
                        );
                        entries.push((key, rng.below(3) as f64, 0.0));
                    }
                }
                gauge => {
                    let name = format!("{gauge}_{m}");
                    let key = encode_key(&name, &name, &labels, &help);
                    // Most-recent gauges: some entries never set (0.0).
                    let ts = [0.0, 1.0, 2.0, 5.0][rng.below(4)];
                    entries.push((key, value(&mut rng), ts));
                }
            }
        }
        // One gauge in three modes (the last file's mode applies).
        if ["gauge_max", "gauge_sum", "gauge_mostrecent"].contains(&kind.as_str()) {
            let l = label(&mut rng);
            let key = encode_key("moded", "moded", &[("l", &l)], "Moded.");
            entries.push((key, value(&mut rng), [0.0, 3.0][rng.below(2)]));
        }
        rng.shuffle(&mut entries);
        let refs: Vec<(&[u8], f64, f64)> = entries
            .iter()
            .map(|(k, v, t)| (k.as_bytes(), *v, *t))
            .collect();
        let image = build_file(&refs, 4096);
        std::fs::write(dir.join(format!("{kind}_{}.db", 1000 + i)), image).unwrap();
    }
    std::fs::write(dir.join("counter_999.db"), build_file(&[], 4096)).unwrap();
}
