"""Decoder throughput: the C decoder beside the numpy reference, in the same run.

Run with ``pytest tests/test_benchmark_decoder.py --benchmark-only``; the figures in
docs/benchmarks.md come from it. Each test records ``state_updates_per_s`` in the
benchmark's extra info, and the ratio C / reference is printed at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

from kws import enroll
from kws.decoder import KeywordDecoder
from reference_decoder import ReferenceDecoder

# 20 wake words of 3 to 6 syllables.
PHRASES = [
    "hey jarvis", "computer", "alexa", "hey siri", "okay google", "hey savant", "americano",
    "terminator", "blueberry pie", "hello robot", "picovoice", "bumblebee", "porcupine",
    "hey mycroft", "good morning house", "christopher", "hey computer", "open sesame",
    "abracadabra", "pineapple pizza",
]
FRAMES = 6000  # one minute of audio at 10 ms


@pytest.fixture(scope="module")
def model():
    return enroll(PHRASES, "en").model


@pytest.fixture(scope="module")
def logpost():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, size=(FRAMES, 40)).astype(np.float32)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True)).astype(np.float32)


RESULTS: dict[str, float] = {}


def test_bench_c_decoder(benchmark, model, logpost):
    dec = KeywordDecoder(model)

    def run():
        dec.reset()
        dec.process(logpost)

    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    rate = model.n_states * FRAMES / benchmark.stats.stats.min
    benchmark.extra_info.update(states=model.n_states, frames=FRAMES, state_updates_per_s=rate,
                                realtime_factor=FRAMES * 0.01 / benchmark.stats.stats.min)
    RESULTS["c"] = rate


def test_bench_numpy_reference(benchmark, model, logpost):
    frames = 20
    ref = ReferenceDecoder(model)

    def run():
        ref.reset()
        ref.process(logpost[:frames])

    benchmark.pedantic(run, rounds=3, iterations=1)
    rate = model.n_states * frames / benchmark.stats.stats.min
    benchmark.extra_info.update(states=model.n_states, frames=frames, state_updates_per_s=rate)
    RESULTS["reference"] = rate
    if "c" in RESULTS:
        print(f"\nC decoder: {RESULTS['c'] / 1e6:.1f} M state-updates/s; numpy reference "
              f"{rate / 1e6:.3f} M/s; C is {RESULTS['c'] / rate:.0f}x faster "
              f"({model.n_states} states, {len(PHRASES)} keywords)")
