"""Threshold calibration against real keyword-free speech (docs/calibration.md).

The *negative cache* holds the shipped acoustic model's per-frame phone log-posteriors
of real speech, compactly: per frame only the phones within ``BAND`` nats of the best
(those are the only ones whose emission can be above the decoder's floor), as
``uint8`` steps of ``1/STEP`` nat below the best, at most ``MAX_PHONES_PER_FRAME`` per
frame. With it come each utterance's transcript, source and speech span, and the
sha256 of the acoustic model the posteriors came from: a cache computed with another
model is refused (``CalibrationUnavailable``), never used silently.

Calibration runs the C decoder (:class:`kws.decoder.KeywordDecoder`) over the cached
posteriors of every utterance whose transcript does not contain the keyword, at a very
low threshold, collects the detections' peak scores, and picks the lowest threshold at
which the keyword fires at most ``F`` times per hour (with an exponential fit to the
top scores when ``F`` is below what the cached hours can resolve).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import KwsError
from .model_file import KeywordModel

CACHE_DIR = Path(__file__).resolve().parent / "data" / "calibration"
ACOUSTIC_DIR = Path(__file__).resolve().parent / "data" / "acoustic"
#: The front end the detector runs (kws_core's default: log-mel with level control); a
#: shipped cache computed through another is stale like one from another network.
FRONT_END = "log-mel, level control"
CACHE_VERSION = 2  # 2: each frame's best log-posterior too (the decoder's uncertainty weight needs it)
#: Phones kept per frame: those within BAND nats of the frame's best phone.
BAND = 6.0
#: Quantisation: uint8 value q means log p(phone) - log p(best) = -q / STEP.
STEP = 16.0
#: At most this many phones per frame (a real model rarely has more within BAND).
MAX_PHONES_PER_FRAME = 12
#: What a phone outside the stored band is decoded as: below any emission floor >= -BAND.
OUTSIDE = -(BAND + 4.0)
#: Decoding threshold for calibration: every local score peak becomes a detection.
SCAN_THRESHOLD = -5.9
#: Lowest threshold calibration will set, whatever the budget allows (a keyword whose
#: phones match this badly on average is not the keyword).
MIN_THRESHOLD = -2.0
#: Budget range accepted (false alarms per hour).
MIN_BUDGET = 0.01
MAX_BUDGET = 60.0
#: Default budget. Measured held out (docs/calibration.md, "Why 0.5/h by default"): it
#: fires 0.10-0.28/h on clean everyday speech and about 1/h in speech mixed with noise at
#: 10 dB; 1/h would miss fewer wake words but fire about 1.8/h in that noise.
DEFAULT_BUDGET = 0.5
#: Below this many allowed false alarms in the cached hours, extrapolate with the tail fit.
EMPIRICAL_MIN_COUNT = 20
#: Number of top peak scores the exponential tail is fitted to.
TAIL_POINTS = 30
#: In-sample false alarms always tolerated where the tail fit stays within the budget.
#: Where the cached hours allow none, the empirical rule would put the threshold just above
#: the single best-scoring negative: one odd utterance then decides it (a statistic of
#: high variance), and the tail fit over the top TAIL_POINTS peaks is the better estimate.
MIN_ALLOWED = 1


def in_sample_allowance(budget: float, hours: float, tail) -> int:
    """In-sample detections the thresholds may leave: the budget's share of the cached
    hours, but at least :data:`MIN_ALLOWED` where a tail fit (``tail``) can judge them."""
    allowed = int(math.floor(budget * hours + 1e-9))
    return max(allowed, MIN_ALLOWED) if tail is not None else allowed


def _fit_decides(count: int, tail) -> bool:
    """Whether ``count`` in-sample peaks are too few to be a rate of their own, so that the
    tail fit alone gives the rate (the rule behind :data:`MIN_ALLOWED`)."""
    return tail is not None and count <= MIN_ALLOWED


class CalibrationUnavailable(KwsError):
    """No usable negative cache (missing, stale or foreign); says how to fix it."""


def budget_error(value: float) -> str | None:
    """One-line reason why ``value`` is not a usable false-alarm budget, or None."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not MIN_BUDGET <= value <= MAX_BUDGET:
        return (f"false-alarm budget must be between {MIN_BUDGET:g} and {MAX_BUDGET:g} per hour "
                f"(got {value}); 0.5 is a usual choice")
    return None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _sha_cached(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def acoustic_sha256(lang: str) -> str | None:
    """sha256 of the shipped acoustic model for ``lang`` (None if there is none)."""
    p = ACOUSTIC_DIR / f"{lang}.tflite"
    try:
        st = p.stat()
    except OSError:
        return None
    return _sha_cached(str(p), st.st_mtime_ns, st.st_size)


def normalise_text(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces (for keyword exclusion and words)."""
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).replace("_", " ").split())


def contains_keyword(text: str, keyword: str, lang: str) -> bool:
    """Whether an utterance transcript contains the keyword (so it is not a negative)."""
    t, k = normalise_text(text), normalise_text(keyword)
    if not k:
        return False
    if lang == "ko":
        return k.replace(" ", "") in t.replace(" ", "")
    return f" {k} " in f" {t} "


# --------------------------------------------------------------------------- cache
def quantise(logpost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """frames x phones log-posteriors -> (counts u8 per frame, phones u8, values u8, best u8).

    ``values`` are the kept phones' log-ratios to the frame's best phone, ``best`` that
    best phone's own log-posterior (``-best / STEP``, clipped at -255 / STEP): the ratios
    alone suffice for a format-1.x keyword, a 2.x keyword's uncertainty weight needs both.
    """
    x = np.asarray(logpost, np.float32)
    top = x.max(axis=1, keepdims=True)
    best = np.clip(np.round(-np.minimum(top[:, 0], 0.0) * STEP), 0, 255).astype(np.uint8)
    rel = x - top  # <= 0
    q = np.minimum(np.round(-rel * STEP), 255).astype(np.int32)
    keep = q <= int(BAND * STEP)
    k = min(MAX_PHONES_PER_FRAME, x.shape[1])
    order = np.argsort(q, axis=1, kind="stable")[:, :k]  # best first
    qs = np.take_along_axis(q, order, axis=1)
    ks = np.take_along_axis(keep, order, axis=1)
    counts = ks.sum(axis=1).astype(np.uint8)
    return counts, order[ks].astype(np.uint8), qs[ks].astype(np.uint8), best


def dequantise(counts: np.ndarray, phones: np.ndarray, values: np.ndarray, n_phones: int,
               best: np.ndarray) -> np.ndarray:
    """Log-posteriors back from :func:`quantise` (phones outside the band at :data:`OUTSIDE`
    below the best)."""
    out = np.full((len(counts), n_phones), OUTSIDE, np.float32)
    rows = np.repeat(np.arange(len(counts)), counts.astype(np.int64))
    out[rows, phones.astype(np.int64)] = -values.astype(np.float32) / STEP
    out -= (best.astype(np.float32) / STEP)[:, None]
    return out


def speech_span(logpost: np.ndarray, sil_index: int = 0) -> tuple[int, int]:
    """First and last frame whose best phone is not silence (whole utterance if none)."""
    best = np.argmax(logpost, axis=1)
    idx = np.flatnonzero(best != sil_index)
    if len(idx) == 0:
        return 0, max(0, len(logpost) - 1)
    return int(idx[0]), int(idx[-1])


@dataclass
class Utterance:
    text: str
    source: str
    speaker: str
    frames: int
    span: tuple[int, int]


@dataclass
class NegativeCache:
    """Cached posteriors of keyword-free speech, ready for the decoder."""

    meta: dict
    utterances: list[Utterance]
    counts: np.ndarray
    phones: np.ndarray
    values: np.ndarray
    best: np.ndarray  # per frame: the best phone's log-posterior, quantised (see quantise)
    path: str = ""
    _dense: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def lang(self) -> str:
        return self.meta["lang"]

    @property
    def hours(self) -> float:
        return sum(u.frames for u in self.utterances) * self.frame_shift_s / 3600.0

    @property
    def frame_shift_s(self) -> float:
        return self.meta.get("frame_shift_ms", 10) / 1000.0

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([u.frames for u in self.utterances])]).astype(np.int64)

    def dense(self) -> np.ndarray:
        """All frames as float32 log-posteriors (built once, then kept)."""
        with self._lock:
            if self._dense is None:
                self._dense = dequantise(self.counts, self.phones, self.values, int(self.meta["n_phones"]),
                                         self.best)
            return self._dense

    # -- files ---------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        meta = dict(self.meta)
        meta["utterances"] = [[u.text, u.source, u.speaker, u.frames, u.span[0], u.span[1]]
                              for u in self.utterances]
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8),
                            counts=self.counts, phones=self.phones, values=self.values, best=self.best)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "NegativeCache":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                if meta.get("version") != CACHE_VERSION:
                    raise CalibrationUnavailable(
                        f"{path}: calibration cache version {meta.get('version')}, this kws reads "
                        f"{CACHE_VERSION}; rebuild it with tools/build_calibration_cache.py")
                counts, phones, values, best = z["counts"], z["phones"], z["values"], z["best"]
        except FileNotFoundError:
            raise CalibrationUnavailable(f"{path}: no calibration cache; build one with "
                                         "tools/build_calibration_cache.py") from None
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise CalibrationUnavailable(f"{path}: not a calibration cache ({exc}); rebuild it with "
                                         "tools/build_calibration_cache.py") from None
        utts = [Utterance(t, s, spk, int(n), (int(a), int(b))) for t, s, spk, n, a, b in meta.pop("utterances")]
        if (sum(u.frames for u in utts) != len(counts) or int(counts.sum()) != len(phones)
                or len(phones) != len(values) or len(best) != len(counts)):
            raise CalibrationUnavailable(f"{path}: calibration cache is inconsistent; rebuild it")
        return cls(meta, utts, counts, phones, values, best, path=str(path))

    def check_fresh(self, lang: str, phone_set_id: int, acoustic_sha: str | None) -> None:
        """Refuse a cache for another language, phone set, acoustic model or front end."""
        name = self.path or "calibration cache"
        if self.meta.get("lang") != lang or int(self.meta.get("phone_set_id", -1)) != phone_set_id:
            raise CalibrationUnavailable(f"{name} is for {self.meta.get('lang')} / phone set "
                                         f"0x{int(self.meta.get('phone_set_id', 0)):08x}, not {lang}")
        if acoustic_sha is not None and self.meta.get("acoustic_sha256") != acoustic_sha:
            raise CalibrationUnavailable(
                f"{name} was computed with another acoustic model (sha256 {str(self.meta.get('acoustic_sha256'))[:12]}, "
                f"shipped {acoustic_sha[:12]}); rebuild it: python tools/build_calibration_cache.py --lang {lang}")
        if acoustic_sha is not None and self.meta.get("front_end", "log-mel") != FRONT_END:
            raise CalibrationUnavailable(
                f"{name} was computed through another front end ({self.meta.get('front_end', 'log-mel')!r}, "
                f"the detector runs {FRONT_END!r}); rebuild it: python tools/build_calibration_cache.py --lang {lang}")


def default_cache_path(lang: str) -> Path:
    return CACHE_DIR / f"{lang}.npz"


_DEFAULT: dict[tuple, NegativeCache] = {}
_DEFAULT_LOCK = threading.Lock()


def default_cache(lang: str) -> NegativeCache:
    """The shipped cache for ``lang``, loaded once per process and checked against the
    shipped acoustic model (raises CalibrationUnavailable if missing or stale)."""
    from .phonesets import get_phone_set

    path = default_cache_path(lang)
    try:
        st = path.stat()
        key = (lang, st.st_mtime_ns, st.st_size)
    except OSError:
        raise CalibrationUnavailable(f"no calibration cache shipped for {lang!r} ({path}); build it with "
                                     f"python tools/build_calibration_cache.py --lang {lang}") from None
    with _DEFAULT_LOCK:
        cache = _DEFAULT.get(key)
        if cache is None:
            cache = NegativeCache.load(path)
            _DEFAULT.clear()  # keep at most the current files
            _DEFAULT[key] = cache
    cache.check_fresh(lang, get_phone_set(lang).id, acoustic_sha256(lang))
    return cache


# --------------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class Peak:
    """A detection on negative speech at the scan threshold."""

    score: float
    utterance: int
    start: int  # frame within the utterance
    end: int


def scan(model: KeywordModel, cache: NegativeCache, exclude_texts: list[str] | None = None,
         at_model_thresholds: bool = False, best: np.ndarray | None = None,
         reach: np.ndarray | None = None) -> list[tuple[list[Peak], float]]:
    """Decode every cached utterance with every keyword of ``model`` at the scan threshold
    (or, with ``at_model_thresholds``, at the model's own thresholds: real detections).

    Returns, per keyword, its peaks (sorted by score, best first) and the hours of speech
    it was scored on (utterances whose transcript contains the keyword are left out).
    ``exclude_texts[k]`` is the text to exclude for keyword k (default: its name).
    ``best`` (shape ``[n_utterances, n_keywords]``), when given, receives each utterance's
    highest per-frame score (-inf where excluded): unlike the peaks, it cannot be hidden
    by the refractory period of an earlier, weaker candidate (a detection clears the
    keyword's paths, so it comes from a second decoder that never fires).

    ``reach`` (a ``best`` filled by an earlier scan of the same model and cache) skips
    the utterances where no keyword can fire, with the same result: until a keyword first
    fires in an utterance its paths are those of the never-firing decoder, so a keyword
    whose highest score there is below its threshold never fires there. Calibration
    decodes at raised thresholds three or more times, and this leaves a few dozen
    utterances to decode instead of all of them.
    """
    from .decoder import KeywordDecoder

    lang = cache.lang
    names = exclude_texts or model.names
    dec = KeywordDecoder(model)
    tracer = KeywordDecoder(model) if best is not None else None
    n_kw = len(model.keywords)
    thresholds = [k.threshold for k in model.keywords] if at_model_thresholds else [SCAN_THRESHOLD] * n_kw
    dense = cache.dense()
    offsets = cache.offsets
    peaks: list[list[Peak]] = [[] for _ in range(n_kw)]
    skip = [[contains_keyword(u.text, names[k], lang) if u.text else False for k in range(n_kw)]
            for u in cache.utterances]
    frames_used = np.zeros(n_kw)
    thr32 = np.asarray(thresholds, np.float32)
    for i, u in enumerate(cache.utterances):
        for k in range(n_kw):
            if not skip[i][k]:
                frames_used[k] += u.frames
        if reach is not None and tracer is None and not bool(np.any(reach[i] >= thr32)):
            continue  # no keyword reaches its threshold here: nothing can fire
        dec.reset()
        for k in range(n_kw):
            dec.set_threshold(k, thresholds[k])
        frames = dense[offsets[i]:offsets[i + 1]]
        dets = dec.process(frames) + dec.flush()
        if tracer is not None:
            tracer.reset()
            for k in range(n_kw):
                tracer.set_threshold(k, 0.0)  # scores are <= 0: it never fires, never clears
            trace = np.empty((len(frames), n_kw), np.float32)
            tracer.process(frames, trace)
            best[i] = trace.max(axis=0) if len(frames) else -np.inf
            best[i, np.array(skip[i], bool)] = -np.inf
        for d in dets:
            if not skip[i][d.keyword_index]:
                peaks[d.keyword_index].append(Peak(d.score, i, d.start_frame, d.end_frame))
    out = []
    for k in range(n_kw):
        p = sorted(peaks[k], key=lambda x: -x.score)
        out.append((p, float(frames_used[k] * cache.frame_shift_s / 3600.0)))
    return out


# --------------------------------------------------------------------------- threshold rule
@dataclass
class Calibration:
    threshold: float
    expected_fa_per_hour: float
    budget: float
    hours: float
    n_peaks: int
    method: str  # "empirical" or "tail-fit"
    reachable: bool
    tail: tuple[float, float, float] | None = None  # (t0, rate at t0, beta)

    def rate_at(self, t: float, scores: np.ndarray) -> float:
        return rate_at(t, scores, self.hours, self.tail)


def _tail_fit(scores: np.ndarray, hours: float) -> tuple[float, float, float] | None:
    m = min(TAIL_POINTS, len(scores))
    if m < 5:
        return None
    top = np.sort(scores)[::-1][:m]
    t0 = float(top[-1])
    beta = float(np.mean(top[:-1] - t0))
    if beta <= 1e-6:
        return None
    return t0, m / hours, beta


def rate_at(t: float, scores: np.ndarray, hours: float, tail=None) -> float:
    """Expected false alarms per hour at threshold ``t``: the count where it is large
    enough, the larger of count and tail fit above the fit's anchor (the fit alone where
    at most :data:`MIN_ALLOWED` peaks are above ``t``)."""
    count = int((scores >= t).sum())
    emp = count / hours if hours > 0 else math.inf
    if tail is None or t <= tail[0] or count >= EMPIRICAL_MIN_COUNT:
        return emp
    t0, r0, beta = tail
    fit = r0 * math.exp(-(t - t0) / beta)
    return float(fit if _fit_decides(count, tail) else max(emp, fit))


def min_threshold(model: KeywordModel) -> float:
    """The lowest threshold calibration sets for ``model``: :data:`MIN_THRESHOLD`, lowered
    by the model's uncertainty weight (format 2.0), which lowers every score it makes
    (by 0.16-0.53 for the bench keywords' calibrated thresholds at w = 0.5, docs/calibration.md),
    and by half as much again when the best phone pays it too (format 2.1: 0.20-0.66)."""
    w = float(model.uncertainty_weight)
    return MIN_THRESHOLD - w * (1.5 if model.best_phone_pays else 1.0)


def choose_threshold(scores: np.ndarray, hours: float, budget: float,
                     floor: float = MIN_THRESHOLD) -> Calibration:
    """Lowest threshold at which the keyword fires at most ``budget`` times per hour
    (never below ``floor``, :func:`min_threshold`)."""
    scores = np.sort(np.asarray(scores, np.float64))[::-1]
    if hours <= 0:
        raise CalibrationUnavailable("no negative speech left to calibrate on")
    few = math.floor(budget * hours + 1e-9) < EMPIRICAL_MIN_COUNT
    tail = _tail_fit(scores, hours) if few else None
    allowed = in_sample_allowance(budget, hours, tail)
    # empirical: just above the (allowed+1)-th best score
    if len(scores) > allowed:
        t_emp = float(np.nextafter(np.float32(scores[allowed]), np.float32(np.inf)))
    else:
        t_emp = SCAN_THRESHOLD
    method = "empirical"
    t = t_emp
    if tail is not None:
        t0, r0, beta = tail
        t_fit = t0 + beta * math.log(r0 / budget) if r0 > budget else t0
        if t_fit > t:
            t, method = t_fit, "tail-fit"
    reachable = True
    if t < floor:  # negatives never come close: do not open the keyword up to anything
        t, method = floor, "floor"
    if t > 0.0:
        t = 0.0
    t = float(np.float32(t))
    rate = float(rate_at(t, scores, hours, tail))
    if rate > budget * (1 + 1e-6):
        reachable = False
    elif rate == 0.0:
        # nothing fired in the cached hours and no tail to extrapolate: all we know is
        # that the rate is below what the hours resolve
        rate = min(budget, 1.0 / hours)
        method = method if method == "floor" else "bound"
    return Calibration(threshold=t, expected_fa_per_hour=rate, budget=budget, hours=hours,
                       n_peaks=len(scores), method=method, reachable=reachable, tail=tail)


# --------------------------------------------------------------------------- whole procedure
#: Stage-3 rounds that raise a threshold past an in-sample detection over the allowance.
EXACT_ROUNDS = 8


@dataclass
class KeywordCalibration:
    calibration: Calibration | None  # None for an explicit threshold
    threshold: float
    expected_fa_per_hour: float
    hours: float
    scan_peaks: list[Peak]  # the best-scoring utterances' peaks, best first (the closest phrases)
    detections: int  # in-sample detections at ``threshold``
    fa_per_hour_at_reference: float


def closest_peaks(model: KeywordModel, cache: NegativeCache, best: np.ndarray, n: int = 20) -> list[list[Peak]]:
    """Per keyword, the peaks of the ``n`` utterances with the highest scores (best first).

    Each is found by decoding that utterance again just below its best score, so the
    reported detection is the best one (no weaker candidate can fire first and hide it).
    """
    from .decoder import KeywordDecoder

    dense = cache.dense()
    offsets = cache.offsets
    out = []
    for k in range(len(model.keywords)):
        single = dataclasses.replace(model, keywords=[model.keywords[k]])
        dec = KeywordDecoder(single)
        peaks = []
        for i in np.argsort(-best[:, k], kind="stable")[:n]:
            if not np.isfinite(best[i, k]):
                break
            dec.reset()
            dec.set_threshold(0, float(np.nextafter(np.float32(best[i, k]), np.float32(-np.inf))))
            dets = dec.process(dense[offsets[i]:offsets[i + 1]]) + dec.flush()
            if dets:
                d = max(dets, key=lambda x: x.score)
                peaks.append(Peak(d.score, int(i), d.start_frame, d.end_frame))
        out.append(sorted(peaks, key=lambda x: -x.score))
    return out


def _with_thresholds(model: KeywordModel, thresholds) -> KeywordModel:
    import dataclasses

    kws = [dataclasses.replace(k, threshold=float(t)) for k, t in zip(model.keywords, thresholds)]
    return dataclasses.replace(model, keywords=kws)


def calibrate(model: KeywordModel, cache: NegativeCache, budget: float,
              explicit: float | None = None, reference: float = -1.0) -> list[KeywordCalibration]:
    """Thresholds for every keyword of ``model`` (all decoded together, three passes).

    1. Scan at :data:`SCAN_THRESHOLD`: every local score peak, for the closest phrases and to
       find a base threshold with about ``max(TAIL_POINTS, 2 (allowed + 1))`` peaks above it.
    2. Decode at that base threshold: these are the detector's real decisions (at a very low
       threshold one early low peak's refractory period can hide a later higher one, so
       scan peaks undercount what fires at a higher threshold). Their scores give the
       empirical rule and the exponential tail fit (:func:`choose_threshold`).
    3. Decode at the chosen thresholds; while a keyword fires more often in-sample than its
       allowance, raise its threshold just past its weakest detection (at most
       :data:`EXACT_ROUNDS` rounds).
    With ``explicit``, every keyword keeps that threshold and only its rate is estimated.
    """
    n = len(model.keywords)
    best = np.full((len(cache.utterances), n), -np.inf, np.float32)
    stage1 = scan(model, cache, best=best)
    closest = closest_peaks(model, cache, best)
    base = []
    for peaks, hours in stage1:
        allowed = int(math.floor(budget * hours + 1e-9))
        k = max(TAIL_POINTS, 2 * (allowed + 1))
        base.append(peaks[k - 1].score if len(peaks) >= k else SCAN_THRESHOLD)
    stage2 = scan(_with_thresholds(model, base), cache, at_model_thresholds=True, reach=best)
    out = []
    # stage-2 scores and their tail fit per keyword, used again for the final rates
    stage2_scores = [np.array([p.score for p in peaks]) for peaks, _ in stage2]
    tails = [_tail_fit(stage2_scores[k], stage1[k][1]) for k in range(n)]
    for k in range(n):
        scores, tail = stage2_scores[k], tails[k]
        hours = stage1[k][1]
        ref = rate_at(reference, scores, hours, tail) if reference >= base[k] else \
            len([p for p in stage1[k][0] if p.score >= reference]) / hours
        if explicit is not None:
            out.append(KeywordCalibration(None, float(explicit), 0.0, hours, closest[k], 0, ref))
            continue
        c = choose_threshold(scores, hours, budget, min_threshold(model))
        out.append(KeywordCalibration(c, c.threshold, c.expected_fa_per_hour, hours, closest[k], 0, ref))
    for rnd in range(EXACT_ROUNDS + 1):
        res = scan(_with_thresholds(model, [c.threshold for c in out]), cache, at_model_thresholds=True,
                   reach=best)
        again = False
        for k, (peaks, hours) in enumerate(res):
            c = out[k]
            c.detections = len(peaks)
            allowed = in_sample_allowance(budget, hours, tails[k])
            if (c.calibration is not None and len(peaks) > allowed and c.threshold < 0.0
                    and rnd < EXACT_ROUNDS):
                c.threshold = float(min(0.0, np.nextafter(np.float32(min(p.score for p in peaks)), np.float32(1))))
                c.calibration.threshold = c.threshold
                again = True
        if not again:
            break
    for k, c in enumerate(out):
        # the rate at the final threshold: the in-sample count, or the tail fit where larger
        fit_rate = rate_at(c.threshold, stage2_scores[k], c.hours, tails[k])
        rate = fit_rate if _fit_decides(c.detections, tails[k]) else max(c.detections / c.hours, fit_rate)
        if c.calibration is not None:
            if rate == 0.0:
                rate = min(budget, 1.0 / c.hours)  # nothing fired and nothing to extrapolate
            c.calibration.expected_fa_per_hour = rate
            c.calibration.reachable = rate <= budget * (1 + 1e-6)
        c.expected_fa_per_hour = float(rate)
    return out


# --------------------------------------------------------------------------- words
def words_at(cache: NegativeCache, peak: Peak, context: int = 0) -> str:
    """The words of the utterance around a peak, placed by proportional time over the
    utterance's speech span (each word's share proportional to its length in letters)."""
    u = cache.utterances[peak.utterance]
    words = normalise_text(u.text).split()
    if not words:
        return ""
    a, b = u.span
    if b <= a:
        a, b = 0, max(1, u.frames - 1)
    weights = np.array([len(w) + 1 for w in words], np.float64)
    edges = a + (b - a + 1) * np.concatenate([[0], np.cumsum(weights)]) / weights.sum()
    s, e = peak.start, peak.end + 1
    hit = [i for i in range(len(words)) if edges[i] < e and edges[i + 1] > s]
    if not hit:
        mid = (s + e) / 2
        hit = [int(np.clip(np.searchsorted(edges, mid) - 1, 0, len(words) - 1))]
    lo, hi = max(0, hit[0] - context), min(len(words), hit[-1] + 1 + context)
    return " ".join(words[lo:hi])
