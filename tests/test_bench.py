"""kws-bench (issue 7): the sweep, inputs, mixing, bad inputs, host vs device.

Makes its own audio (generated signals; espeak-ng speech where installed, else those
tests skip); never reads ../shared/data. The device test skips without the Arm
toolchain and QEMU.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kws import bench as B
from kws.bench_cli import main
from kws.enroll import enroll

ROOT = Path(__file__).resolve().parent.parent
HAVE_ESPEAK = shutil.which("espeak-ng") is not None


# --------------------------------------------------------------------------- helpers

def write_wav(path: Path, x: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.asarray(x, np.int16), 16000, subtype="PCM_16")
    return path


def tone(seconds: float, freq: float, amp: float = 3000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    return (amp * np.sin(2 * np.pi * freq * t) + rng.normal(0, 50, len(t))).astype(np.int16)


def write_manifest(folder: Path, rows: list[tuple[str, float, str, str]]) -> Path:
    lines = ["path,duration_s,speaker,lang,text"] + [f"{p},{d},{s},en,{t}" for p, d, s, t in rows]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def speak(folder: Path, name: str, text: str, voice: str = "en-us") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f"{name}.raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    from kws.audio import load_audio
    speech = load_audio(raw)
    raw.unlink()
    pad = np.random.default_rng(len(name)).normal(0, 30, 8000).astype(np.int16)
    return write_wav(folder / f"{name}.wav", np.concatenate([pad, speech, pad]))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("model") / "m.kwm"
    enroll(["jarvis", "view glass"], "en", threshold=-1.0).model.save(p)
    return p


@pytest.fixture(scope="module")
def speech_sets(tmp_path_factory):
    if not HAVE_ESPEAK:
        pytest.skip("needs espeak-ng")
    root = tmp_path_factory.mktemp("speech")
    pos, neg = root / "pos", root / "neg"
    prow, nrow = [], []
    for i, (text, voice) in enumerate([("jarvis", "en-us"), ("Jarvis!", "en-gb"), ("view glass", "en-us"),
                                       ("good morning", "en-us")]):
        f = speak(pos, f"p{i}", text.strip("!"), voice)
        prow.append((f.name, round(len(soundfile.read(f)[0]) / 16000, 3), f"s{i}", text))
    for i, text in enumerate(["hello there how are you", "turn on the lights please", "the garden is green"]):
        f = speak(neg, f"n{i}", text)
        nrow.append((f.name, round(len(soundfile.read(f)[0]) / 16000, 3), f"n{i % 2}", text))
    write_manifest(pos, prow)
    write_manifest(neg, nrow)
    return pos, neg


# --------------------------------------------------------------------------- sweep logic

def test_frr_and_fa_per_hour_on_synthetic_scores():
    best = np.array([-0.1, -0.5, -math.inf, -0.3])
    fa = np.array([-0.2, -0.4, -0.6])
    # 2 h of negatives: 1 FA/h allows 2 false alarms -> threshold just above -0.6
    frr, t = B.frr_at_budget(best, fa, 2.0, 1.0)
    assert -0.6 < t < -0.59 and frr == 0.25
    # 0.5 FA/h allows 1 -> just above -0.4: -0.5 and the never-detected one are missed
    frr, t = B.frr_at_budget(best, fa, 2.0, 0.5)
    assert -0.4 < t < -0.39 and frr == 0.5
    # no false alarm allowed at all with 0.4 h and 1 FA/h -> above the best false alarm
    frr, t = B.frr_at_budget(best, fa, 0.4, 1.0)
    assert -0.2 < t and frr == 0.75
    # fewer false alarms than allowed: every detection counts
    frr, t = B.frr_at_budget(best, fa, 10.0, 1.0)
    assert t == -math.inf and frr == 0.25
    frr, fah = B.rates_at(best, fa, 2.0, -0.3)
    assert frr == 0.5 and fah == 0.5          # -0.3 itself fires (score >= threshold)
    th, frr_c, fah_c = B.sweep(best, fa, 2.0)
    assert list(th) == sorted(set([-0.1, -0.5, -0.3, -0.2, -0.4, -0.6]))
    i = list(th).index(-0.3)
    assert frr_c[i] == 0.5 and fah_c[i] == 0.5


def test_sweep_superset_property():
    """What fires at a higher threshold is a subset of what fires at a lower one: FA/h never
    rises and FRR never falls as the threshold goes up, and each budget's threshold is
    the lowest that keeps within it."""
    rng = np.random.default_rng(3)
    best = np.concatenate([rng.normal(-0.5, 0.4, 200), [-np.inf] * 10])
    fa = rng.normal(-1.5, 0.5, 500)
    th, frr, fah = B.sweep(best, fa, 3.0)
    assert np.all(np.diff(frr) >= 0) and np.all(np.diff(fah) <= 0)
    for lo, hi in [(-1.0, -0.5), (-2.0, -0.2)]:
        assert set(np.flatnonzero(fa >= hi)) <= set(np.flatnonzero(fa >= lo))
        assert set(np.flatnonzero(best >= hi)) <= set(np.flatnonzero(best >= lo))
    for budget in (1.0, 0.5):
        frr_b, t = B.frr_at_budget(best, fa, 3.0, budget)
        assert (fa >= t).sum() / 3.0 <= budget
        below = np.nextafter(t, -np.inf)
        assert (fa >= below).sum() / 3.0 > budget   # one step lower breaks the budget
        assert frr_b == pytest.approx((best < t).mean())


def test_multi_level_sweep_is_exact_at_grid_points():
    """Level k holds the detections of a decode at grid[k]; a low-level decode may lack a
    detection a higher one has (a weak candidate's refractory period hid it)."""
    grid = [-5.0, -1.0]
    best = [np.array([-3.0, -np.inf]), np.array([-0.5, -0.8])]     # the 2nd positive appears at level -1
    fa = [np.array([-4.0, -2.0]), np.array([-0.9, -0.2])]
    th, frr, fah = B.sweep_levels(grid, best, fa, 1.0)
    at = dict(zip(th.tolist(), zip(frr.tolist(), fah.tolist())))
    assert at[-5.0] == (0.5, 2.0) and at[-1.0] == (0.0, 2.0)
    assert at[-0.5] == (0.5, 1.0)                      # within level -1: scores >= t
    frr_b, t = B.frr_at_budget_levels(grid, best, fa, 1.0, 1.0)
    assert -0.9 < t < -0.89 and frr_b == 0.0
    frr_b, t = B.frr_at_budget_levels(grid, best, fa, 1.0, 0.5)
    assert -2.0 < t < -1.99 and frr_b == 1.0         # nothing within budget detects anything
    # a single level at -inf is the plain one-decode sweep
    b1, f1 = np.array([-0.1, -0.5, -np.inf, -0.3]), np.array([-0.2, -0.4, -0.6])
    for budget in (1.0, 0.5):
        assert B.frr_at_budget_levels([-np.inf], [b1], [f1], 2.0, budget)[0] == B.frr_at_budget(b1, f1, 2.0, budget)[0]
    grid = B.threshold_grid(-6.0)
    assert grid[0] == pytest.approx(-5.99) and grid == sorted(grid) and grid[-1] < 0


def test_keyword_table_lists_false_alarms_and_stored_rates():
    lvl = B.Scored(best={"a": [-0.2, -1.0]}, fas={"a": [("f1", 1.0, 1.5, -0.5), ("f2", 0.0, 0.4, -3.0)]})
    stored = B.Scored(best={"a": [-0.2, -np.inf]}, fas={"a": [("f1", 1.0, 1.5, -0.5)]})
    (row,) = B.keyword_table(["a"], [-0.6], [-5.0], [lvl], stored, 2.0, fa_list=1)
    assert row["frr_at_stored"] == 0.5 and row["fa_per_h_at_stored"] == 0.5
    assert row["false_alarms"][0] == {"file": "f1", "start_s": 1.0, "end_s": 1.5, "score": -0.5}
    assert row["frr_at_1_fa_per_h"] == 0.0 and row["frr_at_0.5_fa_per_h"] == 0.0   # 2 h: one FA allowed
    assert row["threshold_at_0.5_fa_per_h"] == pytest.approx(-3.0)
    (row,) = B.keyword_table(["a"], [-0.6], [-5.0], [lvl], stored, 0.5, fa_list=1)
    assert row["frr_at_1_fa_per_h"] == 0.5 and row["threshold_at_1_fa_per_h"] == pytest.approx(-0.5)


@pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng")
def test_low_threshold_decode_is_superset_except_after_a_weak_candidate(speech_sets, model_path):
    """The premise of a one-decode sweep on real decoding: a detection at threshold t has one
    of the same keyword, overlapping and at least as high, in a decode at a lower threshold,
    unless that decode reported a weaker candidate of the keyword within the refractory
    period before it (which drops the keyword's tokens). That exception is why kws-bench
    decodes at a grid of thresholds instead of once at the floor."""
    from kws.audio import load_audio
    from kws.detector import Detector
    from kws.model_file import KeywordModel
    pos, neg = speech_sets
    model = KeywordModel.load(model_path)
    refr = model.refractory_frames * model.frame_shift_ms / 1000
    low = Detector(model, threshold=model.emission_floor + B.FLOOR_MARGIN)
    for t in (-1.0, -2.0):
        det = Detector(model, threshold=t)
        for f in sorted(pos.glob("*.wav")) + sorted(neg.glob("*.wav")):
            a = load_audio(f)
            lows = low.detect(a)
            for d in det.detect(a):
                same = [x for x in lows if x.keyword == d.keyword]
                assert any(x.start_s < d.end_s and d.start_s < x.end_s and x.score >= t for x in same) or any(
                    x.score < t and x.end_s <= d.end_s and d.end_s - x.end_s <= refr + 0.011 for x in same), (f, d)


# --------------------------------------------------------------------------- inputs

def test_manifest_parsing_matches_keywords_ignoring_case_and_punctuation(tmp_path):
    d = tmp_path / "pos"
    for n in ("a", "b", "c", "d"):
        write_wav(d / f"{n}.wav", tone(0.5, 300))
    write_manifest(d, [("a.wav", 0.5, "s1", "Jarvis!"), ("b.wav", 0.5, "s2", " view-glass"),
                       ("c.wav", 0.5, "", "\"View, Glass.\""), ("d.wav", 0.5, "s1", "hello")])
    s = B.load_set([d], "positives", ["jarvis", "view glass"])
    assert [c.keyword for c in s.clips] == ["jarvis", "view glass", "view glass"]
    assert s.skipped == 1 and s.speakers == 2 and s.unlabelled == 1
    assert s.clips[0].path == str(d / "a.wav") and s.hours == pytest.approx(1.5 / 3600)
    # the manifest file itself works too; negatives take every row
    n = B.load_set([d / "manifest.csv"], "negatives")
    assert len(n.clips) == 4 and n.skipped == 0


def test_contains_mode_running_speech_serves_as_both_sets(tmp_path):
    d = tmp_path / "ko"
    rows = [("a.wav", 1.0, "pfa", "고객님께서 비행기를 타셨다."), ("b.wav", 2.0, "pma", "주말에 만나요"),
            ("c.wav", 3.0, "pfa", "그리고 비행기"), ("d.wav", 4.0, "kih", "아무 말"),
            ("e.wav", 5.0, "xyz", "고객님"), ("f.wav", 6.0, "pma", "우리고객님")]
    for r in rows:
        write_wav(d / r[0], tone(0.2, 300))
    lines = ["path,duration_s,speaker,lang,text"] + [f"{p},{t},{s},ko,{x}" for p, t, s, x in rows]
    (d / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = ["고객님", "비행기"]
    pos = B.load_set([d], "positives", names, match="contains")
    # a clip naming both keywords is a positive of each; a keyword starting mid-word ("우리고객님") is not
    assert [(Path(c.path).name, c.keyword) for c in pos.clips] == [
        ("a.wav", "고객님"), ("a.wav", "비행기"), ("c.wav", "비행기"), ("e.wav", "고객님")]
    assert pos.skipped == 3           # b, d, f: no keyword at a word start
    neg = B.load_set([d], "negatives", names, match="contains")
    # every clip is a negative, but only of the keywords its text does not contain
    assert [(Path(c.path).name, c.contains) for c in neg.clips] == [
        ("a.wav", ("고객님", "비행기")), ("b.wav", ()), ("c.wav", ("비행기",)), ("d.wav", ()),
        ("e.wav", ("고객님",)), ("f.wav", ())]
    assert neg.containing == 3 and neg.hours == pytest.approx(21.0 / 3600)
    assert neg.hours_for("고객님") == pytest.approx(15.0 / 3600)  # b, c, d, f
    assert neg.hours_for("비행기") == pytest.approx(17.0 / 3600)  # b, d, e, f
    assert neg.speakers == 4 and pos.speakers == 2
    # a detection of a keyword in a negative that contains it is no false alarm; of another one, it is
    dets = [[("고객님", -0.1, 0.0, 0.5), ("비행기", -0.2, 0.5, 0.9)]] * len(neg.clips)
    sc = B.score_clips(names, [], [], neg.clips, dets)
    assert [Path(f[0]).name for f in sc.fas["고객님"]] == ["b.wav", "c.wav", "d.wav", "f.wav"]
    assert [Path(f[0]).name for f in sc.fas["비행기"]] == ["b.wav", "d.wav", "e.wav", "f.wav"]
    # exact mode keeps its meaning: the whole text must be the keyword
    assert [c.keyword for c in B.load_set([d], "positives", names).clips] == ["고객님"]
    with pytest.raises(B.BenchError, match="match must be one of"):
        B.load_set([d], "negatives", match="fuzzy")


def test_cli_contains_mode_reports_the_split(tmp_path, capsys):
    d = tmp_path / "ko"
    rows = [("a.wav", "pfa", "고객님께서 오셨다"), ("b.wav", "pma", "주말에 만나요"), ("c.wav", "nea", "아무 말")]
    for r in rows:
        write_wav(d / r[0], tone(0.4, 300))
    (d / "manifest.csv").write_text("path,duration_s,speaker,lang,text\n" + "".join(
        f"{p},0.4,{s},ko,{t}\n" for p, s, t in rows), encoding="utf-8")
    m = tmp_path / "ko.kwm"
    enroll(["고객님"], "ko", threshold=-1.0).model.save(m)
    out = tmp_path / "r.json"
    rc, text, err = run_cli(capsys, "--model", m, "--positives", d, "--negatives", d, "--match", "contains",
                            "--json", out)
    assert rc == 0, err
    assert "positives: 1 clips (고객님 1)" in text and "negatives: 3 clips" in text
    assert "1 clips contain a keyword and are negatives of the other keywords only" in text
    r = json.loads(out.read_text())
    assert r["match"] == "contains" and r["negatives"]["speakers"] == 3
    assert r["negatives"]["containing_keyword"] == 1
    # the negative hours of 고객님 leave out the clip that contains it
    assert r["negatives"]["hours_per_keyword"] == {"고객님": round(0.8 / 3600, 4)}
    assert r["host"]["keywords"][0]["negative_hours"] == round(0.8 / 3600, 4)


def test_bare_folder_sets(tmp_path):
    d = tmp_path / "bare" / "sub"
    write_wav(d / "x.wav", tone(1.0, 440))
    write_wav(d / "y.flac", tone(0.5, 440))
    neg = B.load_set([tmp_path / "bare"], "negatives")
    assert len(neg.clips) == 2 and neg.speakers == "unknown"
    assert neg.hours == pytest.approx(1.5 / 3600)
    pos = B.load_set([tmp_path / "bare"], "positives", ["jarvis"])
    assert {c.keyword for c in pos.clips} == {"jarvis"}
    with pytest.raises(B.BenchError, match="exactly one keyword"):
        B.load_set([tmp_path / "bare"], "positives", ["jarvis", "snowboy"])


def test_subset_spreads_over_the_list():
    clips = [B.Clip(str(i), 1.0) for i in range(100)]
    sub = B.subset(clips, 5)
    assert [c.path for c in sub] == ["0", "25", "50", "74", "99"]


# --------------------------------------------------------------------------- mixing

@pytest.fixture()
def mix_inputs(tmp_path):
    pos = [B.Clip(str(write_wav(tmp_path / f"p{i}.wav", tone(0.6, 500 + 50 * i, seed=i))), 0.6, "", "jarvis")
           for i in range(3)]
    neg = [B.Clip(str(write_wav(tmp_path / f"n{i}.wav", tone(1.2, 200 + 30 * i, amp=8000, seed=10 + i))), 1.2, f"s{i}")
           for i in range(4)]
    rng = np.random.default_rng(5)
    noise = [B.Clip(str(write_wav(tmp_path / f"z{i}.wav", rng.normal(0, 500 * (i + 1), 16000 * 2).astype(np.int16))),
                    2.0) for i in range(2)]
    return pos, neg, noise


def test_mixing_is_reproducible_from_the_seed(mix_inputs):
    pos, neg, noise = mix_inputs
    a = B.plan_mix(pos, neg, noise, 10.0, seed=7, chunk_s=4.0)
    b = B.plan_mix(pos, neg, noise, 10.0, seed=7, chunk_s=4.0)
    c = B.plan_mix(pos, neg, noise, 10.0, seed=8, chunk_s=4.0)
    assert a == b and len(a) >= 2
    assert B.stream_digest(a) == B.stream_digest(b)
    assert B.stream_digest(a) != B.stream_digest(c)
    # every utterance is used once, in some stream
    assert sorted(it.clip.path for ch in a for it in ch.items) == sorted(c.path for c in pos + neg)


def assert_mix_levels(chunk, pcm, kws, speech_dbfs: float, noise_dbfs: float) -> None:
    """The gap before the chunk's first utterance (noise only) and each inserted keyword
    sit at the given RMS levels, within 1.5 dB."""
    x = pcm.astype(float) / 32768
    dbfs = lambda seg: 20 * math.log10(math.sqrt(np.mean(seg ** 2)))  # noqa: E731
    assert dbfs(x[: int(chunk.items[0].gap_s * 16000)]) == pytest.approx(noise_dbfs, abs=1.5)
    for _, a, b in kws:
        assert dbfs(x[int(a * 16000): int(b * 16000)]) == pytest.approx(speech_dbfs, abs=1.5)


def test_mixed_stream_places_keywords_at_the_given_snr(mix_inputs):
    pos, neg, noise = mix_inputs
    (chunk,) = B.plan_mix(pos, neg, noise, 10.0, seed=1, chunk_s=1e9)
    pcm, kws = B.render_chunk(chunk)
    assert len(kws) == 3 and all(k == "jarvis" for k, _, _ in kws)
    assert abs(len(pcm) / 16000 - chunk.duration_s) < 0.05
    # the gap before the first utterance is noise only, at -20 dBFS - 10 dB
    assert_mix_levels(chunk, pcm, kws, speech_dbfs=-20.0, noise_dbfs=-30.0)
    (quiet,) = B.plan_mix(pos, neg, [], 10.0, seed=1, chunk_s=1e9)
    assert not B.render_chunk(quiet)[0][:800].any()   # no noise: silent gaps


def test_mix_level_moves_speech_and_noise_together(mix_inputs):
    """--mix-level: a far-field talker; the utterances at that level, the noise the SNR below."""
    pos, neg, noise = mix_inputs
    (chunk,) = B.plan_mix(pos, neg, noise, 10.0, seed=1, chunk_s=1e9, level_dbfs=-45.0)
    (loud,) = B.plan_mix(pos, neg, noise, 10.0, seed=1, chunk_s=1e9)
    assert chunk.level_dbfs == -45.0 and loud.level_dbfs == -20.0 and chunk.items == loud.items
    pcm, kws = B.render_chunk(chunk)
    assert_mix_levels(chunk, pcm, kws, speech_dbfs=-45.0, noise_dbfs=-55.0)
    assert B.stream_digest([chunk]) != B.stream_digest([loud])


def test_score_mix_hits_and_false_alarms():
    chunk = B.MixChunk(0, (), 0.0, 10.0)
    inserted = [("a", 1.0, 2.0), ("b", 5.0, 6.0)]
    dets = [("a", -0.2, 1.5, 1.9), ("a", -0.1, 5.2, 5.8), ("b", -0.7, 5.1, 5.5), ("a", -2.0, 9.0, 9.5)]
    s = B.score_mix(["a", "b"], [chunk], [dets], [inserted])
    assert s.best == {"a": [-0.2], "b": [-0.7]}
    assert [x[3] for x in s.fas["a"]] == [-0.1, -2.0] and s.fas["b"] == []


# --------------------------------------------------------------------------- CLI

def run_cli(capsys, *args) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_bad_inputs_are_one_line_errors(tmp_path, capsys, model_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    write_wav(other / "a.wav", tone(0.5, 300))
    write_manifest(other, [("a.wav", 0.5, "", "snowboy")])
    good = tmp_path / "good"
    write_wav(good / "a.wav", tone(0.5, 300))
    write_manifest(good, [("a.wav", 0.5, "", "Jarvis")])
    cases = [
        (["--positives", tmp_path / "missing", "--negatives", other], "no such file"),
        (["--positives", good, "--negatives", empty], "no audio files"),
        (["--positives", empty, "--negatives", other], "no audio files"),
        (["--positives", other, "--negatives", other], "names one of the model's keywords"),
        (["--positives", other / "a.wav", "--negatives", other], "expected a folder or a manifest"),
    ]
    for extra, msg in cases:
        rc, out, err = run_cli(capsys, "--model", model_path, *extra)
        assert rc == 1, (extra, err)
        assert err.count("\n") == 1 and err.startswith("kws-bench: error:") and msg in err, err
    rc, _, err = run_cli(capsys, "--model", tmp_path / "nope.kwm", "--positives", other, "--negatives", other)
    assert rc == 1 and err.count("\n") == 1
    rc, _, err = run_cli(capsys, "--model", model_path, "--positives", other)
    assert rc == 2
    rc, _, err = run_cli(capsys, "--model", model_path, "--positives", other, "--negatives", other,
                         "--mix-background", other)
    assert rc == 1 and "need --mix-snr" in err
    rc, _, err = run_cli(capsys, "--model", model_path, "--positives", other, "--negatives", other,
                         "--mix-snr", 10, "--mix-level", -80)
    assert rc == 1 and err.count("\n") == 1 and "--mix-level must be between -70 and 0 dBFS" in err


@pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng")
def test_cli_end_to_end_json_plot_and_jobs(tmp_path, capsys, model_path, speech_sets):
    pos, neg = speech_sets
    out1, out2 = tmp_path / "r1.json", tmp_path / "r2.json"
    rc, out, err = run_cli(capsys, "--model", model_path, "--positives", pos, "--negatives", neg,
                           "--json", out1, "--list", 2)
    assert rc == 0, err
    assert "positives: 3 clips (jarvis 2, view glass 1), 1 rows skipped" in out
    assert "host (clips):" in out and "FRR@1FA/h" in out and "h per minute" in out
    assert "kws-bench: host:" in err                     # progress on stderr
    r = json.loads(out1.read_text())
    assert r["negatives"]["speakers"] == 2 and r["positives"]["skipped_rows"] == 1
    # every level really decodes at its own threshold: the lowest level has the most detections
    assert r["host"]["keywords"][0]["det_curve"]["fa_per_h"][0] > r["host"]["keywords"][0]["fa_per_h_at_stored"]
    kw = {k["keyword"]: k for k in r["host"]["keywords"]}
    assert set(kw) == {"jarvis", "view glass"} and kw["jarvis"]["positives"] == 2
    for k in kw.values():
        assert 0 <= k["frr_at_1_fa_per_h"] <= 1 and k["stored_threshold"] == pytest.approx(-1.0)
        for fa in k["false_alarms"]:
            assert set(fa) == {"file", "start_s", "end_s", "score"} and fa["file"].startswith(str(neg))
    # two processes give the same figures
    rc, _, err = run_cli(capsys, "--model", model_path, "--positives", pos, "--negatives", neg,
                         "--json", out2, "--jobs", 2)
    assert rc == 0, err
    r2 = json.loads(out2.read_text())
    assert [k["det_curve"] for k in r2["host"]["keywords"]] == [k["det_curve"] for k in r["host"]["keywords"]]
    pytest.importorskip("matplotlib")
    png = tmp_path / "det.png"
    rc, _, err = run_cli(capsys, "--model", model_path, "--positives", pos, "--negatives", neg,
                         "--mix-snr", 10, "--mix-seed", 3, "--mix-background", neg, "--plot", png,
                         "--json", out2, "--mix-save", tmp_path / "streams")
    assert rc == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
    r3 = json.loads(out2.read_text())
    assert r3["mix"]["seed"] == 3 and sum(k["positives"] for k in r3["host"]["keywords"]) == 3
    assert list((tmp_path / "streams").glob("mix-*.wav"))
    for k in r3["host"]["keywords"]:
        for fa in k["false_alarms"]:   # named by stream and the utterance under it
            assert fa["file"].startswith("mix-") and ("gap" in fa["file"] or str(neg) in fa["file"]
                                                      or str(pos) in fa["file"])


def _fw():
    p = B.find_firmware_tool()
    if p is None:
        return None
    return B.load_firmware_module(p)


@pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng")
def test_device_mode_qemu(tmp_path, capsys, model_path, speech_sets, monkeypatch):
    fw = _fw()
    if fw is None or fw.missing_tools():
        pytest.skip(fw.missing_tools() if fw else "no source checkout")
    monkeypatch.chdir(ROOT)
    pos, neg = speech_sets
    out = tmp_path / "d.json"
    rc, text, err = run_cli(capsys, "--model", model_path, "--positives", pos, "--negatives", neg,
                            "--device", "qemu", "--limit", 2, "--json", out, "--jobs", 2)
    assert rc == 0, err
    assert "device (QEMU" in text and "host vs device at the stored thresholds" in text
    assert "reference kernels" in text
    r = json.loads(out.read_text())
    cmp = r["device"]["comparison"]["at_sweep_floor"]
    own = r["device"]["comparison"]["firmware_decoder_vs_host_decoder_on_device_posteriors"]
    assert own["disagreements"] == []          # the same C decoder on the same posteriors
    assert cmp["units"] == 4 and cmp["host_detections"] > 0 and cmp["matched"] > 0
    # the C int8 network is close to TFLite: most detections are the same candidates
    assert cmp["matched"] >= 0.5 * max(cmp["host_detections"], cmp["device_detections"])
    assert cmp["mean_abs_score_diff"] < 0.2


def test_device_port_errors_are_one_line(tmp_path, capsys, model_path):
    d = tmp_path / "p"
    write_wav(d / "a.wav", tone(0.5, 300))
    write_manifest(d, [("a.wav", 0.5, "", "jarvis")])
    for extra, msg in [(["--device", "socket://127.0.0.1:1"], "--device socket://127.0.0.1:1"),
                       (["--device", "socket://127.0.0.1:1", "--baud", "0"], "--baud must be positive")]:
        rc, _, err = run_cli(capsys, "--model", model_path, "--positives", d, "--negatives", d, *extra)
        assert rc == 1 and err.count("\n") == 1 and err.startswith("kws-bench: error:") and msg in err, err


@pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng")
def test_device_port_over_qemu_uart(tmp_path, capsys, model_path, speech_sets, monkeypatch):
    """--device PORT against the firmware in QEMU, its UART0 a TCP serial port: the device
    streams its own posteriors and detections; the firmware's decoder and the host's C
    decoder agree exactly on them; afterwards the device is back on its flashed model."""
    fw = _fw()
    if fw is None or fw.missing_tools():
        pytest.skip(fw.missing_tools() if fw else "no source checkout")
    from kws.acoustic import DATA_DIR
    from kws.netblob import export
    kwn = tmp_path / "en.kwn"
    kwn.write_bytes(export(DATA_DIR / "en.tflite"))
    pos, neg = speech_sets
    out = tmp_path / "port.json"
    with fw.SerialDevice(tmp_path / "flash.bin", boot_args=["net", str(kwn)], elf=fw.build()) as dev:
        rc, text, err = run_cli(capsys, "--model", model_path, "--positives", pos, "--negatives", neg,
                                "--device", dev.url, "--limit", 2, "--json", out)
    assert rc == 0, err
    assert f"device (serial {dev.url} at 115200 baud" in text
    assert "device back on its flashed model: source=" in text
    r = json.loads(out.read_text())
    assert r["device"]["target"] == dev.url and r["device"]["throughput"]["jobs"] == 1
    own = r["device"]["comparison"]["firmware_decoder_vs_host_decoder_on_device_posteriors"]
    assert own["disagreements"] == [] and own["device_detections"] > 0
    cmp = r["device"]["comparison"]["at_sweep_floor"]
    assert cmp["units"] == 4 and cmp["matched"] >= 0.5 * max(cmp["host_detections"], cmp["device_detections"])
    assert r["device"]["restored"].startswith("source=")
