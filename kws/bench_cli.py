"""``kws-bench``: false rejections and false alarms per hour of a keyword model, on the
workstation and (``--device``) in the firmware. See docs/bench.md.

Exit codes: 0 ok, 1 bad input (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from . import bench as B
from .errors import KwsError

PROG = "kws-bench"

DEVICE_NOTE = ("the host runs the network with ai-edge-litert's default (optimised) kernels, the device with "
               "the C int8 network, bit-exact with TFLite's reference kernels: small score differences are "
               "expected, and near a threshold they can flip a decision")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Sweep the detection threshold of a keyword model over positives and negatives: "
                    "false-rejection rate at 1 and 0.5 false alarms per hour, at the stored threshold, "
                    "the DET curve and the false alarms themselves.",
        epilog="example: kws-bench --model wake.kwm --positives en_wakewords --negatives en_phrases "
               "--negatives en_speech_commands --json out.json --plot det.png --jobs 2")
    p.add_argument("--model", required=True, metavar="MODEL.kwm")
    p.add_argument("--positives", action="append", required=True, metavar="PATH",
                   help="folder or manifest.csv of keyword utterances (repeatable)")
    p.add_argument("--negatives", action="append", required=True, metavar="PATH",
                   help="folder or manifest.csv of keyword-free audio (repeatable)")
    p.add_argument("--match", choices=B.MATCH_MODES, default="exact",
                   help="how a manifest text names a keyword: 'exact' (the whole text, one wake word per clip; "
                        "default) or 'contains' (the keyword inside running speech: positives are clips whose "
                        "text contains it, and such clips are dropped from the negatives, so one manifest can "
                        "serve as both)")
    p.add_argument("--device", metavar="qemu|PORT",
                   help="also run the firmware: 'qemu' (in QEMU; needs the Arm toolchain, QEMU and a source "
                        "checkout), or a device on a serial PORT (/dev/ttyACM0, COM3, or a pyserial URL such as "
                        "socket://host:port) running the firmware's UART command loop")
    p.add_argument("--baud", type=int, default=115200, metavar="N",
                   help="serial speed for --device PORT (default 115200; real time needs about 460800)")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="DET curve (needs the [plot] extra: matplotlib)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="decoding processes (default 1)")
    p.add_argument("--limit", type=int, default=0, metavar="N",
                   help="use at most N positives and N negatives, spread evenly over each list")
    p.add_argument("--mix-snr", type=float, metavar="DB",
                   help="mixing mode: keywords placed among the negatives in long streams, utterances "
                        "DB above the background noise")
    p.add_argument("--mix-seed", type=int, default=0, metavar="S", help="mixing layout seed (default 0)")
    p.add_argument("--mix-level", type=float, default=B.MIX_LEVEL_DBFS, metavar="DBFS",
                   help="mixing mode: every utterance's active level (default -20 dBFS; -45 or so is a "
                        "talker across a room on a microphone without gain control)")
    p.add_argument("--reverb", type=float, metavar="RT60",
                   help="hear every recording in a simulated room with this reverberation time in seconds "
                        "(0.15-1.2; a furnished living room is 0.3-0.6), the talker 1-3 m from the microphone "
                        "(needs the [bench] extra: pyroomacoustics); in mixing mode the utterances, not the noise")
    p.add_argument("--mix-background", action="append", metavar="PATH",
                   help="folder or manifest of noise recordings for mixing mode (default: none, silence)")
    p.add_argument("--mix-chunk-s", type=float, default=300.0, metavar="SEC",
                   help="length of each independent mixed stream (default 300)")
    p.add_argument("--mix-save", metavar="DIR",
                   help="write each mixed stream as DIR/mix-NNNNN.wav (to listen to the false alarms)")
    p.add_argument("--list", type=int, default=5, metavar="N",
                   help="false alarms per keyword printed on stdout (default 5; --json has them all)")
    return p


def _fail(msg: str) -> int:
    print(f"{PROG}: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return 1


def _fmt_pct(x) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:6.1%}"


def _print_table(title: str, rows: list[dict], speakers: str, n_list: int) -> None:
    print(title)
    print(f"  {'keyword':<12} {'pos':>5} {'FRR@1FA/h':>10} {'FRR@0.5FA/h':>12} {'stored thr':>10} "
          f"{'FRR@stored':>10} {'FA/h@stored':>11} {'FA hours':>9}  speakers")
    for r in rows:
        print(f"  {r['keyword']:<12} {r['positives']:>5} {_fmt_pct(r['frr_at_1_fa_per_h']):>10} "
              f"{_fmt_pct(r['frr_at_0.5_fa_per_h']):>12} {r['stored_threshold']:>10.3f} "
              f"{_fmt_pct(r['frr_at_stored']):>10} {r['fa_per_h_at_stored']:>11.2f} {r['negative_hours']:>9.3f}  {speakers}")
    if n_list > 0:
        for r in rows:
            fas = r["false_alarms"][:n_list]
            if not fas:
                continue
            print(f"  top false alarms, {r['keyword']}:")
            for f in fas:
                print(f"    {f['score']:8.4f}  {f['file']}  {f['start_s']:.2f}-{f['end_s']:.2f} s")


def _plot(path: str, curves: list[tuple[str, dict, str]], title: str, hours: float) -> None:
    try:
        import matplotlib
    except ImportError:
        raise B.BenchError("--plot needs matplotlib: pip install 'kws-toolkit[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    floor = 0.5 / max(hours, 1e-9)  # below one false alarm in the whole set: drawn at half of it
    for label, row, style in curves:
        c = row["det_curve"]
        fa = np.maximum(np.array(c["fa_per_h"], float), floor)
        ax.step(fa, c["frr"], where="post", linestyle=style, label=label)
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", lw=0.6)
    ax.axvline(0.5, color="grey", lw=0.6, ls=":")
    ax.set_xlabel(f"false alarms per hour (0 drawn at {floor:.2g})")
    ax.set_ylabel("false-rejection rate")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=80)
    except OSError as exc:
        raise B.BenchError(f"--plot {path}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)


def _setup_device(args, model_path: str, model_bytes: bytes, grid: list[float], tmp: Path):
    """(worker, init, init args, jobs) for --device; raises BenchError with one line."""
    if args.device != "qemu":
        if args.baud <= 0:
            raise B.BenchError(f"--baud must be positive (got {args.baud})")
        from .device_link import DeviceLink
        from .model_file import KeywordModel
        want = KeywordModel.from_bytes(model_bytes).phone_set
        try:  # fail now, not after the host pass
            with DeviceLink(args.device, baud=args.baud) as link:
                info = link.info()
        except KwsError as exc:
            raise B.BenchError(f"--device {args.device}: {exc}") from None
        if info["phone_set"] != want.id:
            raise B.BenchError(f"--device {args.device}: the device's network has phone set 0x{info['phone_set']:08x}, "
                               f"the keyword model {want.name} (0x{want.id:08x}); load the matching network")
        # a serial port takes one client: the device pass runs in this process
        return B._port_one, B._init_port, (args.device, args.baud, model_bytes, grid), 1
    fw_path = B.find_firmware_tool()
    if fw_path is None:
        raise B.BenchError("--device qemu needs a source checkout (tools/run_firmware.py, firmware/): "
                           "run from it or set KWS_ROOT")
    fw = B.load_firmware_module(fw_path)
    why = fw.missing_tools()
    if why:
        raise B.BenchError(f"--device qemu: {why}")
    net = fw.default_net_for(model_path)
    if net is None:
        raise B.BenchError("--device qemu: no shipped acoustic model for this keyword model's phone set")
    kwn = tmp / "net.kwn"
    kwn.write_bytes(fw.net_blob(net))
    print(f"{PROG}: building the firmware", file=sys.stderr, flush=True)
    try:
        elf = fw.build()
    except Exception as exc:
        raise B.BenchError(f"--device qemu: {str(exc).strip().splitlines()[0]}") from None
    return B._device_one, B._init_device, (str(fw_path), str(elf), str(kwn), model_bytes, grid), args.jobs


def run(args) -> int:
    with tempfile.TemporaryDirectory(prefix="kwsbench") as d:
        return _run(args, Path(d))


def _run(args, tmp: Path) -> int:
    from .model_file import KeywordModel

    t_start = datetime.now(timezone.utc)
    if args.jobs < 1:
        raise B.BenchError(f"--jobs must be >= 1 (got {args.jobs})")
    if args.mix_snr is None and (args.mix_background or args.mix_save):
        raise B.BenchError("--mix-background and --mix-save need --mix-snr")
    if not math.isfinite(args.mix_level) or not -70 <= args.mix_level <= 0:
        raise B.BenchError(f"--mix-level must be between -70 and 0 dBFS (got {args.mix_level})")
    B.set_reverb(args.reverb)  # the rooms first: a bad RT60 or no pyroomacoustics fails before anything else
    model = KeywordModel.load(args.model)
    names = model.names
    stored = [k.threshold for k in model.keywords]
    grid = B.threshold_grid(model.emission_floor)
    low = grid[0]
    model_bytes = model.to_bytes()

    pos = B.load_set(args.positives, "positives", names, match=args.match)
    neg = B.load_set(args.negatives, "negatives", names if args.match == "contains" else None,
                     match=args.match)
    pos_clips, neg_clips = B.subset(pos.clips, args.limit), B.subset(neg.clips, args.limit)
    if args.limit:
        pos = dataclasses.replace(pos, clips=pos_clips)
        neg = dataclasses.replace(neg, clips=neg_clips)
    noise = None
    mix = args.mix_snr is not None
    if mix:
        if not math.isfinite(args.mix_snr) or not -20 <= args.mix_snr <= 60:
            raise B.BenchError(f"--mix-snr must be between -20 and 60 dB (got {args.mix_snr})")
        if args.mix_chunk_s <= 0:
            raise B.BenchError("--mix-chunk-s must be positive")
        if args.mix_save:
            try:
                Path(args.mix_save).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise B.BenchError(f"--mix-save {args.mix_save}: cannot create ({exc.strerror})") from None
            B._SAVE_DIR["dir"] = str(args.mix_save)
        noise = B.load_set(args.mix_background, "mix background") if args.mix_background else None
        # a negative whose text contains a keyword stays out of the streams (it would need word
        # times to tell its keyword from a false alarm); the positives are inserted anyway and
        # count against every other keyword
        mix_neg = [c for c in neg.clips if not c.contains]
        units = B.plan_mix(pos.clips, mix_neg, noise.clips if noise else [], args.mix_snr, args.mix_seed,
                           args.mix_chunk_s, args.mix_level)
        stream_hours = sum(c.duration_s for c in units) / 3600
        hours: dict[str, float] = {n: stream_hours for n in names}
        unit_names = [c.name for c in units]
    else:
        # each audio file decoded once, though a sentence may be a positive of one keyword
        # and a negative of the others (--match contains)
        units, unit_of = [], {}
        for c in pos.clips + neg.clips:
            if c.path not in unit_of:
                unit_of[c.path] = len(units)
                units.append(c)
        hours = {n: neg.hours_for(n) for n in names}
        unit_names = [c.path for c in units]
    min_hours = min(hours.values())
    speakers = neg.speakers_text()

    from .acoustic import DATA_DIR
    from .detector import _LANG_BY_PHONE_SET
    lang = _LANG_BY_PHONE_SET.get(model.phone_set.name)
    ac_path = DATA_DIR / f"{lang}.tflite" if lang else None
    ac_sha = B.model_sha256(ac_path)[:12] if ac_path and ac_path.is_file() else "unknown"
    kw_sha = B.model_sha256(args.model)[:12]
    per_kw = {n: sum(1 for c in pos.clips if c.keyword == n) for n in names}
    print(f"{PROG}: {t_start:%Y-%m-%d %H:%M} UTC; keyword model {args.model} (sha256 {kw_sha}), "
          f"acoustic model {ac_path.name if ac_path else '?'} (sha256 {ac_sha}); network run once per clip, "
          f"decoder at {len(grid)} thresholds from {low:.2f} to {grid[-1]:g} and at the stored ones")
    print(f"positives: {len(pos.clips)} clips ({', '.join(f'{n} {c}' for n, c in per_kw.items())})"
          + (f", {pos.skipped} rows skipped (text names no keyword of the model)" if pos.skipped else ""))
    print(f"negatives: {len(neg.clips)} clips, {neg.hours:.3f} h, speakers {speakers}"
          + (f"; {neg.containing} clips contain a keyword and are negatives of the other keywords only"
             + ("" if mix else f" (hours per keyword: {_hours_text(hours)})")
             if neg.containing else ""))
    if mix:
        if neg.containing:
            print(f"mixing: the {neg.containing} negatives that contain a keyword stay out of the streams")
        print(f"mixing: {len(units)} streams, {stream_hours:.3f} h in all, seed {args.mix_seed}, "
              f"utterances at {args.mix_level:g} dBFS, "
              + (f"noise {noise.hours:.2f} h ({len(noise.clips)} recordings) at {args.mix_snr:g} dB SNR"
                 if noise else "no noise (--mix-snr has no effect without --mix-background)"))

    room = B.reverb_report()
    if room:
        lo, hi = room["talker_distance_m"]
        print(f"reverberation: every {'utterance' if mix else 'recording'} in one of {room['rooms']} simulated "
              f"rooms with RT60 {room['rt60_s']:g} s, the talker {lo:g}-{hi:g} m from the microphone")
    report: dict = {"date_utc": t_start.strftime("%Y-%m-%dT%H:%M:%SZ"), "model": str(args.model),
                    "model_sha256": kw_sha, "acoustic_model": str(ac_path) if ac_path else None,
                    "acoustic_sha256": ac_sha, "sweep_floor": low, "threshold_grid": grid,
                    "positives": {"sources": pos.sources, "clips": len(pos.clips), "per_keyword": per_kw,
                                  "skipped_rows": pos.skipped},
                    "negatives": {"sources": neg.sources, "clips": len(neg.clips), "hours": round(neg.hours, 4),
                                  "speakers": neg.speakers, "clips_without_speaker": neg.unlabelled,
                                  "containing_keyword": neg.containing,
                                  "hours_per_keyword": {n: round(h, 4) for n, h in hours.items()}},
                    "match": args.match,
                    "reverb": room, "mix": None, "jobs": args.jobs}
    if mix:
        report["mix"] = {"snr_db": args.mix_snr, "level_dbfs": args.mix_level, "seed": args.mix_seed,
                         "streams": len(units),
                         "stream_hours": round(stream_hours, 4), "chunk_s": args.mix_chunk_s,
                         "negatives_left_out_containing_keyword": neg.containing,
                         "background": noise.sources if noise else None,
                         "layout": "positives and negatives shuffled together, 0.5-2 s gaps, each utterance at "
                                   f"{args.mix_level:g} dBFS active level, noise at that level minus the SNR; a detection "
                                   "overlapping an inserted keyword of its keyword is a hit, else a false alarm"}

    audio_hours = (sum(c.duration_s for c in units) if mix else sum(c.duration_s for c in units)) / 3600

    def score(dets: list) -> "B.Scored":
        if mix:
            return B.score_mix(names, units, dets, [r["inserted"] for r in results],
                               [r.get("segments") for r in results])
        return B.score_clips(names, pos.clips, [dets[unit_of[c.path]] for c in pos.clips],
                             neg.clips, [dets[unit_of[c.path]] for c in neg.clips])

    def evaluate(label: str, worker, init, init_args, jobs: int) -> tuple[list, list[dict], dict]:
        nonlocal results
        t0 = time.monotonic()
        results = B.decode_units(units, worker, init, init_args, jobs=jobs, label=label)
        wall = time.monotonic() - t0
        levels = [score([r["levels"][k] for r in results]) for k in range(len(grid))]
        rows = B.keyword_table(names, stored, grid, levels, score([r["stored"] for r in results]), hours)
        for r in rows:
            r["negative_speakers"] = neg.speakers
        thr = {"audio_hours": round(audio_hours, 4), "wall_s": round(wall, 1), "jobs": jobs,
               "hours_per_minute": round(audio_hours / (wall / 60), 4) if wall > 0 else None}
        return results, rows, thr

    results: list = []
    dev_init = None
    if args.device:
        dev_init = _setup_device(args, args.model, model_bytes, grid, tmp)
    host_res, host_rows, host_thr = evaluate("host", B._host_one, B._init_host, (model_bytes, grid), args.jobs)
    allowed = {b: int(math.floor(b * min_hours + 1e-9)) for b in B.BUDGETS}
    report["false_alarms_allowed"] = {f"{b:g}_per_h": n for b, n in allowed.items()}
    if min_hours < 2 / min(B.BUDGETS):
        print(f"note: {min_hours:.3f} h of audio behind the false-alarm rates: " + ", ".join(f"{b:g} FA/h allows {n}" for b, n in allowed.items())
              + " false alarm(s) in all, so the FRR at those rates rests on the few best-scoring false alarms")
    _print_table(f"host ({'mixed streams' if mix else 'clips'}):", host_rows, speakers, args.list)
    print(f"  throughput: {host_thr['audio_hours']:.3f} h of audio in {host_thr['wall_s']:.0f} s with "
          f"{args.jobs} job(s): {host_thr['hours_per_minute']:.3g} h per minute")
    report["host"] = {"keywords": host_rows, "throughput": host_thr}

    curves = [(f"{r['keyword']} (host)", r, "-") for r in host_rows]
    if args.device:
        qemu = args.device == "qemu"
        try:
            dev_res, dev_rows, dev_thr = evaluate("device", *dev_init)
        finally:
            active = B.close_port() if not qemu else None
        where = "QEMU" if qemu else f"serial {args.device} at {args.baud} baud"
        _print_table(f"device ({where}: firmware front end + C int8 network; sweep with the C decoder on its "
                     "log-posteriors):", dev_rows, speakers, args.list)
        print(f"  throughput: {dev_thr['audio_hours']:.3f} h of audio in {dev_thr['wall_s']:.0f} s with "
              f"{dev_thr['jobs']} job(s): {dev_thr['hours_per_minute']:.3g} h per minute "
              + ("(each clip runs the network twice in QEMU: detect and logpost)" if qemu else
                 "(one pass: the device streams its posteriors and detections back)"))
        if active:
            print(f"  device back on its flashed model: {active}")
        st = dict(zip(names, stored))
        cmp_stored = B.compare(unit_names, [r["stored"] for r in host_res], [r["fw"] for r in dev_res], st)
        cmp_floor = B.compare(unit_names, [r["levels"][0] for r in host_res], [r["levels"][0] for r in dev_res], st)
        fw_self = B.compare(unit_names, [r["stored"] for r in dev_res], [r["fw"] for r in dev_res], st, tol=0.0)
        for title, cmp in [("at the stored thresholds (the firmware's own DET lines)", cmp_stored),
                           (f"at the sweep floor {low:.2f} (every candidate)", cmp_floor)]:
            dec = cmp["decisions_at_stored_threshold"]
            print(f"host vs device {title}: {cmp['matched']} of {cmp['host_detections']} host / "
                  f"{cmp['device_detections']} device detections match (same keyword, overlapping; "
                  f"{cmp['matched_with_other_times']} with other start/end); same-path score difference max "
                  f"{cmp['max_abs_score_diff']:.4f}, mean {cmp['mean_abs_score_diff']:.4f}; "
                  f"{len(cmp['disagreements'])} disagreements (one side only, other times or |diff| > "
                  f"{cmp['score_tolerance']})")
            for r in cmp["disagreements"][:max(args.list, 0) * 2]:
                hs = "-" if r["host_score"] is None else f"{r['host_score']:.4f}"
                ds = "-" if r["device_score"] is None else f"{r['device_score']:.4f}"
                print(f"    {r['keyword']:<12} {r['file']}  {r['start_s']:.2f}-{r['end_s']:.2f} s  host {hs}  device {ds}")
        dec = cmp_stored["decisions_at_stored_threshold"]
        print(f"  fire/no-fire decisions at the stored thresholds agree for {dec['agree']} of {dec['total']} "
              f"(file, keyword) pairs; the firmware's decoder and the host's C decoder on the firmware's "
              f"posteriors agree on {fw_self['matched']} of {fw_self['device_detections']} detections "
              f"({len(fw_self['disagreements'])} differences)")
        print(f"  note: {DEVICE_NOTE}")
        cmp = {"at_stored_thresholds": cmp_stored, "at_sweep_floor": cmp_floor,
               "firmware_decoder_vs_host_decoder_on_device_posteriors": fw_self}
        report["device"] = {"target": args.device, "baud": None if qemu else args.baud,
                            "restored": active, "keywords": dev_rows, "throughput": dev_thr,
                            "comparison": cmp, "note": DEVICE_NOTE}
        curves += [(f"{r['keyword']} (device)", r, "--") for r in dev_rows]
    if args.plot:
        what = "mixed streams" if mix else "clips"
        _plot(args.plot, curves, f"DET, {Path(args.model).name}, {min_hours:.2f} h negatives ({what}), "
                                 f"{len(pos.clips)} positives", min_hours)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(_finite(report), ensure_ascii=False, indent=1, allow_nan=False))
        except OSError as exc:
            raise B.BenchError(f"--json {args.json}: cannot write ({exc.strerror})") from None
    return 0


def _hours_text(hours: dict[str, float]) -> str:
    """Each keyword's negative hours, or their range when there are many keywords."""
    if len(hours) <= 8:
        return ", ".join(f"{n} {h:.3f}" for n, h in hours.items())
    return f"{min(hours.values()):.3f} to {max(hours.values()):.3f} h over {len(hours)} keywords"


def _finite(x):
    """NaN/inf (a keyword without positives, no threshold within budget) -> null in JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except KwsError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
