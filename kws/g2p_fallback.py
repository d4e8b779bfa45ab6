"""Neural grapheme-to-phoneme fallback for English words missing from CMUdict.

This is the GRU encoder-decoder of the ``g2p_en`` package (2.1.0), re-implemented in numpy
on top of its ``checkpoint20.npz``: greedy decoding as g2p_en does it (``predict``), and a
beam search (``nbest``, ``variants``) for the readings a word CMUdict lacks can have.  A
name or a made-up wake word ("nabu", "kaia") is read differently by different people:
text-only enrolment takes the most likely reading (the beam finds readings greedy decoding
misses), and a recording of the user picks among the likely ones.  We do not import
``g2p_en`` itself: its
import calls ``nltk.download`` for a POS tagger (network access at import time, and a
hang or failure offline), and we need neither the tagger nor its text normalisation.
``importlib.util.find_spec`` locates the package directory without executing it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Container
from functools import lru_cache

import numpy as np

from .errors import PronunciationError

__all__ = ["GRAPHEMES", "PHONEMES", "G2pModel", "checkpoint_path", "load_model", "predict", "nbest",
           "readings", "variants", "GUESS_RATIO"]

#: Input symbols, in g2p_en's order (index = embedding row).
GRAPHEMES: tuple[str, ...] = ("<pad>", "<unk>", "</s>") + tuple("abcdefghijklmnopqrstuvwxyz")

#: Output symbols, copied from g2p_en 2.1.0 ``G2p.__init__`` (index = output row).  Note the
#: unstressed ``UW`` next to ``UW0``: it is in g2p_en's list and must stay for the indices.
PHONEMES: tuple[str, ...] = ("<pad>", "<unk>", "<s>", "</s>") + (
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0",
    "AO1", "AO2", "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH",
    "EH0", "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1",
    "EY2", "F", "G", "HH",
    "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH", "K", "L",
    "M", "N", "NG", "OW0", "OW1",
    "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH",
    "UH0", "UH1", "UH2", "UW",
    "UW0", "UW1", "UW2", "V", "W", "Y", "Z", "ZH",
)

_START, _END = 2, 3  # <s>, </s> in PHONEMES
_BEAM = 8

#: Readings offered to a recording (``kws.enroll(..., recordings=...)``) besides the most
#: likely one: those the model gives at least this fraction of the best reading's
#: probability (stress marks removed, readings that then coincide summed).  Chosen from the
#: model's probabilities alone, not from detection results: 1 in 20 keeps the readings a
#: person might plausibly use ("kaia" as K AY AH, 0.13 of K EY AH) and drops those the model
#: all but rules out ("lumi" as L AH M IY, 0.002).  Text-only enrolment uses the best
#: reading only (docs/decoder.md#words-the-dictionary-lacks).
GUESS_RATIO = 0.05
_MAX_STEPS = 20
_G2IDX = {g: i for i, g in enumerate(GRAPHEMES)}
_UNK = _G2IDX["<unk>"]


def checkpoint_path() -> str | None:
    """Path of g2p_en's ``checkpoint20.npz``, or None if g2p_en is not installed."""
    try:
        spec = importlib.util.find_spec("g2p_en")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "checkpoint20.npz")
        if os.path.isfile(path):
            return path
    return None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class G2pModel:
    """The weights of g2p_en's model and its greedy decoder."""

    _NAMES = (
        "enc_emb", "enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh",
        "dec_emb", "dec_w_ih", "dec_w_hh", "dec_b_ih", "dec_b_hh",
        "fc_w", "fc_b",
    )

    def __init__(self, path: str) -> None:
        with np.load(path) as npz:
            missing = [n for n in self._NAMES if n not in npz.files]
            if missing:
                raise PronunciationError(
                    f"{path}: not a g2p_en checkpoint (missing {', '.join(missing)}); "
                    "reinstall g2p_en==2.1.0"
                )
            w = {n: np.asarray(npz[n], dtype=np.float32) for n in self._NAMES}
        if w["enc_emb"].shape[0] != len(GRAPHEMES) or w["fc_w"].shape[0] != len(PHONEMES):
            raise PronunciationError(
                f"{path}: checkpoint vocabulary does not match g2p_en 2.1.0; reinstall g2p_en==2.1.0"
            )
        self.enc_emb, self.enc_w_ih, self.enc_w_hh = w["enc_emb"], w["enc_w_ih"], w["enc_w_hh"]
        self.enc_b_ih, self.enc_b_hh = w["enc_b_ih"], w["enc_b_hh"]
        self.dec_emb, self.dec_w_ih, self.dec_w_hh = w["dec_emb"], w["dec_w_ih"], w["dec_w_hh"]
        self.dec_b_ih, self.dec_b_hh = w["dec_b_ih"], w["dec_b_hh"]
        self.fc_w, self.fc_b = w["fc_w"], w["fc_b"]

    @staticmethod
    def _cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
        """One GRU step, PyTorch gate layout (r, z, n) as g2p_en trained it."""
        gi = x @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        k = gi.shape[-1] * 2 // 3
        rz = _sigmoid(gi[:, :k] + gh[:, :k])
        r, z = np.split(rz, 2, axis=-1)
        n = np.tanh(gi[:, k:] + r * gh[:, k:])
        return (1.0 - z) * n + z * h

    def _encode(self, word: str) -> np.ndarray:
        ids = [_G2IDX.get(c, _UNK) for c in word] + [_G2IDX["</s>"]]
        h = np.zeros((1, self.enc_w_hh.shape[-1]), np.float32)
        for i in ids:
            h = self._cell(self.enc_emb[i][None, :], h, self.enc_w_ih, self.enc_w_hh,
                           self.enc_b_ih, self.enc_b_hh)
        return h

    def predict(self, word: str) -> list[str]:
        """Stressed ARPAbet symbols for a lower-case word (characters outside a-z are <unk>)."""
        h = self._encode(word)
        dec = self.dec_emb[_START][None, :]
        out: list[str] = []
        for _ in range(_MAX_STEPS):
            h = self._cell(dec, h, self.dec_w_ih, self.dec_w_hh, self.dec_b_ih, self.dec_b_hh)
            pred = int((h @ self.fc_w.T + self.fc_b).argmax())
            if pred == _END:
                break
            out.append(PHONEMES[pred])
            dec = self.dec_emb[pred][None, :]
        return out

    def score(self, word: str, phones: list[str]) -> float:
        """Log-probability the model gives ``phones`` (stressed ARPAbet, then </s>) for
        ``word``: the quantity ``nbest`` ranks by, for checking it and comparing readings."""
        h = self._encode(word)
        last, total = _START, 0.0
        for sym in [PHONEMES.index(p) for p in phones] + [_END]:
            h = self._cell(self.dec_emb[last][None, :], h, self.dec_w_ih, self.dec_w_hh, self.dec_b_ih, self.dec_b_hh)
            logits = (h @ self.fc_w.T + self.fc_b)[0].astype(np.float64)
            logits -= logits.max()
            total += float(logits[sym] - np.log(np.exp(logits).sum()))
            last = sym
        return total

    def nbest(self, word: str, beam: int = _BEAM) -> list[tuple[list[str], float]]:
        """Up to ``beam`` readings (stressed ARPAbet) with their log-probabilities, most
        likely first: a beam search over the decoder, all hypotheses stepped as one batch.
        A hypothesis ends when the model emits </s>; the search stops when none is open, or
        when ``beam`` have ended and no open one can still beat the worst of them
        (log-probabilities only fall as a hypothesis grows)."""
        h = self._encode(word)
        seqs: list[list[int]] = [[]]
        scores = np.zeros(1, np.float64)
        last = np.array([_START])
        done: list[tuple[list[int], float]] = []
        for _ in range(_MAX_STEPS):
            h = self._cell(self.dec_emb[last], h, self.dec_w_ih, self.dec_w_hh, self.dec_b_ih, self.dec_b_hh)
            logits = (h @ self.fc_w.T + self.fc_b).astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            total = (scores[:, None] + logp).ravel()
            order = np.argsort(-total, kind="stable")[:beam]
            keep_rows, keep_syms = np.divmod(order, logp.shape[1])
            open_rows, open_syms, open_scores = [], [], []
            for r, sym, sc in zip(keep_rows, keep_syms, total[order]):
                if sym == _END:
                    done.append((seqs[r], float(sc)))
                elif sym > _END:  # never <pad>, <unk>, <s>
                    open_rows.append(r)
                    open_syms.append(sym)
                    open_scores.append(sc)
            if not open_rows or (len(done) >= beam and sorted(d[1] for d in done)[-beam] >= open_scores[0]):
                break
            seqs = [seqs[r] + [int(sym)] for r, sym in zip(open_rows, open_syms)]
            h = h[np.array(open_rows)]
            last = np.array(open_syms)
            scores = np.array(open_scores)
        if not done:  # no hypothesis ended within _MAX_STEPS: take the open ones as they are
            done = [(sq, float(sc)) for sq, sc in zip(seqs, scores)]
        done.sort(key=lambda d: -d[1])
        return [([PHONEMES[i] for i in sq], sc) for sq, sc in done[:beam]]


@lru_cache(maxsize=1)
def load_model() -> G2pModel:
    """The model, loaded once; PronunciationError if g2p_en is not installed."""
    path = checkpoint_path()
    if path is None:
        raise PronunciationError(
            "the neural G2P fallback needs the g2p_en package, which is not installed: "
            "pip install g2p_en==2.1.0"
        )
    return G2pModel(path)


def predict(word: str) -> list[str]:
    """Stressed ARPAbet symbols that g2p_en's model predicts for ``word`` (greedy)."""
    return load_model().predict(word)


@lru_cache(maxsize=256)
def nbest(word: str, beam: int = _BEAM) -> tuple[tuple[tuple[str, ...], float], ...]:
    """Readings of ``word`` with their log-probabilities, most likely first (beam search).
    Cached: enrolment's pronunciation and its report both ask for the same word."""
    return tuple((tuple(phones), score) for phones, score in load_model().nbest(word, beam))


def readings(word: str, allowed: Container[str], max_variants: int,
             min_ratio: float = GUESS_RATIO) -> list[tuple[tuple[str, ...], float]]:
    """Readings of ``word`` with the probability the model gives each: unstressed phones of
    ``allowed``, most likely first.  Readings that differ only in stress are one reading
    (their probabilities summed); the best one is always kept, the others when their
    probability is at least ``min_ratio`` of the best's; at most ``max_variants``.  The
    probabilities say how sure the model is (0.99 for "lumi", 0.46 for "kaia"): where it is
    unsure, a recording or a reading set by hand is worth asking for."""
    merged: dict[tuple[str, ...], float] = {}
    for phones, logp in nbest(word):
        key = tuple(p for p in (s.rstrip("012") for s in phones) if p in allowed)
        if key:
            merged[key] = merged.get(key, 0.0) + float(np.exp(logp))
    if not merged:
        return []
    ranked = sorted(merged.items(), key=lambda kv: -kv[1])
    best = ranked[0][1]
    return [(k, p) for k, p in ranked if p >= min_ratio * best][:max_variants]


def variants(word: str, allowed: Container[str], max_variants: int,
             min_ratio: float = GUESS_RATIO) -> list[tuple[str, ...]]:
    """The phones of :func:`readings`, most likely first (for a keyword graph)."""
    return [k for k, _ in readings(word, allowed, max_variants, min_ratio)]
