"""Host side of the firmware's benchmarking commands: a device's own network posteriors
and detections over its serial port (``kws-bench --device PORT``).

The firmware (firmware/src/main.c, docs/firmware.md) reads text commands on its UART.
This module uses four of them::

    netinfo      -> NETINFO phones=N phone_set=ID / LPTAB <256 x 8 hex digits> / OK
    model N      (N bytes of .kwm follow) -> MODEL ok ... | ERR ... / OK
    stream N     (N bytes of 16 kHz int16 LE PCM follow) -> P <hex> per network frame,
                 DET lines, END, TIME / OK
    activate     -> ACTIVE source=... / OK

A ``P`` line carries one byte per phone: the network's int8 softmax output + 128, which
indexes the LPTAB table of float32 log-posteriors. Sending bytes instead of floats keeps
the link at 2 * n_phones + 3 bytes per 10 ms frame, and because the table is the
device's own (bit patterns, not printed decimals) the host rebuilds exactly the floats
the device's decoder saw::

    from kws.device_link import DeviceLink
    with DeviceLink("socket://127.0.0.1:4321") as dev:   # or "/dev/ttyACM0"
        dev.load_model(Path("bench.kwm").read_bytes())    # RAM only; flash untouched
        logpost, detections = dev.run(pcm)                # float32 [frames, n_phones]
        dev.restore()                                     # back to the flashed model

Every failure is a :class:`kws.errors.DeviceError` with a one-line message. Link
conventions (pyserial URL, short read time-out, write time-out, message wording) are
those of :mod:`kws.flash`, the flashing protocol on the same UART.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from .decoder import Detection
from .errors import DeviceError
from .serial_link import PortClient, oneline, open_port, parse_kv, read_available

SAMPLE_RATE = 16000
FRAME_SHIFT_S = 0.01
_AUDIO_BITS_PER_S = SAMPLE_RATE * 2 * 10  # int16 PCM at 8N1: 320,000 baud for real time
_CHUNK = 4096  # payload bytes per write: small enough to notice a stop request quickly

_DET = re.compile(r"^DET keyword=(\d+) name=(.*) start=(\d+) end=(\d+) score=(\S+) bits=0x([0-9a-f]{8}) heard=(\d+)$")


@dataclass(frozen=True)
class DeviceDetection(Detection):
    """A detection as the device printed it. ``score`` is the exact binary32 value (from
    the ``bits=`` field, not the 6-decimal text), so it compares bit for bit with a host
    decoder's; ``heard`` is how many samples the device had received when it printed
    the line (less than the whole clip: it detected while the audio was still coming);
    ``frames_out`` how many posterior frames (P lines) it had sent before it (the
    device decides after its end frame's posteriors, so always > end_frame)."""

    score_bits: int = 0
    heard: int = 0
    frames_out: int = 0


def _err_msg(line: str) -> str:
    """'ERR cmd=X code=N msg=...' -> '... (code N)'."""
    kv = parse_kv(line)
    msg = line.split(" msg=", 1)[1] if " msg=" in line else line
    return f"{msg} (code {kv.get('code', '?')})"


def _to_pcm_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    x = np.asarray(pcm)
    if not (x.dtype == np.int16 and x.ndim == 1 and sample_rate == SAMPLE_RATE):
        from .audio import to_pcm16  # float, other rates, stereo: as load_audio converts them

        x = to_pcm16(x, sample_rate)
    return np.ascontiguousarray(x, dtype="<i2").tobytes()


class DeviceLink(PortClient):
    """The firmware's text command loop on a serial port (a path such as /dev/ttyACM0, or
    any pyserial URL, e.g. ``socket://127.0.0.1:PORT`` for the firmware in QEMU).

    Opening syncs with the loop: the device printed ``READY`` when it started, long
    before a host may connect, so instead of waiting for it the link sends ``netinfo``
    and skips whatever comes before the reply. That also fetches what :meth:`run` needs
    to read posteriors back (phone count and the log-posterior table).

    ``timeout`` bounds each short command; :meth:`run` allows ``timeout`` plus the
    audio's length times max(4, 3 x 320,000 / baud) (16 kHz int16 audio takes
    320,000 / baud seconds per second on an 8N1 wire: 2.8 s at 115200; QEMU's TCP link
    is not baud-limited). ``baud`` is ignored by socket:// URLs. After a failure in the middle of a command the device may still be
    waiting for payload bytes, so the link is closed: open a new one (or reset the
    device) to go on.
    """

    def __init__(self, url: str, baud: int = 115200, timeout: float = 5.0, sync_tries: int = 2) -> None:
        self.url = url
        self.baud = baud
        self.timeout = float(timeout)
        self.last_run: dict = {}
        self._buf = bytearray()
        self._info: dict | None = None
        # short read time-out (serial_link): reads return what has arrived, the deadlines are ours
        self.port = open_port(url, baud, DeviceError, write_timeout=max(10.0, timeout))
        try:
            self._sync(sync_tries)
        except BaseException:
            self.close()
            raise

    # ---- reading and writing ----

    def _lost(self, exc: BaseException) -> DeviceError:
        self.close()
        return DeviceError(f"connection to the device at {self.url} lost: {oneline(exc)}")

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as exc:
            raise self._lost(exc) from exc

    def _read_some(self) -> bytes:
        try:
            return read_available(self.port)
        except Exception as exc:
            raise self._lost(exc) from exc

    def _line(self, deadline: float, what: str) -> str:
        """The next line (without CR/LF); DeviceError at the deadline."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                raw = bytes(self._buf[:i])
                del self._buf[: i + 1]
                return raw.decode("latin-1").rstrip("\r")
            if time.monotonic() > deadline:
                got = bytes(self._buf[-60:])
                tail = f"; got {got!r}" if got else ""
                raise DeviceError(f"no answer from the device at {self.url} to {what!r} in time{tail}")
            self._buf += self._read_some()

    def _command(self, line: str, payload: bytes | None, deadline: float, on_line) -> None:
        """Send a command (and its payload from a writer thread, so that the device's
        output is read while the payload goes out: both directions have finite buffers,
        and a device that prints as it reads would stall a host that writes first) and
        feed every output line up to ``OK`` to ``on_line``."""
        what = line.split(" ", 1)[0]
        writer = None
        failed: list[BaseException] = []
        stop = threading.Event()
        if payload is None:
            self._write(line.encode("ascii") + b"\n")
        else:
            self._write(f"{line} {len(payload)}\n".encode("ascii"))

            def write() -> None:
                view = memoryview(payload)
                try:
                    for i in range(0, len(view), _CHUNK):
                        if stop.is_set():
                            return
                        self.port.write(view[i:i + _CHUNK])
                except Exception as exc:  # reported by the reading side
                    failed.append(exc)

            writer = threading.Thread(target=write, name="kws-device-write", daemon=True)
            writer.start()
        ok = False
        try:
            while True:
                if failed:
                    raise self._lost(failed[0])
                text = self._line(deadline, what)
                if text == "OK":
                    ok = True
                    return
                on_line(text)
        finally:
            stop.set()
            if writer is not None:
                if not ok:
                    self.close()  # the device may still want payload: out of step; unblocks the writer
                writer.join(timeout=5)

    # ---- sync and network info ----

    def _netinfo(self, deadline: float) -> dict | None:
        """Ask for netinfo; the reply, or None when the device has no network. Lines
        before the reply (READY, the end of an earlier session's output, an earlier
        command's OK) are skipped."""
        seen, err, info, table_hex = False, None, {}, ""
        # A bare newline first ends any partial line the device may hold (it ignores
        # empty lines).
        self._write(b"\nnetinfo\n")
        while True:
            text = self._line(deadline, "netinfo")
            if text == "OK":
                if seen:
                    break
                continue
            if text.startswith("NETINFO "):
                seen, info = True, parse_kv(text)
            elif text.startswith("LPTAB ") and seen:
                table_hex = text[6:].strip()
            elif text.startswith("ERR cmd=netinfo"):
                seen, err = True, text
            elif seen:
                raise DeviceError(f"device at {self.url} answered netinfo with garbage: {text[:60]!r}")
            elif text.strip() and text != "READY":
                self._skipped = text  # what a wrong baud rate or another program sends
        if err is not None:
            if "no network" in err:
                return None
            raise DeviceError(f"device at {self.url} does not take netinfo (firmware without the "
                              f"benchmarking commands?): {_err_msg(err)}")
        try:
            phones, phone_set = int(info["phones"]), int(info["phone_set"])
            if len(table_hex) != 256 * 8 or not 0 < phones <= 1024:
                raise ValueError
            table = np.array([int(table_hex[i:i + 8], 16) for i in range(0, len(table_hex), 8)],
                             np.uint32).view(np.float32)
        except (KeyError, ValueError, TypeError):
            raise DeviceError(f"device at {self.url} sent a malformed netinfo reply "
                              f"(phones={info.get('phones')!r}, {len(table_hex)} table digits)") from None
        return {"phones": phones, "phone_set": phone_set, "table": table}

    def _sync(self, tries: int) -> None:
        self._skipped = ""
        for _ in range(max(1, tries)):
            try:
                self._info = self._netinfo(time.monotonic() + self.timeout)
                return
            except DeviceError as exc:
                if not str(exc).startswith("no answer") or not self.port.is_open:
                    raise
        junk = self._skipped or bytes(self._buf[-60:]).decode("latin-1")
        why = (f"; it sent {junk[:60]!r} instead (another program, or a wrong baud rate?)" if junk else
               " (is the firmware's UART command loop running? a command still waiting for its data "
               "needs a device reset)")
        raise DeviceError(f"no answer from the device at {self.url} to 'netinfo' within {self.timeout:g} s{why}")

    def info(self) -> dict:
        """The device's network: ``phones``, ``phone_set`` (id) and ``table`` (float32[256],
        the log-posterior of int8 output v at [v + 128]). Asked again when the device had
        no network at the last look (one may have been loaded since)."""
        if self._info is None:
            self._info = self._netinfo(time.monotonic() + self.timeout)
        if self._info is None:
            raise DeviceError(f"the device at {self.url} has no network loaded: it cannot compute posteriors")
        return {**self._info, "table": self._info["table"].copy()}

    # ---- commands ----

    def load_model(self, kwm_bytes: bytes) -> dict:
        """Run this keyword model (.kwm) from now on, from RAM: the flashed slots are not
        touched (see :meth:`restore`). Returns the device's MODEL line as a dict. A model
        the device refuses raises, and the device then runs no keyword model."""
        data = bytes(kwm_bytes)
        model, err = self._status_command("model", data, "MODEL ",
                                          time.monotonic() + self.timeout + len(data) * 20 / self.baud)
        if err:
            raise DeviceError(f"the device refused the keyword model: {_err_msg(err)}; it runs no "
                              "keyword model now (restore() puts the flashed one back)")
        if model is None:
            raise DeviceError("the device answered the keyword model with no MODEL line")
        return model

    def restore(self) -> dict:
        """Back to the model in flash (newest valid slot, else the built-in one), so that a
        benchmark does not leave the device on its model. Returns the ACTIVE line as a dict
        (``source``: slotA, slotB, builtin or none; ``keywords``, ``bytes``, ...)."""
        active, err = self._status_command("activate", None, "ACTIVE ", time.monotonic() + self.timeout)
        if active is None:
            why = _err_msg(err) if err else "no ACTIVE line"
            raise DeviceError(f"the device did not go back to its flashed model: {why}")
        return active

    def _status_command(self, cmd: str, payload: bytes | None, prefix: str,
                        deadline: float) -> tuple[dict | None, str | None]:
        """Run a command whose answer is one status line: (that line's key=values or None,
        the ERR line or None)."""
        got: dict = {}

        def on_line(text: str) -> None:
            if text.startswith(prefix):
                got["line"] = parse_kv(text)
            elif text.startswith("ERR "):
                got["err"] = text

        self._command(cmd, payload, deadline, on_line)
        return got.get("line"), got.get("err")

    def run(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, list[DeviceDetection]]:
        """Stream audio through the device's front end, network and decoder.

        ``pcm``: 16 kHz int16 samples, or anything :func:`kws.audio.to_pcm16` takes (float
        at full scale 1.0, another ``sample_rate``). Returns the device's log-posteriors,
        float32 [frames, n_phones], bit-identical to what its decoder saw, and its
        detections with the keyword model it runs (none when it runs none). Timings and
        counts of the run are in :attr:`last_run` (``time``: the TIME line, timer ticks).
        """
        info = self.info()
        n_ph, table = info["phones"], info["table"]
        data = _to_pcm_bytes(pcm, sample_rate)
        seconds = len(data) / (2 * SAMPLE_RATE)
        # The audio takes 320,000 / baud s per s on the wire; allow 3x that and at least
        # 4x real time for a slow device, on top of the fixed time-out.
        deadline = time.monotonic() + self.timeout + seconds * max(4.0, 3.0 * _AUDIO_BITS_PER_S / self.baud)
        rows = bytearray()
        n_rows = [0]
        dets: list[DeviceDetection] = []
        got: dict = {}

        def on_line(text: str) -> None:
            if text.startswith("P "):
                hexs = text[2:]
                try:
                    if len(hexs) != 2 * n_ph:
                        raise ValueError
                    rows.extend(bytes.fromhex(hexs))
                except ValueError:
                    raise DeviceError(f"garbled posterior line from the device (frame {n_rows[0]}, "
                                      f"{len(hexs)} digits for {n_ph} phones): {text[:40]!r}") from None
                n_rows[0] += 1
                return
            m = _DET.match(text)
            if m:
                bits = int(m[6], 16)
                score = float(np.array([bits], np.uint32).view(np.float32)[0])
                dets.append(DeviceDetection(keyword=m[2], keyword_index=int(m[1]), score=score,
                                            start_frame=int(m[3]), end_frame=int(m[4]),
                                            frame_shift_s=FRAME_SHIFT_S, score_bits=bits, heard=int(m[7]),
                                            frames_out=n_rows[0]))
            elif text.startswith("END "):
                got["end"] = parse_kv(text)
            elif text.startswith("TIME "):
                got["time"] = parse_kv(text)
            elif text.startswith("ERR "):
                got.setdefault("err", text)
            else:
                raise DeviceError(f"unexpected line from the device during stream: {text[:60]!r}")

        t0 = time.monotonic()
        try:
            self._command("stream", data, deadline, on_line)
        except DeviceError as exc:
            if not str(exc).startswith("no answer"):
                raise
            raise DeviceError(f"the device at {self.url} did not finish streaming {seconds:.1f} s of audio within "
                              f"{deadline - t0:.0f} s ({n_rows[0]} frames came back); the link is closed") from None
        wall = time.monotonic() - t0
        if "err" in got:
            raise DeviceError(f"the device refused to stream: {_err_msg(got['err'])}")
        end = got.get("end")
        if end is None:
            raise DeviceError("the device ended the stream without an END line")
        if end.get("frames") != n_rows[0] or end.get("detections") != len(dets):
            raise DeviceError(f"lines lost on the link: the device reports {end.get('frames')} frames and "
                              f"{end.get('detections')} detections, {n_rows[0]} and {len(dets)} arrived")
        idx = np.frombuffer(bytes(rows), np.uint8).reshape(n_rows[0], n_ph)
        self.last_run = {"frames": n_rows[0], "samples": len(data) // 2, "seconds": wall,
                         "end": end, "time": got.get("time", {})}
        return table[idx], dets
