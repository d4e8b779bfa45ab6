"""Build the negative-speech calibration cache shipped in kws/data/calibration/.

    python tools/build_calibration_cache.py --data ../shared/data [--lang en|ko]
    python tools/build_calibration_cache.py --data ../shared/data --lang en --part verification -o /tmp/en_verify.npz
    python tools/build_calibration_cache.py --data ../shared/data --lang en --check-budgets [--verify-cache /tmp/en_verify.npz]

Runs the *shipped* acoustic model (kws/data/acoustic/LANG.tflite) over keyword-free
speech whose licence allows shipping derived data, and stores the quantised phone
log-posteriors with transcripts and the model's sha256 (format: docs/calibration.md).
Rerun it whenever the acoustic model changes: enrolment refuses a stale cache.

Split (speakers the acoustic model never heard; see tools/splits.py):
- en: the held-out en_speechocean speakers and the labelled en_speech_commands clips
  (yes/no/up/...; speakers never in training), each split by speaker (MD5 order, even
  positions -> calibration, odd -> verification).
- ko: ko_emotiontts held-out speakers: kih, nea -> calibration; ava, pfa, pma -> verification.
`--include-training-speakers` adds the acoustic model's training speakers to the
calibration part (more hours, but their posteriors are over-confident: see the doc).
This is the default (English: every other utterance of the training speakers, no LJ
Speech): the held-out calibration speakers alone give 0.45 h (en) and 0.16 h (ko), too
little to place a 0.5/h threshold (the tail fit then pushes thresholds to ~0 and most
wake words are missed); with the training speakers the held-out verification speech
stayed within budget (docs/calibration.md). `--held-out-only` restores the strict split.
Never uses noise/ (licence unclear) or en_wakewords (the evaluation positives).

`--check-budgets` enrols a few keywords against the calibration cache for several
budgets and counts their false alarms on the verification part (built on the fly when
--verify-cache is not given): the "held out from calibration" figures in the doc.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from splits import KO_DEV, en_dev_speakers  # noqa: E402

KO_CALIBRATION = ("kih", "nea")
LICENCES = {
    "en_speechocean": "CC BY 4.0 (speechocean762)",
    "en_speech_commands": "CC BY 4.0 (Google Speech Commands v0.02)",
    "en_ljspeech": "public domain (LJ Speech)",
    "ko_emotiontts": "CC BY-NC-SA (emotiontts open DB): non-commercial use only",
}
CHECK_KEYWORDS = {"en": ["hey jarvis", "computer", "alexa", "okay google", "yes"],
                  "ko": ["자비스야", "헤이 카카오", "고객님", "주말에", "네"]}
CHECK_BUDGETS = [0.5, 1.0, 2.0, 5.0, 10.0]


def read_manifest(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["source"] = f"{folder.name}/{r['path']}"
        r["path"] = str(folder / r["path"])
        r["duration_s"] = float(r["duration_s"])
        r["set"] = folder.name
    return rows


def _md5_halves(speakers) -> tuple[set[str], set[str]]:
    spk = sorted(set(speakers), key=lambda s: hashlib.md5(s.encode()).hexdigest())
    return set(spk[0::2]), set(spk[1::2])


def split_rows(data: Path, lang: str, include_training: bool = False) -> dict[str, list[dict]]:
    """{"calibration": rows, "verification": rows} for ``lang`` (see the module doc)."""
    if lang == "en":
        so = read_manifest(data / "en_speechocean")
        dev = en_dev_speakers(r["speaker"] for r in so)
        so_cal, so_ver = _md5_halves(dev)
        sc = [r for r in read_manifest(data / "en_speech_commands") if r["text"].strip()]
        sc_cal, sc_ver = _md5_halves(r["speaker"] for r in sc)
        cal = [r for r in so if r["speaker"] in so_cal] + [r for r in sc if r["speaker"] in sc_cal]
        ver = [r for r in so if r["speaker"] in so_ver] + [r for r in sc if r["speaker"] in sc_ver]
        if include_training:
            # every other utterance of the training speakers (about 1.25 h, 106 speakers):
            # enough hours to place a 0.5/h threshold, and the shipped cache stays < 5 MB
            cal += [r for r in so if r["speaker"] not in dev][::2]
    else:
        ko = read_manifest(data / "ko_emotiontts")
        cal = [r for r in ko if r["speaker"] in KO_CALIBRATION]
        ver = [r for r in ko if r["speaker"] in KO_DEV and r["speaker"] not in KO_CALIBRATION]
        if include_training:
            cal += [r for r in ko if r["speaker"] not in KO_DEV]
    return {"calibration": cal, "verification": ver}


def build_cache(rows: list[dict], lang: str, acoustic_path: Path | None = None, label: str = ""):
    from kws import _core
    from kws.acoustic import AcousticModel
    from kws.audio import load_audio
    from kws.calibration import (BAND, CACHE_VERSION, FRONT_END, MAX_PHONES_PER_FRAME, STEP,
                                 NegativeCache, Utterance, quantise, sha256_file, speech_span)

    acoustic_path = acoustic_path or ROOT / "kws" / "data" / "acoustic" / f"{lang}.tflite"
    am = AcousticModel(acoustic_path)
    fe = _core.FrontEnd()  # the detector's: level control on (meta "front_end")
    counts, phones, values, best, utts = [], [], [], [], []
    t0 = time.time()
    for i, r in enumerate(rows):
        pcm = load_audio(r["path"])
        fe.reset()
        feats = np.empty((len(pcm) // fe.frame_shift + 2, fe.n_mels), np.float32)
        n = fe.process(np.ascontiguousarray(pcm, dtype=np.int16), feats)
        lp = am.log_posteriors(feats[:n])
        if len(lp) == 0:
            continue
        c, p, v, b = quantise(lp)
        counts.append(c)
        phones.append(p)
        values.append(v)
        best.append(b)
        utts.append(Utterance(r["text"], r["source"], r["speaker"], len(lp), speech_span(lp)))
        if (i + 1) % 100 == 0 or i + 1 == len(rows):
            print(f"  {label}: {i + 1}/{len(rows)} clips, {time.time() - t0:.0f} s", file=sys.stderr)
    sets = sorted({r["set"] for r in rows})
    meta = {
        "version": CACHE_VERSION, "lang": lang, "phone_set_id": am.phone_set.id,
        "phone_set": am.phone_set.name, "n_phones": len(am.phone_set), "frame_shift_ms": 10,
        "acoustic_sha256": sha256_file(acoustic_path), "acoustic_note": am.card.raw.get("note", ""),
        "front_end": FRONT_END,
        "band_nats": BAND, "step_per_nat": STEP, "max_phones_per_frame": MAX_PHONES_PER_FRAME,
        "built": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sources": {s: LICENCES.get(s, "?") for s in sets},
        "speakers": len({(r["set"], r["speaker"]) for r in rows}),
        "licence_note": ("derived from ko_emotiontts (CC BY-NC-SA): non-commercial use only"
                         if lang == "ko" else "derived from CC BY 4.0 / public-domain speech"),
    }
    return NegativeCache(meta, utts, np.concatenate(counts), np.concatenate(phones), np.concatenate(values),
                         np.concatenate(best))


def check_budgets(cal, ver, lang: str, keywords: list[str], budgets: list[float], fold: str = "") -> list[dict]:
    """Enrol each keyword against ``cal`` for each budget; count false alarms on ``ver``."""
    import kws
    from kws.calibration import scan

    out = []
    for kw in keywords:
        for b in budgets:
            res = kws.enroll([kw], lang, max_false_alarms_per_hour=b, cache=cal)
            m = res.model
            k = m.keywords[0]
            peaks, hours = scan(m, ver, at_model_thresholds=True)[0]  # the detector's own decisions
            n = len(peaks)
            n_scan = sum(1 for p in scan(m, ver)[0][0] if p.score >= k.threshold)
            row = {"keyword": kw, "budget": b, "threshold": round(k.threshold, 4),
                   "expected": round(k.expected_fa_per_hour, 3), "measured": round(n / hours, 3),
                   "false_alarms": n, "false_alarms_scan_count": n_scan, "verify_hours": round(hours, 3),
                   "reachable": res.report.keywords[0].calibration.get("reachable"), "fold": fold}
            out.append(row)
            print(f"{kw!r:16} budget {b:5.2f}/h  threshold {k.threshold:7.3f}  expected "
                  f"{k.expected_fa_per_hour:6.2f}/h  measured {n / hours:6.2f}/h ({n} in {hours:.2f} h)",
                  file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", type=Path)
    ap.add_argument("--lang", choices=["en", "ko"], action="append",
                    help="language (repeat for both; default both)")
    ap.add_argument("--part", choices=["calibration", "verification"], default="calibration")
    ap.add_argument("-o", "--output", type=Path, help="cache file (default kws/data/calibration/LANG.npz)")
    ap.add_argument("--acoustic", type=Path, help="acoustic model .tflite (default: the shipped one)")
    ap.add_argument("--include-training-speakers", action="store_true",
                    help="add the acoustic model's training speakers (the default)")
    ap.add_argument("--held-out-only", action="store_true",
                    help="only held-out calibration speakers (en 0.45 h, ko 0.16 h: too few to place 0.5/h)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many clips (quick runs)")
    ap.add_argument("--check-budgets", action="store_true",
                    help="measure false alarms on the verification part for several budgets")
    ap.add_argument("--verify-cache", type=Path, help="prebuilt verification cache for --check-budgets")
    ap.add_argument("--json", type=Path, help="write --check-budgets results here")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"build_calibration_cache: error: no data folder {args.data}", file=sys.stderr)
        return 1
    from kws.calibration import NegativeCache

    def default_cache_path(lang: str) -> Path:  # the repository's copy, not an installed one
        return ROOT / "kws" / "data" / "calibration" / f"{lang}.npz"

    results = []
    for lang in args.lang or ["en", "ko"]:
        if args.check_budgets:
            cal = NegativeCache.load(args.output or default_cache_path(lang))
            if args.verify_cache:
                ver = NegativeCache.load(args.verify_cache)
            else:
                rows = split_rows(args.data, lang)["verification"]
                ver = build_cache(rows[: args.limit] if args.limit else rows, lang, args.acoustic, f"{lang} verification")
            rows = check_budgets(cal, ver, lang, CHECK_KEYWORDS[lang], CHECK_BUDGETS, "A")
            rows += check_budgets(ver, cal, lang, CHECK_KEYWORDS[lang], CHECK_BUDGETS, "B")  # roles swapped
            for b in CHECK_BUDGETS:
                for what, sel in (("all", [r for r in rows if r["budget"] == b]),
                                  ("budget met in calibration",
                                   [r for r in rows if r["budget"] == b and r["reachable"]])):
                    if not sel:
                        continue
                    n = sum(r["false_alarms"] for r in sel)
                    expected = sum(r["expected"] * r["verify_hours"] for r in sel)
                    hours = sum(r["verify_hours"] for r in sel)
                    print(f"{lang} budget {b:5.2f}/h, {what}: {len(sel)} keyword-folds, {hours:.2f} keyword-hours: "
                          f"{n} false alarms measured ({n / hours:.2f}/h), {expected:.1f} expected "
                          f"({expected / hours:.2f}/h)", file=sys.stderr)
            results += rows
            continue
        include = args.include_training_speakers or (not args.held_out_only
                                                     and args.part == "calibration")
        rows = split_rows(args.data, lang, include)[args.part]
        if args.limit:
            rows = rows[: args.limit]
        cache = build_cache(rows, lang, args.acoustic, f"{lang} {args.part}")
        out = args.output or default_cache_path(lang)
        out.parent.mkdir(parents=True, exist_ok=True)
        cache.save(out)
        print(f"{lang}: {len(cache.utterances)} utterances, {cache.hours:.3f} h, {cache.meta['speakers']} speakers, "
              f"{len(cache.counts)} frames, {len(cache.phones) / max(1, len(cache.counts)):.2f} phones/frame "
              f"-> {out} ({out.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    if args.json and results:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
