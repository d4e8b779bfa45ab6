"""Enrolment: wake-word text in, compiled keyword model out.

This is the path a product takes when a user types a wake word: pronounce the text
(g2pk rules for Korean, CMUdict plus a neural fallback for English), turn each
pronunciation into an HMM keyword graph, and pack the graphs into one keyword model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .errors import PronunciationError
from .graph import DEFAULT_STATES_PER_PHONE, build_graph
from .model_file import KeywordModel
from .phonesets import get_phone_set
from .pronunciation import Pronunciation, pronounce

#: Threshold on the decoder's score (mean per-frame log-posterior ratio, <= 0) used
#: until a keyword is calibrated against negative speech.
DEFAULT_THRESHOLD = -1.0


@dataclass
class Enrollment:
    """What enrolment produced: the model and, per keyword, how it was pronounced."""

    model: KeywordModel
    pronunciations: list[Pronunciation]

    def summary(self) -> list[dict]:
        """One JSON-ready dict per keyword: text, phones and graph sizes."""
        rows = []
        for pron, kw in zip(self.pronunciations, self.model.keywords):
            rows.append({
                "keyword": kw.name,
                "lang": pron.lang,
                "pronunciation": str(pron),
                "variants": [[list(v) for v in w.variants] for w in pron.words],
                "states": len(kw.states),
                "arcs": kw.n_arcs,
                "max_frames": kw.max_frames,
                "threshold": kw.threshold,
            })
        return rows


def enroll(
    texts: str | Iterable[str],
    lang: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    states_per_phone: int = DEFAULT_STATES_PER_PHONE,
) -> Enrollment:
    """Compile one or more wake words typed as text into one keyword model.

    Raises :class:`kws.errors.PronunciationError` (one line, says what to change) for
    text that cannot be a wake word in ``lang``.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise PronunciationError("no wake word given: pass at least one text")
    phone_set = get_phone_set(lang)
    prons = [pronounce(t, lang) for t in texts]
    seen: dict[str, str] = {}
    for t, p in zip(texts, prons):
        if p.text in seen:
            raise PronunciationError(f"wake word {t!r} is given twice (as {seen[p.text]!r}); give each once")
        seen[p.text] = t
    graphs = [build_graph(p, phone_set, threshold=threshold, states_per_phone=states_per_phone)
              for p in prons]
    return Enrollment(KeywordModel(phone_set=phone_set, keywords=graphs), prons)
