#!/usr/bin/env python3
"""Synthetic training speech with espeak-ng (or flite/festival): many voices, rates and pitches.

    python tools/synth_speech.py --lang ko --data ../shared/data --out /tmp/synth_ko --n 2500
    python tools/synth_speech.py --lang en --engine flite --data ../shared/data --out /tmp/synth_en_fl --n 2000

Texts are the transcripts of the *training* speakers only (tools/splits.py), so no
held-out sentence is ever spoken by the synthesiser. Each clip gets a random espeak-ng
voice variant (male/female/klatt...), speaking rate and pitch; the output folder has the
same layout as ../shared/data (FLAC 16 kHz + manifest.csv with `speaker` = voice variant),
so tools/train_acoustic.py --extra-set and tools/align_pocketsphinx.py read it like any
other set. Synthetic speech is a supplement: only real speech says how a detector does
for people.

`--engine flite` (English only; Debian packages `flite`, and optionally `festival`
`festvox-kallpc16k` `festvox-kdlpc16k` `festvox-us-slt-hts`) speaks with voices built from
recordings of real speakers (flite's kal16, awb, rms, slt; festival's kal and ked diphones
and the slt HTS voice), each clip with a random speaking rate and, for flite, pitch: fewer
voices than espeak-ng's formant variants, but human timbre and coarticulation.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from splits import TRAINING_SETS, is_dev  # noqa: E402

VOICES = {"ko": ["ko"], "en": ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
                               "en-us-nyc"]}


def variants() -> list[str]:
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout
    names = [line.split()[3] for line in out.splitlines()[1:] if len(line.split()) > 3]
    return [n for n in names if n]


def say_espeak(lang: str, vars_: list[str], text: str, wav: str, rng) -> str:
    """Speak `text` into `wav` with a random espeak-ng voice, variant, rate and pitch;
    returns the speaker label (voice+variant)."""
    voice = VOICES[lang][rng.integers(len(VOICES[lang]))]
    var = vars_[rng.integers(len(vars_))]
    rate = int(rng.uniform(120, 210))
    pitch = int(rng.uniform(15, 85))
    subprocess.run(["espeak-ng", "-v", f"{voice}+{var}", "-s", str(rate), "-p", str(pitch),
                    "-w", wav, text], check=True, capture_output=True)
    return f"{voice}+{var}"


def flite_voices() -> list[tuple[str, str]]:
    """(engine, voice) pairs installed here: flite's built-in voices, festival's where present."""
    out = []
    if shutil.which("flite"):
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        out += [("flite", v) for v in ("kal16", "awb", "rms", "slt") if v in listed.split()]
    if shutil.which("text2wave"):
        for v, d in (("kal_diphone", "english/kal_diphone"), ("ked_diphone", "english/ked_diphone"),
                     ("cmu_us_slt_arctic_hts", "us/cmu_us_slt_arctic_hts")):
            if os.path.isdir(os.path.join("/usr/share/festival/voices", d)):
                out.append(("festival", v))
    if not out:
        sys.exit("synth_speech: --engine flite needs flite (apt-get install flite) or festival")
    return out


def say_flite(engine: str, voice: str, text: str, wav: str, rng) -> str:
    """Speak `text` into `wav` with a random rate (and, for flite, mean pitch); returns the
    speaker label (engine:voice)."""
    stretch = float(rng.uniform(0.8, 1.3))
    if engine == "flite":
        pitch = {"slt": (150, 230)}.get(voice, (85, 140))
        f0 = int(rng.uniform(*pitch))
        subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.2f}",
                        "--setf", f"int_f0_target_mean={f0}", "-t", text, "-o", wav],
                       check=True, capture_output=True)
        return f"flite:{voice}"
    scheme = f"(voice_{voice}) (Parameter.set 'Duration_Stretch {stretch:.2f})"
    subprocess.run(["text2wave", "-eval", scheme, "-o", wav], input=text, text=True,
                   check=True, capture_output=True)
    return f"festival:{voice}"


def training_texts(data: str, lang: str) -> list[str]:
    texts = []
    for s in TRAINING_SETS[lang]:
        with open(os.path.join(data, s, "manifest.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        held_out = is_dev(s, rows)
        texts += [r["text"] for r in rows if r["text"].strip() and not held_out(r)]
    return sorted(set(texts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lang", choices=["ko", "en"], required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=2000, help="number of clips")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--engine", choices=["espeak", "flite"], default="espeak",
                    help="espeak-ng formant voices (default) or flite/festival voices (English)")
    args = ap.parse_args()
    if args.engine == "flite" and args.lang != "en":
        sys.exit("synth_speech: --engine flite has English voices only")
    import soundfile as sf

    from kws.audio import load_audio
    rng = np.random.default_rng(args.seed)
    texts = training_texts(args.data, args.lang)
    vars_ = variants() if args.engine == "espeak" else []
    fvoices = flite_voices() if args.engine == "flite" else []
    os.makedirs(args.out, exist_ok=True)
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            text = texts[i % len(texts)] if i < len(texts) else texts[rng.integers(len(texts))]
            wav = os.path.join(tmp, "x.wav")
            if fvoices:
                speaker = say_flite(*fvoices[rng.integers(len(fvoices))], text, wav, rng)
            else:
                speaker = say_espeak(args.lang, vars_, text, wav, rng)
            x = load_audio(wav)  # resampled to 16 kHz
            pad = np.zeros(int(rng.uniform(0.1, 0.5) * 16000), np.int16)
            x = np.concatenate([pad, x, pad[: len(pad) // 2]]).astype(np.float64)
            # espeak-ng's silences are digital zeros, which no microphone gives (and which
            # break energy-based normalisation): add a faint noise floor
            x = np.clip(np.round(x + rng.normal(0, rng.uniform(1, 8), len(x))), -32768, 32767).astype(np.int16)
            rel = f"{i // 500:02d}/{i:05d}.flac"
            os.makedirs(os.path.join(args.out, os.path.dirname(rel)), exist_ok=True)
            sf.write(os.path.join(args.out, rel), x, 16000, subtype="PCM_16")
            rows.append({"path": rel, "duration_s": f"{len(x) / 16000:.2f}", "speaker": speaker,
                         "lang": args.lang, "text": text})
            if (i + 1) % 200 == 0 or i + 1 == args.n:
                print(f"synthesised {i + 1}/{args.n} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    with open(os.path.join(args.out, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["path", "duration_s", "speaker", "lang", "text"])
        w.writeheader()
        w.writerows(rows)
    hours = sum(float(r["duration_s"]) for r in rows) / 3600
    print(f"wrote {args.out}: {len(rows)} clips, {hours:.2f} h, {len({r['speaker'] for r in rows})} voices",
          file=sys.stderr)


if __name__ == "__main__":
    main()
