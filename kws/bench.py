"""False-alarm benchmark: false rejections and false alarms per hour over a threshold sweep.

The command is ``kws-bench`` (:mod:`kws.bench_cli`); this module holds the parts a test or
another tool can call: reading positives and negatives (:func:`load_set`), the sweep
(:func:`sweep`, :func:`frr_at_budget`), the mixed-stream layout and rendering
(:func:`plan_mix`, :func:`render_chunk`), decoding on the host or in the firmware
(:func:`decode_units`) and the host/device comparison (:func:`compare`).

How the sweep works: every clip (or mixed stream) is decoded once with every keyword's
threshold overridden to a very low value (the model's emission floor + 0.01, where
nearly every stretch of audio gives a candidate) and every detection's score is kept. A
detection with score ``s`` is taken to fire at every threshold ``t <= s``, so one decode
gives the whole curve. This is exact for the scores but not for the decoder's peak
picking: at the low threshold a weak candidate may start a refractory period (100
frames) that, at a higher threshold, would not exist, so the sweep can miss a
detection that the stored threshold would report; ``docs/bench.md`` discusses it.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import KwsError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}
FLOOR_MARGIN = 0.01
SAMPLE_RATE = 16000
BUDGETS = (1.0, 0.5)


class BenchError(KwsError, ValueError):
    """Bad benchmark input (missing path, empty folder, no matching keyword...)."""


# --------------------------------------------------------------------------- inputs

def normalise_text(text: str) -> str:
    """Lower case, punctuation dropped (``Hey, Jarvis!`` -> ``hey jarvis``), spaces collapsed;
    ``_`` and ``-`` count as spaces."""
    t = unicodedata.normalize("NFKC", text).lower().replace("_", " ").replace("-", " ")
    t = "".join(ch for ch in t if not unicodedata.category(ch).startswith("P"))
    return " ".join(t.split())


@dataclass(frozen=True)
class Clip:
    path: str
    duration_s: float
    speaker: str = ""          # "" when unknown
    keyword: str | None = None  # positives: the model's keyword name
    contains: tuple[str, ...] = ()  # negatives (match=contains): keywords its text contains,
                                    # for which it is not a negative


@dataclass
class ClipSet:
    clips: list[Clip] = field(default_factory=list)
    skipped: int = 0                       # positives whose text names no keyword
    unlabelled: int = 0                    # clips without a speaker label
    sources: list[str] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return sum(c.duration_s for c in self.clips) / 3600.0

    def hours_for(self, keyword: str) -> float:
        """Negative hours for one keyword: the clips whose text does not contain it."""
        return sum(c.duration_s for c in self.clips if keyword not in c.contains) / 3600.0

    @property
    def containing(self) -> int:
        """Negatives (match=contains) whose text contains some keyword."""
        return sum(1 for c in self.clips if c.contains)

    @property
    def speakers(self) -> int | str:
        """Distinct speakers; "unknown" when no clip has a label (bare folders)."""
        labelled = {c.speaker for c in self.clips if c.speaker}
        return len(labelled) if labelled else "unknown"

    def speakers_text(self) -> str:
        s = self.speakers
        if s == "unknown":
            return "unknown"
        n_unl = sum(1 for c in self.clips if not c.speaker)
        return f"{s}" + (f" (+{n_unl} clips unlabelled)" if n_unl else "")


def _read_manifest(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BenchError(f"{path}: cannot read manifest ({exc})") from None
    need = {"path", "duration_s", "speaker", "text"}
    if rows and not need <= set(rows[0]):
        raise BenchError(f"{path}: manifest needs the columns path,duration_s,speaker,lang,text")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            dur = float(r["duration_s"])
        except (TypeError, ValueError):
            raise BenchError(f"{path}: line {i}: duration_s {r.get('duration_s')!r} is not a number") from None
        out.append({"path": str(path.parent / r["path"]), "duration_s": dur,
                    "speaker": (r.get("speaker") or "").strip(), "text": r.get("text") or ""})
    return out


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def _duration(path: Path) -> float:
    from .audio import probe
    return probe(path).duration_s


MATCH_MODES = ("exact", "contains")


def text_names(text: str, names: dict[str, str], match: str) -> list[str]:
    """The keywords a manifest text names (model order; empty when none).

    ``exact``: the whole normalised text is a keyword name (one wake word per clip, as
    in wake-word collections). ``contains``: every keyword name that occurs in the text
    starting at a word start (``고객님`` in ``고객님께서``, ``jarvis`` in ``hey jarvis
    please``, not ``view glass`` in ``preview glasses``, which starts mid-word). The end
    is left free because Korean particles attach to the word (``비행기를``).
    """
    t = normalise_text(text)
    if match == "exact":
        return [names[t]] if t in names else []
    padded = " " + t
    return [name for norm, name in names.items() if norm and (" " + norm) in padded]


def load_set(paths: Iterable[str | os.PathLike], role: str, keyword_names: list[str] | None = None,
             match: str = "exact") -> ClipSet:
    """Read positives (``role="positives"``, with the model's ``keyword_names``) or negatives.

    A path is a ``manifest.csv`` (or any .csv in that layout), a folder holding a
    ``manifest.csv`` (which is then used), or a bare folder (every audio file inside,
    recursively; speakers unknown). A positive's keyword is its manifest text matched to
    a keyword name (case and punctuation ignored; ``match`` says how, see
    :func:`text_names`), or, in a bare folder, the model's keyword when it has exactly one.

    With ``match="contains"`` and ``keyword_names`` given for negatives, a clip whose text
    contains a keyword is a negative of the other keywords only (``Clip.contains``;
    :meth:`ClipSet.hours_for`): the same manifest of running speech can then serve as
    both sets, and a sentence with ``고객님`` in it still counts against ``비행기``. A positive
    naming two keywords appears once per keyword. Raises BenchError with one line on bad
    input.
    """
    if match not in MATCH_MODES:
        raise BenchError(f"match must be one of {', '.join(MATCH_MODES)} (got {match!r})")
    out = ClipSet()
    names = {normalise_text(n): n for n in (keyword_names or [])}
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise BenchError(f"{role}: {p}: no such file or folder")
        out.sources.append(str(p))
        manifest = p if p.is_file() else (p / "manifest.csv" if (p / "manifest.csv").is_file() else None)
        if p.is_file() and p.suffix.lower() != ".csv":
            raise BenchError(f"{role}: {p}: expected a folder or a manifest.csv, got a file")
        if manifest is not None:
            rows = _read_manifest(manifest)
            if not rows:
                raise BenchError(f"{role}: {manifest}: manifest lists no clips")
            for r in rows:
                if role == "positives":
                    kws = text_names(r["text"], names, match)
                    if not kws:
                        out.skipped += 1
                        continue
                    # a clip naming two keywords is a positive of each (decoded once per keyword)
                    out.clips += [Clip(r["path"], r["duration_s"], r["speaker"], k) for k in kws]
                    continue
                inside = tuple(text_names(r["text"], names, match)) if names and match == "contains" else ()
                out.clips.append(Clip(r["path"], r["duration_s"], r["speaker"], None, inside))
        else:
            files = _audio_files(p)
            if not files:
                raise BenchError(f"{role}: {p}: folder holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})")
            kw = None
            if role == "positives":
                if len(names) != 1:
                    raise BenchError(f"{role}: {p}: a folder without manifest.csv needs a model with exactly one "
                                     f"keyword (this one has {len(names)}); give a manifest whose text names the keyword")
                kw = next(iter(names.values()))
            for f in files:
                out.clips.append(Clip(str(f), _duration(f), "", kw))
    if not out.clips:
        if role == "positives":
            raise BenchError(f"positives: no clip's text names one of the model's keywords "
                             f"({', '.join(keyword_names or [])}); {out.skipped} rows skipped")
        raise BenchError(f"{role}: no clips")
    out.unlabelled = sum(1 for c in out.clips if not c.speaker)
    return out


def subset(clips: list[Clip], n: int) -> list[Clip]:
    """``n`` clips spread evenly over the list (every keyword of a sorted manifest gets some)."""
    if n <= 0 or n >= len(clips):
        return list(clips)
    idx = np.unique(np.linspace(0, len(clips) - 1, n).round().astype(int))
    return [clips[i] for i in idx]


# --------------------------------------------------------------------------- sweep

def threshold_grid(floor: float) -> list[float]:
    """The decoder thresholds every clip is decoded at (ascending): the emission floor +
    0.01, coarse steps to -1, then every 0.025 up to 0. The network runs once per clip;
    only the (cheap) C decoder runs once per level."""
    coarse = [-4.0, -3.0, -2.5, -2.0, -1.75, -1.5, -1.25]
    fine = [round(-1.0 + 0.025 * i, 3) for i in range(40)]
    low = floor + FLOOR_MARGIN
    return [low] + [t for t in coarse + fine if t > low]


def _candidates(grid: list[float], fa_levels: list[np.ndarray], best_levels: list[np.ndarray]):
    """Every threshold at which the counts can change: the grid points and, within each
    level's range, just above each false-alarm score and at each positive's score."""
    out = []
    for k, g in enumerate(grid):
        hi = grid[k + 1] if k + 1 < len(grid) else math.inf
        x = np.concatenate([np.nextafter(fa_levels[k], math.inf), best_levels[k]]) if len(grid) else np.zeros(0)
        x = x[np.isfinite(x) & (x > g) & (x < hi)]
        out.append(np.unique(np.concatenate([[g], x])))
    return out


def sweep_levels(grid: list[float], best_levels: list, fa_levels: list, hours: float):
    """The DET curve from decodes at several thresholds (``grid``, ascending): at threshold
    ``t`` the detections are those of the highest level ``g_k <= t`` that score ``>= t``.
    Exact at the grid points; in between, as a single decode at ``g_k``. Returns
    (thresholds, FRR, FA/h), ascending thresholds."""
    best_levels = [np.asarray(b, float) for b in best_levels]
    fa_levels = [np.sort(np.asarray(f, float)) for f in fa_levels]
    th, frr, fah = [], [], []
    for k, cands in enumerate(_candidates(grid, fa_levels, best_levels)):
        b = np.sort(best_levels[k])
        nb = max(len(b), 1)
        undetected = np.isneginf(b).sum()
        fin = b[np.isfinite(b)]
        frr.append((np.searchsorted(fin, cands, side="left") + undetected) / nb)
        fah.append((len(fa_levels[k]) - np.searchsorted(fa_levels[k], cands, side="left")) / hours)
        th.append(cands)
    if not th:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return np.concatenate(th), np.concatenate(frr), np.concatenate(fah)


def frr_at_budget_levels(grid, best_levels, fa_levels, hours: float, budget: float) -> tuple[float, float]:
    """(FRR, threshold): the lowest FRR over the thresholds whose false alarms per hour are
    <= budget, at the lowest such threshold (FRR 1 when none is)."""
    th, frr, fah = sweep_levels(grid, best_levels, fa_levels, hours)
    ok = np.flatnonzero(fah <= budget + 1e-12)
    if len(ok) == 0:
        return 1.0, math.inf
    i = ok[np.argmin(frr[ok])]   # levels need not nest exactly: the best FRR within budget, lowest t on ties
    return float(frr[i]), float(th[i])


def frr_at_budget(best: np.ndarray, fa_scores: np.ndarray, hours: float, budget: float) -> tuple[float, float]:
    """One decode (a single level at -inf): (FRR, threshold) at the lowest threshold whose
    false alarms per hour are <= budget. ``best``: each positive's best score for its
    keyword (-inf when never detected); ``fa_scores``: the false alarms' scores. With
    ``n = floor(budget * hours)`` false alarms allowed, the threshold sits just above the
    (n+1)-th highest false-alarm score; with fewer false alarms than that, at -inf."""
    best = np.asarray(best, float)
    fa = np.sort(np.asarray(fa_scores, float))[::-1]
    allowed = int(math.floor(budget * hours + 1e-9))
    t = -math.inf if len(fa) <= allowed else float(np.nextafter(fa[allowed], math.inf))
    frr = float(((best < t) | np.isneginf(best)).mean()) if len(best) else float("nan")
    return frr, t


def rates_at(best: np.ndarray, fa_scores: np.ndarray, hours: float, threshold: float) -> tuple[float, float]:
    """(FRR, false alarms per hour) at one threshold."""
    best = np.asarray(best, float)
    fa = np.asarray(fa_scores, float)
    frr = float(((best < threshold) | np.isneginf(best)).mean()) if len(best) else float("nan")
    return frr, float((fa >= threshold).sum() / hours) if hours > 0 else float("nan")


def sweep(best: np.ndarray, fa_scores: np.ndarray, hours: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One decode: thresholds (every distinct score, ascending), FRR and FA/h at each."""
    best = np.asarray(best, float)
    fa = np.sort(np.asarray(fa_scores, float))
    th = np.unique(np.concatenate([best[np.isfinite(best)], fa]))
    bs = np.sort(best)
    frr = np.searchsorted(bs, th, side="left") / max(len(bs), 1)
    fah = (len(fa) - np.searchsorted(fa, th, side="left")) / hours
    return th, frr, fah


# --------------------------------------------------------------------------- mixing

MIX_LEVEL_DBFS = -20.0    # every utterance's active level, unless --mix-level says otherwise
GAP_S = (0.5, 2.0)        # silence (plus noise) before each utterance, uniform
ACTIVE_DB = 30.0          # frames within this many dB of a clip's loudest frame are "active"


def active_power(x: np.ndarray) -> float:
    """Mean power of the 10 ms frames within ACTIVE_DB of the loudest (float samples)."""
    n = len(x) // 160
    if n == 0:
        return float(np.mean(x.astype(np.float64) ** 2)) if len(x) else 0.0
    e = (x[: n * 160].astype(np.float64).reshape(n, 160) ** 2).mean(axis=1)
    top = e.max()
    if top <= 0:
        return 0.0
    return float(e[e >= top * 10 ** (-ACTIVE_DB / 10)].mean())


@dataclass(frozen=True)
class MixItem:
    clip: Clip
    gap_s: float


@dataclass(frozen=True)
class MixChunk:
    """One independent stream: utterances with the silence before each, and where in the
    (looped) noise sequence its noise starts."""

    index: int
    items: tuple[MixItem, ...]
    noise_offset_s: float
    snr_db: float
    noise: tuple[tuple[str, float], ...] = ()   # (path, duration) of the noise sequence
    level_dbfs: float = MIX_LEVEL_DBFS          # every utterance's active level

    @property
    def name(self) -> str:
        return f"mix-{self.index:05d}"

    @property
    def duration_s(self) -> float:
        return sum(it.gap_s + it.clip.duration_s for it in self.items) + GAP_S[0]


def plan_mix(positives: list[Clip], negatives: list[Clip], noise: list[Clip], snr_db: float,
             seed: int, chunk_s: float = 300.0, level_dbfs: float = MIX_LEVEL_DBFS) -> list[MixChunk]:
    """The layout of the mixed streams, from the seed only: positives and negatives shuffled
    together, a random gap before each, cut into streams of about ``chunk_s`` seconds, each
    with a random start in the shuffled noise sequence."""
    rng = np.random.default_rng(seed)
    items = list(positives) + list(negatives)
    order = rng.permutation(len(items))
    gaps = rng.uniform(GAP_S[0], GAP_S[1], len(items))
    noise_order = rng.permutation(len(noise)) if noise else np.zeros(0, int)
    noise_seq = tuple((noise[i].path, noise[i].duration_s) for i in noise_order)
    total_noise = sum(d for _, d in noise_seq)
    chunks, cur, cur_s = [], [], 0.0
    for i, g in zip(order, gaps):
        cur.append(MixItem(items[i], round(float(g), 4)))
        cur_s += g + items[i].duration_s
        if cur_s >= chunk_s:
            chunks.append(cur)
            cur, cur_s = [], 0.0
    if cur:
        chunks.append(cur)
    offsets = rng.uniform(0, max(total_noise, 1e-9), len(chunks))
    return [MixChunk(k, tuple(c), round(float(o), 4), float(snr_db), noise_seq, float(level_dbfs))
            for k, (c, o) in enumerate(zip(chunks, offsets))]


def _noise_track(chunk: MixChunk, n: int) -> np.ndarray:
    """``n`` samples of the noise sequence from the chunk's offset, looped, each noise
    recording normalised to unit RMS (float64)."""
    from .audio import load_audio
    out = np.zeros(n)
    if not chunk.noise:
        return out
    total = sum(d for _, d in chunk.noise)
    pos = chunk.noise_offset_s % total if total > 0 else 0.0
    # find the recording the offset falls in
    k = 0
    while pos >= chunk.noise[k][1] and k < len(chunk.noise) - 1:
        pos -= chunk.noise[k][1]
        k += 1
    filled = 0
    skip = int(pos * SAMPLE_RATE)
    guard = 0
    while filled < n:
        x = load_audio(chunk.noise[k][0]).astype(np.float64) / 32768.0
        rms = math.sqrt(float(np.mean(x ** 2))) if len(x) else 0.0
        x = x[skip:] / rms if rms > 0 else np.zeros(0)
        skip = 0
        take = min(len(x), n - filled)
        out[filled:filled + take] = x[:take]
        filled += take
        k = (k + 1) % len(chunk.noise)
        guard = guard + 1 if take == 0 else 0
        if guard > len(chunk.noise):
            break  # every recording silent
    return out


def render_chunk(chunk: MixChunk) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The chunk's 16 kHz int16 samples and its inserted keywords (keyword, start_s, end_s).

    Every utterance is scaled to the same active level (the chunk's ``level_dbfs``, -20
    dBFS by default, over its frames within 30 dB of its loudest; lower levels stand for
    a talker further from the microphone); the noise track (each recording at unit RMS) is scaled to
    that level minus the SNR, so every utterance, keyword or not, sits ``snr_db`` above
    the noise. Without noise recordings the stream is the utterances and silences only.
    With a reverberation setting (``kws-bench --reverb``) each utterance is first heard
    through its room (the noise is not: it was recorded in its own space).
    """
    from .audio import load_audio
    pieces, keywords, pos = [], [], 0
    segments = []
    target = 10 ** (chunk.level_dbfs / 20)   # active RMS
    for it in chunk.items:
        gap = int(round(it.gap_s * SAMPLE_RATE))
        x = _in_room(load_audio(it.clip.path).astype(np.float64) / 32768.0, it.clip.path)
        p = active_power(x)
        if p > 0:
            x = x * (target / math.sqrt(p))
        pieces.append(np.zeros(gap))
        pos += gap
        if it.clip.keyword is not None:
            keywords.append((it.clip.keyword, pos / SAMPLE_RATE, (pos + len(x)) / SAMPLE_RATE))
        pieces.append(x)
        segments.append((it.clip.path, pos / SAMPLE_RATE, (pos + len(x)) / SAMPLE_RATE))
        pos += len(x)
    _W["segments"] = segments
    pieces.append(np.zeros(int(GAP_S[0] * SAMPLE_RATE)))
    sig = np.concatenate(pieces)
    if chunk.noise:
        sig = sig + _noise_track(chunk, len(sig)) * (target * 10 ** (-chunk.snr_db / 20))
    pcm = np.clip(np.round(sig * 32768.0), -32768, 32767).astype(np.int16)
    return pcm, keywords


def stream_digest(chunks: list[MixChunk]) -> str:
    """sha256 of every chunk's rendered samples, in order (reproducibility checks)."""
    h = hashlib.sha256()
    for c in chunks:
        pcm, kws = render_chunk(c)
        h.update(pcm.tobytes())
        h.update(repr(kws).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- decoding

# A unit of work: a Clip or a MixChunk. Its result: {"levels": detections at each grid
# threshold, "stored": at the model's own thresholds, "fw": the firmware's own detections
# at the stored thresholds (device only), "inserted": keywords placed in a mixed chunk}.
Det = tuple[str, float, float, float]   # keyword, score, start_s, end_s

_W: dict = {}
_SAVE_DIR: dict = {}   # {"dir": folder}: write each rendered mixed stream there (set before decoding)
_ROOM: dict = {}       # {"rt60": s, "seed": n}: every recording heard in a room (kws.reverb); set by decode_units


def set_reverb(rt60: float | None, seed: int = 0) -> None:
    """Put every recording the benchmark reads into a simulated room with this
    reverberation time (s), or none (``None``); builds the room bank now, so a bad
    setting or a missing pyroomacoustics fails before any decoding (ReverbError)."""
    _ROOM.clear()
    if rt60 is not None:
        from .reverb import room_bank
        room_bank(float(rt60), seed)
        _ROOM.update(rt60=float(rt60), seed=int(seed))


def reverb_report() -> dict | None:
    """The reverberation setting, as kws-bench's JSON records it (None: none)."""
    if not _ROOM:
        return None
    from . import reverb as R
    return {"rt60_s": _ROOM["rt60"], "rooms": R.N_ROOMS, "seed": _ROOM["seed"],
            "talker_distance_m": list(R.DISTANCE_M), "room_size_m": [list(R.ROOM_MIN), list(R.ROOM_MAX)],
            "method": "pyroomacoustics image-source shoebox rooms, wall absorption from Sabine's formula for the "
                      "RT60; each recording convolved with the room its path picks, at its own power"}


def _in_room(x: np.ndarray, path: str) -> np.ndarray:
    if not _ROOM:
        return x
    from .reverb import pick, reverberate, room_bank
    return reverberate(x, pick(room_bank(_ROOM["rt60"], _ROOM["seed"]), str(path)))


def _unit_audio(unit) -> np.ndarray:
    """The unit's samples; a mixed chunk's inserted keywords go to _W["inserted"]."""
    from .audio import load_audio
    if isinstance(unit, MixChunk):
        pcm, _W["inserted"] = render_chunk(unit)
        if _SAVE_DIR.get("dir"):
            import soundfile
            soundfile.write(os.path.join(_SAVE_DIR["dir"], unit.name + ".wav"), pcm, SAMPLE_RATE, subtype="PCM_16")
        return pcm
    _W["inserted"], _W["segments"] = [], []
    return _in_room(load_audio(unit.path), unit.path)


def _decoders(model_bytes: bytes, grid: list[float]) -> None:
    from .decoder import KeywordDecoder
    from .model_file import KeywordModel
    model = KeywordModel.from_bytes(model_bytes)
    decs = []
    for g in grid:
        d = KeywordDecoder(model)
        for k in range(len(model.keywords)):
            d.set_threshold(k, g)
        decs.append(d)
    _W.update(model=model, grid=list(grid), decs=decs, stored=KeywordDecoder(model))


def _decode_all(logpost: np.ndarray) -> dict:
    def run(dec) -> list[Det]:
        thresholds = dec.thresholds()
        dec.reset()  # restores the model's stored thresholds: put the level's back
        for k, t in enumerate(thresholds):
            dec.set_threshold(k, t)
        return [(d.keyword, float(d.score), d.start_s, d.end_s) for d in dec.process(logpost) + dec.flush()]
    return {"levels": [run(d) for d in _W["decs"]], "stored": run(_W["stored"]), "fw": None,
            "inserted": _W["inserted"], "segments": _W["segments"]}


def _init_host(model_bytes: bytes, grid: list[float]) -> None:
    from .detector import Detector
    _W.clear()
    _decoders(model_bytes, grid)
    _W["det"] = Detector(_W["model"])


def host_log_posteriors(det, pcm: np.ndarray) -> np.ndarray:
    """What :meth:`kws.detector.Detector.detect` feeds its decoder: the whole clip's
    log-posteriors (front end + network, stream flushed)."""
    det.reset()
    a = det._gate(det._stream.push(det._features(pcm)))
    b = det._gate(det._stream.flush())
    return np.concatenate([a, b]) if len(b) else a


def _host_one(unit) -> tuple[dict | None, str | None]:
    try:
        lp = host_log_posteriors(_W["det"], _unit_audio(unit))
    except KwsError as exc:
        return None, str(exc)
    return _decode_all(lp), None


def _init_device(fw_path: str, elf: str, net: str, model_bytes: bytes, grid: list[float]) -> None:
    _W.clear()
    _decoders(model_bytes, grid)
    _W.update(fw=load_firmware_module(fw_path), elf=elf, net=net, model_bytes=model_bytes)


def _device_one(unit) -> tuple[dict | None, str | None]:
    """One QEMU run per unit: ``net``, ``model`` (stored thresholds), ``detect`` (the
    firmware's own detections) and ``logpost`` (the firmware's front end + C int8 network),
    whose posteriors the C decoder then scores at every grid level."""
    import tempfile
    fw = _W["fw"]
    try:
        pcm = _unit_audio(unit)
        with tempfile.TemporaryDirectory(prefix="kwsbench") as d:
            tmp = Path(d)
            (tmp / "m.kwm").write_bytes(_W["model_bytes"])
            fw.to_pcm(pcm, tmp / "a.pcm")
            res = fw.run(["net", _W["net"], "model", str(tmp / "m.kwm"), "detect", str(tmp / "a.pcm"),
                          "logpost", str(tmp / "a.pcm"), str(tmp / "lp.f32")], elf=_W["elf"],
                         timeout=120 + 30 * len(pcm) / SAMPLE_RATE)
            if res.errors or not res.nets:
                return None, f"device error: {res.errors[0] if res.errors else 'no network loaded'}"
            lp = np.fromfile(tmp / "lp.f32", "<f4").reshape(-1, res.nets[-1]["phones"])
    except KwsError as exc:
        return None, str(exc)
    except Exception as exc:  # FirmwareError, timeouts
        return None, f"device: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    out = _decode_all(lp)
    out["fw"] = [(d.name, d.exact_score, d.start * 0.01, (d.end + 1) * 0.01) for d in res.detections]
    return out, None


def _init_port(url: str, baud: int, model_bytes: bytes, grid: list[float]) -> None:
    """--device PORT: one serial link for the whole run (a port takes one client)."""
    from .device_link import DeviceLink
    _W.clear()
    _decoders(model_bytes, grid)
    link = DeviceLink(url, baud=baud)
    link.load_model(model_bytes)   # RAM only: the flashed model is put back at the end
    _W.update(link=link)


def _port_one(unit) -> tuple[dict | None, str | None]:
    """One clip streamed to the device over its serial port: the firmware's front end and
    int8 network give the log-posteriors (P lines, exact), its decoder the detections at
    the stored thresholds (DET lines); the host's C decoder sweeps the posteriors."""
    try:
        lp, dets = _W["link"].run(_unit_audio(unit))
    except KwsError as exc:
        return None, str(exc)
    out = _decode_all(lp)
    out["fw"] = [(d.keyword, d.score, d.start_s, d.end_s) for d in dets]
    return out, None


def close_port() -> str | None:
    """Put the device back on its flashed model and close the link (after --device PORT).
    Returns the device's ACTIVE line as a short text, or None if there was no link."""
    link = _W.pop("link", None)
    if link is None:
        return None
    try:
        active = link.restore()
        return " ".join(f"{k}={v}" for k, v in active.items())
    except KwsError as exc:
        return f"not restored ({exc}); the flash is untouched: a reset brings its model back"
    finally:
        link.close()


def _init_worker(room: dict, init: Callable, *init_args) -> None:
    _ROOM.clear()
    _ROOM.update(room)
    init(*init_args)


def decode_units(units: list, worker: Callable, init: Callable, init_args: tuple, jobs: int = 1,
                 label: str = "host", progress=None, tool: str = "kws-bench") -> list[dict]:
    """Decode every unit (in ``jobs`` processes, each initialised once), in order, with
    progress lines on ``progress`` (default stderr). Raises BenchError on the first unit
    that fails. The reverberation setting (:func:`set_reverb`) goes to every process."""
    progress = sys.stderr if progress is None else progress
    t0 = time.monotonic()
    total = len(units)
    step = max(1, total // 20)
    out: list[dict] = []

    def take(i: int, unit, r) -> None:
        res, err = r
        if err is not None:
            name = unit.name if isinstance(unit, MixChunk) else unit.path
            raise BenchError(err if name in err else f"{name}: {err}")
        out.append(res)
        if progress is not None and (i % step == 0 or i == total):
            print(f"{tool}: {label}: {i}/{total} done, {time.monotonic() - t0:.0f} s", file=progress, flush=True)

    if jobs <= 1 or total <= 1:
        init(*init_args)
        for i, u in enumerate(units, 1):
            take(i, u, worker(u))
        return out
    import multiprocessing as mp
    ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(dict(_ROOM), init, *init_args)) as pool:
        for i, (u, r) in enumerate(zip(units, pool.imap(worker, units, chunksize=1 if label != "host" else 4)), 1):
            take(i, u, r)
    return out


# --------------------------------------------------------------------------- firmware

def find_firmware_tool() -> Path | None:
    """tools/run_firmware.py of a source checkout: $KWS_ROOT, the current folder or a
    parent, or the folder above this package (running from the source tree)."""
    cands = []
    if os.environ.get("KWS_ROOT"):
        cands.append(Path(os.environ["KWS_ROOT"]))
    cwd = Path.cwd().resolve()
    cands += [cwd, *cwd.parents]
    cands.append(Path(__file__).resolve().parent.parent)
    for c in cands:
        p = c / "tools" / "run_firmware.py"
        if p.is_file() and (c / "firmware" / "Makefile").is_file():
            return p
    return None


def load_firmware_module(path: str | os.PathLike):
    import importlib.util
    if "kws_run_firmware" in sys.modules:
        return sys.modules["kws_run_firmware"]
    spec = importlib.util.spec_from_file_location("kws_run_firmware", str(path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["kws_run_firmware"] = mod
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------- scoring

def _overlaps(a0: float, a1: float, b0: float, b1: float) -> bool:
    return a0 < b1 and b0 < a1


@dataclass
class Scored:
    """Per keyword: each positive's best score and every false alarm (name, start, end, score)."""

    best: dict[str, list[float]]
    fas: dict[str, list[tuple[str, float, float, float]]]


def score_clips(names: list[str], pos: list[Clip], pos_dets: list[list[Det]],
                neg: list[Clip], neg_dets: list[list[Det]]) -> Scored:
    """Clip mode: a positive is detected at t if a detection of its keyword scores >= t
    (detections of other keywords in positives are not counted); every detection in a
    negative is a false alarm of its keyword, unless the negative's text contains that
    keyword (``Clip.contains``, match=contains)."""
    best = {n: [] for n in names}
    fas = {n: [] for n in names}
    for c, dets in zip(pos, pos_dets):
        best[c.keyword].append(max([s for k, s, _, _ in dets if k == c.keyword], default=-math.inf))
    for c, dets in zip(neg, neg_dets):
        for k, s, a, b in dets:
            if k not in c.contains:
                fas[k].append((c.path, a, b, s))
    return Scored(best, fas)


def _where(chunk: MixChunk, segments: list, a: float, b: float) -> str:
    """A mixed stream's false alarm named for listening: the stream and the utterance under it."""
    best, where = 0.0, None
    for path, s0, s1 in segments or []:
        ov = min(b, s1) - max(a, s0)
        if ov > best:
            best, where = ov, f"{path} at {max(a - s0, 0):.2f} s"
    return f"{chunk.name} ({where or 'gap: noise only'})"


def score_mix(names: list[str], chunks: list[MixChunk], dets: list[list[Det]],
              inserted_per_chunk: list[list[tuple[str, float, float]]], segments_per_chunk: list | None = None) -> Scored:
    """Mix mode: a detection of keyword k overlapping an inserted utterance of k is a hit
    for it (its best score counts); any other detection is a false alarm."""
    best = {n: [] for n in names}
    fas = {n: [] for n in names}
    segs = segments_per_chunk or [[] for _ in chunks]
    for ch, ds, inserted, seg in zip(chunks, dets, inserted_per_chunk, segs):
        hit = [-math.inf] * len(inserted)
        for k, s, a, b in ds:
            j = next((j for j, (kk, u0, u1) in enumerate(inserted) if kk == k and _overlaps(a, b, u0, u1)), None)
            if j is None:
                fas[k].append((_where(ch, seg, a, b) if seg else ch.name, a, b, s))
            else:
                hit[j] = max(hit[j], s)
        for (k, _, _), h in zip(inserted, hit):
            best[k].append(h)
    return Scored(best, fas)




def keyword_table(names: list[str], thresholds: list[float], grid: list[float], levels: list[Scored],
                  stored: Scored, hours: float | dict[str, float], fa_list: int = 50) -> list[dict]:
    """Per keyword: positives, FRR at each budget (and the threshold it takes) from the
    multi-level sweep, FRR and FA/h at the stored threshold (from the decode at the stored
    thresholds: exact), the DET curve and the false alarms worth listening to (those of the
    grid level just below the lowest reported threshold that score at or above it, topped
    up to ``fa_list`` with the best others of that level, then of the floor decode).
    ``hours``: the negative hours, one figure for all keywords or one per keyword."""
    rows = []
    for name, thr in zip(names, thresholds):
        kw_hours = hours[name] if isinstance(hours, dict) else hours
        best_l = [np.array(sc.best[name], float) for sc in levels]
        fa_l = [np.array([x[3] for x in sc.fas[name]], float) for sc in levels]
        row: dict = {"keyword": name, "positives": int(len(stored.best[name])), "negative_hours": round(kw_hours, 4)}
        lows = [thr]
        for bud in BUDGETS:
            frr, t = frr_at_budget_levels(grid, best_l, fa_l, kw_hours, bud)
            row[f"frr_at_{bud:g}_fa_per_h"] = frr
            row[f"threshold_at_{bud:g}_fa_per_h"] = t if math.isfinite(t) else None
            if math.isfinite(t):
                lows.append(t)
        frr_s, fah_s = rates_at(np.array(stored.best[name], float),
                                np.array([x[3] for x in stored.fas[name]], float), kw_hours, -math.inf)
        row.update(stored_threshold=thr, frr_at_stored=frr_s, fa_per_h_at_stored=fah_s,
                   false_alarms_at_stored=len(stored.fas[name]))
        th, frr_c, fah_c = sweep_levels(grid, best_l, fa_l, kw_hours)
        row["det_curve"] = {"threshold": th.round(4).tolist(), "frr": frr_c.round(5).tolist(),
                            "fa_per_h": fah_c.round(4).tolist()}
        floor = min(lows)
        k = max(int(np.searchsorted(grid, floor, side="right")) - 1, 0)
        fa = sorted(levels[k].fas[name], key=lambda x: -x[3])
        keep = [x for x in fa if x[3] >= floor]
        if len(keep) < fa_list:  # top up with the best of the lowest level (the floor decode)
            for x in fa + sorted(levels[0].fas[name], key=lambda x: -x[3]):  # this level's, then the floor's
                if len(keep) >= fa_list:
                    break
                if not any(y[0] == x[0] and _overlaps(x[1], x[2], y[1], y[2]) for y in keep):
                    keep.append(x)
            keep.sort(key=lambda x: -x[3])
        row["false_alarms_listed_from_level"] = grid[k]
        row["false_alarms"] = [{"file": f, "start_s": round(a, 2), "end_s": round(b, 2), "score": round(s, 4)}
                               for f, a, b, s in keep]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- host vs device

def compare(units_names: list[str], host: list[list[Det]], device: list[list[Det]],
            stored: dict[str, float], tol: float = 0.01) -> dict:
    """Match each unit's host and device detections (same keyword and same start and end
    frame, else same keyword and overlapping in time: ``moved``); a matched pair whose
    scores differ by more than ``tol`` or whose times differ, or a detection on one side
    only, is a disagreement. Also: how many (unit, keyword) fire/no-fire decisions at
    the stored thresholds agree."""
    matched = moved = 0
    diffs = []
    disagreements = []
    dec_total = dec_agree = 0
    for name, h, d in zip(units_names, host, device):
        left = list(d)
        for det in h:
            j = next((j for j, x in enumerate(left) if x[0] == det[0] and abs(x[2] - det[2]) < 1e-6
                      and abs(x[3] - det[3]) < 1e-6), None)
            if j is None:  # same keyword, overlapping in time: the same candidate, its path moved
                j = next((j for j, x in enumerate(left) if x[0] == det[0] and _overlaps(x[2], x[3], det[2], det[3])),
                         None)
                if j is not None:
                    moved += 1
            if j is None:
                disagreements.append({"file": name, "keyword": det[0], "start_s": round(det[2], 2),
                                      "end_s": round(det[3], 2), "host_score": round(det[1], 5), "device_score": None})
                continue
            x = left.pop(j)
            matched += 1
            same_time = abs(x[2] - det[2]) < 1e-6 and abs(x[3] - det[3]) < 1e-6
            if same_time:
                diffs.append(abs(x[1] - det[1]))
            if abs(x[1] - det[1]) > tol or not same_time:
                r = {"file": name, "keyword": det[0], "start_s": round(det[2], 2), "end_s": round(det[3], 2),
                     "host_score": round(det[1], 5), "device_score": round(x[1], 5)}
                if not same_time:
                    r.update(device_start_s=round(x[2], 2), device_end_s=round(x[3], 2))
                disagreements.append(r)
        for x in left:
            disagreements.append({"file": name, "keyword": x[0], "start_s": round(x[2], 2), "end_s": round(x[3], 2),
                                  "host_score": None, "device_score": round(x[1], 5)})
        for k, t in stored.items():
            dec_total += 1
            dec_agree += (any(s >= t for kk, s, _, _ in h if kk == k) == any(s >= t for kk, s, _, _ in d if kk == k))
    n_host = sum(len(h) for h in host)
    n_dev = sum(len(d) for d in device)
    disagreements.sort(key=lambda r: -max(r["host_score"] if r["host_score"] is not None else -99,
                                          r["device_score"] if r["device_score"] is not None else -99))
    return {"units": len(units_names), "host_detections": n_host, "device_detections": n_dev,
            "matched": matched, "matched_with_other_times": moved, "score_tolerance": tol,
            # score differences over the pairs with the same start and end (the same path)
            "max_abs_score_diff": float(max(diffs)) if diffs else 0.0,
            "mean_abs_score_diff": float(np.mean(diffs)) if diffs else 0.0,
            "decisions_at_stored_threshold": {"total": dec_total, "agree": dec_agree},
            "disagreements": disagreements}


def model_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
