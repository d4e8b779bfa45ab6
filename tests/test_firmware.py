"""The Cortex-M4F firmware (firmware/) in QEMU mps2-an386 against the host pipeline.

The same kws_core C sources run on both sides, so the firmware must give the host's
numbers: log-mel features (within 1e-3; libm differs by an ulp), log-posteriors and
detections (same keyword and frames). Bad keyword models must be refused on the device
with an error code while it keeps running, over semihosting and over the UART.

Skips when arm-none-eabi-gcc / qemu-system-arm are missing (CI installs them), the
network parts when the C network (kws._core.Net) or its exporter (kws.netblob) is
absent, the speech part without espeak-ng.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import run_firmware as fw  # noqa: E402
from kws import _core  # noqa: E402
from synthetic import Posteriorgram, make_model, pron  # noqa: E402

pytestmark = pytest.mark.skipif(fw.missing_tools() is not None, reason=str(fw.missing_tools()))

NET_FIXTURE = ROOT / "tests" / "data" / "net_ko16.tflite"

KWS_ERR_TRUNCATED, KWS_ERR_MAGIC, KWS_ERR_CRC, KWS_ERR_PHONESET = 2, 3, 5, 7


@pytest.fixture(scope="module")
def elf() -> Path:
    return fw.build()


def _has_net() -> bool:
    try:
        import kws.netblob  # noqa: F401
    except ImportError:
        return False
    return hasattr(_core, "Net") and hasattr(_core, "NetStream")


needs_net = pytest.mark.skipif(not _has_net(), reason="C network (kws._core.Net / kws.netblob) not built")


def _signal(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A chirp, a burst of noise and a pause: every band sees energy and silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.3 * np.sin(2 * np.pi * (100 + 2500 * t) * t)
    x[len(x) // 2: len(x) // 2 + 3000] += rng.normal(0, 0.2, 3000)
    x[-2000:] *= 0.001
    return np.clip(x * 32767, -32768, 32767).astype(np.int16)


def _host_features(pcm: np.ndarray) -> np.ndarray:
    fe = _core.FrontEnd()
    out = np.empty((len(pcm) // 160 + 2, 40), np.float32)
    return out[: fe.process(np.ascontiguousarray(pcm, np.int16), out)]


def _host_pipeline(kwm: bytes, kwn: bytes, pcm: np.ndarray):
    net = _core.Net(kwn)
    s = _core.NetStream(net)
    feats = _host_features(pcm)
    lp = np.concatenate([s.push(feats), s.flush()])
    dec = _core.Decoder(kwm)
    return lp, dec.process(np.ascontiguousarray(lp)) + dec.flush()


def _same_detections(host, dev, frames_tol: int = 0, end_tol: int | None = None) -> None:
    end_tol = frames_tol if end_tol is None else end_tol
    assert len(host) == len(dev), (host, dev)
    for (k, score, start, end), d in zip(host, dev):
        assert d.keyword == k
        assert abs(d.start - start) <= frames_tol and abs(d.end - end) <= end_tol, (host, dev)
        if frames_tol == 0:
            assert d.exact_score == pytest.approx(score, abs=1e-5)


# --------------------------------------------------------------------------------------


def test_builds_within_budget(elf):
    """The image links (the linker script asserts RAM <= 64 KB, flash <= 256 KB)."""
    r = subprocess.run([fw.CROSS + "size", "-A", str(elf)], capture_output=True, text=True, check=True)
    sizes = {ln.split()[0]: int(ln.split()[1]) for ln in r.stdout.splitlines()[2:] if len(ln.split()) == 3}
    assert sizes[".text"] + sizes.get(".data", 0) <= 256 * 1024
    assert sizes.get(".data", 0) + sizes[".bss"] + sizes[".stack"] <= 64 * 1024
    res = fw.run(["calib", "1000"], elf=elf)
    assert res.rc == 0 and res.boot and res.summary["errors"] == 0


def test_builds_without_network(tmp_path):
    """NO_NET=1: front end and decoder only; `net` is refused, decoding still works."""
    elf = fw.build(build_dir=tmp_path / "b", no_net=True)
    kwm, lp = _posteriorgram_case()
    (tmp_path / "lp.f32").write_bytes(lp.astype("<f4").tobytes())
    (tmp_path / "m.kwm").write_bytes(kwm)
    res = fw.run(["net", str(tmp_path / "m.kwm"), "model", str(tmp_path / "m.kwm"), "post", str(tmp_path / "lp.f32")],
                 elf=elf)
    assert res.boot["net"] == 0 and [e["code"] for e in res.errors] == [10]  # KWS_ERR_UNSUPPORTED
    assert len(res.detections) >= 2


def test_frontend_matches_host(elf):
    pcm = _signal()
    dev = fw.features(pcm, elf=elf)
    host = _host_features(pcm)
    assert dev.shape == host.shape == (1 + (len(pcm) - 400) // 160, 40)
    assert np.abs(dev - host).max() < 1e-3


def _posteriorgram_case():
    kws_ = {"jarvis": pron(["JH", "AA", "R", "V", "IH", "S"]), "computer": pron(["K", "AH", "M", "P", "Y", "UW", "T", "ER"])}
    pg = Posteriorgram(seed=3)
    pg.background(40)
    pg.add(kws_["jarvis"].words[0].variants[0], frames=6)
    pg.background(60)
    pg.add(kws_["computer"].words[0].variants[0], frames=5)
    pg.background(30)
    return make_model(kws_).to_bytes(), np.ascontiguousarray(pg.logpost(), np.float32)


def test_decoder_matches_host(elf):
    kwm, lp = _posteriorgram_case()
    dec = _core.Decoder(kwm)
    host = dec.process(lp) + dec.flush()
    assert {d[0] for d in host} == {0, 1}
    res = fw.decode_posteriors(kwm, lp, elf=elf)
    assert res.rc == 0 and not res.errors
    assert res.ends[-1]["frames"] == len(lp)
    _same_detections(host, res.detections)
    assert [d.name for d in res.detections] == [["jarvis", "computer"][d[0]] for d in host]


def _bad_models(kwm: bytes) -> dict[str, tuple[bytes, int]]:
    corrupt = bytearray(kwm)
    corrupt[len(kwm) // 2] ^= 0x5A
    magic = b"XXXX" + kwm[4:]
    return {"corrupt": (bytes(corrupt), KWS_ERR_CRC), "truncated": (kwm[: len(kwm) - 7], KWS_ERR_TRUNCATED),
            "magic": (magic, KWS_ERR_MAGIC), "empty": (b"", KWS_ERR_TRUNCATED)}


def test_bad_models_refused_device_keeps_running(elf, tmp_path):
    kwm, lp = _posteriorgram_case()
    en_id = int.from_bytes(kwm[16:20], "little")
    args = []
    for name, (data, _) in _bad_models(kwm).items():
        (tmp_path / f"{name}.kwm").write_bytes(data)
        args += ["model", str(tmp_path / f"{name}.kwm"), "post", str(tmp_path / "lp.f32")]
    (tmp_path / "good.kwm").write_bytes(kwm)
    lp.astype("<f4").tofile(tmp_path / "lp.f32")
    # another phone set: the device expects the Korean phone set's id
    from kws.phonesets import KOREAN

    ko_id = KOREAN.id
    assert ko_id != en_id
    args += ["phoneset", str(ko_id), "model", str(tmp_path / "good.kwm"),
             "phoneset", str(en_id), "model", str(tmp_path / "good.kwm"), "post", str(tmp_path / "lp.f32")]
    res = fw.run(args, elf=elf)
    codes = [e["code"] for e in res.errors if e["cmd"] == "model"]
    assert codes == [c for _, c in _bad_models(kwm).values()] + [KWS_ERR_PHONESET]
    # every "post" after a refused model is refused too (no model), not a crash
    assert sum(e["cmd"] == "post" for e in res.errors) == len(_bad_models(kwm))
    assert res.models and res.models[-1]["keywords"] == 2
    assert len(res.detections) >= 2 and res.rc == 1  # 1: some commands failed
    assert res.summary["errors"] == len(res.errors)


def test_uart_refuses_bad_model_then_decodes(elf):
    kwm, lp = _posteriorgram_case()
    bad = _bad_models(kwm)
    steps = [("model", bad["corrupt"][0]), ("model", bad["truncated"][0]), ("model", kwm),
             ("post", lp.astype("<f4").tobytes())]
    out, console = fw.uart_session(steps, elf=elf)
    r = [fw.parse_uart(lines) for lines in out]
    assert r[0].errors[0]["code"] == KWS_ERR_CRC
    assert r[1].errors[0]["code"] == KWS_ERR_TRUNCATED
    assert r[2].models and not r[2].errors
    dec = _core.Decoder(kwm)
    _same_detections(dec.process(lp) + dec.flush(), r[3].detections)
    assert console.summary["errors"] == 2 and console.rc == 1  # 1: some commands failed


# --------------------------------------------------------------------------------------
# With the int8 network (kws_net.c), on the small fixture network (random weights)


@pytest.fixture(scope="module")
def fixture_net() -> bytes:
    if not _has_net():
        pytest.skip("C network not built")
    from kws.netblob import export

    return export(NET_FIXTURE)


def _ko_model(threshold: float) -> bytes:
    import kws

    return kws.enroll(["자비스야", "헤이 카카오"], lang="ko", threshold=threshold).model.to_bytes()


@needs_net
def test_logposteriors_match_host(elf, fixture_net):
    pcm = _signal(2.0, seed=1)
    dev = fw.log_posteriors(NET_FIXTURE, pcm, elf=elf)
    net = _core.Net(fixture_net)
    s = _core.NetStream(net)
    host = np.concatenate([s.push(_host_features(pcm)), s.flush()])
    assert dev.shape == host.shape
    # int8 network: identical unless an ulp of log-mel difference crosses a rounding
    # boundary of the input quantiser
    assert (dev == host).mean() > 0.99 and np.abs(dev - host).max() < 0.5


@needs_net
def test_bad_network_refused(elf, fixture_net, tmp_path):
    bad = bytearray(fixture_net)
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "bad.kwn").write_bytes(bytes(bad))
    (tmp_path / "short.kwn").write_bytes(fixture_net[:100])
    (tmp_path / "good.kwn").write_bytes(fixture_net)
    res = fw.run(["net", str(tmp_path / "bad.kwn"), "net", str(tmp_path / "short.kwn"),
                  "net", str(tmp_path / "good.kwn")], elf=elf)
    assert [e["code"] for e in res.errors] == [KWS_ERR_CRC, KWS_ERR_TRUNCATED]
    assert res.nets and res.nets[-1]["phones"] == _core.Net(fixture_net).n_phones


def _speech(text: str, voice: str, tmp_path: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    from kws.audio import load_audio

    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    return load_audio(wav)


def _speech_net_and_model(tmp_path: Path):
    """(kwn bytes, kwm bytes, pcm): the shipped English model when there is one, else
    the Korean fixture network; a low threshold so that a random network detects too."""
    import kws
    from kws.acoustic import DATA_DIR
    from kws.netblob import export

    if (DATA_DIR / "en.tflite").is_file():
        kwn = export(DATA_DIR / "en.tflite")
        kwm = kws.enroll(["hey jarvis", "computer"], lang="en", threshold=-5.0).model.to_bytes()
        pcm = _speech("hello there. hey jarvis, turn on the lights. computer.", "en", tmp_path)
    else:
        kwn = export(NET_FIXTURE)
        kwm = _ko_model(-5.0)
        pcm = _speech("안녕하세요. 자비스야, 불 켜 줘. 헤이 카카오.", "ko", tmp_path)
    return kwn, kwm, pcm


@needs_net
def test_synthesised_speech_same_detections(elf, tmp_path):
    kwn, kwm, pcm = _speech_net_and_model(tmp_path)
    _, host = _host_pipeline(kwm, kwn, pcm)
    res = fw.detect(kwm, pcm, net=_write(tmp_path / "n.kwn", kwn), elf=elf)
    assert res.rc == 0 and not res.errors
    assert host, "no detection on the host: the test would prove nothing"
    _same_detections(host, res.detections, frames_tol=1)


@needs_net
def test_same_detections_as_kws_detector(elf, tmp_path):
    """Against the Python Detector (TFLite runtime) with the shipped acoustic model: same
    keyword, start within one frame and end within three (the C network rounds as TFLite's
    reference kernels, the runtime's default kernels may differ by an int8 step; since
    format 2.1 every frame of the last phone costs a little, so where the score peaks, the
    reported end, moves with such steps: 2 frames apart on this clip), scores within 0.02.
    At a realistic threshold:
    near the emission floor (-5) a weak candidate that one side scores just above the
    threshold and the other just below starts a refractory period on one side only."""
    import kws
    from kws.acoustic import DATA_DIR
    from kws.detector import Detector

    if not (DATA_DIR / "en.tflite").is_file():
        pytest.skip("no acoustic model shipped in kws/data/acoustic")
    model = kws.enroll(["hey jarvis", "computer"], lang="en", threshold=-2.0).model
    pcm = _speech("hello there. hey jarvis, turn on the lights. computer.", "en", tmp_path)
    host = [(d.keyword_index, d.score, d.start_frame, d.end_frame) for d in Detector(model).detect(pcm)]
    res = fw.detect(model.to_bytes(), pcm, net=DATA_DIR / "en.tflite", elf=elf)
    assert {h[0] for h in host} == {0, 1} and not res.errors  # both keywords heard
    _same_detections(host, res.detections, frames_tol=1, end_tol=3)
    assert all(abs(d.exact_score - h[1]) < 0.02 for h, d in zip(host, res.detections))


@needs_net
def test_uart_stream_same_detections_as_they_happen(elf, tmp_path, fixture_net):
    kwm = _ko_model(-6.0)  # = the emission floor: any complete path is a candidate
    pcm = np.concatenate([_signal(1.5, seed=2), _signal(1.5, seed=3)])
    _, host = _host_pipeline(kwm, fixture_net, pcm)
    assert len(host) >= 2, "too few detections on the host: the test would prove little"
    out, _ = fw.uart_session([("model", kwm), ("detect", pcm.astype("<i2").tobytes())],
                             boot_args=["net", str(_write(tmp_path / "n.kwn", fixture_net))], elf=elf)
    r = fw.parse_uart(out[1])
    assert r.ends and r.ends[0]["frames"] == len(_host_features(pcm))
    _same_detections(host, r.detections, frames_tol=1)
    # Streaming: a detection that ends well before the audio does is printed before the
    # device has even received the rest of the audio.
    margin = 64 + 40  # network chunk + look-ahead, hold frames, with room to spare
    early = [(h, d) for h, d in zip(host, r.detections) if h[3] + margin < r.ends[0]["frames"]]
    assert early
    for h, d in early:
        assert d.heard < len(pcm), (d, len(pcm))


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_report_command(elf):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "firmware_report.py"), "--json", "--quick"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import json

    rep = json.loads(r.stdout)
    assert rep["ram_bytes"] <= 64 * 1024 and rep["flash_bytes"] <= 256 * 1024
    assert rep["stack_max_bytes"] > 0
    assert 39.0 < rep["instructions_per_tick"] < 41.0
    assert rep["instructions_per_second"]["frontend"] > 0
    assert rep["instructions_per_second"]["decoder"] > 0
    if _has_net():  # the network linked into flash and measured
        assert rep["network_ram_bytes"] > 0 and rep["instructions_per_second"]["network"] > 0
