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
* ``log(max(energy, 1e-10))``, natural log.
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

#: Frames per block in :func:`log_mel`; bounds the float64 spectrum held at once (~12 MB).
_BLOCK_FRAMES = 2048

__all__ = [
    "SAMPLE_RATE", "FRAME_LENGTH", "FRAME_SHIFT", "FFT_SIZE", "N_MELS", "LOW_FREQ",
    "HIGH_FREQ", "ENERGY_FLOOR", "hz_to_mel", "mel_to_hz", "mel_filterbank",
    "hann_window", "num_frames", "log_mel",
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
            high_freq: float = HIGH_FREQ, energy_floor: float = ENERGY_FLOOR) -> np.ndarray:
    """Log-mel features of mono audio, ``(frames, n_mels)`` float32.

    ``samples`` is int16 PCM or float in [-1, 1) at ``sample_rate`` (16 kHz by default;
    no resampling is done here). Frame ``i`` covers samples
    ``[i * frame_shift, i * frame_shift + frame_length)``. The keyword arguments exist so
    that a non-default C configuration can be mirrored; models are trained on the defaults.
    Computed in float64 and rounded once to float32, so this is the reference the float32
    C front end is measured against.
    """
    if not (2 <= frame_length <= fft_size and 1 <= frame_shift <= frame_length):
        raise ValueError("need 2 <= frame_length <= fft_size and 1 <= frame_shift <= frame_length")
    x = _as_float_samples(samples)
    n = num_frames(len(x), frame_length, frame_shift)
    out = np.empty((n, n_mels), dtype=np.float32)
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
        out[b:b + len(frames)] = np.log(np.maximum(power @ fbank_t, energy_floor))
    return out
