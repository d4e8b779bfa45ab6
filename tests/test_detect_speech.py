"""End to end on synthesised speech: enrol from text, detect in audio espeak-ng speaks.

Needs espeak-ng (Debian package) and the shipped acoustic models; skips cleanly without.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kws import enroll
from kws.acoustic import DATA_DIR
from kws.audio import load_audio
from kws.cli import detect_main
from kws.detector import Detector

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def need_model(lang: str) -> None:
    if not (DATA_DIR / f"{lang}.tflite").is_file():
        pytest.skip(f"no shipped {lang} acoustic model")


def speak(tmp_path: Path, text: str, voice: str, name: str) -> Path:
    """espeak-ng's speech with a second of quiet noise on each side (as a mic would hear)."""
    raw = tmp_path / f"{name}_raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    speech = load_audio(raw)
    rng = np.random.default_rng(0)
    pad = lambda: rng.normal(0, 30, 16000).astype(np.int16)  # noqa: E731
    audio = np.concatenate([pad(), speech, pad()])
    out = tmp_path / f"{name}.wav"
    import soundfile
    soundfile.write(out, audio, 16000, subtype="PCM_16")
    return out


@pytest.mark.parametrize("lang,voice,keyword,other", [
    ("en", "en-us", "hey jarvis", "good morning everyone"),
    ("ko", "ko", "자비스야", "오늘 날씨가 좋네요"),
])
def test_enrolled_phrase_detected_other_phrase_not(tmp_path, lang, voice, keyword, other):
    need_model(lang)
    det = Detector(enroll([keyword], lang).model)
    hit = det.detect_file(speak(tmp_path, keyword, voice, "hit"))
    assert [d.keyword for d in hit] == [keyword]
    assert 0.8 <= hit[0].start_s and hit[0].end_s <= hit[0].start_s + 3
    miss = det.detect_file(speak(tmp_path, other, voice, "miss"))
    assert miss == []


def test_kws_detect_json_and_threshold_superset(tmp_path, capsys):
    need_model("en")
    model = tmp_path / "m.kwm"
    enroll(["hey jarvis"], "en").model.save(model)
    wav = speak(tmp_path, "hey jarvis", "en-us", "hj")
    assert detect_main(["--model", str(model), "--json", str(wav)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["keyword"] for r in rows] == ["hey jarvis"]
    assert set(rows[0]) == {"file", "keyword", "start_s", "end_s", "score"}
    assert detect_main(["--model", str(model), "--json", "--threshold", "-3", str(wav)]) == 0
    loose = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(loose) >= len(rows)


def test_kws_detect_bad_audio_is_one_line(tmp_path, capsys):
    need_model("en")
    model = tmp_path / "m.kwm"
    enroll(["hey jarvis"], "en").model.save(model)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 50)
    assert detect_main(["--model", str(model), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "notes.wav" in err


def test_kws_listen_with_a_fake_microphone(tmp_path, capsys, monkeypatch):
    """The microphone is the one thing a test double may stand in for."""
    need_model("en")
    model = tmp_path / "m.kwm"
    enroll(["hey jarvis"], "en").model.save(model)
    audio = load_audio(speak(tmp_path, "hey jarvis", "en-us", "mic"))

    def fake_mic(frames_per_chunk: int = 1600):
        for i in range(0, len(audio), frames_per_chunk):
            yield audio[i:i + frames_per_chunk]
        raise KeyboardInterrupt  # the user presses Ctrl-C

    import kws.cli
    monkeypatch.setattr(kws.cli, "_microphone_chunks", fake_mic)
    assert kws.cli.listen_main(["--model", str(model)]) == 0
    out, err = capsys.readouterr()
    assert out.count("hey jarvis") == 1
    assert "stopped" in err


def test_kws_listen_without_microphone_support_is_one_line(tmp_path, capsys, monkeypatch):
    need_model("en")
    model = tmp_path / "m.kwm"
    enroll(["hey jarvis"], "en").model.save(model)
    import builtins

    real_import = builtins.__import__

    def no_pyaudio(name, *a, **k):
        if name == "pyaudio":
            raise ImportError("no pyaudio")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pyaudio)
    import kws.cli
    assert kws.cli.listen_main(["--model", str(model)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kws-listen: error: no microphone support")


def test_a_recording_picks_how_the_user_reads_a_word_the_dictionary_lacks(tmp_path):
    """'kaia' is not in CMUdict; the G2P model's best guess is K EY AH ("kay-a"), espeak-ng
    says K AY AH ("kai-a"), the model's third reading. From text the report says the phones
    are a guess and names the others; with one espeak-ng recording, enrolment picks K AY AH,
    and a second rendition (another voice) scores higher against it than against the guess."""
    need_model("en")
    text_only = enroll(["hey kaia"], "en")
    assert text_only.model.keywords[0].pronunciation == "hey kaia: HH EY | K EY AH"
    notes = [w for w in text_only.report.keywords[0].warnings if w.code == "guessed"]
    assert len(notes) == 1 and not notes[0].weak and "K AY AH" in notes[0].message and "'kaia'" in notes[0].message
    guessed = text_only.report.keywords[0].to_dict()["guessed"]
    assert [{k: g[k] for k in ("word", "reading", "also_likely")} for g in guessed] == [
        {"word": "kaia", "reading": [["K", "EY", "AH"]],
         "also_likely": [["K", "IY", "AH"], ["K", "AY", "AH"], ["K", "EY", "AA"]]}]
    probs = [guessed[0]["probability"], *guessed[0]["also_likely_probability"]]
    assert probs == sorted(probs, reverse=True) and 0.3 < probs[0] < 0.6 and sum(probs) <= 1.0
    assert "46%" in notes[0].message and "K AY AH 6%" in notes[0].message
    rec = speak(tmp_path, "hey kaia", "en-us", "rec")
    picked = enroll(["hey kaia"], "en", recordings=[rec])
    assert picked.model.keywords[0].pronunciation == "hey kaia: HH EY | K AY AH"
    assert picked.report.keywords[0].variant and not [w for w in picked.report.keywords[0].warnings
                                                      if w.code == "guessed"]
    assert picked.report.keywords[0].guessed == [] and enroll(["hey jarvis"], "en").report.keywords[0].guessed == []
    other = load_audio(speak(tmp_path, "hey kaia", "en-us+m3", "other"))

    def best(model) -> float:
        return max([d.score for d in Detector(model, threshold=-5.0).detect(other)] or [-np.inf])

    assert best(picked.model) > best(text_only.model)
