"""Whole-pipeline throughput (front end + network + decoder) beside each stage alone, same run.

Figures are seconds of audio per CPU second on one core (the interpreter runs one thread);
docs/benchmarks.md has the latest. Skips without a shipped acoustic model. The open-source peers
(the ``[peers]`` extra: openWakeWord's pre-trained ``alexa`` through ``pyopen-wakeword``, and
PocketSphinx's keyphrase search) are timed on the same audio in the same run, so the ratios hold
on a noisy shared machine; each skips where its package is missing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kws import _core, enroll
from kws.acoustic import DATA_DIR, AcousticModel
from kws.decoder import KeywordDecoder
from kws.detector import Detector

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # peer_bench's openWakeWord stream
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


def test_bench_peer_openwakeword(benchmark, audio):
    """openWakeWord's pre-trained ``alexa``: its mel model, speech embedding and keyword head,
    streamed in its 80 ms steps on ai-edge-litert, one thread (tools/peer_bench.py)."""
    pytest.importorskip("pyopen_wakeword")  # ships the models
    import peer_bench
    oww = peer_bench.OpenWakeWordStream("alexa")

    def run():
        oww.reset()
        assert len(oww.process(audio)) > SECONDS * 12  # one probability per 80 ms once 16 embeddings exist
    _record(benchmark, "openWakeWord alexa", run)


def test_bench_peer_pocketsphinx(benchmark, audio, tmp_path):
    """PocketSphinx's keyphrase spotting (the text-enrolled peer), one keyphrase."""
    ps = pytest.importorskip("pocketsphinx")
    (tmp_path / "k.kws").write_text("hey jarvis /1e-20/\n")
    dec = ps.Decoder(kws=str(tmp_path / "k.kws"), loglevel="ERROR")
    pcm = audio.tobytes()

    def run():
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
    _record(benchmark, "PocketSphinx kws", run)


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
    for peer in ("openWakeWord alexa", "PocketSphinx kws"):
        if peer in RESULTS and "pipeline" in RESULTS:
            print(f"pipeline / {peer}: {RESULTS['pipeline'] / RESULTS[peer]:.1f}x")
