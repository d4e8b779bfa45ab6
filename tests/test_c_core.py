"""Build and run the C core's own unit tests (kws_core/tests), plain and sanitized."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CORE_TESTS = Path(__file__).resolve().parents[1] / "kws_core" / "tests"

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None,
                                reason="needs make and gcc")


@pytest.mark.parametrize("target", ["test", "sanitize"])
def test_c_unit_tests(target, tmp_path):
    r = subprocess.run(["make", "-s", "-C", str(CORE_TESTS), f"BUILD={tmp_path}", target],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = re.findall(r"^(\d+) passed, (\d+) failed$", r.stdout, re.M)
    assert summary, r.stdout[-2000:]
    assert all(int(f) == 0 and int(p) > 0 for p, f in summary)
