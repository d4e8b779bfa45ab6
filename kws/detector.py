"""The streaming detector: audio in, keyword detections out.

audio (16 kHz int16) -> C log-mel front end -> int8 acoustic model (TFLite) -> C Viterbi
decoder. Feed chunks of any size; the detections do not depend on the chunking.

Digital silence: ``Detector(..., silence_gate=True)`` scores a feature frame the front
end sees as silence (every mel band at the log-energy floor, i.e. all-zero or constant
samples) as pure ``sil`` whatever the acoustic model says, so stretches of digital
silence never complete a keyword. The shipped models are trained on near-silence and
give no detection on digital silence even at threshold -3 (tests/test_bad_inputs.py), so
the gate is off by default and the host pipeline is exactly the firmware's; it is a guard
for other acoustic models.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from . import _core
from .acoustic import AcousticModel
from .audio import TARGET_RATE, load_audio, to_pcm16
from .decoder import Detection, KeywordDecoder
from .errors import AudioError, ModelFormatError
from .model_file import KeywordModel

_LANG_BY_PHONE_SET = {"ko-v1": "ko", "en-v1": "en"}

#: A log-mel frame whose every band is at or below this is digital silence: the front end
#: writes log(1e-10) = -23.026 for a band at its energy floor.
_SILENT_LOG_MEL = math.log(1e-10) + 1e-3
#: The log-posterior given to a silent frame for every phone but ``sil`` (phone 0).
_SILENT_OTHER_LOGPOST = math.log(1e-6)


class Detector:
    """Detect the keywords of a keyword model in a stream of audio.

    ``model`` is a :class:`KeywordModel` or a path to a ``.kwm`` file; ``acoustic``
    defaults to the shipped model for the keyword model's phone set. ``threshold``
    overrides every keyword's stored threshold (same scale: mean log-posterior ratio).
    ``silence_gate`` (default off: the pipeline is then exactly the firmware's) scores
    digitally silent frames as pure ``sil`` (see the module's docstring).
    ``level_control`` (default on, as on the device) lets the front end lift quiet speech
    towards the level the networks were trained at (docs/frontend-level.md); off feeds the
    raw log-mel.
    """

    def __init__(self, model: KeywordModel | str | os.PathLike,
                 acoustic: AcousticModel | None = None, threshold: float | None = None,
                 silence_gate: bool = False, level_control: bool = True) -> None:
        if not isinstance(model, KeywordModel):
            model = KeywordModel.load(model)
        if acoustic is None:
            lang = _LANG_BY_PHONE_SET.get(model.phone_set.name)
            if lang is None:
                raise ModelFormatError(f"no acoustic model for phone set {model.phone_set.name}")
            acoustic = AcousticModel.default(lang)
        if acoustic.phone_set.id != model.phone_set.id:
            raise ModelFormatError(
                f"keyword model is for phone set {model.phone_set.name}, acoustic model for "
                f"{acoustic.phone_set.name}; enrol the keyword with the matching --lang")
        self.model = model
        self.acoustic = acoustic
        self._decoder = KeywordDecoder(model)
        if threshold is not None:
            for k in range(len(model.keywords)):
                self._decoder.set_threshold(k, threshold)
        self._frontend = _core.FrontEnd(level_control=level_control)
        self._stream = acoustic.stream()
        self._n_mels = self._frontend.n_mels
        self._silent = np.zeros(0, bool)  # feature frames still waiting for their posterior
        self._sil_gate = bool(silence_gate) and acoustic.phone_set.phones[0] == "sil"  # ko-v1, en-v1: yes

    @property
    def names(self) -> list[str]:
        return self._decoder.names

    def reset(self) -> None:
        """Start a new stream (thresholds are kept)."""
        thresholds = self._decoder.thresholds()
        self._decoder.reset()
        for k, t in enumerate(thresholds):
            self._decoder.set_threshold(k, t)
        self._frontend.reset()
        self._stream.reset()
        self._silent = np.zeros(0, bool)

    def _features(self, pcm: np.ndarray) -> np.ndarray:
        out = np.empty((len(pcm) // self._frontend.frame_shift + 2, self._n_mels), np.float32)
        n = self._frontend.process(np.ascontiguousarray(pcm, dtype=np.int16), out)
        return out[:n]

    def process(self, samples: np.ndarray, sample_rate: int = TARGET_RATE,
                scores: list | None = None) -> list[Detection]:
        """Feed audio (int16, or float in [-1, 1); mono or frames x channels).

        Chunks at another rate are resampled chunk by chunk (fine for files read whole; a
        live stream should be captured at 16 kHz). If ``scores`` is a list, per-frame
        keyword scores (frames x keywords) are appended to it.
        """
        pcm = samples if (sample_rate == TARGET_RATE and isinstance(samples, np.ndarray)
                          and samples.dtype == np.int16 and samples.ndim == 1) else to_pcm16(samples, sample_rate)
        feats = self._features(pcm)
        if len(feats) and self._sil_gate:
            self._silent = np.concatenate([self._silent, feats.max(axis=1) <= _SILENT_LOG_MEL])
        return self._decode(self._gate(self._stream.push(feats)), scores)

    def _gate(self, logpost: np.ndarray) -> np.ndarray:
        """Score the digitally silent frames among these posteriors as pure ``sil``."""
        n = len(logpost)
        silent, self._silent = self._silent[:n], self._silent[n:]
        if n and silent.any():
            logpost = np.array(logpost, dtype=np.float32, copy=True)
            logpost[silent] = _SILENT_OTHER_LOGPOST
            logpost[silent, 0] = 0.0
        return logpost

    def _decode(self, logpost: np.ndarray, scores: list | None) -> list[Detection]:
        if scores is None:
            return self._decoder.process(logpost)
        sc = np.zeros((len(logpost), len(self.names)), np.float32)
        dets = self._decoder.process(logpost, sc)
        scores.append(sc)
        return dets

    def flush(self, scores: list | None = None) -> list[Detection]:
        """End of stream: decode the frames still in flight and report pending candidates."""
        dets = self._decode(self._gate(self._stream.flush()), scores)
        self._silent = np.zeros(0, bool)
        return dets + self._decoder.flush()

    def detect(self, samples: np.ndarray, sample_rate: int = TARGET_RATE) -> list[Detection]:
        """Whole-clip helper: reset, process, flush.

        Raises AudioError for a clip with no samples (a stream may have empty chunks; a
        clip may not), as :func:`kws.audio.to_pcm16` and :func:`kws.audio.load_audio` do.
        """
        if np.asarray(samples).size == 0:
            raise AudioError("samples contain no audio (0 samples); pass at least one sample")
        self.reset()
        return self.process(samples, sample_rate) + self.flush()

    def detect_file(self, path: str | os.PathLike) -> list[Detection]:
        return self.detect(load_audio(path))

    def chunks(self, stream: Iterable[np.ndarray]) -> Iterable[Detection]:
        """Yield detections as they happen from an iterable of 16 kHz chunks."""
        for chunk in stream:
            yield from self.process(chunk)
        yield from self.flush()


def detect_files(model: KeywordModel | str | Path, files: Iterable[str | os.PathLike],
                 threshold: float | None = None) -> Iterable[tuple[str, list[Detection]]]:
    det = Detector(model, threshold=threshold)
    for f in files:
        yield str(f), det.detect_file(f)
