"""Plain numpy reference of the keyword decoder, written straight from docs/kwm-format.md.

It is slow on purpose (Python loops over states) and simple enough to check by eye; the
C decoder must give the same detections and scores (tests/test_decoder.py).
All arithmetic is float32, in the order the spec gives, as in C.
"""

from __future__ import annotations

import numpy as np

from kws.graph import STATE_ENTRY, STATE_FINAL, STATE_SELF
from kws.model_file import KeywordModel

F32 = np.float32
NO_SCORE = F32(-1.0e30)


class ReferenceDecoder:
    def __init__(self, model: KeywordModel) -> None:
        self.model = model
        self.floor = F32(model.emission_floor)
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self.tokens = [[None] * len(k.states) for k in self.model.keywords]  # (score, dur, n_scored)
        self.pending = [None] * len(self.model.keywords)  # [score, start, end, hold]
        self.block_until = [0] * len(self.model.keywords)
        self.thresholds = [F32(k.threshold) for k in self.model.keywords]

    def _emissions(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        finite = x[~np.isnan(x)]
        m = finite.max() if finite.size else F32(0)
        e = np.where(np.isnan(x), self.floor, np.maximum((x - m).astype(np.float32), self.floor))
        return e.astype(np.float32)

    def step(self, x: np.ndarray) -> tuple[list[tuple[int, float, int, int]], list[float]]:
        e = self._emissions(x)
        t = self.t
        out = []
        scores = []
        for k, kw in enumerate(self.model.keywords):
            tok = self.tokens[k]
            for i in range(len(kw.states) - 1, -1, -1):
                st = kw.states[i]
                best = None
                cands = []
                if st.flags & STATE_SELF and tok[i] is not None:
                    cands.append(tok[i])
                cands.extend(tok[j] for j in st.preds if tok[j] is not None)
                if st.flags & STATE_ENTRY:
                    cands.append((F32(0), 0, 0))
                for s, d, n in cands:
                    if best is None or s > best[0] or (s == best[0] and d > best[1]):
                        best = (s, d, n)
                if best is None or best[1] + 1 > kw.max_frames:
                    tok[i] = None
                else:
                    neutral = st.phone == 0 and e[st.phone] == 0  # pause over silence
                    tok[i] = (F32(best[0] + e[st.phone]), best[1] + 1, best[2] + (0 if neutral else 1))
            cur = None
            for i, st in enumerate(kw.states):
                if st.flags & STATE_FINAL and tok[i] is not None:
                    avg = F32(tok[i][0] / F32(max(tok[i][2], 1)))
                    if cur is None or avg > cur[0] or (avg == cur[0] and tok[i][1] > cur[1]):
                        cur = (avg, tok[i][1])
            scores.append(float(cur[0]) if cur is not None else float(NO_SCORE))
            pend = self.pending[k]
            if t >= self.block_until[k] and cur is not None and cur[0] >= self.thresholds[k] and (
                    pend is None or cur[0] >= pend[0]):
                pend = self.pending[k] = [cur[0], t - cur[1] + 1, t, 0]
            elif pend is not None:
                pend[3] += 1
            if pend is not None and pend[3] >= self.model.hold_frames:
                out.append(self._report(k))
                self.tokens[k] = [None] * len(kw.states)
        self.t += 1
        return out, scores

    def process(self, logpost: np.ndarray) -> list[tuple[int, float, int, int]]:
        out = []
        for x in np.asarray(logpost, dtype=np.float32):
            out.extend(self.step(x)[0])
        return out

    def _report(self, k: int) -> tuple[int, float, int, int]:
        score, start, end, _ = self.pending[k]
        self.pending[k] = None
        self.block_until[k] = end + self.model.refractory_frames
        return (k, float(score), start, end)

    def flush(self) -> list[tuple[int, float, int, int]]:
        return [self._report(k) for k, pend in enumerate(self.pending) if pend is not None]
