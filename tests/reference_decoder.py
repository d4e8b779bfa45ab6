"""Plain numpy reference of the keyword decoder, written straight from docs/kwm-format.md.

It is slow on purpose (Python loops over states) and simple enough to check by eye; the
C decoder must give the same detections and scores (tests/test_decoder.py).
All arithmetic is float32, in the order the spec gives, as in C.
"""

from __future__ import annotations

import numpy as np

from kws.graph import STATE_ENTRY, STATE_FINAL, STATE_PHONE_START, STATE_SELF
from kws.model_file import KeywordModel

F32 = np.float32
NO_SCORE = F32(-1.0e30)


class ReferenceDecoder:
    def __init__(self, model: KeywordModel) -> None:
        self.model = model
        self.floor = F32(model.emission_floor)
        self.weight = F32(model.uncertainty_weight)
        # format 2.1: a keyword phone (not a pause) pays the weight where it is the best phone
        self.best_pays = model.best_phone_pays
        self.reset()

    def reset(self) -> None:
        self.t = 0
        # token: (score, dur, n_scored, D, m, P, k); the last four for PHONE_MEAN keywords
        self.tokens = [[None] * len(k.states) for k in self.model.keywords]
        self.pending = [None] * len(self.model.keywords)  # [score, start, end, hold]
        self.block_until = [0] * len(self.model.keywords)
        self.thresholds = [F32(k.threshold) for k in self.model.keywords]

    def _emissions(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        finite = x[~np.isnan(x)]
        m = finite.max() if finite.size else F32(0)
        pen = F32(self.weight * m) if m < 0 else F32(0)  # format 2.x; 0 for 1.x
        with np.errstate(invalid="ignore"):
            r = (x - m).astype(np.float32)
            r = np.where(r < 0, (r + pen).astype(np.float32), r)
            e = np.where(np.isnan(r), self.floor, np.maximum(r, self.floor))
        self.best_pen = self.floor if not finite.size else max(pen, self.floor)
        return e.astype(np.float32)

    def _emission(self, e: np.ndarray, phone: int) -> np.float32:
        if self.best_pays and phone != 0 and e[phone] == 0:
            return F32(self.best_pen)
        return e[phone]

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
                cands = []  # (token, came from a predecessor)
                if st.flags & STATE_SELF and tok[i] is not None:
                    cands.append((tok[i], False))
                cands.extend((tok[j], True) for j in st.preds if tok[j] is not None)
                cands = [(c, p) for c, p in cands if c[1] + 1 <= kw.max_frames]  # too long: passed over
                if st.flags & STATE_ENTRY:
                    cands.append(((F32(0), 0, 0, F32(0), 0, F32(0), 0), False))
                for c, from_pred in cands:
                    if best is None or c[0] > best[0][0] or (c[0] == best[0][0] and c[1] > best[0][1]):
                        best = (c, from_pred)
                if best is None or best[0][1] + 1 > kw.max_frames:
                    tok[i] = None
                else:
                    (s, d, n, dm, m, ps, pk), from_pred = best
                    em = self._emission(e, st.phone)
                    neutral = st.phone == 0 and em == 0  # pause over silence
                    if from_pred and st.flags & STATE_PHONE_START:  # close the phone being left
                        if pk > 0:
                            dm, m = F32(dm + F32(ps / F32(pk))), m + 1
                        ps, pk = F32(0), 0
                    if not neutral:
                        ps, pk = F32(ps + em), pk + 1
                    tok[i] = (F32(s + em), d + 1, n + (0 if neutral else 1), dm, m, ps, pk)
            cur = None
            for i, st in enumerate(kw.states):
                if st.flags & STATE_FINAL and tok[i] is not None:
                    if kw.phone_mean:
                        _, _, _, dm, m, ps, pk = tok[i]
                        if pk:
                            avg = F32(F32(dm + F32(ps / F32(pk))) / F32(m + 1))
                        else:
                            avg = F32(dm / F32(m)) if m else F32(0)
                    else:
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
