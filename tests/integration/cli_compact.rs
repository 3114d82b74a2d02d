//! Worker churn with compaction: real prometheus_client workers come and go, `mark-dead --compact` folds their files, `serve` is scraped all along.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crate::cli::{BIN, Server, value_of_line};
use crate::common::{Dir, py_samples, python, repo, value_of};

/// Workers in the churn test: `PM_CHURN_WORKERS` (default 200).
fn workers() -> usize {
    std::env::var("PM_CHURN_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// The values of one scrape: eur, usd, histogram sum and count.
fn scrape_values(body: &str) -> Option<[f64; 4]> {
    Some([
        value_of_line(body, "churn_paid_total{cur=\"eur\"}")?,
        value_of_line(body, "churn_paid_total{cur=\"usd\"}")?,
        value_of_line(body, "churn_latency_seconds_sum")?,
        value_of_line(body, "churn_latency_seconds_count")?,
    ])
}

#[test]
fn churn_with_compaction_keeps_every_scrape_exact() {
    let dir = Dir::new();
    let n = workers();
    let server = Server::start(dir.path(), &["--compact"]);
    let out = dir.tmp.path().join("..").join(format!(
        "pm-churn-{}.json",
        dir.path().file_name().unwrap().to_str().unwrap()
    ));
    let stop = AtomicBool::new(false);
    let scrapes = thread::scope(|s| {
        let scraper = s.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let body = server.get("/metrics", &[]).text();
                if let Some(v) = scrape_values(&body) {
                    seen.push(v);
                }
            }
            seen
        });
        let churn = std::process::Command::new(python())
            .arg(repo().join("tests/python/py_churn.py"))
            .args([dir.path().to_str().unwrap(), &n.to_string(), BIN])
            .arg(&out)
            .status()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        assert!(churn.success(), "py_churn.py: {churn}");
        scraper.join().unwrap()
    });
    let totals: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    let list = |k: &str| -> Vec<f64> {
        totals[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (eur, usd, lat) = (list("eur"), list("usd"), list("lat_sum"));

    // Every scrape: the count says how many observations were made; each
    // other total is the exact sum of the first k or k+1 workers' amounts
    // (the worker observing may be between its writes), never anything else.
    assert!(scrapes.len() > 10, "only {} scrapes", scrapes.len());
    let mut last = [0.0f64; 4];
    for v in &scrapes {
        // CAST: a count of observations, an integer below 2^53.
        let k = v[3] as usize;
        let near =
            |list: &[f64], x: f64| list[k.saturating_sub(1)..(k + 2).min(list.len())].contains(&x);
        assert!(
            near(&eur, v[0]) && near(&usd, v[1]) && near(&lat, v[2]),
            "scrape {v:?} at k={k}"
        );
        assert!(
            v.iter().zip(&last).all(|(a, b)| a >= b),
            "went down: {last:?} -> {v:?}"
        );
        last = *v;
    }
    // At quiescence: exact.
    let body = server.get("/metrics", &[]).text();
    // CAST: n is small.
    let want = [eur[n], usd[n], lat[n], n as f64];
    assert_eq!(scrape_values(&body), Some(want));
    // One archive per kind left, and the files of the one live process (the
    // Python parent creates its histogram's file when it defines it): at
    // most (live + 1) x kinds files.
    let mut dbs = dir.files();
    dbs.retain(|f| f.ends_with(".db"));
    let (archives, others): (Vec<_>, Vec<_>) = dbs.iter().partition(|f| f.contains("_@archive."));
    assert_eq!(archives, ["counter_@archive.db", "histogram_@archive.db"]);
    let pids: std::collections::BTreeSet<&str> =
        others.iter().filter_map(|f| f.rsplit('_').next()).collect();
    assert!(pids.len() <= 1 && dbs.len() <= 4, "{dbs:?}");
    // prometheus_client reads the same totals (its own additions of an
    // archive's parts may differ in the last bit).
    let py = py_samples(dir.path());
    let close = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1;
    let got = value_of(&py, "churn_paid_total", &[("cur", "eur")]).unwrap();
    assert!(close(got, eur[n]), "{got} vs {}", eur[n]);
    let got = value_of(&py, "churn_latency_seconds_sum", &[]).unwrap();
    assert!(close(got, lat[n]), "{got} vs {}", lat[n]);
    assert_eq!(
        value_of(&py, "churn_latency_seconds_count", &[]),
        Some(n as f64)
    );
}
