"""False rejections and false alarms per hour for keywords enrolled from text, on real speech.

    python tools/eval_detection.py --data ../shared/data --lang en [--json OUT] [--plot OUT.png]

English: positives are the `en_wakewords` clips of `jarvis`, `view glass`, `snowboy`,
`amelia`, `android` and `hey savant` (speakers the acoustic model never heard: the
wake-word set is not used in training, nor its texts); negatives are the
held-out `en_speechocean` speakers, `en_phrases` (near-miss phrases) and
`en_speech_commands` (other words), none of which contain the keywords.
Korean: keywords are phrases taken from the held-out speakers' transcripts (`pfa pma nea
ava kih`); an utterance is a positive for a phrase if its transcript contains it, else a
negative.

Each clip is decoded once at a very low threshold; a detection with peak score `s` is
counted as firing at every threshold <= s (the decoder's peak picking makes this exact up
to refractory interactions). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from kws import enroll
from kws.acoustic import AcousticModel
from kws.audio import load_audio
from kws.detector import Detector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from splits import KO_DEV, en_dev_speakers  # noqa: E402
EN_KEYWORDS = {"jarvis": "jarvis", "view glass": "view glass", "snowboy": "snowboy",
               "amelia": "amelia", "android": "android", "hey savant": "hey savant"}
KO_PHRASES = ["고객님", "죄송합니다", "비행기", "주말에", "드디어", "때문에"]
FLOOR_THRESHOLD = -5.9


def read_manifest(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["path"] = str(folder / r["path"])
        r["duration_s"] = float(r["duration_s"])
    return rows


def en_speechocean_dev(rows: list[dict]) -> list[dict]:
    dev = en_dev_speakers(r["speaker"] for r in rows)
    return [r for r in rows if r["speaker"] in dev]


def run(det: Detector, rows: list[dict], label: str) -> list[list[tuple[str, float]]]:
    """Detections (keyword, score) per clip, with progress."""
    out = []
    t0 = time.time()
    for i, r in enumerate(rows):
        dets = det.detect(load_audio(r["path"]))
        out.append([(d.keyword, d.score) for d in dets])
        if (i + 1) % 100 == 0 or i + 1 == len(rows):
            print(f"  {label}: {i + 1}/{len(rows)} clips, {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def curve(pos_best: np.ndarray, neg_scores: np.ndarray, neg_hours: float, thresholds: np.ndarray):
    frr = np.array([(pos_best < t).mean() for t in thresholds])
    fah = np.array([(neg_scores >= t).sum() / neg_hours for t in thresholds])
    return frr, fah


def frr_at(frr: np.ndarray, fah: np.ndarray, budget: float) -> float:
    ok = fah <= budget
    return float(frr[ok].min()) if ok.any() else 1.0


def build(texts: list[str], lang: str, args: argparse.Namespace):
    kw = {} if args.states_per_phone is None else {"states_per_phone": args.states_per_phone}
    model = enroll(texts, lang, threshold=FLOOR_THRESHOLD, **kw).model
    if args.floor is not None:
        model.emission_floor = args.floor
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", type=Path)
    ap.add_argument("--lang", choices=["en", "ko"], required=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--keywords", help="comma-separated subset of the English wake words")
    ap.add_argument("--limit", type=int, default=0, help="at most this many clips per set (quick runs)")
    ap.add_argument("--states-per-phone", type=int, default=None, help="graph option to compare")
    ap.add_argument("--floor", type=float, default=None, help="emission floor to compare")
    ap.add_argument("--acoustic", type=Path, help="acoustic model .tflite (default: the shipped one)")
    args = ap.parse_args()
    thresholds = np.linspace(-6.0, 0.0, 601)
    results = []
    if args.lang == "en":
        wake = read_manifest(args.data / "en_wakewords")
        neg_rows = (en_speechocean_dev(read_manifest(args.data / "en_speechocean"))
                    + read_manifest(args.data / "en_phrases")
                    + [r for r in read_manifest(args.data / "en_speech_commands") if r["text"]])
        if args.limit:
            neg_rows = neg_rows[: args.limit]
        keywords = args.keywords.split(",") if args.keywords else list(EN_KEYWORDS)
        model = build(keywords, "en", args)
        det = Detector(model, acoustic=AcousticModel(args.acoustic) if args.acoustic else None)
        neg = run(det, neg_rows, "negatives")
        hours = sum(r["duration_s"] for r in neg_rows) / 3600
        speakers = len({r["speaker"] for r in neg_rows})
        for kw in keywords:
            text = EN_KEYWORDS[kw]
            pos_rows = [r for r in wake if r["text"].strip().lower() == text]
            if args.limit:
                pos_rows = pos_rows[: args.limit]
            pos = run(det, pos_rows, kw)
            best = np.array([max([s for k, s in d if k == kw], default=-np.inf) for d in pos])
            negs = np.array([s for d in neg for k, s in d if k == kw])
            results.append((kw, best, negs, hours, speakers, len(pos_rows)))
    else:
        rows = [r for r in read_manifest(args.data / "ko_emotiontts") if r["speaker"] in KO_DEV]
        if args.limit:
            rows = rows[: args.limit]
        phrases = [p for p in KO_PHRASES if any(p in r["text"] for r in rows)]
        model = build(phrases, "ko", args)
        det = Detector(model, acoustic=AcousticModel(args.acoustic) if args.acoustic else None)
        dets = run(det, rows, "ko dev")
        for kw in phrases:
            has = np.array([kw in r["text"] for r in rows])
            best = np.array([max([s for k, s in d if k == kw], default=-np.inf) for d in dets])[has]
            negs = np.array([s for d, h in zip(dets, has) if not h for k, s in d if k == kw])
            hours = sum(r["duration_s"] for r, h in zip(rows, has) if not h) / 3600
            speakers = len({r["speaker"] for r, h in zip(rows, has) if not h})
            results.append((kw, best, negs, hours, speakers, int(has.sum())))
    report = []
    for kw, best, negs, hours, speakers, n_pos in results:
        frr, fah = curve(best, negs, hours, thresholds)
        row = {"keyword": kw, "positives": n_pos, "negative_hours": round(hours, 3),
               "negative_speakers": speakers,
               "frr_at_1_fa_per_h": frr_at(frr, fah, 1.0), "frr_at_0.5_fa_per_h": frr_at(frr, fah, 0.5),
               "frr_at_threshold_-1": float((best < -1.0).mean()),
               "fa_per_h_at_threshold_-1": float((negs >= -1.0).sum() / hours)}
        report.append(row)
        print(f"{kw}: {n_pos} positives, {hours:.2f} h negatives ({speakers} speakers): "
              f"FRR {row['frr_at_1_fa_per_h']:.1%} at 1 FA/h, {row['frr_at_0.5_fa_per_h']:.1%} at 0.5 FA/h; "
              f"at threshold -1: FRR {row['frr_at_threshold_-1']:.1%}, {row['fa_per_h_at_threshold_-1']:.1f} FA/h")
        if args.plot:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            plt.plot(np.maximum(fah, 1e-2), frr, label=kw)
    if args.plot:
        plt.xscale("log")
        plt.xlabel("false alarms per hour")
        plt.ylabel("false-rejection rate")
        plt.grid(True, which="both", alpha=0.3)
        plt.legend()
        plt.title(f"DET, {args.lang}, held-out speakers")
        plt.savefig(args.plot, dpi=120)
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
