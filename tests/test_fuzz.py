"""Fuzzing of the C core's model reader and decoder (kws_core/fuzz/fuzz_model.c).

(a) Every saved crash input (kws_core/fuzz/regressions) and the generated seed corpus
    (tools/make_fuzz_corpus.py) run through the fuzz target built as a plain replay
    driver with gcc and AddressSanitizer/UndefinedBehaviorSanitizer.
(b) A short libFuzzer run (tools/fuzz.sh, 20 s) where clang and its libFuzzer runtime
    are installed (Debian: apt-get install clang libclang-rt-14-dev).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "kws_core"
FUZZ_SRC = CORE / "fuzz" / "fuzz_model.c"
REGRESSIONS = CORE / "fuzz" / "regressions"
SOURCES = [FUZZ_SRC, CORE / "src" / "kws_model.c", CORE / "src" / "kws_decoder.c"]
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def _regression_files() -> list[Path]:
    return sorted(p for p in REGRESSIONS.iterdir()
                  if p.is_file() and not p.name.startswith(".") and not p.name.startswith("README"))


@pytest.fixture(scope="module")
def seed_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fuzz-seeds")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "make_fuzz_corpus.py"), str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def replay_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    exe = tmp_path_factory.mktemp("fuzz-replay") / "fuzz_replay"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-O1",
           "-fno-omit-frame-pointer", "-DKWS_FUZZ_REPLAY", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", f"-I{CORE / 'include'}", *map(str, SOURCES), "-lm",
           "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return exe


def _replay(exe: Path, files: list[Path]) -> None:
    r = subprocess.run([str(exe), *map(str, files)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, **SANITIZER_ENV})
    done = set(re.findall(r"^ok (.+) \(\d+ bytes\)$", r.stdout, re.M))
    missing = [str(f) for f in files if str(f) not in done]
    assert r.returncode == 0 and not missing, (
        f"replay exited {r.returncode}; first input not done: {missing[:1]}\n"
        + r.stdout[-1500:] + r.stderr[-6000:])


def test_replay_regressions_and_seed_corpus(replay_driver: Path, seed_corpus: Path):
    seeds = sorted(seed_corpus.iterdir())
    # The corpus has real models (Korean and English) and damaged ones.
    assert len(seeds) >= 20
    assert any(p.name.startswith("ko_") for p in seeds)
    assert any(p.name.startswith("en_") for p in seeds)
    assert any("_bad_" in p.name for p in seeds)
    _replay(replay_driver, _regression_files() + seeds)


def _libfuzzer_available(tmp: Path) -> bool:
    clang = os.environ.get("CLANG", "clang")
    if shutil.which(clang) is None:
        return False
    src = tmp / "probe.c"
    src.write_text("#include <stddef.h>\n#include <stdint.h>\n"
                   "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                   " { (void)d; (void)n; return 0; }\n")
    r = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", str(src), "-o",
                        str(tmp / "probe")], capture_output=True, text=True, timeout=120)
    return r.returncode == 0


def test_libfuzzer_short_run(tmp_path: Path):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    probe = tmp_path / "probe"
    probe.mkdir()
    if not _libfuzzer_available(probe):
        pytest.skip("needs clang with libFuzzer (apt-get install clang libclang-rt-14-dev)")
    out = tmp_path / "fuzz"
    r = subprocess.run(["bash", str(ROOT / "tools" / "fuzz.sh"), "20", str(out)],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "PYTHON": sys.executable})
    m = re.search(r"^fuzz summary: runs=(\d+) seconds=(\d+) exec/s=(\d+) corpus=(\d+) crashes=(\d+)$",
                  r.stdout, re.M)
    crash_files = sorted(p.name for p in out.glob("*")
                         if p.name.startswith(("crash-", "leak-", "timeout-", "oom-")))
    detail = f"exit {r.returncode}, crash files {crash_files}\n{r.stdout[-1000:]}\n{r.stderr[-6000:]}"
    assert m is not None, detail
    runs, _secs, _eps, corpus, crashes = map(int, m.groups())
    assert r.returncode == 0 and crashes == 0 and not crash_files, detail
    assert runs > 10_000, detail
    assert corpus > 0, detail
