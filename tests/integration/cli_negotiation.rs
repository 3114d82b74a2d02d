//! `collect --accept`: the format and escaping prometheus_client 0.26 chooses for a header, on directories written by real prometheus_client workers.

use std::process::Command;

use crate::accept_headers::{HEADERS, expected, python_answers};
use crate::common::{Dir, run_py};

const BIN: &str = env!("CARGO_BIN_EXE_prometheus-multiproc");

/// Checks `collect --accept` against Python's answer.
fn check_collect(dir: &str, header: &str, want: &Result<(String, String), String>) {
    let out = Command::new(BIN)
        .args(["collect", "--dir", dir, "--accept", header])
        .output()
        .unwrap();
    match want {
        Ok((_, body)) => {
            assert!(
                out.status.success(),
                "{header:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                *body,
                "collect --accept {header:?}"
            );
        }
        Err(_) => {
            assert_eq!(out.status.code(), Some(1), "{header:?}");
            assert!(out.stdout.is_empty());
            assert!(String::from_utf8_lossy(&out.stderr).contains("Accept header"));
        }
    }
}

/// For every header of the negotiation list, `collect --accept` writes the
/// body `choose_encoder` writes over a `MultiProcessCollector` on the same
/// directory (UTF-8 names, one file kind created in name order, so the
/// output order is not at stake), or fails as Python does.
#[test]
fn collect_accept_as_choose_encoder_answers() {
    for scenario in ["counters", "gauges"] {
        let d = Dir::new();
        let dir = d.path().to_str().unwrap();
        run_py("py_write_utf8.py", &[dir, scenario]);
        let answers = python_answers(&["dir", dir], serde_json::json!({ "names": null }));
        for (header, answer) in HEADERS.iter().zip(&answers) {
            if let Some(h) = header {
                check_collect(dir, h, &expected(answer));
            }
        }
    }
}
