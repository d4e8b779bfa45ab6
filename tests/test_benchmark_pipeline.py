"""Whole-pipeline throughput (front end + network + decoder) beside each stage alone, same run.

Figures are seconds of audio per CPU second on one core (the interpreter runs one thread);
docs/benchmarks.md has the latest. Skips without a shipped acoustic model.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from kws import _core, enroll
from kws.acoustic import DATA_DIR, AcousticModel
from kws.decoder import KeywordDecoder
from kws.detector import Detector

SECONDS = 60
LANG = "ko" if (DATA_DIR / "ko.tflite").is_file() else "en"
pytestmark = pytest.mark.skipif(not (DATA_DIR / f"{LANG}.tflite").is_file(), reason="no shipped acoustic model")
KEYWORD = {"ko": "자비스야", "en": "hey jarvis"}[LANG]


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(0, 2000, SECONDS * 16000), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def model():
    return enroll([KEYWORD], LANG).model


RESULTS: dict[str, float] = {}


def _cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _record(benchmark, name: str, fn) -> None:
    benchmark.pedantic(fn, rounds=3, iterations=1)
    cpu = min(_cpu(fn) for _ in range(2))
    RESULTS[name] = SECONDS / cpu
    benchmark.extra_info["audio_s_per_cpu_s"] = RESULTS[name]


def test_bench_pipeline(benchmark, audio, model):
    det = Detector(model)
    _record(benchmark, "pipeline", lambda: det.detect(audio))


def test_bench_frontend(benchmark, audio):
    fe = _core.FrontEnd()
    out = np.empty((SECONDS * 100 + 2, 40), np.float32)

    def run():
        fe.reset()
        fe.process(audio, out)
    _record(benchmark, "frontend", run)


def test_bench_network(benchmark, audio):
    from kws.features import log_mel
    am = AcousticModel.default(LANG)
    feats = log_mel(audio)
    _record(benchmark, "network", lambda: am.log_posteriors(feats))


def test_bench_decoder(benchmark, audio, model):
    am = AcousticModel.default(LANG)
    from kws.features import log_mel
    lp = am.log_posteriors(log_mel(audio))
    dec = KeywordDecoder(model)

    def run():
        dec.reset()
        dec.process(lp)
    _record(benchmark, "decoder", run)
    print("\n" + ", ".join(f"{k}: {v:,.0f}x real time" for k, v in RESULTS.items())
          + f" ({LANG} model, one keyword, one core)")
