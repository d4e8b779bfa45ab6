#!/usr/bin/env python3
"""Make the demo's test audio: another phrase, then the wake word, in quiet room noise.

    python tools/make_demo_audio.py --lang en --keyword 'hey jarvis' --other 'good morning everyone' -o out/demo_en.wav

Speech comes from espeak-ng (Debian package `espeak-ng`). Where it is missing, the clips
shipped in tools/demo/ (made by this script with espeak-ng, `--ship`) are used instead,
so the demo always has audio to detect in. The layout (1 s noise, other phrase, 0.8 s
noise, wake word, 1 s noise) lets a person check the reported start time by ear.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHIPPED = HERE / "demo"
VOICE = {"en": "en-us", "ko": "ko"}


def speak(text: str, lang: str) -> np.ndarray:
    from kws.audio import load_audio
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", VOICE[lang], "-s", "150", "-w", str(wav), text],
                       check=True, timeout=60)
        return load_audio(wav)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", choices=["en", "ko"], default=None,
                    help="language of both phrases (default: the keyword's script, as kws-enroll)")
    ap.add_argument("--keyword", required=True)
    ap.add_argument("--other", required=True, help="a phrase that is not the wake word")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--ship", action="store_true", help="write the fallback clip into tools/demo/")
    args = ap.parse_args()
    import soundfile

    if args.lang is None:
        from kws.errors import KwsError
        from kws.pronunciation import guess_language
        try:
            args.lang = guess_language(args.keyword)
        except KwsError as e:
            print(f"make_demo_audio: error: {e}", file=sys.stderr)
            return 2

    if shutil.which("espeak-ng"):
        rng = np.random.default_rng(0)
        noise = lambda s: rng.normal(0, 30, int(s * 16000)).astype(np.int16)  # noqa: E731
        audio = np.concatenate([noise(1.0), speak(args.other, args.lang), noise(0.8),
                                speak(args.keyword, args.lang), noise(1.0)])
        if args.ship:
            SHIPPED.mkdir(exist_ok=True)
            soundfile.write(SHIPPED / f"demo_{args.lang}.flac", audio, 16000, subtype="PCM_16")
        source = "espeak-ng"
    else:
        shipped = SHIPPED / f"demo_{args.lang}.flac"
        if not shipped.is_file():
            print(f"make_demo_audio: error: no espeak-ng and no shipped clip {shipped}", file=sys.stderr)
            return 1
        audio, _ = soundfile.read(shipped, dtype="int16")
        source = f"{shipped} (espeak-ng not installed)"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(args.output, audio, 16000, subtype="PCM_16")
    print(f"{args.output}: {len(audio) / 16000:.1f} s from {source}: "
          f"{args.other!r}, then {args.keyword!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
