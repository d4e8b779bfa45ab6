"""Flashing keyword models over serial (kws-flash, docs/flash-protocol.md).

Host side alone: framing, CLI usage and failure messages (no device, a device that
never answers). The frame receiver in C (kws_core/src/kws_proto.c) through its fuzz
target's replay driver under ASan/UBSan.

Against the firmware in QEMU (skips without arm-none-eabi-gcc / qemu-system-arm): UART0
is a TCP server reached as socket://127.0.0.1:PORT, the flash slots live in a file
(tools/run_firmware.py SerialDevice). A model is flashed and then detected (decoder on a
posteriorgram; with the network, on synthesised speech); then flashing through a proxy
that flips and drops bytes, with the connection cut, with QEMU killed (power cut) at
several points and restarted on the same flash file, with the device reset, with a model
for another phone set and with oversize models. In every case the device afterwards
runs either the new or the previous model, and --info says which.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import run_firmware as fw  # noqa: E402
from kws import flash  # noqa: E402
from kws.phonesets import ENGLISH, KOREAN  # noqa: E402
from synthetic import Posteriorgram, make_model, pron  # noqa: E402

needs_fw = pytest.mark.skipif(fw.missing_tools() is not None, reason=str(fw.missing_tools()))

CLI = [sys.executable, "-m", "kws.flash_cli"]
SLOT_CAP = 69568  # model bytes a slot holds (firmware/src/fw_flash.c)


def kws_flash(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------

KW = {"jarvis": pron(["JH", "AA", "R", "V", "IH", "S"]),
      "computer": pron(["K", "AH", "M", "P", "Y", "UW", "T", "ER"]),
      "alexa": pron(["AH", "L", "EH", "K", "S", "AH"])}


def _model(*names: str) -> bytes:
    return make_model({n: KW[n] for n in names}).to_bytes()


def _fix_crc(b: bytearray) -> bytes:
    b[12:16] = b"\0\0\0\0"
    b[12:16] = struct.pack("<I", zlib.crc32(bytes(b)))
    return bytes(b)


def padded(kwm: bytes, total: int) -> bytes:
    """The same model grown to ``total`` bytes by unused bytes at the end of its string
    section (the last section): still a valid model, with a tiny decoder."""
    assert total % 4 == 0 and total >= len(kwm)
    b = bytearray(kwm + bytes(total - len(kwm)))
    strings_off, strings_size = struct.unpack_from("<II", b, 44)
    assert strings_off + ((strings_size + 3) & ~3) == len(kwm), "strings are not the last section"
    struct.pack_into("<I", b, 48, total - strings_off)
    struct.pack_into("<I", b, 8, total)
    return _fix_crc(b)


def other_phone_set(kwm: bytes) -> bytes:
    b = bytearray(kwm)
    struct.pack_into("<I", b, 16, KOREAN.id)
    return _fix_crc(b)


def many_keywords(n: int) -> bytes:
    """n keywords (more than the firmware's decoder takes when n > 32)."""
    phones = ["AA", "AE", "AH", "B", "D", "EH", "F", "G", "IH", "K", "L", "M", "N", "P", "S", "T"]
    rng = random.Random(n)
    kws_ = {f"kw{i}": pron([rng.choice(phones) for _ in range(6)]) for i in range(n)}
    return make_model(kws_).to_bytes()


def _posteriorgram() -> np.ndarray:
    pg = Posteriorgram(seed=3)
    pg.background(20)
    pg.add(KW["jarvis"].words[0].variants[0], frames=6)
    pg.background(40)
    pg.add(KW["computer"].words[0].variants[0], frames=5)
    pg.background(25)
    return np.ascontiguousarray(pg.logpost(), np.float32)


# --------------------------------------------------------------------------------------
# Host side alone
# --------------------------------------------------------------------------------------

def test_frames_round_trip_and_bad_frames_dropped():
    rng = random.Random(0)
    frames = [(t, rng.randrange(256), bytes(rng.randrange(256) for _ in range(rng.randrange(0, 521))))
              for t in (1, 2, 3, 4, 5, 0x84, 0x85)]
    frames.append((4, 0xC0, bytes([0xC0, 0xDB, 0xDC, 0xDD]) * 100))
    wire = b"READY\r\n" + b"".join(flash.encode_frame(*f) for f in frames)
    r = flash.FrameReader()
    got = []
    for i in range(0, len(wire), 37):  # any chunking
        got += r.feed(wire[i:i + 37])
    assert got == frames
    bad = bytearray(flash.encode_frame(4, 1, b"x" * 100))
    bad[50] ^= 0x10
    r = flash.FrameReader()
    assert r.feed(bytes(bad) + flash.encode_frame(5, 2)) == [(5, 2, b"")] and r.bad == 1
    with pytest.raises(ValueError):
        flash.encode_frame(4, 0, bytes(521))


def test_model_header_checks():
    kwm = _model("jarvis")
    h = flash.read_model_header(kwm)
    assert h.size == len(kwm) and h.phone_set_id == ENGLISH.id and h.n_keywords == 1
    with pytest.raises(flash.FlashError, match="not a keyword model"):
        flash.read_model_header(b"RIFF" + kwm[4:])
    with pytest.raises(flash.FlashError, match="corrupt"):
        flash.read_model_header(kwm[:100] + bytes([kwm[100] ^ 1]) + kwm[101:])
    with pytest.raises(flash.FlashError, match="truncated"):
        flash.read_model_header(kwm[:-4])
    assert flash.read_model_header(padded(kwm, 4096)).size == 4096


def _c_arrays(text: str) -> list[bytes]:
    """The uint32 arrays of a generated default_model.c, as bytes, in file order."""
    import re
    out = []
    for body in re.findall(r"fw_default_model\[\d+\] = \{(.*?)\};", text, re.S):
        words = [int(w, 16) for w in re.findall(r"0x([0-9a-f]{8})u", body)]
        out.append(struct.pack(f"<{len(words)}I", *words))
    return out


def test_builtin_model_is_format_2_with_a_1x_fallback():
    """The firmware's built-in model (what a device runs when no flashed slot is valid) is
    the current format, scored with the uncertainty weight; a firmware built as an older
    reader compiles the same keyword as format 1.1 instead, so it still boots on a model
    it can parse (as does one built as a 2.0 reader, which would refuse 2.1's state flag).
    The committed file is exactly what the generator writes for the two."""
    from kws.model_file import KeywordModel
    text = (ROOT / "firmware" / "src" / "default_model.c").read_text()
    new, old = _c_arrays(text)
    a, b = KeywordModel.from_bytes(new), KeywordModel.from_bytes(old)
    assert a.format_version == "2.1" and a.uncertainty_weight > 0 and a.best_pays
    assert b.format_version == "1.1" and b.uncertainty_weight == 0
    assert a.names == b.names == ["hey jarvis"] and a.phone_set.id == b.phone_set.id == ENGLISH.id
    assert all(k.expected_fa_per_hour >= 0 for k in a.keywords + b.keywords)  # calibrated
    assert text == flash.default_model_c(new, old)
    assert (text.index("#if KWS_FORMAT_MAJOR > 2 || (KWS_FORMAT_MAJOR == 2 && KWS_FORMAT_MINOR >= 1)")
            < text.index("#else") < text.index("#endif"))
    assert flash.default_model_c(old).count("fw_default_model[") == 1  # one model, no #if
    with pytest.raises(ValueError, match="want a 2.x model and a 1.x legacy one"):
        flash.default_model_c(old, new)


def test_cli_usage_errors(tmp_path):
    assert kws_flash().returncode == 2
    r = kws_flash("--port", "socket://127.0.0.1:1")
    assert r.returncode == 2 and "MODEL" in r.stderr
    r = kws_flash("--port", "x", "--info", "m.kwm")
    assert r.returncode == 2


def test_cli_no_device(tmp_path):
    (tmp_path / "m.kwm").write_bytes(_model("jarvis"))
    for port in ("/dev/kws-no-such-tty", f"socket://127.0.0.1:{fw.free_tcp_port()}"):
        r = kws_flash("--port", port, str(tmp_path / "m.kwm"))
        assert r.returncode == 1, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kws-flash: error: no device at"), r.stderr


def test_cli_device_that_never_answers(tmp_path):
    """A port that accepts and reads but never replies: 'stopped answering', exit 1."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = bytearray()

    def sink():
        c, _ = srv.accept()
        while True:
            d = c.recv(4096)
            if not d:
                break
            got.extend(d)
        c.close()

    t = threading.Thread(target=sink, daemon=True)
    t.start()
    r = kws_flash("--port", f"socket://127.0.0.1:{srv.getsockname()[1]}", "--info", "--timeout", "0.1",
                  "--retries", "3")
    srv.close()
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "kws-flash: error: device stopped answering (no reply to HELLO after 3 tries of 0.1 s)")
    assert got.count(bytes([flash.END])) == 6  # three tries of one frame


def test_frame_receiver_in_c_under_sanitizers(tmp_path):
    """kws_proto.c through the fuzz target's replay driver (ASan/UBSan): frames as the
    host encodes them, split and corrupted, text lines, garbage."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    exe = tmp_path / "fuzz_proto_replay"
    core = ROOT / "kws_core"
    r = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-O1",
                        "-DKWS_FUZZ_REPLAY", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                        f"-I{core / 'include'}", str(core / "fuzz" / "fuzz_proto.c"),
                        str(core / "src" / "kws_proto.c"), str(core / "src" / "kws_model.c"), "-lm", "-o", str(exe)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    rng = random.Random(1)
    kwm = _model("jarvis", "computer")
    stream = (b"READY\n" + flash.encode_frame(1, 1, struct.pack("<HH", 1, 520))
              + flash.encode_frame(3, 2, struct.pack("<III", len(kwm), zlib.crc32(kwm), ENGLISH.id))
              + b"".join(flash.encode_frame(4, 3 + i, struct.pack("<I", o) + kwm[o:o + 512])
                         for i, o in enumerate(range(0, len(kwm), 512)))
              + flash.encode_frame(5, 9) + b"post 12\n" + flash.encode_frame(7, 10))
    (seeds / "session").write_bytes(stream)
    for i in range(40):
        b = bytearray(stream)
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        (seeds / f"mutated{i}").write_bytes(bytes(b))
    (seeds / "garbage").write_bytes(bytes(rng.randrange(256) for _ in range(5000)))
    (seeds / "long_line").write_bytes(b"x" * 3000 + b"\n")
    (seeds / "all_escapes").write_bytes(bytes([0xC0]) + bytes([0xDB]) * 2000 + bytes([0xC0]))
    r = subprocess.run([str(exe), str(seeds)], capture_output=True, text=True, timeout=300,
                       env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("ok ") == 44


def test_frame_receiver_libfuzzer_short_run(tmp_path):
    """FUZZ_TARGET=proto tools/fuzz.sh: 10 s of libFuzzer on kws_proto.c, no crash."""
    import os
    import re

    if shutil.which(os.environ.get("CLANG", "clang")) is None or shutil.which("bash") is None:
        pytest.skip("needs clang with libFuzzer (apt-get install clang libclang-rt-14-dev)")
    probe = tmp_path / "probe.c"
    probe.write_text("#include <stddef.h>\n#include <stdint.h>\n"
                     "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
    if subprocess.run([os.environ.get("CLANG", "clang"), "-fsanitize=fuzzer,address,undefined", str(probe),
                       "-o", str(tmp_path / "probe")], capture_output=True, timeout=120).returncode != 0:
        pytest.skip("clang without the libFuzzer runtime (apt-get install libclang-rt-14-dev)")
    out = tmp_path / "fuzz"
    r = subprocess.run(["bash", str(ROOT / "tools" / "fuzz.sh"), "10", str(out)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "PYTHON": sys.executable, "FUZZ_TARGET": "proto"})
    m = re.search(r"^fuzz summary: runs=(\d+) seconds=\d+ exec/s=\d+ corpus=(\d+) crashes=(\d+)$", r.stdout, re.M)
    assert m is not None and r.returncode == 0, r.stdout[-1000:] + r.stderr[-4000:]
    runs, corpus, crashes = map(int, m.groups())
    assert crashes == 0 and runs > 10_000 and corpus > 0


# --------------------------------------------------------------------------------------
# Against the firmware in QEMU
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def elf() -> Path:
    if fw.missing_tools() is not None:
        pytest.skip(str(fw.missing_tools()))
    return fw.build()


@pytest.fixture
def device(elf, tmp_path):
    """A device whose models must be for the English phone set (no network: decoder only)."""
    dev = fw.SerialDevice(tmp_path / "flash.bin", boot_args=["phoneset", str(ENGLISH.id)], elf=elf)
    dev.start()
    yield dev
    dev.kill()


def info(url: str) -> dict:
    r = kws_flash("--port", url, "--info", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def flash_ok(url: str, path: Path, *extra: str) -> dict:
    r = kws_flash("--port", url, str(path), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def uart_command(port: int, line: str, payload: bytes = b"", timeout: float = 60) -> list[str]:
    """A text command on the device's UART (after the flashing session): its output lines."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n" + payload)
        buf = b""
        while not buf.endswith(b"OK\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
    lines = [ln for ln in buf.decode("utf-8", "replace").split("\n") if ln and ln != "READY"]
    assert lines and lines[-1] == "OK", lines
    return lines[:-1]


def detections_on(port: int, lp: np.ndarray) -> list[str]:
    out = uart_command(port, f"post {lp.nbytes}", lp.astype("<f4").tobytes())
    res = fw.parse("\n".join(out))
    assert res.ends, out
    return [d.name for d in res.detections]


def _active(inf: dict) -> tuple[str, int, list[str]]:
    return inf["active_source"], inf["active_seq"], inf["keywords"]


@needs_fw
def test_fresh_device_runs_builtin_model(device):
    inf = info(device.url)
    assert _active(inf) == ("built-in", 0, ["hey jarvis"])
    assert inf["slot_seq"] == {"A": 0, "B": 0} and inf["free_slot"] == "A"
    assert inf["phone_set_id"] == ENGLISH.id and inf["max_model_bytes"] == SLOT_CAP
    r = kws_flash("--port", device.url, "--info")
    assert r.returncode == 0 and "active model: built-in" in r.stdout and "'hey jarvis'" in r.stdout


@needs_fw
def test_flash_then_detect_then_survives_restart_and_reset(device, tmp_path):
    lp = _posteriorgram()
    m1, m2 = tmp_path / "m1.kwm", tmp_path / "m2.kwm"
    m1.write_bytes(_model("jarvis", "computer"))
    m2.write_bytes(_model("alexa"))
    res = flash_ok(device.url, m1)
    assert res["slot"] == "A" and res["seq"] == 1 and res["bytes"] == m1.stat().st_size
    assert _active(res["info"]) == ("slot A", 1, ["jarvis", "computer"])
    assert detections_on(device.port, lp) == ["jarvis", "computer"]

    r = kws_flash("--port", device.url, str(m2))  # plain output, progress on stderr
    assert r.returncode == 0 and "slot B (seq 2)" in r.stdout and "flashing slot B" in r.stderr
    assert _active(info(device.url)) == ("slot B", 2, ["alexa"])

    # Power cut and restart on the same flash: the newest slot.
    device.kill()
    device.start()
    inf = info(device.url)
    assert _active(inf) == ("slot B", 2, ["alexa"]) and inf["slot_seq"] == {"A": 1, "B": 2}
    assert inf["free_slot"] == "A"
    # The next model goes to A (the older one), and a reset command keeps it.
    flash_ok(device.url, m1)
    n = len(device.console_lines)
    r = kws_flash("--port", device.url, "--reset")
    assert r.returncode == 0, r.stderr
    device.wait_console("ACTIVE source=slotA seq=3", start=n)
    assert _active(info(device.url)) == ("slot A", 3, ["jarvis", "computer"])
    assert detections_on(device.port, lp) == ["jarvis", "computer"]


class Proxy:
    """TCP proxy between kws-flash and QEMU's serial port that can damage the stream.

    corrupt: probability per byte (both ways) of a flipped bit; drop: of a lost byte;
    after: bytes host->device passed untouched first; cut_after: close both sides after
    that many bytes host->device; on_bytes(n): called with the host->device count.
    """

    def __init__(self, target_port: int, corrupt: float = 0.0, drop: float = 0.0, after: int = 0,
                 cut_after: int | None = None, on_bytes=None, seed: int = 0) -> None:
        self.target = target_port
        self.corrupt, self.drop, self.after = corrupt, drop, after
        self.cut_after, self.on_bytes = cut_after, on_bytes
        self.rng = random.Random(seed)
        self.up = 0  # bytes host -> device
        self.damaged = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _mangle(self, data: bytes, upstream: bool) -> bytes:
        if upstream and self.up < self.after:
            return data
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.drop:
                self.damaged += 1
                continue
            if r < self.drop + self.corrupt:
                b ^= 1 << self.rng.randrange(8)
                self.damaged += 1
            out.append(b)
        return bytes(out)

    def _serve(self) -> None:
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if upstream and self.cut_after is not None and self.up + len(data) >= self.cut_after:
                    dst.sendall(data[: self.cut_after - self.up])
                    self.up = self.cut_after
                    break
                if upstream:
                    mangled = self._mangle(data, True)
                    self.up += len(data)
                else:
                    mangled = self._mangle(data, False)
                dst.sendall(mangled)
                if upstream and self.on_bytes is not None:
                    self.on_bytes(self.up)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closed = True
        self.srv.close()


@needs_fw
def test_flash_through_corrupting_proxy_recovers(device, tmp_path):
    m = tmp_path / "m.kwm"
    m.write_bytes(padded(_model("jarvis", "computer"), 3072))
    proxy = Proxy(device.port, corrupt=0.0006, drop=0.0003, seed=7)
    try:
        res = flash_ok(proxy.url, m, "--timeout", "0.5", "--retries", "20")
    finally:
        proxy.close()
    assert proxy.damaged > 0 and res["retries"] > 0, (proxy.damaged, res)
    inf = info(device.url)
    assert _active(inf) == ("slot A", 1, ["jarvis", "computer"]) and inf["active_bytes"] == 3072
    assert inf["active_crc"] == zlib.crc32(m.read_bytes())
    assert detections_on(device.port, _posteriorgram()) == ["jarvis", "computer"]


@needs_fw
def test_flash_through_hopeless_line_fails_cleanly(device, tmp_path):
    """Every frame damaged after the handshake: 'stopped answering', previous model kept."""
    m1, m2 = tmp_path / "m1.kwm", tmp_path / "m2.kwm"
    m1.write_bytes(_model("alexa"))
    m2.write_bytes(padded(_model("jarvis", "computer"), 4096))
    flash_ok(device.url, m1)
    proxy = Proxy(device.port, corrupt=0.05, after=400, seed=3)
    try:
        r = kws_flash("--port", proxy.url, str(m2), "--timeout", "0.2", "--retries", "4")
    finally:
        proxy.close()
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("kws-flash: error: device stopped answering"), r.stderr
    assert _active(info(device.url)) == ("slot A", 1, ["alexa"])
    flash_ok(device.url, m2)  # a good line afterwards: it works
    assert _active(info(device.url)) == ("slot B", 2, ["jarvis", "computer"])


@needs_fw
def test_connection_cut_mid_transfer(device, tmp_path):
    m1, m2 = tmp_path / "m1.kwm", tmp_path / "m2.kwm"
    m1.write_bytes(_model("alexa"))
    m2.write_bytes(padded(_model("jarvis", "computer"), 8192))
    flash_ok(device.url, m1)
    proxy = Proxy(device.port, cut_after=4000)
    try:
        r = kws_flash("--port", proxy.url, str(m2), "--timeout", "0.3", "--retries", "3")
    finally:
        proxy.close()
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("kws-flash: error: connection to the device lost") or "stopped answering" in last, r.stderr
    inf = info(device.url)
    assert _active(inf) == ("slot A", 1, ["alexa"]) and inf["slot_seq"] == {"A": 1, "B": 0}
    res = flash_ok(device.url, m2)
    assert res["slot"] == "B" and _active(res["info"]) == ("slot B", 2, ["jarvis", "computer"])


@needs_fw
@pytest.mark.parametrize("kill_at", [120, 5000, "end"])
def test_power_cut_mid_transfer(device, tmp_path, kill_at):
    """QEMU killed (SIGKILL) while a model is being written (during BEGIN/erase, mid data,
    as COMMIT goes out) and restarted on the same flash file: the device runs the new
    model if COMMIT was done, else the previous one, and --info says which."""
    m1, m2 = tmp_path / "m1.kwm", tmp_path / "m2.kwm"
    m1.write_bytes(_model("alexa"))
    m2.write_bytes(padded(_model("jarvis", "computer"), 12288))
    flash_ok(device.url, m1)
    n_wire = sum(len(flash.encode_frame(4, 0, struct.pack("<I", o) + m2.read_bytes()[o:o + 512]))
                 for o in range(0, 12288, 512))
    at = n_wire + 40 if kill_at == "end" else kill_at  # "end": inside the COMMIT frame
    fired = threading.Event()

    def on_bytes(n):
        if n >= at and not fired.is_set():
            fired.set()
            device.kill()

    proxy = Proxy(device.port, on_bytes=on_bytes)
    try:
        r = kws_flash("--port", proxy.url, str(m2), "--timeout", "0.3", "--retries", "3")
    finally:
        proxy.close()
    assert fired.is_set()
    device.start()
    inf = info(device.url)
    if r.returncode == 0:  # COMMIT was acknowledged before the cut
        assert kill_at == "end" and _active(inf) == ("slot B", 2, ["jarvis", "computer"])
    else:
        assert r.stderr.strip().splitlines()[-1].startswith("kws-flash: error:")
        assert _active(inf) in [("slot A", 1, ["alexa"]), ("slot B", 2, ["jarvis", "computer"])]
        if kill_at != "end":
            assert _active(inf) == ("slot A", 1, ["alexa"]) and inf["slot_seq"]["B"] == 0
    res = flash_ok(device.url, m2)  # and flashing works again
    assert _active(res["info"])[2] == ["jarvis", "computer"]


@needs_fw
def test_wrong_phone_set_refused_before_writing(device, tmp_path):
    m = tmp_path / "ko.kwm"
    m.write_bytes(other_phone_set(_model("jarvis")))
    before = device.slots_image()
    r = kws_flash("--port", device.url, str(m))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"kws-flash: error: wrong phone set: the model is for ko-v1 (0x{KOREAN.id:08x}), "
        f"the device runs en-v1 (0x{ENGLISH.id:08x})")
    assert device.slots_image() == before  # nothing erased or written
    # Past the host's check (an older tool), the device refuses it at BEGIN.
    with flash.Device.open(device.url) as d:
        with pytest.raises(flash.FlashError, match="wrong phone set"):
            d.flash(m.read_bytes(), check=False)
        d.bye()
    assert _active(info(device.url)) == ("built-in", 0, ["hey jarvis"])


@needs_fw
def test_oversize_models_refused(device, tmp_path):
    flash_ok(device.url, _write(tmp_path / "m1.kwm", _model("alexa")))
    big = _write(tmp_path / "big.kwm", padded(_model("jarvis"), SLOT_CAP + 4))
    before = device.slots_image()
    r = kws_flash("--port", device.url, str(big))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"kws-flash: error: model too large: {SLOT_CAP + 4} bytes, a slot on the device holds {SLOT_CAP}")
    assert device.slots_image() == before
    with flash.Device.open(device.url) as d:  # the device's own check at BEGIN
        with pytest.raises(flash.FlashError, match="model too large"):
            d.flash(big.read_bytes(), check=False)
    # A model that fits a slot but whose decoder does not fit the device (33 keywords):
    # the host refuses it; past the host, the device writes it, refuses it at COMMIT.
    many = _write(tmp_path / "many.kwm", many_keywords(33))
    r = kws_flash("--port", device.url, str(many))
    assert r.returncode == 1 and "model too large: 33 keywords" in r.stderr
    with flash.Device.open(device.url) as d:
        with pytest.raises(flash.FlashError, match="does not fit the device's RAM|RAM"):
            d.flash(many.read_bytes(), check=False)
        d.bye()
    inf = info(device.url)
    assert _active(inf) == ("slot A", 1, ["alexa"]) and inf["slot_seq"]["B"] == 0
    # The largest model a slot holds goes through.
    res = flash_ok(device.url, _write(tmp_path / "max.kwm", padded(_model("jarvis"), SLOT_CAP)))
    assert _active(res["info"]) == ("slot B", 2, ["jarvis"]) and res["info"]["active_bytes"] == SLOT_CAP


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


@needs_fw
def test_transfer_times(device, tmp_path, capsys):
    """1 KB and 64 KB models: bytes on the wire (-> time at 115200 8N1) and QEMU time."""
    rows = []
    for size in (1024, 65536):
        m = _write(tmp_path / f"m{size}.kwm", padded(_model("jarvis"), size))
        res = flash_ok(device.url, m, "--timeout", "10")
        assert res["bytes"] == size
        up, down = flash.transfer_wire_bytes(m.read_bytes())
        if res["retries"] == 0:  # measured = computed, within a few escaped bytes
            assert abs(res["wire_bytes_sent"] - up) <= 8 and abs(res["wire_bytes_received"] - down) <= 8 + size // 64
        assert size < up + down < size * 1.08 + 100  # framing + acks: < 8 %
        rows.append((size, up, down, (up + down) * 10 / 115200, res["seconds"], res["retries"]))
    with capsys.disabled():
        for r in rows:
            print(f"\nflash {r[0]} B: wire {r[1]} B out + {r[2]} B in = {r[3]:.2f} s at 115200 8N1; "
                  f"QEMU {r[4]:.3f} s ({r[5]} retries)", end="")


@needs_fw
def test_flashed_model_detects_on_speech(elf, tmp_path):
    """With the network: flash an enrolled model, stream synthesised speech over the UART,
    the firmware's detections are the host pipeline's (same C code)."""
    try:
        import kws
        from kws import _core
        from kws.acoustic import DATA_DIR
        from kws.netblob import export
    except ImportError as exc:
        pytest.skip(f"no network: {exc}")
    if shutil.which("espeak-ng") is None or not (DATA_DIR / "en.tflite").is_file():
        pytest.skip("needs espeak-ng and kws/data/acoustic/en.tflite")
    from kws.audio import load_audio

    kwn = _write(tmp_path / "en.kwn", export(DATA_DIR / "en.tflite"))
    kwm = kws.enroll(["hey jarvis", "computer"], lang="en", threshold=-5.0).model.to_bytes()
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), "hello there. hey jarvis, turn on the lights. computer."],
                   check=True, capture_output=True)
    pcm = load_audio(wav)
    net = _core.Net(kwn.read_bytes())
    s = _core.NetStream(net)
    fe = _core.FrontEnd()
    feats = np.empty((len(pcm) // 160 + 2, 40), np.float32)
    feats = feats[: fe.process(np.ascontiguousarray(pcm, np.int16), feats)]
    lp = np.concatenate([s.push(feats), s.flush()])
    dec = _core.Decoder(kwm)
    host = dec.process(np.ascontiguousarray(lp)) + dec.flush()
    assert host, "no detection on the host: the test would prove nothing"

    with fw.SerialDevice(tmp_path / "flash.bin", boot_args=["net", str(kwn)], elf=elf) as dev:
        res = flash_ok(dev.url, _write(tmp_path / "m.kwm", kwm))
        assert _active(res["info"]) == ("slot A", 1, ["hey jarvis", "computer"])
        out = uart_command(dev.port, f"detect {pcm.nbytes}", pcm.astype("<i2").tobytes(), timeout=300)
    got = fw.parse("\n".join(out)).detections
    assert [d.keyword for d in got] == [h[0] for h in host]
    for h, d in zip(host, got):
        assert abs(d.start - h[2]) <= 1 and abs(d.end - h[3]) <= 1


def _old_firmware_refuses(tmp_path, cflags: str, new, old, version: bytes, error: str) -> None:
    """Firmware built as an older reader (``cflags``) boots on its built-in model, refuses
    ``new`` (whose header starts with ``version``) with ``error``, keeps its model, and
    takes ``old``, the same keyword in the format it reads."""
    elf = fw.build(build_dir=tmp_path / "fw_old", extra_cflags=cflags)
    dev = fw.SerialDevice(tmp_path / "flash.bin", boot_args=["phoneset", str(ENGLISH.id)], elf=elf)
    dev.start()
    try:
        assert _active(info(dev.url)) == ("built-in", 0, ["hey jarvis"])
        path = _write(tmp_path / "new.kwm", new.to_bytes())
        assert path.read_bytes()[4:4 + len(version)] == version
        r = kws_flash("--port", dev.url, str(path))
        assert r.returncode == 1
        assert r.stderr.strip().splitlines()[-1] == "kws-flash: error: " + error
        assert _active(info(dev.url)) == ("built-in", 0, ["hey jarvis"])
        res = flash_ok(dev.url, _write(tmp_path / "old.kwm", old.to_bytes()))
        assert _active(res["info"])[2] == ["jarvis"]
    finally:
        dev.kill()


@needs_fw
def test_firmware_from_before_format_2_refuses_a_2_0_model_and_keeps_its_own(tmp_path):
    """A device whose firmware reads only format 1.x (built here with KWS_FORMAT_MAJOR=1)
    refuses a 2.0 model (uncertainty weight) with a line that says what to do, keeps its
    model, and takes the same keywords enrolled as format 1.1 (weight 0)."""
    m = make_model({"jarvis": KW["jarvis"]})
    _old_firmware_refuses(
        tmp_path, "-DKWS_FORMAT_MAJOR=1", dataclasses.replace(m, uncertainty_weight=0.5), m, b"\x02\x00",
        "the device's firmware does not read keyword-model format 2.x: update its "
        "firmware, or enrol for it with --uncertainty-weight 0 (format 1.1); the previous model stays active")


@needs_fw
def test_firmware_from_before_format_2_1_refuses_a_2_1_model_and_keeps_its_own(tmp_path):
    """A device whose firmware reads format 2.0 but not 2.1 (built with KWS_FORMAT_MINOR=0)
    boots on its built-in model, refuses a 2.1 model (its BEST_PAYS state flag is unknown
    there, so "corrupt") with a line that says what to do, keeps its model, and takes the
    same keyword as a 2.0 model (the weight without BEST_PAYS)."""
    m = dataclasses.replace(make_model({"jarvis": KW["jarvis"]}), uncertainty_weight=0.5)
    _old_firmware_refuses(
        tmp_path, "-DKWS_FORMAT_MINOR=0", dataclasses.replace(m, best_pays=True), m, b"\x02\x00\x01\x00",
        "the device refused the model as corrupt: if its firmware predates "
        "keyword-model format 2.1, update it, or enrol for it with --uncertainty-weight 0 (format 1.1); "
        "the previous model stays active")
