#!/usr/bin/env python3
"""Compare kws-bench reports on one plot: weighted miss rate against false alarms per hour.

    python tools/compare_bench.py -o docs/uncertainty_weight.png \\
        --panel "clips" "format 1.1=before.json" "format 2.0=after.json" \\
        --panel "10 dB streams" "format 1.1=before_s.json" "format 2.0=after_s.json"

Each report is a ``kws-bench --json`` file. A point is "at most k false alarms per
keyword in the negative hours" (each keyword at its own threshold, read off its DET
curve), and the misses summed over the keywords, as the tables of docs/bench.md count
them; so curves of two models on the same data compare directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def pooled_curve(report: dict, max_fa: int) -> tuple[list[float], list[float]]:
    """(FA/h, weighted miss %) for k = 0..max_fa false alarms per keyword."""
    rows = report["host"]["keywords"]
    hours = min(r["negative_hours"] for r in rows)
    xs, ys = [], []
    for k in range(max_fa + 1):
        miss = pos = 0.0
        for r in rows:
            c, h = r["det_curve"], r["negative_hours"]
            frr = min((f for f, fa in zip(c["frr"], c["fa_per_h"]) if round(fa * h) <= k), default=1.0)
            miss += frr * r["positives"]
            pos += r["positives"]
        xs.append(k / hours)
        ys.append(100.0 * miss / max(pos, 1))
    return xs, ys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, help="PNG or SVG file to write")
    ap.add_argument("--panel", action="append", nargs="+", required=True, metavar="ARG",
                    help="TITLE then LABEL=REPORT.json ... (one panel each)")
    ap.add_argument("--max-fa", type=int, default=0,
                    help="false alarms per keyword to go up to (default: 5 FA/h's worth)")
    ap.add_argument("--title", default="", help="figure title")
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.panel), figsize=(5 * len(args.panel), 4), squeeze=False)
    for ax, (title, *series) in zip(axes[0], args.panel):
        if not series:
            print(f"compare_bench: error: panel {title!r} has no LABEL=REPORT.json", file=sys.stderr)
            return 2
        for i, item in enumerate(series):
            label, sep, path = item.partition("=")
            if not sep:
                print(f"compare_bench: error: {item!r} is not LABEL=REPORT.json", file=sys.stderr)
                return 2
            try:
                report = json.loads(Path(path).read_text())
                hours = min(r["negative_hours"] for r in report["host"]["keywords"])
            except (OSError, ValueError, KeyError) as exc:
                print(f"compare_bench: error: {path}: not a kws-bench --json report ({exc})", file=sys.stderr)
                return 1
            max_fa = args.max_fa or max(1, int(5 * hours))
            x, y = pooled_curve(report, max_fa)
            ax.plot(x, y, "--" if i == 0 and len(series) > 1 else "-", marker="o", ms=3, label=label)
        ax.axvline(1.0, color="grey", lw=0.8)
        ax.axhline(10, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("false alarms per hour (each keyword at its own threshold)")
        ax.set_ylabel("weighted miss rate, %")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, None)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title, fontsize=9)
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    return 0


if __name__ == "__main__":
    sys.exit(main())
