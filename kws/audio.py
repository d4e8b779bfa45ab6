"""Audio input: turn files and arrays into the 16 kHz mono int16 PCM the front end expects.

:func:`kws.features.log_mel` (and the C front end on the device) only understand 16 kHz
mono samples. Recordings arrive as anything else: 44.1/48 kHz phone exports, stereo, 24-bit
or float WAV, FLAC, Ogg/Vorbis, Ogg/Opus. This module is the single place that
normalises them, so that training, enrolment and evaluation all see the same samples.

* Files are decoded by ``soundfile`` (libsndfile; its wheels bundle a libsndfile built
  with FLAC, Vorbis and Opus, so no system library is needed).
* Channels are mixed down by averaging (not by taking the left channel: a mono source
  recorded on a stereo device is often on one side only, and averaging keeps it).
* Other rates are converted with ``soxr`` at its "HQ" setting: a band-limited resampler,
  so energy above 8 kHz is filtered out instead of aliasing into the band the model hears.
* Samples are scaled by 32768 (the inverse of the front end's 1/32768), rounded to
  nearest and clipped to the int16 range: out-of-range floats saturate, never wrap.

Work is done in blocks of :data:`_BLOCK_FRAMES` frames, so a long multi-channel file does
not need a float64 copy of itself in memory; the streamed resampler gives the same output
as resampling the whole signal at once.

Every failure is an :class:`~kws.errors.AudioError` whose text is one line naming the file
(or describing the array) and saying what to do. Nothing is printed.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Union

import numpy as np
import soundfile
import soxr

from .errors import AudioError

__all__ = ["TARGET_RATE", "AudioInfo", "load_audio", "to_pcm16", "probe"]

#: The rate every model and the device front end run at (``kws.features.SAMPLE_RATE``).
TARGET_RATE = 16000

#: Frames decoded/converted per step; bounds the float64 working memory per channel (2 MiB).
_BLOCK_FRAMES = 1 << 18

#: An in-memory 2-D array with more columns than this is taken to be channels-first.
_MAX_ARRAY_CHANNELS = 8

#: soxr quality recipe: "HQ" (20-bit precision, linear phase) is soxr's own default and
#: far above what 16-bit output can show; "VHQ" only costs time here.
_SOXR_QUALITY = "HQ"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header without decoding it (see :func:`probe`)."""

    rate: int
    """Sample rate of the file in Hz (before any resampling)."""
    channels: int
    frames: int
    """Samples per channel, as the header (or libsndfile's scan of the file) reports it."""
    duration_s: float
    subtype: str
    """libsndfile's sample encoding, e.g. ``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ``"OPUS"``."""
    format: str
    """libsndfile's container, e.g. ``"WAV"``, ``"FLAC"``, ``"OGG"``."""


# --------------------------------------------------------------------------- helpers


def _show(path: PathLike) -> str:
    """The file name quoted for a message; escaped if it holds a newline or other control."""
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return f"'{name}'" if name.isprintable() else repr(name)


def _one_line(text: str) -> str:
    """Collapse whitespace so a library message cannot break the one-line error rule."""
    return " ".join(str(text).split())


def _sndfile_reason(exc: Exception) -> str:
    """libsndfile's own words for a failure, without soundfile's "Error opening ..." prefix."""
    reason = getattr(exc, "error_string", None) or str(exc)
    reason = _one_line(reason).rstrip(".")
    for prefix in ("Error : ", "Error: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
    return reason


def _check_path(path: PathLike) -> str:
    """Fail early with the OS's reason: libsndfile reports a missing file as "System error"
    and a directory as "Format not recognised", neither of which says what to fix."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise AudioError(
            f"audio path must be a str or os.PathLike, not {type(path).__name__}; "
            "pass the file name of a WAV, FLAC or Ogg file") from None
    shown = _show(name)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise AudioError(f"audio file {shown} does not exist; check the path") from None
    except OSError as exc:
        raise AudioError(
            f"cannot open audio file {shown}: {_one_line(exc.strerror or exc)}; "
            "check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(
            f"audio path {shown} is a directory, not a file; pass one WAV, FLAC or Ogg file "
            "inside it")
    if st.st_size == 0:
        raise AudioError(f"audio file {shown} contains no audio (it is empty); re-record or "
                         "re-export it")
    return name


def _open_error(name: str, exc: Exception) -> AudioError:
    """Turn a failed libsndfile open into the one-line 'cannot read' error."""
    # A file that stat() found but libsndfile cannot open for a system reason (permissions,
    # a FIFO, ...): ask the OS for the real reason rather than echo "System error".
    try:
        with open(name, "rb"):
            pass
    except OSError as os_exc:
        return AudioError(
            f"cannot open audio file {_show(name)}: {_one_line(os_exc.strerror or os_exc)}; "
            "check the file's permissions")
    return AudioError(
        f"cannot read {_show(name)}: not a WAV, FLAC or Ogg file, or it is damaged "
        f"(libsndfile: {_sndfile_reason(exc)}); check that it plays in an audio player, "
        "or re-export it as 16 kHz mono WAV")


def _soundfile_info(name: str) -> "soundfile._SoundFileInfo":
    try:
        return soundfile.info(name)
    except (soundfile.SoundFileError, RuntimeError) as exc:
        raise _open_error(name, exc) from None


# --------------------------------------------------------------------------- conversion core


class _Pcm16Converter:
    """Blocks of float64 frames x channels in, int16 mono at :data:`TARGET_RATE` out.

    One object per signal, because the resampler keeps filter state between blocks: feeding
    blocks one after another gives exactly what resampling the whole signal would.
    """

    def __init__(self, rate: float) -> None:
        self._resampler = None
        if rate != TARGET_RATE:
            self._resampler = soxr.ResampleStream(
                rate, TARGET_RATE, 1, dtype="float64", quality=_SOXR_QUALITY)

    def push(self, frames: np.ndarray, last: bool = False) -> np.ndarray:
        """Convert one block (2-D float64, full scale +-1); ``last`` flushes the resampler."""
        mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
        return _float_to_int16(mono)


def _float_to_int16(x: np.ndarray) -> np.ndarray:
    """Scale by 32768, round half to even, saturate; the inverse of log_mel's 1/32768."""
    y = np.rint(x * 32768.0)
    np.clip(y, -32768.0, 32767.0, out=y)
    return y.astype(np.int16)


def _first_non_finite(block: np.ndarray) -> int | None:
    """Row of the first NaN/inf in a float block, or None; NaN would poison every feature."""
    bad = ~np.isfinite(block)
    if not bad.any():
        return None
    return int(np.flatnonzero(bad.any(axis=1))[0])


def _convert_blocks(blocks: Iterable[np.ndarray], rate: float, *, non_finite) -> np.ndarray:
    """Run float64 frames x channels blocks through :class:`_Pcm16Converter`.

    ``non_finite(frame_index)`` builds the error to raise for a NaN/inf sample.
    """
    conv = _Pcm16Converter(rate)
    out: list[np.ndarray] = []
    offset = 0
    for block in blocks:
        bad = _first_non_finite(block)
        if bad is not None:
            raise non_finite(offset + bad)
        out.append(conv.push(block))
        offset += len(block)
    out.append(conv.push(np.zeros((0, 1)), last=True))
    return np.concatenate(out) if len(out) > 1 else out[0]


# --------------------------------------------------------------------------- public API


def probe(path: PathLike) -> AudioInfo:
    """Rate, channels, length and encoding of an audio file, from its header only.

    Lets a caller reject or report a file (wrong length, odd rate) without decoding it.
    Because nothing is decoded, a file damaged after its header (a cut-off FLAC, NaN in a
    float WAV) probes fine and only fails in :func:`load_audio`.

    Raises AudioError for a missing path, a directory, an empty file, a file with no
    samples and anything libsndfile cannot open.
    """
    name = _check_path(path)
    info = _soundfile_info(name)
    if info.frames <= 0:
        raise AudioError(f"audio file {_show(name)} contains no audio (0 samples); re-record "
                         "or re-export it")
    return AudioInfo(
        rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        duration_s=float(info.frames) / float(info.samplerate),
        subtype=str(info.subtype),
        format=str(info.format),
    )


def load_audio(path: PathLike) -> np.ndarray:
    """Decode an audio file to 16 kHz mono int16, the input :func:`kws.features.log_mel` wants.

    Reads anything libsndfile reads (WAV/WAVEX/RF64, FLAC, Ogg Vorbis, Ogg Opus, AIFF, ...),
    at any rate and channel count, from 8-bit to 32-bit integer or float samples. Channels
    are averaged, the rate is converted with soxr, and samples are rounded and saturated to
    int16; a 16 kHz mono 16-bit file comes back bit-exact.

    Very short audio is returned as is: whether 50 ms is enough is the caller's decision.
    A WAV whose header promises more data than the file holds (a recording cut off) is
    read up to where the data ends, as libsndfile does, because streamed recorders write
    such headers on purpose.

    Raises AudioError (one line, naming the file) for a missing path, a directory, an empty
    file or one with no samples, a file that is not audio or is damaged, and NaN or
    infinite samples in a float file.
    """
    name = _check_path(path)
    shown = _show(name)
    try:
        sf = soundfile.SoundFile(name)
    except (soundfile.SoundFileError, RuntimeError) as exc:
        raise _open_error(name, exc) from None
    with sf:
        rate = sf.samplerate
        if sf.frames == 0:
            raise AudioError(f"audio file {shown} contains no audio (0 samples); re-record "
                             "or re-export it")
        frames_read = 0
        container = sf.format

        def blocks() -> Iterator[np.ndarray]:
            nonlocal frames_read
            while True:
                try:
                    block = sf.read(_BLOCK_FRAMES, dtype="float64", always_2d=True)
                except (soundfile.SoundFileError, RuntimeError) as exc:
                    # The header was fine but decoding stopped, e.g. a FLAC cut off part
                    # way ("flac decoder lost sync"); tell() says how far it got.
                    try:
                        where = max(int(sf.tell()), frames_read) / rate
                    except Exception:
                        where = frames_read / rate
                    raise AudioError(
                        f"cannot read {shown}: its {container} data is damaged or cut off "
                        f"after about {where:.2f} s (libsndfile: {_sndfile_reason(exc)}); "
                        "re-export or re-record it") from None
                if len(block) == 0:
                    return
                frames_read += len(block)
                yield block

        def non_finite(frame: int) -> AudioError:
            return AudioError(
                f"audio file {shown} contains NaN or infinite samples (first at "
                f"{frame / rate:.3f} s); re-export it from the editing tool, or fix the "
                "float samples before saving")

        samples = _convert_blocks(blocks(), rate, non_finite=non_finite)
        if frames_read == 0:
            raise AudioError(f"audio file {shown} contains no audio (0 samples could be "
                             "decoded); re-record or re-export it")
    return samples


def to_pcm16(samples: np.ndarray, rate: int) -> np.ndarray:
    """Convert an in-memory signal to 16 kHz mono int16, exactly as :func:`load_audio` does.

    For audio that never touched a file (a microphone callback, a synthesised test signal,
    another library's decoder), so it gets the same mixdown, resampling and saturation.

    ``samples`` is 1-D (mono) or 2-D frames x channels, of dtype int16, int32 (full-scale
    32-bit, as ``soundfile.read(dtype="int32")`` returns) or float (full scale +-1; values
    beyond are clipped). ``rate`` is the sample rate of ``samples`` in Hz. Always returns a
    new array.

    Raises AudioError for an empty signal, a non-positive rate, more than two dimensions, a
    2-D array with more than 8 columns (almost surely channels-first: pass ``samples.T``),
    an unsupported dtype and NaN or infinite samples.
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) \
            or not math.isfinite(float(rate)) or float(rate) <= 0:
        raise AudioError(f"sample rate must be a positive number of Hz, got {rate!r}; pass "
                         "the rate the samples were recorded at, e.g. 16000 or 48000")
    rate = int(rate) if float(rate).is_integer() else float(rate)
    x = np.asarray(samples)
    if x.ndim == 0 or x.ndim > 2:
        raise AudioError(
            f"samples have shape {x.shape}; pass a 1-D mono array or a 2-D frames x channels "
            "array")
    if x.ndim == 2 and x.shape[1] > _MAX_ARRAY_CHANNELS:
        hint = ("it looks channels-first: pass samples.T"
                if 0 < x.shape[0] <= _MAX_ARRAY_CHANNELS
                else f"pass frames x channels with at most {_MAX_ARRAY_CHANNELS} channels")
        raise AudioError(
            f"samples have shape {x.shape}, i.e. {x.shape[1]} channels; {hint}")
    if x.size == 0:
        raise AudioError(f"samples contain no audio (shape {x.shape}); pass at least one "
                         "sample")

    if x.dtype == np.int16:
        scale = 1.0 / 32768.0
    elif x.dtype == np.int32:
        scale = 1.0 / 2147483648.0
    elif np.issubdtype(x.dtype, np.floating):
        scale = None
    else:
        raise AudioError(
            f"unsupported sample dtype {x.dtype}; pass int16, int32 (full-scale 32-bit) or "
            "float in [-1, 1), e.g. samples.astype(np.int16) for 16-bit values held in a "
            "wider integer type")

    if x.ndim == 1:
        x = x[:, None]
    if rate == TARGET_RATE and x.dtype == np.int16 and x.shape[1] == 1:
        return np.array(x[:, 0], dtype=np.int16, copy=True)  # already right: skip the float round trip

    def blocks() -> Iterator[np.ndarray]:
        for start in range(0, len(x), _BLOCK_FRAMES):
            block = x[start:start + _BLOCK_FRAMES].astype(np.float64)
            if scale is not None:
                block *= scale
            yield block

    def non_finite(frame: int) -> AudioError:
        return AudioError(
            f"samples contain NaN or infinite values (first at frame {frame}); clean them "
            "first, e.g. np.nan_to_num(samples)")

    return _convert_blocks(blocks(), rate, non_finite=non_finite)
