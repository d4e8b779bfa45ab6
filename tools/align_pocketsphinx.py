#!/usr/bin/env python3
"""Phone alignments of English training speech by PocketSphinx's en-us acoustic model.

    python tools/align_pocketsphinx.py --data ../shared/data --out /tmp/am_en/ps_align.npz

Why: the English training speech here is small (about 3 h) and flat-start Viterbi training
on it converges to sloppy alignments. PocketSphinx's continuous en-us model (trained on
far more speech, shipped inside the `pocketsphinx` wheel) force-aligns each utterance to
the same phone string that `kws.transcribe` gives (its words are added to the PocketSphinx
dictionary with our pronunciations), so the labels stay in our phone set and our
pronunciation rules. `tools/train_acoustic.py --init-align FILE` starts from these labels
instead of a flat start, then refines them with its own re-alignment rounds.

Only a training aid: nothing of PocketSphinx runs or ships in the detector.
Output: an .npz with one int8 array of phone indices (en-v1 set, 0 = sil) per frame, keyed
by the manifest path `set/relative/path`, 100 frames per second.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SETS = ("en_speechocean", "en_ljspeech")

_DEC = None
_COUNTER = [0]


def _decoder():
    global _DEC
    if _DEC is None:
        from pocketsphinx import Decoder
        _DEC = Decoder(samprate=16000, loglevel="FATAL")
    return _DEC


def _spelled_words(text: str) -> list[str]:
    """The transcript's words as PocketSphinx spells them (lower case, letters and ')."""
    import re
    return [w for w in (re.sub(r"[^a-z']", "", t) for t in text.lower().split()) if w]


def align_one(job: tuple[str, str, str]) -> tuple[str, np.ndarray | None, str]:
    key, path, text = job
    from kws.audio import load_audio
    from kws.phonesets import ENGLISH
    from kws.transcribe import transcribe
    global _DEC
    d = _decoder()
    try:
        x = load_audio(path)
        words = transcribe(text, "en", [])
        if not words:
            return key, None, "no words"
        if len(words) != len(_spelled_words(text)):
            return key, None, "words skipped by transcription"
        toks = []
        for w, spelled in zip(words, _spelled_words(text)):
            name = spelled if d.lookup_word(spelled) else None
            if name is None:  # unknown to PocketSphinx: add it with our pronunciation
                _COUNTER[0] += 1
                name = f"w{os.getpid()}x{_COUNTER[0]}"
                d.add_word(name, " ".join(w), False)
            toks.append(name)
        d.set_align_text(" ".join(toks))
        raw = x.tobytes()
        d.start_utt()
        d.process_raw(raw, full_utt=True)
        d.end_utt()
        n = 1 + max(0, (len(x) - 400) // 160)
        lab = np.zeros(n, np.int8)
        # pass 1 gives words (and optional silences/noises between them) with times
        segs = [(sg.word, sg.start_frame, sg.end_frame) for sg in d.seg()]
        spans = [(a, b) for wd, a, b in segs if not (wd.startswith("<") or wd.startswith("["))]
        d.set_alignment()
        d.start_utt()
        d.process_raw(raw, full_utt=True)
        got = 0
        try:
            d.end_utt()
            al = d.get_alignment()
        except RuntimeError:  # the phone-level pass fails on some utterances
            al = None
        if al is not None:
            for w in al:
                for ph in w:
                    if ph.name in ENGLISH.phones and ph.name != "sil":
                        lab[ph.start:ph.start + ph.duration] = ENGLISH.index(ph.name)
                        got += 1
        elif len(spans) == len(words):
            # fall back to the word times, phones spread evenly inside each word
            for (a, b), w in zip(spans, words):
                bounds = np.linspace(a, b + 1, len(w) + 1).round().astype(int)
                for i, p in enumerate(w):
                    lab[bounds[i]:bounds[i + 1]] = ENGLISH.index(p)
                    got += 1
            _DEC = None
        if got == 0:
            return key, None, "empty alignment"
        return key, lab, ""
    except Exception as exc:  # noqa: BLE001
        _DEC = None  # a failed search can leave the decoder unusable: start a fresh one
        return key, None, str(exc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--extra-set", action="append", default=[],
                    help="another folder in manifest.csv layout (e.g. tools/synth_speech.py output)")
    ap.add_argument("--only-extra", action="store_true", help="align only the --extra-set folders")
    args = ap.parse_args()
    jobs = []
    folders = [] if args.only_extra else [(s, os.path.join(args.data, s)) for s in SETS]
    folders += [(os.path.basename(os.path.normpath(f)), f) for f in args.extra_set]
    for s, folder in folders:
        with open(os.path.join(folder, "manifest.csv"), newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                jobs.append((f"{s}/{r['path']}", os.path.join(folder, r["path"]), r["text"]))
    from multiprocessing import Pool
    out, fails = {}, []
    t0 = time.time()
    with Pool(args.workers) as pool:
        for i, (key, lab, err) in enumerate(pool.imap_unordered(align_one, jobs, chunksize=8)):
            if lab is None:
                fails.append(f"{key}: {err}")
            else:
                out[key] = lab
            if (i + 1) % 200 == 0 or i + 1 == len(jobs):
                print(f"aligned {i + 1}/{len(jobs)} ({time.time() - t0:.0f} s, {len(fails)} failed)",
                      file=sys.stderr, flush=True)
    np.savez_compressed(args.out, **{k.replace("/", "|"): v for k, v in out.items()})
    for f in fails[:10]:
        print(f"  failed: {f}", file=sys.stderr)
    print(f"wrote {args.out}: {len(out)} utterances, {len(fails)} failed", file=sys.stderr)


if __name__ == "__main__":
    main()
