"""Enrolment: wake-word text in, compiled and calibrated keyword model out.

This is the path a product takes when a user types a wake word: pronounce the text
(g2pk rules for Korean, CMUdict plus a neural fallback for English), turn each
pronunciation into an HMM keyword graph, pack the graphs into one keyword model, and
set each keyword's threshold so that it fires at most a given number of times per hour
on real keyword-free speech (kws/calibration.py, docs/calibration.md). A quality report
(kws/report.py) says which wake words are weak and why.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import KwsError, PronunciationError
from .graph import DEFAULT_STATES_PER_PHONE, build_graph, phone_min_frames
from .model_file import DEFAULT_UNCERTAINTY_WEIGHT, KeywordModel
from .phonesets import get_phone_set
from .pronunciation import MAX_VARIANTS, Pronunciation, Word, guess_language, pronounce, with_phones
from . import calibration as cal
from . import report as rep

#: Largest uncertainty weight enrolment accepts (the gain is flat from 0.4 to 0.7 and falls
#: off beyond 1, docs/decoder.md).
MAX_UNCERTAINTY_WEIGHT = 4.0

#: Threshold on the decoder's score (mean per-frame log-posterior ratio, <= 0) used when
#: no calibration cache is available (and by callers that pass no budget and no cache).
DEFAULT_THRESHOLD = -1.0
DEFAULT_MAX_FALSE_ALARMS_PER_HOUR = cal.DEFAULT_BUDGET
MAX_RECORDINGS = 3
MAX_VARIANT_COMBINATIONS = 16
#: How many of the closest negative phrases the report keeps.
CLOSEST = 5


class BudgetError(KwsError, ValueError):
    """A false-alarm budget outside the accepted range."""


class WeakWakeWordError(KwsError, ValueError):
    """``strict=True`` and a wake word is weak (the message says why)."""


class RecordingError(KwsError, ValueError):
    """Recordings that cannot be used for enrolment."""


@dataclass
class Enrollment:
    """What enrolment produced: the model, how each new keyword was pronounced, the report."""

    model: KeywordModel
    pronunciations: list[Pronunciation]
    report: rep.Report | None = None

    def summary(self) -> list[dict]:
        """One JSON-ready dict per enrolled keyword: text, phones, graph sizes, report."""
        rows = []
        by_name = {k.name: k for k in self.model.keywords}
        reports = {r.keyword: r for r in (self.report.keywords if self.report else [])}
        for pron in self.pronunciations:
            kw = by_name[pron.text]
            row = {
                "keyword": kw.name,
                "lang": pron.lang,
                "pronunciation": str(pron),
                "variants": [[list(v) for v in w.variants] for w in pron.words],
                "states": len(kw.states),
                "arcs": kw.n_arcs,
                "max_frames": kw.max_frames,
                "threshold": kw.threshold,
                "expected_fa_per_hour": kw.expected_fa_per_hour if kw.expected_fa_per_hour >= 0 else None,
            }
            r = reports.get(kw.name)
            if r is not None:
                row["report"] = r.to_dict()
            rows.append(row)
        return rows


# --------------------------------------------------------------------------- helpers
def _resolve_cache(cache, lang: str, phone_set_id: int) -> cal.NegativeCache:
    if cache is None:
        return cal.default_cache(lang)
    if isinstance(cache, (str, os.PathLike)):
        c = cal.NegativeCache.load(cache)
        c.check_fresh(lang, phone_set_id, cal.acoustic_sha256(lang))
        return c
    cache.check_fresh(lang, phone_set_id, None)  # an object the caller built: trusted
    return cache


def _closest(cache: cal.NegativeCache, peaks: list[cal.Peak]) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    for p in peaks[:200]:
        text = cal.words_at(cache, p)
        if not text or text in seen:
            continue
        seen.add(text)
        out.append({"text": text, "score": round(p.score, 3),
                    "source": cache.utterances[p.utterance].source})
        if len(out) >= CLOSEST:
            break
    return out


def _single_variant(pron: Pronunciation, combo: Sequence[tuple[str, ...]]) -> Pronunciation:
    return Pronunciation(pron.text, pron.lang,
                         tuple(Word(w.text, (v,), w.guessed) for w, v in zip(pron.words, combo)))


def _recording_logposts(recordings, lang: str) -> list[tuple[str, np.ndarray]]:
    from . import _core
    from .acoustic import AcousticModel
    from .audio import load_audio

    am = AcousticModel.default(lang)
    fe = _core.FrontEnd()
    out = []
    for i, rec in enumerate(recordings):
        if isinstance(rec, np.ndarray):
            name, pcm = f"recording {i + 1}", np.ascontiguousarray(rec, np.int16)
        else:
            name, pcm = str(rec), load_audio(rec)
        fe.reset()
        feats = np.empty((len(pcm) // fe.frame_shift + 2, fe.n_mels), np.float32)
        n = fe.process(pcm, feats)
        out.append((name, am.log_posteriors(feats[:n])))
    return out


def _best_scores(model: KeywordModel, logpost: np.ndarray) -> np.ndarray:
    """Best score of each keyword anywhere in ``logpost`` (-inf where none)."""
    from .decoder import NO_SCORE, KeywordDecoder

    dec = KeywordDecoder(model)
    for k in range(len(model.keywords)):
        dec.set_threshold(k, 0.0)
    sc = np.zeros((len(logpost), len(model.keywords)), np.float32)
    if len(logpost):
        dec.process(logpost, sc)
    sc[sc <= NO_SCORE] = -np.inf
    return sc.max(axis=0) if len(logpost) else np.full(len(model.keywords), -np.inf)


def _pick_variant(pron: Pronunciation, logposts, phone_set, states_per_phone: int | Mapping[str, int],
                  weight: float = DEFAULT_UNCERTAINTY_WEIGHT, cache: "cal.NegativeCache | None" = None,
                  budget: float | None = None):
    """The single-variant pronunciation that fits the recordings best, and its scores.

    With a negative cache and a budget, "best" is the largest margin of the recordings'
    mean score over the threshold each candidate would be calibrated to: a reading that
    everyday speech also comes close to (a shorter one, say "kakao" as K AH K AA) fits a
    recording more easily but needs a higher threshold, which this weighs. Without them
    (an explicit threshold, or no cache), the highest mean score."""
    combos = list(itertools.islice(itertools.product(*[w.variants for w in pron.words]),
                                   MAX_VARIANT_COMBINATIONS))
    cands = [_single_variant(pron, c) for c in combos]
    graphs = [build_graph(p, phone_set, threshold=0.0, states_per_phone=states_per_phone, name=f"v{i}")
              for i, p in enumerate(cands)]
    model = KeywordModel(phone_set=phone_set, keywords=graphs, uncertainty_weight=weight, best_pays=weight > 0)
    scores = np.array([_best_scores(model, lp) for _, lp in logposts])  # recordings x variants
    fit = np.where(np.isfinite(scores), scores, -100.0).mean(axis=0)
    if cache is not None and budget is not None and len(cands) > 1:
        fit = fit - np.array([c.threshold for c in cal.calibrate(model, cache, budget, reference=DEFAULT_THRESHOLD)])
    best = int(np.argmax(fit))
    return cands[best], scores[:, best], len(cands)


def _check_budget(value) -> float:
    why = cal.budget_error(value)
    if why:
        raise BudgetError(why)
    return float(value)


def check_uncertainty_weight(weight: float) -> float:
    """The decoder's uncertainty weight if it is one the format and the firmware accept
    (0 to MAX_UNCERTAINTY_WEIGHT, finite), else KwsError saying what to give instead; shared by
    enrolment and the tools that score as enrolled keywords are scored."""
    if not (math.isfinite(weight) and 0.0 <= weight <= MAX_UNCERTAINTY_WEIGHT):
        raise KwsError(f"uncertainty weight must be 0 to {MAX_UNCERTAINTY_WEIGHT:g} (got {weight}); "
                       f"the default is {DEFAULT_UNCERTAINTY_WEIGHT:g}, 0 writes format 1.1")
    return float(weight)


# --------------------------------------------------------------------------- enrolment
def _compile_and_report(prons: list[Pronunciation], lang: str, *, threshold: float | None,
                        budget: float | None, states_per_phone: int | None, cache, recordings,
                        base: KeywordModel | None, strict: bool, weight: float | None = None) -> Enrollment:
    phone_set = get_phone_set(lang)
    if weight is None:
        weight = base.uncertainty_weight if base is not None else DEFAULT_UNCERTAINTY_WEIGHT
    else:
        weight = check_uncertainty_weight(weight)
    if states_per_phone is None:  # measured per-phone minimum durations, else the default count
        states_per_phone = phone_min_frames(phone_set) or DEFAULT_STATES_PER_PHONE
    explicit_budget = budget is not None
    budget_f = _check_budget(budget) if explicit_budget else DEFAULT_MAX_FALSE_ALARMS_PER_HOUR
    if threshold is not None and not (np.isfinite(threshold) and threshold <= 0):
        raise BudgetError(f"threshold must be a number <= 0 (got {threshold}); scores are log-ratios")

    notes: list[str] = []
    source = None
    try:
        cache_obj = _resolve_cache(cache, lang, phone_set.id)
    except cal.CalibrationUnavailable as exc:
        if threshold is None and (explicit_budget or cache is not None):
            raise
        cache_obj = None
        if threshold is None:
            notes.append(f"not calibrated, threshold {DEFAULT_THRESHOLD} used: {exc}")

    rec_info = None
    if recordings:
        recordings = list(recordings)
        if len(prons) != 1:
            raise RecordingError("recordings can only be given with a single wake word")
        if len(recordings) > MAX_RECORDINGS:
            raise RecordingError(f"{len(recordings)} recordings given; give one to {MAX_RECORDINGS}")
        logposts = _recording_logposts(recordings, lang)
        chosen, rec_scores, n_variants = _pick_variant(prons[0], logposts, phone_set, states_per_phone, weight,
                                                       cache_obj, budget_f if threshold is None else None)
        prons = [chosen]
        rec_info = (logposts, rec_scores, n_variants)

    graphs = [build_graph(p, phone_set, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                          states_per_phone=states_per_phone) for p in prons]
    if base is not None:  # added keywords are scored on the scale of the model they join
        new = dataclasses.replace(base, keywords=graphs)
    else:
        new = KeywordModel(phone_set=phone_set, keywords=graphs, uncertainty_weight=weight, best_pays=weight > 0)

    reports: list[rep.KeywordReport] = []
    cals = (cal.calibrate(new, cache_obj, budget_f, explicit=threshold, reference=DEFAULT_THRESHOLD)
            if cache_obj is not None else [None] * len(graphs))
    if cache_obj is not None:
        source = {"path": cache_obj.path or None, "hours": round(cache_obj.hours, 3),
                  "utterances": len(cache_obj.utterances), "sources": cache_obj.meta.get("sources"),
                  "acoustic_sha256": cache_obj.meta.get("acoustic_sha256")}
    for pron, kw, kc in zip(prons, graphs, cals):
        info: dict = {"calibrated": False, "budget": budget_f}
        closest: list[dict] = []
        if kc is not None:
            kw.threshold = kc.threshold
            kw.expected_fa_per_hour = float(kc.expected_fa_per_hour)
            if kc.calibration is not None:
                c = kc.calibration
                info.update(calibrated=True, method=c.method, reachable=c.reachable,
                            expected_fa_per_hour=round(c.expected_fa_per_hour, 4))
            else:
                info.update(explicit=True)
            info.update(hours=round(kc.hours, 3), detections_in_sample=kc.detections,
                        fa_per_hour_at_reference=round(kc.fa_per_hour_at_reference, 3))
            closest = _closest(cache_obj, kc.scan_peaks)
        elif threshold is not None:
            info.update(explicit=True)
        r = rep.KeywordReport(
            keyword=kw.name, pronunciation=str(pron), syllables=rep.count_syllables(pron),
            phones=rep.count_phones(pron), threshold=float(kw.threshold),
            expected_fa_per_hour=kw.expected_fa_per_hour if kw.expected_fa_per_hour >= 0 else None,
            calibration=info, closest=closest, uncertainty_weight=new.uncertainty_weight,
            best_pays=new.best_pays)
        rep.add_length_warnings(r, lang)
        rep.add_calibration_warnings(r)
        if rec_info is None:
            rep.add_guess_warnings(r, pron)
        reports.append(r)

    if rec_info is not None:
        logposts, rec_scores, n_variants = rec_info
        r, kw = reports[0], graphs[0]
        if n_variants > 1:
            r.variant = str(prons[0])
        for (name, _), s in zip(logposts, rec_scores):
            ok = bool(np.isfinite(s) and s >= kw.threshold)
            margin = float(s - kw.threshold) if np.isfinite(s) else None
            r.recordings.append({"file": name, "score": float(s) if np.isfinite(s) else None,
                                 "margin": margin, "detected": ok})
            if not ok:
                r.warnings.append(rep.Warning(
                    "recording", f"{kw.name!r} is not detected in {name} (score "
                                 f"{'none' if margin is None else f'{s:.2f}'} < threshold {kw.threshold:.2f})",
                    "say it as typed, closer to the microphone, or allow more false alarms"))
            elif margin < rep.MIN_MARGIN:
                r.warnings.append(rep.Warning(
                    "margin", f"{kw.name!r} passes in {name} by only {margin:.2f}",
                    "re-record closer to the microphone or allow more false alarms", weak=False))

    full = dataclasses.replace(new, keywords=(list(base.keywords) if base else []) + graphs)
    rep.add_confusion(reports, full)
    for r in reports:
        r.quality = rep.quality(r)
    report = rep.Report(reports, budget_f if threshold is None else None, source, notes)
    if strict:
        for r in reports:
            weak = [w for w in r.warnings if w.weak]
            if weak:
                raise WeakWakeWordError(f"weak wake word: {weak[0]} (drop --strict to enrol it anyway)")
    return Enrollment(full, prons, report)


def _pronounce_all(texts, lang: str, existing: Iterable[str] = (), guesses: int = 1,
                   phones: Mapping[str, str] | None = None) -> list[Pronunciation]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise PronunciationError("no wake word given: pass at least one text")
    get_phone_set(lang)
    phones = dict(phones or {})
    unknown = [k for k in phones if k not in texts]
    if unknown:
        raise PronunciationError(f"phones given for {unknown[0]!r}, which is not one of the wake words "
                                 f"({', '.join(repr(t) for t in texts)})")
    prons = [with_phones(pronounce(t, lang), phones[t]) if t in phones else pronounce(t, lang, guesses=guesses)
             for t in texts]
    seen: dict[str, str] = {n: n for n in existing}
    for t, p in zip(texts, prons):
        if p.text in seen:
            where = "is already in the model" if p.text in existing else f"is given twice (as {seen[p.text]!r})"
            raise PronunciationError(f"wake word {t!r} {where}; give each once")
        seen[p.text] = t
    return prons


def enroll(
    texts: str | Iterable[str],
    lang: str | None = None,
    *,
    threshold: float | None = None,
    max_false_alarms_per_hour: float | None = None,
    states_per_phone: int | None = None,
    recordings: Sequence[str | os.PathLike | np.ndarray] | None = None,
    strict: bool = False,
    cache: "cal.NegativeCache | str | os.PathLike | None" = None,
    uncertainty_weight: float | None = None,
    phones: Mapping[str, str] | None = None,
) -> Enrollment:
    """Compile one or more wake words typed as text into one calibrated keyword model.

    ``lang`` ("ko" or "en") defaults to the texts' script (:func:`kws.pronunciation.guess_language`:
    Hangul is Korean, Latin letters English; mixed or letterless text must name it).

    Each keyword's threshold is set so that it fires at most ``max_false_alarms_per_hour``
    (default 0.5) times per hour on real keyword-free speech (the shipped negative cache,
    or ``cache``). An explicit ``threshold`` overrides calibration (the expected rate at
    it is still stored when a cache is available). Without a usable shipped cache and
    without an explicit budget, the fixed :data:`DEFAULT_THRESHOLD` is used and the report
    says so; with an explicit budget that is an error.

    ``states_per_phone`` (1 to 8) gives every phone that many HMM states, i.e. that
    minimum duration in frames; by default each phone gets its measured minimum
    (:func:`kws.graph.phone_min_frames`, docs/decoder.md).

    ``recordings`` (1 to 3 files or 16 kHz int16 arrays of the user saying the single
    wake word) pick the pronunciation variant that fits the speaker (for a word the
    dictionary lacks, among the G2P model's likely readings) and are checked for detection
    with margin. ``strict`` turns weak-wake-word warnings into
    :class:`WeakWakeWordError`. All errors are :class:`kws.KwsError` with one line.

    ``phones`` maps a text (as given) to its phones set by hand, in the report's notation
    (``{"hey kaia": "HH EY | K AY AH"}``, :func:`kws.pronunciation.with_phones`): for a word
    the dictionary lacks, one of the readings the report lists as ``also_likely``.

    ``uncertainty_weight`` (default :data:`~kws.model_file.DEFAULT_UNCERTAINTY_WEIGHT`,
    0.5) is the decoder's penalty on unsure frames (docs/decoder.md), paid by every keyword
    phone (format 2.1); 0 writes a format-1.1 model, which devices whose firmware predates
    format 2.1 can still read.
    """
    if lang is None:
        lang = guess_language(texts)
    # With a recording, a word the dictionary lacks gets the G2P model's likely readings
    # and the recording picks one; from text alone its most likely reading.
    prons = _pronounce_all(texts, lang, guesses=MAX_VARIANTS if recordings else 1, phones=phones)
    return _compile_and_report(prons, lang, threshold=threshold, budget=max_false_alarms_per_hour,
                               states_per_phone=states_per_phone, cache=cache, recordings=recordings,
                               base=None, strict=strict, weight=uncertainty_weight)


def add_keywords(model: KeywordModel, texts: str | Iterable[str], *, threshold: float | None = None,
                 max_false_alarms_per_hour: float | None = None,
                 states_per_phone: int | None = None, strict: bool = False,
                 cache=None) -> Enrollment:
    """Add wake words to an existing model; the keywords already in it are kept as they are
    (graphs, thresholds, rates). The returned Enrollment's model holds all keywords."""
    lang = model.phone_set.lang
    prons = _pronounce_all(texts, lang, existing=model.names)
    return _compile_and_report(prons, lang, threshold=threshold, budget=max_false_alarms_per_hour,
                               states_per_phone=states_per_phone, cache=cache, recordings=None,
                               base=model, strict=strict)


def remove_keywords(model: KeywordModel, names: str | Iterable[str]) -> KeywordModel:
    """A copy of ``model`` without the named keywords (the others unchanged)."""
    if isinstance(names, str):
        names = [names]
    names = list(names)
    missing = [n for n in names if n not in model.names]
    if missing:
        raise KwsError(f"keyword {missing[0]!r} is not in the model (it has: {', '.join(model.names)})")
    keep = [k for k in model.keywords if k.name not in names]
    if not keep:
        raise KwsError("cannot remove every keyword: a model needs at least one")
    return dataclasses.replace(model, keywords=keep)
