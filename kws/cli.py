"""Command-line tools: ``kws-enroll`` and ``kws-model``.

Conventions: quiet by default (results on stdout, nothing else), ``--json`` for
machines, errors as one line on stderr. Exit codes: 0 success, 1 bad input (text, model
file), 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import KwsError

EXIT_OK = 0
EXIT_BAD_INPUT = 1


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


# --------------------------------------------------------------------------- enroll
def _budget(text: str) -> float:
    """argparse type for a false-alarm budget: any float; the range is checked later
    (exit 1 with a one-line reason, as for other bad input)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _enroll_parser() -> argparse.ArgumentParser:
    from .calibration import DEFAULT_BUDGET

    p = argparse.ArgumentParser(
        prog="kws-enroll",
        description="Compile wake words typed as text into a keyword model (.kwm), each keyword's "
                    "threshold calibrated to a false-alarm budget on real speech, with a quality report.",
        epilog="example: kws-enroll '헤이 카카오' '자비스야' -o wake.kwm   (the language follows the script)",
    )
    p.add_argument("texts", nargs="+", metavar="TEXT", help="wake word(s), one argument each")
    p.add_argument("--lang", choices=["ko", "en"], default=None,
                   help="language of the text (default: from its script, Hangul = ko, Latin letters = en)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.kwm", help="model file to write")
    p.add_argument("--max-false-alarms-per-hour", type=_budget, default=None, metavar="F",
                   help=f"false-alarm budget per keyword on everyday speech (default {DEFAULT_BUDGET:g}; "
                        "0.01 to 60)")
    p.add_argument("--threshold", type=float, default=None,
                   help="set the threshold by hand instead (mean log-posterior ratio per frame, <= 0)")
    p.add_argument("--recording", action="append", metavar="FILE", default=None,
                   help="a recording of you saying the (single) wake word; give 1 to 3: it picks "
                        "your pronunciation (for a name the dictionary lacks, among the likely readings)")
    p.add_argument("--phones", default=None, metavar="PHONES",
                   help="set the (single) wake word's phones by hand, as the report prints them, words "
                        "separated by |: e.g. 'HH EY | K AY AH' for a name the dictionary lacks")
    p.add_argument("--strict", action="store_true", help="refuse weak wake words instead of warning")
    p.add_argument("--states-per-phone", type=int, default=None, metavar="N",
                   help="HMM states per phone = shortest phone in 10 ms frames, the same for every "
                        "phone (1-8; default: each phone its measured minimum, 4-8, docs/decoder.md)")
    p.add_argument("--uncertainty-weight", type=float, default=None, metavar="W",
                   help="decoder penalty on frames where the acoustic model is unsure (0-4, default 0.5, "
                        "docs/decoder.md); 0 writes format 1.1, for devices whose firmware predates format 2.1")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    return p


def _warn(prog: str, result) -> None:
    if result.report is None:
        return
    for note in result.report.notes:
        print(f"{prog}: warning: {note}", file=sys.stderr)
    for r in result.report.keywords:
        for w in r.warnings:
            print(f"{prog}: warning: {w}", file=sys.stderr)


def _print_enrollment(result, out: Path, size: int, lang: str, as_json: bool) -> None:
    from .report import format_text

    rows = result.summary()
    if as_json:
        rep = result.report.to_dict() if result.report else None
        print(json.dumps({"model": str(out), "bytes": size, "lang": lang,
                          "phone_set": result.model.phone_set.name,
                          "phone_set_id": result.model.phone_set.id, "keywords": rows,
                          "model_keywords": result.model.names,
                          "budget_fa_per_hour": rep["budget_fa_per_hour"] if rep else None,
                          "calibration_source": rep["calibration_source"] if rep else None,
                          "notes": rep["notes"] if rep else []},
                         ensure_ascii=False))
        return
    reports = {r.keyword: r for r in (result.report.keywords if result.report else [])}
    from .report import Report

    for r in rows:
        print(r["pronunciation"])
        print(f"    {r['states']} states, {r['arcs']} arcs, at most {r['max_frames']} frames")
        kr = reports.get(r["keyword"])
        if kr is not None:
            for line in format_text(Report([kr], None)):
                print(line)
    print(f"wrote {out} ({size} bytes, phone set {result.model.phone_set.name}, "
          f"{len(result.model.keywords)} keyword{'s' if len(result.model.keywords) != 1 else ''})")


def _check_output(prog: str, out: Path) -> str | None:
    if out.is_dir():
        return f"{out} is a directory; give a file name such as {out / 'wake.kwm'}"
    if not out.parent.exists():
        return f"folder {out.parent} does not exist; create it first"
    return None


def _threshold_budget_error(args) -> str | None:
    """What is wrong with --threshold / --max-false-alarms-per-hour (kws-enroll, kws-model add)."""
    from .calibration import budget_error

    if args.threshold is not None and not args.threshold <= 0:
        return f"--threshold must be <= 0 (got {args.threshold}); scores are log-ratios"
    if args.max_false_alarms_per_hour is not None:
        why = budget_error(args.max_false_alarms_per_hour)
        if why:
            return f"--max-false-alarms-per-hour: {why}"
    return None


def enroll_main(argv: Sequence[str] | None = None) -> int:
    args = _enroll_parser().parse_args(argv)
    from .enroll import enroll

    why = _threshold_budget_error(args)
    if why:
        return _fail("kws-enroll", why)
    if args.max_false_alarms_per_hour is not None and args.threshold is not None:
        return _fail("kws-enroll", "give either --threshold or --max-false-alarms-per-hour, not both")
    out = Path(args.output)
    why = _check_output("kws-enroll", out)
    if why:
        return _fail("kws-enroll", why)
    try:
        from .graph import MAX_STATES_PER_PHONE
        if args.states_per_phone is not None and not 1 <= args.states_per_phone <= MAX_STATES_PER_PHONE:
            return _fail("kws-enroll", f"--states-per-phone must be 1 to {MAX_STATES_PER_PHONE} "
                                       f"(got {args.states_per_phone})")
        extra = {} if args.states_per_phone is None else {"states_per_phone": args.states_per_phone}
        if args.phones is not None:
            if len(args.texts) != 1:
                return _fail("kws-enroll", f"--phones goes with a single wake word (got {len(args.texts)}); "
                                           "enrol the others separately or with kws-model add")
            extra["phones"] = {args.texts[0]: args.phones}
        result = enroll(args.texts, args.lang, threshold=args.threshold,
                        max_false_alarms_per_hour=args.max_false_alarms_per_hour,
                        recordings=args.recording, strict=args.strict,
                        uncertainty_weight=args.uncertainty_weight, **extra)
        result.model.save(out)
    except KwsError as exc:
        return _fail("kws-enroll", str(exc))
    except OSError as exc:
        return _fail("kws-enroll", f"cannot write {out}: {exc.strerror}")
    _warn("kws-enroll", result)
    _print_enrollment(result, out, out.stat().st_size, result.model.phone_set.lang, args.json)
    return EXIT_OK


# --------------------------------------------------------------------------- model
def _model_parser() -> argparse.ArgumentParser:
    from .calibration import DEFAULT_BUDGET

    p = argparse.ArgumentParser(prog="kws-model", description="Look inside and edit keyword-model files.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ins = sub.add_parser("inspect", help="show a model's phone set, keywords, thresholds and expected rates")
    ins.add_argument("model", metavar="MODEL.kwm")
    ins.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    add = sub.add_parser("add", help="enrol more wake words into a model, keeping the ones in it")
    add.add_argument("model", metavar="MODEL.kwm")
    add.add_argument("texts", nargs="+", metavar="TEXT")
    add.add_argument("--max-false-alarms-per-hour", type=_budget, default=None, metavar="F",
                     help=f"false-alarm budget for the new keywords (default {DEFAULT_BUDGET:g})")
    add.add_argument("--threshold", type=float, default=None, help="set the new keywords' threshold by hand")
    add.add_argument("--strict", action="store_true", help="refuse weak wake words instead of warning")
    add.add_argument("-o", "--output", metavar="OUT.kwm", help="write here instead of replacing MODEL.kwm")
    add.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    rem = sub.add_parser("remove", help="remove keywords from a model, keeping the others")
    rem.add_argument("model", metavar="MODEL.kwm")
    rem.add_argument("keywords", nargs="+", metavar="KEYWORD")
    rem.add_argument("-o", "--output", metavar="OUT.kwm", help="write here instead of replacing MODEL.kwm")
    rem.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    return p


def _model_info(path: str, model) -> dict:
    size = Path(path).stat().st_size
    return {
        "model": path,
        "bytes": size,
        "format_version": model.format_version,
        "phone_set": model.phone_set.name,
        "phone_set_id": model.phone_set.id,
        "n_phones": len(model.phone_set),
        "frame_shift_ms": model.frame_shift_ms,
        "refractory_frames": model.refractory_frames,
        "hold_frames": model.hold_frames,
        "emission_floor": model.emission_floor,
        "uncertainty_weight": model.uncertainty_weight,
        "best_phone_pays": model.best_phone_pays,
        "keywords": [
            {"keyword": k.name, "pronunciation": k.pronunciation, "states": len(k.states),
             "arcs": k.n_arcs, "max_frames": k.max_frames, "threshold": k.threshold,
             "scoring": "phone" if k.phone_mean else "frame",
             "expected_fa_per_hour": (k.expected_fa_per_hour if k.expected_fa_per_hour >= 0 else None)}
            for k in model.keywords
        ],
    }


def _edit_main(args) -> int:
    from .enroll import add_keywords, remove_keywords
    from .model_file import KeywordModel

    out = Path(args.output or args.model)
    why = _check_output("kws-model", out)
    if why:
        return _fail("kws-model", why)
    if args.command == "add":
        why = _threshold_budget_error(args)
        if why:
            return _fail("kws-model", why)
    try:
        model = KeywordModel.load(args.model)
        if args.command == "add":
            result = add_keywords(model, args.texts, threshold=args.threshold,
                                  max_false_alarms_per_hour=args.max_false_alarms_per_hour, strict=args.strict)
            result.model.save(out)
        else:
            new = remove_keywords(model, args.keywords)
            new.save(out)
    except KwsError as exc:
        return _fail("kws-model", str(exc))
    except OSError as exc:
        return _fail("kws-model", f"cannot write {out}: {exc.strerror}")
    if args.command == "add":
        _warn("kws-model", result)
        _print_enrollment(result, out, out.stat().st_size, model.phone_set.lang, args.json)
        return EXIT_OK
    info = _model_info(str(out), new)
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
    else:
        print(f"removed {', '.join(args.keywords)}; {out} keeps {', '.join(new.names)}")
    return EXIT_OK


def model_main(argv: Sequence[str] | None = None) -> int:
    args = _model_parser().parse_args(argv)
    if args.command in ("add", "remove"):
        return _edit_main(args)
    from .model_file import KeywordModel

    try:
        model = KeywordModel.load(args.model)
    except KwsError as exc:
        return _fail("kws-model", str(exc))
    info = _model_info(args.model, model)
    size = info["bytes"]
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return EXIT_OK
    print(f"{args.model}: keyword model v{info['format_version']}, {size} bytes, "
          f"phone set {model.phone_set.name} (id 0x{model.phone_set.id:08x}, {len(model.phone_set)} phones)")
    print(f"decoder: hold {model.hold_frames} frames, refractory {model.refractory_frames} frames, "
          f"emission floor {model.emission_floor:g}, uncertainty weight {model.uncertainty_weight:g}"
          + (" (paid by the best phone too)" if info["best_phone_pays"] else ""))
    for k in info["keywords"]:
        fa = k["expected_fa_per_hour"]
        fa_text = "not calibrated" if fa is None else f"{fa:.2g} false alarms/h expected"
        print(f"  {k['keyword']}: threshold {k['threshold']:.3f} ({fa_text}); "
              f"{k['states']} states, {k['arcs']} arcs, scored by {k['scoring']}")
        print(f"      {k['pronunciation']}")
    return EXIT_OK


# --------------------------------------------------------------------------- detect
def _detect_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kws-detect", description="Find enrolled keywords in audio files.")
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC or Ogg/Opus; any rate, mono or stereo")
    p.add_argument("--model", required=True, metavar="MODEL.kwm", help="keyword model from kws-enroll")
    p.add_argument("--threshold", type=float, default=None,
                   help="override every keyword's threshold (mean log-posterior ratio, <= 0); "
                        "lower finds more")
    p.add_argument("--json", action="store_true", help="one JSON object per detection per line")
    return p


def _detection_json(file: str, d) -> str:
    return json.dumps({"file": file, "keyword": d.keyword, "start_s": round(d.start_s, 3),
                       "end_s": round(d.end_s, 3), "score": round(d.score, 4)}, ensure_ascii=False)


def detect_main(argv: Sequence[str] | None = None) -> int:
    args = _detect_parser().parse_args(argv)
    from .audio import load_audio
    from .detector import Detector

    try:
        detector = Detector(args.model, threshold=args.threshold)
    except KwsError as exc:
        return _fail("kws-detect", str(exc))
    status = EXIT_OK
    for f in args.files:
        try:
            dets = detector.detect(load_audio(f))
        except KwsError as exc:
            _fail("kws-detect", str(exc))
            status = EXIT_BAD_INPUT
            continue
        for d in dets:
            if args.json:
                print(_detection_json(f, d))
            else:
                print(f"{f}\t{d.keyword}\t{d.start_s:.2f}-{d.end_s:.2f} s\tscore {d.score:.3f}")
    return status


# --------------------------------------------------------------------------- listen
def _listen_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kws-listen", description="Listen on the microphone and print detections.")
    p.add_argument("--model", required=True, metavar="MODEL.kwm", help="keyword model from kws-enroll")
    p.add_argument("--threshold", type=float, default=None, help="override every keyword's threshold")
    p.add_argument("--json", action="store_true", help="one JSON object per detection per line")
    return p


def _microphone_chunks(frames_per_chunk: int = 1600):
    """16 kHz mono int16 chunks from the default input device (pyaudio)."""
    import numpy as np

    try:
        import pyaudio
    except ImportError:
        raise KwsError("no microphone support: pip install pyaudio (needs PortAudio)") from None
    pa = pyaudio.PyAudio()
    try:
        try:
            pa.get_default_input_device_info()
        except (IOError, OSError):
            raise KwsError("no microphone found; connect one or use kws-detect on files") from None
        stream = pa.open(format=pyaudio.paInt16, channels=1, rate=16000, input=True,
                         frames_per_buffer=frames_per_chunk)
        print("listening; Ctrl-C to stop", file=sys.stderr)
        try:
            while True:
                yield np.frombuffer(stream.read(frames_per_chunk, exception_on_overflow=False), np.int16)
        finally:
            stream.stop_stream()
            stream.close()
    finally:
        pa.terminate()


def listen_main(argv: Sequence[str] | None = None) -> int:
    args = _listen_parser().parse_args(argv)
    from .detector import Detector

    try:
        detector = Detector(args.model, threshold=args.threshold)
        for d in detector.chunks(_microphone_chunks()):
            if args.json:
                print(_detection_json("mic", d), flush=True)
            else:
                print(f"{d.keyword}\t{d.start_s:.2f}-{d.end_s:.2f} s\tscore {d.score:.3f}", flush=True)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return EXIT_OK
    except KwsError as exc:
        return _fail("kws-listen", str(exc))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(enroll_main())
