"""The C front end through the Python extension agrees with its numpy twin, in any chunking."""

from __future__ import annotations

import numpy as np
import pytest

from kws import _core
from kws.features import log_mel


def c_log_mel(pcm: np.ndarray, chunk: int) -> np.ndarray:
    fe = _core.FrontEnd()
    frames = []
    for i in range(0, len(pcm), chunk):
        part = np.ascontiguousarray(pcm[i:i + chunk])
        out = np.zeros((len(part) // fe.frame_shift + 2, fe.n_mels), np.float32)
        frames.append(out[: fe.process(part, out)])
    return np.concatenate(frames)


@pytest.mark.parametrize("chunk", [1, 159, 160, 1024, 48000])
def test_binding_matches_numpy_and_ignores_chunking(chunk):
    rng = np.random.default_rng(1)
    t = np.arange(48000) / 16000.0
    sig = 8000 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + rng.normal(0, 300, t.size)
    pcm = np.clip(sig, -32768, 32767).astype(np.int16)
    if chunk == 1:
        pcm = pcm[:4000]  # one sample per call is slow in Python; the C tests cover long runs
    ref = log_mel(pcm)
    got = c_log_mel(pcm, chunk)
    assert got.shape == ref.shape == (1 + (len(pcm) - 400) // 160, 40)
    assert np.abs(got - ref).max() < 1e-3


def test_too_small_output_is_an_error():
    fe = _core.FrontEnd()
    with pytest.raises(ValueError, match="too few rows"):
        fe.process(np.zeros(16000, np.int16), np.zeros((3, 40), np.float32))
