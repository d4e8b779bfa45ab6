"""The acoustic-model runtime: window sliding, padding and chunking, on a tiny known network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kws.acoustic import AcousticModel
from kws.errors import ModelFormatError

DATA = Path(__file__).parent / "data"
FLOOR = np.log(1e-6)


@pytest.fixture(scope="module")
def tiny():
    return AcousticModel(DATA / "tiny_ko.tflite"), np.load(DATA / "tiny_ko_weights.npy")


def expected(feats: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The network by hand: edge-padded (2 before, 2 after), conv over 5 frames, log-softmax."""
    pad = np.concatenate([np.repeat(feats[:1], 2, 0), feats, np.repeat(feats[-1:], 2, 0)])
    logits = np.stack([np.einsum("kc,kcp->p", pad[t:t + 5], w) for t in range(len(feats))])
    return np.maximum(logits - np.log(np.exp(logits).sum(1, keepdims=True)), FLOOR)


@pytest.mark.parametrize("frames", [1, 3, 4, 5, 9, 50, 101])
def test_one_posterior_per_frame_aligned_with_its_frame(tiny, frames):
    model, w = tiny
    feats = np.random.default_rng(frames).normal(0, 1, (frames, 40)).astype(np.float32)
    got = model.log_posteriors(feats)
    assert got.shape == (frames, 35)
    np.testing.assert_allclose(got, expected(feats, w), atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_chunking_does_not_change_posteriors(tiny, chunk):
    model, _ = tiny
    feats = np.random.default_rng(0).normal(0, 1, (97, 40)).astype(np.float32)
    stream = model.stream()
    parts = [stream.push(feats[i:i + chunk]) for i in range(0, len(feats), chunk)] + [stream.flush()]
    np.testing.assert_array_equal(np.concatenate(parts), model.log_posteriors(feats))


def test_bad_model_files_are_refused(tmp_path):
    (tmp_path / "x.tflite").write_bytes(b"not a flatbuffer at all" * 10)
    (tmp_path / "x.json").write_text((DATA / "tiny_ko.json").read_text())
    with pytest.raises(ModelFormatError, match="not a valid TFLite model"):
        AcousticModel(tmp_path / "x.tflite")
    with pytest.raises(ModelFormatError, match="no such"):
        AcousticModel(tmp_path / "missing.tflite")
    (tmp_path / "y.tflite").write_bytes((DATA / "tiny_ko.tflite").read_bytes())
    with pytest.raises(ModelFormatError, match="model card missing"):
        AcousticModel(tmp_path / "y.tflite")
    card = json.loads((DATA / "tiny_ko.json").read_text())
    card["chunk_frames"] = 8
    (tmp_path / "y.json").write_text(json.dumps(card))
    with pytest.raises(ModelFormatError, match="do not match"):
        AcousticModel(tmp_path / "y.tflite")


def test_a_network_for_other_features_is_refused(tmp_path):
    """A model card whose network reads other features (tools/train_acoustic.py --pcen) is
    refused in one line, not run on log-mel it never saw."""
    (tmp_path / "p.tflite").write_bytes((DATA / "tiny_ko.tflite").read_bytes())
    card = json.loads((DATA / "tiny_ko.json").read_text())
    card["feature"] = {"type": "PCEN of log-mel"}
    (tmp_path / "p.json").write_text(json.dumps(card))
    with pytest.raises(ModelFormatError, match="expects 'PCEN of log-mel' input") as err:
        AcousticModel(tmp_path / "p.tflite")
    assert "\n" not in str(err.value)
    card["feature"] = {"type": "log-mel"}
    (tmp_path / "p.json").write_text(json.dumps(card))
    assert AcousticModel(tmp_path / "p.tflite").n_mels == 40
