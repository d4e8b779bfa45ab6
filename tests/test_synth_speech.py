"""tools/synth_speech.py: synthetic training speech speaks training transcripts only.

Runs the real synthesisers (espeak-ng; flite where installed) on a tiny fake data folder,
so it needs no ../shared and skips where a synthesiser is missing.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from splits import en_dev_speakers  # noqa: E402


def _fake_data(tmp: Path) -> tuple[Path, set[str], set[str]]:
    """en_speechocean with 20 speakers (3 of them held out by tools/splits.py) and an
    empty en_ljspeech; returns the folder, training texts and held-out texts."""
    speakers = [f"{i:04d}" for i in range(20)]
    dev = en_dev_speakers(speakers)
    assert 0 < len(dev) < len(speakers)
    rows = [{"path": f"{s}/x.flac", "duration_s": "1.00", "speaker": s, "lang": "en",
             "text": f"{'HELD OUT' if s in dev else 'TRAINING'} SENTENCE NUMBER {i}"}
            for i, s in enumerate(speakers)]
    for name, rs in (("en_speechocean", rows), ("en_ljspeech", [])):
        (tmp / name).mkdir(parents=True)
        with open(tmp / name / "manifest.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["path", "duration_s", "speaker", "lang", "text"])
            w.writeheader()
            w.writerows(rs)
    train = {r["text"] for r in rows if r["speaker"] not in dev}
    held = {r["text"] for r in rows if r["speaker"] in dev}
    return tmp, train, held


@pytest.mark.parametrize("engine,tool", [("espeak", "espeak-ng"), ("flite", "flite")])
def test_synthesises_training_transcripts_only(tmp_path, engine, tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed")
    sf = pytest.importorskip("soundfile")
    data, train, held = _fake_data(tmp_path / "data")
    out = tmp_path / "out"
    n = len(train) + 3  # every training text once, then random repeats
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "en",
                        "--engine", engine, "--data", str(data), "--out", str(out), "--n", str(n)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n
    spoken = {row["text"] for row in rows}
    assert spoken == train and not spoken & held
    for row in rows[:3]:
        info = sf.info(str(out / row["path"]))
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.duration - float(row["duration_s"])) < 0.01 and info.duration > 0.5
        if engine == "flite":
            assert row["speaker"].split(":")[0] in ("flite", "festival")


def test_flite_engine_is_english_only(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "ko",
                        "--engine", "flite", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "English voices only" in r.stderr
    assert not (tmp_path / "o").exists()
