#!/usr/bin/env python3
"""Rebuild a float Keras teacher from a shipped int8 acoustic model.

    python tools/teacher_from_tflite.py kws/data/acoustic/ko.tflite --lang ko --out /tmp/am_ko3

Distillation (`tools/train_acoustic.py --teacher DIR`) reads a training run's folder:
`LANG_float.keras` and `LANG_norm.npz`. Those folders are scratch space and are often gone
when a shipped model should teach a new one (a fresh machine, a model trained by someone
else). The int8 `.tflite` holds everything needed: this script dequantises its weights into
`train_acoustic.py`'s architecture (batch norm already folded by the converter, so each
batch-norm layer becomes the identity plus the folded bias; the input normalisation is
folded into the first convolution, so the written normalisation is mean 0, std 1) and
checks the float model against the int8 one on real speech: exit 1 if their most likely
phones agree on fewer than 90 % of frames (int8 rounding alone leaves about 97 %).

Needs the `[train]` extra (TensorFlow); the architecture must be the one
`train_acoustic.py` builds (conv0, dwN/pwN blocks, out).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tflite", help="int8 acoustic model (.tflite) exported by train_acoustic.py")
    ap.add_argument("--lang", required=True, choices=["ko", "en"])
    ap.add_argument("--out", required=True, help="folder to write LANG_float.keras and LANG_norm.npz into")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(HERE), "..", "shared", "data"),
                    help="data folder for the agreement check (default ../shared/data)")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.tflite):
        print(f"teacher_from_tflite: {args.tflite}: no such file", file=sys.stderr)
        return 1
    try:
        import tensorflow as tf
    except ImportError:
        print("teacher_from_tflite: needs TensorFlow (pip install '.[train]')", file=sys.stderr)
        return 1
    import train_acoustic as T

    it = tf.lite.Interpreter(model_path=args.tflite)
    it.allocate_tensors()
    details = it.get_tensor_details()

    def dequant(d) -> np.ndarray:
        v = it.get_tensor(d["index"]).astype(np.float64)
        q = d["quantization_parameters"]
        scales, axis = q["scales"], q["quantized_dimension"]
        shape = [1] * v.ndim
        shape[axis] = -1
        return v * (scales.reshape(shape) if len(scales) > 1 else scales[0])

    def find(layer: str, ndim: int, dtype=np.int8) -> np.ndarray:
        """The per-channel quantised constant whose (converter-fused) name starts with `layer`."""
        # the converter prefixes the Keras model's name (functional_1_1/, functional_4_1/, ...)
        hits = [d for d in details if d["name"].partition("/")[2].startswith(layer) and len(d["shape"]) == ndim
                and d["dtype"] == dtype and len(d["quantization_parameters"]["scales"]) > 1]
        if len(hits) != 1:
            raise SystemExit(f"teacher_from_tflite: {args.tflite}: no single constant for {layer} "
                             f"({len(hits)} found); not a train_acoustic.py export")
        return dequant(hits[0])

    n_phones = int(it.get_output_details()[0]["shape"][-1])
    model = T.build_model(n_phones, None, specaug=True)
    eps = model.get_layer("bn0").epsilon

    def identity_bn(name: str, bias: np.ndarray) -> None:
        b = bias.astype(np.float32)
        model.get_layer(name).set_weights([np.ones_like(b), b, np.zeros_like(b), np.full_like(b, 1 - eps)])

    w = find("bn0_1/batchnorm/mul_1", 4)                        # [out, 1, k, in]
    model.get_layer("conv0").set_weights([w[:, 0].transpose(1, 2, 0).astype(np.float32),
                                          np.zeros(w.shape[0], np.float32)])
    identity_bn("bn0", find("relu0_1/Relu", 1, np.int32))
    for i in range(1, len(T.BLOCKS) + 1):
        dw = find(f"dw{i}_1/depthwise", 4)                       # [1, 1, k, channels]
        model.get_layer(f"dw{i}").set_weights([dw[0, 0][:, :, None].astype(np.float32)])
        pw = find(f"bn{i}_1/batchnorm/mul_1", 4)                 # [out, 1, 1, in]
        model.get_layer(f"pw{i}").set_weights([pw[:, 0, 0].T[None].astype(np.float32)])
        identity_bn(f"bn{i}", find(f"relu{i}_1/Relu", 1, np.int32))
    ow = find("out_1/convolution", 4)
    ob = find("out_1/BiasAdd", 1, np.int32)
    model.get_layer("out").set_weights([ow[:, 0, 0].T[None].astype(np.float32), ob.astype(np.float32)])

    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, f"{args.lang}_float.keras"))
    np.savez(os.path.join(args.out, f"{args.lang}_norm.npz"),
             mean=np.zeros(T.N_MELS, np.float32), std=np.ones(T.N_MELS, np.float32))

    # agreement with the int8 model on a few real clips, run the way the detector runs it
    from kws.acoustic import AcousticModel
    from kws.audio import load_audio
    from kws.features import log_mel
    sets = {"ko": "ko_emotiontts", "en": "en_speechocean"}
    clips = sorted(glob.glob(os.path.join(args.data, sets[args.lang], "*", "*.*")))[:20]
    int8 = AcousticModel(args.tflite)
    agree = total = 0
    for path in clips:
        f = log_mel(load_audio(path))
        for s in range(0, len(f) - int8.window + 1, int8.window):
            x = f[s:s + int8.window]
            p8 = int8.run_window(x)
            pf = model.predict(x[None].astype(np.float32), verbose=0)[0]
            agree += int((p8.argmax(-1) == pf.argmax(-1)).sum())
            total += len(pf)
    if not total:
        print(f"wrote {args.out}; no clips under {args.data} to check it against the int8 model", file=sys.stderr)
        return 0
    share = agree / total
    print(f"wrote {args.out}: float teacher of {os.path.basename(args.tflite)}; most likely phone agrees with "
          f"the int8 model on {share:.1%} of {total} frames ({len(clips)} clips)", file=sys.stderr)
    return 0 if share >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
