"""tools/phone_durations.py: how minimum phone durations are measured from alignments."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from phone_durations import min_frames_table, segment_durations  # noqa: E402


def test_segments_leave_out_the_utterance_edges():
    """Runs of one label are segments; the first and last are cut by the utterance's
    edges and are not durations of a phone."""
    labels = np.array([0, 0, 0, 5, 5, 7, 7, 7, 7, 5, 0, 0])
    assert segment_durations(labels) == [(5, 2), (7, 4), (5, 1)]
    assert segment_durations(np.array([3, 3, 3])) == []
    assert segment_durations(np.array([], int)) == []


def test_table_is_a_clamped_share_of_the_percentile():
    durs = {"AA": [10] * 50 + [20] * 50, "T": [2] * 100, "OY": [40] * 100, "ZH": [12] * 5}
    t = min_frames_table(durs, percentile=50, fraction=0.5, lo=4, hi=8, min_count=30, default=4)
    assert t == {"AA": 8, "T": 4, "OY": 8, "ZH": 4}  # median 15 -> 7.5 -> 8; clamped; too rare
    t = min_frames_table({"AA": [10] * 100}, percentile=50, fraction=0.5, lo=4, hi=8, min_count=30, default=4)
    assert t == {"AA": 5}


def test_shipped_tables_follow_their_rule():
    """Each shipped table's minimums are what its recorded rule gives from its recorded
    statistics (so a hand edit, or a table from another rule, shows up here)."""
    import json
    root = Path(__file__).resolve().parents[1] / "kws" / "data" / "phone_durations"
    tables = sorted(root.glob("*.json"))
    assert tables, "no phone-duration tables shipped"
    for path in tables:
        t = json.loads(path.read_text(encoding="utf-8"))
        rule, stats = t["rule"], t["stats_frames"]
        assert rule["percentile"] == 50  # the stored statistic is the median
        for ph, n in t["min_frames"].items():
            s = stats.get(ph)
            if s is None or s["segments"] < rule["min_count"]:
                assert n == rule["default"], (path.name, ph)
            else:
                want = int(np.clip(round(rule["fraction"] * s["median"]), rule["min"], rule["max"]))
                assert n == want, (path.name, ph, n, want)
        assert t["source"]["speakers"].startswith("training speakers only")


def test_tables_were_measured_with_the_shipped_acoustic_models():
    """If this fails, an acoustic model was replaced: rerun tools/phone_durations.py --write."""
    import hashlib
    import json
    data = Path(__file__).resolve().parents[1] / "kws" / "data"
    for path in sorted((data / "phone_durations").glob("*.json")):
        t = json.loads(path.read_text(encoding="utf-8"))
        model = data / "acoustic" / f"{t['lang']}.tflite"
        assert t["source"]["acoustic_model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest(), path.name
