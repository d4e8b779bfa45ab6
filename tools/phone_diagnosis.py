#!/usr/bin/env python3
"""Which phone of a wake word does the acoustic model fail to hear? Per-phone scores over recordings.

    python tools/phone_diagnosis.py --lang en --positives ../shared/data/en_wakewords "view glass" android
    python tools/phone_diagnosis.py --lang en --acoustic /tmp/models_v23/en.tflite --positives DIR jarvis --json

For each recording of each keyword (a manifest's `text` equal to the keyword, as kws-bench
matches positives) the keyword's phone chain (first pronunciation, each phone at least its
minimum duration from kws/data/phone_durations) is aligned to the clip's posteriors by the
decoder's rule (for each end frame the path with the best summed emission; of those, the one
with the best phone-mean score; free start), and each phone
gets the mean of its frames' emissions by the decoder's rule for the enrolment default
(format 2.1, uncertainty weight w = 0.5: `max(x - (1 - w) m, -6)` with x = log p(phone) and
m = max_q log p(q), i.e. the ratio to the best phone plus w times the best phone's own
log-posterior; `--uncertainty-weight 0` gives the 1.1 rule `max(x - m, -6)`): near 0 when the
phone is the network's confident best guess, -6 when it is never close. The keyword's score is
the mean over phones (the decoder's phone-mean score, docs/decoder.md). Printed per phone:
the mean over clips, the mean over the worst quarter of clips, and what the network hears
instead (its best phone on those frames).

Why: a wake word missed by many people is usually missed on one phone (the `V` of "view"
heard as `DH`, the `OY` of "android" as `ER`); that says which training data is missing
(tools/coverage_texts.py) or which word to avoid, where a miss rate alone says nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

FLOOR = -6.0


def align_phones(e: np.ndarray, phone_idx: list[int], min_frames: list[int]) -> list[list[int]]:
    """Frames of each phone on the path the decoder would report: through a left-to-right chain
    (phone k lasting at least min_frames[k], starting anywhere in e, T x P), for each end frame
    the path with the best summed emission (Viterbi), and of those the end whose phone-mean
    score (mean over phones of each phone's mean emission) is highest."""
    states = [k for k, n in enumerate(min_frames) for _ in range(max(1, int(n)))]
    S, T = len(states), len(e)
    if T < S:
        return [[] for _ in phone_idx]
    em = e[:, [phone_idx[k] for k in states]]
    self_loop = np.array([i == S - 1 or states[i + 1] != states[i] for i in range(S)])
    starts = np.array([i > 0 and states[i] != states[i - 1] for i in range(S)])
    v = np.full(S, -np.inf)
    dm, m, ps, pk = np.zeros(S), np.zeros(S), np.zeros(S), np.zeros(S)  # closed phone means, current phone
    moved = np.zeros((T, S), bool)
    best, end = -np.inf, -1
    for t in range(T):
        stay = np.where(self_loop, v, -np.inf)
        move = np.concatenate([[0.0], v[:-1]])  # state 0 entered fresh at any frame
        mv = move >= stay
        moved[t] = mv
        shift = lambda a, first: np.concatenate([[first], a[:-1]])  # noqa: E731
        ndm, nm = np.where(mv, shift(dm, 0.0), dm), np.where(mv, shift(m, 0.0), m)
        nps, npk = np.where(mv, shift(ps, 0.0), ps), np.where(mv, shift(pk, 0.0), pk)
        close = mv & starts & (npk > 0)
        ndm = np.where(close, ndm + nps / np.maximum(npk, 1), ndm)
        nm = np.where(close, nm + 1, nm)
        nps, npk = np.where(mv & starts, 0.0, nps), np.where(mv & starts, 0.0, npk)
        v = np.maximum(stay, move) + em[t]
        dm, m, ps, pk = ndm, nm, nps + em[t], npk + 1
        if np.isfinite(v[-1]):
            score = (dm[-1] + ps[-1] / pk[-1]) / (m[-1] + 1)
            if score > best:
                best, end = score, t
    frames: list[list[int]] = [[] for _ in phone_idx]
    s, t = S - 1, end
    while s >= 0 and t >= 0:
        frames[states[s]].append(t)
        if moved[t, s]:
            s -= 1
        t -= 1
    return [sorted(f) for f in frames]


def emissions(logpost: np.ndarray, weight: float = 0.0, floor: float = FLOOR) -> np.ndarray:
    """Per-frame emission of every phone as a keyword phone (not a pause) scores it in the C
    decoder (docs/kwm-format.md, decoder semantics): `x - m + w min(m, 0)` below the best phone,
    and for the best phone `w min(m, 0)` (format 2.1: the best phone pays the weight too; with
    w = 0 it scores 0, the 1.1 rule), floored. So the numbers here are the decoder's own."""
    lp = np.asarray(logpost, np.float32)
    m = lp.max(1, keepdims=True)
    return np.maximum(lp - m + np.float32(weight) * np.minimum(m, 0.0), np.float32(floor))


def phone_scores(logpost: np.ndarray, phone_idx: list[int], min_frames: list[int],
                 weight: float = 0.0):
    """(per-phone mean emission, per-phone frames) of the keyword's best path in one clip,
    with emissions by the decoder's rule for uncertainty weight ``weight`` (:func:`emissions`)."""
    e = emissions(logpost, weight)
    frames = align_phones(e, phone_idx, min_frames)
    return [float(e[f, p].mean()) if f else FLOOR for f, p in zip(frames, phone_idx)], frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("keywords", nargs="+", metavar="KEYWORD")
    ap.add_argument("--lang", choices=["ko", "en"], default=None,
                    help="the keywords' language (default: from their script, as kws-enroll)")
    ap.add_argument("--positives", required=True, help="folder with a manifest.csv (or the .csv itself)")
    ap.add_argument("--acoustic", help="acoustic model .tflite (default: the shipped one)")
    ap.add_argument("--uncertainty-weight", type=float, default=None, metavar="W",
                    help="score phones as keywords enrolled with this weight are scored (default: "
                         "kws-enroll's, 0.5, format 2.1; 0: the format-1.1 ratio to the best phone)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()
    from kws.enroll import check_uncertainty_weight
    from kws.errors import KwsError
    from kws.model_file import DEFAULT_UNCERTAINTY_WEIGHT
    from kws.pronunciation import guess_language
    try:
        args.lang = args.lang or guess_language(args.keywords)
    except KwsError as e:
        print(f"phone_diagnosis: {e}", file=sys.stderr)
        return 2
    try:
        weight = (DEFAULT_UNCERTAINTY_WEIGHT if args.uncertainty_weight is None
                  else check_uncertainty_weight(args.uncertainty_weight))
    except KwsError as e:
        print(f"phone_diagnosis: --uncertainty-weight: {e}", file=sys.stderr)
        return 2

    from kws.acoustic import AcousticModel
    from kws.audio import load_audio
    from kws.errors import KwsError
    from kws.features import log_mel
    from kws.graph import phone_min_frames
    from kws.pronunciation import pronounce

    man = Path(args.positives)
    man = man if man.suffix == ".csv" else man / "manifest.csv"
    if not man.is_file():
        print(f"phone_diagnosis: {man}: no manifest.csv", file=sys.stderr)
        return 2
    with open(man, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    try:
        am = AcousticModel(args.acoustic) if args.acoustic else AcousticModel.default(args.lang)
    except (KwsError, OSError) as e:
        print(f"phone_diagnosis: {e}", file=sys.stderr)
        return 2
    names = list(am.phone_set.phones)
    mins = phone_min_frames(am.phone_set) or {}
    report = {}
    for kw in args.keywords:
        try:
            phones = [p for w in pronounce(kw, args.lang).words for p in w.variants[0]]
        except KwsError as e:
            print(f"phone_diagnosis: {e}", file=sys.stderr)
            return 2
        idx = [names.index(p) for p in phones]
        clips = [r for r in rows if r["text"].strip().lower() == kw.lower()]
        if not clips:
            print(f"phone_diagnosis: no recording of {kw!r} in {man}", file=sys.stderr)
            return 2
        per, heard = [], [Counter() for _ in phones]
        for i, r in enumerate(clips):
            # the detector's front end (level control on), so the phones are scored as detected
            lp = am.log_posteriors(log_mel(load_audio(man.parent / r["path"]), level_control=True))
            sc, frames = phone_scores(lp, idx, [mins.get(p, 4) for p in phones], weight)
            per.append(sc)
            for k, f in enumerate(frames):
                heard[k].update(names[j] for j in lp[f].argmax(1))
            if i % 50 == 49:
                print(f"phone_diagnosis: {kw}: {i + 1}/{len(clips)}", file=sys.stderr)
        a = np.array(per)
        worst = a[a.mean(1) <= np.percentile(a.mean(1), 25)]
        report[kw] = {"clips": len(clips), "uncertainty_weight": weight, "score_median": float(np.median(a.mean(1))),
                      "phones": [{"phone": p, "mean": round(float(a[:, k].mean()), 3),
                                  "worst_quarter": round(float(worst[:, k].mean()), 3),
                                  "heard_as": [n for n, _ in heard[k].most_common(3)]}
                                 for k, p in enumerate(phones)]}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for kw, r in report.items():
            print(f"{kw}: {r['clips']} clips, median score {r['score_median']:.2f} (uncertainty weight {weight:g})")
            for p in r["phones"]:
                print(f"  {p['phone']:3s} mean {p['mean']:6.2f}  worst quarter {p['worst_quarter']:6.2f}  "
                      f"network's best phone there: {' '.join(p['heard_as'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
