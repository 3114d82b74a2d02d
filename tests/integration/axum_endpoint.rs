//! The ready axum `/metrics` endpoint: merged body, content negotiation, auth.

use prometheus_multiproc::integrations::axum::MetricsEndpoint;
use prometheus_multiproc::{Counter, MultiProcessCollector};

use crate::common::{Dir, http_request, in_worker};

#[test]
fn endpoint_serves_merged_metrics_with_auth() {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "served_total", "Served.").unwrap();
    for _ in 0..3 {
        in_worker(|| c.inc_by(2.0));
    }
    let collector = MultiProcessCollector::new(d.path()).unwrap();
    let mut expected = Vec::new();
    collector.encode_text(&mut expected).unwrap();

    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap().to_string();
    let app = MetricsEndpoint::new(collector)
        .with_bearer_token("t0ken")
        .with_basic_auth("prom", "pw")
        .router::<()>("/metrics");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });

    let r = http_request(&addr, "GET", "/metrics", &[]).unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let r = http_request(
        &addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer nope")],
    )
    .unwrap();
    assert_eq!(r.status, 401);

    let r = http_request(
        &addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer t0ken")],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.body, expected);
    assert!(r.text().contains("served_total 6.0\n"), "{}", r.text());

    // base64("prom:pw"), and OpenMetrics when asked for.
    let r = http_request(
        &addr,
        "GET",
        "/metrics",
        &[
            ("Authorization", "Basic cHJvbTpwdw=="),
            ("Accept", "application/openmetrics-text; version=1.0.0"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text().ends_with("# EOF\n"), "{}", r.text());
    assert!(r.text().contains("served_total 6.0\n"));
}
