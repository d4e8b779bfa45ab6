"""Make the small int8 acoustic-network fixture used by tests/test_net*.py (needs TensorFlow).

Same op pattern as the real acoustic model (tools/train_acoustic.py): RESHAPE, a first
CONV_2D (kernel 1xK over the 40 log-mel channels, fused RELU), blocks of
DEPTHWISE_CONV_2D (one with depth multiplier 2) + 1x1 CONV_2D (fused RELU / RELU6), a 1x1 output CONV_2D without
activation, RESHAPE, SOFTMAX; full int8 quantisation (per-channel weights, int8 input and
output). Widths are small (16 channels) and the weights random, with batch-norm statistics
folded in so that biases and per-channel scales differ. It checks the C int8 kernels
(kws_core/src/kws_net.c) against ai-edge-litert; it is not an acoustic model.

    /path/to/tf/python tools/make_test_net_model.py tests/data
    /path/to/tf/python tools/make_test_net_model.py --full /tmp/netcheck   # real widths
    python tools/make_test_net_model.py --c-fixtures tests/data   # only the C-test files

Besides ``net_ko16.tflite`` + ``.json`` it writes, with ai-edge-litert only, the files the C
unit tests (kws_core/tests/test_net.c) read: ``net_ko16.kwn`` (the exported blob) and
``net_ko16_ref.bin`` (u32 count, then that many pairs of an int8 input window and the int8
output of ai-edge-litert's reference kernels for it). tests/test_net.py checks that both
are reproducible from the .tflite.

``--full`` builds the acoustic model's real widths and kernels (128 channels, 4 blocks of
kernel 9, chunk 32, look-ahead 12) with random but non-degenerate weights, for a manual
check at full size (about 100 kB; not committed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHUNK = 8
FIRST = (5, 16)
BLOCKS = [(9, 16, 1), (3, 24, 2), (5, 16, 1)]  # (kernel, channels, depth multiplier)
CONTEXT = FIRST[0] + sum(b[0] - 1 for b in BLOCKS)
LOOKAHEAD = 6
N_MELS = 40


def use_full_size() -> None:
    global CHUNK, FIRST, BLOCKS, CONTEXT, LOOKAHEAD
    CHUNK, FIRST, BLOCKS, LOOKAHEAD = 32, (5, 128), [(9, 128, 1)] * 4, 12
    CONTEXT = FIRST[0] + sum(b[0] - 1 for b in BLOCKS)


def build(n_phones: int, rng: np.random.Generator):
    import keras
    from keras import layers

    inp = keras.Input((CHUNK + CONTEXT - 1, N_MELS), batch_size=1)
    k, c = FIRST
    x = layers.Conv1D(c, k, padding="valid", name="conv0")(inp)
    x = layers.BatchNormalization(name="bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    for i, (k, c, dm) in enumerate(BLOCKS, 1):
        x = layers.DepthwiseConv1D(k, padding="valid", depth_multiplier=dm, use_bias=False, name=f"dw{i}")(x)
        x = layers.Conv1D(c, 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        # one block with ReLU6 to exercise the fused RELU6 clamp
        x = layers.ReLU(max_value=6.0 if i == 2 and len(BLOCKS) == 3 else None, name=f"relu{i}")(x)
    x = layers.Conv1D(n_phones, 1, name="out")(x)
    model = keras.Model(inp, layers.Softmax(name="softmax")(x))
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, layers.BatchNormalization):
            n = ws[0].shape[0]
            ws = [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                  rng.uniform(0.5, 2.0, n)]
        else:
            fan_in = int(np.prod(ws[0].shape[:-1])) if "dw" not in layer.name else ws[0].shape[0]  # noqa: E501
            ws = [rng.normal(0, 1.5 / np.sqrt(fan_in), w.shape) if w.ndim > 1
                  else rng.normal(0, 0.2, w.shape) for w in ws]
        layer.set_weights([w.astype(np.float32) for w in ws])
    return model


def main(out: Path, full: bool = False) -> None:
    import tensorflow as tf

    from kws.phonesets import ENGLISH, KOREAN

    if full:
        use_full_size()
    phones = ENGLISH if full else KOREAN
    name = "net_en128" if full else "net_ko16"

    rng = np.random.default_rng(5)
    model = build(len(phones), rng)
    n_in = CHUNK + CONTEXT - 1

    def rep():
        r = np.random.default_rng(1)
        for _ in range(100):
            yield [(r.normal(0, 3, (1, n_in, N_MELS)) - 8).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.tflite").write_bytes(conv.convert())
    (out / f"{name}.json").write_text(json.dumps({
        "phone_set": phones.name, "phone_set_id": phones.id, "chunk_frames": CHUNK,
        "context_frames": CONTEXT, "lookahead_frames": LOOKAHEAD,
        "note": "test fixture: random weights, made by tools/make_test_net_model.py"}, indent=1))
    if not full:
        try:
            import ai_edge_litert  # noqa: F401
        except ImportError:
            print(f"ai-edge-litert missing here: run  python {sys.argv[0]} --c-fixtures {out}  "
                  "with the project's environment to write the C-test files")
        else:
            write_c_fixtures(out, name)


def reference_pairs(tflite: Path, n: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deterministic int8 inputs and ai-edge-litert's BUILTIN_REF outputs for them."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(tflite), num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(42)
    pairs = []
    for i in range(n):
        if i % 2:
            x = rng.integers(-128, 128, inp["shape"])
        else:
            x = rng.normal(rng.integers(-40, 40), 10 + 10 * i, inp["shape"])
        x = np.clip(np.round(x), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], x)
        it.invoke()
        pairs.append((x[0], it.get_tensor(out["index"])[0].copy()))
    return pairs


def write_c_fixtures(out: Path, name: str = "net_ko16") -> None:
    from kws import netblob

    tflite = out / f"{name}.tflite"
    (out / f"{name}.kwn").write_bytes(netblob.export(tflite))
    pairs = reference_pairs(tflite)
    blob = np.uint32(len(pairs)).tobytes() + b"".join(x.tobytes() + y.tobytes() for x, y in pairs)
    (out / f"{name}_ref.bin").write_bytes(blob)


if __name__ == "__main__":
    if "--c-fixtures" in sys.argv[1:]:
        args = [a for a in sys.argv[1:] if a != "--c-fixtures"]
        write_c_fixtures(Path(args[0] if args else "tests/data"))
        sys.exit(0)
    args = [a for a in sys.argv[1:] if a != "--full"]
    main(Path(args[0] if args else "tests/data"), full="--full" in sys.argv[1:])
