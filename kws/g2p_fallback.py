"""Neural grapheme-to-phoneme fallback for English words missing from CMUdict.

This is the greedy GRU encoder-decoder of the ``g2p_en`` package (2.1.0), re-implemented
in numpy on top of its ``checkpoint20.npz``.  We do not import ``g2p_en`` itself: its
import calls ``nltk.download`` for a POS tagger (network access at import time, and a
hang or failure offline), and we need neither the tagger nor its text normalisation.
``importlib.util.find_spec`` locates the package directory without executing it.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np

from .errors import PronunciationError

__all__ = ["GRAPHEMES", "PHONEMES", "G2pModel", "checkpoint_path", "load_model", "predict"]

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

    def predict(self, word: str) -> list[str]:
        """Stressed ARPAbet symbols for a lower-case word (characters outside a-z are <unk>)."""
        ids = [_G2IDX.get(c, _UNK) for c in word] + [_G2IDX["</s>"]]
        h = np.zeros((1, self.enc_w_hh.shape[-1]), np.float32)
        for i in ids:
            h = self._cell(self.enc_emb[i][None, :], h, self.enc_w_ih, self.enc_w_hh,
                           self.enc_b_ih, self.enc_b_hh)
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
    """Stressed ARPAbet symbols that g2p_en's model predicts for ``word``."""
    return load_model().predict(word)
