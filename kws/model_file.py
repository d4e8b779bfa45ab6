"""Writer and reader of the keyword-model file (``.kwm``), as specified in docs/kwm-format.md.

The Python reader checks the same things as the C reader (``kws_model_parse``) and says
in one line what is wrong; ``KeywordModel.from_bytes`` runs both, so a file the Python
side accepts is one the device accepts too.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelFormatError
from .graph import (KW_PHONE_MEAN, STATE_BEST_PAYS, STATE_ENTRY, STATE_FINAL, STATE_PHONE_START, STATE_SELF,
                    KeywordGraph, State)
from .phonesets import PhoneSet, phone_set_by_id

MAGIC = b"KWSM"
VERSION_MAJOR = 2          # the newest major version this toolkit reads and writes
VERSION_MINOR = 1          # minor version of a 1.x file (a 2.x file is 2.0, 2.1 with best_pays)
UNCERTAINTY_WEIGHT_SCALE = 256  # header field 58 of a 2.x file: the weight in 1/256 units
HEADER_SIZE = 64
KEYWORD_SIZE = 32
STATE_SIZE = 8

_HEADER = struct.Struct("<4sHHIIIHHIIIIIIIHHHHf")
_KEYWORD = struct.Struct("<IHHIIIfHHf")
_STATE = struct.Struct("<HBBI")
assert _HEADER.size == HEADER_SIZE and _KEYWORD.size == KEYWORD_SIZE and _STATE.size == STATE_SIZE

#: Decoder defaults (frames of 10 ms); see docs/kwm-format.md for their meaning.
DEFAULT_REFRACTORY_FRAMES = 100
DEFAULT_HOLD_FRAMES = 20
DEFAULT_EMISSION_FLOOR = -6.0
#: What ``kws-enroll`` writes (format 2.1): a phone that is not the frame's best pays this
#: times the best phone's log-posterior on top of its ratio, and with ``best_pays`` the
#: best phone pays it too (docs/decoder.md). A model built directly keeps 0 (format 1.x)
#: unless asked.
DEFAULT_UNCERTAINTY_WEIGHT = 0.5
FRAME_SHIFT_MS = 10


def _pad4(n: int) -> int:
    return (n + 3) & ~3


@dataclass
class KeywordModel:
    """A set of compiled keywords bound to one phone set, ready for the decoder or a file."""

    phone_set: PhoneSet
    keywords: list[KeywordGraph]
    refractory_frames: int = DEFAULT_REFRACTORY_FRAMES
    hold_frames: int = DEFAULT_HOLD_FRAMES
    emission_floor: float = DEFAULT_EMISSION_FLOOR
    frame_shift_ms: int = FRAME_SHIFT_MS
    version_minor: int = VERSION_MINOR
    uncertainty_weight: float = 0.0
    version_major: int = 1  # as read from a file (a model with a weight is written as 2.x)
    #: (format 2.1) the keyword phones pay the uncertainty weight also where they are the
    #: frame's best phone (state flag BEST_PAYS on every state but the pauses'); only
    #: with a weight (a model without one is written as 1.x without the flag).
    best_pays: bool = False
    extra: dict = field(default_factory=dict)

    # -- queries ---------------------------------------------------------------
    @property
    def best_phone_pays(self) -> bool:
        """Whether the keyword phones pay the weight where they are the best phone too
        (format 2.1): ``best_pays`` with a non-zero weight (without one it means nothing
        and is not written)."""
        return self.best_pays and self._weight_q() > 0

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.keywords]

    @property
    def n_states(self) -> int:
        return sum(len(k.states) for k in self.keywords)

    @property
    def format_version(self) -> str:
        """The format version the file is (or would be) written in: ``2.1`` when the
        uncertainty weight is used with ``best_pays``, ``2.0`` with the weight alone, else
        ``1.0`` or ``1.1`` by the keywords' flags."""
        major, minor = self._version(self._weight_q())
        return f"{major}.{minor}"

    def _version(self, weight_q: int) -> tuple[int, int]:
        """(major, minor) of the file: 2.1 with a weight and best_pays, 2.0 with the weight
        alone (or the minor read from a 2.x file, if newer); 1.1 features (phone scoring, PHONE_START) make a 1.x file 1.1, otherwise it
        keeps its minor version."""
        if weight_q:  # a newer minor read from a file is kept (readers ignore what it adds)
            minor = self.version_minor if self.version_major == 2 else 0
            return 2, (max(minor, 1) if self.best_pays else minor)
        uses_1_1 = any(k.phone_mean or any(st.flags & STATE_PHONE_START for st in k.states)
                       for k in self.keywords)
        return 1, (max(self.version_minor, 1) if uses_1_1 else self.version_minor)

    def _weight_q(self) -> int:
        w = self.uncertainty_weight
        if not (math.isfinite(w) and 0.0 <= w < 65536 / UNCERTAINTY_WEIGHT_SCALE):
            raise ModelFormatError(f"uncertainty_weight must be in [0, 256) (got {w})")
        return int(round(w * UNCERTAINTY_WEIGHT_SCALE))

    # -- writing ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise (docs/kwm-format.md), CRC included: format 2.0 when the model uses an
        uncertainty weight (a 1.x reader must refuse it rather than score it on another
        scale), 2.1 with ``best_pays`` too (state flag BEST_PAYS, which a 2.0 reader
        refuses), else 1.1, or 1.0 for keywords without the 1.1 flags."""
        if not self.keywords:
            raise ModelFormatError("a keyword model needs at least one keyword")
        if len(self.keywords) > 65535:
            raise ModelFormatError("too many keywords for one model (at most 65535)")
        if not (math.isfinite(self.emission_floor) and self.emission_floor < 0):
            raise ModelFormatError("emission_floor must be finite and negative")
        strings = bytearray()

        def add_string(text: str) -> tuple[int, int]:
            raw = text.encode("utf-8")
            if len(raw) > 65535:
                raise ModelFormatError(f"string too long for the model file: {text[:40]!r}...")
            off = len(strings)
            strings.extend(raw + b"\0")
            return off, len(raw)

        kw_recs = bytearray()
        st_recs = bytearray()
        arcs: list[int] = []
        first = 0
        pays = self.best_phone_pays
        for kw in self.keywords:
            if not kw.name:
                raise ModelFormatError("a keyword needs a non-empty name")
            if not math.isfinite(kw.threshold):
                raise ModelFormatError(f"keyword {kw.name!r}: threshold must be finite")
            n_off, n_len = add_string(kw.name)
            p_off, p_len = add_string(kw.pronunciation)
            n = len(kw.states)
            if not 1 <= n <= 65535:
                raise ModelFormatError(f"keyword {kw.name!r}: {n} states (1..65535 allowed)")
            kw_recs += _KEYWORD.pack(
                n_off, n_len, p_len, p_off, first, n, float(kw.threshold),
                max(1, min(int(kw.max_frames), 65535)), KW_PHONE_MEAN if kw.phone_mean else 0,
                float(kw.expected_fa_per_hour),
            )
            for st in kw.states:
                if len(st.preds) > 255:
                    raise ModelFormatError(f"keyword {kw.name!r}: a state with over 255 predecessors")
                flags = st.flags & ~STATE_BEST_PAYS
                if pays and st.phone != 0:  # a pause (sil) stays neutral
                    flags |= STATE_BEST_PAYS
                st_recs += _STATE.pack(st.phone, flags, len(st.preds), len(arcs))
                arcs.extend(st.preds)
            first += n
        weight_q = self._weight_q()
        major, minor = self._version(weight_q)
        arc_bytes = struct.pack(f"<{len(arcs)}H", *arcs)
        kw_off = HEADER_SIZE
        st_off = kw_off + len(kw_recs)
        arc_off = st_off + len(st_recs)
        str_off = arc_off + _pad4(len(arc_bytes))
        size = str_off + _pad4(len(strings))
        body = bytearray(size)
        body[kw_off:st_off] = kw_recs
        body[st_off:arc_off] = st_recs
        body[arc_off:arc_off + len(arc_bytes)] = arc_bytes
        body[str_off:str_off + len(strings)] = strings
        header = _HEADER.pack(
            MAGIC, major, minor, size, 0, self.phone_set.id,
            len(self.phone_set), len(self.keywords), first, len(arcs),
            kw_off, st_off, arc_off, str_off, len(strings),
            self.frame_shift_ms, self.refractory_frames, self.hold_frames, weight_q,
            float(self.emission_floor),
        )
        body[:HEADER_SIZE] = header
        struct.pack_into("<I", body, 12, zlib.crc32(bytes(body)))
        return bytes(body)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a crash mid-write never leaves a half model at ``path``."""
        data = self.to_bytes()
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- reading ---------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "model") -> "KeywordModel":
        """Parse and validate; raise ModelFormatError with one line on any defect."""
        data = bytes(data)
        _check_with_c(data, source)
        return _parse(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KeywordModel":
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise ModelFormatError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ModelFormatError(f"{path}: is a directory, expected a .kwm file") from None
        except OSError as exc:
            raise ModelFormatError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.from_bytes(data, source=str(path))


def _check_with_c(data: bytes, source: str) -> None:
    """Run the C reader too, so both sides agree on what is a valid file."""
    try:
        from . import _core
    except ImportError:  # pragma: no cover - the extension is part of the install
        return
    code, message = _core.validate_model(data)
    if code != 0:
        raise ModelFormatError(f"{source}: not a valid keyword model ({message}); "
                               "re-create it with kws-enroll")


def _parse(data: bytes, source: str) -> KeywordModel:
    def bad(why: str) -> ModelFormatError:
        return ModelFormatError(f"{source}: not a valid keyword model ({why}); re-create it with kws-enroll")

    if len(data) < HEADER_SIZE:
        raise bad(f"truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    (magic, vmaj, vmin, size, crc, ps_id, n_phones, n_kw, n_states, n_arcs,
     kw_off, st_off, arc_off, str_off, str_size, shift, refractory, hold, field58,
     floor) = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise bad("wrong magic: not a .kwm file")
    if not 1 <= vmaj <= VERSION_MAJOR:
        raise bad(f"format version {vmaj}.{vmin}, this toolkit reads 1.x and 2.x; upgrade kws")
    # 1.x: field 58 is reserved flags (0); 2.x: the uncertainty weight
    weight = field58 / UNCERTAINTY_WEIGHT_SCALE if vmaj >= 2 else 0.0
    if size > len(data):
        raise bad(f"truncated: header says {size} bytes, file has {len(data)}")
    if size < HEADER_SIZE or size % 4:
        raise bad(f"bad file size {size}")
    check = bytearray(data[:size])
    check[12:16] = b"\0\0\0\0"
    if zlib.crc32(bytes(check)) != crc:
        raise bad("checksum mismatch: the file is corrupt")
    try:
        phone_set = phone_set_by_id(ps_id)
    except Exception:
        raise bad(f"unknown phone set id 0x{ps_id:08x}") from None
    if n_phones != len(phone_set):
        raise bad(f"phone count {n_phones} does not match phone set {phone_set.name}")

    def section(off: int, length: int, what: str) -> None:
        if off % 4 or off < HEADER_SIZE or off + length > size:
            raise bad(f"{what} section out of bounds")

    section(kw_off, n_kw * KEYWORD_SIZE, "keyword")
    section(st_off, n_states * STATE_SIZE, "state")
    section(arc_off, n_arcs * 2, "arc")
    section(str_off, str_size, "string")
    if n_kw == 0 or n_states == 0:
        raise bad("no keywords")
    strings = data[str_off:str_off + str_size]

    def string(off: int, length: int) -> str:
        if off + length >= str_size or strings[off + length] != 0:
            raise bad("string out of bounds")
        try:
            return strings[off:off + length].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("string is not UTF-8") from None

    arcs = struct.unpack_from(f"<{n_arcs}H", data, arc_off)
    keywords: list[KeywordGraph] = []
    expect_first = 0
    best_pays = False
    for k in range(n_kw):
        (n_off, n_len, p_len, p_off, first, n, thr, max_frames, kflags,
         efa) = _KEYWORD.unpack_from(data, kw_off + k * KEYWORD_SIZE)
        if first != expect_first or n == 0 or first + n > n_states:
            raise bad(f"keyword {k} states out of range")
        expect_first = first + n
        if not math.isfinite(thr) or max_frames == 0 or n_len == 0:
            raise bad(f"keyword {k} has a bad threshold, length or name")
        states: list[State] = []
        for i in range(n):
            phone, flags, n_preds, pb = _STATE.unpack_from(data, st_off + (first + i) * STATE_SIZE)
            if phone >= n_phones or flags & ~(STATE_SELF | STATE_ENTRY | STATE_FINAL | STATE_PHONE_START
                                              | STATE_BEST_PAYS):
                raise bad(f"keyword {k} state {i} is corrupt")
            best_pays = best_pays or bool(flags & STATE_BEST_PAYS)
            flags &= ~STATE_BEST_PAYS  # the model's best_pays says it (the writer sets it back)
            if pb + n_preds > n_arcs:
                raise bad(f"keyword {k} state {i} arcs out of range")
            preds = tuple(arcs[pb:pb + n_preds])
            if any(p >= i for p in preds):
                raise bad(f"keyword {k} state {i} has a predecessor that is not before it")
            states.append(State(phone, flags, preds))
        if not any(s.flags & STATE_ENTRY for s in states) or not any(s.flags & STATE_FINAL for s in states):
            raise bad(f"keyword {k} has no entry or no final state")
        keywords.append(KeywordGraph(
            name=string(n_off, n_len), pronunciation=string(p_off, p_len), states=states,
            max_frames=max_frames, threshold=thr, expected_fa_per_hour=efa,
            phone_mean=bool(kflags & KW_PHONE_MEAN),
        ))
    if expect_first != n_states:
        raise bad("keywords do not cover the state table")
    if not (math.isfinite(floor) and floor < 0):
        raise bad("bad emission floor")
    return KeywordModel(phone_set=phone_set, keywords=keywords, refractory_frames=refractory,
                        hold_frames=hold, emission_floor=floor, frame_shift_ms=shift,
                        version_minor=vmin, uncertainty_weight=weight, version_major=vmaj,
                        best_pays=best_pays)
