"""The streaming detector's plumbing: front end -> acoustic model -> decoder, any chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kws import enroll
from kws.acoustic import AcousticModel
from kws.detector import Detector
from kws.errors import ModelFormatError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tiny():
    return AcousticModel(DATA / "tiny_ko.tflite")


@pytest.fixture(scope="module")
def ko_model():
    # A very low threshold so the random-weight network produces detections to compare.
    return enroll(["가나", "다라"], "ko", threshold=-5.9).model


def noise_audio(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, 3000, int(seconds * 16000)), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("chunk", [160, 333, 4000, 16000])
def test_chunking_does_not_change_detections_or_scores(tiny, ko_model, chunk):
    audio = noise_audio(20)
    det = Detector(ko_model, acoustic=tiny)
    whole_scores: list = []
    whole = det.process(audio, scores=whole_scores) + det.flush(scores=whole_scores)
    det.reset()
    parts_scores: list = []
    parts = []
    for i in range(0, len(audio), chunk):
        parts += det.process(audio[i:i + chunk], scores=parts_scores)
    parts += det.flush(scores=parts_scores)
    assert len(whole) >= 5  # the random network does fire at this threshold
    assert parts == whole
    a, b = np.concatenate(whole_scores), np.concatenate(parts_scores)
    assert a.shape == b.shape == (1 + (len(audio) - 400) // 160, 2)
    np.testing.assert_array_equal(a, b)


def test_threshold_override_gives_a_superset(tiny, ko_model):
    audio = noise_audio(20, seed=1)
    strict = Detector(ko_model, acoustic=tiny, threshold=-1.0).detect(audio)
    loose = Detector(ko_model, acoustic=tiny, threshold=-5.9).detect(audio)
    assert len(loose) >= len(strict)
    assert all(d.score >= -1.0 for d in strict)


def test_float_and_stereo_input_is_converted(tiny, ko_model):
    audio = noise_audio(5, seed=2)
    det = Detector(ko_model, acoustic=tiny)
    ref = det.detect(audio)
    stereo = np.stack([audio, audio], axis=1).astype(np.float32) / 32768.0
    assert det.detect(stereo) == ref


def test_phone_set_mismatch_is_one_line(tiny):
    en = enroll(["hey jarvis"], "en").model
    with pytest.raises(ModelFormatError, match="phone set en-v1.*ko-v1"):
        Detector(en, acoustic=tiny)


def test_detector_is_part_of_the_public_api(tiny, ko_model):
    # The README and the guide name `kws.Detector`; it is loaded lazily (the TFLite
    # runtime), so a typo in kws/__init__.py only shows when someone uses it.
    import kws
    import kws.detector

    assert kws.Detector is kws.detector.Detector
    assert kws.detect_files is kws.detector.detect_files
    assert {"Detector", "detect_files"} <= set(kws.__all__)
    det = kws.Detector(ko_model, acoustic=tiny)
    assert det.detect(noise_audio(1)) == Detector(ko_model, acoustic=tiny).detect(noise_audio(1))
    with pytest.raises(AttributeError, match="no attribute 'Detectorr'"):
        kws.Detectorr  # noqa: B018
