"""What the two serial clients (:mod:`kws.flash`, :mod:`kws.device_link`) share: opening a
pyserial port or URL the same way, and reading what has arrived without blocking.

Both talk to the firmware's UART command loop; keeping the link conventions in one place
means a port that works for flashing works for benchmarking.
"""

from __future__ import annotations

import re

#: Read time-out of an open port: reads return what has arrived, deadlines are the caller's.
READ_TIMEOUT_S = 0.05

_KV = re.compile(r"(\w+)=(\S+)")


class PortClient:
    """Owns ``self.port`` (a pyserial port): closes it quietly, also as a context manager."""

    port = None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def oneline(exc: BaseException) -> str:
    """An exception as one line (its text with whitespace collapsed, or its type)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def parse_kv(line: str) -> dict:
    """``'MODEL ok keywords=3 bytes=912'`` -> ``{'keywords': 3, 'bytes': 912}`` (ints where
    they parse): the firmware's status lines."""
    out: dict = {}
    for k, v in _KV.findall(line):
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = v
    return out


def open_port(url: str, baud: int, error: type[Exception], write_timeout: float = 10.0):
    """A pyserial port for a device name (``/dev/ttyACM0``, ``COM3``) or URL
    (``socket://host:port``), input buffer flushed. Raises ``error`` with one line when
    pyserial is missing or there is no device."""
    try:
        import serial
    except ImportError as exc:  # pragma: no cover - a dependency
        raise error("pyserial is not installed (pip install pyserial)") from exc
    try:
        port = serial.serial_for_url(url, baudrate=baud, timeout=READ_TIMEOUT_S, write_timeout=write_timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise error(f"no device at {url}: {oneline(exc)}") from exc
    try:
        port.reset_input_buffer()
    except Exception:  # not every URL handler has one
        pass
    return port


def read_available(port) -> bytes:
    """One byte (waiting at most the port's read time-out), then whatever else is already
    there: ``read(n)`` alone would wait for n bytes. Exceptions are the caller's."""
    data = bytearray(port.read(1))
    while data and len(data) < 65536:
        n = port.in_waiting  # a count on serial ports, 0/1 on socket://
        if not n:
            break
        data += port.read(n)
    return bytes(data)
