#!/usr/bin/env python3
"""Export an int8 TFLite acoustic network to a .kwn blob for the C runtime (kws_net.c).

    python tools/export_net.py MODEL.tflite -o MODEL.kwn [--card MODEL.json] [--json]

Reads the network and its model card (the .json beside the .tflite unless --card),
precomputes the requantisation parameters as TFLite's reference kernels do, and writes
the blob specified in docs/kwn-format.md. The blob is then checked with the C reader
when the kws._core extension is importable. --json prints a summary of the blob.
Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws.errors import KwsError  # noqa: E402
from kws.netblob import describe, export  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="int8 .tflite acoustic network")
    ap.add_argument("-o", "--output", type=Path, help="output .kwn (default: MODEL with .kwn suffix)")
    ap.add_argument("--card", type=Path, help="model card (default: MODEL with .json suffix)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary of the blob")
    args = ap.parse_args(argv)
    out = args.output or args.model.with_suffix(".kwn")
    try:
        blob = export(args.model, args.card)
        try:
            from kws import _core
        except ImportError:
            _core = None
        if _core is not None and hasattr(_core, "validate_net"):
            code, msg = _core.validate_net(blob)
            if code:
                raise KwsError(f"the C reader refuses the exported blob ({msg})")
        out.write_bytes(blob)
    except KwsError as exc:
        print(f"export_net: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"export_net: {out}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.json:
        d = describe(blob)
        d["output"] = str(out)
        print(json.dumps(d, indent=1))
    else:
        print(f"{out}: {len(blob)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
