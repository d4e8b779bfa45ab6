"""tools/compare_bench.py: pooled miss rate at k false alarms per keyword, and its plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from compare_bench import main, pooled_curve  # noqa: E402


def report(curves: list[tuple[int, list[float], list[float]]], hours: float = 2.0) -> dict:
    """A kws-bench --json report: per keyword (positives, frr, fa_per_h) along its sweep."""
    return {"host": {"keywords": [
        {"keyword": f"k{i}", "positives": n, "negative_hours": hours,
         "det_curve": {"threshold": list(range(len(frr))), "frr": frr, "fa_per_h": fa}}
        for i, (n, frr, fa) in enumerate(curves)]}}


def test_pooled_curve_counts_false_alarms_per_keyword():
    # keyword 0 (10 positives): FRR 0.5 with no false alarm, 0.1 with 2 in 2 h (1/h);
    # keyword 1 (30 positives): 0.2 with none, 0.0 with 1 (0.5/h)
    r = report([(10, [0.1, 0.5], [1.0, 0.0]), (30, [0.0, 0.2], [0.5, 0.0])])
    xs, ys = pooled_curve(r, 2)
    assert xs == [0.0, 0.5, 1.0]
    assert ys == pytest.approx([100 * (5 + 6) / 40, 100 * 5 / 40, 100 * 1 / 40])


def test_plot_written_and_bad_report_is_one_line(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report([(10, [0.1, 0.5], [1.0, 0.0])])))
    b.write_text(json.dumps(report([(10, [0.0, 0.3], [1.0, 0.0])])))
    out = tmp_path / "cmp.png"
    assert main(["-o", str(out), "--panel", "clips", f"before={a}", f"after={b}"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["-o", str(out), "--panel", "clips", f"x={bad}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a kws-bench --json report" in err[0]
