"""Acoustic models: log-mel frames in, per-frame phone log-posteriors out.

A model is an int8 TFLite file plus a JSON model card beside it. The network sees a
fixed window of ``chunk_frames + context_frames - 1`` log-mel frames and gives
``chunk_frames`` posterior frames; output ``j`` belongs to window frame
``j + context_frames - 1 - lookahead_frames``. :class:`AcousticStream` slides that window
over a stream so that every feature frame gets exactly one posterior frame, whatever the
chunking of the input, with ``lookahead_frames`` of latency.

Runtime: ``ai-edge-litert``'s Interpreter (the maintained successor of
``tflite-runtime``), falling back to ``tflite_runtime`` where only that is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import KwsError, ModelFormatError
from .phonesets import PhoneSet, phone_set_by_id

DATA_DIR = Path(__file__).resolve().parent / "data" / "acoustic"
#: Posterior floor before the log: below half an int8 output step is "never".
_MIN_PROB = 1e-6
#: Input features this runtime computes (``feature.type`` in a model card; absent = log-mel).
#: ``tools/train_acoustic.py --pcen`` writes "PCEN of log-mel": an experiment whose input only
#: research tools compute (``tools/ensemble_bench.py`` passes ``features=``), refused by default
#: rather than fed the wrong features.
FEATURE_TYPES = ("log-mel",)


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence C++ runtime chatter on file descriptor 2 (TFLite prints "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." when a model loads), so that a command's
    stderr holds only its own one-line errors. Python exceptions are unaffected."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)



def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]
        return Interpreter
    except ImportError:
        raise KwsError("no TFLite runtime: pip install ai-edge-litert (or tflite-runtime)") from None


@dataclass(frozen=True)
class ModelCard:
    """What the runtime needs from the JSON model card (the rest is documentation)."""

    phone_set: PhoneSet
    chunk_frames: int
    context_frames: int
    lookahead_frames: int
    raw: dict

    @classmethod
    def load(cls, path: Path, features: tuple[str, ...] = FEATURE_TYPES) -> "ModelCard":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            ps = phone_set_by_id(int(raw["phone_set_id"]))
            card = cls(ps, int(raw["chunk_frames"]), int(raw["context_frames"]),
                       int(raw.get("lookahead_frames", 0)), raw)
        except FileNotFoundError:
            raise ModelFormatError(f"{path}: model card missing; an acoustic model needs its .json beside the .tflite") from None
        except (ValueError, KeyError, TypeError, KwsError) as exc:
            raise ModelFormatError(f"{path}: not a valid acoustic model card ({exc})") from None
        feature = raw.get("feature", {}).get("type", "log-mel") if isinstance(raw.get("feature"), dict) else "log-mel"
        if feature not in features:
            raise ModelFormatError(f"{path}: the network expects {feature!r} input, and this runtime computes "
                                   f"{' or '.join(features)}; use a model trained on log-mel")
        if not (card.chunk_frames >= 1 and card.context_frames >= 1
                and 0 <= card.lookahead_frames < card.context_frames):
            raise ModelFormatError(f"{path}: inconsistent chunk/context/lookahead in the model card")
        return card


class AcousticModel:
    """An int8 phone-posterior network and its model card."""

    def __init__(self, tflite_path: str | os.PathLike, card_path: str | os.PathLike | None = None,
                 features: tuple[str, ...] = FEATURE_TYPES) -> None:
        path = Path(tflite_path)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such acoustic model file")
        self.path = path
        self.card = ModelCard.load(Path(card_path) if card_path else path.with_suffix(".json"), features)
        try:
            with quiet_native_stderr():
                self._interp = _interpreter_class()(model_path=str(path), num_threads=1)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFormatError(f"{path}: not a valid TFLite model ({str(exc).splitlines()[0]})") from None
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype, self._out_dtype = inp["dtype"], out["dtype"]
        self._in_q = inp["quantization"]
        self._out_q = out["quantization"]
        self.window = int(inp["shape"][1])
        self.n_mels = int(inp["shape"][2])
        c = self.card
        if self.window != c.chunk_frames + c.context_frames - 1 or int(out["shape"][1]) != c.chunk_frames:
            raise ModelFormatError(f"{path}: tensor shapes do not match the model card's chunk/context")
        if int(out["shape"][2]) != len(c.phone_set):
            raise ModelFormatError(f"{path}: {out['shape'][2]} outputs, phone set {c.phone_set.name} has {len(c.phone_set)}")

    @property
    def phone_set(self) -> PhoneSet:
        return self.card.phone_set

    @classmethod
    def default(cls, lang: str) -> "AcousticModel":
        """The model shipped in the package for ``lang`` ('ko' or 'en')."""
        return _default_model(lang)

    def run_window(self, feats: np.ndarray) -> np.ndarray:
        """One network call: window x n_mels log-mel -> chunk x n_phones log-posteriors."""
        x = feats[None].astype(np.float32)
        if self._in_dtype != np.float32:
            scale, zp = self._in_q
            info = np.iinfo(self._in_dtype)
            x = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(self._in_dtype)
        self._interp.set_tensor(self._in_index, x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out_index)[0]
        if self._out_dtype != np.float32:
            scale, zp = self._out_q
            y = (y.astype(np.float32) - zp) * scale
        return np.log(np.maximum(y, _MIN_PROB)).astype(np.float32)

    def stream(self) -> "AcousticStream":
        return AcousticStream(self)

    def log_posteriors(self, feats: np.ndarray) -> np.ndarray:
        """Whole-utterance helper: one posterior frame per feature frame."""
        s = self.stream()
        return np.concatenate([s.push(feats), s.flush()])


@lru_cache(maxsize=4)
def _default_model(lang: str) -> AcousticModel:
    path = DATA_DIR / f"{lang}.tflite"
    if not path.is_file():
        raise KwsError(f"no acoustic model is shipped for language {lang!r}")
    return AcousticModel(path)


class AcousticStream:
    """Slides the network's window over a stream of feature frames.

    The stream starts with ``context - 1 - lookahead`` frames of padding (copies of the
    first real frame), so the first real frame gets a posterior too; :meth:`flush` pads
    the end the same way to emit the last ``lookahead`` frames.
    """

    def __init__(self, model: AcousticModel) -> None:
        self.model = model
        c = model.card
        self.left = c.context_frames - 1 - c.lookahead_frames
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros((0, self.model.n_mels), np.float32)
        self._started = False
        self._pending = 0  # real frames in the buffer without a posterior yet

    def push(self, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, np.float32).reshape(-1, self.model.n_mels)
        if len(feats) and not self._started:
            feats = np.concatenate([np.repeat(feats[:1], self.left, axis=0), feats])
            self._started = True
            self._pending -= self.left  # the padding needs no posterior
        self._buf = np.concatenate([self._buf, feats])
        self._pending += len(feats)
        return self._drain()

    def _drain(self) -> np.ndarray:
        m, c = self.model, self.model.card
        out = []
        while len(self._buf) >= m.window:
            out.append(m.run_window(self._buf[: m.window]))
            self._buf = self._buf[c.chunk_frames:]
            self._pending -= c.chunk_frames
        if not out:
            return np.zeros((0, len(c.phone_set)), np.float32)
        return np.concatenate(out)

    def flush(self) -> np.ndarray:
        """Emit the posteriors still owed (the last real frames), then reset.

        The buffer always holds ``left`` frames of context plus the ``owed`` frames
        without a posterior; pad it with copies of the last frame to whole windows.
        """
        m, c = self.model, self.model.card
        owed = self._pending
        empty = np.zeros((0, len(c.phone_set)), np.float32)
        if owed <= 0:
            self.reset()
            return empty
        k = -(-owed // c.chunk_frames)
        need = (k - 1) * c.chunk_frames + m.window
        buf = np.concatenate([self._buf, np.repeat(self._buf[-1:], need - len(self._buf), axis=0)])
        parts = [m.run_window(buf[i * c.chunk_frames: i * c.chunk_frames + m.window]) for i in range(k)]
        self.reset()
        return np.concatenate(parts)[:owed]
