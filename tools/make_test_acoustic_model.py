"""Make the tiny float TFLite network used by tests/test_acoustic.py (needs TensorFlow).

One Conv1D (context 5 frames, look-ahead 2) + softmax over the Korean phone set, with
random weights saved beside it, so the test can recompute every posterior in numpy and
check the runtime's window sliding, padding and chunking exactly. It is a test fixture
for the runtime, not an acoustic model.

    python tools/make_test_acoustic_model.py tests/data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(out: Path) -> None:
    import tensorflow as tf

    from kws.phonesets import KOREAN

    chunk, context, lookahead = 4, 5, 2
    inp = tf.keras.Input((chunk + context - 1, 40), batch_size=1)
    conv = tf.keras.layers.Conv1D(len(KOREAN), context, padding="valid")
    model = tf.keras.Model(inp, tf.keras.layers.Softmax()(conv(inp)))
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.3, conv.get_weights()[0].shape).astype(np.float32)
    conv.set_weights([weights, np.zeros(len(KOREAN), np.float32)])
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiny_ko.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    np.save(out / "tiny_ko_weights.npy", weights)
    (out / "tiny_ko.json").write_text(json.dumps({
        "phone_set": KOREAN.name, "phone_set_id": KOREAN.id, "chunk_frames": chunk,
        "context_frames": context, "lookahead_frames": lookahead,
        "note": "test fixture: random weights, made by tools/make_test_acoustic_model.py"}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data"))
