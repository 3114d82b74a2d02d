//! gzip on the library's `/metrics` paths (feature `gzip`): `Rendered::gzip_for` and the axum endpoint, checked by really decompressing.

use std::io::Read as _;

use prometheus_multiproc::integrations::{render_request, wants_gzip};
use prometheus_multiproc::{Counter, MultiProcessCollector};

use crate::common::{Dir, in_worker};

/// `Accept-Encoding` values and whether they allow gzip.
const ENCODINGS: &[(Option<&str>, bool)] = &[
    (None, false),
    (Some(""), false),
    (Some("gzip"), true),
    (Some("gzip, deflate, br, zstd"), true),
    (Some("deflate, gzip;q=0.8"), true),
    (Some("*"), true),
    (Some("identity"), false),
    (Some("gzip;q=0, identity"), false),
    (Some("gzip;q=0, *"), false),
];

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// A directory with one counter, incremented by three forked workers.
fn counter_dir() -> Dir {
    let d = Dir::new();
    let w = d.writer();
    let c = Counter::new_in(&w, "served_total", "Served.").unwrap();
    for _ in 0..3 {
        in_worker(|| c.inc_by(2.0));
    }
    d
}

#[test]
fn rendered_gzip_for_compresses_when_allowed() {
    let d = counter_dir();
    let collector = MultiProcessCollector::new(d.path()).unwrap();
    for accept in [None, Some("application/openmetrics-text;version=1.0.0")] {
        let plain = render_request(&collector, accept, None).unwrap();
        assert_eq!(plain.content_encoding, None);
        assert_eq!(plain.vary(), "Accept, Accept-Encoding");
        for (enc, gz) in ENCODINGS {
            assert_eq!(wants_gzip(enc.unwrap_or("")), *gz, "{enc:?}");
            let r = render_request(&collector, accept, None)
                .unwrap()
                .gzip_for(*enc);
            assert_eq!(r.content_type, plain.content_type);
            if *gz {
                assert_eq!(r.content_encoding, Some("gzip"), "{enc:?}");
                assert_ne!(r.body, plain.body);
                assert_eq!(gunzip(&r.body), plain.body, "{enc:?}");
            } else {
                assert_eq!(r.content_encoding, None, "{enc:?}");
                assert_eq!(r.body, plain.body, "{enc:?}");
            }
        }
        // Compressing twice does nothing the second time.
        let once = plain.clone().gzip_for(Some("gzip"));
        let twice = once.clone().gzip_for(Some("gzip"));
        assert_eq!(twice.body, once.body);
        assert!(
            String::from_utf8(plain.body)
                .unwrap()
                .contains("served_total 6.0\n")
        );
    }
}

#[cfg(feature = "axum")]
#[test]
fn axum_endpoint_compresses_when_allowed() {
    use prometheus_multiproc::integrations::axum::MetricsEndpoint;

    use crate::common::http_request;

    let d = counter_dir();
    let collector = MultiProcessCollector::new(d.path()).unwrap();
    let mut expected = Vec::new();
    collector.encode_text(&mut expected).unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap().to_string();
    let app = MetricsEndpoint::new(collector).router::<()>("/metrics");
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
    for (enc, gz) in ENCODINGS {
        let headers: Vec<(&str, &str)> = enc.map(|e| ("Accept-Encoding", e)).into_iter().collect();
        let r = http_request(&addr, "GET", "/metrics", &headers).unwrap();
        assert_eq!(r.status, 200, "{enc:?}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert_eq!(r.header("vary"), Some("Accept, Accept-Encoding"));
        if *gz {
            assert_eq!(r.header("content-encoding"), Some("gzip"), "{enc:?}");
            assert_eq!(gunzip(&r.body), expected, "{enc:?}");
        } else {
            assert_eq!(r.header("content-encoding"), None, "{enc:?}");
            assert_eq!(r.body, expected, "{enc:?}");
        }
    }
    // Two Accept-Encoding lines count as one list.
    let r = http_request(
        &addr,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "identity"), ("Accept-Encoding", "gzip")],
    )
    .unwrap();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), expected);
}
