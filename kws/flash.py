"""Host side of the serial flashing protocol (docs/flash-protocol.md).

Puts a keyword model (``.kwm``) into the inactive flash slot of a device running the
firmware in ``firmware/`` (or the same firmware in QEMU, whose UART is reached as
``socket://localhost:PORT``), and asks a device what it runs::

    from kws.flash import Device
    with Device.open("/dev/ttyACM0") as dev:          # or "socket://localhost:4321"
        print(dev.info())
        dev.flash(Path("wake.kwm").read_bytes(), progress=print)

Frames are SLIP (RFC 1055) around ``type | seq | len | payload | crc32``; every request is
answered by a reply with the same seq (type | 0x80, payload starting with a status byte).
A request that gets no valid reply within the time-out is sent again (the device answers
a repeated BEGIN/DATA/COMMIT from its cache, without doing it twice); after ``retries``
tries the device is taken to have stopped answering. Before any byte is written the
handshake checks the protocol version, the model's phone set, its size and keyword count
against what the device reports. Errors are :class:`FlashError` with a one-line message.
"""

from __future__ import annotations

import random
import struct
import time
import zlib
from dataclasses import asdict, dataclass

from .errors import KwsError
from .serial_link import PortClient, oneline, open_port, read_available

PROTO_VERSION = 1
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
MAX_PAYLOAD = 520

HELLO, INFO, BEGIN, DATA, COMMIT, RESET, BYE = 1, 2, 3, 4, 5, 6, 7
REPLY = 0x80
_NAMES = {HELLO: "HELLO", INFO: "INFO", BEGIN: "BEGIN", DATA: "DATA", COMMIT: "COMMIT",
          RESET: "RESET", BYE: "BYE"}

# Reply status byte (kws_proto.h).
STATUS = {
    0: "ok", 1: "protocol version not supported", 2: "unknown message type",
    3: "no transfer in progress", 4: "model too large for a slot", 5: "model for another phone set",
    6: "data offset out of order", 7: "flash erase/program failed",
    8: "checksum of the written model does not match", 9: "the device refused the model",
    10: "model does not fit the device's RAM", 11: "transfer incomplete", 12: "malformed request",
}
# kws_status (kws.h), the detail of a refused model.
KWS_STATUS = {0: "ok", 1: "bad argument", 2: "truncated", 3: "not a keyword model",
              4: "unknown version", 5: "checksum mismatch", 6: "corrupt", 7: "other phone set",
              8: "does not fit", 9: "misaligned", 10: "unsupported"}
SOURCES = {0: "none", 1: "slot A", 2: "slot B", 3: "built-in", 4: "RAM (test command)"}


class FlashError(KwsError):
    """A flashing failure, with a one-line message."""


# --------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------

def _escape(b: bytes) -> bytes:
    return b.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))


def encode_frame(type_: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes > {MAX_PAYLOAD}")
    body = struct.pack("<BBH", type_, seq & 0xFF, len(payload)) + payload
    body += struct.pack("<I", zlib.crc32(body))
    return bytes([END]) + _escape(body) + bytes([END])


def parse_body(body: bytes) -> tuple[int, int, bytes] | None:
    if len(body) < 8:
        return None
    type_, seq, n = struct.unpack_from("<BBH", body)
    if n + 8 != len(body) or type_ == 0:
        return None
    if zlib.crc32(body[:-4]) != struct.unpack_from("<I", body, len(body) - 4)[0]:
        return None
    return type_, seq, body[4:-4]


class FrameReader:
    """SLIP receiver: bytes in, valid frames out; anything else (text, bad CRC) dropped."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.bad = 0

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        frames = []
        for b in data:
            if b != END:
                self.buf.append(b)
                continue
            raw, self.buf = bytes(self.buf), bytearray()
            if not raw:
                continue
            body, ok, i = bytearray(), True, 0
            while i < len(raw):
                c = raw[i]
                if c == ESC:
                    nxt = raw[i + 1] if i + 1 < len(raw) else None
                    if nxt == ESC_END:
                        body.append(END)
                    elif nxt == ESC_ESC:
                        body.append(ESC)
                    else:
                        ok = False
                        break
                    i += 2
                    continue
                body.append(c)
                i += 1
            f = parse_body(bytes(body)) if ok else None
            if f is None:
                self.bad += 1
            else:
                frames.append(f)
        return frames


# --------------------------------------------------------------------------------------
# Model header
# --------------------------------------------------------------------------------------

@dataclass
class ModelHeader:
    size: int
    crc: int
    phone_set_id: int
    n_phones: int
    n_keywords: int
    version_major: int = 1
    version_minor: int = 0


def read_model_header(data: bytes) -> ModelHeader:
    """The .kwm header fields the handshake needs (docs/kwm-format.md); checks the CRC."""
    if len(data) < 64 or data[:4] != b"KWSM":
        raise FlashError("not a keyword model (.kwm) file")
    file_size, crc, ps, n_phones, n_kw = struct.unpack_from("<IIIHH", data, 8)
    if file_size != len(data) or file_size % 4:
        raise FlashError(f"keyword model is truncated or has trailing bytes ({len(data)} bytes, header says {file_size})")
    zeroed = data[:12] + b"\0\0\0\0" + data[16:]
    if zlib.crc32(zeroed) != crc:
        raise FlashError("keyword model is corrupt (checksum mismatch)")
    vmaj, vmin = struct.unpack_from("<HH", data, 4)
    return ModelHeader(len(data), zlib.crc32(data), ps, n_phones, n_kw, vmaj, vmin)


def phone_set_name(id_: int) -> str:
    if id_ == 0:
        return "any"
    try:
        from .phonesets import phone_set_by_id

        return f"{phone_set_by_id(id_).name} (0x{id_:08x})"
    except Exception:
        return f"0x{id_:08x}"


# --------------------------------------------------------------------------------------
# Device
# --------------------------------------------------------------------------------------

@dataclass
class DeviceLimits:
    protocol: int
    max_data: int
    phone_set_id: int
    n_phones: int
    max_keywords: int
    max_model_bytes: int
    decoder_ram: int
    flash_page: int
    firmware: str


@dataclass
class DeviceInfo:
    firmware: str
    protocol: int
    phone_set_id: int
    phone_set: str
    n_phones: int
    active_source: str
    active_slot: str | None
    active_seq: int
    active_bytes: int
    active_crc: int
    active_phone_set_id: int
    keywords: list[str]
    keywords_truncated: bool
    slot_seq: dict[str, int]
    free_slot: str
    max_model_bytes: int
    max_keywords: int
    decoder_ram: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FlashResult:
    slot: str
    seq: int
    bytes: int
    seconds: float
    frames_sent: int
    retries: int
    wire_bytes_sent: int
    wire_bytes_received: int
    info: DeviceInfo | None = None

    def wire_seconds(self, baud: int = 115200) -> float:
        """Time the bytes on the wire take at ``baud`` 8N1 (10 bits per byte), both ways."""
        return (self.wire_bytes_sent + self.wire_bytes_received) * 10 / baud

    def to_dict(self) -> dict:
        d = asdict(self)
        d["info"] = self.info.to_dict() if self.info else None
        d["wire_seconds_115200"] = round(self.wire_seconds(), 3)
        return d


@dataclass
class _Stats:
    sent: int = 0
    received: int = 0
    frames: int = 0
    retries: int = 0


class Device(PortClient):
    """A device on a serial port (a path or any pyserial URL, e.g. socket://host:port)."""

    def __init__(self, port, timeout: float = 1.0, retries: int = 8, slow_timeout: float = 5.0,
                 log=None) -> None:
        self.port = port            # a pyserial object (anything with read/write/timeout)
        self.timeout = timeout
        self.slow_timeout = slow_timeout  # BEGIN (erases a slot), COMMIT (checks the model)
        self.retries = retries
        self.log = log
        self.reader = FrameReader()
        self.seq = random.randrange(256)
        self.stats = _Stats()
        self.limits: DeviceLimits | None = None

    @classmethod
    def open(cls, url: str, baud: int = 115200, **kw) -> "Device":
        port = open_port(url, baud, FlashError)
        return cls(port, **kw)

    # ---- one request, with retries ----

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as exc:
            raise FlashError(f"connection to the device lost: {oneline(exc)}") from exc
        self.stats.sent += len(data)

    def _read_some(self) -> bytes:
        try:
            data = read_available(self.port)
        except Exception as exc:
            raise FlashError(f"connection to the device lost: {oneline(exc)}") from exc
        self.stats.received += len(data)
        return data

    def request(self, type_: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send a request until its reply comes; returns the reply payload (status first)."""
        self.seq = (self.seq + 1) & 0xFF
        frame = encode_frame(type_, self.seq, payload)
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(self.retries):
            if attempt:
                self.stats.retries += 1
            self._write(frame)
            self.stats.frames += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for t, s, p in self.reader.feed(self._read_some()):
                    if t == type_ | REPLY and s == self.seq and p:
                        return p
                    # a late reply to an earlier try, or noise: ignore
        raise FlashError(f"device stopped answering (no reply to {_NAMES[type_]} after {self.retries} tries "
                         f"of {timeout:g} s)")

    # ---- messages ----

    def hello(self) -> DeviceLimits:
        r = self.request(HELLO, struct.pack("<HH", PROTO_VERSION, MAX_PAYLOAD))
        if len(r) < 24:
            raise FlashError("device sent a malformed HELLO reply")
        status, ver, max_data, ps, n_ph, max_kw, cap, ram, page = struct.unpack_from("<BBHIHHIII", r)
        fw = r[24:].split(b"\0", 1)[0].decode("utf-8", "replace")
        if status == 1 or ver != PROTO_VERSION:
            raise FlashError(f"device speaks flashing protocol {ver}, this tool {PROTO_VERSION}")
        if status:
            raise FlashError(f"device refused the handshake: {STATUS.get(status, status)}")
        self.limits = DeviceLimits(ver, max_data, ps, n_ph, max_kw, cap, ram, page, fw)
        return self.limits

    def info(self) -> DeviceInfo:
        lim = self.limits or self.hello()
        r = self.request(INFO)
        if len(r) < 32 or r[0]:
            raise FlashError("device sent a malformed INFO reply")
        src, free, flags = r[1], r[2], r[3]
        seq, size, crc, ps, n_kw = struct.unpack_from("<IIIIH", r, 4)
        seq_a, seq_b = struct.unpack_from("<II", r, 24)
        names = [n.decode("utf-8", "replace") for n in r[32:].split(b"\0")[:n_kw]] if n_kw else []
        return DeviceInfo(
            firmware=lim.firmware, protocol=lim.protocol, phone_set_id=lim.phone_set_id,
            phone_set=phone_set_name(lim.phone_set_id), n_phones=lim.n_phones,
            active_source=SOURCES.get(src, str(src)),
            active_slot={1: "A", 2: "B"}.get(src), active_seq=seq, active_bytes=size, active_crc=crc,
            active_phone_set_id=ps, keywords=names, keywords_truncated=bool(flags & 1),
            slot_seq={"A": seq_a, "B": seq_b}, free_slot="AB"[free & 1],
            max_model_bytes=lim.max_model_bytes, max_keywords=lim.max_keywords, decoder_ram=lim.decoder_ram)

    def bye(self) -> None:
        try:
            self.request(BYE, timeout=min(self.timeout, 0.5))
        except FlashError:
            pass  # leaving anyway

    def reset(self) -> None:
        self.request(RESET)

    def check_model(self, data: bytes) -> ModelHeader:
        """The handshake's checks, before any byte is written."""
        hdr = read_model_header(data)
        lim = self.limits or self.hello()
        if lim.phone_set_id and hdr.phone_set_id != lim.phone_set_id:
            raise FlashError(f"wrong phone set: the model is for {phone_set_name(hdr.phone_set_id)}, "
                             f"the device runs {phone_set_name(lim.phone_set_id)}")
        if lim.n_phones and hdr.n_phones != lim.n_phones:
            raise FlashError(f"wrong phone set: the model has {hdr.n_phones} phones, the device's network {lim.n_phones}")
        if hdr.size > lim.max_model_bytes:
            raise FlashError(f"model too large: {hdr.size} bytes, a slot on the device holds {lim.max_model_bytes}")
        if hdr.n_keywords > lim.max_keywords:
            raise FlashError(f"model too large: {hdr.n_keywords} keywords, the device runs at most {lim.max_keywords}")
        return hdr

    def flash(self, data: bytes, progress=None, check: bool = True) -> FlashResult:
        """Write ``data`` (a .kwm) to the inactive slot, verify it there, make it active."""
        t0 = time.monotonic()
        s0 = _Stats(**asdict(self.stats))
        lim = self.limits or self.hello()
        hdr = self.check_model(data) if check else read_model_header(data)
        r = self.request(BEGIN, struct.pack("<III", hdr.size, hdr.crc, hdr.phone_set_id), timeout=self.slow_timeout)
        if r[0]:
            raise FlashError(_refusal("BEGIN", r, hdr, lim))
        slot = "AB"[r[1] & 1]
        chunk = min(lim.max_data, struct.unpack_from("<H", r, 2)[0] if len(r) >= 4 else lim.max_data)
        off = 0
        if progress:
            progress(0, hdr.size, slot)
        while off < hdr.size:
            piece = data[off:off + chunk]
            r = self.request(DATA, struct.pack("<I", off) + piece)
            if r[0]:
                raise FlashError(_refusal("DATA", r, hdr, lim))
            nxt = struct.unpack_from("<I", r, 4)[0] if len(r) >= 8 else off + len(piece)
            if not off < nxt <= hdr.size:
                raise FlashError(f"device acknowledged offset {nxt} after sending {off + len(piece)}")
            off = nxt
            if progress:
                progress(off, hdr.size, slot)
        r = self.request(COMMIT, timeout=self.slow_timeout)
        if r[0]:
            raise FlashError(_refusal("COMMIT", r, hdr, lim))
        seq = struct.unpack_from("<I", r, 4)[0]
        st = self.stats
        return FlashResult(slot=slot, seq=seq, bytes=hdr.size, seconds=time.monotonic() - t0,
                           frames_sent=st.frames - s0.frames, retries=st.retries - s0.retries,
                           wire_bytes_sent=st.sent - s0.sent, wire_bytes_received=st.received - s0.received)


def transfer_wire_bytes(data: bytes, max_data: int = 512) -> tuple[int, int]:
    """Bytes on the wire (host -> device, device -> host) of a clean transfer of ``data``:
    BEGIN, the DATA frames and COMMIT with their replies, framing and escapes included
    (no retries; the session's HELLO/INFO/BYE add about 120 bytes). At B baud 8N1 that is
    (sent + received) * 10 / B seconds plus the device's erase/program/verify time."""
    hdr = read_model_header(data)
    up = len(encode_frame(BEGIN, 1, struct.pack("<III", hdr.size, hdr.crc, hdr.phone_set_id)))
    down = len(encode_frame(BEGIN | REPLY, 1, bytes(12)))
    seq = 2
    for off in range(0, hdr.size, max_data):
        piece = data[off:off + max_data]
        up += len(encode_frame(DATA, seq, struct.pack("<I", off) + piece))
        down += len(encode_frame(DATA | REPLY, seq, struct.pack("<II", 0, off + len(piece))))
        seq = (seq + 1) & 0xFF
    up += len(encode_frame(COMMIT, seq))
    down += len(encode_frame(COMMIT | REPLY, seq, bytes(12)))
    return up, down


def _refusal(step: str, r: bytes, hdr: ModelHeader, lim: DeviceLimits) -> str:
    status = r[0]
    if status == 4:
        return f"model too large: {hdr.size} bytes, a slot on the device holds {lim.max_model_bytes}"
    if status == 5:
        return (f"wrong phone set: the model is for {phone_set_name(hdr.phone_set_id)}, "
                f"the device runs {phone_set_name(lim.phone_set_id)}")
    if status == 10:
        return "model too large for the device's RAM (too many keywords or states for its decoder); the previous model stays active"
    if status == 9 and len(r) > 2 and r[2] == 4:
        return (f"the device's firmware does not read keyword-model format {hdr.version_major}.x: update its "
                f"firmware, or enrol for it with --uncertainty-weight 0 (format 1.1); the previous model stays active")
    if status == 9 and len(r) > 2 and r[2] == 6 and (hdr.version_major, hdr.version_minor) >= (2, 1):
        # a 2.0 reader takes 2.1's BEST_PAYS state flag for corruption (the host checked the file)
        return ("the device refused the model as corrupt: if its firmware predates keyword-model format "
                f"{hdr.version_major}.{hdr.version_minor}, update it, or enrol for it with --uncertainty-weight 0 "
                "(format 1.1); the previous model stays active")
    if status == 9 and len(r) > 2:
        return f"the device refused the model: {KWS_STATUS.get(r[2], r[2])}; the previous model stays active"
    return f"{step} failed: {STATUS.get(status, f'status {status}')}; the previous model stays active"


def default_model_c(data: bytes, legacy: bytes | None = None) -> str:
    """C source of firmware/src/default_model.c for a .kwm (the firmware's built-in model).

    ``legacy``, a format-1.x file of the same keywords, is compiled instead when the
    firmware is built as a reader of an older format than ``data``'s
    (``-DKWS_FORMAT_MAJOR=1``, ``-DKWS_FORMAT_MINOR=0``), so that such a build still boots
    on a model it can read (the built-in model is what a device runs when no flashed slot
    is valid, so it must always parse)."""
    hdr = read_model_header(data)
    if legacy is None:
        return _C_HEAD + _c_array(data)
    old = read_model_header(legacy)
    if old.version_major != 1 or hdr.version_major < 2:
        raise ValueError(f"default_model_c: want a 2.x model and a 1.x legacy one, got "
                         f"{hdr.version_major}.x and {old.version_major}.x")
    maj, mnr = hdr.version_major, hdr.version_minor
    return (_C_HEAD + f"#if KWS_FORMAT_MAJOR > {maj} || (KWS_FORMAT_MAJOR == {maj} && KWS_FORMAT_MINOR >= {mnr})\n"
            + _c_array(data)
            + f"#else /* a reader from before format {maj}.{mnr}: the same keywords as format 1.1 */\n"
            + _c_array(legacy) + "#endif\n")


_C_HEAD = ("/* default_model.c - the keyword model compiled into the firmware (generated by\n"
           " * kws.flash.default_model_c; see fw_flash.h). */\n#include <stdint.h>\n\n#include \"fw_flash.h\"\n\n")


def _c_array(data: bytes) -> str:
    words = struct.unpack(f"<{len(data) // 4}I", data)
    rows = ["    " + ", ".join(f"0x{w:08x}u" for w in words[i:i + 6]) + "," for i in range(0, len(words), 6)]
    return (f"const uint32_t fw_default_model_size = {len(data)}u;\n"
            f"const uint32_t fw_default_model[{len(words)}] = {{\n" + "\n".join(rows) + "\n};\n")
