"""A short soak (tools/soak.py): 0.2 h of perturbed real speech through one Detector.

Needs the speech data ($KWS_DATA, or ../shared/data beside the repository) and the shipped
English acoustic model; skips cleanly without either. The full 24-hour run and its figures:
docs/benchmarks.md, "Soak".
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import soak  # noqa: E402

from kws.acoustic import DATA_DIR  # noqa: E402

DATA = soak.find_data()
pytestmark = [
    pytest.mark.skipif(DATA is None, reason="no speech data: set KWS_DATA or put it at ../shared/data"),
    pytest.mark.skipif(not (DATA_DIR / "en.tflite").is_file(), reason="no shipped en acoustic model"),
]

HOURS = 0.2


@pytest.fixture(scope="module")
def result() -> dict:
    return soak.soak(DATA, HOURS, "en", seed=3, sample_every_s=36.0, progress=None)


def test_streams_the_hours_asked_for(result):
    assert HOURS <= result["hours_streamed"] < HOURS + 0.01
    kinds = result["hours_by_kind"]
    assert kinds["speech"] > 0 and kinds["noise"] > 0 and kinds["silence"] > 0
    # every sample fed became one frame (front end and network keep up with any chunking)
    assert abs(result["frames"] - result["hours_streamed"] * 3600 * 100) <= 3


def test_memory_growth_is_bounded(result):
    assert len(result["rss_samples"]) >= 10
    assert result["rss_growth_after_warmup_mib"] < 20, result["rss_samples"]


def test_scores_finite_and_in_range(result):
    assert result["non_finite_scores"] == 0
    lo, hi = result["score_min"], result["score_max"]
    # the decoder's invariant: mean emission along a path, within [emission floor, 0]
    assert lo is not None and hi is not None and -6.0 - 1e-6 <= lo <= hi <= 0.0


def test_probe_detections_and_scores_equal_at_start_and_end(result):
    assert result["probe_detections_equal"], (result["probe_start"], result["probe_end"])
    assert result["probe_scores_equal"]
    assert result["probe_score_frames"] >= result["probe_seconds"] * 100


def test_cli_json_and_exit_code(tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "soak.py"), "--data", str(DATA),
                        "--hours", "0.02", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["ok"] and res["hours_streamed"] >= 0.02 and math.isfinite(res["wall_s"])
    assert res["rss_samples"][0][0] == 0.0


def test_cli_without_data_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "soak.py"), "--data", str(tmp_path),
                        "--hours", "0.01"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "soak: error: no speech data (give --data, set KWS_DATA, or put it at ../shared/data)"]
