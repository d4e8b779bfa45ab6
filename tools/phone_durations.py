"""Measure how long each phone lasts in real speech and write the keyword compiler's
minimum durations (``kws/data/phone_durations/{lang}.json``).

A keyword phone of ``n`` HMM states lasts at least ``n`` frames. Against the free phone
loop, every frame where a keyword phone happens to be the best phone is a perfect frame,
so a short minimum lets a path hop through a phone on a one-frame blip; a long one
rejects fast speakers. How short a phone can be differs by phone (a diphthong or an
affricate is rarely under 80 ms, a schwa or a flap often 30 ms), so the minimum is
measured per phone: force-align the training speakers' speech with the shipped acoustic
model (the same Viterbi aligner that trains it), collect every phone segment that is
not at the edge of an utterance, and take half its median duration, clamped to 40-80 ms.
(A low percentile would be the obvious statistic, but the aligner's own 2-frame minimum
shows up in the shortest decile of most phones; the median is robust to that.)

    python tools/phone_durations.py --lang en --data ../shared/data            # print the table
    python tools/phone_durations.py --lang en --data ../shared/data --write    # and store it

Only training speakers are used (``tools/splits.py``), never the held-out ones.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from splits import TRAINING_SETS  # noqa: E402

OUT_DIR = HERE.parent / "kws" / "data" / "phone_durations"


def segment_durations(labels: np.ndarray) -> list[tuple[int, int]]:
    """(phone, frames) of every run of equal labels except the first and the last (those
    are cut by the utterance's edges, not by the next phone)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.r_[0, cuts]
    ends = np.r_[cuts, len(labels)]
    return [(int(labels[s]), int(e - s)) for s, e in zip(starts[1:-1], ends[1:-1])]


def min_frames_table(durations: dict[str, list[int]], percentile: float, fraction: float, lo: int, hi: int,
                     min_count: int, default: int) -> dict[str, int]:
    """Per phone: ``fraction`` of the ``percentile`` of its durations, rounded and clamped
    to [lo, hi]; ``default`` for phones seen fewer than ``min_count`` times."""
    out = {}
    for ph, d in sorted(durations.items()):
        if len(d) < min_count:
            out[ph] = default
        else:
            out[ph] = int(np.clip(round(fraction * float(np.percentile(d, percentile))), lo, hi))
    return out


_W: dict = {}


def _init(lang: str, model_path: str | None) -> None:
    from kws.acoustic import AcousticModel
    _W["am"] = AcousticModel(model_path) if model_path else AcousticModel.default(lang)
    _W["lang"] = lang


def _posteriors(row: dict):
    from kws.audio import load_audio
    from kws.features import log_mel
    from kws.transcribe import transcribe
    try:
        x = load_audio(row["abs"])
    except Exception as exc:  # noqa: BLE001 - one bad clip is reported and skipped
        return None, f"{row['path']}: {exc}"
    words = transcribe(row["text"], _W["lang"], [])
    if not words:
        return None, None
    return (_W["am"].log_posteriors(log_mel(x)), words), None


def training_rows(data: Path, lang: str, limit: int | None) -> list[dict]:
    """The training speakers' clips with text, split exactly as the training recipe splits them."""
    from train_acoustic import read_manifest, split_speakers
    by_set = {name: read_manifest(str(data / name)) for name in TRAINING_SETS[lang]}
    rows = [r for r, _ in split_speakers(lang, by_set)["train"] if r["text"].strip()]
    return rows[:limit] if limit else rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lang", required=True, choices=sorted(TRAINING_SETS))
    ap.add_argument("--data", default="../shared/data", help="folder holding the data sets")
    ap.add_argument("--model", help="acoustic model .tflite (default: the shipped one)")
    ap.add_argument("--percentile", type=float, default=50.0, help="percentile of each phone's duration (50: median)")
    ap.add_argument("--fraction", type=float, default=0.5, help="share of that percentile taken as the minimum (0.5)")
    ap.add_argument("--min", dest="lo", type=int, default=4, help="shortest minimum in frames (4 = 40 ms)")
    ap.add_argument("--max", dest="hi", type=int, default=8, help="longest minimum in frames (8 = 80 ms)")
    ap.add_argument("--min-count", type=int, default=30, help="phones seen less often get --default")
    ap.add_argument("--default", type=int, default=4, help="minimum for rare phones (4)")
    ap.add_argument("--limit", type=int, help="use only the first N clips (quick checks)")
    ap.add_argument("--no-prior", action="store_true", help="align on posteriors instead of posterior / prior")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--write", action="store_true", help=f"write {OUT_DIR.relative_to(HERE.parent)}/LANG.json")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)

    from train_acoustic import viterbi_align  # the training recipe's forced aligner
    from kws.acoustic import AcousticModel
    from kws.phonesets import get_phone_set

    data = Path(args.data)
    rows = training_rows(data, args.lang, args.limit)
    if not rows:
        print(f"phone_durations: no training clips under {data}", file=sys.stderr)
        return 2
    pset = get_phone_set(args.lang)
    model_path = args.model or str(AcousticModel.default(args.lang).path)
    sha = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a convenience
        def tqdm(it, **_):
            return it
    results, errors = [], 0
    with Pool(args.jobs, initializer=_init, initargs=(args.lang, args.model)) as pool:
        for res, err in tqdm(pool.imap(_posteriors, rows, chunksize=8), total=len(rows),
                             desc="posteriors", file=sys.stderr, disable=not sys.stderr.isatty()):
            if err:
                errors += 1
            elif res is not None:
                results.append(res)
    # the aligner works on scaled likelihoods, as in training: posterior / prior
    prior = np.mean([np.exp(lp).mean(axis=0) for lp, _ in results], axis=0)
    log_prior = 0.0 if args.no_prior else np.log(prior + 1e-8)
    durations: dict[str, list[int]] = {}
    failed = 0
    for lp, words in results:
        ali = viterbi_align(lp - log_prior, words, pset)
        if ali is None:
            failed += 1
            continue
        for ph, n in segment_durations(ali):
            if pset.phones[ph] != "sil":
                durations.setdefault(pset.phones[ph], []).append(n)
    table = min_frames_table(durations, args.percentile, args.fraction, args.lo, args.hi, args.min_count, args.default)
    for ph in pset.phones:  # every phone gets an entry, unseen ones the default
        if ph != "sil":
            table.setdefault(ph, args.default)
    stats = {ph: {"segments": len(d), "p10": float(np.percentile(d, 10)), "p25": float(np.percentile(d, 25)),
                  "median": float(np.median(d))} for ph, d in sorted(durations.items())}
    out = {
        "format": "kws-phone-durations/1",
        "lang": args.lang,
        "phone_set": pset.name,
        "min_frames": {ph: table[ph] for ph in pset.phones if ph != "sil"},
        "rule": {"percentile": args.percentile, "fraction": args.fraction, "min": args.lo, "max": args.hi,
                 "min_count": args.min_count, "default": args.default},
        "source": {"sets": list(TRAINING_SETS[args.lang]), "speakers": "training speakers only (tools/splits.py)",
                   "clips": len(results), "unaligned": failed, "unreadable": errors,
                   "aligner": "tools/train_acoustic.py viterbi_align (2 states per phone, optional pauses)",
                   "acoustic_model_sha256": sha,
                   "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")},
        "stats_frames": stats,
    }
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        print(f"{args.lang}: {len(results)} clips aligned ({failed} failed), minimum frames per phone "
              f"({args.fraction:g} x p{args.percentile:g} of the duration, clamped to {args.lo}..{args.hi}):")
        for ph, n in out["min_frames"].items():
            s = stats.get(ph)
            extra = f"  {s['segments']:6d} segments, p10 {s['p10']:4.1f} median {s['median']:4.1f}" if s else "  unseen"
            print(f"  {ph:4s} {n}{extra}")
    if args.write:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"{args.lang}.json"
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
