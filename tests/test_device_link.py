"""The firmware's benchmarking commands (netinfo, stream, activate) and their host side,
kws.device_link (kws-bench --device).

Host side alone: one-line errors for a port that is not there, a port that never
answers, one that answers garbage and a link dropped in the middle of a stream (small
fake devices on a local TCP socket).

Against the firmware in QEMU (skips without arm-none-eabi-gcc / qemu-system-arm; the
speech parts also without espeak-ng and the shipped English network): UART0 as a TCP
serial port (tools/run_firmware.py SerialDevice, socket:// URL). The log-posteriors
that DeviceLink.run rebuilds from the device's P lines are bit-identical to the
semihosting `logpost` dump of the same network on the same audio, and its detections
are the semihosting `detect` ones (keyword, frames, score bits). A refused model, no
network, `stream` on semihosting are refused with one-line errors; restore() puts the
device back on its flashed model (kws.flash --info path says so).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import run_firmware as fw  # noqa: E402
from kws import flash  # noqa: E402
from kws.device_link import DeviceLink  # noqa: E402
from kws.errors import DeviceError, KwsError  # noqa: E402

needs_fw = pytest.mark.skipif(fw.missing_tools() is not None, reason=str(fw.missing_tools()))


def _one_line(exc: BaseException) -> str:
    s = str(exc)
    assert s and "\n" not in s, s
    return s


# --------------------------------------------------------------------------------------
# Host side alone: fake devices
# --------------------------------------------------------------------------------------

class FakeDevice:
    """A TCP server standing in for the device: ``handler(conn)`` talks to the host."""

    def __init__(self, handler) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.handler = handler
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.srv.getsockname()[1]}"

    def _serve(self) -> None:
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        with conn:
            try:
                self.handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.srv.close()


def _read_line(conn: socket.socket, buf: bytearray) -> bytes:
    while b"\n" not in buf:
        d = conn.recv(4096)
        if not d:
            raise OSError("closed")
        buf += d
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[: i + 1]
    return line


TABLE = np.log(np.maximum((np.arange(256, dtype=np.float32)) / 256, 1e-6)).astype(np.float32)


def _netinfo_reply(phones: int = 4) -> bytes:
    return (f"NETINFO phones={phones} phone_set=7\nLPTAB ".encode()
            + "".join(f"{int(b):08x}" for b in TABLE.view(np.uint32)).encode() + b"\nOK\n")


def test_no_device():
    for url in ("/dev/kws-no-such-tty", f"socket://127.0.0.1:{fw.free_tcp_port()}"):
        with pytest.raises(KwsError) as ei:
            DeviceLink(url, timeout=0.5)
        assert isinstance(ei.value, DeviceError)
        assert _one_line(ei.value).startswith(f"no device at {url}: ")


def test_device_that_never_answers_or_answers_garbage():
    def silent(conn):
        while conn.recv(4096):
            pass

    def garbage(conn):
        conn.recv(4096)
        conn.sendall(b"\x00\xffnoise\r\nmore noise\n" * 3)
        while conn.recv(4096):
            pass

    def bad_table(conn):
        buf = bytearray()
        while _read_line(conn, buf) != b"netinfo":
            pass
        conn.sendall(b"NETINFO phones=4 phone_set=7\nLPTAB 0123\nOK\n")
        while conn.recv(4096):
            pass

    for handler, match in ((silent, "no answer from the device at .* to 'netinfo' within 0.3 s"),
                           (garbage, "no answer .* within 0.3 s; it sent 'more noise' instead"),
                           (bad_table, "malformed netinfo reply")):
        dev = FakeDevice(handler)
        try:
            with pytest.raises(DeviceError, match=match) as ei:
                DeviceLink(dev.url, timeout=0.3)
            _one_line(ei.value)
        finally:
            dev.close()


def test_link_dropped_mid_stream():
    """A device that sends two frames of posteriors and then drops the link."""
    got = bytearray()

    def handler(conn):
        buf = bytearray()
        while _read_line(conn, buf) != b"netinfo":
            pass
        conn.sendall(_netinfo_reply())
        line = _read_line(conn, buf)
        assert line.startswith(b"stream ")
        got.extend(line)
        conn.recv(1000)
        conn.sendall(b"P 00ff7f80\nP 01020304\n")
        conn.shutdown(socket.SHUT_RDWR)

    dev = FakeDevice(handler)
    try:
        with DeviceLink(dev.url, timeout=2) as link:
            inf = link.info()
            assert inf["phones"] == 4 and inf["phone_set"] == 7
            assert inf["table"].view(np.uint32).tolist() == TABLE.view(np.uint32).tolist()
            with pytest.raises(DeviceError, match="connection to the device at .* lost") as ei:
                link.run(np.zeros(16000, np.int16))
            _one_line(ei.value)
            with pytest.raises(DeviceError):  # the link is closed after that
                link.restore()
    finally:
        dev.close()
    assert got == b"stream 32000"


def test_device_that_stops_answering_mid_stream():
    def handler(conn):
        buf = bytearray()
        while _read_line(conn, buf) != b"netinfo":
            pass
        conn.sendall(_netinfo_reply())
        conn.sendall(b"P 00ff7f80\n")
        while conn.recv(4096):
            pass

    dev = FakeDevice(handler)
    try:
        with DeviceLink(dev.url, timeout=0.3) as link:
            with pytest.raises(DeviceError, match=r"did not finish streaming 0.1 s of audio within 1 s \(1 frames") as ei:
                link.run(np.zeros(1600, np.int16))
            _one_line(ei.value)
    finally:
        dev.close()


# --------------------------------------------------------------------------------------
# Against the firmware in QEMU
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def elf() -> Path:
    if fw.missing_tools() is not None:
        pytest.skip(str(fw.missing_tools()))
    return fw.build()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """(kwn path, kwm bytes, pcm): the shipped English network, two keywords, espeak-ng speech."""
    try:
        import kws
        from kws.acoustic import DATA_DIR
        from kws.audio import load_audio
        from kws.netblob import export
    except ImportError as exc:
        pytest.skip(f"no network: {exc}")
    if shutil.which("espeak-ng") is None or not (DATA_DIR / "en.tflite").is_file():
        pytest.skip("needs espeak-ng and kws/data/acoustic/en.tflite")
    tmp = tmp_path_factory.mktemp("devlink")
    kwn = tmp / "en.kwn"
    kwn.write_bytes(export(DATA_DIR / "en.tflite"))
    kwm = kws.enroll(["hey jarvis", "computer"], lang="en", threshold=-5.0).model.to_bytes()
    wav = tmp / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), "hello there. hey jarvis, turn on the lights. computer."],
                   check=True, capture_output=True)
    return kwn, kwm, load_audio(wav)


@pytest.fixture(scope="module")
def device(elf, case, tmp_path_factory):
    """The firmware with the English network, its flash slots in a file."""
    dev = fw.SerialDevice(tmp_path_factory.mktemp("devflash") / "flash.bin", boot_args=["net", str(case[0])], elf=elf)
    dev.start()
    yield dev
    dev.kill()


def _model(*words: str) -> bytes:
    import kws

    return kws.enroll(list(words), lang="en").model.to_bytes()


@needs_fw
def test_run_matches_semihosting_logpost_and_detect(device, case, elf):
    kwn, kwm, pcm = case
    with DeviceLink(device.url) as link:
        table = link.info()["table"]
        model = link.load_model(kwm)
        assert model["keywords"] == 2
        lp, dets = link.run(pcm)
        run = link.last_run
        assert link.restore()["source"] in ("builtin", "slotA", "slotB")  # not "ram"
    ref_lp = fw.log_posteriors(kwn, pcm, elf=elf)
    assert lp.dtype == np.float32 and lp.shape == ref_lp.shape
    assert np.array_equal(lp.view(np.uint32), ref_lp.view(np.uint32))  # bit for bit
    assert np.isin(lp.view(np.uint32), table.view(np.uint32)).all()
    ref = fw.detect(kwm, pcm, net=kwn, elf=elf)
    assert not ref.errors and ref.detections, "no detection: the test would prove nothing"
    assert [(d.keyword_index, d.keyword, d.start_frame, d.end_frame, d.score_bits) for d in dets] == \
        [(d.keyword, d.name, d.start, d.end, d.score_bits) for d in ref.detections]
    assert [d.score for d in dets] == [d.exact_score for d in ref.detections]
    assert dets[0].heard < len(pcm)  # printed while the audio was still arriving
    # P and DET lines in the order produced: a detection after its end frame's posteriors,
    # and no later than the next network chunk's (64 frames) plus the decoder's hold
    assert all(d.end_frame < d.frames_out <= d.end_frame + 64 + 60 for d in dets), dets
    assert run["frames"] == len(lp) and run["samples"] == len(pcm) and run["time"]["net"] > 0


@needs_fw
def test_netinfo_table_is_the_blobs(device, case):
    from kws.netblob import describe

    blob = case[0].read_bytes()
    off = describe(blob)["logpost_offset"]
    want = np.frombuffer(blob, "<u4", 256, off)
    with DeviceLink(device.url) as link:
        inf = link.info()
    assert inf["phones"] == describe(blob)["n_phones"] and inf["phone_set"] == describe(blob)["phone_set_id"]
    assert inf["table"].dtype == np.float32 and np.array_equal(inf["table"].view(np.uint32), want)


def _flash_info(url: str) -> flash.DeviceInfo:
    with flash.Device.open(url) as d:
        inf = d.info()
        d.bye()
    return inf


@needs_fw
def test_bad_model_then_posteriors_only_then_restore_flashed_model(device, case):
    kwn, kwm, pcm = case
    flashed = _model("okay speaker")
    with flash.Device.open(device.url) as d:
        d.flash(flashed)
        d.bye()
    assert _flash_info(device.url).keywords == ["okay speaker"]
    short = pcm[: 16000]
    with DeviceLink(device.url) as link:
        link.load_model(kwm)
        assert link.restore()["source"] in ("slotA", "slotB")
        bad = bytearray(kwm)
        bad[len(bad) // 2] ^= 0x5A
        with pytest.raises(KwsError, match=r"refused the keyword model: checksum mismatch \(code 5\)") as ei:
            link.load_model(bytes(bad))
        _one_line(ei.value)
        # no keyword model now: P lines only, no detections; same posteriors
        lp, dets = link.run(short)
        assert dets == [] and lp.shape[0] == link.last_run["end"]["frames"] > 0
        link.load_model(kwm)
        lp2, _ = link.run(short.astype(np.float32) / 32768)  # float input: converted as load_audio does
        assert np.array_equal(lp, lp2)
    inf = _flash_info(device.url)
    assert inf.active_source == "RAM (test command)"
    with DeviceLink(device.url) as link:
        act = link.restore()
    assert act["source"] in ("slotA", "slotB") and act["keywords"] == 1
    inf = _flash_info(device.url)
    assert inf.active_source.startswith("slot") and inf.keywords == ["okay speaker"]


@needs_fw
def test_no_network_refused(elf, tmp_path):
    """No network: DeviceLink opens (it can still load models), info/run raise; the
    firmware's own answer to stream keeps the UART in step (payload drained)."""
    with fw.SerialDevice(tmp_path / "flash.bin", elf=elf) as dev:
        with DeviceLink(dev.url, timeout=10) as link:
            with pytest.raises(KwsError, match="has no network loaded") as ei:
                link.run(np.zeros(1600, np.int16))
            _one_line(ei.value)
            with pytest.raises(DeviceError, match="has no network loaded"):
                link.info()
        with socket.create_connection(("127.0.0.1", dev.port), timeout=30) as s:
            s.sendall(b"stream 640\n" + bytes(640) + b"netinfo\n")
            buf = b""
            while buf.count(b"OK\n") < 2:
                d = s.recv(4096)
                assert d, buf
                buf += d
        lines = [ln for ln in buf.decode().splitlines() if ln != "READY"]
        assert lines == ["ERR cmd=stream code=1 msg=no network loaded", "OK",
                         "ERR cmd=netinfo code=1 msg=no network loaded", "OK"]
    res = fw.run(["stream", "x", "netinfo"], elf=elf)
    assert [(e["cmd"], e["msg"]) for e in res.errors] == [("stream", "UART only (a host reads its P lines)"),
                                                          ("netinfo", "no network loaded")]
