#!/usr/bin/env python3
"""Build the Cortex-M4F firmware (firmware/) and run it in QEMU's mps2-an386.

As a tool:

    python tools/run_firmware.py --model jarvis.kwm clip.wav          # detections
    python tools/run_firmware.py --model jarvis.kwm --net en.tflite clip.wav --icount
    python tools/run_firmware.py --model jarvis.kwm --posteriors lp.npy   # decoder only
    python tools/run_firmware.py --model jarvis.kwm --uart clip.wav   # audio over UART0

Audio goes through kws.audio.load_audio (any rate/format it reads) to raw 16 kHz int16
PCM; the firmware reads it, the keyword model and the network through semihosting (or,
with --uart, over the emulated UART0, which is the path a real I2S/DMA driver feeds) and
prints ``DET keyword=.. name=.. start=.. end=.. score=..`` lines, which this tool parses.
``--net`` takes a .kwn blob or a .tflite (exported with kws.netblob); by default the
shipped acoustic model for the keyword model's phone set is used when there is one.

As a module (tests/test_firmware.py, tools/firmware_report.py): :func:`build`,
:func:`run`, :func:`uart_session`, :func:`detect`, :func:`decode_posteriors`,
:func:`features`, :func:`missing_tools`; :class:`SerialDevice` (UART0 as a TCP serial
port, flash slots in a file: kws-flash and tests/test_flash.py).

Instruction counts: with ``icount=True`` QEMU runs with ``-icount shift=0`` (one
instruction per ns of virtual time); the firmware times each stage with the CMSDK APB
timer (25 MHz, so 40 instructions per tick) and a ``calib`` loop of a known instruction
count checks that factor on every measured run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FW_DIR = ROOT / "firmware"
QEMU = os.environ.get("KWS_QEMU", "qemu-system-arm")
CROSS = os.environ.get("KWS_CROSS", "arm-none-eabi-")
CALIB_N = 1_000_000  # calib loop iterations: 2 instructions each

_QEMU_BASE = ["-M", "mps2-an386", "-display", "none", "-monitor", "none"]


class FirmwareError(RuntimeError):
    pass


def missing_tools() -> str | None:
    """Why the firmware cannot be built and run here, or None when it can."""
    for tool in (CROSS + "gcc", CROSS + "size", QEMU, "make"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"
    return None


def build(net: str | os.PathLike | None = None, build_dir: str | os.PathLike | None = None,
          jobs: int = 2, extra_cflags: str = "", no_net: bool = False) -> Path:
    """make -C firmware; return the ELF. ``net``: a .kwn blob to link into flash."""
    bdir = Path(build_dir) if build_dir else FW_DIR / "build"
    cmd = ["make", "-C", str(FW_DIR), f"-j{jobs}", f"BUILD={bdir.resolve()}"]
    if net:
        cmd.append(f"NET={Path(net).resolve()}")
    if extra_cflags:
        cmd.append(f"EXTRA_CFLAGS={extra_cflags}")
    if no_net:
        cmd.append("NO_NET=1")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise FirmwareError(f"firmware build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return bdir / "kws_fw.elf"


def default_elf() -> Path:
    return build()


# --------------------------------------------------------------------------------------
# Output parsing
# --------------------------------------------------------------------------------------

_DET = re.compile(r"^DET keyword=(\d+) name=(.*) start=(\d+) end=(\d+) score=(\S+) bits=0x([0-9a-f]{8}) heard=(\d+)$")


def _kv(line: str) -> dict:
    """The firmware's ``key=value`` fields (one parser for the tools and the package)."""
    from kws.serial_link import parse_kv
    return parse_kv(line)


@dataclass
class Detection:
    keyword: int
    name: str
    start: int
    end: int
    score: float
    score_bits: int
    heard: int  # samples of the stream the device had received when it printed this

    @property
    def exact_score(self) -> float:
        return float(np.array([self.score_bits], np.uint32).view(np.float32)[0])


@dataclass
class FwResult:
    """One firmware run: exit status, output lines and what they say."""

    rc: int
    text: str
    detections: list[Detection] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    nets: list[dict] = field(default_factory=list)
    ends: list[dict] = field(default_factory=list)
    times: list[dict] = field(default_factory=list)
    calib: list[int] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    boot: dict = field(default_factory=dict)
    events: list[tuple[str, object]] = field(default_factory=list)  # in output order

    @property
    def insns_per_tick(self) -> float | None:
        if not self.calib:
            return None
        return 2.0 * CALIB_N / self.calib[-1]


def parse(text: str, rc: int = 0) -> FwResult:
    res = FwResult(rc, text)
    for line in text.splitlines():
        line = line.rstrip("\r")
        m = _DET.match(line)
        if m:
            d = Detection(int(m[1]), m[2], int(m[3]), int(m[4]), float(m[5]), int(m[6], 16), int(m[7]))
            res.detections.append(d)
            res.events.append(("DET", d))
            continue
        tag = line.split(" ", 1)[0]
        kv = _kv(line)
        if tag == "ERR":
            kv["msg"] = line.split(" msg=", 1)[1] if " msg=" in line else ""
            res.errors.append(kv)
        elif tag == "MODEL":
            res.models.append(kv)
        elif tag == "NET":
            res.nets.append(kv)
        elif tag == "END":
            res.ends.append(kv)
        elif tag == "TIME":
            res.times.append(kv)
        elif tag == "CALIB":
            res.calib.append(kv["ticks"])
        elif tag == "SUMMARY":
            res.summary = kv
        elif tag == "BOOT":
            res.boot = kv
        else:
            continue
        res.events.append((tag, kv))
    return res


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------

def _semi_args(args: list[str]) -> str:
    for a in args:
        if " " in a or not a:
            raise FirmwareError(f"firmware argument {a!r}: no spaces allowed (copy the file to a plain path)")
    return "enable=on,target=native," + ",".join("arg=" + a.replace(",", ",,") for a in ["kws_fw", *args])


def run(args: list[str], elf: str | os.PathLike | None = None, icount: bool = False,
        timeout: float = 300) -> FwResult:
    """Run the firmware with these commands (see firmware/src/main.c) via semihosting."""
    elf = Path(elf) if elf else default_elf()
    if icount:
        args = ["calib", str(CALIB_N), *args]
    cmd = [QEMU, *_QEMU_BASE, "-serial", "null", "-semihosting-config", _semi_args(args),
           "-kernel", str(elf)]
    if icount:
        cmd[1:1] = ["-icount", "shift=0"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FirmwareError(f"firmware run timed out after {timeout} s: {' '.join(cmd)}") from exc
    res = parse(r.stdout, r.returncode)
    if not res.summary:
        raise FirmwareError(f"firmware did not finish cleanly (rc {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return res


def to_pcm(audio, dst: Path, sample_rate: int = 16000) -> int:
    """Audio (a path kws.audio reads, or samples) -> raw 16 kHz int16 LE; returns samples."""
    from kws.audio import TARGET_RATE, load_audio, to_pcm16

    if isinstance(audio, (str, os.PathLike)):
        pcm = load_audio(audio)
    else:
        pcm = np.asarray(audio)
        if not (pcm.dtype == np.int16 and pcm.ndim == 1 and sample_rate == TARGET_RATE):
            pcm = to_pcm16(pcm, sample_rate)
    pcm = np.ascontiguousarray(pcm, dtype="<i2")
    dst.write_bytes(pcm.tobytes())
    return len(pcm)


def net_blob(net: str | os.PathLike) -> bytes:
    """A .kwn file's bytes, or a .tflite (+ .json card) exported to one."""
    p = Path(net)
    if p.suffix == ".tflite":
        from kws.netblob import export

        return export(p)
    return p.read_bytes()


def default_net_for(model_path: str | os.PathLike) -> Path | None:
    """The shipped acoustic model (.tflite) for the keyword model's phone set, if any."""
    try:
        from kws.acoustic import DATA_DIR
        from kws.detector import _LANG_BY_PHONE_SET
        from kws.model_file import KeywordModel

        lang = _LANG_BY_PHONE_SET.get(KeywordModel.load(model_path).phone_set.name)
    except Exception:
        return None
    p = DATA_DIR / f"{lang}.tflite" if lang else None
    return p if p is not None and p.is_file() else None


def _stage(tmp: Path, name: str, data: bytes) -> str:
    p = tmp / name
    p.write_bytes(data)
    return str(p)


def detect(model, audio, net=None, icount: bool = False, elf=None, sample_rate: int = 16000,
           timeout: float = 300) -> FwResult:
    """Keyword model (+ network) + audio -> the firmware's detections."""
    with tempfile.TemporaryDirectory(prefix="kwsfw") as d:
        tmp = Path(d)
        args = []
        if net is not None:
            args += ["net", _stage(tmp, "net.kwn", net_blob(net))]
        model_bytes = model if isinstance(model, bytes) else Path(model).read_bytes()
        args += ["model", _stage(tmp, "model.kwm", model_bytes)]
        to_pcm(audio, tmp / "audio.pcm", sample_rate)
        args += ["detect", str(tmp / "audio.pcm")]
        return run(args, elf=elf, icount=icount, timeout=timeout)


def decode_posteriors(model, logpost: np.ndarray, elf=None, icount: bool = False,
                      phone_set: int | None = None) -> FwResult:
    """Keyword model + log-posteriors (frames x n_phones) -> the firmware decoder's detections."""
    with tempfile.TemporaryDirectory(prefix="kwsfw") as d:
        tmp = Path(d)
        model_bytes = model if isinstance(model, bytes) else Path(model).read_bytes()
        args = [] if phone_set is None else ["phoneset", str(phone_set)]
        args += ["model", _stage(tmp, "model.kwm", model_bytes),
                 "post", _stage(tmp, "post.f32", np.ascontiguousarray(logpost, "<f4").tobytes())]
        return run(args, elf=elf, icount=icount)


def features(audio, elf=None, sample_rate: int = 16000) -> np.ndarray:
    """The firmware front end's log-mel frames for this audio."""
    with tempfile.TemporaryDirectory(prefix="kwsfw") as d:
        tmp = Path(d)
        to_pcm(audio, tmp / "a.pcm", sample_rate)
        res = run(["feat", str(tmp / "a.pcm"), str(tmp / "f.f32")], elf=elf)
        if res.errors:
            raise FirmwareError(f"feat failed: {res.errors}")
        return np.fromfile(tmp / "f.f32", "<f4").reshape(-1, 40)


def log_posteriors(net, audio, elf=None, sample_rate: int = 16000) -> np.ndarray:
    """The firmware's front end + network: log-posteriors (frames x n_phones)."""
    with tempfile.TemporaryDirectory(prefix="kwsfw") as d:
        tmp = Path(d)
        to_pcm(audio, tmp / "a.pcm", sample_rate)
        res = run(["net", _stage(tmp, "net.kwn", net_blob(net)), "logpost", str(tmp / "a.pcm"),
                   str(tmp / "lp.f32")], elf=elf)
        if res.errors or not res.nets:
            raise FirmwareError(f"logpost failed: {res.errors}")
        return np.fromfile(tmp / "lp.f32", "<f4").reshape(-1, res.nets[-1]["phones"])


# --------------------------------------------------------------------------------------
# UART0 streaming
# --------------------------------------------------------------------------------------

@dataclass
class UartLine:
    text: str
    sent: int      # payload bytes of the current command sent when the line arrived
    t: float


def uart_session(steps: list[tuple[str, bytes | None]], boot_args: list[str] = (), elf=None,
                 timeout: float = 300, chunk: int = 640) -> tuple[list[list[UartLine]], FwResult]:
    """Drive the firmware's UART command loop.

    ``steps``: (command, payload) pairs, e.g. ("model", kwm_bytes), ("detect", pcm_bytes),
    ("phoneset", None) with the argument in the command ("phoneset 123"). A payload is
    announced by its byte count and streamed in ``chunk``-byte pieces from a writer thread
    while the output is read, so each output line records how much of the payload had been
    sent when it arrived (a detection printed before the audio ends shows streaming).
    ``boot_args`` are semihosting commands run before ``uart`` (e.g. loading a network).
    Returns the lines of each step (up to its ``OK``) and the semihosting console's result.
    """
    elf = Path(elf) if elf else default_elf()
    with tempfile.TemporaryDirectory(prefix="kwsfw") as d:
        sock_path = str(Path(d) / "uart0.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(sock_path)
        srv.listen(1)
        srv.settimeout(30)
        cmd = [QEMU, *_QEMU_BASE, "-chardev", f"socket,id=uart0,path={sock_path}",
               "-serial", "chardev:uart0",
               "-semihosting-config", _semi_args([*boot_args, "uart"]), "-kernel", str(elf)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out: list[list[UartLine]] = []
        try:
            conn, _ = srv.accept()
            conn.settimeout(timeout)
            buf = bytearray()
            deadline = time.monotonic() + timeout

            def read_line() -> str:
                while b"\n" not in buf:
                    if time.monotonic() > deadline:
                        raise FirmwareError("UART session timed out")
                    data = conn.recv(4096)
                    if not data:
                        raise FirmwareError("UART closed")
                    buf.extend(data)
                i = buf.index(b"\n")
                line = bytes(buf[:i]).decode("utf-8", "replace").rstrip("\r")
                del buf[: i + 1]
                return line

            while read_line() != "READY":
                pass
            for command, payload in steps:
                sent = [0]
                if payload is None:
                    conn.sendall(command.encode() + b"\n")
                    writer = None
                else:
                    conn.sendall(f"{command} {len(payload)}\n".encode())

                    def write(p=payload):
                        for i in range(0, len(p), chunk):
                            conn.sendall(p[i:i + chunk])
                            sent[0] = min(len(p), i + chunk)

                    writer = threading.Thread(target=write, daemon=True)
                    writer.start()
                lines = []
                while True:
                    line = read_line()
                    if line == "OK":
                        break
                    lines.append(UartLine(line, sent[0], time.monotonic()))
                if writer is not None:
                    writer.join(timeout)
                out.append(lines)
            conn.sendall(b"quit\n")
            while read_line() != "BYE":
                pass
            stdout, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            srv.close()
        return out, parse(stdout, proc.returncode)


def parse_uart(lines: list[UartLine]) -> FwResult:
    return parse("\n".join(l.text for l in lines))


# --------------------------------------------------------------------------------------
# UART0 as a TCP serial port, flash slots in a file (kws-flash; tests/test_flash.py)
# --------------------------------------------------------------------------------------

FLASH_SLOTS_OFFSET = 0xF00000  # FLASHSLOTS (0x21F00000) inside the 16 MB PSRAM file
PSRAM_SIZE = 16 * 1024 * 1024


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SerialDevice:
    """The firmware in QEMU as a device on a serial line: UART0 is a TCP server
    (``socket://127.0.0.1:PORT`` for pyserial / kws-flash) and the board's PSRAM, whose
    top MB holds the keyword-model slots (firmware/src/fw_flash.c), is a file
    (memory-backend-file, share=on): every write the guest makes is in the file at once,
    so the slots survive a guest reset (SYSRESETREQ: QEMU reloads the ELF, which puts
    nothing there) and :meth:`kill` + :meth:`start` (power cut, restart).

    ``boot_args``: semihosting commands run before ``uart`` (``net FILE``, ``phoneset ID``).
    The console (semihosting) output is collected in :attr:`console`.
    """

    def __init__(self, flash_file: str | os.PathLike, boot_args: list[str] = (), elf=None,
                 port: int | None = None) -> None:
        self.flash_file = Path(flash_file)
        self.boot_args = list(boot_args)
        self.elf = Path(elf) if elf else default_elf()
        self.port = port or free_tcp_port()
        self.proc: subprocess.Popen | None = None
        self.console_lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    @property
    def console(self) -> str:
        return "\n".join(self.console_lines)

    def command(self) -> list[str]:
        return [QEMU, "-M", "mps2-an386,memory-backend=psram", "-object",
                f"memory-backend-file,id=psram,size={PSRAM_SIZE},mem-path={self.flash_file},share=on",
                "-display", "none", "-monitor", "none",
                "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=off,nodelay=on",
                "-semihosting-config", _semi_args([*self.boot_args, "uart"]), "-kernel", str(self.elf)]

    def start(self, timeout: float = 30) -> "SerialDevice":
        if self.proc is not None and self.proc.poll() is None:
            raise FirmwareError("device already running")
        n0 = len(self.console_lines)
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def read(proc=self.proc):
            for line in proc.stdout:
                self.console_lines.append(line.rstrip("\n"))

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        self.wait_console("ACTIVE ", timeout, start=n0)
        return self

    def wait_console(self, prefix: str, timeout: float = 30, start: int = 0) -> str:
        """The first console line from index ``start`` on that starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.console_lines[start:]:
                if line.startswith(prefix):
                    return line
            if self.proc is not None and self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise FirmwareError(f"no {prefix!r} line from the firmware:\n" + "\n".join(self.console_lines[-20:]))

    def kill(self) -> None:
        """Power cut: SIGKILL, no chance to finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=5)

    stop = kill

    def slots_image(self) -> bytes:
        """The bytes of the slot region (what the device's flash holds now)."""
        with open(self.flash_file, "rb") as f:
            f.seek(FLASH_SLOTS_OFFSET)
            return f.read(2 * 68 * 1024)

    def __enter__(self) -> "SerialDevice":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("audio", nargs="*", help="audio files (anything kws.audio reads)")
    ap.add_argument("--model", required=True, help="keyword model (.kwm)")
    ap.add_argument("--net", help="network: .kwn or .tflite (default: the shipped model for the phone set)")
    ap.add_argument("--posteriors", help="decoder only: a .npy of log-posteriors (frames x n_phones)")
    ap.add_argument("--uart", action="store_true", help="stream the audio over UART0 instead of semihosting")
    ap.add_argument("--icount", action="store_true", help="-icount shift=0: report instructions per stage")
    ap.add_argument("--json", action="store_true", help="one JSON object per input")
    a = ap.parse_args(argv)
    why = missing_tools()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 1
    elf = default_elf()
    if a.posteriors:
        jobs = [(a.posteriors, lambda: decode_posteriors(a.model, np.load(a.posteriors), elf=elf, icount=a.icount))]
    else:
        net = a.net or default_net_for(a.model)
        if net is None:
            print("error: no network: pass --net (no acoustic model is shipped for this phone set)", file=sys.stderr)
            return 1
        if a.uart:
            def uart_job(f):
                with tempfile.TemporaryDirectory(prefix="kwsfw") as d:
                    tmp = Path(d)
                    to_pcm(f, tmp / "a.pcm")
                    steps, _ = uart_session([("model", Path(a.model).read_bytes()),
                                             ("detect", (tmp / "a.pcm").read_bytes())],
                                            boot_args=["net", _stage(tmp, "n.kwn", net_blob(net))], elf=elf)
                    for line in steps[1]:
                        if line.text.startswith("DET") and not a.json:
                            print(f"{f}: [{line.sent} bytes sent] {line.text}", flush=True)
                    res = parse_uart(steps[0] + steps[1])
                    res.rc = 0
                    return res
            jobs = [(f, (lambda f=f: uart_job(f))) for f in a.audio]
        else:
            jobs = [(f, (lambda f=f: detect(a.model, f, net=net, elf=elf, icount=a.icount))) for f in a.audio]
    status = 0
    for name, job in jobs:
        res = job()
        if res.errors:
            status = 1
        ipt = res.insns_per_tick or 40.0
        t = res.times[-1] if res.times else {}
        if a.json:
            obj = {"file": str(name), "detections": [d.__dict__ for d in res.detections],
                   "errors": res.errors, "summary": res.summary}
            if a.icount and t:
                secs = t["samples"] / 16000 if t.get("samples") else t["frames"] / 100
                obj["instructions_per_second"] = {k: t[k] * ipt / secs for k in ("fe", "net", "dec")}
            print(json.dumps(obj))
            continue
        for e in res.errors:
            print(f"{name}: error {e.get('code')}: {e.get('msg')}", file=sys.stderr)
        if not a.uart:
            for d in res.detections:
                print(f"{name}: {d.name} start={d.start} end={d.end} score={d.score:.4f}")
        if a.icount and t:
            secs = t["samples"] / 16000 if t.get("samples") else t["frames"] / 100
            print(f"{name}: instructions per second of audio: "
                  + ", ".join(f"{k} {t[k] * ipt / secs / 1e6:.2f} M" for k in ("fe", "net", "dec")))
    return status


if __name__ == "__main__":
    sys.exit(main())
