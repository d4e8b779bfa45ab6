"""tools/phone_diagnosis.py: the per-phone scores of a keyword's best path find the phone the
network does not hear, and where each phone lies."""
import subprocess
import sys
from pathlib import Path

import numpy as np

import kws.decoder  # noqa: F401  (the installed package, with its C extension, before the tool
# puts the checkout first on sys.path: the checkout's kws has no built extension)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from phone_diagnosis import phone_scores  # noqa: E402


def _logpost(best: list[int], n_phones: int = 10, margin: float = 4.0) -> np.ndarray:
    """Posteriors whose best phone per frame is `best[t]`, every other phone `margin` nats lower."""
    lp = np.full((len(best), n_phones), -margin, np.float32)
    lp[np.arange(len(best)), best] = 0.0
    return lp - np.log(np.exp(lp).sum(1, keepdims=True))


def test_the_unheard_phone_and_the_segments():
    # sil x10, phone 1 x10, phone 9 x10 (where the keyword wants 2), phone 3 x10, sil x20
    best = [0] * 10 + [1] * 10 + [9] * 10 + [3] * 10 + [0] * 20
    lp = _logpost(best, margin=10.0)  # other phones at the floor: no path shortens phone 2 by
    lp[20:30, 2] = lp[20:30, 9] - 2.5  # stretching its neighbours; phone 2 heard 2.5 nats below the best
    scores, frames = phone_scores(lp, [1, 2, 3], [3, 3, 3])
    np.testing.assert_allclose(scores, [0.0, -2.5, 0.0], atol=1e-5)
    # free start and end: each outer phone may stop at its minimum, inside its own stretch
    assert frames[1] == list(range(20, 30))
    assert frames[0][-1] == 19 and frames[0][0] >= 10 and frames[2][0] == 30 and frames[2][-1] < 40
    # a phone never close to the best one sits at the floor
    lp[20:30, 2] = lp[20:30, 9] - 20
    scores, _ = phone_scores(lp, [1, 2, 3], [3, 3, 3])
    assert scores[1] == -6.0


def test_sum_prefers_short_mismatches_as_the_decoder_does():
    # neighbours only 4 nats down: the best-sum path lets phone 1 eat into phone 2's frames
    best = [0] * 10 + [1] * 10 + [9] * 10 + [3] * 10 + [0] * 20
    lp = _logpost(best, margin=4.0)
    lp[20:30, 2] = lp[20:30, 9] - 2.5
    scores, frames = phone_scores(lp, [1, 2, 3], [3, 3, 3])
    assert len(frames[1]) == 3 and scores[1] == -2.5 and min(scores[0], scores[2]) == -4.0


def test_minimum_durations_hold():
    best = [0] * 5 + [1] * 2 + [2] * 10 + [0] * 5  # phone 1 lasts 2 frames, its minimum is 4
    scores, frames = phone_scores(_logpost(best), [1, 2], [4, 3])
    assert len(frames[0]) >= 4 and scores[0] < 0 and scores[1] == 0.0


def test_missing_manifest_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "phone_diagnosis.py"), "--lang", "en",
                        "--positives", str(tmp_path), "jarvis"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "no manifest.csv" in r.stderr


def test_bad_uncertainty_weight_is_one_line(tmp_path):
    """The same range as kws-enroll's (kws.enroll.check_uncertainty_weight), said before any work."""
    for bad in ("9", "-1", "nan"):
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "phone_diagnosis.py"), "--lang", "en",
                            "--positives", str(tmp_path), "--uncertainty-weight", bad, "jarvis"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, (bad, r.stderr)
        assert "uncertainty weight must be 0 to 4" in r.stderr and "no manifest.csv" not in r.stderr, bad


def test_emissions_are_the_decoders_for_a_keyword_phone():
    """Per-phone numbers follow the decoder's rule (format 2.1 with the weight, 1.1 without):
    checked against the numpy reference decoder, phone by phone, on random frames."""
    from phone_diagnosis import emissions
    from kws import enroll
    from reference_decoder import ReferenceDecoder

    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, size=(50, 40)).astype(np.float32)
    lp = x - np.log(np.exp(x).sum(1, keepdims=True)).astype(np.float32)
    lp[5] = np.log(np.full(40, 1 / 40, np.float32))  # an unsure frame: every phone equally likely
    for w in (0.0, 0.5):
        ref = ReferenceDecoder(enroll(["hey jarvis"], "en", threshold=-1.0, uncertainty_weight=w).model)
        ours = emissions(lp, w)
        for t in range(len(lp)):
            e = ref._emissions(lp[t])
            want = [ref._emission(e, p) for p in range(1, 40)]  # phone 0 (a pause) has its own rule
            np.testing.assert_allclose(ours[t, 1:], want, atol=1e-5)
    # the weight is what makes the best phone of an unsure frame cost something
    assert emissions(lp, 0.0)[5].max() == 0.0 and emissions(lp, 0.5)[5].max() < -1.8


def test_language_comes_from_the_keywords_script(tmp_path):
    """Without --lang the keywords' script decides, as in kws-enroll: Hangul keywords reach the
    manifest check (the language was found); what the script cannot decide is one line first."""
    tool = str(ROOT / "tools" / "phone_diagnosis.py")
    r = subprocess.run([sys.executable, tool, "--positives", str(tmp_path), "자비스야"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no manifest.csv" in r.stderr, r.stderr
    for bad, says in (("헤이 LG", "mixes Hangul and Latin"), ("123", "--lang")):
        r = subprocess.run([sys.executable, tool, "--positives", str(tmp_path), bad],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, (bad, r.stderr)
        assert says in r.stderr and "no manifest.csv" not in r.stderr, (bad, r.stderr)
