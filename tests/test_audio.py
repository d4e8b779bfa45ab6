"""kws.audio: files and arrays in, 16 kHz mono int16 out; every failure a one-line AudioError.

All audio is generated here with numpy and written with soundfile into tmp_path.
Length tolerance for resampled files: +-1 output sample per second of audio (soxr returns
round(n * 16000 / rate), so the real error is under one sample).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

from kws.audio import TARGET_RATE, AudioInfo, load_audio, probe, to_pcm16
from kws.errors import AudioError, KwsError
from kws.features import N_MELS, log_mel, num_frames


def sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16)


def peak_hz(x: np.ndarray, rate: int = TARGET_RATE) -> float:
    x = x.astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def assert_len(y: np.ndarray, seconds: float) -> None:
    expected = TARGET_RATE * seconds
    assert abs(len(y) - expected) <= max(1.0, seconds), (len(y), expected)


def assert_one_line_error(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert isinstance(exc.value, KwsError) and isinstance(exc.value, ValueError)
    assert msg and "\n" not in msg and "\r" not in msg and msg == msg.strip(), repr(msg)
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# --------------------------------------------------------------------------- happy paths


def test_round_trip_16k_mono_int16_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32768, size=16000, dtype=np.int16)
    x[:4] = [-32768, 32767, 0, -1]
    p = tmp_path / "exact.wav"
    soundfile.write(p, x, 16000, subtype="PCM_16")
    y = load_audio(p)
    assert y.dtype == np.int16 and y.ndim == 1
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(load_audio(str(p)), x)  # str paths too


@pytest.mark.parametrize("rate,freq", [(48000, 3000.0), (8000, 1000.0), (44100, 2500.0)])
def test_other_rates_resampled_to_16k_keeping_frequency(tmp_path, rate, freq):
    seconds = 2.0
    p = tmp_path / f"sine_{rate}.wav"
    soundfile.write(p, pcm16(sine(freq, rate, seconds)), rate, subtype="PCM_16")
    y = load_audio(p)
    assert y.dtype == np.int16
    assert_len(y, seconds)
    assert abs(peak_hz(y) - freq) <= 1.0
    # Amplitude survives too (0.5 full scale sine -> rms 0.5/sqrt(2)), away from the edges.
    assert rms(y[1000:-1000]) == pytest.approx(0.5 / np.sqrt(2) * 32768, rel=0.01)


def test_content_above_8k_is_filtered_not_aliased(tmp_path):
    """A 12 kHz tone at 48 kHz would alias to 4 kHz with naive decimation; soxr removes it."""
    p = tmp_path / "ultra.wav"
    soundfile.write(p, pcm16(sine(12000.0, 48000)), 48000, subtype="PCM_16")
    y = load_audio(p)
    assert_len(y, 1.0)
    assert rms(y) < 0.001 * 32768


def test_stereo_opposite_channels_cancel(tmp_path):
    s = pcm16(sine(440.0, 16000))
    p = tmp_path / "cancel.wav"
    soundfile.write(p, np.stack([s, -s], axis=1), 16000, subtype="PCM_16")
    y = load_audio(p)
    assert len(y) == len(s)
    assert np.abs(y.astype(np.int32)).max() <= 1


def test_stereo_identical_channels_equal_mono(tmp_path):
    s = pcm16(sine(440.0, 16000))
    p = tmp_path / "same.wav"
    soundfile.write(p, np.stack([s, s], axis=1), 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(p), s)


def test_multichannel_48k_is_averaged_and_resampled(tmp_path):
    s = sine(1000.0, 48000, amp=0.3)
    x = np.stack([s, s, np.zeros_like(s), np.zeros_like(s), s, s], axis=1)  # 5.1-like
    p = tmp_path / "six.wav"
    soundfile.write(p, pcm16(x), 48000, subtype="PCM_16")
    y = load_audio(p)
    assert_len(y, 1.0)
    assert abs(peak_hz(y) - 1000.0) <= 1.0
    assert rms(y[500:-500]) == pytest.approx(0.2 / np.sqrt(2) * 32768, rel=0.01)  # 4/6 of 0.3


def test_24bit_wav_rounds_to_nearest_and_saturates(tmp_path):
    s = pcm16(sine(440.0, 16000))
    s[:3] = [32767, -32768, 100]
    x32 = s.astype(np.int32) << 16          # soundfile keeps the top 24 bits for PCM_24
    lo = x32.copy()
    lo += 0x40 << 8                          # a quarter of a 16-bit step: rounds down
    hi = x32.copy()
    hi += 0xC0 << 8                          # three quarters: rounds up (saturates at 32767)
    for arr, want in [(x32, s), (lo, s), (hi, np.minimum(s.astype(np.int32) + 1, 32767))]:
        p = tmp_path / "deep.wav"
        soundfile.write(p, arr, 16000, subtype="PCM_24")
        assert soundfile.info(p).subtype == "PCM_24"
        np.testing.assert_array_equal(load_audio(p), want)


def test_32bit_int_and_8bit_wav(tmp_path):
    s = pcm16(sine(440.0, 16000))
    p32 = tmp_path / "int32.wav"
    soundfile.write(p32, s.astype(np.int32) << 16, 16000, subtype="PCM_32")
    np.testing.assert_array_equal(load_audio(p32), s)
    s8 = (s.astype(np.int32) >> 8 << 8).astype(np.int16)   # representable in 8 bits
    p8 = tmp_path / "u8.wav"
    soundfile.write(p8, s8, 16000, subtype="PCM_U8")
    np.testing.assert_array_equal(load_audio(p8), s8)


def test_32bit_float_wav_and_saturation(tmp_path):
    s = pcm16(sine(440.0, 16000))
    x = s.astype(np.float32) / 32768
    x[:6] = [1.0, 1.5, -1.0, -2.0, 1e30, -1e30]
    p = tmp_path / "float.wav"
    soundfile.write(p, x, 16000, subtype="FLOAT")
    y = load_audio(p)
    np.testing.assert_array_equal(y[:6], [32767, 32767, -32768, -32768, 32767, -32768])
    np.testing.assert_array_equal(y[6:], s[6:])


def test_float64_wav_resampled_overdriven_sine_saturates(tmp_path):
    """A sine at 3x full scale must clip to a square-ish wave, never wrap round."""
    p = tmp_path / "loud.wav"
    soundfile.write(p, sine(500.0, 48000, amp=3.0), 48000, subtype="DOUBLE")
    y = load_audio(p).astype(np.int32)
    assert_len(y, 1.0)
    assert y.max() == 32767 and y.min() == -32768
    # Wrapping would put large values of the wrong sign next to each other.
    assert np.abs(np.diff(y)).max() < 32768


def test_flac_lossless_and_resampled(tmp_path):
    s = pcm16(sine(440.0, 16000))
    p = tmp_path / "a.flac"
    soundfile.write(p, s, 16000)
    np.testing.assert_array_equal(load_audio(p), s)
    p2 = tmp_path / "b.flac"
    st = pcm16(np.stack([sine(440.0, 44100), sine(440.0, 44100)], axis=1))
    soundfile.write(p2, st.astype(np.int32) << 16, 44100, subtype="PCM_24")
    y = load_audio(p2)
    assert_len(y, 1.0)
    assert abs(peak_hz(y) - 440.0) <= 1.0


def test_ogg_opus_48k_tone_survives(tmp_path):
    seconds = 2.0
    p = tmp_path / "tone.opus.ogg"
    soundfile.write(p, sine(440.0, 48000, seconds, amp=0.4), 48000, format="OGG",
                    subtype="OPUS")
    info = probe(p)
    assert (info.format, info.subtype, info.rate) == ("OGG", "OPUS", 48000)
    y = load_audio(p)
    assert_len(y, seconds)
    assert abs(peak_hz(y) - 440.0) <= 1.0
    assert rms(y[2000:-2000]) == pytest.approx(0.4 / np.sqrt(2) * 32768, rel=0.1)


def test_ogg_vorbis(tmp_path):
    p = tmp_path / "tone.ogg"
    soundfile.write(p, sine(440.0, 22050, 1.0, amp=0.4), 22050, format="OGG",
                    subtype="VORBIS")
    y = load_audio(p)
    assert_len(y, 1.0)
    assert abs(peak_hz(y) - 440.0) <= 1.0


def test_short_audio_is_not_an_error(tmp_path):
    p = tmp_path / "blip.wav"
    soundfile.write(p, np.array([5, -5, 7], dtype=np.int16), 16000)
    np.testing.assert_array_equal(load_audio(p), [5, -5, 7])
    p48 = tmp_path / "blip48.wav"
    soundfile.write(p48, pcm16(sine(1000.0, 48000, 0.05)), 48000)
    assert_len(load_audio(p48), 0.05)


def test_wav_with_data_cut_off_reads_what_is_there(tmp_path):
    """libsndfile trusts the file length over the header's data size (streamed recorders
    write placeholder sizes), so a cut-off WAV loads its remaining samples."""
    s = pcm16(sine(440.0, 16000))
    p = tmp_path / "cut.wav"
    soundfile.write(p, s, 16000, subtype="PCM_16")
    raw = p.read_bytes()
    p.write_bytes(raw[:44 + 2 * 1000])
    np.testing.assert_array_equal(load_audio(p), s[:1000])


def test_log_mel_on_loaded_audio(tmp_path):
    p = tmp_path / "for_features.wav"
    soundfile.write(p, pcm16(sine(1000.0, 48000, 1.0, amp=0.3)), 48000, subtype="PCM_16")
    y = load_audio(p)
    feats = log_mel(y)
    assert feats.shape == (num_frames(len(y)), N_MELS) and feats.shape[0] == 98
    assert np.isfinite(feats).all()


def test_probe(tmp_path):
    p = tmp_path / "probe.wav"
    soundfile.write(p, np.zeros((24000, 2), dtype=np.int16), 48000, subtype="PCM_24")
    info = probe(p)
    assert info == AudioInfo(rate=48000, channels=2, frames=24000, duration_s=0.5,
                             subtype="PCM_24", format="WAV")


def test_large_file_crosses_block_boundaries(tmp_path, monkeypatch):
    """Blockwise conversion gives the same samples as converting in one go."""
    import kws.audio as audio

    rng = np.random.default_rng(7)
    x = pcm16(rng.standard_normal((30011, 2)) * 0.2)
    p = tmp_path / "long.wav"
    soundfile.write(p, x, 44100, subtype="PCM_16")
    whole = load_audio(p)
    monkeypatch.setattr(audio, "_BLOCK_FRAMES", 4096)
    np.testing.assert_array_equal(load_audio(p), whole)
    np.testing.assert_array_equal(to_pcm16(x, 44100), whole)


# --------------------------------------------------------------------------- file errors


def _missing(tmp_path):
    return tmp_path / "nope.wav"


def _directory(tmp_path):
    d = tmp_path / "clips_dir"
    d.mkdir()
    return d


def _empty(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    return p


def _header_only(tmp_path):
    p = tmp_path / "zero.wav"
    soundfile.write(p, np.zeros(0, dtype=np.int16), 16000)
    return p


@pytest.mark.parametrize("make,name,needle", [
    (_missing, "nope.wav", "does not exist"),
    (_directory, "clips_dir", "directory"),
    (_empty, "empty.wav", "contains no audio"),
    (_header_only, "zero.wav", "contains no audio"),
], ids=["missing", "directory", "empty", "header_only"])
def test_file_errors(tmp_path, make, name, needle):
    path = make(tmp_path)
    for fn in (load_audio, probe):
        with pytest.raises(AudioError) as e:
            fn(path)
        assert_one_line_error(e, name, needle)


@pytest.mark.parametrize("content", [
    b"this is a text file, not audio\n" * 20,
    b"RIFF\x24\x00\x00\x00WAVEfmt ",              # WAV header cut inside the fmt chunk
    b"fLaC\x00\x00\x00\x22\x12\x00",              # FLAC header cut inside STREAMINFO
    b"OggS\x00\x02" + b"\x00" * 20,               # Ogg page header cut short
    bytes(range(256)) * 8,                         # binary garbage
])
def test_not_audio_or_truncated_header(tmp_path, content):
    p = tmp_path / "broken.wav"
    p.write_bytes(content)
    for fn in (load_audio, probe):
        with pytest.raises(AudioError) as e:
            fn(p)
        assert_one_line_error(e, "broken.wav", "cannot read",
                              "not a WAV, FLAC or Ogg file, or it is damaged")


def test_truncated_real_headers(tmp_path):
    for name, kwargs in [("h.wav", {}), ("h.flac", {}),
                         ("h.ogg", {"format": "OGG", "subtype": "OPUS"})]:
        full = tmp_path / ("full_" + name)
        soundfile.write(full, sine(440.0, 48000), 48000, **kwargs)
        p = tmp_path / name
        p.write_bytes(full.read_bytes()[:20])
        with pytest.raises(AudioError) as e:
            load_audio(p)
        assert_one_line_error(e, name, "cannot read")


def test_flac_cut_in_the_middle(tmp_path):
    """The FLAC header still says 1 s, so probe succeeds; decoding fails part way."""
    full = tmp_path / "full.flac"
    soundfile.write(full, pcm16(sine(440.0, 16000)), 16000)
    p = tmp_path / "cut.flac"
    raw = full.read_bytes()
    p.write_bytes(raw[:len(raw) // 2])
    assert probe(p).frames == 16000
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert_one_line_error(e, "cut.flac", "cannot read", "damaged")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_non_finite_float_wav(tmp_path, bad, subtype):
    x = sine(440.0, 16000, 0.5)
    x[4000] = bad
    p = tmp_path / "poison.wav"
    soundfile.write(p, x, 16000, subtype=subtype)
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert_one_line_error(e, "poison.wav", "NaN or infinite", "0.250 s")


def test_unreadable_file(tmp_path):
    p = tmp_path / "locked.wav"
    soundfile.write(p, np.zeros(100, dtype=np.int16), 16000)
    os.chmod(p, 0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running with privileges that ignore file permissions")
        with pytest.raises(AudioError) as e:
            load_audio(p)
        assert_one_line_error(e, "locked.wav")
    finally:
        os.chmod(p, 0o600)


def test_newline_in_file_name_keeps_error_one_line(tmp_path):
    p = tmp_path / "two\nlines.wav"
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert_one_line_error(e, "two\\nlines.wav")


# --------------------------------------------------------------------------- to_pcm16


def test_to_pcm16_int16_16k_is_copy():
    x = np.array([1, -2, 32767, -32768], dtype=np.int16)
    y = to_pcm16(x, 16000)
    np.testing.assert_array_equal(y, x)
    assert y is not x and not np.shares_memory(x, y)
    np.testing.assert_array_equal(to_pcm16(x[:, None], 16000), x)


def test_to_pcm16_dtypes_agree():
    s = pcm16(sine(440.0, 16000))
    np.testing.assert_array_equal(to_pcm16(s.astype(np.float32) / 32768, 16000), s)
    np.testing.assert_array_equal(to_pcm16(s.astype(np.float64) / 32768, 16000), s)
    np.testing.assert_array_equal(to_pcm16(s.astype(np.int32) << 16, 16000), s)
    np.testing.assert_array_equal(to_pcm16(np.stack([s, s], 1).astype(np.int32) << 16, 16000), s)


def test_to_pcm16_matches_load_audio(tmp_path):
    x = pcm16(np.stack([sine(700.0, 48000), sine(1300.0, 48000)], 1) * 0.8)
    p = tmp_path / "same_path.wav"
    soundfile.write(p, x, 48000, subtype="PCM_16")
    np.testing.assert_array_equal(to_pcm16(x, 48000), load_audio(p))


def test_to_pcm16_clips_instead_of_wrapping():
    x = np.array([0.5, 1.0, 1.0001, 2.0, 1e9, -1.0, -1.0001, -7.0, -1e9], dtype=np.float32)
    np.testing.assert_array_equal(
        to_pcm16(x, 16000), [16384, 32767, 32767, 32767, 32767, -32768, -32768, -32768, -32768])
    y = to_pcm16(sine(500.0, 8000, amp=4.0), 8000).astype(np.int32)
    assert y.max() == 32767 and y.min() == -32768 and np.abs(np.diff(y)).max() < 32768


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_pcm16_non_finite(bad, dtype):
    x = np.zeros((100, 2), dtype=dtype)
    x[37, 1] = bad
    with pytest.raises(AudioError) as e:
        to_pcm16(x, 48000)
    assert_one_line_error(e, "NaN or infinite", "frame 37")


@pytest.mark.parametrize("x,needle", [
    (np.zeros(0, dtype=np.float32), "no audio"),
    (np.zeros((0, 2), dtype=np.int16), "no audio"),
    (np.zeros((2, 3, 4), dtype=np.float32), "1-D mono array or a 2-D"),
    (np.float32(0.5), "1-D mono array or a 2-D"),
    (np.zeros((2, 16000), dtype=np.float32), "samples.T"),
    (np.zeros((100, 12), dtype=np.float32), "at most 8 channels"),
    (np.zeros(100, dtype=np.int64), "unsupported sample dtype int64"),
    (np.zeros(100, dtype=np.uint8), "unsupported sample dtype"),
    (np.zeros(100, dtype=bool), "unsupported sample dtype"),
])
def test_to_pcm16_bad_arrays(x, needle):
    with pytest.raises(AudioError) as e:
        to_pcm16(x, 16000)
    assert_one_line_error(e, needle)


@pytest.mark.parametrize("rate", [0, -16000, float("nan"), float("inf"), True, "16000", None])
def test_to_pcm16_bad_rate(rate):
    with pytest.raises(AudioError) as e:
        to_pcm16(np.zeros(10, dtype=np.int16), rate)
    assert_one_line_error(e, "sample rate")


def test_to_pcm16_accepts_numpy_and_float_rates():
    x = pcm16(sine(1000.0, 32000))
    a = to_pcm16(x, np.int64(32000))
    b = to_pcm16(x, 32000.0)
    np.testing.assert_array_equal(a, b)
    assert_len(a, 1.0)
    assert abs(peak_hz(a) - 1000.0) <= 1.0
