#!/usr/bin/env python3
"""Write a seed corpus for the keyword-model fuzz target (kws_core/fuzz/fuzz_model.c).

    python tools/make_fuzz_corpus.py OUTDIR

Writes real ``.kwm`` files compiled by the installed ``kws`` package (Korean and
English; one keyword, several keywords, words with several pronunciations, long
phrases, other decoder parameters) and a few hand-damaged copies (bad magic,
version, checksum, truncation, and out-of-range fields with a correct checksum) into
OUTDIR. Deterministic: the same package gives the same files. Needs no network.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path

import kws
from kws.model_file import KeywordModel

HEADER = 64
KEYWORD = 32
STATE = 8

# (file stem, texts, lang, enroll options, decoder parameters set on the model)
MODELS: list[tuple[str, list[str], str, dict, dict]] = [
    ("ko_one", ["헤이 카카오"], "ko", {}, {}),
    ("ko_several", ["헤이 카카오", "안녕 친구야", "불 켜줘"], "ko", {}, {}),
    ("ko_long", ["알렉사 오늘 날씨 어때 알려줘"], "ko", {"states_per_phone": 3}, {}),
    ("ko_short_hold", ["하이 빅스비", "지니야"], "ko", {"threshold": -0.5},
     {"hold_frames": 2, "refractory_frames": 3}),
    ("en_one", ["hey jarvis"], "en", {}, {}),
    ("en_several", ["hey jarvis", "ok computer", "stop"], "en", {}, {}),
    ("en_variants", ["read the tomato either"], "en", {}, {}),
    ("en_long", ["please turn on the living room lights now"], "en", {}, {}),
    ("en_one_state", ["hey jarvis"], "en", {"states_per_phone": 1, "threshold": -0.3},
     {"hold_frames": 0, "refractory_frames": 0}),
    ("en_floor", ["ok computer"], "en", {},
     {"emission_floor": -3.0e38, "hold_frames": 1, "refractory_frames": 1}),
    # enrolment writes format 2.1 (uncertainty weight 0.5, paid by the best phone too);
    # these cover 1.1, 2.0 (no BEST_PAYS state flag) and a large weight
    ("en_format_1_1", ["hey jarvis"], "en", {"uncertainty_weight": 0.0}, {}),
    ("en_format_2_0", ["hey jarvis"], "en", {}, {"best_pays": False}),
    ("ko_heavy_weight", ["자비스야"], "ko", {"uncertainty_weight": 4.0}, {}),
]


def fix_crc(data: bytearray) -> bytearray:
    """Recompute the checksum over [0, file_size) as the header says it."""
    size = struct.unpack_from("<I", data, 8)[0]
    size = min(size, len(data))
    struct.pack_into("<I", data, 12, 0)
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[:size])) & 0xFFFFFFFF)
    return data


def damaged(name: str, good: bytes) -> dict[str, bytes]:
    """Hand-damaged copies of one good model."""
    h = struct.unpack_from("<4sHHIIIHHIIIIIIIHHHHf", good, 0)
    (_magic, _vmaj, _vmin, _size, _crc, _psid, _n_phones, n_kw, n_states, n_arcs,
     kw_off, st_off, arc_off, str_off, str_size, *_rest) = h
    out: dict[str, bytes] = {}

    def edit(tag: str, fn, crc: bool = True) -> None:
        b = bytearray(good)
        fn(b)
        out[f"{name}_bad_{tag}.kwm"] = bytes(fix_crc(b) if crc else b)

    out[f"{name}_bad_truncated.kwm"] = good[: len(good) // 2]
    out[f"{name}_bad_header_only.kwm"] = good[:HEADER]
    edit("magic", lambda b: b.__setitem__(slice(0, 4), b"KWSX"))
    edit("version", lambda b: struct.pack_into("<H", b, 4, 3))  # newer than any reader (2.x is valid)
    edit("minor", lambda b: struct.pack_into("<H", b, 6, 7))
    edit("crc", lambda b: b.__setitem__(len(b) - 1, b[-1] ^ 0x01), crc=False)
    edit("file_size", lambda b: struct.pack_into("<I", b, 8, len(b) + 4), crc=False)
    edit("n_phones0", lambda b: struct.pack_into("<H", b, 20, 0))
    edit("n_keywords", lambda b: struct.pack_into("<H", b, 22, n_kw + 1))
    edit("n_states", lambda b: struct.pack_into("<I", b, 24, n_states + 1))
    edit("n_arcs", lambda b: struct.pack_into("<I", b, 28, 0x40000000))
    edit("kw_off_unaligned", lambda b: struct.pack_into("<I", b, 32, kw_off + 2))
    edit("st_off_inside_header", lambda b: struct.pack_into("<I", b, 36, 8))
    edit("arc_off_past_end", lambda b: struct.pack_into("<I", b, 40, len(b)))
    edit("str_size", lambda b: struct.pack_into("<I", b, 48, 0xFFFFFFF0))
    edit("floor_positive", lambda b: struct.pack_into("<f", b, 60, 1.0))
    edit("floor_nan", lambda b: b.__setitem__(slice(60, 64), b"\x00\x00\xc0\x7f"))
    edit("name_unterminated", lambda b: b.__setitem__(slice(str_off, str_off + str_size),
                                                        b"x" * str_size))
    edit("name_len0", lambda b: struct.pack_into("<H", b, kw_off + 4, 0))
    edit("first_state", lambda b: struct.pack_into("<I", b, kw_off + 12, 1))
    edit("kw_n_states", lambda b: struct.pack_into("<I", b, kw_off + 16, 0x10000))
    edit("threshold_inf", lambda b: struct.pack_into("<f", b, kw_off + 20, float("inf")))
    edit("max_frames0", lambda b: struct.pack_into("<H", b, kw_off + 24, 0))
    edit("phone", lambda b: struct.pack_into("<H", b, st_off, 0xFFFF))
    edit("state_flags", lambda b: b.__setitem__(st_off + 2, 0x80))  # 0x10 is BEST_PAYS (2.1), valid
    edit("no_entry", lambda b: [b.__setitem__(st_off + i * STATE + 2, b[st_off + i * STATE + 2] & ~0x02)
                                for i in range(n_states)])
    # The last state's first predecessor points at itself (not strictly earlier).
    last = st_off + (n_states - 1) * STATE
    n_preds = good[last + 3]
    if n_preds:
        pred_begin = struct.unpack_from("<I", good, last + 4)[0]
        edit("arc_forward", lambda b: struct.pack_into("<H", b, arc_off + 2 * pred_begin, 0xFFFF))
        edit("pred_range", lambda b: struct.pack_into("<I", b, last + 4, n_arcs))
    # Trailing bytes past file_size are allowed and ignored.
    out[f"{name}_trailing.kwm"] = good + b"\xff" * 12
    return out


def build(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for stem, texts, lang, opts, params in MODELS:
        model: KeywordModel = kws.enroll(texts, lang, **opts).model
        for key, value in params.items():
            setattr(model, key, value)
        files[f"{stem}.kwm"] = model.to_bytes()
    files.update(damaged("ko_several", files["ko_several.kwm"]))
    files.update(damaged("en_one", files["en_one.kwm"]))
    files["empty.kwm"] = b""
    files["magic_only.kwm"] = b"KWSM"
    written = []
    for fname, data in sorted(files.items()):
        path = outdir / fname
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, help="folder to write the seed files into")
    args = ap.parse_args(argv)
    written = build(args.outdir)
    print(f"wrote {len(written)} seed files to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
