#!/usr/bin/env bash
# The main job on a built-in default: install into .venv, enrol one Korean and one
# English wake word from text, and show what was compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet .
mkdir -p out
.venv/bin/kws-enroll '헤이 카카오' '자비스야' --lang ko -o out/wake_ko.kwm
.venv/bin/kws-enroll 'hey jarvis' --lang en -o out/wake_en.kwm
.venv/bin/kws-model inspect out/wake_ko.kwm
