"""tools/train_acoustic.py --teacher: the soft targets are the teachers' mean posterior,
each teacher fed the features in the normalisation it was trained with.

Fake teachers (any object with Keras' ``predict``) stand in for the networks, so this runs
without TensorFlow; the training itself is measured in docs/acoustic-models.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import train_acoustic  # noqa: E402


class _Teacher:
    """Posterior = softmax(raw @ w) of the *raw* features it recovers from its own normalisation."""

    def __init__(self, w: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        self.w, self.mean, self.std = w, mean, std
        self.calls = 0

    def predict(self, x, batch_size=None, verbose=0):
        self.calls += 1
        return _softmax((x * self.std + self.mean) @ self.w)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_teacher_targets_average_teachers_in_their_own_normalisation():
    rng = np.random.default_rng(0)
    n_mels, n_phones = 3, 4
    raw = rng.normal(5.0, 2.0, (2100, 6, n_mels)).astype(np.float32)  # more than one piece of 2048
    mean_s, std_s = raw.mean((0, 1)).astype(np.float64), raw.std((0, 1)).astype(np.float64)
    x = ((raw - mean_s) / std_s).astype(np.float32)
    teachers, want = [], 0.0
    for k in range(3):
        w = rng.normal(0, 0.5, (n_mels, n_phones))
        tm, ts = rng.normal(0, 3, n_mels), rng.uniform(0.5, 2.0, n_mels)
        t = _Teacher(w, tm, ts)
        teachers.append((t, tm, ts))
        want = want + _softmax(raw @ w)
    want = want / 3
    got = train_acoustic.teacher_targets(teachers, x, mean_s, std_s)
    assert got.shape == (2100, 6, n_phones)
    np.testing.assert_allclose(got.astype(np.float32), want, atol=2e-3)  # float16 storage
    np.testing.assert_allclose(got.astype(np.float32).sum(-1), 1.0, atol=5e-3)
    assert all(t.calls == 2 for t, _, _ in teachers)  # two pieces, each teacher once per piece


def test_missing_teacher_files_stop_before_training(tmp_path):
    """A folder that is not a training run's --out is named at once (before TensorFlow loads)."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "train_acoustic.py"), "--lang", "en",
                        "--out", str(tmp_path / "o"), "--teacher", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no en_float.keras" in r.stderr
    assert not (tmp_path / "o").exists()


def test_teacher_affines_map_this_runs_normalisation_to_each_teachers():
    """--consistent feeds the teachers x * a + b of the student's (augmented) input: that must
    be exactly the teacher's own normalisation of the raw features, and a SpecAugment mask
    (0 in the student's normalisation) must reach each teacher as the mean, not as its 0."""
    rng = np.random.default_rng(1)
    raw = rng.normal(5.0, 2.0, (50, 4, 3))
    mean_s, std_s = raw.mean((0, 1)), raw.std((0, 1))
    x = (raw - mean_s) / std_s
    teachers = [("m0", rng.normal(0, 3, 3), rng.uniform(0.5, 2.0, 3)),
                ("m1", rng.normal(0, 3, 3), rng.uniform(0.5, 2.0, 3))]
    got = train_acoustic.teacher_affines(teachers, mean_s, std_s)
    assert [m for m, _, _ in got] == ["m0", "m1"]
    for (_, tm, ts), (_, a, b) in zip(teachers, got):
        assert a.dtype == np.float32 and b.dtype == np.float32
        np.testing.assert_allclose(x * a + b, (raw - tm) / ts, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(0 * a + b, (mean_s - tm) / ts, rtol=1e-6)


def test_consistent_without_teacher_and_bad_init_stop_at_once(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--consistent"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--consistent needs at least one --teacher" in r.stderr
    r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--mixup", "0.4"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--mixup needs --consistent" in r.stderr
    for opt in (["--temperature", "3"], ["--emission-weight", "1"]):
        r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o")] + opt,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "need --consistent" in r.stderr, opt
    r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--consistent",
                        "--teacher", str(tmp_path), "--temperature", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--temperature must be > 0" in r.stderr
    r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--label-weight", "0.3"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--label-weight needs --consistent" in r.stderr
    for bad in (["--label-weight", "1.5"], ["--label-weight", "0.3", "--mixup", "0.4"]):
        r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--consistent",
                            "--teacher", str(tmp_path)] + bad, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "--label-weight must be in 0..1" in r.stderr, bad
    for bad in (["--swa", "4"], ["--swa", "1", "--teacher", str(tmp_path)],
                ["--swa", "12", "--epochs", "10", "--teacher", str(tmp_path)]):
        r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o")] + bad,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "--swa N needs --teacher and 2 <= N <= --epochs" in r.stderr, bad
    r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--init", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--init" in r.stderr and "no en_float.keras" in r.stderr
    assert not (tmp_path / "o").exists()


class _PhoneNet:
    """Posteriors that put phone `seq[k]` on frames [bounds[k], bounds[k+1]) of the 200-frame
    utterance (whatever the input): a stand-in for a trained network, enough to check that the
    alignment follows the network and not the flat start."""

    def __init__(self, n_phones: int, labels: np.ndarray) -> None:
        self.n_phones, self.labels = n_phones, labels

    def predict(self, x, batch_size=None, verbose=0):
        out = np.full((len(x), train_acoustic.SEG, self.n_phones), 0.01 / self.n_phones, np.float32)
        n = min(len(self.labels), train_acoustic.SEG)
        out[:, np.arange(n), self.labels[:n]] += 0.99
        return out


def test_align_from_init_follows_the_network_and_maps_speed_copies():
    """--align-from-init: utterances without a PocketSphinx alignment are force-aligned on the
    --init network's posteriors; their speed copies get the same labels on their own time
    axis; an utterance that already has an alignment keeps it."""
    from kws.phonesets import ENGLISH as pset
    words = [[*"JH AA R V IH S".split()]]
    ids = [pset.index(p) for p in words[0]]
    T = 200
    truth = np.zeros(T, np.int32)  # silence, then the six phones with uneven lengths, silence
    bounds = [20, 30, 90, 100, 110, 170, 180]
    for k, p in enumerate(ids):
        truth[bounds[k]:bounds[k + 1]] = p
    feats = [np.zeros((T, train_acoustic.N_MELS), np.float32),           # 0: to align
             np.zeros((round(T / 0.9), train_acoustic.N_MELS), np.float32),  # 1: its 0.9 speed copy
             np.zeros((T, train_acoustic.N_MELS), np.float32)]           # 2: already aligned
    utts = [{"set": "s", "path": "a.flac", "part": "train", "words": words},
            {"set": "s", "path": "a.flac", "part": "train_sp", "speed": 0.9, "words": words},
            {"set": "s", "path": "b.flac", "part": "train", "words": words}]
    flat = {u: train_acoustic.uniform_align(feats[u], words, pset) for u in range(3)}
    given = np.full(T, ids[0], np.int32)
    ali = dict(flat)
    ali[2] = given
    net = _PhoneNet(len(pset.phones), truth)
    out, n = train_acoustic.align_with_model(net, feats, utts, [u["words"] for u in utts], pset, ali, flat,
                                             [0, 2], prior_scale=0.0)
    assert n == 1
    assert np.mean(out[0] == truth) > 0.97                   # follows the network ...
    assert np.mean(flat[0] == truth) < 0.8                   # ... which the flat start does not
    src = np.minimum(np.round(np.arange(len(feats[1])) * 0.9).astype(int), T - 1)
    np.testing.assert_array_equal(out[1], out[0][src])     # the speed copy, on its own axis
    assert out[2] is given                                   # an existing alignment is kept


def test_align_from_init_needs_init(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    r = subprocess.run([sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--align-from-init"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--align-from-init needs --init DIR" in r.stderr
    assert not (tmp_path / "o").exists()


def _lse(v, axis, keepdims):
    m = np.max(v, axis=axis, keepdims=True)
    r = m + np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True))
    return r if keepdims else np.squeeze(r, axis)


def test_noise_mixed_on_log_mel_matches_the_mixed_waveform():
    """--noisy-student mixes noise into features, not samples: the result must be the log-mel of
    the summed waveform at the SNR asked, up to the speech x noise cross term."""
    from kws.features import log_mel
    rng = np.random.default_rng(3)
    t = np.arange(32000) / 16000
    env = np.clip(np.sin(2 * np.pi * 1.5 * t), 0, None) ** 2  # syllable-like bursts with pauses
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    speech = env * sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 25)) * 3000
    noise = np.convolve(rng.normal(0, 1, len(t)), np.ones(4) / 4, "same") * 2000  # coloured
    s, n = log_mel(speech.astype(np.int16)), log_mel(noise.astype(np.int16))
    for snr in (0.0, 10.0, 20.0):
        g = np.sqrt(np.mean(np.exp(s)) / (np.mean(np.exp(n)) * 10 ** (snr / 10)))
        want = log_mel(np.clip(np.round(speech + g * noise), -32768, 32767).astype(np.int16))
        got = train_acoustic.mixed_log_mel(s, n, snr, _lse, np.stack)
        moved = np.abs(want - s).mean()
        assert moved > 0.5, snr  # the noise is really there: the check below means something
        assert np.abs(got - want).mean() < 0.1 * moved and np.median(np.abs(got - want)) < 0.1, snr
    # far above the noise, speech comes back unchanged (not the pauses: noise fills those at any SNR);
    # batched segments each get their own level
    loud = s > s.max() - 12  # within about 50 dB of the loudest bin
    np.testing.assert_allclose(train_acoustic.mixed_log_mel(s, n, 80.0, _lse, np.stack)[loud], s[loud], atol=1e-3)
    both = train_acoustic.mixed_log_mel(np.stack([s, s + 5]), np.stack([n, n]), 10.0, _lse, np.stack)
    np.testing.assert_allclose(both[1] - 5, both[0], atol=1e-4)  # SNR is relative to each segment


def test_noisy_student_needs_consistent_and_a_noise_folder(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    base = [sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o")]
    r = subprocess.run(base + ["--noisy-student", "0.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--noisy-student P needs --consistent" in r.stderr
    teach = base + ["--consistent", "--teacher", str(tmp_path)]
    r = subprocess.run(teach + ["--noisy-student", "1.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "0 <= P <= 1" in r.stderr
    r = subprocess.run(teach + ["--noisy-student", "0.5", "--student-snr", "20", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "LO <= HI" in r.stderr
    r = subprocess.run(teach + ["--noisy-student", "0.5", "--student-noise", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no manifest.csv" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for opt in (["--student-snr", "0", "10"], ["--student-noise", str(tmp_path)]):  # without --noisy-student
        r = subprocess.run(teach + opt, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "only go with --noisy-student" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_reverb_on_log_mel_matches_the_reverberant_waveform():
    """--student-reverb puts segments in a room in the feature domain: the result must be close to
    the log-mel of the waveform convolved with a late tail of that RT60 and direct-to-reverberant
    ratio (an exponentially decaying noise burst after 20 ms), much closer than the dry features."""
    from kws.features import log_mel
    rng = np.random.default_rng(5)
    t = np.arange(48000) / 16000
    env = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 3  # syllables with pauses for the tail to fill
    f0 = 110 + 25 * np.sin(2 * np.pi * 0.5 * t)
    speech = env * sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 30)) * 3000
    dry = log_mel(speech.astype(np.int16)).astype(np.float64)
    for rt60, drr in ((0.3, 3.0), (0.6, 0.0), (0.9, -6.0)):
        n = int(1.5 * rt60 * 16000)
        h = rng.normal(0, 1, n) * np.exp(-3 * np.log(10) * np.arange(n) / 16000 / rt60)  # amplitude: 60 dB of power
        h[:320] = 0.0  # the first 20 ms: direct sound
        h *= np.sqrt(10 ** (-drr / 10) / np.sum(h ** 2))
        h[0] = 1.0
        wet = log_mel(np.clip(np.round(np.convolve(speech, h)[:len(speech)]), -32768, 32767).astype(np.int16))
        kern = train_acoustic.late_reverb_kernel(len(dry), np.full((1, 1, 1), rt60), np.full((1, 1, 1), drr))
        got = train_acoustic.reverb_log_mel(dry[None], kern)[0]
        moved = np.abs(wet - dry).mean()
        assert moved > 0.5, (rt60, drr)  # the room is really there
        assert np.abs(got - wet).mean() < 0.25 * moved, (rt60, drr, np.abs(got - wet).mean(), moved)
    # the tail only adds power, later frames only, and its energy is drr below the direct sound
    kern = train_acoustic.late_reverb_kernel(400, np.full((1, 1, 1), 0.5), np.full((1, 1, 1), 0.0))[0]
    assert np.all(np.triu(kern) == 0) and np.all(np.diag(kern, -1) == 0)
    assert abs(kern[-1].sum() - 1.0) < 0.01
    kern = train_acoustic.late_reverb_kernel(len(dry), np.full((1, 1, 1), 0.5), np.full((1, 1, 1), 0.0))
    assert np.all(train_acoustic.reverb_log_mel(dry[None], kern)[0] >= dry - 1e-9)


def _refused(tmp_path, args: list[str]) -> str:
    """train_acoustic.py run with ``args`` (English, out under tmp_path): it must stop at once with
    one line on stderr and no output folder; that line."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "train_acoustic.py"), "--lang", "en",
                        "--out", str(tmp_path / "o")] + args, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert not (tmp_path / "o").exists()
    return r.stderr


def test_student_reverb_needs_consistent_and_sane_rooms(tmp_path):
    assert "--student-reverb P needs --consistent" in _refused(tmp_path, ["--student-reverb", "0.3"])
    teach = ["--consistent", "--teacher", str(tmp_path)]
    assert "0 <= P <= 1" in _refused(tmp_path, teach + ["--student-reverb", "2"])
    for bad in (["--student-rt60", "0.8", "0.2"], ["--student-rt60", "0", "0.5"], ["--student-drr", "6", "-6"]):
        assert "LO <= HI" in _refused(tmp_path, teach + ["--student-reverb", "0.3"] + bad)


def test_noise_stretches_stay_inside_one_recording():
    """--noisy-student draws each noise stretch from one recording, never across the join of two."""
    lengths, t = [500, 100, 336, 800], 336
    starts = train_acoustic.noise_starts(lengths, t)
    ends = np.cumsum(lengths)
    clip_of = np.searchsorted(ends, starts, side="right")
    assert np.all(starts + t <= ends[clip_of])  # each stretch ends inside the recording it starts in
    assert set(clip_of.tolist()) == {0, 2, 3}  # the 100-frame recording is too short, the 336 one just fits
    assert len(starts) == (500 - t + 1) + 1 + (800 - t + 1)  # and every such stretch can be drawn
    np.testing.assert_array_equal(train_acoustic.noise_starts([200, 200], t), np.arange(400 - t + 1))
    try:
        train_acoustic.noise_starts([100], t)
    except ValueError as exc:
        assert "fewer than" in str(exc)
    else:
        raise AssertionError("a noise pool shorter than a segment must be refused")


class _Layer:
    def __init__(self, name: str, shapes: list[tuple]) -> None:
        self.name = name
        self._w = [np.random.default_rng(len(name)).normal(size=s) for s in shapes]

    @property
    def weights(self):
        return self._w

    def get_weights(self):
        return [w.copy() for w in self._w]

    def set_weights(self, ws):
        assert [w.shape for w in ws] == [w.shape for w in self._w], "shape mismatch"
        self._w = [np.asarray(w) for w in ws]


class _Model:
    def __init__(self, n_phones: int) -> None:
        self.layers = [_Layer("input", []), _Layer("conv0", [(5, 40, 8), (8,)]), _Layer("bn0", [(8,)] * 4),
                       _Layer("relu0", []), _Layer("dw1", [(9, 8, 1)]), _Layer("pw1", [(1, 8, 8)]),
                       _Layer("out", [(1, 8, n_phones), (n_phones,)]), _Layer("softmax", [])]


def test_cross_lingual_start_copies_all_but_the_phone_output():
    en, ko = _Model(41), _Model(33)
    for layer in en.layers:                       # make the source's weights recognisable
        layer.set_weights([w + 100.0 for w in layer.get_weights()])
    out_before = ko.layers[6].get_weights()
    n = train_acoustic.copy_body(en, ko)
    assert n == 4                                  # conv0, bn0, dw1, pw1: every weighted layer but out
    for a, b in zip(en.layers[:6], ko.layers[:6]):
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    for wa, wb in zip(out_before, ko.layers[6].get_weights()):  # the phone output keeps its own start
        np.testing.assert_array_equal(wa, wb)


def test_init_lang_needs_a_run_of_that_language_and_no_alignment_by_it(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    base = [sys.executable, tool, "--lang", "ko", "--out", str(tmp_path / "o")]
    r = subprocess.run(base + ["--init-lang", "en"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--init-lang needs --init DIR" in r.stderr
    run = tmp_path / "run"
    run.mkdir()
    for f in ("ko_float.keras", "ko_norm.npz"):    # a Korean run where an English one is asked for
        (run / f).write_bytes(b"x")
    r = subprocess.run(base + ["--init", str(run), "--init-lang", "en"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no en_float.keras" in r.stderr
    for f in ("en_float.keras", "en_norm.npz"):
        (run / f).write_bytes(b"x")
    r = subprocess.run(base + ["--init", str(run), "--init-lang", "en", "--align-from-init"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot go with --init-lang" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_align_with_needs_a_run_of_this_language_and_excludes_align_from_init(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    run = tmp_path / "run"
    run.mkdir()
    for f in ("ko_float.keras", "ko_norm.npz"):   # a Korean run offered to align English
        (run / f).write_bytes(b"x")
    base = [sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o")]
    r = subprocess.run(base + ["--align-with", str(run)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--align-with" in r.stderr and "no en_float.keras" in r.stderr
    for f in ("en_float.keras", "en_norm.npz"):
        (run / f).write_bytes(b"x")
    r = subprocess.run(base + ["--align-with", str(run), "--init", str(run), "--align-from-init"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not both" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_constant_then_halving_schedule():
    """--decay-epochs (and --teacher's one long round): full rate, then half, halved each epoch."""
    rate = train_acoustic.constant_then_halving(2e-3, 16, 6)
    got = [rate(e) for e in range(16)]
    assert got[:10] == [2e-3] * 10
    assert np.allclose(got[10:], [1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5, 3.125e-5])


def test_decay_epochs_needs_no_teacher_and_fits_the_round(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    base = [sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o"), "--epochs", "10"]
    for bad in (["--decay-epochs", "10"], ["--decay-epochs", "-1"],
                ["--decay-epochs", "4", "--teacher", str(tmp_path)]):
        r = subprocess.run(base + bad, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "--decay-epochs N goes without --teacher" in r.stderr, bad
    assert not (tmp_path / "o").exists()


def test_pcen_is_causal_level_blind_and_settles_on_stationary_noise():
    """--pcen's front end: frame t depends on frames <= t only (so a stream can compute it as
    it goes), a gain of 40 dB barely moves it (the point of an automatic gain), and a
    stationary background maps near (1 + delta)^r - delta^r whatever its level."""
    rng = np.random.default_rng(3)
    noise = np.log(rng.exponential(1.0, (600, 40)) * 0.01)
    out = train_acoustic.pcen_frames(noise)
    assert out.shape == noise.shape and out.dtype == np.float32
    assert np.array_equal(train_acoustic.pcen_frames(noise[:250]), out[:250])   # causal
    louder = train_acoustic.pcen_frames(noise + np.log(1e4))
    assert np.abs(louder[300:].mean() - out[300:].mean()) < 0.1
    settled = np.sqrt(1 + 2.0) - np.sqrt(2.0)
    assert abs(np.median(out[300:]) - settled) < 0.15
    # a loud onset stands out against the background it follows, then fades as the gain adapts
    tone = noise.copy()
    tone[400:] += np.log(1e3)
    t = train_acoustic.pcen_frames(tone)
    assert t[400:405].mean() > 5 * out[400:405].mean()
    assert t[590:].mean() < t[400:405].mean() / 3
    s04, s2 = train_acoustic.pcen_smoother(0.4), train_acoustic.pcen_smoother(2.0)
    assert 0 < s2 < s04 < 0.03


def test_pcen_refuses_networks_that_read_log_mel(tmp_path):
    tool = str(ROOT / "tools" / "train_acoustic.py")
    base = [sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o")]
    for f in ("en_float.keras", "en_norm.npz"):
        (tmp_path / f).write_bytes(b"x")
    for bad, says in ((["--pcen", "--teacher", str(tmp_path)], "--pcen goes without --teacher"),
                      (["--pcen", "--init", str(tmp_path), "--align-from-init"], "--pcen goes without"),
                      (["--pcen-time", "1.0"], "--pcen-time S goes with --pcen"),
                      (["--pcen", "--pcen-time", "0"], "needs S > 0")):
        r = subprocess.run(base + bad, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and says in r.stderr, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_pcen_kernel_is_the_running_energy_of_pcen_frames():
    """A PCEN teacher's front end in distillation (one matrix product per batch) computes the
    same running energy as pcen_frames' frame-by-frame recursion."""
    rng = np.random.default_rng(5)
    t, s = 50, train_acoustic.pcen_smoother(0.4)
    e = rng.exponential(1.0, (t, 3))
    m = np.empty_like(e)
    acc = e[0]
    for i in range(t):
        acc = (1 - s) * acc + s * e[i]
        m[i] = acc
    k = train_acoustic.pcen_kernel(t, s)
    assert np.allclose(k @ e, m, rtol=1e-12)
    assert np.all(np.triu(k, 1) == 0)  # causal


def test_runs_on_another_front_end_are_refused(tmp_path):
    """--init or --align-with a run trained on PCEN from a log-mel run (or back) would feed a
    network features it never saw: refused in one line; a PCEN teacher needs --consistent."""
    tool = str(ROOT / "tools" / "train_acoustic.py")
    pc = tmp_path / "pcen_run"
    pc.mkdir()
    (pc / "en_float.keras").write_bytes(b"x")
    np.savez(pc / "en_norm.npz", mean=np.zeros(40), std=np.ones(40), pcen_time=0.4)
    base = [sys.executable, tool, "--lang", "en", "--out", str(tmp_path / "o")]
    for extra, says in ((["--align-with", str(pc)], "--align-with"),
                        (["--init", str(pc)], "--init"),
                        (["--teacher", str(pc)], "needs --consistent")):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and says in r.stderr, (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(base + ["--pcen", "--pcen-time", "2", "--align-with", str(pc)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "another front end" in r.stderr
    assert not (tmp_path / "o").exists()
