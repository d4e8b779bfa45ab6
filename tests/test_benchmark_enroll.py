"""Enrolment time for one keyword, calibration on the shipped negative cache included (goal < 1 s)."""

from __future__ import annotations

import time

from kws import calibration as cal
from kws import enroll


def test_bench_enroll_one_keyword(benchmark):
    enroll(["hey jarvis"], "en")  # warm: pronunciation tables, cache file, decoder

    texts = iter([f"hey {w}" for w in ["jarvis", "computer", "marvin", "sheila", "robot", "kitchen",
                                       "garden", "window", "lantern", "rocket", "pepper", "falcon"] * 20])

    def run():
        return enroll([next(texts)], "en")

    res = benchmark.pedantic(run, rounds=8, iterations=1, warmup_rounds=1)
    assert res.model.keywords[0].expected_fa_per_hour >= 0  # calibrated, not the fallback
    c = cal.default_cache("en")
    benchmark.extra_info.update(cache_hours=c.hours, cache_frames=len(c.counts))
    assert benchmark.stats.stats.median < 1.0


def test_cache_load_is_fast():
    """Loading a cache and building its dense posteriors (once per process) is also cheap."""
    t = time.perf_counter()
    c = cal.NegativeCache.load(cal.default_cache_path("en"))
    c.dense()
    assert time.perf_counter() - t < 1.0
