#!/usr/bin/env python3
"""kws-bench with the mean posterior of several acoustic models (an ensemble), for research.

    python tools/ensemble_bench.py --acoustic kws/data/acoustic/en.tflite --acoustic /tmp/models_enP/en.tflite \\
        -- --model en6.kwm --positives ../shared/data/en_wakewords --negatives ../shared/data/en_phrases --json out.json

Everything after ``--`` goes to ``kws-bench`` unchanged (host side only: no --device). Each
network runs on the clip's log-mel, or on its PCEN if its model card says so (a
``tools/train_acoustic.py --pcen`` run); their probabilities are averaged frame by frame and
the log of the mean goes to the decoder, as one network's would. With one ``--acoustic`` it
is exactly ``kws-bench`` with that model. Why a tool and not a product option: several
networks are a change of size class (flash, compute on the device, calibration caches) that
docs/acoustic-models.md measures before anyone ships it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

import kws.bench as bench  # the installed package (with its compiled core) before tools/ joins the path
from kws.acoustic import FEATURE_TYPES, AcousticModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_acoustic import pcen_frames, pcen_smoother  # noqa: E402

PCEN = "PCEN of log-mel"


def card_pcen_time(card: dict) -> float:
    """The PCEN time constant (s) a model card's network reads, 0 for log-mel."""
    feature = card.get("feature") or {}
    if feature.get("type", "log-mel") != PCEN:
        return 0.0
    if "pcen_time_s" in feature:
        return float(feature["pcen_time_s"])
    m = re.search(r"time constant ([0-9.]+) s", feature.get("function", ""))
    return float(m.group(1)) if m else 0.4


class Ensemble:
    """Mean posterior of several networks, each on its own front end."""

    def __init__(self, paths: list[str]) -> None:
        self.models = [AcousticModel(p, features=FEATURE_TYPES + (PCEN,)) for p in paths]  # this tool computes PCEN
        self.pcen = [card_pcen_time(m.card.raw) for m in self.models]
        sets = {m.phone_set.id for m in self.models}
        if len(sets) != 1:
            raise SystemExit("ensemble_bench: the acoustic models are for different phone sets")
        self.streams = [m.stream() for m in self.models]

    def log_posteriors(self, det, pcm: np.ndarray) -> np.ndarray:
        """What kws.bench.host_log_posteriors gives for one network, for the mean of all."""
        det.reset()
        feats = det._features(pcm)
        inputs = {t: (feats if not t else pcen_frames(feats, pcen_smoother(t))) for t in set(self.pcen)}
        heads, tails = [], []
        for s, t in zip(self.streams, self.pcen):
            s.reset()
            heads.append(s.push(inputs[t]))
            tails.append(s.flush())

        def mean(parts: list[np.ndarray]) -> np.ndarray:
            if len(parts) == 1:
                return parts[0]
            p = sum(np.exp(x.astype(np.float64)) for x in parts) / len(parts)
            return np.log(np.maximum(p, 1e-30)).astype(np.float32)

        a = det._gate(mean(heads))
        if not len(tails[0]):
            return a
        return np.concatenate([a, det._gate(mean(tails))])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="arguments after -- go to kws-bench")
    ap.add_argument("--acoustic", action="append", required=True, metavar="TFLITE",
                    help="an acoustic model (its .json card beside it); repeat for each member")
    args = ap.parse_args(own)
    if not rest:
        ap.error("give kws-bench's arguments after --")
    if any(a.startswith("--device") for a in rest):
        ap.error("host only: the firmware runs one network")
    for p in args.acoustic:
        if not os.path.isfile(p):
            ap.error(f"--acoustic {p}: no such file")
    ens = Ensemble(args.acoustic)
    print(f"ensemble_bench: {len(ens.models)} networks "
          f"({json.dumps([f'pcen {t:g} s' if t else 'log-mel' for t in ens.pcen])})", file=sys.stderr)
    bench.host_log_posteriors = ens.log_posteriors  # the pool's workers are forked, so they see it
    from kws.bench_cli import main as bench_main
    return bench_main(rest)


if __name__ == "__main__":
    sys.exit(main())
