#!/usr/bin/env bash
# The main job on a built-in default: install into .venv, enrol Korean and English wake
# words from text (thresholds calibrated to 0.5 false alarms per hour), make test audio
# (espeak-ng speech, or the clips shipped in tools/demo/ without it), and detect the
# wake words in it with the shipped acoustic models and the C decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v espeak-ng >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng; } >/dev/null 2>&1 \
        || echo "demo: espeak-ng not installed; using the shipped demo clips" >&2
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet .
mkdir -p out
.venv/bin/kws-enroll '헤이 카카오' '자비스야' --lang ko -o out/wake_ko.kwm
.venv/bin/kws-enroll 'hey jarvis' --lang en -o out/wake_en.kwm
.venv/bin/kws-model inspect out/wake_ko.kwm
.venv/bin/python tools/make_demo_audio.py --lang ko --keyword '자비스야' --other '오늘 날씨가 좋네요' -o out/demo_ko.wav
.venv/bin/python tools/make_demo_audio.py --lang en --keyword 'hey jarvis' --other 'good morning everyone' -o out/demo_en.wav
echo "--- detections (expected: the wake word, once, after the other phrase):"
.venv/bin/kws-detect --model out/wake_ko.kwm out/demo_ko.wav
.venv/bin/kws-detect --model out/wake_en.kwm out/demo_en.wav
