"""kws-flash: put a keyword model on a device over serial, or ask what it runs.

    kws-flash --port /dev/ttyACM0 wake.kwm
    kws-flash --port socket://localhost:4321 wake.kwm      # the firmware in QEMU
    kws-flash --port /dev/ttyACM0 --info [--json]
    kws-flash --port /dev/ttyACM0 --reset

Progress goes to stderr, results to stdout (one JSON object with --json). Exit status
0 on success, 1 on a failure (one line on stderr: no device, wrong phone set, model too
large, device stopped answering, ...), 2 on a usage error. When flashing fails the device
keeps running its previous model (docs/flash-protocol.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .flash import Device, DeviceInfo, FlashError, phone_set_name


def _print_info(info: DeviceInfo) -> None:
    print(f"firmware: {info.firmware} (flashing protocol {info.protocol})")
    phones = f", {info.n_phones} phones" if info.n_phones else " (no network loaded)"
    print(f"phone set: {info.phone_set}{phones}")
    if info.active_source == "none":
        print("active model: none")
    else:
        where = info.active_source + (f", seq {info.active_seq}" if info.active_slot else "")
        kws = ", ".join(repr(k) for k in info.keywords) + (", ..." if info.keywords_truncated else "")
        print(f"active model: {where}, {info.active_bytes} bytes, crc32 0x{info.active_crc:08x}, "
              f"phone set {phone_set_name(info.active_phone_set_id)}, {len(info.keywords)} keyword(s): {kws}")
    slots = ", ".join(f"{s} seq {q}" if q else f"{s} empty" for s, q in info.slot_seq.items())
    print(f"slots: {slots}; free slot: {info.free_slot} (the next model goes there)")
    print(f"limits: {info.max_model_bytes} bytes per model, {info.max_keywords} keywords, "
          f"{info.decoder_ram} bytes of decoder RAM")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kws-flash", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help="keyword model (.kwm) to flash")
    ap.add_argument("--port", required=True, help="serial device (/dev/ttyACM0, COM3) or pyserial URL (socket://host:port)")
    ap.add_argument("--info", action="store_true", help="print what the device runs")
    ap.add_argument("--reset", action="store_true", help="restart the device (after flashing, if a model is given)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    ap.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each reply (default 1)")
    ap.add_argument("--retries", type=int, default=8, help="tries per request before giving up (default 8)")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    a = ap.parse_args(argv)
    if not a.model and not a.info and not a.reset:
        ap.error("give a MODEL.kwm to flash, --info or --reset")
    if a.model and a.info:
        ap.error("give either a MODEL.kwm or --info")
    if a.timeout <= 0 or a.retries < 1 or a.baud <= 0:
        ap.error("--timeout, --retries and --baud must be positive")

    isatty = sys.stderr.isatty()
    last = [-1]

    def progress(done: int, total: int, slot: str) -> None:
        if a.quiet:
            return
        pct = 100 * done // max(total, 1)
        if isatty:
            end = "\n" if done >= total else ""
            print(f"\rflashing slot {slot}: {done}/{total} bytes ({pct}%)", end=end, file=sys.stderr, flush=True)
        elif pct // 10 != last[0] // 10 or done >= total:
            print(f"flashing slot {slot}: {done}/{total} bytes ({pct}%)", file=sys.stderr, flush=True)
        last[0] = pct

    try:
        data = None
        if a.model:
            try:
                data = Path(a.model).read_bytes()
            except OSError as exc:
                raise FlashError(f"cannot read {a.model}: {exc.strerror or exc}") from exc
        with Device.open(a.port, baud=a.baud, timeout=a.timeout, retries=a.retries) as dev:
            lim = dev.hello()
            if not a.quiet:
                print(f"device: {lim.firmware}, phone set {phone_set_name(lim.phone_set_id)}", file=sys.stderr)
            if data is not None:
                dev.check_model(data)  # before any byte is written
                res = dev.flash(data, progress=progress)
                info = dev.info()
                res.info = info
                if a.reset:
                    dev.reset()
                else:
                    dev.bye()
                if a.json:
                    print(json.dumps(res.to_dict()))
                else:
                    print(f"flashed {res.bytes} bytes to slot {res.slot} (seq {res.seq}) in {res.seconds:.2f} s "
                          f"({res.retries} retries); active: {info.active_source}, "
                          f"keywords: {', '.join(info.keywords)}")
                return 0
            if a.info:
                info = dev.info()
                dev.bye()
                if a.json:
                    print(json.dumps(info.to_dict()))
                else:
                    _print_info(info)
            if a.reset:
                dev.reset()
                if not a.quiet:
                    print("device restarting", file=sys.stderr)
        return 0
    except FlashError as exc:
        print(f"kws-flash: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kws-flash: interrupted; the device keeps its previous model unless COMMIT was acknowledged",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
