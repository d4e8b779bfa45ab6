"""One network invoke: the C kernels (kws_net.c) beside ai-edge-litert, same run, one core.

Runs on the shipped model's architecture when kws/data/acoustic has one, else on the
small test fixture. Prints the C/litert time ratios; no timed asserts. The C kernels are
the plain reference loops (portable, what the Cortex-M build runs), so litert's optimised
default path (XNNPACK) is expected to be faster on a workstation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from kws import _core, netblob
from kws.acoustic import DATA_DIR

litert = pytest.importorskip("ai_edge_litert.interpreter")

SHIPPED = DATA_DIR / "en.tflite"
MODEL = SHIPPED if SHIPPED.is_file() else Path(__file__).parent / "data" / "net_ko16.tflite"
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def window():
    net = _core.Net(netblob.export(MODEL))
    rng = np.random.default_rng(0)
    return net, np.clip(rng.normal(-20, 30, (net.in_frames, net.n_feat)), -128, 127).astype(np.int8)


def _interp(kind):
    it = litert.Interpreter(model_path=str(MODEL), num_threads=1, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    return it


def _record(benchmark, name, fn, n=50):
    benchmark.pedantic(fn, rounds=5, iterations=5, warmup_rounds=1)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    RESULTS[name] = best
    benchmark.extra_info["seconds_per_invoke"] = best


def test_bench_c_invoke(benchmark, window):
    net, x = window
    _record(benchmark, "c", lambda: net.invoke(x))


@pytest.mark.parametrize("kind", ["AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF"])
def test_bench_litert_invoke(benchmark, window, kind):
    _, x = window
    it = _interp(getattr(litert.OpResolverType, kind))
    inp = it.get_input_details()[0]["index"]

    def run():
        it.set_tensor(inp, x[None])
        it.invoke()
    _record(benchmark, kind, run)


def test_bench_report():
    if "c" not in RESULTS:
        pytest.skip("benchmarks did not run")
    c = RESULTS["c"]
    names = {"AUTO": "litert default (XNNPACK)", "BUILTIN_WITHOUT_DEFAULT_DELEGATES": "litert builtin",
             "BUILTIN_REF": "litert reference kernels"}
    lines = [f"C invoke {c * 1e3:.3f} ms ({MODEL.name}, one core)"]
    for k, v in RESULTS.items():
        if k != "c":
            lines.append(f"{names[k]} {v * 1e3:.3f} ms: C/litert time ratio {c / v:.2f}")
    print("\n" + "; ".join(lines))
