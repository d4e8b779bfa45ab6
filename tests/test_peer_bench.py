"""tools/peer_bench.py: PocketSphinx's keyphrase spotting on kws-bench's protocol (docs/bench.md's
peer figures). Skips without the ``[peers]`` extra or flite; makes its own audio with flite's voices
(built on recorded speakers: PocketSphinx spots none of espeak-ng's renditions of 'jarvis' even at
kws_threshold 1e-50, and every one of four flite voices')."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(Path(__file__).parent))
import peer_bench  # noqa: E402
from test_bench import write_manifest, write_wav  # noqa: E402

ps = pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="needs flite")


def speak(folder: Path, name: str, text: str, voice: str) -> Path:
    from kws.audio import load_audio
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f"{name}.raw.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True, timeout=60)
    speech = load_audio(raw)
    raw.unlink()
    pad = np.random.default_rng(len(name)).normal(0, 30, 8000).astype(np.int16)
    return write_wav(folder / f"{name}.wav", np.concatenate([pad, speech, pad]))


def test_threshold_units_round_trip():
    # kws_threshold(s) is the value PocketSphinx turns into s: logmath_log(t) >> 10, base 1.0001
    for s in (-1124, -300, -1, 0, 5):
        t = peer_bench.kws_threshold(s)
        assert (int(np.floor(np.log(t) / np.log(1.0001)))) >> 10 == s
        # and a segment's reported prob, exp((s - KWS_MAX) units), reads back as s
        assert peer_bench.seg_score(np.exp((s - peer_bench.KWS_MAX) * np.log(1.0001))) == s
    assert abs(peer_bench.kws_threshold(-1124) / 1e-50 - 1) < 0.2


def test_false_alarms_counted_with_kws_refractory_second():
    dets = [("a", -5.0, 0.0, 0.6), ("a", -3.0, 0.9, 1.5), ("b", -4.0, 1.0, 1.4), ("a", -2.0, 2.0, 2.7)]
    # the second 'a' ends 0.9 s after the first: not another; 'b' is counted on its own
    assert peer_bench.refractory(dets) == [("a", -5.0, 0.0, 0.6), ("b", -4.0, 1.0, 1.4), ("a", -2.0, 2.0, 2.7)]
    assert peer_bench.refractory(dets, 0.5) == sorted(dets, key=lambda d: d[3])


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("peer")
    pos, neg = root / "pos", root / "neg"
    prow = []
    for i, voice in enumerate(["kal", "slt", "rms"]):
        f = speak(pos, f"p{i}", "jarvis", voice)
        prow.append((f.name, 1.5, f"s{i}", "jarvis"))
    nrow = []
    for i, text in enumerate(["good morning everyone", "the weather is fine today", "please open the window"]):
        f = speak(neg, f"n{i}", text, "awb")
        nrow.append((f.name, 2.0, f"t{i}", text))
    return write_manifest(pos, prow), write_manifest(neg, nrow)


def test_a_decode_at_a_detections_own_score_keeps_it_and_one_unit_above_drops_it(sets, tmp_path):
    from kws.audio import load_audio
    pos, _ = sets
    d = tmp_path / "k.dict"
    assert peer_bench.dictionary(["jarvis"], str(d)) == {"jarvis": "pocketsphinx"}
    pcm = load_audio(pos.parent / "p0.wav")

    def best(threshold: int) -> float | None:
        peer_bench._init(["jarvis"], ["jarvis"], [threshold], str(d))
        res, err = peer_bench._one(type("U", (), {"path": str(pos.parent / "p0.wav")})())
        assert err is None and res["audio_s"] == pytest.approx(len(pcm) / 16000)
        return max((s for _, s, _, _ in res["dets"]), default=None)

    s = best(-1124)
    assert s is not None, "PocketSphinx should spot flite's 'jarvis' at kws_threshold 1e-50"
    assert best(int(s)) == s
    assert best(int(s) + 1) is None


def test_report_on_synthesised_sets(sets, tmp_path, capsys):
    pos, neg = sets
    out = tmp_path / "r.json"
    assert peer_bench.main(["--keyword", "jarvis", "--keyword", "snowboy", "--positives", str(pos),
                            "--negatives", str(neg), "--json", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("peer_bench: ") for line in err), err  # progress on stderr, its own name
    r = json.loads(out.read_text())
    assert r["peer"].startswith("pocketsphinx ")
    assert r["dictionary"] == {"jarvis": "pocketsphinx", "snowboy": "kws"}  # a word its dictionary lacks
    rows = {k["keyword"]: k for k in r["host"]["keywords"]}
    assert rows["jarvis"]["positives"] == 3 and rows["snowboy"]["positives"] == 0
    c = rows["jarvis"]["det_curve"]
    assert c["frr"] == sorted(c["frr"]) and c["fa_per_h"] == sorted(c["fa_per_h"], reverse=True)
    # the sweep's reading at 1 FA/h is a point of its curve within the budget
    hours = rows["jarvis"]["negative_hours"]
    assert hours == pytest.approx(6.0 / 3600, rel=0.05)  # rounded to 4 decimals in the report
    ok = [f for f, fa in zip(c["frr"], c["fa_per_h"]) if fa <= 1.0]
    assert rows["jarvis"]["frr_at_1_fa_per_h"] == (min(ok) if ok else 1.0)
    assert rows["jarvis"]["frr_at_1_fa_per_h"] <= 1 / 3  # flite's clean 'jarvis' is PocketSphinx's easy case
    assert r["host"]["throughput"]["x_real_time"] > 0


def test_bad_input_refused_in_one_line(tmp_path, capsys):
    assert peer_bench.main(["--keyword", "jarvis", "--positives", str(tmp_path / "none"),
                            "--negatives", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0], err
    assert peer_bench.main(["--keyword", "", "--positives", str(tmp_path), "--negatives", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("peer_bench: error: ")


@pytest.mark.parametrize("voice", ["rms", "awb"])
def test_openwakeword_stream_fires_where_pyopen_wakeword_does(tmp_path, voice):
    oww_mod = pytest.importorskip("pyopen_wakeword")
    rng = np.random.default_rng(1)
    pad = lambda n: rng.normal(0, 30, n).astype(np.int16)  # noqa: E731
    ours = peer_bench.OpenWakeWordStream("alexa")
    feats = oww_mod.OpenWakeWordFeatures.from_builtin()
    head = oww_mod.OpenWakeWord.from_builtin(oww_mod.Model.ALEXA)
    peaks = {}
    for name, text in (("wake", "alexa, what is the weather like today"),
                       ("other", "good morning everyone, the weather is fine today")):
        pcm = speak(tmp_path, f"{voice}_{name}", text, voice)
        from kws.audio import load_audio
        a = np.concatenate([pad(32000), load_audio(pcm), pad(16000)])
        feats.reset()
        head.reset()
        theirs = np.array([p for i in range(0, len(a), 1280) for e in feats.process_streaming(a[i:i + 1280].tobytes())
                           for p in head.process_streaming(e)])
        ours.reset()
        mine = np.array(ours.process(np.concatenate([np.zeros(8 * 16000, np.int16), a])))  # its 8 s of zeros first
        assert abs(len(mine) - len(theirs)) <= 1
        peaks[name] = (mine.max(), theirs.max(), int(mine.argmax()), int(theirs.argmax()))
    m, t, im, it = peaks["wake"]
    assert m > 0.5 and t > 0.5 and abs(im - it) <= 2, peaks
    m, t, _, _ = peaks["other"]
    assert m < 0.1 and t < 0.1, peaks


def test_openwakeword_stream_mels_are_the_whole_signals():
    """Streamed in 80 ms steps, the mel frames are those of the mel model run over the whole
    signal at once (openWakeWord's 480 samples of context carried between steps)."""
    pytest.importorskip("pyopen_wakeword")
    from ai_edge_litert.interpreter import Interpreter
    ours = peer_bench.OpenWakeWordStream("alexa")
    steps = 40
    x = np.random.default_rng(3).normal(0, 3000, steps * 1280).astype(np.int16)
    got = []
    for k in range(steps):
        ours.process(x[k * 1280:(k + 1) * 1280])
        got.append(ours.mels[-8:].copy())
    full = Interpreter(model_path=ours.mel_path, num_threads=1)
    full.resize_tensor_input(full.get_input_details()[0]["index"], [1, 480 + len(x)])
    full.allocate_tensors()
    want = peer_bench.OpenWakeWordStream._run(full, np.concatenate([np.zeros(480, np.float32), x])[None, :]
                                              .astype(np.float32)).reshape(-1, 32) / 10.0 + 2.0
    # frame 0 covers the zero context, whose log floor the model sets from the loudest frame of
    # its input (80 dB below it), which differs between one step and the whole signal
    np.testing.assert_allclose(np.concatenate(got)[1:], want[1:steps * 8], atol=1e-3)
