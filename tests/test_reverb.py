"""kws.reverb and kws-bench --reverb: recordings heard across a simulated room.

The rooms must have the reverberation time asked for (measured on the impulse responses by
Schroeder backward integration, as acousticians measure a room), keep a clip's timing and
power, repeat exactly, and reach every decoding process; a bad setting is one line. Skips
where pyroomacoustics (the [bench] extra) is not installed, except the refusal that says so.
"""

from __future__ import annotations

import json
import math
import shutil
import sys

import numpy as np
import pytest
import soundfile

from kws import bench as B
from kws import reverb as R
from kws.enroll import enroll
from test_bench import run_cli as _run, speak, write_manifest  # the bench tests' CLI runner and speech

HAVE_ROOMS = True
try:
    import pyroomacoustics  # noqa: F401
except ImportError:
    HAVE_ROOMS = False
needs_rooms = pytest.mark.skipif(not HAVE_ROOMS, reason="needs pyroomacoustics (the [bench] extra)")


def measured_rt60(h: np.ndarray, fs: int = 16000) -> float:
    """T20 of an impulse response: the time the Schroeder decay takes from -5 to -25 dB, x3."""
    edc = np.cumsum((h ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    t5, t25 = np.argmax(edc_db <= -5), np.argmax(edc_db <= -25)
    return 3.0 * (t25 - t5) / fs


@needs_rooms
@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_rooms_have_the_asked_reverberation_time(rt60):
    bank = R.room_bank(rt60)
    assert len(bank) == R.N_ROOMS
    rts = [measured_rt60(h) for h in bank]
    # Sabine's formula is a diffuse-field estimate: the image-source rooms come within a
    # few tens of percent of it, and a longer asked time gives longer rooms
    assert 0.6 * rt60 < float(np.median(rts)) < 1.4 * rt60, rts
    for h in bank:
        assert np.sum(h ** 2) == pytest.approx(1.0)
        assert int(np.argmax(np.abs(h))) < 40  # the direct path comes first: a clip keeps its timing


@needs_rooms
def test_longer_time_gives_more_late_energy_and_banks_repeat():
    short, long_ = R.room_bank(0.3), R.room_bank(0.8)
    late = lambda bank: float(np.median([np.sum(h[1600:] ** 2) for h in bank]))  # after 100 ms
    assert late(long_) > 2 * late(short)
    R.room_bank.cache_clear()
    again = R.room_bank(0.3)
    assert all(np.array_equal(a, b) for a, b in zip(short, again))


@needs_rooms
def test_reverberate_keeps_length_power_and_type():
    rng = np.random.default_rng(0)
    x = np.zeros(16000, np.int16)
    x[4000:4800] = (rng.normal(0, 3000, 800)).astype(np.int16)   # a burst, then silence
    h = R.pick(R.room_bank(0.6), "some/clip.wav")
    y = R.reverberate(x, h)
    assert y.dtype == np.int16 and len(y) == len(x)
    px, py = np.mean(x.astype(float) ** 2), np.mean(y.astype(float) ** 2)
    assert py == pytest.approx(px, rel=0.02)
    tail = lambda s: float(np.sum(s[5600:9600].astype(float) ** 2))  # 50-300 ms after the burst
    assert tail(y) > 1000 * max(tail(x), 1.0)       # the room rings on after the burst ends
    assert R.reverberate(np.zeros(0, np.int16), h).size == 0
    f = R.reverberate(x.astype(np.float64) / 32768, h)
    assert f.dtype == np.float64 and len(f) == len(x)


@needs_rooms
def test_the_room_is_picked_by_path():
    bank = R.room_bank(0.4)
    picks = {R.pick(bank, f"clip{i}.wav").tobytes() for i in range(200)}
    assert len(picks) > R.N_ROOMS // 2                 # spread over the bank
    assert R.pick(bank, "a.wav") is R.pick(bank, "a.wav")


def test_bad_settings_are_one_line(monkeypatch):
    for bad in (0.0, 0.1, 2.0, float("nan")):
        with pytest.raises(R.ReverbError, match="reverberation time must be"):
            R.room_bank(bad)
    monkeypatch.setitem(sys.modules, "pyroomacoustics", None)   # as if not installed
    R.room_bank.cache_clear()
    with pytest.raises(R.ReverbError, match=r"pip install 'kws-toolkit\[bench\]'"):
        R.room_bank(0.5)
    R.room_bank.cache_clear()


# --------------------------------------------------------------------------- kws-bench --reverb

@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    if not shutil.which("espeak-ng"):
        pytest.skip("needs espeak-ng")
    root = tmp_path_factory.mktemp("rv")
    for kind, texts in (("pos", ["jarvis", "jarvis", "view glass"]),
                        ("neg", ["hello there how are you", "the garden is green today"])):
        rows = []
        for i, text in enumerate(texts):
            f = speak(root / kind, f"{kind}{i}", text, ("en-us", "en-gb")[i % 2])
            rows.append((f.name, round(len(soundfile.read(f)[0]) / 16000, 3), f"s{i}", text))
        write_manifest(root / kind, rows)
    model = root / "m.kwm"
    enroll(["jarvis", "view glass"], "en", threshold=-1.0).model.save(model)
    return model, root / "pos", root / "neg"


@needs_rooms
def test_bench_reverb_changes_scores_repeats_and_reaches_every_process(tmp_path, capsys, sets):
    model, pos, neg = sets
    base = ["--model", model, "--positives", pos, "--negatives", neg]
    rc, out, err = _run(capsys, *base, "--json", tmp_path / "dry.json")
    assert rc == 0, err
    dry = json.loads((tmp_path / "dry.json").read_text())
    assert dry["reverb"] is None and "reverberation" not in out
    wet = []
    for jobs in (1, 2):
        rc, out, err = _run(capsys, *base, "--reverb", 0.8, "--jobs", jobs, "--json", tmp_path / f"wet{jobs}.json")
        assert rc == 0, err
        assert "reverberation: every recording in one of 40 simulated rooms with RT60 0.8 s" in out
        wet.append(json.loads((tmp_path / f"wet{jobs}.json").read_text()))
    assert wet[0]["reverb"]["rt60_s"] == 0.8 and wet[0]["reverb"]["rooms"] == R.N_ROOMS
    curves = lambda r: [k["det_curve"] for k in r["host"]["keywords"]]
    assert curves(wet[0]) == curves(wet[1])          # the same rooms in one process and in two
    assert curves(wet[0]) != curves(dry)             # and the rooms are really heard
    B.set_reverb(None)


@needs_rooms
def test_mixed_streams_put_the_utterances_in_the_room_not_the_noise(tmp_path):
    x = np.zeros(8000, np.int16)
    x[1000:2600] = np.random.default_rng(3).normal(0, 4000, 1600).astype(np.int16)
    clip = B.Clip(str(tmp_path / "u.wav"), 0.5, "s", "jarvis")
    soundfile.write(clip.path, x, 16000, subtype="PCM_16")
    chunk = B.plan_mix([clip], [], [], 10.0, seed=0, chunk_s=4.0)[0]
    try:
        B.set_reverb(None)
        dry, _ = B.render_chunk(chunk)
        B.set_reverb(0.8)
        wet, kws = B.render_chunk(chunk)
    finally:
        B.set_reverb(None)
    assert len(wet) == len(dry) and kws and kws[0][0] == "jarvis"
    start = int(kws[0][1] * 16000)
    after = slice(start + 2700, start + 6000)              # the 200 ms after the burst ended
    assert np.sum(wet[after].astype(float) ** 2) > 100 * max(np.sum(dry[after].astype(float) ** 2), 1.0)


def test_bench_refuses_a_bad_reverb_in_one_line(tmp_path, capsys):
    d = tmp_path / "s"
    d.mkdir()
    soundfile.write(d / "a.wav", np.zeros(8000, np.int16), 16000, subtype="PCM_16")
    (d / "manifest.csv").write_text("path,duration_s,speaker,lang,text\na.wav,0.5,,en,jarvis\n")
    model = tmp_path / "m.kwm"
    enroll(["jarvis"], "en", threshold=-1.0).model.save(model)
    rc, _, err = _run(capsys, "--model", model, "--positives", d, "--negatives", d, "--reverb", 5)
    assert rc == 1 and err.count("\n") == 1 and "reverberation time must be 0.15 to 1.2 s" in err
    assert math.isclose(R.RT60_RANGE[1], 1.2)
    B.set_reverb(None)
