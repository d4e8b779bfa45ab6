"""The keyword decoder as Python sees it: posteriors in, detections with times out.

All the scoring runs in C (``kws._core``, over kws_core/src/kws_decoder.c); this module
only converts arrays and names, so the Python tool chain and the firmware run the very
same decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from .errors import ModelFormatError
from .model_file import KeywordModel

NO_SCORE: float = float(_core.NO_SCORE)


@dataclass(frozen=True)
class Detection:
    """One keyword found in the stream; frames count from the decoder's last reset."""

    keyword: str
    keyword_index: int
    score: float
    start_frame: int
    end_frame: int
    frame_shift_s: float = 0.01

    @property
    def start_s(self) -> float:
        return self.start_frame * self.frame_shift_s

    @property
    def end_s(self) -> float:
        """End of the last frame of the keyword."""
        return (self.end_frame + 1) * self.frame_shift_s


class KeywordDecoder:
    """Streaming decoder for every keyword of a model at once.

    Feed log-posteriors in chunks of any length with :meth:`process`; the detections do
    not depend on how the stream is cut. Call :meth:`flush` at the end of a stream to get
    a candidate still waiting for its hold time.
    """

    def __init__(self, model: KeywordModel | bytes) -> None:
        if not isinstance(model, KeywordModel):
            model = KeywordModel.from_bytes(bytes(model))  # validates, one-line errors
        try:
            self._dec = _core.Decoder(model.to_bytes())
        except _core.CoreError as exc:
            raise ModelFormatError(f"not a valid keyword model ({exc}); re-create it with kws-enroll") from None
        self.names = [self._dec.keyword_name(k) for k in range(self._dec.n_keywords)]
        self.frame_shift_s = model.frame_shift_ms / 1000.0

    @property
    def n_phones(self) -> int:
        return self._dec.n_phones

    @property
    def frames(self) -> int:
        return self._dec.frames

    @property
    def state_bytes(self) -> int:
        return self._dec.state_bytes

    def thresholds(self) -> list[float]:
        return [self._dec.get_threshold(k) for k in range(len(self.names))]

    def set_threshold(self, keyword: int | str, threshold: float) -> None:
        k = self.names.index(keyword) if isinstance(keyword, str) else keyword
        self._dec.set_threshold(k, float(threshold))

    def reset(self) -> None:
        self._dec.reset()

    def _wrap(self, raw: list[tuple[int, float, int, int]]) -> list[Detection]:
        return [Detection(self.names[k], k, float(s), int(a), int(b), self.frame_shift_s)
                for k, s, a, b in raw]

    def process(self, logpost: np.ndarray, scores: np.ndarray | None = None) -> list[Detection]:
        """Decode frames of log-posteriors (frames x n_phones).

        ``scores``, if given, is a float32 array (frames x keywords) filled with each
        frame's keyword scores (:data:`NO_SCORE` where none), for traces and calibration.
        """
        x = np.ascontiguousarray(logpost, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"posteriors must be 2-D (frames x phones), got shape {x.shape}")
        return self._wrap(self._dec.process(x, scores))

    def flush(self) -> list[Detection]:
        return self._wrap(self._dec.flush())
