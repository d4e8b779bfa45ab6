"""Room reverberation for benchmarks: what a wake word does across a room.

A smart speaker hears its user from one to a few metres away, in a room whose walls return
the speech for hundreds of milliseconds after it was said. The recordings the detector is
measured on (``kws-bench``) are mostly close-talk, so this module puts them in simulated
rooms: shoebox rooms by the image-source method of ``pyroomacoustics`` (a well-kept
library; an optional dependency, the ``[bench]`` extra), with the wall absorption set
for a chosen reverberation time (RT60, Sabine's formula) and the talker a set distance
from the microphone. Each recording is convolved with one of a bank of such rooms,
chosen from its path, so a benchmark repeats exactly and every process picks the same
room for the same file.

Why not in the detector: reverberation is a condition to measure, not to add; the
networks train on reverberant copies of their speech (``tools/train_acoustic.py``), and
what they do in a room is what this measures (docs/bench.md).
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from .errors import KwsError

SAMPLE_RATE = 16000
RT60_RANGE = (0.15, 1.2)         # seconds: a furnished room is 0.3-0.6, a bare hall 1 or more
DISTANCE_M = (1.0, 3.0)          # talker to microphone
N_ROOMS = 40
ROOM_MIN = (3.5, 3.0, 2.5)       # metres, a bedroom ...
ROOM_MAX = (8.0, 6.0, 3.2)       # ... to a living room
_MAX_ORDER = 40                  # image-source reflection order cap (long RT60s need many)


class ReverbError(KwsError, ValueError):
    """A reverberation setting that cannot be met, or pyroomacoustics missing."""


@lru_cache(maxsize=4)
def room_bank(rt60: float, seed: int = 0, n: int = N_ROOMS) -> tuple[np.ndarray, ...]:
    """``n`` room impulse responses at 16 kHz with reverberation time ``rt60`` (s): random
    shoebox rooms between ``ROOM_MIN`` and ``ROOM_MAX``, the microphone anywhere 0.5 m from
    the walls, the talker at 1.0-1.9 m height and ``DISTANCE_M`` from it. Each response
    starts 1 ms before its direct path (so a clip keeps its timing) and has unit energy.
    Deterministic for a given (rt60, seed, n)."""
    if not (np.isfinite(rt60) and RT60_RANGE[0] <= rt60 <= RT60_RANGE[1]):
        raise ReverbError(f"reverberation time must be {RT60_RANGE[0]:g} to {RT60_RANGE[1]:g} s (got {rt60:g})")
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise ReverbError("reverberation needs pyroomacoustics: pip install 'kws-toolkit[bench]' "
                          "(or pip install pyroomacoustics)") from None
    rng = np.random.default_rng([seed, int(round(rt60 * 1000))])
    lo, hi = np.array(ROOM_MIN), np.array(ROOM_MAX)
    out: list[np.ndarray] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n:
            raise ReverbError(f"cannot build rooms with RT60 {rt60:g} s and the talker "
                              f"{DISTANCE_M[0]:g}-{DISTANCE_M[1]:g} m away")
        dims = rng.uniform(lo, hi)
        try:
            e_abs, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # this room is too large for so short a time: draw another
            continue
        mic = rng.uniform([0.5, 0.5, 0.8], dims - 0.5)
        src = rng.uniform([0.5, 0.5, 1.0], [dims[0] - 0.5, dims[1] - 0.5, min(1.9, dims[2] - 0.3)])
        if not DISTANCE_M[0] <= float(np.linalg.norm(src - mic)) <= DISTANCE_M[1]:
            continue
        room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(float(e_abs)),
                           max_order=int(min(max_order, _MAX_ORDER)))
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], dtype=np.float64)
        h = h[max(0, int(np.argmax(np.abs(h))) - SAMPLE_RATE // 1000):]
        out.append(h / np.sqrt(np.sum(h ** 2)))
    return tuple(out)


def pick(bank: tuple[np.ndarray, ...], key: str) -> np.ndarray:
    """The bank's room for ``key`` (a file path): the same in every process and run."""
    return bank[zlib.crc32(key.encode("utf-8", "surrogatepass")) % len(bank)]


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``x`` (int16 PCM or float) heard through the room ``h``: same length and the same
    power as ``x`` (level is another condition: ``kws-bench --mix-level``); int16 in,
    int16 out (clipped), float in, float64 out."""
    from scipy.signal import fftconvolve  # scipy comes with pyroomacoustics, which made h

    xf = np.asarray(x, dtype=np.float64)
    if not len(xf):
        return np.asarray(x).copy()
    y = fftconvolve(xf, h)[:len(xf)]
    py, px = float(np.mean(y ** 2)), float(np.mean(xf ** 2))
    if py > 0:
        y *= np.sqrt(px / py)
    if np.asarray(x).dtype == np.int16:
        return np.clip(np.round(y), -32768, 32767).astype(np.int16)
    return y
