"""Shared fixtures: every test runs offline, with its own cache folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "kws_core"


class DownloadAttempted(AssertionError):
    pass


def _no_download(*args, **kwargs):
    raise DownloadAttempted(f"nltk.download{args!r} was called: tests must not use the network")


@pytest.fixture(scope="session", autouse=True)
def offline_cache(tmp_path_factory: pytest.TempPathFactory):
    """Temporary KWS_CACHE_DIR and a booby-trapped nltk.download for the whole session."""
    import nltk

    cache = tmp_path_factory.mktemp("kws-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KWS_CACHE_DIR", str(cache))
        mp.setattr(nltk, "download", _no_download)
        yield cache




@pytest.fixture(scope="session")
def dump_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kws_core/tests/frontend_dump.c built with gcc: the C front end as a command
    (int16 on stdin, float32 log-mel on stdout), for the agreement tests."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: cannot build the C front end")
    exe = tmp_path_factory.mktemp("frontend") / "frontend_dump"
    cmd = [gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
           f"-I{CORE / 'include'}", str(CORE / "tests" / "frontend_dump.c"),
           str(CORE / "src" / "kws_frontend.c"), "-o", str(exe), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"gcc failed:\n{r.stderr}"
    return exe
