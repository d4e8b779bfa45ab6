"""tools/ensemble_bench.py: the mean posterior of several networks, each on its own front end,
in kws-bench's place of one network's (docs/acoustic-models.md's ensemble figures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kws.bench as bench
from kws.acoustic import AcousticModel
from kws.detector import Detector
from kws.enroll import enroll

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(ROOT / "tools"))
import ensemble_bench  # noqa: E402
from train_acoustic import pcen_frames, pcen_smoother  # noqa: E402

TINY = DATA / "tiny_ko.tflite"


@pytest.fixture(scope="module")
def det():
    return Detector(enroll(["가나", "다라"], "ko", threshold=-5.9).model, acoustic=AcousticModel(TINY))


@pytest.fixture(scope="module")
def pcm():
    return np.random.default_rng(7).normal(0, 3000, 16000 * 2).astype(np.int16)


def test_one_network_is_kws_bench_and_copies_change_nothing(det, pcm):
    ref = bench.host_log_posteriors(det, pcm)
    assert np.array_equal(ensemble_bench.Ensemble([str(TINY)]).log_posteriors(det, pcm), ref)
    two = ensemble_bench.Ensemble([str(TINY), str(TINY)]).log_posteriors(det, pcm)
    np.testing.assert_allclose(two, ref, atol=1e-5)


def test_a_pcen_member_reads_pcen_of_the_log_mel(tmp_path, det, pcm):
    shutil.copy(TINY, tmp_path / "p.tflite")
    card = json.loads((DATA / "tiny_ko.json").read_text())
    card["feature"] = {"type": "PCEN of log-mel", "pcen_time_s": 2.0}
    (tmp_path / "p.json").write_text(json.dumps(card))
    ens = ensemble_bench.Ensemble([str(tmp_path / "p.tflite")])
    assert ens.pcen == [2.0]
    got = ens.log_posteriors(det, pcm)
    det.reset()
    feats = det._features(pcm)
    want = AcousticModel(TINY).log_posteriors(pcen_frames(feats, pcen_smoother(2.0)))
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got, bench.host_log_posteriors(det, pcm), atol=1e-3)
    # the product's runtime still refuses that card (tests/test_acoustic.py)
    with pytest.raises(Exception, match="expects 'PCEN of log-mel' input"):
        AcousticModel(tmp_path / "p.tflite")


def test_card_time_constant_from_older_cards():
    assert ensemble_bench.card_pcen_time({"feature": {"type": "log-mel"}}) == 0.0
    assert ensemble_bench.card_pcen_time({}) == 0.0
    old = {"feature": {"type": "PCEN of log-mel", "function": "kws.features.log_mel, then pcen_frames"}}
    assert ensemble_bench.card_pcen_time(old) == 0.4
    old["feature"]["function"] += ", time constant 2 s"
    assert ensemble_bench.card_pcen_time(old) == 2.0


def test_command_line_refusals(tmp_path):
    tool = [sys.executable, str(ROOT / "tools" / "ensemble_bench.py")]
    for args, says in ((["--acoustic", str(TINY)], "after --"),
                       (["--acoustic", str(tmp_path / "none.tflite"), "--", "--model", "x"], "no such file"),
                       (["--acoustic", str(TINY), "--", "--device", "qemu"], "host only")):
        r = subprocess.run(tool + args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and says in r.stderr, (args, r.stderr)
