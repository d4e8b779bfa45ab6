"""Wake-word quality report: what makes a keyword weak, in plain words (docs/calibration.md).

Per keyword: syllables and phones (public advice: three to five syllables), the
calibrated threshold and the false alarms per hour expected there, the phrases of real
negative speech that come closest to firing it, how confusable it is with the other
keywords of the same model, and (with recordings) how clearly the user's own renditions
pass. Each weakness becomes a :class:`Warning` with a reason and a suggestion; a single
``quality`` figure (0-100) ranks keywords.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .graph import STATE_ENTRY, KeywordGraph
from .model_file import KeywordModel
from .pronunciation import Pronunciation

EN_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
KO_VOWELS = frozenset("a eo o u eu i e".split())
MIN_SYLLABLES = 3
MAX_SYLLABLES = 5
MIN_PHONES = 5
#: A threshold above this means only a near-perfect rendition passes (in nats per frame).
TIGHT_THRESHOLD = -0.2
#: Recordings should pass the threshold by at least this much.
MIN_MARGIN = 0.2
#: How far a format-2.0 keyword's calibrated threshold lies below the same keyword's at
#: format 1.1, per unit of uncertainty weight: the weight lowers every score (12 keywords
#: at 0.5/h with w = 0.5: 0.12-0.53 lower, mean 0.29, docs/decoder.md). The quality score
#: and the "tight" warning read thresholds on the 1.1 scale, shifted by this times w.
THRESHOLD_SHIFT_PER_WEIGHT = 0.6
#: The same with the best phone paying too (format 2.1, ``best_pays``): the same twelve
#: keywords came out 0.20-0.66 lower than at 1.1 (mean 0.46 at w = 0.5).
THRESHOLD_SHIFT_PER_WEIGHT_BEST_PAYS = 0.9
#: Frames per HMM state in the synthetic rendition used for confusability.
RENDER_FRAMES = 3


@dataclass
class Warning:  # noqa: A001 - the report's word for it
    code: str
    message: str
    suggestion: str
    weak: bool = True  # a weakness of the wake word (--strict makes it an error)

    def __str__(self) -> str:
        return f"{self.message}; {self.suggestion}"


@dataclass
class KeywordReport:
    keyword: str
    pronunciation: str
    syllables: int
    phones: int
    threshold: float
    expected_fa_per_hour: float | None
    calibration: dict = field(default_factory=dict)
    closest: list[dict] = field(default_factory=list)
    confusable: list[dict] = field(default_factory=list)
    recordings: list[dict] = field(default_factory=list)
    variant: str | None = None
    #: per word the dictionary lacks: {"word", "reading", "probability", "also_likely",
    #: "also_likely_probability"} (phones and the G2P model's probabilities), for a UI to offer
    guessed: list[dict] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    quality: int = 100
    uncertainty_weight: float = 0.0  # of the model the threshold was calibrated for
    best_pays: bool = False  # ditto (format 2.1)

    @property
    def threshold_on_1_1_scale(self) -> float:
        """The threshold moved back to the format-1.1 score scale (for the quality rules)."""
        per = THRESHOLD_SHIFT_PER_WEIGHT_BEST_PAYS if self.best_pays else THRESHOLD_SHIFT_PER_WEIGHT
        return self.threshold + per * self.uncertainty_weight

    @property
    def weak(self) -> bool:
        return any(w.weak for w in self.warnings)

    @property
    def rating(self) -> str:
        return "good" if self.quality >= 75 else "fair" if self.quality >= 50 else "weak"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rating"] = self.rating
        d["weak"] = self.weak
        return d


@dataclass
class Report:
    keywords: list[KeywordReport]
    budget: float | None
    calibration_source: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def weak(self) -> list[KeywordReport]:
        return [k for k in self.keywords if k.weak]

    def ranked(self) -> list[KeywordReport]:
        """Best first."""
        return sorted(self.keywords, key=lambda k: -k.quality)

    def to_dict(self) -> dict:
        return {"budget_fa_per_hour": self.budget, "calibration_source": self.calibration_source,
                "notes": self.notes, "keywords": [k.to_dict() for k in self.keywords]}


# --------------------------------------------------------------------------- measures
def count_syllables(pron: Pronunciation) -> int:
    """Syllables as said: Korean counts the Hangul syllables of g2pk's surface forms, so that
    digits count as they are read ('123' -> '이리삼', three), not as written (none)."""
    if pron.lang == "ko":
        return (sum(1 for w in pron.words for ch in w.text if 0xAC00 <= ord(ch) <= 0xD7A3)
                or _vowels(pron, KO_VOWELS))
    return _vowels(pron, EN_VOWELS)


def _vowels(pron: Pronunciation, vowels) -> int:
    return sum(1 for w in pron.words for p in w.variants[0] if p in vowels)


def count_phones(pron: Pronunciation) -> int:
    return sum(len(w.variants[0]) for w in pron.words)


def graph_path(kw: KeywordGraph, sil: int = 0) -> list[int]:
    """State indices of one entry-to-final path (first variants, no optional pause)."""
    succ: dict[int, list[int]] = {}
    for i, st in enumerate(kw.states):
        for p in st.preds:
            succ.setdefault(p, []).append(i)
    i = next(i for i, s in enumerate(kw.states) if s.flags & STATE_ENTRY)
    path = [i]
    while succ.get(i):
        nxt = succ[i]
        non_sil = [j for j in nxt if kw.states[j].phone != sil]
        i = min(non_sil or nxt)
        path.append(i)
    return path


def render(kw: KeywordGraph, n_phones: int, pad: int = 30) -> np.ndarray:
    """A clean synthetic posteriorgram of the keyword said as its graph's first path."""
    labels = [0] * pad
    for i in graph_path(kw):
        labels += [kw.states[i].phone] * RENDER_FRAMES
    labels += [0] * pad
    x = np.full((len(labels), n_phones), -10.0, np.float32)
    x[np.arange(len(labels)), labels] = 0.0
    return x


def confusion_matrix(model: KeywordModel) -> np.ndarray:
    """m[a, b]: best score of keyword a on a clean rendition of keyword b (<= 0)."""
    from .decoder import NO_SCORE, KeywordDecoder

    n = len(model.keywords)
    m = np.full((n, n), -np.inf)
    if n < 2:
        return m
    dec = KeywordDecoder(model)
    for b, kw in enumerate(model.keywords):
        dec.reset()
        for k in range(n):
            dec.set_threshold(k, 0.0)
        x = render(kw, len(model.phone_set))
        sc = np.zeros((len(x), n), np.float32)
        dec.process(x, sc)
        sc[sc <= NO_SCORE] = -np.inf
        m[:, b] = sc.max(axis=0)
    return m


def quality(r: KeywordReport) -> int:
    q = 100.0
    q -= 20 * max(0, MIN_SYLLABLES - r.syllables)
    q -= 5 * max(0, 6 - r.phones)
    cal = r.calibration
    if cal.get("calibrated"):
        # how far the threshold had to rise to stay within budget: -1.5 or lower costs nothing
        q -= 40 * float(np.clip((r.threshold_on_1_1_scale + 1.5) / 1.5, 0.0, 1.0))
        if not cal.get("reachable", True):
            q -= 20
    if any(c["fires"] for c in r.confusable):
        q -= 20
    if any(not rec["detected"] for rec in r.recordings):
        q -= 20
    return int(round(float(np.clip(q, 0, 100))))


def add_guess_warnings(r: KeywordReport, pron: Pronunciation) -> None:
    """A note (not a weakness) per word the dictionary lacks: its phones are the G2P model's
    guess, which the user should check, with the other readings the model finds likely and
    the probability it gives each (low: worth a recording or a reading set by hand)."""
    from .g2p_fallback import readings
    from .phonesets import get_phone_set

    for w in pron.words:
        if not w.guessed:
            continue
        found = readings(w.text, get_phone_set(pron.lang), 4)
        prob = dict(found)
        mine = sum(prob.get(v, 0.0) for v in w.variants)
        others = [(v, p) for v, p in found if v not in w.variants]
        r.guessed.append({"word": w.text, "reading": [list(v) for v in w.variants],
                          "probability": round(mine, 3),
                          "also_likely": [list(v) for v, _ in others],
                          "also_likely_probability": [round(p, 3) for _, p in others]})
        listed = ", ".join(" ".join(v) + f" {p:.0%}" for v, p in others)
        also = f"; also likely: {listed}" if others else ""
        r.warnings.append(Warning(
            "guessed", f"{w.text!r} is not in the pronunciation dictionary: "
                       f"{' / '.join(' '.join(v) for v in w.variants)} is a guess (the G2P model gives it "
                       f"{mine:.0%}{also})",
            "if people say it otherwise, enrol with --recording to pick their reading, set it with --phones, "
            "or spell it as it sounds",
            weak=False))


def add_length_warnings(r: KeywordReport, lang: str) -> None:
    if r.syllables < MIN_SYLLABLES:
        hint = ("add a word in front, e.g. 'hey " + r.keyword + "'" if lang == "en"
                else "add a syllable or a word, e.g. '" + r.keyword + "야' or '헤이 " + r.keyword + "'")
        r.warnings.append(Warning(
            "short", f"{r.keyword!r} has only {r.syllables} syllable{'s' if r.syllables != 1 else ''} "
                     f"({r.phones} phones): short wake words are missed more and fire on everyday speech "
                     f"({MIN_SYLLABLES} to {MAX_SYLLABLES} syllables are recommended)", hint))
    elif r.phones < MIN_PHONES:
        r.warnings.append(Warning(
            "few-phones", f"{r.keyword!r} has only {r.phones} phones", "choose a longer wake word"))
    if r.syllables > MAX_SYLLABLES + 2:
        r.warnings.append(Warning(
            "long", f"{r.keyword!r} has {r.syllables} syllables: long wake words are tiring to say",
            "3 to 5 syllables are enough", weak=False))


def add_calibration_warnings(r: KeywordReport) -> None:
    cal = r.calibration
    if not cal.get("calibrated"):
        return
    close = ", ".join(f"'{c['text']}'" for c in r.closest[:3])
    near = f" (closest: {close})" if close else ""
    if not cal.get("reachable", True):
        r.warnings.append(Warning(
            "budget", f"{r.keyword!r} fires {cal['expected_fa_per_hour']:.2g} times/h on everyday speech even at the "
                      f"strictest threshold, over the budget of {cal['budget']:g}/h{near}",
            "choose a longer or more distinctive wake word"))
    elif r.threshold_on_1_1_scale > TIGHT_THRESHOLD:
        r.warnings.append(Warning(
            "tight", f"{r.keyword!r} needs a threshold of {r.threshold:.2f} to stay within "
                     f"{cal['budget']:g} false alarms/h: everyday speech comes close to it{near}, so only a "
                     f"near-perfect rendition will be detected",
            "choose a longer or more distinctive wake word"))


def add_confusion(reports: list[KeywordReport], model: KeywordModel) -> None:
    """Fill ``confusable`` (and warnings) from the confusion matrix of ``model``'s keywords."""
    names = model.names
    m = confusion_matrix(model)
    by_name = {r.keyword: r for r in reports}
    for a, kw_a in enumerate(model.keywords):
        r = by_name.get(kw_a.name)
        if r is None:
            continue
        for b in range(len(names)):
            if a == b or not np.isfinite(m[a, b]) and not np.isfinite(m[b, a]):
                continue
            # a is confusable with b if saying b fires a, or saying a fires b
            s_ab, s_ba = float(m[a, b]), float(m[b, a])
            fires = s_ab >= kw_a.threshold or s_ba >= model.keywords[b].threshold
            r.confusable.append({"keyword": names[b], "score_on_other": round(s_ab, 3) if np.isfinite(s_ab) else None,
                                 "other_score_on_this": round(s_ba, 3) if np.isfinite(s_ba) else None,
                                 "fires": bool(fires)})
            if fires:
                r.warnings.append(Warning(
                    "confusable", f"{kw_a.name!r} and {names[b]!r} are confusable: saying one fires the other",
                    "drop one of them or make them sound more different"))


def format_text(report: Report) -> list[str]:
    """Human-readable lines, one block per keyword."""
    lines = []
    for r in report.keywords:
        cal = r.calibration
        if cal.get("calibrated"):
            rate = (f"{r.expected_fa_per_hour:.2g} false alarms/h expected (budget {cal['budget']:g}/h, "
                    f"{cal['hours']:.2f} h of negative speech, {cal['method']})")
        elif cal.get("explicit"):
            rate = "threshold set by hand" + (
                f", {r.expected_fa_per_hour:.2g} false alarms/h expected" if r.expected_fa_per_hour is not None else "")
        else:
            rate = "not calibrated"
        lines.append(f"    threshold {r.threshold:.3f}: {rate}")
        lines.append(f"    quality {r.quality}/100 ({r.rating}): {r.syllables} syllable{'s' if r.syllables != 1 else ''}, {r.phones} phones")
        if r.variant:
            lines.append(f"    your pronunciation: {r.variant}")
        for rec in r.recordings:
            lines.append(f"    recording {rec['file']}: score {rec['score']:.3f}, margin {rec['margin']:+.3f}"
                         f" ({'detected' if rec['detected'] else 'NOT detected'})")
        if r.closest:
            lines.append("    closest in everyday speech: " + ", ".join(
                f"'{c['text']}' ({c['score']:.2f})" for c in r.closest[:5]))
        for c in r.confusable:
            if c["fires"]:
                lines.append(f"    confusable with {c['keyword']!r}")
    return lines
