"""Export an int8 TFLite acoustic network to a ``.kwn`` blob for the C runtime.

The blob (spec: docs/kwn-format.md) holds the network's layers with their int8 weights,
int32 biases and the per-channel requantisation multipliers/shifts computed exactly as
TFLite's reference kernels compute them at prepare time (``QuantizeMultiplier``,
``PreprocessSoftmaxScaling``, ``CalculateActivationRangeQuantized``), so that
``kws_net_invoke()`` (kws_core/src/kws_net.c) reproduces TFLite's reference int8 kernels
bit for bit. The .tflite flatbuffer is read with the schema module that ai-edge-litert
ships (``ai_edge_litert.schema_py_generated``), so no new dependency is needed.

Supported graph: an optional RESHAPE, then a chain of CONV_2D / DEPTHWISE_CONV_2D over a
1-D time axis (kernel 1xK or Kx1, VALID padding, stride 1, dilation 1, per-channel or
per-tensor symmetric int8 weights, int32 bias, fused NONE / RELU / RELU_N1_TO_1 / RELU6),
an optional RESHAPE, and SOFTMAX with int8 output (scale 1/256, zero point -128).
Anything else is refused with :class:`kws.errors.ModelFormatError` naming the problem.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelFormatError

MAGIC = b"KWSN"
VERSION = (1, 0)
HEADER_SIZE = 64
LAYER_SIZE = 48
SOFTMAX_SIZE = 16
MAX_LAYERS = 32  # KWS_NET_MAX_LAYERS in kws_net.h
LAYER_CONV, LAYER_DEPTHWISE = 1, 2
#: acoustic.py's floor on posteriors before the log (kws.acoustic._MIN_PROB)
_MIN_PROB = 1e-6

_HEADER = struct.Struct("<4sHHIIIHHHHHHfifiHHIII")
_LAYER = struct.Struct("<BBHHHHHhhiiIIIIHHI")
_SOFTMAX = struct.Struct("<iiiI")
assert _HEADER.size == HEADER_SIZE and _LAYER.size == LAYER_SIZE and _SOFTMAX.size == SOFTMAX_SIZE


# --------------------------------------------------------------------------------------
# TFLite's quantisation arithmetic (tensorflow/lite/kernels/internal/quantization_util.cc)
# --------------------------------------------------------------------------------------

def _tf_round(x: float) -> float:
    """std::round: half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: m ~= q * 2**(shift - 31), q an int32 in [2**30, 2**31)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = int(_tf_round(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        raise ModelFormatError(f"requantisation multiplier {m} too large")
    return q_fixed, shift


def softmax_params(input_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLite ``PreprocessSoftmaxScaling`` + ``CalculateInputRadius`` (5 integer bits)."""
    bits = 5
    real = min(float(beta) * float(input_scale) * (1 << (31 - bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ModelFormatError("softmax input scale too small for TFLite's int8 softmax")
    radius = math.floor(1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift))
    return mult, left_shift, int(-1.0 * radius)


def activation_range(act: int, scale: float, zp: int) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for int8."""
    def q(f: float) -> int:
        return zp + int(_tf_round(float(np.float32(f) / np.float32(scale))))
    lo, hi = -128, 127
    if act == 1:    # RELU
        return max(lo, q(0.0)), hi
    if act == 3:    # RELU6
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == 2:    # RELU_N1_TO_1
        return max(lo, q(-1.0)), min(hi, q(1.0))
    if act == 0:
        return lo, hi
    raise ModelFormatError(f"fused activation {act} not supported (NONE, RELU, RELU_N1_TO_1, RELU6 are)")


def logpost_table(out_scale: float, out_zp: int) -> np.ndarray:
    """Float log-posterior of each int8 output value, computed as kws/acoustic.py does."""
    y = np.arange(-128, 128).astype(np.int8)
    p = (y.astype(np.float32) - out_zp) * out_scale
    return np.log(np.maximum(p, _MIN_PROB)).astype(np.float32)


# --------------------------------------------------------------------------------------
# Reading the .tflite
# --------------------------------------------------------------------------------------

@dataclass
class Layer:
    kind: int                 # LAYER_CONV or LAYER_DEPTHWISE
    activation: int           # TFLite ActivationFunctionType
    kernel: int
    in_ch: int
    out_ch: int
    in_frames: int
    out_frames: int
    act_min: int
    act_max: int
    input_offset: int
    output_offset: int
    weights: np.ndarray       # int8; conv [out][k][in], depthwise [k][out]
    bias: np.ndarray          # int32 [out]
    multiplier: np.ndarray    # int32 [out]
    shift: np.ndarray         # int32 [out]
    depth_multiplier: int = 1


@dataclass
class NetSpec:
    phone_set_id: int
    n_phones: int
    n_feat: int
    chunk_frames: int
    context_frames: int
    lookahead_frames: int
    in_frames: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    softmax: tuple[int, int, int]
    layers: list[Layer] = field(default_factory=list)


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - older runtimes
        try:
            from tflite_runtime import schema_py_generated as schema  # type: ignore
        except ImportError:
            raise ModelFormatError("reading .tflite files needs ai-edge-litert (pip install ai-edge-litert)") from None
    return schema


def read_tflite(data: bytes, card: dict) -> NetSpec:
    S = _schema()
    bad = ModelFormatError
    try:
        model = S.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() != 1:
            raise bad(f"expected one subgraph, found {model.SubgraphsLength()}")
        g = model.Subgraphs(0)
        n_ops = g.OperatorsLength()
    except ModelFormatError:
        raise
    except Exception as exc:
        raise bad(f"not a TFLite flatbuffer ({exc})") from None

    def opcode(op) -> int:
        oc = model.OperatorCodes(op.OpcodeIndex())
        return max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))

    def tensor(i):
        t = g.Tensors(i)
        shape = [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []
        q = t.Quantization()
        scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
        zps = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
        qdim = int(q.QuantizedDimension()) if q is not None else 0
        return t, shape, np.asarray(scales, np.float32), np.asarray(zps, np.int64), qdim

    def const(i, dtype) -> np.ndarray:
        t, shape, *_ = tensor(i)
        buf = model.Buffers(t.Buffer())
        if buf.Offset() > 1:
            raw = data[buf.Offset(): buf.Offset() + buf.Size()]
        elif buf.DataLength():
            raw = buf.DataAsNumpy().tobytes()
        else:
            raise bad(f"tensor {t.Name().decode()} has no constant data")
        arr = np.frombuffer(raw, dtype)
        if arr.size != int(np.prod(shape)):
            raise bad(f"tensor {t.Name().decode()}: data size does not match its shape")
        return arr.reshape(shape)

    def single_q(i, what):
        t, shape, sc, zp, _ = tensor(i)
        if t.Type() != S.TensorType.INT8 or len(sc) != 1 or len(zp) != 1:
            raise bad(f"{what}: expected an int8 tensor with one scale and zero point")
        return float(sc[0]), int(zp[0]), shape

    if g.InputsLength() != 1 or g.OutputsLength() != 1:
        raise bad("expected one input and one output tensor")
    in_scale, in_zp, in_shape = single_q(g.Inputs(0), "input")
    out_scale, out_zp, out_shape = single_q(g.Outputs(0), "output")
    if len(in_shape) != 3 or in_shape[0] != 1 or len(out_shape) != 3 or out_shape[0] != 1:
        raise bad(f"expected input [1, frames, features] and output [1, frames, phones], got {in_shape} -> {out_shape}")
    in_frames, n_feat = in_shape[1], in_shape[2]
    chunk, n_phones = out_shape[1], out_shape[2]

    cur = g.Inputs(0)
    time_axis = None  # axis of the NHWC conv tensors that is time (1 = H, 2 = W)
    layers: list[Layer] = []
    sm = None
    for k in range(n_ops):
        op = g.Operators(k)
        code = opcode(op)
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        if op.OutputsLength() != 1 or not ins or ins[0] != cur:
            raise bad(f"operator {k}: the graph is not a simple chain")
        out = op.Outputs(0)
        if sm is not None:
            raise bad("operators after SOFTMAX are not supported")
        if code == S.BuiltinOperator.RESHAPE:
            s_in = single_q(cur, f"operator {k} (RESHAPE) input")
            s_out = single_q(out, f"operator {k} (RESHAPE) output")
            if s_in[:2] != s_out[:2]:
                raise bad(f"operator {k}: RESHAPE changes quantisation")
            shape = s_out[2]
            if len(shape) == 4:
                if shape[0] != 1 or shape[3] != s_in[2][-1]:
                    raise bad(f"operator {k}: unsupported RESHAPE {s_in[2]} -> {shape}")
                if shape[1] == 1:
                    time_axis = 2
                elif shape[2] == 1:
                    time_axis = 1
                else:
                    raise bad(f"operator {k}: RESHAPE to {shape} is not 1-D over time")
            elif len(shape) != 3:
                raise bad(f"operator {k}: unsupported RESHAPE to {shape}")
        elif code in (S.BuiltinOperator.CONV_2D, S.BuiltinOperator.DEPTHWISE_CONV_2D):
            dw = code == S.BuiltinOperator.DEPTHWISE_CONV_2D
            name = "DEPTHWISE_CONV_2D" if dw else "CONV_2D"
            if time_axis is None:
                raise bad(f"operator {k} ({name}): input is not a reshaped [1, frames, features] tensor")
            tab = op.BuiltinOptions()
            opts = S.DepthwiseConv2DOptions() if dw else S.Conv2DOptions()
            if tab is None:
                raise bad(f"operator {k} ({name}): missing options")
            opts.Init(tab.Bytes, tab.Pos)
            strides = (opts.StrideH(), opts.StrideW())
            dil = (opts.DilationHFactor(), opts.DilationWFactor())
            if dil != (1, 1):
                raise bad(f"operator {k} ({name}): dilation {dil} not supported (only 1)")
            if strides != (1, 1):
                raise bad(f"operator {k} ({name}): stride {strides} not supported (only 1)")
            act = int(opts.FusedActivationFunction())
            i_scale, i_zp, i_shape = single_q(cur, f"operator {k} ({name}) input")
            o_scale, o_zp, o_shape = single_q(out, f"operator {k} ({name}) output")
            w = const(ins[1], np.int8)
            wt, _, w_sc, w_zp, w_qdim = tensor(ins[1])
            if wt.Type() != S.TensorType.INT8 or len(w_sc) == 0 or np.any(w_zp != 0):
                raise bad(f"operator {k} ({name}): weights must be symmetric int8")
            if w.ndim != 4:
                raise bad(f"operator {k} ({name}): 4-D filter expected")
            other = 3 - time_axis
            if w.shape[other] != 1 or i_shape[other] != 1 or o_shape[other] != 1:
                raise bad(f"operator {k} ({name}): kernel is not 1-D over time")
            K = w.shape[time_axis]
            fr_in, c_in = i_shape[time_axis], i_shape[3]
            fr_out, c_out = o_shape[time_axis], o_shape[3]
            padding = int(opts.Padding())
            if padding != S.Padding.VALID and K != 1:
                raise bad(f"operator {k} ({name}): only VALID padding is supported")
            if fr_out != fr_in - K + 1:
                raise bad(f"operator {k} ({name}): output frames {fr_out} != {fr_in} - {K} + 1")
            if dw:
                dm = int(opts.DepthMultiplier())
                if w.shape[0] != 1 or w.shape[3] != c_out or c_out != c_in * dm:
                    raise bad(f"operator {k} ({name}): filter {list(w.shape)} does not fit {c_in} -> {c_out} channels")
                weights = np.ascontiguousarray(w.reshape(K, c_out))
                qdim_ok = w_qdim == 3
            else:
                dm = 1
                if w.shape[0] != c_out or w.shape[3] != c_in:
                    raise bad(f"operator {k} ({name}): filter {list(w.shape)} does not fit {c_in} -> {c_out} channels")
                weights = np.ascontiguousarray(w.reshape(c_out, K, c_in))
                qdim_ok = w_qdim == 0
            if len(w_sc) == 1:
                w_sc = np.repeat(w_sc, c_out)
            elif len(w_sc) != c_out or not qdim_ok:
                raise bad(f"operator {k} ({name}): per-channel scales not along the output channels")
            if len(ins) > 2 and ins[2] >= 0:
                bias = const(ins[2], np.int32).reshape(-1).astype(np.int32)
                bt = g.Tensors(ins[2])
                if bt.Type() != S.TensorType.INT32 or bias.size != c_out:
                    raise bad(f"operator {k} ({name}): bias must be int32[{c_out}]")
            else:
                bias = np.zeros(c_out, np.int32)
            mult = np.zeros(c_out, np.int32)
            shift = np.zeros(c_out, np.int32)
            for c in range(c_out):
                # PopulateConvolutionQuantizationParams: double(in) * double(filter) / double(out)
                eff = float(np.float32(i_scale)) * float(w_sc[c]) / float(np.float32(o_scale))
                mult[c], shift[c] = quantize_multiplier(eff)
            lo, hi = activation_range(act, o_scale, o_zp)
            layers.append(Layer(LAYER_DEPTHWISE if dw else LAYER_CONV, act, K, c_in, c_out, fr_in, fr_out,
                                lo, hi, -i_zp, o_zp, weights, bias, mult, shift, dm))
        elif code == S.BuiltinOperator.SOFTMAX:
            tab = op.BuiltinOptions()
            opts = S.SoftmaxOptions()
            beta = 1.0
            if tab is not None:
                opts.Init(tab.Bytes, tab.Pos)
                beta = float(np.float32(opts.Beta()))
            s_scale, _s_zp, s_shape = single_q(cur, "SOFTMAX input")
            sm = softmax_params(float(np.float32(s_scale)), beta)
        else:
            raise bad(f"operator {k}: builtin op {code} not supported "
                      "(RESHAPE, CONV_2D, DEPTHWISE_CONV_2D, SOFTMAX are)")
        cur = out
    if sm is None:
        raise bad("the network does not end in SOFTMAX")
    if cur != g.Outputs(0):
        raise bad("the last operator does not write the graph output")
    if out_zp != -128 or abs(out_scale - 1 / 256) > 0.001 / 256:
        raise bad("SOFTMAX output must be int8 with scale 1/256 and zero point -128")
    if not layers:
        raise bad("no convolution layers")
    if len(layers) > MAX_LAYERS:
        raise bad(f"{len(layers)} layers; at most {MAX_LAYERS} supported")
    if layers[0].in_frames != in_frames or layers[0].in_ch != n_feat:
        raise bad("first layer does not read the input tensor's shape")
    if layers[-1].out_frames != chunk or layers[-1].out_ch != n_phones:
        raise bad("last layer does not produce the output tensor's shape")

    try:
        phone_set_id = int(card["phone_set_id"])
        c_chunk, c_ctx = int(card["chunk_frames"]), int(card["context_frames"])
        c_look = int(card.get("lookahead_frames", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"not a valid acoustic model card ({exc})") from None
    if c_chunk != chunk or c_chunk + c_ctx - 1 != in_frames or not 0 <= c_look < c_ctx:
        raise bad("tensor shapes do not match the model card's chunk/context/lookahead")
    if not 0 <= phone_set_id < 2**32:
        raise bad("phone_set_id out of range")
    return NetSpec(phone_set_id, n_phones, n_feat, chunk, c_ctx, c_look, in_frames,
                   in_scale, in_zp, out_scale, out_zp, sm, layers)


# --------------------------------------------------------------------------------------
# Writing the blob
# --------------------------------------------------------------------------------------

def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def pack(spec: NetSpec) -> bytes:
    """Serialise a :class:`NetSpec` into a .kwn blob (docs/kwn-format.md)."""
    n = len(spec.layers)
    layers_off = HEADER_SIZE
    softmax_off = layers_off + n * LAYER_SIZE
    table_off = softmax_off + SOFTMAX_SIZE
    pos = table_off + 256 * 4
    data = bytearray()
    recs = []
    for L in spec.layers:
        offs = []
        for arr in (L.weights.astype(np.int8), L.bias.astype("<i4"), L.multiplier.astype("<i4"), L.shift.astype("<i4")):
            offs.append(pos + len(data))
            data += _pad4(arr.tobytes())
        recs.append(_LAYER.pack(L.kind, L.activation, L.kernel, L.in_ch, L.out_ch, L.in_frames, L.out_frames,
                                L.act_min, L.act_max, L.input_offset, L.output_offset, *offs,
                                L.depth_multiplier, 0, 0))
    body = (b"".join(recs) + _SOFTMAX.pack(*spec.softmax, 0)
            + logpost_table(spec.output_scale, spec.output_zero_point).astype("<f4").tobytes() + bytes(data))
    size = HEADER_SIZE + len(body)
    header = _HEADER.pack(MAGIC, *VERSION, size, 0, spec.phone_set_id, spec.n_phones, spec.n_feat,
                          spec.chunk_frames, spec.context_frames, spec.lookahead_frames, spec.in_frames,
                          spec.input_scale, spec.input_zero_point, spec.output_scale, spec.output_zero_point,
                          n, 0, layers_off, softmax_off, table_off)
    blob = bytearray(header + body)
    struct.pack_into("<I", blob, 12, zlib.crc32(blob) & 0xFFFFFFFF)
    return bytes(blob)


def load_card(tflite_path: Path, card_path: Path | None = None) -> dict:
    p = Path(card_path) if card_path else Path(tflite_path).with_suffix(".json")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{p}: model card missing; an acoustic model needs its .json beside the .tflite") from None
    except ValueError as exc:
        raise ModelFormatError(f"{p}: not a valid acoustic model card ({exc})") from None


def export(tflite_path, card_path=None) -> bytes:
    """.tflite (+ .json card beside it) -> .kwn blob bytes."""
    path = Path(tflite_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: {exc.strerror}") from None
    card = load_card(path, card_path)
    try:
        spec = read_tflite(data, card)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    except Exception as exc:  # a damaged flatbuffer fails in the generated accessors
        raise ModelFormatError(f"{path}: not a valid TFLite flatbuffer ({type(exc).__name__})") from None
    return pack(spec)


def describe(blob: bytes) -> dict:
    """Header and layer summary of a blob (for ``tools/export_net.py --json``); no validation beyond sizes."""
    h = _HEADER.unpack_from(blob, 0)
    keys = ("magic", "version_major", "version_minor", "file_size", "crc32", "phone_set_id", "n_phones",
            "n_feat", "chunk_frames", "context_frames", "lookahead_frames", "in_frames", "input_scale",
            "input_zero_point", "output_scale", "output_zero_point", "n_layers", "flags", "layers_offset",
            "softmax_offset", "logpost_offset")
    d = dict(zip(keys, h))
    d["magic"] = d["magic"].decode("ascii", "replace")
    d["layers"] = []
    for i in range(d["n_layers"]):
        r = _LAYER.unpack_from(blob, d["layers_offset"] + i * LAYER_SIZE)
        d["layers"].append({"type": {1: "conv", 2: "depthwise"}.get(r[0], r[0]), "activation": r[1],
                            "kernel": r[2], "in_ch": r[3], "out_ch": r[4], "in_frames": r[5],
                            "out_frames": r[6], "act_min": r[7], "act_max": r[8]})
    d["softmax"] = dict(zip(("input_multiplier", "input_left_shift", "diff_min"),
                            _SOFTMAX.unpack_from(blob, d["softmax_offset"])[:3]))
    return d
