//! Tests of the merge rules and of the output order.

use super::*;
use std::collections::HashMap;

use crate::format::key::encode_key;

fn key(metric: &str, sample: &str, labels: &[(&str, &str)], help: &str) -> Vec<u8> {
    encode_key(metric, sample, labels, help).into_bytes()
}

fn lines(fams: &[Family]) -> Vec<String> {
    let mut out = Vec::new();
    for f in fams {
        out.push(format!("{} {} {:?}", f.name, f.kind, f.help));
        for s in &f.samples {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(format!("  {}{{{}}} {}", s.name, labels.join(","), s.value));
        }
    }
    out
}

#[test]
fn counters_sum_across_files() {
    let mut m = Merger::new();
    let a = key("req", "req_total", &[("path", "/a")], "Requests.");
    let b = key("req", "req_total", &[("path", "/b")], "Requests.");
    m.add(FileKind::Counter, "1", &a, 1.0, 0.0).unwrap();
    m.add(FileKind::Counter, "1", &b, 10.0, 0.0).unwrap();
    m.add(FileKind::Counter, "2", &a, 2.0, 0.0).unwrap();
    // Same series, other help text: still one series, first help wins.
    let a2 = key("req", "req_total", &[("path", "/a")], "Other help.");
    m.add(FileKind::Counter, "3", &a2, 4.0, 0.0).unwrap();
    assert_eq!(m.entries(), 4);
    let f = m.finish();
    assert_eq!(
        lines(&f),
        [
            "req counter \"Requests.\"",
            "  req_total{path=/a} 7",
            "  req_total{path=/b} 10"
        ]
    );
}

#[test]
fn summaries_sum_info_max_stateset_most_recent() {
    let mut m = Merger::new();
    for pid in ["1", "2"] {
        m.add(
            FileKind::Summary,
            pid,
            &key("lat", "lat_count", &[], "L."),
            3.0,
            0.0,
        )
        .unwrap();
        m.add(
            FileKind::Summary,
            pid,
            &key("lat", "lat_sum", &[], "L."),
            0.5,
            0.0,
        )
        .unwrap();
        m.add(
            FileKind::Info,
            pid,
            &key("build", "build_info", &[("v", "1")], "B."),
            1.0,
            0.0,
        )
        .unwrap();
        m.add(
            FileKind::StateSet,
            pid,
            &key("st", "st", &[("st", "a")], "S."),
            1.0,
            0.0,
        )
        .unwrap();
    }
    assert_eq!(
        lines(&m.finish()),
        [
            "lat summary \"L.\"",
            "  lat_count{} 6",
            "  lat_sum{} 1",
            "build info \"B.\"",
            "  build_info{v=1} 1",
            "st stateset \"S.\"",
            "  st{st=a} 1",
        ]
    );
}

#[test]
fn info_keeps_label_sets_in_use_once() {
    let mut m = Merger::new();
    let v1 = key("build", "build_info", &[("v", "1")], "B.");
    let v2 = key("build", "build_info", &[("v", "2")], "B.");
    let v3 = key("build", "build_info", &[("v", "3")], "B.");
    // Process 1 moved from v1 to v2; process 2 is still on v1; v3 was
    // set and replaced by process 3, now on v2.
    for (pid, k, v) in [
        ("1", &v1, 0.0),
        ("1", &v2, 1.0),
        ("2", &v1, 1.0),
        ("3", &v3, 0.0),
        ("3", &v2, 1.0),
    ] {
        m.add(FileKind::Info, pid, k, v, 0.0).unwrap();
    }
    assert_eq!(
        lines(&m.finish()),
        [
            "build info \"B.\"",
            "  build_info{v=1} 1",
            "  build_info{v=2} 1"
        ]
    );
    // Nobody holds any label set: the family stays, without samples.
    let mut m = Merger::new();
    m.add(FileKind::Info, "1", &v1, 0.0, 0.0).unwrap();
    m.add(FileKind::Info, "2", &v1, f64::NAN, 0.0).unwrap();
    assert_eq!(lines(&m.finish()), ["build info \"B.\""]);
}

#[test]
fn stateset_most_recent_state_wins() {
    let st = |s: &str| key("mode", "mode", &[("mode", s), ("q", "x")], "M.");
    let merge = |files: &[(&str, [(f64, f64); 3])]| {
        let mut m = Merger::new();
        for (pid, vals) in files {
            for (s, (v, ts)) in ["a", "b", "c"].iter().zip(vals) {
                m.add(FileKind::StateSet, pid, &st(s), *v, *ts).unwrap();
            }
        }
        lines(&m.finish())[1..].to_vec()
    };
    let want = |a: u8, b: u8, c: u8| {
        vec![
            format!("  mode{{mode=a,q=x}} {a}"),
            format!("  mode{{mode=b,q=x}} {b}"),
            format!("  mode{{mode=c,q=x}} {c}"),
        ]
    };
    // Never set anywhere: the first state, from its initial 1.0.
    let fresh = [(1.0, 0.0), (0.0, 0.0), (0.0, 0.0)];
    let lazy = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)];
    assert_eq!(merge(&[("1", lazy), ("2", fresh)]), want(1, 0, 0));
    // Process 2 set `c` after process 1 set `b`, in either file order.
    let b_at_5 = [(0.0, 5.0), (1.0, 5.0), (0.0, 5.0)];
    let c_at_7 = [(0.0, 7.0), (0.0, 7.0), (1.0, 7.0)];
    assert_eq!(
        merge(&[("1", b_at_5), ("2", c_at_7), ("3", fresh)]),
        want(0, 0, 1)
    );
    assert_eq!(
        merge(&[("3", fresh), ("2", c_at_7), ("1", b_at_5)]),
        want(0, 0, 1)
    );
    // A NaN timestamp never wins.
    let nan = [(1.0, f64::NAN), (1.0, f64::NAN), (1.0, f64::NAN)];
    assert_eq!(merge(&[("1", nan), ("2", b_at_5)]), want(0, 1, 0));
}

#[test]
fn histograms_accumulate_buckets() {
    let mut m = Merger::new();
    let h = FileKind::Histogram;
    for (pid, vals) in [("1", [1.0, 0.0, 2.0]), ("2", [0.0, 3.0, 1.0])] {
        // Deliberately out of order, and `1` spelled two ways.
        let bounds = ["+Inf", "0.5", if pid == "1" { "1.0" } else { "1" }];
        for (b, v) in bounds.iter().zip(vals) {
            m.add(
                h,
                pid,
                &key("lat", "lat_bucket", &[("m", "GET"), ("le", b)], "L."),
                v,
                0.0,
            )
            .unwrap();
        }
        m.add(
            h,
            pid,
            &key("lat", "lat_sum", &[("m", "GET")], "L."),
            1.25,
            0.0,
        )
        .unwrap();
    }
    // A bound needing Go formatting, in another label set.
    m.add(
        h,
        "1",
        &key("lat", "lat_bucket", &[("le", "1e6"), ("m", "PUT")], "L."),
        1.0,
        0.0,
    )
    .unwrap();
    assert_eq!(
        lines(&m.finish()),
        [
            "lat histogram \"L.\"",
            // The label set comes where its `_sum` came, `_sum` first.
            "  lat_sum{m=GET} 2.5",
            "  lat_bucket{le=0.5,m=GET} 3",
            "  lat_bucket{le=1.0,m=GET} 6",
            "  lat_bucket{le=+Inf,m=GET} 7",
            "  lat_count{m=GET} 7",
            // Buckets only: after the label sets with a `_sum`.
            "  lat_bucket{le=1e+06,m=PUT} 1",
            "  lat_count{m=PUT} 1",
        ]
    );
}

#[test]
fn histogram_count_from_file_is_replaced() {
    let mut m = Merger::new();
    let h = FileKind::Histogram;
    m.add(h, "1", &key("x", "x_bucket", &[("le", "1")], ""), 2.0, 0.0)
        .unwrap();
    m.add(h, "1", &key("x", "x_count", &[], ""), 99.0, 0.0)
        .unwrap();
    m.add(h, "1", &key("y", "y_count", &[], ""), 5.0, 0.0)
        .unwrap();
    assert_eq!(
        lines(&m.finish()),
        [
            "x histogram \"\"",
            // The `_count` entry keeps its place and takes the total.
            "  x_count{} 2",
            "  x_bucket{le=1.0} 2",
            "y histogram \"\"",
            "  y_count{} 5",
        ]
    );
}

#[test]
fn bad_le_is_a_key_error_and_has_no_effect() {
    let mut m = Merger::new();
    let bad = key("x", "x_bucket", &[("le", "big")], "");
    let e = m.resolve(FileKind::Histogram, &bad).unwrap_err();
    assert!(e.reason().contains("le"), "{e}");
    // The same key is fine in a counter file.
    m.resolve(FileKind::Counter, &bad).unwrap();
    assert!(
        m.resolve(FileKind::Counter, &key("", "x", &[], ""))
            .is_err()
    );
    assert!(m.resolve(FileKind::Counter, b"[1]").is_err());
    assert!(m.finish().is_empty(), "resolving alone adds nothing");
}

fn gauge_merge(mode: GaugeMode, vals: &[(&str, f64, f64)]) -> Vec<String> {
    let mut m = Merger::new();
    let k = key("g", "g", &[("a", "x")], "G.");
    for (pid, v, ts) in vals {
        m.add(FileKind::Gauge(mode), pid, &k, *v, *ts).unwrap();
    }
    let f = m.finish();
    assert_eq!(f[0].gauge_mode, Some(mode));
    lines(&f)[1..].to_vec()
}

#[test]
fn gauge_modes() {
    let vals = [("10", 3.0, 5.0), ("9", 1.0, 7.0), ("2", 2.0, 6.0)];
    for mode in [GaugeMode::All, GaugeMode::LiveAll] {
        assert_eq!(
            gauge_merge(mode, &vals),
            ["  g{a=x,pid=10} 3", "  g{a=x,pid=9} 1", "  g{a=x,pid=2} 2"]
        );
    }
    for (mode, want) in [
        (GaugeMode::Min, "  g{a=x} 1"),
        (GaugeMode::LiveMin, "  g{a=x} 1"),
        (GaugeMode::Max, "  g{a=x} 3"),
        (GaugeMode::LiveMax, "  g{a=x} 3"),
        (GaugeMode::Sum, "  g{a=x} 6"),
        (GaugeMode::LiveSum, "  g{a=x} 6"),
        (GaugeMode::MostRecent, "  g{a=x} 1"),
        (GaugeMode::LiveMostRecent, "  g{a=x} 1"),
    ] {
        assert_eq!(gauge_merge(mode, &vals), [want], "{mode}");
    }
}

#[test]
fn most_recent_needs_strictly_newer_nonzero_timestamps() {
    // All timestamps zero: no sample at all, but the family is there.
    assert!(gauge_merge(GaugeMode::MostRecent, &[("1", 5.0, 0.0), ("2", 6.0, 0.0)]).is_empty());
    // Ties keep the first.
    assert_eq!(
        gauge_merge(GaugeMode::MostRecent, &[("1", 5.0, 3.0), ("2", 6.0, 3.0)]),
        ["  g{a=x} 5"]
    );
    // NaN and negative timestamps never win.
    assert_eq!(
        gauge_merge(
            GaugeMode::LiveMostRecent,
            &[("1", 5.0, 1.0), ("2", 6.0, f64::NAN), ("3", 7.0, -1.0)]
        ),
        ["  g{a=x} 5"]
    );
}

#[test]
fn min_max_nan_like_python() {
    // A first NaN sticks (nothing compares less than it); a later NaN is ignored.
    assert_eq!(
        gauge_merge(
            GaugeMode::Min,
            &[("1", f64::NAN), ("2", 1.0)].map(|(p, v)| (p, v, 0.0))
        ),
        ["  g{a=x} NaN"]
    );
    assert_eq!(
        gauge_merge(
            GaugeMode::Max,
            &[("1", 1.0), ("2", f64::NAN)].map(|(p, v)| (p, v, 0.0))
        ),
        ["  g{a=x} 1"]
    );
    // Sums start from 0.0, as Python's defaultdict(float) does.
    assert_eq!(
        gauge_merge(GaugeMode::Sum, &[("1", -0.0, 0.0)]),
        ["  g{a=x} 0"]
    );
    let mut m = Merger::new();
    m.add(
        FileKind::Counter,
        "1",
        &key("c", "c_total", &[], ""),
        -0.0,
        0.0,
    )
    .unwrap();
    assert!(m.finish()[0].samples[0].value.is_sign_positive());
}

#[test]
fn gauge_pid_label_from_keys() {
    // A `pid` label in the key: replaced by the file's pid in `all` mode,
    // dropped (and merged over) in the reducing modes.
    let mut m = Merger::new();
    let k1 = key("g", "g", &[("pid", "x")], "");
    let k2 = key("g", "g", &[("pid", "y")], "");
    m.add(FileKind::Gauge(GaugeMode::Sum), "1", &k1, 1.0, 0.0)
        .unwrap();
    m.add(FileKind::Gauge(GaugeMode::Sum), "1", &k2, 2.0, 0.0)
        .unwrap();
    assert_eq!(lines(&m.finish())[1..], ["  g{} 3"]);
    let mut m = Merger::new();
    m.add(FileKind::Gauge(GaugeMode::All), "7", &k1, 1.0, 0.0)
        .unwrap();
    assert_eq!(lines(&m.finish())[1..], ["  g{pid=7} 1"]);
}

#[test]
fn mixed_gauge_modes_use_last_file_mode() {
    let k = key("g", "g", &[], "");
    let mut m = Merger::new();
    m.add(FileKind::Gauge(GaugeMode::Max), "1", &k, 5.0, 0.0)
        .unwrap();
    m.add(FileKind::Gauge(GaugeMode::All), "2", &k, 3.0, 0.0)
        .unwrap();
    m.add(FileKind::Gauge(GaugeMode::Sum), "3", &k, 1.0, 0.0)
        .unwrap();
    let notes = m.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].used, GaugeMode::Sum, "{notes:?}");
    // Python with this file order: pid dropped, everything summed.
    assert_eq!(lines(&m.finish())[1..], ["  g{} 9"]);

    let mut m = Merger::new();
    m.add(FileKind::Gauge(GaugeMode::Max), "1", &k, 5.0, 0.0)
        .unwrap();
    m.add(FileKind::Gauge(GaugeMode::All), "2", &k, 3.0, 0.0)
        .unwrap();
    assert!(m.notes()[0].others_dropped);
    // Only the `all` file's value is reported (Python would also report pid 1).
    assert_eq!(lines(&m.finish())[1..], ["  g{pid=2} 3"]);
}

#[test]
fn type_conflicts_first_type_wins() {
    let mut m = Merger::new();
    let k = key("x", "x", &[], "as counter");
    let c = m.resolve(FileKind::Counter, &k).unwrap();
    let r = m.add_file(FileKind::Counter, "1", [(c, 1.0, 0.0)]);
    assert_eq!(r.applied, 1);
    let g = m.resolve(FileKind::Gauge(GaugeMode::Sum), &k).unwrap();
    let r = m.add_file(
        FileKind::Gauge(GaugeMode::Sum),
        "1",
        [(g, 5.0, 0.0), (g, 5.0, 0.0)],
    );
    assert_eq!(r.applied, 0);
    assert_eq!(
        r.conflicts,
        [TypeConflict {
            metric: "x".into(),
            family_kind: FamilyKind::Counter,
            file_kind: FamilyKind::Gauge,
            dropped: 2
        }]
    );
    assert!(r.conflicts[0].to_string().contains("counter"));
    // A key resolved for another kind is ignored, not misapplied.
    let r = m.add_file(FileKind::Counter, "1", [(g, 5.0, 0.0)]);
    assert_eq!(r, FileReport::default());
    let f = m.finish();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, FamilyKind::Counter);
    assert_eq!(f[0].samples[0].value, 1.0);
}

#[test]
fn families_and_samples_come_in_first_entry_order() {
    let mut m = Merger::new();
    for (metric, l) in [("b", "2"), ("a", "2"), ("b", "1"), ("a", "10")] {
        m.add(
            FileKind::Counter,
            "1",
            &key(metric, &format!("{metric}_total"), &[("l", l)], ""),
            1.0,
            0.0,
        )
        .unwrap();
    }
    assert_eq!(
        lines(&m.finish()),
        [
            // Families and samples where their first entries came,
            // as in prometheus_client.
            "b counter \"\"",
            "  b_total{l=2} 1",
            "  b_total{l=1} 1",
            "a counter \"\"",
            "  a_total{l=2} 1",
            "  a_total{l=10} 1",
        ]
    );
}

#[test]
fn order_hints_never_change_results() {
    let keys: Vec<Vec<u8>> = (0..5)
        .map(|i| key("c", "c_total", &[("i", &i.to_string())], ""))
        .collect();
    let mut m = Merger::new();
    let orders: [&[usize]; 4] = [&[0, 1, 2, 3, 4], &[4, 3, 2, 1, 0], &[0, 2], &[1, 1, 3, 0]];
    for (f, order) in orders.iter().enumerate() {
        m.start_file();
        let ids: Vec<_> = order
            .iter()
            .map(|&i| (m.resolve(FileKind::Counter, &keys[i]).unwrap(), 1.0, 0.0))
            .collect();
        m.add_file(FileKind::Counter, &f.to_string(), ids);
        // A file abandoned half-way (as the collector does with a corrupt one).
        m.start_file();
        m.resolve(FileKind::Counter, &keys[4]).unwrap();
    }
    let vals: Vec<f64> = m.finish()[0].samples.iter().map(|s| s.value).collect();
    assert_eq!(vals, [4.0, 4.0, 3.0, 3.0, 2.0]);
}

#[test]
fn sequence_hints_never_resolve_a_wrong_key() {
    // Files in repeated, shifted, shuffled and abandoned orders, of two
    // classes sharing raw keys: every resolve must give the key's own id.
    let keys: Vec<Vec<u8>> = (0..40)
        .map(|i| key("m", "m", &[("i", &(i % 20).to_string())], ["", "h"][i / 20]))
        .collect();
    let kinds = [FileKind::Counter, FileKind::Gauge(GaugeMode::Sum)];
    let mut m = Merger::new();
    let mut want: HashMap<(usize, usize), KeyId> = HashMap::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let base: Vec<usize> = (0..40).collect();
    for f in 0..300 {
        let kind = next(2);
        let mut order = base.clone();
        match next(4) {
            0 => {}
            1 => order.rotate_left(next(40)),
            2 => {
                for i in (1..order.len()).rev() {
                    order.swap(i, next(i + 1));
                }
            }
            _ => order.retain(|_| next(3) > 0),
        }
        m.start_file();
        let mut ids = Vec::new();
        for &k in &order {
            let id = m.resolve(kinds[kind], &keys[k]).unwrap();
            assert_eq!(*want.entry((kind, k)).or_insert(id), id, "file {f} key {k}");
            ids.push((id, 1.0, 0.0));
        }
        if next(5) > 0 {
            m.add_file(kinds[kind], "1", ids);
        }
    }
}

#[test]
fn keys_are_parsed_once_per_class() {
    let mut m = Merger::new();
    let k = key("x", "x", &[], "");
    let a = m.resolve(FileKind::Counter, &k).unwrap();
    let b = m.resolve(FileKind::Summary, &k).unwrap();
    let c = m.resolve(FileKind::Gauge(GaugeMode::All), &k).unwrap();
    let d = m.resolve(FileKind::Gauge(GaugeMode::Max), &k).unwrap();
    assert_eq!(a, b);
    assert_eq!(c, d);
    assert_ne!(a, c);
    assert_eq!(m.keys.count(), 2);
}
