#!/usr/bin/env python3
"""PocketSphinx keyphrase spotting on kws-bench's protocol: the text-enrolled peer, same clips, same count.

    pip install pocketsphinx     # the peer (5.x, with its en-us acoustic model); not a dependency of kws
    python tools/peer_bench.py --keyword jarvis --keyword 'view glass' ... \\
        --positives ../shared/data/en_wakewords --negatives ../shared/data/en_phrases ... --json ps.json

The developers' guide quotes PocketSphinx's misses on another protocol (23-36 % of `alexa` and
`computer` at 1 FA/h); this measures it on ours, so the two DET curves compare directly
(``tools/compare_bench.py`` reads both reports). PocketSphinx, like kws, is enrolled from text:
each keyphrase's words come from its own dictionary (``cmudict-en-us.dict``) and, for a word it
lacks (``snowboy``), from kws's English pronunciation; it then runs its ``kws`` search (the
keyphrase's HMM against a phone loop) over every clip, read and resampled exactly as kws-bench
reads them (``--reverb`` puts them in the same rooms).

How the sweep is exact with few decodes. A detection's score is PocketSphinx's own
``hmm_out_score(keyphrase) - hmm_out_score(best phone)``, the quantity its ``kws_threshold``
is compared with (reported back through ``seg().prob``; the score unit is 2^10 logmath
units, so ``kws_threshold = 1.0001 ** (1024 * score)``), and PocketSphinx 5 merges overlapping
detections of one keyphrase, keeping the best. So a positive's best score at any threshold
is its best score from one decode at the lowest (``--floor``): every clip is decoded once
there. Negatives are different: at a higher threshold one merged stretch can split into
several false alarms, so the negatives whose best score reaches a keyword's n-th highest
false-alarm score are decoded again with that score as the threshold (n = 1..8), and the
DET curve is read from those levels as kws-bench reads its own (``kws.bench.sweep_levels``).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

import kws.bench as bench
from kws.errors import KwsError
from kws.pronunciation import pronounce

KWS_MAX = 1500               # pocketsphinx kws_search.c: prob = score - KWS_MAX (logmath units >> 10)
LOG_BASE = math.log(1.0001)  # pocketsphinx's default logmath base
SHIFT = 1024                 # SENSCR_SHIFT: kws scores are logmath values >> 10
LEVELS = 8                   # negatives re-decoded at their 1st..8th highest false-alarm score
REFRACTORY_S = 1.0           # kws's refractory_frames (100) at 10 ms
NEVER = 5000                 # a threshold no detection reaches (KWS_MAX is PocketSphinx's own bound)
_W: dict = {}


def kws_threshold(score: int) -> float:
    """The ``kws_threshold`` value PocketSphinx turns into ``score`` (``logmath_log(t) >> 10``)."""
    return math.exp((score * SHIFT + SHIFT // 2) * LOG_BASE)


def seg_score(prob: float) -> int:
    """A detection's score (the threshold's units) from the ``prob`` its segment reports."""
    return int(round(math.log(prob) / LOG_BASE)) + KWS_MAX


def dictionary(keywords: list[str], out_path: str) -> dict[str, str]:
    """A dictionary for the keyphrases: PocketSphinx's own entries for their words, kws's
    English pronunciation for words it lacks. Returns {word: source} for the report."""
    import pocketsphinx
    own: dict[str, list[str]] = {}
    with open(os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                own.setdefault(parts[0].split("(")[0], []).append(line.rstrip("\n"))
    lines, source = [], {}
    for kw in keywords:
        for word in _words(kw):
            w = word.text.lower()
            if w in source:
                continue
            if w in own:
                lines += own[w]
                source[w] = "pocketsphinx"
            else:
                lines += [f"{w}{'' if i == 0 else f'({i + 1})'} {' '.join(v)}" for i, v in enumerate(word.variants)]
                source[w] = "kws"
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return source


def refractory(dets: list, seconds: float = REFRACTORY_S) -> list:
    """A clip's false alarms counted as kws counts its own: a detection of a keyword ending
    within ``seconds`` of the end of the last one kept is not another (kws's decoder ignores
    candidates for its refractory second). Applied to negatives only: a positive keeps its best
    score. (Measured: on the clips it moves one point of the six-word curve by 4 of 1,586.)"""
    out, last = [], {}
    for d in sorted(dets, key=lambda d: d[3]):
        if d[0] in last and d[3] - last[d[0]] < seconds:
            continue
        out.append(d)
        last[d[0]] = d[3]
    return out


@functools.lru_cache(maxsize=None)
def _words(kw: str):
    """kws's English pronunciation of a keyphrase, word by word (read once for both the
    dictionary and the keyphrase line)."""
    return pronounce(kw, "en").words


def keyphrase(kw: str) -> str:
    return " ".join(w.text.lower() for w in _words(kw))


def _decoder(phrases: list[str], thresholds: list[int], dict_path: str):
    import pocketsphinx
    fd, path = tempfile.mkstemp(suffix=".kws", text=True)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{p} /{kws_threshold(t):.17g}/\n" for p, t in zip(phrases, thresholds))
    try:
        return pocketsphinx.Decoder(kws=path, dict=dict_path, loglevel="ERROR")
    finally:
        os.unlink(path)


def _init(names: list[str], phrases: list[str], thresholds: list[int], dict_path: str) -> None:
    _W.update(names=names, by_phrase=dict(zip(phrases, names)), dec=_decoder(phrases, thresholds, dict_path))


def _one(unit) -> tuple[dict | None, str | None]:
    """Decode one clip: its detections as kws-bench's (keyword, score, start_s, end_s)."""
    try:
        pcm = bench._unit_audio(unit)
    except KwsError as exc:
        return None, str(exc)
    dec = _W["dec"]
    t0 = time.process_time()
    dec.start_utt()
    dec.process_raw(np.ascontiguousarray(pcm, dtype=np.int16).tobytes(), full_utt=True)
    dec.end_utt()
    cpu = time.process_time() - t0
    dets = [(_W["by_phrase"][s.word.strip()], float(seg_score(s.prob)), s.start_frame / 100.0, (s.end_frame + 1) / 100.0)
            for s in (dec.seg() or [])]
    return {"dets": dets, "cpu_s": cpu, "audio_s": len(pcm) / bench.SAMPLE_RATE}, None


def decode(units: list, names, phrases, thresholds, dict_path, jobs: int, label: str) -> list[dict]:
    return bench.decode_units(units, _one, _init, (names, phrases, thresholds, dict_path), jobs=jobs, label=label,
                              tool="peer_bench")


class OpenWakeWordStream:
    """openWakeWord's streaming pipeline on ai-edge-litert (kws's own runtime), one thread: per
    80 ms of audio its mel model over the last 110 ms, its speech-embedding model over the last
    76 mel frames, and a keyword head (e.g. the pre-trained ``alexa``) over the last 16 embeddings,
    as openWakeWord's own ``AudioFeatures`` streams them (``pyopen_wakeword`` ships the models; its
    own TFLite C build runs them about five times slower here, so timing through it would flatter
    kws). ``pyopen_wakeword`` cuts its mel windows 50 ms earlier in each step, so the two agree on
    what fires and when, not to the digit (tests/test_peer_bench.py)."""

    CHUNK = 1280        # samples per step (80 ms)
    MEL_SAMPLES = 1760  # the mel model's input: the step plus 480 samples of context
    EMB_FRAMES = 76     # mel frames per embedding (775 ms)

    def __init__(self, head: str = "alexa", models_dir: str | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter
        if models_dir is None:
            import pyopen_wakeword
            models_dir = os.path.join(os.path.dirname(pyopen_wakeword.__file__), "models")
        self.mel_path = os.path.join(models_dir, "melspectrogram.tflite")
        self.mel = Interpreter(model_path=self.mel_path, num_threads=1)
        self.mel.resize_tensor_input(self.mel.get_input_details()[0]["index"], [1, self.MEL_SAMPLES])
        self.mel.allocate_tensors()
        self.emb = Interpreter(model_path=os.path.join(models_dir, "embedding_model.tflite"), num_threads=1)
        self.emb.allocate_tensors()
        self.head = Interpreter(model_path=os.path.join(models_dir, f"{head}.tflite"), num_threads=1)
        self.head.allocate_tensors()
        self.windows = int(self.head.get_input_details()[0]["shape"][1])
        self.reset()

    def reset(self) -> None:
        self.audio = np.zeros(self.MEL_SAMPLES, np.float32)
        self.pending = np.zeros(0, np.float32)
        self.mels = np.zeros((0, 32), np.float32)
        self.embs = np.zeros((0, 96), np.float32)

    @staticmethod
    def _run(it, x: np.ndarray) -> np.ndarray:
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])

    def process(self, pcm: np.ndarray) -> list[float]:
        """Feed int16 samples (any chunking); returns one probability per completed 80 ms step
        once 16 embeddings exist."""
        out = []
        self.pending = np.concatenate([self.pending, np.asarray(pcm, np.float32)])
        while len(self.pending) >= self.CHUNK:
            step, self.pending = self.pending[:self.CHUNK], self.pending[self.CHUNK:]
            self.audio = np.concatenate([self.audio[self.CHUNK:], step])
            m = self._run(self.mel, self.audio[None, :]).reshape(-1, 32) / 10.0 + 2.0
            self.mels = np.concatenate([self.mels, m])[-self.EMB_FRAMES:]
            if len(self.mels) < self.EMB_FRAMES:
                continue
            e = self._run(self.emb, self.mels[None, :, :, None]).reshape(1, 96)
            self.embs = np.concatenate([self.embs, e])[-self.windows:]
            if len(self.embs) == self.windows:
                out.append(float(self._run(self.head, self.embs[None]).ravel()[0]))
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keyword", action="append", required=True, metavar="TEXT",
                    help="a keyphrase, as kws-enroll takes it (repeat); positives' manifest text names it")
    ap.add_argument("--positives", action="append", required=True, metavar="PATH")
    ap.add_argument("--negatives", action="append", required=True, metavar="PATH")
    ap.add_argument("--floor", type=int, default=-1124, metavar="SCORE",
                    help="the lowest threshold decoded, in score units (default -1124: kws_threshold 1e-50)")
    ap.add_argument("--reverb", type=float, metavar="RT60", help="as kws-bench --reverb")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="write a kws-bench-shaped report (host.keywords[].det_curve)")
    args = ap.parse_args(argv)
    try:
        import pocketsphinx  # noqa: F401  (only whether it is installed)
    except ImportError:
        ap.error("PocketSphinx is not installed: pip install pocketsphinx (or the [peers] extra)")

    try:
        with tempfile.TemporaryDirectory(prefix="peer_bench_") as work:  # the keyphrases' dictionary
            return run(args, work)
    except KwsError as exc:  # bad sets, unreadable audio, a keyword kws cannot pronounce
        print(f"peer_bench: error: {exc}", file=sys.stderr)
        return 1  # as kws-bench: 1 for bad input, 2 (argparse) for a bad command line


def run(args: argparse.Namespace, work: str) -> int:
    names = list(dict.fromkeys(args.keyword))
    phrases = [keyphrase(k) for k in names]
    pos = bench.load_set(args.positives, "positives", names)
    neg = bench.load_set(args.negatives, "negatives")
    if args.reverb is not None:
        bench.set_reverb(args.reverb)
    hours = neg.hours
    dict_path = os.path.join(work, "keyphrases.dict")
    source = dictionary(names, dict_path)
    from importlib.metadata import version
    peer = f"pocketsphinx {version('pocketsphinx')}"
    print(f"peer_bench: {peer} "
          f"kws search, {len(names)} keyphrases, {len(pos.clips)} positives, {len(neg.clips)} negatives "
          f"({hours:.3f} h)", file=sys.stderr)

    floor = [args.floor] * len(names)
    units = pos.clips + neg.clips
    res = decode(units, names, phrases, floor, dict_path, args.jobs, "pocketsphinx")
    pos_res, neg_res = res[:len(pos.clips)], res[len(pos.clips):]
    neg0 = [refractory(r["dets"]) for r in neg_res]
    level0 = bench.score_clips(names, pos.clips, [r["dets"] for r in pos_res], neg.clips, neg0)

    # each keyword's re-decode levels: just its n-th highest false-alarm scores at the floor
    grids = {n: [args.floor] + sorted({int(s) for s in sorted((x[3] for x in level0.fas[n]), reverse=True)[:LEVELS]}
                                      - {args.floor}) for n in names}
    neg_levels = [neg0]
    for j in range(1, LEVELS + 1):
        th = [grids[n][j] if j < len(grids[n]) else NEVER for n in names]
        need = [i for i, r in enumerate(neg_res)
                if any(k == n and s >= t for k, s, _, _ in r["dets"] for n, t in zip(names, th))]
        dets = [[] for _ in neg_res]
        if need:
            for i, r in zip(need, decode([neg.clips[i] for i in need], names, phrases, th, dict_path,
                                         args.jobs, f"level {j}")):
                dets[i] = refractory(r["dets"])
        neg_levels.append(dets)

    rows = []
    for n, phrase in zip(names, phrases):
        g = grids[n]
        best0 = np.array(level0.best[n], float)
        best_l = [best0] * len(g)  # a positive's best score is the same from every level (the module's note)
        fa_l = [np.array([s for dets in neg_levels[j] for k, s, _, _ in dets if k == n], float) for j in range(len(g))]
        th, frr, fah = bench.sweep_levels(g, best_l, fa_l, hours)
        row = {"keyword": n, "keyphrase": phrase, "positives": int(len(best0)), "negative_hours": round(hours, 4)}
        for bud in bench.BUDGETS:
            f, t = bench.frr_at_budget_levels(g, best_l, fa_l, hours, bud)
            row[f"frr_at_{bud:g}_fa_per_h"] = f
            row[f"threshold_at_{bud:g}_fa_per_h"] = t if math.isfinite(t) else None
            row[f"kws_threshold_at_{bud:g}_fa_per_h"] = kws_threshold(int(math.ceil(t))) if math.isfinite(t) else None
        row["det_curve"] = {"threshold": th.round(2).tolist(), "frr": frr.round(5).tolist(),
                            "fa_per_h": fah.round(4).tolist()}
        rows.append(row)
    cpu = sum(r["cpu_s"] for r in res)
    audio = sum(r["audio_s"] for r in res)
    report = {"peer": peer,
              "dictionary": source, "reverb_rt60": args.reverb,
              "positives": {"sources": pos.sources, "clips": len(pos.clips)},
              "negatives": {"sources": neg.sources, "clips": len(neg.clips), "hours": round(hours, 4),
                            "speakers": neg.speakers_text()},
              "host": {"keywords": rows,
                       "throughput": {"audio_s": round(audio, 1), "decode_cpu_s": round(cpu, 1),
                                      "x_real_time": round(audio / max(cpu, 1e-9), 1)}}}
    for r in rows:
        print(f"{r['keyword']:>12s}: {r['positives']:4d} positives, FRR at 1 FA/h {100 * r['frr_at_1_fa_per_h']:5.1f} %, "
              f"at 0.5 FA/h {100 * r['frr_at_0.5_fa_per_h']:5.1f} %")
    print(f"peer_bench: decoding: {report['host']['throughput']['x_real_time']}x real time on one core", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
