"""The catalogue of bad inputs (docs/bad-inputs.md): one test per case.

Each refused input must give, from the command line, exit status 1 and exactly one line on
stderr (``<prog>: error: ...``) and, from Python, a :class:`kws.errors.KwsError` subclass
documented in kws/errors.py whose text is one line. Each accepted oddity (silence, clipping,
other rates, stereo, 24-bit) must give exit status 0 and nothing on stderr.

All audio is generated here (numpy signals, written with soundfile into tmp_path). Command
lines run in-process with ``capfd``, which sees the file descriptors, so output written by
native code (the TFLite runtime) would be caught too; one test runs a fresh process.
Tests that run the shipped acoustic model skip when kws/data/acoustic/<lang>.tflite is
absent; none depends on its quality.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kws import enroll
from kws.acoustic import DATA_DIR, AcousticModel
from kws.audio import TARGET_RATE, load_audio
from kws.cli import detect_main, enroll_main, model_main
from kws.detector import Detector
from kws.errors import AudioError, KwsError, ModelFormatError, PronunciationError
from kws.model_file import HEADER_SIZE, KeywordModel
from kws.phonesets import KOREAN

TEST_DATA = Path(__file__).parent / "data"
HAVE_EN = (DATA_DIR / "en.tflite").is_file()
needs_en_model = pytest.mark.skipif(not HAVE_EN, reason="no shipped en acoustic model")


# --------------------------------------------------------------------------- helpers


def one_line_error(capfd, prog: str, *needles: str) -> str:
    """stdout empty, stderr exactly one line '<prog>: error: ...' holding every needle."""
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert out == "", out
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def quiet_success(capfd) -> str:
    """Nothing at all on stderr; stdout returned."""
    out, err = capfd.readouterr()
    assert err == "", err
    return out


def api_error(exc_info, cls: type, *needles: str) -> str:
    exc = exc_info.value
    assert isinstance(exc, cls) and isinstance(exc, KwsError), type(exc)
    msg = str(exc)
    assert msg and "\n" not in msg and "\r" not in msg and msg == msg.strip(), repr(msg)
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def tone(rate: int, seconds: float = 1.0, amp: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def speechlike(rate: int = 16000, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Bursts of shaped noise: enough for the front end and the network to chew on."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    env = (np.sin(np.linspace(0, 6 * np.pi, n)) > 0).astype(np.float64)
    return 0.2 * env * np.convolve(rng.normal(size=n), np.ones(8) / 8, mode="same")


@pytest.fixture(scope="module")
def en_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "jarvis.kwm"
    enroll(["hey jarvis"], "en").model.save(path)
    return path


@pytest.fixture(scope="module")
def tiny() -> AcousticModel:
    """The random-weight Korean test network: runs everywhere, no shipped model needed."""
    return AcousticModel(TEST_DATA / "tiny_ko.tflite")


@pytest.fixture(scope="module")
def ko_model() -> KeywordModel:
    # A threshold so low that the random network fires on noise (see test_detector.py).
    return enroll(["가나", "다라"], "ko", threshold=-5.9).model


def detect_cli(model: Path, wav: Path) -> int:
    return detect_main(["--model", str(model), str(wav)])


# --------------------------------------------------------------------------- audio: refused


@needs_en_model
def test_audio_empty_file(tmp_path, capfd, en_model, tiny, ko_model):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    assert detect_cli(en_model, p) == 1
    one_line_error(capfd, "kws-detect", "empty.wav", "contains no audio")
    with pytest.raises(AudioError) as e:
        load_audio(p)
    api_error(e, AudioError, "contains no audio")
    # a WAV with a header and no samples
    soundfile.write(tmp_path / "zero.wav", np.zeros(0, np.int16), 16000)
    assert detect_cli(en_model, tmp_path / "zero.wav") == 1
    one_line_error(capfd, "kws-detect", "zero.wav", "contains no audio")
    # an empty array handed to the whole-clip API (a stream may have empty chunks)
    det = Detector(ko_model, acoustic=tiny)
    for empty in (np.zeros(0, np.int16), np.zeros(0, np.float32), np.zeros((0, 2), np.int16)):
        with pytest.raises(AudioError) as e:
            det.detect(empty)
        api_error(e, AudioError, "no audio")
    assert det.process(np.zeros(0, np.int16)) == []


@needs_en_model
def test_audio_nan_float_wav_refused(tmp_path, capfd, en_model, tiny, ko_model):
    x = tone(16000)
    x[8000] = np.nan
    p = tmp_path / "nan.wav"
    soundfile.write(p, x, 16000, subtype="FLOAT")
    assert detect_cli(en_model, p) == 1
    one_line_error(capfd, "kws-detect", "nan.wav", "NaN or infinite", "0.500 s")
    with pytest.raises(AudioError) as e:
        load_audio(p)
    api_error(e, AudioError, "NaN or infinite")
    # all-NaN and inf too, and float arrays handed straight to the detector
    soundfile.write(p, np.full(16000, np.nan), 16000, subtype="DOUBLE")
    with pytest.raises(AudioError):
        load_audio(p)
    det = Detector(ko_model, acoustic=tiny)
    for bad in (np.nan, np.inf, -np.inf):
        y = tone(16000).astype(np.float32)
        y[100] = bad
        with pytest.raises(AudioError) as e:
            det.process(y)
        api_error(e, AudioError, "NaN or infinite", "frame 100")


@needs_en_model
@pytest.mark.parametrize("what", ["header_cut", "flac_cut_in_the_middle"])
def test_audio_truncated_file_refused(tmp_path, capfd, en_model, what):
    if what == "header_cut":
        full = tmp_path / "full.wav"
        soundfile.write(full, tone(16000), 16000, subtype="PCM_16")
        p = tmp_path / "cut.wav"
        p.write_bytes(full.read_bytes()[:30])
        needle = "cannot read"
    else:
        full = tmp_path / "full.flac"
        soundfile.write(full, (tone(16000) * 32767).astype(np.int16), 16000)
        p = tmp_path / "cut.flac"
        raw = full.read_bytes()
        p.write_bytes(raw[:len(raw) // 2])
        needle = "damaged or cut off"
    assert detect_cli(en_model, p) == 1
    one_line_error(capfd, "kws-detect", p.name, needle)
    with pytest.raises(AudioError) as e:
        load_audio(p)
    api_error(e, AudioError, needle)


@needs_en_model
@pytest.mark.parametrize("content", [b"just some notes\n" * 40, bytes(range(256)) * 8, b"RIFF"],
                         ids=["text", "binary", "four_bytes"])
def test_audio_not_audio_refused(tmp_path, capfd, en_model, content):
    p = tmp_path / "notes.wav"
    p.write_bytes(content)
    assert detect_cli(en_model, p) == 1
    one_line_error(capfd, "kws-detect", "notes.wav", "cannot read", "not a WAV, FLAC or Ogg file")
    with pytest.raises(AudioError) as e:
        load_audio(p)
    api_error(e, AudioError, "cannot read")


@needs_en_model
def test_audio_missing_file_and_directory_refused(tmp_path, capfd, en_model):
    assert detect_cli(en_model, tmp_path / "nope.wav") == 1
    one_line_error(capfd, "kws-detect", "nope.wav", "does not exist")
    assert detect_cli(en_model, tmp_path) == 1
    one_line_error(capfd, "kws-detect", "directory")


# --------------------------------------------------------------------------- audio: accepted


def test_audio_silent_gives_no_detections_whatever_the_network(tiny, ko_model):
    """Digital silence is scored as pure `sil` by the Detector, so it cannot complete a
    keyword even with a random network at a threshold that fires on noise."""
    det = Detector(ko_model, acoustic=tiny)
    noise = np.clip(np.random.default_rng(0).normal(0, 3000, 20 * 16000), -32768, 32767).astype(np.int16)
    assert len(det.detect(noise)) >= 5  # this network and threshold do fire on noise
    assert det.detect(np.zeros(20 * 16000, np.int16)) == []
    assert det.detect(np.full(5 * 16000, 1234, np.int16)) == []  # DC only: silence to the front end
    assert det.detect(np.zeros((5 * 48000, 2), np.float32), 48000) == []
    # silence inside a stream: chunk by chunk, no detection ends in it
    det.reset()
    dets = []
    for chunk in np.array_split(np.concatenate([noise[:5 * 16000], np.zeros(10 * 16000, np.int16)]), 37):
        dets += det.process(chunk)
    dets += det.flush()
    assert all(d.end_s <= 5.5 for d in dets), dets


class FlatNet:
    """A network that knows nothing: the same posterior for every phone on every frame."""

    phone_set = KOREAN

    def stream(self):
        return self

    def push(self, feats):
        n = len(self.phone_set)
        return np.full((len(feats), n), -np.log(n), np.float32)

    def flush(self):
        return np.zeros((0, len(self.phone_set)), np.float32)

    def reset(self):
        pass


def test_audio_silent_gives_no_detections_even_from_a_network_that_knows_nothing(ko_model):
    """Flat posteriors score every path 0, a perfect match: without the gate (the default,
    the firmware's pipeline) silence fires; with it, silence never completes a keyword.
    (The shipped models give nothing on silence without the gate: test below.)"""
    silence = np.zeros(10 * 16000, np.int16)
    assert Detector(ko_model, acoustic=FlatNet(), silence_gate=False).detect(silence)
    strict = Detector(ko_model, acoustic=FlatNet(), threshold=-5.99, silence_gate=True)
    assert strict.detect(silence) == []
    hum = (3000 * np.sin(np.arange(10 * 16000) * 0.3)).astype(np.int16)
    assert strict.detect(hum)  # not silence: the flat network matches, as it should
    # a keyword may pause in silence between its words (the neutral sil state), but a
    # stretch of silence alone never ends one
    dets = strict.detect(np.concatenate([hum[:16000], silence, hum[:16000]]))
    assert all(not (1.2 <= d.end_s <= 10.8) for d in dets), dets


@needs_en_model
def test_audio_silent_file_accepted(tmp_path, capfd, en_model):
    """Digital silence through the shipped model, no gate: accepted, nothing detected."""
    p = tmp_path / "silent.wav"
    soundfile.write(p, np.zeros(3 * 16000, np.int16), 16000, subtype="PCM_16")
    assert detect_cli(en_model, p) == 0
    assert quiet_success(capfd) == ""  # zero detections, no error, no warning


@needs_en_model
def test_audio_clipped_accepted(tmp_path, capfd, en_model):
    x = np.clip(tone(16000, 2.0, amp=8.0), -1.0, 1.0)  # a square-ish wave, pinned at full scale
    p = tmp_path / "clipped.wav"
    soundfile.write(p, x, 16000, subtype="PCM_16")
    assert detect_cli(en_model, p) == 0
    quiet_success(capfd)
    y = load_audio(p)
    assert y.max() == 32767 and y.min() == -32768
    # float samples beyond full scale saturate (never wrap)
    soundfile.write(p, tone(16000, 1.0, amp=3.0), 16000, subtype="FLOAT")
    y = load_audio(p).astype(np.int32)
    assert y.max() == 32767 and y.min() == -32768 and np.abs(np.diff(y)).max() < 32768
    assert detect_cli(en_model, p) == 0
    quiet_success(capfd)


@needs_en_model
@pytest.mark.parametrize("rate", [8000, 48000])
def test_audio_other_rate_resampled(tmp_path, capfd, en_model, rate):
    p = tmp_path / f"r{rate}.wav"
    soundfile.write(p, speechlike(rate, 2.0), rate, subtype="PCM_16")
    y = load_audio(p)
    assert abs(len(y) - 2 * TARGET_RATE) <= 2
    assert detect_cli(en_model, p) == 0
    quiet_success(capfd)


@needs_en_model
def test_audio_stereo_mixed_down(tmp_path, capfd, en_model):
    left, right = speechlike(seed=1), speechlike(seed=2)
    p = tmp_path / "stereo.wav"
    soundfile.write(p, np.stack([left, right], 1), 16000, subtype="FLOAT")
    mono = tmp_path / "mono.wav"
    soundfile.write(mono, (left + right) / 2, 16000, subtype="FLOAT")
    # averaged (float32 storage of the mono reference may round a sample the other way)
    diff = load_audio(p).astype(np.int32) - load_audio(mono).astype(np.int32)
    assert np.abs(diff).max() <= 1
    # opposite channels cancel: not "the left channel"
    soundfile.write(p, np.stack([left, -left], 1), 16000, subtype="PCM_16")
    assert not load_audio(p).any()
    assert detect_cli(en_model, p) == 0
    quiet_success(capfd)


@needs_en_model
def test_audio_24bit_accepted(tmp_path, capfd, en_model):
    p = tmp_path / "b24.wav"
    soundfile.write(p, speechlike(), 16000, subtype="PCM_24")
    assert soundfile.info(p).subtype == "PCM_24"
    y = load_audio(p)
    assert y.dtype == np.int16 and len(y) == 32000
    assert detect_cli(en_model, p) == 0
    quiet_success(capfd)


@needs_en_model
def test_audio_wav_data_cut_off_reads_what_is_there(tmp_path, capfd, en_model):
    """A WAV whose header promises more data than the file holds (a recorder stopped) is
    read up to where the data ends: streamed recorders write such headers on purpose."""
    full = tmp_path / "full.wav"
    soundfile.write(full, (tone(16000, 1.0) * 32767).astype(np.int16), 16000, subtype="PCM_16")
    p = tmp_path / "cut.wav"
    p.write_bytes(full.read_bytes()[:44 + 2 * 8000])
    assert len(load_audio(p)) == 8000
    assert detect_cli(en_model, p) == 0
    quiet_success(capfd)


@needs_en_model
def test_cli_stderr_is_exactly_one_line_in_a_fresh_process(tmp_path, en_model):
    """A fresh process loads the network: native runtime chatter must not reach stderr."""
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio\n" * 30)
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, np.int16), 16000)
    code = "import sys; from kws.cli import detect_main; sys.exit(detect_main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, "--model", str(en_model), str(bad)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("kws-detect: error: cannot read"), r.stderr
    r = subprocess.run([sys.executable, "-c", code, "--model", str(en_model), str(silent)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


# --------------------------------------------------------------------------- text


TEXT_CASES = {
    "empty": ([""], "en", "no pronounceable text"),
    "blank": (["   "], "ko", "no pronounceable text"),
    "punctuation_only": (["?!... ,;"], "en", "no pronounceable text"),
    "punctuation_only_ko": (["?!., …"], "ko", "no pronounceable text"),
    "symbol_ko": (["~!?"], "ko", "U+007E TILDE"),
    "emoji": (["😀"], "en", "U+1F600"),
    "emoji_in_korean": (["자비스야 😀"], "ko", "U+1F600"),
    "mixed_scripts_en": (["hey 자비스"], "en", "Hangul"),
    "mixed_scripts_ko": (["헤이 jarvis"], "ko", "mixes scripts"),
    "other_script": (["привет"], "en", "CYRILLIC"),
    "200_syllables_ko": (["가" * 200], "ko", "too long"),
    "200_syllables_en": (["banana " * 67], "en", "too long"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES), ids=sorted(TEXT_CASES))
def test_text_refused(tmp_path, capfd, case):
    texts, lang, needle = TEXT_CASES[case]
    out = tmp_path / "m.kwm"
    assert enroll_main([*texts, "--lang", lang, "-o", str(out)]) == 1
    one_line_error(capfd, "kws-enroll", needle)
    assert not out.exists()
    with pytest.raises(PronunciationError) as e:
        enroll(texts, lang)
    api_error(e, PronunciationError, needle)


# --------------------------------------------------------------------------- model files


def refresh_crc(data: bytes) -> bytes:
    d = bytearray(data)
    d[12:16] = b"\0\0\0\0"
    struct.pack_into("<I", d, 12, zlib.crc32(bytes(d)))
    return bytes(d)


def test_model_truncated_at_every_length_up_to_the_header(tmp_path, capfd, en_model):
    data = en_model.read_bytes()
    p = tmp_path / "cut.kwm"
    for n in range(HEADER_SIZE + 1):
        p.write_bytes(data[:n])
        assert model_main(["inspect", str(p)]) == 1, n
        one_line_error(capfd, "kws-model", "cut.kwm", "not a valid keyword model")
        with pytest.raises(ModelFormatError) as e:
            KeywordModel.load(p)
        api_error(e, ModelFormatError)
        with pytest.raises(ModelFormatError):
            KeywordModel.from_bytes(data[:n])


@needs_en_model
def test_model_truncated_refused_by_kws_detect(tmp_path, capfd, en_model):
    p = tmp_path / "cut.kwm"
    for n in (0, 3, 4, 16, HEADER_SIZE - 1, HEADER_SIZE, len(en_model.read_bytes()) - 4):
        p.write_bytes(en_model.read_bytes()[:n])
        wav = tmp_path / "a.wav"
        soundfile.write(wav, np.zeros(1600, np.int16), 16000)
        assert detect_cli(p, wav) == 1, n
        one_line_error(capfd, "kws-detect", "cut.kwm", "not a valid keyword model")


@pytest.mark.parametrize("offset", [20, 64, -1])
def test_model_bad_crc(tmp_path, capfd, en_model, offset):
    d = bytearray(en_model.read_bytes())
    d[offset] ^= 0x01
    p = tmp_path / "flipped.kwm"
    p.write_bytes(bytes(d))
    assert model_main(["inspect", str(p)]) == 1
    one_line_error(capfd, "kws-model", "checksum mismatch")
    with pytest.raises(ModelFormatError) as e:
        KeywordModel.load(p)
    api_error(e, ModelFormatError, "checksum")


def test_model_newer_major_version_refused(tmp_path, capfd, en_model):
    d = bytearray(en_model.read_bytes())
    struct.pack_into("<H", d, 4, 3)
    p = tmp_path / "v3.kwm"
    p.write_bytes(refresh_crc(bytes(d)))
    assert model_main(["inspect", str(p)]) == 1
    one_line_error(capfd, "kws-model", "unsupported format version")
    with pytest.raises(ModelFormatError) as e:
        KeywordModel.load(p)
    api_error(e, ModelFormatError, "version")


def test_model_newer_minor_version_accepted(tmp_path, capfd, en_model):
    """Minor versions only add fields a reader may ignore (docs/kwm-format.md)."""
    d = bytearray(en_model.read_bytes())
    major = struct.unpack_from("<H", d, 4)[0]  # 2: kws-enroll writes 2.0 (uncertainty weight)
    struct.pack_into("<H", d, 6, 7)
    p = tmp_path / "v_7.kwm"
    p.write_bytes(refresh_crc(bytes(d)))
    assert model_main(["inspect", str(p)]) == 0
    assert f"v{major}.7" in quiet_success(capfd)
    assert KeywordModel.load(p).to_bytes() == refresh_crc(bytes(d))  # the minor version is kept


@pytest.mark.parametrize("phone_set", ["unknown", "korean_id_on_english_graph"])
def test_model_for_another_phone_set_refused(tmp_path, capfd, en_model, phone_set):
    d = bytearray(en_model.read_bytes())
    struct.pack_into("<I", d, 16, 0xDEADBEEF if phone_set == "unknown" else KOREAN.id)
    p = tmp_path / "foreign.kwm"
    p.write_bytes(refresh_crc(bytes(d)))
    needle = "unknown phone set id 0xdeadbeef" if phone_set == "unknown" else "does not match phone set ko-v1"
    assert model_main(["inspect", str(p)]) == 1
    one_line_error(capfd, "kws-model", needle)
    with pytest.raises(ModelFormatError) as e:
        KeywordModel.load(p)
    api_error(e, ModelFormatError, needle)


def test_model_valid_but_for_the_other_language_network(tiny, en_model):
    """A well-formed English model run on a Korean network: refused before any audio."""
    with pytest.raises(ModelFormatError) as e:
        Detector(KeywordModel.load(en_model), acoustic=tiny)
    api_error(e, ModelFormatError, "phone set en-v1", "ko-v1", "--lang")


def test_model_not_a_model_at_all(tmp_path, capfd):
    p = tmp_path / "song.kwm"
    soundfile.write(p, np.zeros(1600, np.int16), 16000, format="WAV")
    assert model_main(["inspect", str(p)]) == 1
    one_line_error(capfd, "kws-model", "song.kwm")
    with pytest.raises(ModelFormatError) as e:
        KeywordModel.load(p)
    api_error(e, ModelFormatError)
