#!/usr/bin/env bash
# Fuzz the keyword-model reader and the decoder with libFuzzer (one core).
#
#   tools/fuzz.sh [SECONDS] [OUTDIR]
#   FUZZ_TARGET=proto tools/fuzz.sh [SECONDS] [OUTDIR]   # the flashing protocol's
#       frame receiver (kws_core/fuzz/fuzz_proto.c; default OUTDIR build/fuzz-proto)
#
# SECONDS: how long libFuzzer runs (default 60). OUTDIR: where everything goes
# (default build/fuzz): the fuzz_model binary, seeds/ (real models made by
# tools/make_fuzz_corpus.py), corpus/ (what libFuzzer grows), fuzz.log, and any
# crash-*/leak-*/timeout-*/oom-* file libFuzzer finds.
#
# Needs clang with the libFuzzer and sanitizer runtimes (Debian/Ubuntu:
# `apt-get install clang libclang-rt-14-dev`, or the libclang-rt-NN-dev that
# matches your clang), and a python with the kws package installed: set PYTHON
# (default python3). CLANG picks the compiler (default clang).
#
# Ends with one line:
#   fuzz summary: runs=N seconds=S exec/s=E corpus=C crashes=K
# Exit status: 0 no crash, 1 crash found (its file is left in OUTDIR),
# 2 the target could not be built or the seeds could not be made.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-60}"
TARGET="${FUZZ_TARGET:-model}"
case "$TARGET" in
    model) DEFAULT_OUT="$ROOT/build/fuzz"
           SRCS=("$ROOT/kws_core/fuzz/fuzz_model.c" "$ROOT/kws_core/src/kws_model.c" "$ROOT/kws_core/src/kws_decoder.c") ;;
    proto) DEFAULT_OUT="$ROOT/build/fuzz-proto"
           SRCS=("$ROOT/kws_core/fuzz/fuzz_proto.c" "$ROOT/kws_core/src/kws_proto.c" "$ROOT/kws_core/src/kws_model.c") ;;
    *) echo "fuzz.sh: FUZZ_TARGET must be model or proto, got '$TARGET'" >&2; exit 2 ;;
esac
OUTDIR="${2:-$DEFAULT_OUT}"
PYTHON="${PYTHON:-python3}"
CLANG="${CLANG:-clang}"

case "$SECS" in
    ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$SECS'" >&2; exit 2 ;;
esac

mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
BIN="$OUTDIR/fuzz_$TARGET"
SEEDS="$OUTDIR/seeds"
CORPUS="$OUTDIR/corpus"
LOG="$OUTDIR/fuzz.log"
mkdir -p "$CORPUS"

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "fuzz.sh: $CLANG not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

echo "fuzz.sh: building $BIN" >&2
if ! "$CLANG" -std=c99 -Wall -Wextra -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$ROOT/kws_core/include" \
        "${SRCS[@]}" -lm -o "$BIN"; then
    echo "fuzz.sh: build failed (if the libFuzzer or sanitizer runtime is missing: apt-get install libclang-rt-14-dev, or the one for your clang)" >&2
    exit 2
fi

echo "fuzz.sh: making seeds in $SEEDS with $PYTHON" >&2
rm -rf "$SEEDS"
if [ "$TARGET" = proto ]; then
    # Frames as kws-flash sends them (kws.flash.encode_frame), text lines, a bad frame.
    mkdir -p "$SEEDS"
    if ! "$PYTHON" - "$SEEDS" >&2 <<'PYEOF'
import struct, sys
from pathlib import Path
from kws.flash import encode_frame
out = Path(sys.argv[1])
seeds = {
    "hello": encode_frame(1, 5, struct.pack("<HH", 1, 520)),
    "info": encode_frame(2, 6),
    "begin": encode_frame(3, 7, struct.pack("<III", 456, 0x1234, 0x12D221D3)),
    "data": encode_frame(4, 8, struct.pack("<I", 0) + bytes(range(256)) * 2),
    "commit_bye": encode_frame(5, 9) + encode_frame(7, 10),
    "mixed": b"READY\npost 12\r\n" + encode_frame(5, 0xC0) + b"\xc0\xdb\x01\xc0" + encode_frame(2, 0xDB, b"\xdb\xc0"),
}
for name, data in seeds.items():
    (out / name).write_bytes(data)
PYEOF
    then
        echo "fuzz.sh: could not make the seed corpus (is kws installed for $PYTHON?)" >&2
        exit 2
    fi
elif ! "$PYTHON" "$ROOT/tools/make_fuzz_corpus.py" "$SEEDS" >&2; then
    echo "fuzz.sh: could not make the seed corpus (is kws installed for $PYTHON?)" >&2
    exit 2
fi
# Crash inputs kept as regression tests are seeds too.
REGRESSIONS="$ROOT/kws_core/fuzz/regressions"
[ "$TARGET" = model ] || REGRESSIONS="$ROOT/kws_core/fuzz/regressions-$TARGET"
for f in "$REGRESSIONS"/*; do
    case "$(basename "$f")" in README*|.*) continue ;; esac
    [ -f "$f" ] && cp "$f" "$SEEDS/regression-$(basename "$f")"
done

# Old artifacts from an earlier run would be counted as new crashes.
rm -f "$OUTDIR"/crash-* "$OUTDIR"/leak-* "$OUTDIR"/timeout-* "$OUTDIR"/oom-*

echo "fuzz.sh: fuzzing for ${SECS}s on one core, log in $LOG" >&2
T0="$(date +%s)"
set +e
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$BIN" -max_total_time="$SECS" -max_len=65536 -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$OUTDIR/" "$CORPUS" "$SEEDS" >"$LOG" 2>&1
RC=$?
set -e
WALL=$(( $(date +%s) - T0 ))
tail -n 40 "$LOG" >&2

# "Done N runs in S second(s)" (absent when libFuzzer stopped on a crash).
RUNS="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$LOG" | tail -n 1)"
ELAPSED="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$LOG" | tail -n 1)"
# Final stats (printed on a normal end and on a crash).
STAT_RUNS="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$LOG" | tail -n 1)"
STAT_EPS="$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$LOG" | tail -n 1)"
# Last status line: "#N <EVENT> cov: .. ft: .. corp: C/Sb .. exec/s: E ..".
LAST="$(grep -E '^#[0-9]+' "$LOG" | tail -n 1 || true)"
LAST_RUNS="$(printf '%s\n' "$LAST" | sed -n 's/^#\([0-9]*\).*/\1/p')"
LAST_EPS="$(printf '%s\n' "$LAST" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')"
LAST_CORP="$(printf '%s\n' "$LAST" | sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p')"

RUNS="${RUNS:-${STAT_RUNS:-${LAST_RUNS:-0}}}"
if [ -n "$ELAPSED" ] && [ "$ELAPSED" -gt 0 ]; then
    EPS=$((RUNS / ELAPSED))
else
    # No "Done" line: libFuzzer stopped early (a crash); use the wall time.
    ELAPSED="$WALL"
    if [ "$ELAPSED" -gt 0 ]; then EPS=$((RUNS / ELAPSED)); else EPS="${STAT_EPS:-${LAST_EPS:-0}}"; fi
fi
CORP="${LAST_CORP:-}"
if [ -z "$CORP" ]; then
    # No status line yet (stopped while loading the seeds): count the files.
    CORP="$(find "$CORPUS" "$SEEDS" -type f | wc -l | tr -d ' ')"
fi
CRASHES="$(find "$OUTDIR" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l | tr -d ' ')"

if [ "$CRASHES" -gt 0 ]; then
    echo "fuzz.sh: crash inputs:" >&2
    find "$OUTDIR" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) >&2
elif [ "$RC" -ne 0 ]; then
    echo "fuzz.sh: libFuzzer exited with status $RC but left no crash file; see $LOG" >&2
    CRASHES=1
fi

echo "fuzz summary: runs=$RUNS seconds=$ELAPSED exec/s=$EPS corpus=$CORP crashes=$CRASHES"
[ "$CRASHES" -eq 0 ]
