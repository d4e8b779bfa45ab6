"""tools/make_demo_audio.py: the demo's clip (another phrase, then the wake word), in the
language of the wake word's script unless --lang says otherwise."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

import kws.decoder  # noqa: F401  (the installed package first)

ROOT = Path(__file__).resolve().parents[1]
TOOL = str(ROOT / "tools" / "make_demo_audio.py")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
def test_korean_clip_without_lang(tmp_path):
    out = tmp_path / "demo.wav"
    r = _run("--keyword", "자비스야", "--other", "안녕하세요", "-o", str(out))
    assert r.returncode == 0, r.stderr
    audio, rate = soundfile.read(out, dtype="int16")
    assert rate == 16000 and audio.ndim == 1
    assert len(audio) > 2.8 * 16000  # 2.8 s of noise around two spoken phrases
    loud = audio[16000:-16000].astype(float)
    assert abs(loud).max() > 1000 > abs(audio[:8000].astype(float)).max()  # speech between the quiet parts


def test_undecidable_script_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "demo.wav"
    r = _run("--keyword", "헤이 LG", "--other", "hello", "-o", str(out))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "one script" in r.stderr, r.stderr
    assert not out.exists()
