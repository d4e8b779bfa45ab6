"""Log-mel filterbank features: the readable specification of the acoustic front end.

Two implementations of one definition exist on purpose:

* this module (numpy, float64) is the specification and is what training uses, so that a
  model learns on exactly the features the device will compute;
* ``kws_core/src/kws_frontend.c`` (C99, float32, streaming, no allocation) runs on the
  device.

``tests/test_features_agree.py`` holds them to within 1e-3 in log-mel. Change the two
together, or models trained here stop matching what devices see.

Definition (defaults are the configuration models are trained on):

* input: 16 kHz mono; int16 samples are scaled to [-1, 1) by 1/32768, float input is
  taken as already in that range;
* frames of 400 samples (25 ms) every 160 samples (10 ms), no padding: ``n`` samples give
  ``0 if n < 400 else 1 + (n - 400) // 160`` frames (the streaming C front end emits a
  frame as soon as its last sample arrives, so it cannot pad the end either);
* per frame: subtract the frame mean (DC), periodic Hann window, zero-pad to 512, power
  spectrum ``|rfft|**2`` (no 1/N scaling); no pre-emphasis and no dither, because both
  would make the device's output depend on state or randomness the twin cannot mirror;
* 40 triangular filters on the HTK mel scale ``2595 * log10(1 + f / 700)`` between 20 and
  7600 Hz, linear in Hz between mel-spaced points, peak 1 (no Slaney area normalisation);
* ``log(max(energy, 1e-10))``, natural log;
* optionally (``level_control=True``; on by default in the C front end that detection
  runs, off in training): a causal automatic gain that lifts quiet speech towards the
  level of the training speech (:func:`level_gains`).
"""

from __future__ import annotations

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000
FRAME_LENGTH = 400
FRAME_SHIFT = 160
FFT_SIZE = 512
N_MELS = 40
LOW_FREQ = 20.0
HIGH_FREQ = 7600.0
ENERGY_FLOOR = 1e-10

#: Level control (:func:`level_gains`), in dB; the rates are per frame. Speech whose
#: tracked level reaches ``LC_TARGET_DB`` (about -25 dBFS active level) is left alone.
LC_TARGET_DB = 20.0
LC_MAX_GAIN_DB = 30.0
LC_ONSET_DB = 15.0
LC_MIN_LEVEL_DB = -25.0
LC_HEADROOM_DB = 10.0
LC_ONSET_FRAMES = 5
LC_WINDOW_DB = 10.0
LC_NOISE_RISE_DB = 0.03
LC_LEAK_DB = 0.005
LC_ATTACK = 0.3
LC_RELEASE = 0.02
_NATS_PER_DB = float(np.log(10.0) / 10.0)

#: Frames per block in :func:`log_mel`; bounds the float64 spectrum held at once (~12 MB).
_BLOCK_FRAMES = 2048

__all__ = [
    "SAMPLE_RATE", "FRAME_LENGTH", "FRAME_SHIFT", "FFT_SIZE", "N_MELS", "LOW_FREQ",
    "HIGH_FREQ", "ENERGY_FLOOR", "hz_to_mel", "mel_to_hz", "mel_filterbank",
    "hann_window", "num_frames", "log_mel", "level_gains",
]


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray | float:
    """HTK mel scale, ``2595 * log10(1 + f / 700)``: the scale the C front end uses."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray | float:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(*, sample_rate: int = SAMPLE_RATE, fft_size: int = FFT_SIZE,
                   n_mels: int = N_MELS, low_freq: float = LOW_FREQ,
                   high_freq: float = HIGH_FREQ) -> np.ndarray:
    """Triangular mel filters as a dense ``(n_mels, fft_size // 2 + 1)`` float64 matrix.

    ``n_mels + 2`` points are spaced equally in mel from ``low_freq`` to ``high_freq``;
    filter ``m`` rises linearly in Hz from point ``m`` to 1 at point ``m + 1`` and falls
    back to 0 at point ``m + 2``. Bin ``k`` sits at ``k * sample_rate / fft_size`` Hz.
    Triangles keep peak 1 (no area normalisation) so that every band's log energy has
    the same meaning and the C side can store them sparsely with no extra scale.
    This equals ``librosa.filters.mel(..., htk=True, norm=None)``.
    """
    if not 0.0 <= low_freq < high_freq <= sample_rate / 2:
        raise ValueError(f"need 0 <= low_freq < high_freq <= sample_rate/2, "
                         f"got {low_freq}, {high_freq} at {sample_rate} Hz")
    # Same arithmetic, in the same order, as kws_fe_point()/kws_fe_tri() in the C code.
    # low/high go through float32 first because the C config stores them as float.
    lo = hz_to_mel(float(np.float32(low_freq)))
    hi = hz_to_mel(float(np.float32(high_freq)))
    j = np.arange(n_mels + 2, dtype=np.float64)
    points = mel_to_hz(lo + (hi - lo) * j / (n_mels + 1))
    freqs = np.arange(fft_size // 2 + 1, dtype=np.float64) * (sample_rate / fft_size)
    left, center, right = points[:-2, None], points[1:-1, None], points[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        up = (freqs - left) / (center - left)
        down = (right - freqs) / (right - center)
        weights = np.maximum(0.0, np.minimum(up, down))
    # A degenerate triangle (two equal points) is an empty filter, as in C.
    weights[~((center > left) & (right > center))[:, 0]] = 0.0
    return weights


def hann_window(length: int = FRAME_LENGTH) -> np.ndarray:
    """Periodic Hann window ``0.5 - 0.5 cos(2 pi n / length)`` (scipy's default ``hann``).

    Periodic rather than symmetric because frames overlap and tile the signal; it is also
    what the C code tabulates.
    """
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def num_frames(n_samples: int, frame_length: int = FRAME_LENGTH,
               frame_shift: int = FRAME_SHIFT) -> int:
    """Frames that ``n_samples`` samples give: no padding, a partial last frame is dropped."""
    return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // frame_shift


def _as_float_samples(samples: np.ndarray) -> np.ndarray:
    """Mono samples as float64 in [-1, 1): int16 / 32768, float taken as is."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioError(f"expected mono audio as a 1-D array, got shape {x.shape}; "
                         "mix or pick one channel first")
    if x.dtype == np.int16:
        return x.astype(np.float64) / 32768.0
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise AudioError("audio contains NaN or infinite samples")
        return x
    raise AudioError(f"expected int16 or float samples, got dtype {x.dtype}; "
                     "convert to int16 PCM or to float in [-1, 1)")


def log_mel(samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE,
            frame_length: int = FRAME_LENGTH, frame_shift: int = FRAME_SHIFT,
            fft_size: int = FFT_SIZE, n_mels: int = N_MELS, low_freq: float = LOW_FREQ,
            high_freq: float = HIGH_FREQ, energy_floor: float = ENERGY_FLOOR,
            level_control: bool = False) -> np.ndarray:
    """Log-mel features of mono audio, ``(frames, n_mels)`` float32.

    ``samples`` is int16 PCM or float in [-1, 1) at ``sample_rate`` (16 kHz by default;
    no resampling is done here). Frame ``i`` covers samples
    ``[i * frame_shift, i * frame_shift + frame_length)``. The keyword arguments exist so
    that a non-default C configuration can be mirrored; models are trained on the defaults.
    Computed in float64 and rounded once to float32, so this is the reference the float32
    C front end is measured against. ``level_control`` adds the gain of
    :func:`level_gains` to every band above the floor, as the C front end does by default
    (``kws.Detector``); training uses the raw features (off).
    """
    if not (2 <= frame_length <= fft_size and 1 <= frame_shift <= frame_length):
        raise ValueError("need 2 <= frame_length <= fft_size and 1 <= frame_shift <= frame_length")
    x = _as_float_samples(samples)
    n = num_frames(len(x), frame_length, frame_shift)
    out = np.empty((n, n_mels), dtype=np.float32)
    levels = np.empty(n if level_control else 0)
    if n == 0:
        return out
    fbank_t = mel_filterbank(sample_rate=sample_rate, fft_size=fft_size, n_mels=n_mels,
                             low_freq=low_freq, high_freq=high_freq).T
    window = hann_window(frame_length)
    frames_all = np.lib.stride_tricks.sliding_window_view(x, frame_length)[::frame_shift]
    for b in range(0, n, _BLOCK_FRAMES):
        frames = frames_all[b:b + _BLOCK_FRAMES]
        frames = (frames - frames.mean(axis=1, keepdims=True)) * window
        spec = np.fft.rfft(frames, n=fft_size, axis=1)
        power = spec.real ** 2 + spec.imag ** 2
        mel = power @ fbank_t
        out[b:b + len(frames)] = np.log(np.maximum(mel, energy_floor))
        if level_control:
            levels[b:b + len(frames)] = rough_ln(np.maximum(mel.sum(axis=1), energy_floor))
    if level_control:
        gains = level_gains(levels)
        above = out > np.float32(np.log(energy_floor))
        out = np.where(above, (out.astype(np.float64) + gains[:, None]).astype(np.float32), out)
    return out


def rough_ln(x: np.ndarray) -> np.ndarray:
    """ln(x) to within 0.06 as the C front end computes a frame's level: x (as float32) =
    m 2^e with m in [0.5, 1), log2(m) taken as the chord 2m - 2 (no libm call per frame on
    the device)."""
    m, e = np.frexp(np.asarray(x, dtype=np.float32))
    return (e.astype(np.float64) + 2.0 * m.astype(np.float64) - 2.0) * np.log(2.0)


def level_gains(levels: np.ndarray) -> np.ndarray:
    """Per-frame gains (nats, >= 0) of the front end's level control, from frame levels.

    ``levels[t]`` is frame ``t``'s level, from the start of a stream: the log
    (:func:`rough_ln`) of its summed mel energies, at least the energy floor. Why: the networks learn speech at the levels of
    their training data (about -35 to -10 dBFS active level, with gains of -12 to +6 dB);
    a far-field talker or a quiet microphone gives speech 20-30 dB below that, which they
    miss (docs/frontend-level.md). This lifts such speech by the gain that brings its
    tracked level to ``LC_TARGET_DB`` and never lowers anything, so speech at training
    levels passes unchanged. Causal (each gain depends on frames up to its own), so a
    stream gets it frame by frame; the C front end runs the same recursion in float32.

    Noise floor ``N`` (follows the level down at once, up by ``LC_NOISE_RISE_DB`` per
    frame, never below ``LC_MIN_LEVEL_DB - LC_ONSET_DB``); a frame is an *onset* when its
    level is ``LC_ONSET_DB`` over ``N`` and over ``LC_MIN_LEVEL_DB``. The speech level
    ``S`` starts at the first run of ``LC_ONSET_FRAMES`` onset frames (a click or a breath
    before the speech is shorter), ``LC_HEADROOM_DB`` above the loudest of them (the start
    of a syllable is quieter than its vowel, and lifting too much is worse than too
    little); then it rises fast
    towards louder frames (``LC_ATTACK``), falls slowly towards onset frames within
    ``LC_WINDOW_DB`` below it (``LC_RELEASE``), and otherwise leaks down by
    ``LC_LEAK_DB`` per frame, so pauses and noise do not pump the gain.
    """
    db = _NATS_PER_DB
    target, gmax = LC_TARGET_DB * db, LC_MAX_GAIN_DB * db
    onset_db, lmin, head = LC_ONSET_DB * db, LC_MIN_LEVEL_DB * db, LC_HEADROOM_DB * db
    window, rise, leak = LC_WINDOW_DB * db, LC_NOISE_RISE_DB * db, LC_LEAK_DB * db
    gains = np.zeros(len(levels))
    noise = speech = run_max = 0.0
    known, run = False, 0
    for t, level in enumerate(np.asarray(levels, dtype=np.float64)):
        noise = level if t == 0 else min(level, noise + rise)
        noise = max(noise, lmin - onset_db)
        onset = level > noise + onset_db and level > lmin
        if not known:
            if onset:
                run_max = level if run == 0 else max(run_max, level)
                run += 1
                if run >= LC_ONSET_FRAMES:
                    speech, known = run_max + head, True
            else:
                run = 0
        elif level > speech:
            speech += LC_ATTACK * (level - speech)
        elif level > speech - window and onset:
            speech += LC_RELEASE * (level - speech)
        else:
            speech = max(speech - leak, lmin)
        if known:
            gains[t] = min(max(target - speech, 0.0), gmax)
    return gains
