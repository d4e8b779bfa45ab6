"""Synthetic posteriorgrams and hand-built keyword models for decoder tests.

A posteriorgram here is what an acoustic model would give on clean speech: each frame
has one clearly best phone (plus noise), phones last several frames, and a keyword is a
run of its phones at a position the test knows exactly.
"""

from __future__ import annotations

import numpy as np

from kws.graph import build_graph
from kws.model_file import KeywordModel
from kws.phonesets import ENGLISH
from kws.pronunciation import Pronunciation, Word


def pron(*words: list[list[str]] | list[str], text: str = "") -> Pronunciation:
    """Pronunciation from phone lists: each word is a list of variants or one variant."""
    ws = []
    for i, w in enumerate(words):
        variants = w if w and isinstance(w[0], (list, tuple)) else [w]
        ws.append(Word(f"w{i}", tuple(tuple(v) for v in variants)))
    return Pronunciation(text or " ".join(w.text for w in ws), "en", tuple(ws))


def make_model(keywords: dict[str, Pronunciation], threshold: float = -0.5, **kw) -> KeywordModel:
    graphs = [build_graph(p, ENGLISH, threshold=threshold, name=name) for name, p in keywords.items()]
    return KeywordModel(phone_set=ENGLISH, keywords=graphs, **kw)


class Posteriorgram:
    """Builds log-posterior frames phone run by phone run and remembers where things are."""

    def __init__(self, seed: int = 0, sharpness: float = 6.0, noise: float = 1.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.sharp = sharpness
        self.noise = noise
        self.labels: list[int] = []

    @property
    def n(self) -> int:
        return len(self.labels)

    def add(self, phones: list[str], frames: int = 6) -> tuple[int, int]:
        """Append each phone for ``frames`` frames; return (first, last) frame index."""
        start = self.n
        for p in phones:
            self.labels += [ENGLISH.index(p)] * frames
        return start, self.n - 1

    def background(self, frames: int, avoid: set[str] = frozenset()) -> None:
        """Random phones (none of ``avoid``) in runs of 3..10 frames."""
        allowed = [i for i, p in enumerate(ENGLISH.phones) if p not in avoid]
        while frames > 0:
            d = min(frames, int(self.rng.integers(3, 11)))
            self.labels += [int(self.rng.choice(allowed))] * d
            frames -= d

    def logpost(self) -> np.ndarray:
        n, p = self.n, len(ENGLISH)
        logits = self.rng.normal(0.0, self.noise, size=(n, p))
        logits[np.arange(n), self.labels] += self.sharp
        logits -= logits.max(axis=1, keepdims=True)
        return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
