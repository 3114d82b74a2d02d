"""The `prometheus-multiproc` command shipped in the wheel: `python -m
prometheus_multiproc` and the console script run it."""

import subprocess
import sys
from pathlib import Path

import prometheus_multiproc
from helpers import generate_python

SCRIPT = Path(sys.executable).parent / "prometheus-multiproc"


def test_collect_prints_the_bytes_paths_body(tmp_path):
    generate_python(tmp_path, workers=2, scale=0.005)
    out = subprocess.run([sys.executable, "-m", "prometheus_multiproc", "collect",
                          "--dir", str(tmp_path)], check=True, capture_output=True)
    assert out.stdout == prometheus_multiproc.generate_latest(str(tmp_path))[0]
    assert out.stdout.count(b"\n") > 20


def test_console_script_mark_dead(tmp_path):
    for name in ("gauge_livesum_7.db", "counter_7.db"):
        (tmp_path / name).write_bytes(b"")
    subprocess.run([str(SCRIPT), "mark-dead", "--dir", str(tmp_path), "7"], check=True)
    assert [p.name for p in tmp_path.iterdir()] == ["counter_7.db"]


def test_errors_exit_non_zero(tmp_path):
    out = subprocess.run([str(SCRIPT), "collect", "--dir", str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "missing" in out.stderr
