#!/usr/bin/env python3
"""Train a small frame-level phone classifier (acoustic model) by flat-start Viterbi training.

    python tools/train_acoustic.py --lang ko --data /work/shared/data --out /tmp/am_ko

Steps
  1. Data prep (cached in --out/cache_<lang>.npz): log-mel features (kws.features.log_mel,
     the same front end as the C core), a noisy/gain-changed copy of every training
     utterance (noise/ at 5-20 dB SNR; augmentation only, nothing of it is shipped), and
     per-word phone transcripts (kws.transcribe).
  2. Flat start: energy-based silence trimming + uniform segmentation of the phones over the
     speech part; then rounds of (train frame-level cross-entropy, re-align by forced
     Viterbi with the network's scaled log-likelihoods; 2 states per phone so a phone lasts
     >= 2 frames, optional sil between words and at both ends).
     With --teacher DIR (repeatable) one round instead, on the mean posterior of earlier
     runs (their --out folders: LANG_float.keras and LANG_norm.npz, which every run saves):
     distillation of an ensemble into one network of the same size. --consistent has the
     teachers score each augmented batch the student sees (instead of fixed targets from
     the clean input; --mixup A also mixes each batch with a shuffled copy of itself);
     --init DIR starts from an earlier run's weights and normalisation.
  3. Network: global mean/variance normalisation (folded into the first conv at export),
     a plain conv then depthwise-separable 1-D convs over time (valid padding, BN folded
     by the converter, ReLU), softmax over the phone set.
  4. Export: int8 TFLite, input [1, CHUNK + CONTEXT - 1, 40] raw log-mel, output
     [1, CHUNK, n_phones] softmax probabilities; metadata JSON next to it.
  5. Dev evaluation on held-out speakers: frame accuracy vs forced alignment, and PER of a
     greedy decode, for the float model and the int8 TFLite model.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from kws.model_file import DEFAULT_EMISSION_FLOOR as EMISSION_FLOOR  # noqa: E402  (the decoder's floor)

CHUNK = 32
SEG = 300  # output frames per training segment
N_MELS = 40

# architecture: (kernel, channels) of the first plain conv, then separable blocks
FIRST = (5, 128)
BLOCKS = [(9, 128), (9, 128), (9, 128), (9, 128)]
CONTEXT = FIRST[0] + sum(k - 1 for k, _ in BLOCKS)  # receptive field in frames
LOOKAHEAD = 12
SPEEDS = (0.9, 1.1)


def pcen_smoother(time_constant_s: float, frame_rate: float = 100.0) -> float:
    """One-pole smoothing coefficient for a time constant in seconds (librosa's rule)."""
    t = time_constant_s * frame_rate
    return float((np.sqrt(1 + 4 * t ** 2) - 1) / (2 * t ** 2))


#: PCEN smoother for a 0.4 s time constant (PCEN's and librosa's default)
PCEN_S = pcen_smoother(0.4)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# data

def read_manifest(folder: str) -> list[dict]:
    with open(os.path.join(folder, "manifest.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["abs"] = os.path.join(folder, r["path"])
    return rows


from splits import TRAINING_SETS, is_dev  # noqa: E402


def split_speakers(lang: str, rows_by_set: dict[str, list[dict]]) -> dict[str, list[tuple[dict, str]]]:
    """-> {'train': [(row, set)], 'dev': [...]} split by speaker."""
    out = {"train": [], "dev": []}
    for name in TRAINING_SETS[lang]:
        held_out = is_dev(name, rows_by_set[name])
        for r in rows_by_set[name]:
            out["dev" if held_out(r) else "train"].append((r, name))
    return out


_NOISE: dict = {}


def _noise_clip(noise_rows, rng) -> np.ndarray:
    from kws.audio import load_audio
    r = noise_rows[rng.integers(len(noise_rows))]
    if r["abs"] not in _NOISE:
        if len(_NOISE) > 40:
            _NOISE.pop(next(iter(_NOISE)))
        _NOISE[r["abs"]] = load_audio(r["abs"])
    return _NOISE[r["abs"]]


_RIRS: list = []


def rir_bank(n: int = 80, seed: int = 0) -> list[np.ndarray]:
    """Room impulse responses of random shoebox rooms (pyroomacoustics image source
    method, RT60 0.15-0.9 s), each starting at its direct path so alignments stay put."""
    if not _RIRS:
        import pyroomacoustics as pra
        rng = np.random.default_rng(seed)
        for _ in range(n):
            dims = rng.uniform([3, 3, 2.4], [10, 8, 4])
            e_abs, max_order = pra.inverse_sabine(rng.uniform(0.15, 0.9), dims)
            room = pra.ShoeBox(dims, fs=16000, materials=pra.Material(e_abs), max_order=min(max_order, 12))
            room.add_source(rng.uniform([0.5] * 3, dims - 0.5))
            room.add_microphone(rng.uniform([0.5] * 3, dims - 0.5))
            room.compute_rir()
            h = np.asarray(room.rir[0][0], np.float64)
            h = h[int(np.argmax(np.abs(h))):]
            _RIRS.append(h / np.sqrt(np.sum(h ** 2)))
    return _RIRS


def random_channel(x: np.ndarray, rng) -> np.ndarray:
    """A random microphone/loudspeaker colouring: linear-phase FIR with random gains
    (+-8 dB) at a few frequencies, optional band limits; delay compensated."""
    from scipy.signal import firwin2
    f = np.array([0, 150, 400, 1000, 2500, 4500, 6500, 8000]) / 8000
    g_db = rng.uniform(-8, 8, len(f))
    if rng.random() < 0.4:
        g_db[:2] -= rng.uniform(10, 30)  # weak bass (small microphones)
    if rng.random() < 0.3:
        g_db[-2:] -= rng.uniform(10, 30)  # band-limited
    h = firwin2(129, f, 10 ** (g_db / 20))
    y = np.convolve(x, h)[64:64 + len(x)]
    return y


def reverb(x: np.ndarray, rng) -> np.ndarray:
    from kws.reverb import reverberate  # the benchmark's convolution: same length and power
    return reverberate(x, rir_bank()[rng.integers(len(rir_bank()))])


def augment(x: np.ndarray, noise_rows, rng) -> np.ndarray:
    xf = x.astype(np.float64)
    if rng.random() < 0.5:
        xf = reverb(xf, rng)
    if rng.random() < 0.6:
        xf = random_channel(xf, rng)
    n = _noise_clip(noise_rows, rng).astype(np.float32)
    if len(n) < len(xf):
        n = np.tile(n, int(np.ceil(len(xf) / max(len(n), 1))) + 1)
    off = rng.integers(0, len(n) - len(xf) + 1)
    n = n[off:off + len(xf)]
    ps, pn = np.mean(xf ** 2) + 1e-3, np.mean(n ** 2) + 1e-3
    snr = rng.uniform(5, 20)
    y = xf + n * np.sqrt(ps / (pn * 10 ** (snr / 10)))
    y *= 10 ** (rng.uniform(-12, 6) / 20)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def noise_segments(data_dir: str, n: int, seed: int) -> list[np.ndarray]:
    """Log-mel of speech-free audio (noise/ excerpts at random levels, and near-silence with
    dither), all labelled sil: the model must learn that quiet or noisy non-speech is not a
    phone, or the keyword score (relative to the best phone) turns noise into false alarms."""
    from kws.audio import load_audio
    from kws.features import log_mel
    rows = read_manifest(os.path.join(data_dir, "noise"))
    rng = np.random.default_rng(seed)
    out = []
    n_frames = SEG + CONTEXT - 1
    n_samp = (n_frames - 1) * 160 + 400
    for i in range(n):
        if i % 5 == 4:  # near-silence: dither / faint hum
            x = rng.normal(0, rng.uniform(0.5, 30), n_samp)
            if rng.random() < 0.5:
                x += rng.uniform(5, 200) * np.sin(2 * np.pi * rng.choice([50, 60, 100, 120]) *
                                                  np.arange(n_samp) / 16000)
        else:
            r = rows[rng.integers(len(rows))]
            y = load_audio(r["abs"]).astype(np.float64)
            if len(y) < n_samp:
                y = np.tile(y, n_samp // max(len(y), 1) + 1)
            o = rng.integers(0, len(y) - n_samp + 1)
            x = y[o:o + n_samp] * 10 ** (rng.uniform(-30, 6) / 20)
        out.append(log_mel(np.clip(np.round(x), -32768, 32767).astype(np.int16)))
    return out


def noise_bank(folder: str, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw log-mel frames of every recording in a noise folder (manifest.csv layout), end to end,
    and the frames a stretch of t frames can start at (noise_starts): the pool --noisy-student
    draws its noise stretches from."""
    from kws.audio import load_audio
    from kws.features import log_mel
    clips = [log_mel(load_audio(r["abs"])).astype(np.float32) for r in read_manifest(folder)]
    return np.concatenate(clips), noise_starts([len(c) for c in clips], t)


def noise_starts(lengths, t: int) -> np.ndarray:
    """Start frames, in recordings of `lengths` frames laid end to end, of the stretches of t
    frames that lie inside one recording, so that no drawn stretch joins the end of one
    recording to the start of the next; recordings shorter than t give none (if none is that
    long, any t frames of the whole, which must then hold t)."""
    ends = np.cumsum(lengths)
    starts = [np.arange(e - n, e - t + 1) for n, e in zip(lengths, ends) if n >= t]
    if starts:
        return np.concatenate(starts).astype(np.int32)
    total = int(ends[-1]) if len(ends) else 0
    if total < t:
        raise ValueError(f"the noise recordings hold {total} frames, fewer than a segment's {t}")
    return np.arange(total - t + 1, dtype=np.int32)


def mixed_log_mel(raw, noise, snr_db, logsumexp, stack):
    """Log-mel of speech plus noise from their log-mels alone: log(e^s + g e^n) on mel power,
    g such that the mean power of speech over noise (over the last two axes, frames and mels,
    as augment() measures it on samples) is snr_db. The filterbank is linear and the cross
    term between speech and independent noise averages out, so this is the mixed waveform's
    log-mel up to that term (tests/test_train_distill.py measures how close) without a
    waveform or an FFT per batch. Written once for numpy and TensorFlow: pass the library's
    logsumexp(x, axis, keepdims) and stack."""
    lift = (logsumexp(raw, axis=(-2, -1), keepdims=True) - logsumexp(noise, axis=(-2, -1), keepdims=True)
            - snr_db * (np.log(10.0) / 10))
    return logsumexp(stack([raw, noise + lift]), axis=0, keepdims=False)


def mix_in_noise(x, bank, starts, mean, std, p: float, snr_lo: float, snr_hi: float):
    """Segments x (normalised log-mel, batch x frames x mels, a tf tensor), each with probability
    p mixed (mixed_log_mel) with a random stretch of `bank` (raw log-mel frames) starting at one
    of `starts` (noise_bank: inside one recording) at an SNR uniform in snr_lo..snr_hi dB."""
    import tensorflow as tf
    b, t = tf.shape(x)[0], tf.shape(x)[1]
    raw = x * std + mean
    off = tf.gather(starts, tf.random.uniform((b, 1), 0, tf.shape(starts)[0], dtype=tf.int32))
    n = tf.gather(bank, off + tf.range(t)[None, :])
    snr = tf.random.uniform((b, 1, 1), snr_lo, snr_hi)
    mixed = mixed_log_mel(raw, n, snr, tf.math.reduce_logsumexp, tf.stack)
    keep = tf.random.uniform((b, 1, 1)) >= p
    return tf.where(keep, x, (mixed - mean) / std)


def late_reverb_kernel(n: int, rt60, drr_db, delay: int = 2, xp=np):
    """Per-segment matrices T (batch x n x n) with T[i, j] = g r^(i - j) for i - j >= delay, else 0:
    the late reverberation of a room in the mel-power domain, an exponentially decaying tail
    (power falls 60 dB in rt60 seconds: r = 10^(-0.06 / rt60) per 10 ms frame) whose energy is
    drr_db below the direct sound's. Frames closer than `delay` (20 ms) are the direct sound and
    early reflections, which the 25 ms analysis window already merges. rt60, drr_db: arrays of
    shape (batch, 1, 1). Written once for numpy and TensorFlow: xp is the module (np or tf)."""
    lag_np = (np.arange(n)[:, None] - np.arange(n)[None, :]).astype(np.float32)
    lag = lag_np if xp is np else xp.constant(lag_np)
    log_r = -0.06 * np.log(10.0) / rt60
    g = 10.0 ** (-drr_db / 10.0) * (1.0 - xp.exp(log_r)) / xp.exp(delay * log_r)
    tail = g * xp.exp(lag[None] * log_r)
    return xp.where(lag[None] >= delay, tail, xp.zeros_like(tail))


def reverb_log_mel(raw, kernel, xp=np):
    """Log-mel (batch x frames x mels, natural log of mel power) of the same speech in a room whose
    late tail is `kernel` (late_reverb_kernel): power + kernel @ power. The mel power of a
    reverberant signal is, up to cross terms that average out, the dry power plus the
    exponentially weighted power of the frames before it (the multiplicative transfer
    approximation used for reverberation in the feature domain)."""
    top = xp.max(raw, axis=(1, 2), keepdims=True) if xp is np else xp.reduce_max(raw, axis=(1, 2), keepdims=True)
    power = xp.exp(raw - top)
    log = np.log if xp is np else xp.math.log
    return log(power + xp.matmul(kernel, power)) + top


def reverb_student(x, mean, std, p: float, rt_lo: float, rt_hi: float, drr_lo: float, drr_hi: float):
    """Segments x (normalised log-mel, batch x frames x mels, a tf tensor), each with probability p
    put in a room (reverb_log_mel) of RT60 uniform in rt_lo..rt_hi s and a direct-to-reverberant
    ratio uniform in drr_lo..drr_hi dB."""
    import tensorflow as tf
    b = tf.shape(x)[0]
    rt = tf.random.uniform((b, 1, 1), rt_lo, rt_hi)
    drr = tf.random.uniform((b, 1, 1), drr_lo, drr_hi)
    kern = late_reverb_kernel(x.shape[1], rt, drr, xp=tf)  # segments have a fixed length
    rev = reverb_log_mel(x * std + mean, kern, xp=tf)
    keep = tf.random.uniform((b, 1, 1)) >= p
    return tf.where(keep, x, (rev - mean) / std)


def _prep_one(args):
    row, lang, noise_rows, do_aug, seed, speeds = args
    from kws.audio import load_audio
    from kws.features import log_mel
    from kws.transcribe import transcribe
    try:
        x = load_audio(row["abs"])
    except Exception as exc:  # noqa: BLE001
        return None, f"{row['path']}: {exc}"
    feats = log_mel(x)
    aug = None
    sp = []
    if do_aug:
        import soxr
        rng = np.random.default_rng(seed)
        aug = log_mel(augment(x, noise_rows, rng))
        for speed in speeds:
            y = soxr.resample(x, 16000 * speed, 16000)
            y = np.clip(np.round(y), -32768, 32767).astype(np.int16)
            if rng.random() < 0.5:
                y = augment(y, noise_rows, rng)
            sp.append(log_mel(y))
    skipped: list[str] = []
    words = transcribe(row["text"], lang, skipped)
    return (feats, aug, sp, words, skipped), None


def prepare(args) -> dict:
    data = prepare_sets(args, None)
    for folder in args.extra_set or []:
        extra = prepare_sets(args, folder)
        data["feats"] += extra["feats"]
        data["aug"] += extra["aug"]
        for k in ("skipped_words", "words"):
            data["meta"][k] += extra["meta"][k]
        data["meta"]["utts"] += extra["meta"]["utts"]
        data["meta"]["dropped"] += extra["meta"]["dropped"]
    return data


def prepare_sets(args, extra: str | None) -> dict:
    """Features of the language's real sets (extra None), or of one extra folder (all train)."""
    tag = args.lang if extra is None else f"{args.lang}_{os.path.basename(os.path.normpath(extra))}"
    cache = os.path.join(args.out, f"cache_{tag}.npz")
    meta_path = os.path.join(args.out, f"cache_{tag}.json")
    if os.path.exists(cache) and os.path.exists(meta_path):
        log(f"loading feature cache {cache}")
        z = np.load(cache, allow_pickle=True)
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        return {"feats": list(z["feats"]), "aug": list(z["aug"]), "meta": meta}
    if extra is not None:
        name = os.path.basename(os.path.normpath(extra))
        rows = read_manifest(extra)
        split = {"train": [(r, name) for r in rows], "dev": []}
    else:
        split = None
    if split is None:
        rows_by_set = {s: read_manifest(os.path.join(args.data, s)) for s in TRAINING_SETS[args.lang]}
        split = split_speakers(args.lang, rows_by_set)
    noise_rows = read_manifest(os.path.join(args.data, "noise"))
    jobs = []
    for part in ("train", "dev"):
        for i, (r, s) in enumerate(split[part]):
            jobs.append(((r, args.lang, noise_rows, part == "train", args.seed * 100003 + len(jobs),
                          SPEEDS if extra is None else ()), part, s))
    from multiprocessing import Pool
    feats, aug, meta = [], [], []
    n_skipped_words, n_words, errors = 0, 0, []
    t0 = time.time()
    with Pool(args.workers) as pool:
        for k, (res, err) in enumerate(pool.imap(_prep_one, [j[0] for j in jobs], chunksize=4)):
            (r, *_), part, s = jobs[k]
            if k % 200 == 0:
                log(f"prep {k}/{len(jobs)} ({time.time() - t0:.0f} s)")
            if res is None:
                errors.append(err)
                continue
            f, a, sp, words, skipped = res
            n_skipped_words += len(skipped)
            n_words += len(words)
            if not words:
                errors.append(f"{r['path']}: no transcribable words")
                continue
            feats.append(f)
            aug.append(a if a is not None else np.zeros((0, N_MELS), np.float32))
            meta.append({"path": r["path"], "set": s, "speaker": r["speaker"], "part": part,
                         "dur": float(r["duration_s"]), "words": words})
            for speed, fs in zip(SPEEDS if extra is None else (), sp):
                feats.append(fs)
                aug.append(np.zeros((0, N_MELS), np.float32))
                meta.append({"path": r["path"], "set": s, "speaker": r["speaker"], "part": "train_sp",
                             "speed": speed, "dur": float(r["duration_s"]) / speed, "words": words})
    log(f"prep done: {len(meta)} utterances, {n_words} words, {n_skipped_words} words skipped, "
        f"{len(errors)} utterances dropped")
    for e in errors[:10]:
        log(f"  dropped: {e}")
    info = {"utts": meta, "skipped_words": n_skipped_words, "words": n_words, "dropped": errors}
    fa = np.empty(len(feats), dtype=object)
    fa[:] = feats
    aa = np.empty(len(aug), dtype=object)
    aa[:] = aug
    np.savez(cache, feats=fa, aug=aa)
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False)
    return {"feats": feats, "aug": aug, "meta": info}


# ---------------------------------------------------------------------------------------
# HMM topology and alignment

def build_states(words: list[list[str]], pset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear state graph: [sil?] w1 [sil?] w2 ... wn [sil?], 2 states per phone.

    Returns (phone_of_state, skip_from (-1 or state index that may jump to this state,
    bypassing an optional sil), start mask, end mask).
    """
    sil = 0
    phones: list[int] = []
    skip: list[int] = []
    opt_sil_last = []  # per sil state pair we record
    starts, ends = [], []

    def add_phone(p: int, skip_src: int) -> None:
        phones.extend([p, p])
        skip.extend([skip_src, -1])

    add_phone(sil, -1)  # leading sil, states 0,1
    starts.append(0)
    prev_word_end = -1  # last state of the previous word (set before it is used)
    for wi, w in enumerate(words):
        first = True
        for ph in w:
            if first:
                if wi == 0:
                    starts.append(len(phones))
                    src = -1
                else:
                    src = prev_word_end  # skip the optional sil in between
                add_phone(pset.index(ph), src)
                first = False
            else:
                add_phone(pset.index(ph), -1)
        prev_word_end = len(phones) - 1
        if wi < len(words) - 1:
            add_phone(sil, -1)
    ends.append(len(phones) - 1)  # last phone of last word
    add_phone(sil, -1)
    ends.append(len(phones) - 1)
    S = len(phones)
    st = np.zeros(S, bool)
    st[starts] = True
    en = np.zeros(S, bool)
    en[ends] = True
    del opt_sil_last
    return np.array(phones), np.array(skip), st, en


def viterbi_align(loglik: np.ndarray, words, pset) -> np.ndarray | None:
    """Forced alignment: loglik [T, P] -> phone index per frame, or None if impossible."""
    ph, skip, st, en = build_states(words, pset)
    T, S = len(loglik), len(ph)
    if T < (S - 4) // 2 * 1 + 2:  # too short for min durations
        pass
    NEG = -1e30
    em = loglik[:, ph]  # [T, S]
    bp = np.zeros((T, S), np.int32)
    delta = np.where(st, em[0], NEG)
    idx = np.arange(S)
    has_skip = skip >= 0
    skip_src = np.where(has_skip, skip, 0)
    for t in range(1, T):
        stay = delta
        prev = np.concatenate(([NEG], delta[:-1]))
        sk = np.where(has_skip, delta[skip_src], NEG)
        best = stay
        arg = idx.copy()
        m = prev > best
        best = np.where(m, prev, best)
        arg = np.where(m, idx - 1, arg)
        m = sk > best
        best = np.where(m, sk, best)
        arg = np.where(m, skip_src, arg)
        bp[t] = arg
        delta = best + em[t]
    final = np.where(en, delta, NEG)
    s = int(np.argmax(final))
    if final[s] <= NEG / 2:
        return None
    path = np.empty(T, np.int32)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s = bp[t, s]
    return ph[path]


def energy_trim(feats: np.ndarray) -> tuple[int, int]:
    e = feats.mean(axis=1)
    lo, hi = np.percentile(e, 5), np.percentile(e, 95)
    thr = lo + 0.3 * (hi - lo)
    on = np.nonzero(e > thr)[0]
    if len(on) == 0:
        return 0, len(e)
    return int(max(on[0] - 3, 0)), int(min(on[-1] + 4, len(e)))


def uniform_align(feats: np.ndarray, words, pset) -> np.ndarray:
    T = len(feats)
    a, b = energy_trim(feats)
    seq = [pset.index(p) for w in words for p in w]
    if b - a < 2 * len(seq):  # not enough speech frames: use the whole utterance
        a, b = 0, T
    y = np.zeros(T, np.int32)
    bounds = np.linspace(a, b, len(seq) + 1).round().astype(int)
    for i, p in enumerate(seq):
        y[bounds[i]:bounds[i + 1]] = p
    return y


# ---------------------------------------------------------------------------------------
# model

def spec_augment_layer(freq_masks: int = 2, freq_width: int = 6, time_masks: int = 2, time_width: int = 6):
    """SpecAugment (Park et al., 2019) for training only: per example, a few random bands of
    mel channels and of frames set to the mean (0 after normalisation). It has no
    weights, so the exported inference model (built without it) takes the same weights."""
    import keras
    import tensorflow as tf

    class SpecAugment(keras.layers.Layer):
        def call(self, x, training=None):
            if not training:
                return x
            shape = tf.shape(x)
            b, t, f = shape[0], shape[1], shape[2]
            keep = tf.ones_like(x)

            def band(n, size, width, axis_len):
                w = tf.random.uniform((b, 1), 0, width + 1, dtype=tf.int32)
                start = tf.random.uniform((b, 1), 0, 1, dtype=tf.float32)
                start = tf.cast(start * tf.cast(tf.maximum(axis_len - w, 1), tf.float32), tf.int32)
                idx = tf.range(axis_len)[None, :]
                return tf.cast((idx >= start) & (idx < start + w), x.dtype)  # [b, axis_len]

            for _ in range(freq_masks):
                keep = keep * (1.0 - band(b, f, freq_width, f))[:, None, :]
            for _ in range(time_masks):
                keep = keep * (1.0 - band(b, t, time_width, t))[:, :, None]
            return x * keep

    return SpecAugment(name="specaug")


def freq_warp_layer(max_warp: float):
    """Vocal-tract-length perturbation (Jaitly & Hinton, 2013) on log-mel features, training
    only: per example a warp factor a ~ U(1 - max_warp, 1 + max_warp), and each mel channel
    takes the (linearly interpolated) value of the channel whose centre frequency is f / a.
    Speed perturbation moves formants and tempo together; this moves formants alone, which
    is what differs most between the (mostly child) training speakers and adult users.
    No weights: the exported model is built without it."""
    import keras
    import tensorflow as tf
    from kws.features import HIGH_FREQ, LOW_FREQ, hz_to_mel, mel_to_hz

    lo, hi = float(hz_to_mel(LOW_FREQ)), float(hz_to_mel(HIGH_FREQ))
    step = (hi - lo) / (N_MELS + 1)
    centres = mel_to_hz(lo + step * np.arange(1, N_MELS + 1)).astype(np.float32)

    class FreqWarp(keras.layers.Layer):
        def call(self, x, training=None):
            if not training:
                return x
            b = tf.shape(x)[0]
            a = tf.random.uniform((b, 1), 1.0 - max_warp, 1.0 + max_warp)
            src_hz = tf.constant(centres)[None, :] / a
            src_mel = 2595.0 * tf.math.log(1.0 + src_hz / 700.0) / tf.math.log(10.0)
            pos = tf.clip_by_value((src_mel - lo) / step - 1.0, 0.0, N_MELS - 1.0)
            i0 = tf.minimum(tf.cast(tf.floor(pos), tf.int32), N_MELS - 2)
            w = (pos - tf.cast(i0, tf.float32))[:, None, :]
            x0 = tf.gather(x, i0, axis=2, batch_dims=1)
            x1 = tf.gather(x, i0 + 1, axis=2, batch_dims=1)
            return x0 * (1.0 - w) + x1 * w

    return FreqWarp(name="freqwarp")


SPECAUG_NOTE = ("; SpecAugment while training: per 300-frame segment, 2 bands of up to 6 mel channels "
                "and 2 stretches of up to 6 frames set to the mean")


def build_model(n_phones: int, n_in: int | None, batch: int | None = None, normalise=None,
                specaug: bool = False, freq_warp: float = 0.0):
    import keras
    from keras import layers
    inp = keras.Input((n_in, N_MELS), batch_size=batch)
    x = inp
    if freq_warp > 0:
        x = freq_warp_layer(freq_warp)(x)
    if specaug:
        x = spec_augment_layer()(x)
    if normalise is not None:
        mean, std = normalise
        x = layers.Rescaling(1.0)(x)  # placeholder, not used
    k, c = FIRST
    x = layers.Conv1D(c, k, padding="valid", use_bias=True, name="conv0")(x)
    x = layers.BatchNormalization(name="bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    for i, (k, c) in enumerate(BLOCKS, 1):
        x = layers.DepthwiseConv1D(k, padding="valid", use_bias=False, name=f"dw{i}")(x)
        x = layers.Conv1D(c, 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.Conv1D(n_phones, 1, name="out")(x)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, x)


def count_macs(n_phones: int) -> int:
    k, c = FIRST
    macs = k * N_MELS * c
    cin = c
    for k, c in BLOCKS:
        macs += k * cin + cin * c
        cin = c
    macs += cin * n_phones
    return macs  # per output frame


def make_segments(feats_list, labels_list, idxs):
    """Cut normalised, context-padded utterances into fixed segments for training/prediction."""
    L, R = CONTEXT - 1 - LOOKAHEAD, LOOKAHEAD
    X, Y, W, where = [], [], [], []
    for u in idxs:
        f = feats_list[u]
        fp = np.concatenate([np.repeat(f[:1], L, 0), f, np.repeat(f[-1:], R, 0)])
        T = len(f)
        y = labels_list[u] if labels_list is not None else np.zeros(T, np.int32)
        for s in range(0, T, SEG):
            n = min(SEG, T - s)
            x = fp[s:s + n + CONTEXT - 1]
            if n < SEG:
                x = np.concatenate([x, np.repeat(x[-1:], SEG - n, 0)])
            yy = np.zeros(SEG, np.int32)
            yy[:n] = y[s:s + n]
            ww = np.zeros(SEG, np.float32)
            ww[:n] = 1
            X.append(x)
            Y.append(yy)
            W.append(ww)
            where.append((u, s, n))
    return np.stack(X).astype(np.float32), np.stack(Y), np.stack(W), where


def load_teachers(dirs: list[str], n_phones: int, lang: str) -> list[tuple]:
    """(model, mean, std) of earlier runs: float Keras weights in this script's architecture
    and the feature normalisation they were trained with."""
    out = []
    for d in dirs:
        m = build_model(n_phones, None, specaug=True)
        m.load_weights(os.path.join(d, f"{lang}_float.keras"))
        z = np.load(os.path.join(d, f"{lang}_norm.npz"))
        out.append((m, z["mean"], z["std"]))
    return out


def load_body(model, d: str, lang: str, n_phones: int) -> int:
    """Copy every layer but the phone output ("out") from the run in d, trained for another
    language's phone set, into model; return how many layers were copied. The lower layers of
    a network trained on many speakers of one language are a better start than random weights
    for a language with few (cross-lingual transfer); only the output is language-specific."""
    other, _, _ = load_teachers([d], n_phones, lang)[0]
    return copy_body(other, model)


def copy_body(src_model, dst_model) -> int:
    """Set every weighted layer of dst_model but "out" to the same-named layer's weights in
    src_model; return how many were set. Both must be this script's architecture."""
    src = {layer.name: layer for layer in src_model.layers if layer.weights}
    n = 0
    for layer in dst_model.layers:
        if layer.weights and layer.name != "out":
            layer.set_weights(src[layer.name].get_weights())
            n += 1
    return n


def teacher_affines(teachers, mean, std) -> list[tuple]:
    """(model, a, b) per teacher such that x * a + b is the teacher's normalisation of
    features x normalised with this run's mean/std. An affine map keeps a SpecAugment
    mask (0 = this run's mean) meaning the same thing to every teacher: the mean."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    return [(m, (std / ts).astype(np.float32), ((mean - tm) / ts).astype(np.float32))
            for m, tm, ts in teachers]


def teacher_targets(teachers, X: np.ndarray, mean, std, batch: int = 128) -> np.ndarray:
    """Mean posterior of the teachers on segments X (normalised with this run's mean/std;
    each teacher sees them in its own normalisation). Ensembles of runs trained on different
    synthetic voices miss far fewer wake words than any one of them (docs/acoustic-models.md);
    their averaged posteriors are soft targets that carry that into one small network."""
    piece = 2048  # whole copies of X per teacher do not fit in memory
    aff = teacher_affines(teachers, mean, std)
    out = None
    for i in range(0, len(X), piece):
        x = X[i:i + piece]
        acc = sum(m.predict(x * a + b, batch_size=batch, verbose=0) for m, a, b in aff)
        if out is None:
            out = np.zeros((len(X),) + acc.shape[1:], np.float16)
        out[i:i + piece] = acc / len(aff)
    return out


def make_distiller(student, augment: list, teachers, mean, std, mixup: float = 0.0,
                   temperature: float = 1.0, emission_weight: float = 0.0,
                   emission_floor: float = EMISSION_FLOOR, label_weight: float = 0.0,
                   student_noise: tuple | None = None, teacher_pcen: list | None = None,
                   student_reverb: tuple | None = None):
    """A Keras model whose fit() trains `student` on the teachers' mean posterior of the
    *same* augmented batch the student sees ("consistent" distillation, Beyer et al., 2022,
    "Knowledge distillation: a good teacher is patient and consistent"). Fixed targets from
    the clean input (teacher_targets) ask the student to see through SpecAugment's masks
    and VTLP's warps, which the teachers themselves cannot; here each batch is augmented
    once and the teachers score that. Costs one teacher forward pass per batch and epoch.
    With mixup > 0 each batch is also mixed with a shuffled copy of itself, x * l + x' * (1 - l),
    l ~ Beta(mixup, mixup) per segment: inputs no recording has, on which only the teachers'
    answers (not any label) can say what the student should output ("function matching").
    temperature T > 1 softens both distributions before the cross-entropy (scaled by T^2,
    Hinton et al., 2015), so the student also matches how *unlikely* the teachers find the
    other phones; emission_weight W adds W * the mean squared difference of the decoder's
    emissions, max(log p_q - max_r log p_r, floor) for every phone q: the quantity the
    keyword decoder actually consumes (docs/decoder.md), down to its floor and no further.
    label_weight A mixes in the alignment's labels: (1 - A) * the teachers' loss + A * the
    cross-entropy against the aligned phone (Hinton's soft + hard targets): the only way a
    phone the teachers get wrong (data none of them was trained on) can be learnt.
    student_noise = (bank, starts, p, snr_lo, snr_hi), bank and starts from noise_bank: after the
    augmentation, the student's copy of each segment has noise mixed in (mix_in_noise) with
    probability p while the teachers score the clean one ("teacher-student learning" for robustness, Li et al., 2017, "Large-scale
    domain adaptation via teacher-student learning"): the student learns to give in noise the
    posteriors the teachers give on clean speech, which no noisy label or noisy teacher says.
    student_reverb = (p, rt_lo, rt_hi, drr_lo, drr_hi): the same for rooms (reverb_student): the
    student's copy of a segment gets a late reverberant tail with probability p while the teachers
    score the dry one (docs/acoustic-models.md: a smart speaker across a room is where the
    detector is weakest, and a teacher scoring reverberant input teaches its own errors there).
    teacher_pcen: per teacher, the PCEN time constant it was trained with (0: log-mel, the
    default); such a teacher sees pcen_frames of the batch's log-mel, run per segment (its
    running energy starts at the segment's first frame), in its own normalisation. Networks
    with another front end make other errors, in noise too (docs/acoustic-models.md).
    Data: (x, w), or (x, y, w) with label_weight > 0; w the per-frame weight (0 on padding)."""
    import keras
    import tensorflow as tf

    aff = teacher_affines(teachers, mean, std)
    teacher_pcen = list(teacher_pcen or [0.0] * len(teachers))
    n_in = SEG + CONTEXT - 1
    fronts = [None if not tc else (tf.constant(pcen_kernel(n_in, pcen_smoother(tc)), tf.float32),
                                   tf.constant(np.asarray(tm, np.float32)), tf.constant(np.asarray(ts, np.float32)))
              for tc, (_, tm, ts) in zip(teacher_pcen, teachers)]
    for m, _, _ in aff:
        m.trainable = False

    class Distiller(keras.Model):
        def __init__(self):
            super().__init__()
            self.student = student
            self.augment = augment
            self.teachers = [m for m, _, _ in aff]
            self.affines = [(tf.constant(a), tf.constant(b)) for _, a, b in aff]
            self.fronts = fronts
            self.raw = (tf.constant(np.asarray(mean, np.float32)), tf.constant(np.asarray(std, np.float32)))
            if student_noise is not None:
                self.noise_bank = tf.constant(student_noise[0])
                self.noise_starts = tf.constant(student_noise[1])
                self.norm = (tf.constant(np.asarray(mean, np.float32)), tf.constant(np.asarray(std, np.float32)))
            self.loss_mean = keras.metrics.Mean(name="loss")
            self.agreement = keras.metrics.Mean(name="agreement")

        def call(self, x, training=False):
            return self.student(x, training=training)

        def _targets(self, x):
            outs = []
            for m, (a, b), front in zip(self.teachers, self.affines, self.fronts):
                if front is None:
                    outs.append(m(x * a + b, training=False))
                else:
                    kern, tm, ts = front
                    raw = x * self.raw[1] + self.raw[0]
                    outs.append(m((pcen_tf(raw, kern) - tm) / ts, training=False))
            return tf.add_n(outs) / len(self.teachers)

        def _update(self, t, p, w, y=None):
            n = tf.maximum(tf.reduce_sum(w), 1.0)
            lp, lt = tf.math.log(p + 1e-7), tf.math.log(t + 1e-7)
            if temperature != 1.0:
                ts = tf.nn.softmax(lt / temperature, -1)
                per_frame = -tf.reduce_sum(ts * tf.nn.log_softmax(lp / temperature, -1), -1) \
                    * (temperature ** 2)
            else:
                per_frame = -tf.reduce_sum(t * lp, -1)
            if emission_weight > 0:
                es = tf.maximum(lp - tf.reduce_max(lp, -1, keepdims=True), emission_floor)
                et = tf.maximum(lt - tf.reduce_max(lt, -1, keepdims=True), emission_floor)
                per_frame += emission_weight * tf.reduce_mean(tf.square(es - et), -1)
            if y is not None and label_weight > 0:
                hard = -tf.reduce_sum(tf.one_hot(y, tf.shape(p)[-1]) * lp, -1)
                per_frame = (1.0 - label_weight) * per_frame + label_weight * hard
            loss = tf.reduce_sum(per_frame * w) / n
            same = tf.cast(tf.equal(tf.argmax(t, -1), tf.argmax(p, -1)), w.dtype)
            self.loss_mean.update_state(loss)
            self.agreement.update_state(tf.reduce_sum(same * w) / n)
            return loss

        def train_step(self, data):
            x, y, w = data if label_weight > 0 else (data[0], None, data[1])
            if mixup > 0:
                b = tf.shape(x)[0]
                g1 = tf.random.gamma((b, 1, 1), mixup)
                g2 = tf.random.gamma((b, 1, 1), mixup)
                lam = g1 / (g1 + g2)
                perm = tf.random.shuffle(tf.range(b))
                x = x * lam + tf.gather(x, perm) * (1.0 - lam)
                w = w * tf.gather(w, perm)  # frames that are real speech in both
            for layer in self.augment:
                x = layer(x, training=True)
            t = tf.stop_gradient(self._targets(x))
            if student_noise is not None:
                x = mix_in_noise(x, self.noise_bank, self.noise_starts, self.norm[0], self.norm[1], *student_noise[2:])
            if student_reverb is not None:
                x = reverb_student(x, self.raw[0], self.raw[1], *student_reverb)
            with tf.GradientTape() as tape:
                loss = self._update(t, self.student(x, training=True), w, y)
            vs = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, vs), vs))
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y, w = data if label_weight > 0 else (data[0], None, data[1])
            self._update(self._targets(x), self.student(x, training=False), w, y)
            return {m.name: m.result() for m in self.metrics}

        @property
        def metrics(self):
            return [self.loss_mean, self.agreement]

    return Distiller()


def predict_utts(model, feats_list, idxs, batch=64):
    X, _, _, where = make_segments(feats_list, None, idxs)
    P = model.predict(X, batch_size=batch, verbose=0)
    out = {u: np.zeros((len(feats_list[u]), P.shape[-1]), np.float32) for u in idxs}
    for (u, s, n), p in zip(where, P):
        out[u][s:s + n] = p[:n]
    return out


def realign(post: dict, words_of, pset, prior: np.ndarray, fallback: dict,
            prior_scale: float = 1.0) -> tuple[dict, int]:
    """Forced re-alignment on posterior / prior**prior_scale. With prior_scale 1 (scaled
    likelihoods, the hybrid-HMM convention) rare phones are boosted and, in a flat-start
    recipe, slowly swallow their neighbours: the Korean v3 model's alignments gave vowels
    a median of 2 frames and tense consonants 15-20. 0 aligns on the posteriors, which is
    also what the detector's decoder scores."""
    lp = prior_scale * np.log(prior + 1e-8)
    out, fails = {}, 0
    for u, p in post.items():
        ll = np.log(p + 1e-8) - lp
        a = viterbi_align(ll, words_of[u], pset)
        if a is None:
            fails += 1
            a = fallback[u]
        out[u] = a.astype(np.int32)
    return out, fails


def on_own_axis(labels: np.ndarray, n_frames: int, speed: float) -> np.ndarray:
    """Frame labels of an utterance moved onto a speed copy's time axis (n_frames long,
    played at `speed`): frame t of the copy takes the label of frame round(t * speed)."""
    src = np.minimum(np.round(np.arange(n_frames) * speed).astype(int), len(labels) - 1)
    return labels[src]


def align_with_model(model, feats, utts, words_of, pset, ali: dict, flat_ali: dict, ids: list[int],
                     prior_scale: float) -> tuple[dict, int]:
    """Initial alignments from an already trained network (--align-from-init): where no
    PocketSphinx alignment exists (ali[u] is still the flat one), force-align the
    utterance's own words on the network's posteriors divided by their mean (the prior)
    and give its speed copies the same labels on their own time axis, as --init-align does."""
    todo = [u for u in ids if ali[u] is flat_ali[u]]
    post = predict_utts(model, feats, todo)
    prior = np.concatenate([post[u] for u in todo]).mean(0) if todo else np.ones(1)
    new, fails = realign(post, words_of, pset, prior, flat_ali, prior_scale)
    if fails:
        log(f"forced alignment failed for {fails} utterances: flat alignment kept")
    out = dict(ali)
    out.update(new)
    by_key = {(utts[u]["set"], utts[u]["path"]): u for u in todo}
    for u, m in enumerate(utts):
        src_u = by_key.get((m["set"], m["path"]))
        if m["part"] == "train_sp" and src_u is not None and ali[u] is flat_ali[u]:
            out[u] = on_own_axis(new[src_u], len(feats[u]), m.get("speed", 1.0))
    return out, len(todo)


def edit_distance(a, b) -> int:
    d = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        prev = d.copy()
        d[0] = i
        for j in range(1, len(b) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
    return int(d[-1])


def greedy_phones(post: np.ndarray) -> list[int]:
    am = post.argmax(1)
    out = []
    prev = -1
    for p in am:
        if p != prev and p != 0:
            out.append(int(p))
        prev = p
    return out


def phone_loop_decode(post: np.ndarray, penalty: float = 4.0) -> list[int]:
    """Viterbi over a free loop of 2-state phones (min 2 frames), insertion penalty; drop sil."""
    lp = np.log(post + 1e-8)
    T, P = lp.shape
    NEG = -1e30
    d1 = lp[0].copy()          # first state of each phone
    d2 = np.full(P, NEG)       # second state
    bp1 = np.zeros((T, P), np.int32)  # for state 1: previous phone (-1: stayed)
    bp2 = np.zeros((T, P), np.int8)   # for state 2: 1 = came from state 1
    for t in range(1, T):
        best_end = int(np.argmax(d2))
        enter = d2[best_end] - penalty
        n1 = np.where(d1 >= enter, d1, enter)
        bp1[t] = np.where(d1 >= enter, -1, best_end)
        n2 = np.where(d2 >= d1, d2, d1)
        bp2[t] = (d1 > d2)
        d1, d2 = n1 + lp[t], n2 + lp[t]
    p, st = int(np.argmax(d2)), 2
    seq = [p]
    for t in range(T - 1, 0, -1):
        if st == 2:
            if bp2[t, p]:
                st = 1
        else:
            b = bp1[t, p]
            if b >= 0:
                p, st = int(b), 2
                seq.append(p)
    return [q for q in reversed(seq) if q != 0]


def evaluate(post: dict, ali: dict, words_of, pset) -> dict:
    correct = total = errs = ref_n = errs_loop = 0
    for u, p in post.items():
        correct += int((p.argmax(1) == ali[u]).sum())
        total += len(p)
        ref = [pset.index(ph) for w in words_of[u] for ph in w]
        errs += edit_distance(greedy_phones(p), ref)
        errs_loop += edit_distance(phone_loop_decode(p), ref)
        ref_n += len(ref)
    return {"frame_accuracy": correct / max(total, 1), "per": errs / max(ref_n, 1),
            "per_phone_loop": errs_loop / max(ref_n, 1),
            "frames": total, "ref_phones": ref_n}


# ---------------------------------------------------------------------------------------
# export

def fold_norm_weights(model, mean, std):
    """Weights for the export model: first conv absorbs (x - mean) / std."""
    ws = model.get_weights()
    W, b = ws[0], ws[1]  # conv0 kernel [k, 40, c], bias [c]
    W2 = W / std[None, :, None]
    b2 = b - np.einsum("kic,i->c", W, mean / std)
    return [W2.astype(np.float32), b2.astype(np.float32)] + ws[2:]


def export_tflite(model, mean, std, n_phones, rep_feats, path):
    import tensorflow as tf
    n_in = CHUNK + CONTEXT - 1
    em = build_model(n_phones, n_in, batch=1)
    em.set_weights(fold_norm_weights(model, mean, std))

    rng = np.random.default_rng(0)

    def rep():
        for _ in range(300):
            f = rep_feats[rng.integers(len(rep_feats))]
            if len(f) < n_in:
                continue
            s = rng.integers(0, len(f) - n_in + 1)
            yield [f[s:s + n_in][None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(em)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    with open(path, "wb") as f:
        f.write(data)
    # float reference of the same (folded) export graph, for checking
    return em, len(data)


def tflite_posteriors(path, feats_list, idxs):
    import tensorflow as tf
    it = tf.lite.Interpreter(model_path=path, num_threads=2)
    it.allocate_tensors()
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    isc, izp = ind["quantization"]
    osc, ozp = outd["quantization"]
    n_in = CHUNK + CONTEXT - 1
    L, R = CONTEXT - 1 - LOOKAHEAD, LOOKAHEAD
    out = {}
    for u in idxs:
        f = feats_list[u]
        T = len(f)
        nch = (T + CHUNK - 1) // CHUNK
        fp = np.concatenate([np.repeat(f[:1], L, 0), f, np.repeat(f[-1:], R + nch * CHUNK - T, 0)])
        q = np.clip(np.round(fp / isc + izp), -128, 127).astype(np.int8)
        P = np.zeros((nch * CHUNK, outd["shape"][-1]), np.float32)
        for c in range(nch):
            it.set_tensor(ind["index"], q[None, c * CHUNK:c * CHUNK + n_in])
            it.invoke()
            P[c * CHUNK:(c + 1) * CHUNK] = (it.get_tensor(outd["index"])[0].astype(np.float32) - ozp) * osc
        out[u] = P[:T]
    return out, {"input": {"shape": [int(v) for v in ind["shape"]], "dtype": str(np.dtype(ind["dtype"])),
                           "scale": float(isc), "zero_point": int(izp)},
                 "output": {"shape": [int(v) for v in outd["shape"]], "dtype": str(np.dtype(outd["dtype"])),
                            "scale": float(osc), "zero_point": int(ozp)}}


# ---------------------------------------------------------------------------------------

def pcen_frames(logmel: np.ndarray, s: float = PCEN_S, alpha: float = 0.98, delta: float = 2.0,
                r: float = 0.5, eps: float = 1e-6) -> np.ndarray:
    """Per-channel energy normalisation (Wang et al. 2017) of log-mel frames, causal: mel power
    E divided by its running mean M (one-pole, M starts at the first frame) to the power alpha,
    then root compression with an offset: (E / (eps + M)^alpha + delta)^r - delta^r. An
    automatic gain per band: stationary background maps to a constant, onsets stand out, and
    the absolute level (gain, distance) hardly matters. --pcen trains on it (experimental: the
    C front end and the runtime would have to compute it too)."""
    raw = np.asarray(logmel, np.float64)
    e = np.exp(raw)
    m = np.empty_like(e)
    acc = e[0] if len(e) else None
    for t in range(len(e)):  # the C front end's recursion, frame by frame
        acc = (1.0 - s) * acc + s * e[t]
        m[t] = acc
    return pcen_compress(raw, m, np.exp, np.log, alpha, delta, r, eps).astype(np.float32)


def pcen_compress(raw, m, exp, log, alpha: float = 0.98, delta: float = 2.0, r: float = 0.5, eps: float = 1e-6):
    """(E / (eps + M)^alpha + delta)^r - delta^r from log-mel `raw` (log E) and running energy M;
    written once for numpy and TensorFlow (pass the library's exp and log), as mixed_log_mel is."""
    return (exp(raw - alpha * log(eps + m)) + delta) ** r - delta ** r


def pcen_kernel(t: int, s: float) -> np.ndarray:
    """T x T matrix K with (K @ E)[t] = the running energy M_t of pcen_frames (M_0 = E_0): how a
    PCEN teacher's front end runs on a whole batch of fixed-length segments at once in
    distillation, where a frame-by-frame loop would be slow."""
    i = np.arange(t)
    d = i[:, None] - i[None, :]
    k = np.where(d >= 0, s * (1.0 - s) ** np.maximum(d, 0), 0.0)
    k[:, 0] = (1.0 - s) ** i
    return k


def pcen_tf(raw, kernel, alpha: float = 0.98, delta: float = 2.0, r: float = 0.5, eps: float = 1e-6):
    """pcen_frames on a TensorFlow batch of log-mel segments (batch x T x mels), T = len(kernel)."""
    import tensorflow as tf
    m = tf.einsum("tk,bkf->btf", kernel, tf.exp(raw))
    return pcen_compress(raw, m, tf.exp, tf.math.log, alpha, delta, r, eps)


def run_pcen_time(d: str, lang: str) -> float:
    """PCEN time constant (s) a run in folder d was trained with; 0 for log-mel input."""
    path = os.path.join(d, f"{lang}_norm.npz")
    try:
        z = np.load(path)
        return float(z["pcen_time"]) if "pcen_time" in z.files else 0.0
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"train_acoustic: {path}: not a normalisation file of train_acoustic.py ({exc})")


def constant_then_halving(base_lr: float, epochs: int, tail: int):
    """Keras LearningRateScheduler function: ``base_lr`` for the first ``epochs - tail`` epochs,
    then half of it, halved again every epoch. One long round trains at full rate while it still
    gains and settles at the end, where halving from the second epoch (the rounds' last-round
    schedule) leaves a random start under-trained once the rate is a few percent of its base."""
    def rate(epoch: int, _lr: float = 0.0) -> float:
        k = epoch - (epochs - tail)
        return base_lr if k < 0 else base_lr / 2 * 0.5 ** k
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lang", choices=["ko", "en"], required=True)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per alignment round")
    ap.add_argument("--rounds", type=int, default=3,
                    help="training rounds of --epochs each, the network re-aligning the data between them "
                         "(default 3; the first round starts from the flat start, --init-align or a "
                         "network's alignment; --teacher runs one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--no-aug", action="store_true")
    ap.add_argument("--freq-warp", type=float, default=0.0, metavar="A",
                    help="vocal-tract-length perturbation while training: warp the mel axis by a "
                         "factor uniform in 1-A..1+A per segment (0 = off; 0.1 is usual)")
    ap.add_argument("--specaug", action="store_true", help="SpecAugment masking while training (no weights; "
                    "the exported model is the same network)")
    ap.add_argument("--extra-set", action="append",
                    help="extra training folder (manifest.csv layout), e.g. tools/synth_speech.py output")
    ap.add_argument("--init-align", action="append", help="npz of initial frame labels (tools/align_pocketsphinx.py) "
                    "instead of a flat start")
    ap.add_argument("--align-from-init", action="store_true",
                    help="with --init: the initial alignments come from forced alignment with the --init "
                         "network (for sets without PocketSphinx alignments, e.g. a new synthetic voice); "
                         "--init-align files, if given, take precedence where they have an utterance")
    ap.add_argument("--align-with", metavar="DIR",
                    help="the initial alignments come from forced alignment with this earlier run's network "
                         "(an --out folder of the same language) while the weights start random (or from "
                         "--init): a run trained apart from that network, e.g. another member of an "
                         "ensemble; --init-align files, if given, take precedence")
    ap.add_argument("--noise-segments", type=int, default=400,
                    help="speech-free training segments labelled sil (noise/ excerpts, near-silence)")
    ap.add_argument("--align-prior-scale", type=float, default=1.0,
                    help="re-align on posterior / prior**S (1: scaled likelihoods; 0: posteriors, see realign)")
    ap.add_argument("--model-dir", default=os.path.join(REPO, "kws", "data", "acoustic"))
    ap.add_argument("--teacher", action="append", metavar="DIR",
                    help="distil from this earlier training run (its --out folder: LANG_float.keras and "
                         "LANG_norm.npz); repeat for an ensemble: the targets are the teachers' mean "
                         "posteriors instead of the alignments' labels, trained for --epochs in one round")
    ap.add_argument("--consistent", action="store_true",
                    help="with --teacher: the teachers score the same augmented (SpecAugment/VTLP) batch as "
                         "the student, every batch, instead of fixed targets from the clean input")
    ap.add_argument("--mixup", type=float, default=0.0, metavar="A",
                    help="with --consistent: mix each batch with a shuffled copy of itself, weight "
                         "~ Beta(A, A) per segment (0 = off)")
    ap.add_argument("--temperature", type=float, default=1.0, metavar="T",
                    help="with --consistent: cross-entropy between the teachers' and the student's "
                         "posteriors softened by T (scaled by T^2); 1 = plain")
    ap.add_argument("--emission-weight", type=float, default=0.0, metavar="W",
                    help="with --consistent: add W x the mean squared difference of the decoder's "
                         "emissions max(log p - max log p, -6) between teachers and student (0 = off)")
    ap.add_argument("--label-weight", type=float, default=0.0, metavar="A",
                    help="with --consistent: (1 - A) x the teachers' loss + A x cross-entropy against the "
                         "alignments' labels, so that phones the teachers get wrong can be learnt (0 = off)")
    ap.add_argument("--noisy-student", type=float, default=0.0, metavar="P",
                    help="with --consistent: each segment the student sees has noise mixed in with probability "
                         "P (log-mel power domain, --student-snr) while the teachers score it clean (0 = off)")
    ap.add_argument("--student-snr", type=float, nargs=2, metavar=("LO", "HI"),
                    help="with --noisy-student: SNR uniform in LO..HI dB (default 0 20)")
    ap.add_argument("--student-noise", metavar="DIR",
                    help="with --noisy-student: noise recordings (manifest.csv layout; default DATA/noise)")
    ap.add_argument("--student-reverb", type=float, default=0.0, metavar="P",
                    help="with --consistent: each segment the student sees gets a room's late reverberation "
                         "with probability P (log-mel power domain, --student-rt60, --student-drr) while the "
                         "teachers score it dry (0 = off)")
    ap.add_argument("--student-rt60", type=float, nargs=2, default=[0.2, 0.8], metavar=("LO", "HI"),
                    help="with --student-reverb: RT60 uniform in LO..HI s (default 0.2 0.8)")
    ap.add_argument("--student-drr", type=float, nargs=2, default=[-6.0, 6.0], metavar=("LO", "HI"),
                    help="with --student-reverb: direct-to-reverberant ratio uniform in LO..HI dB (default -6 6)")
    ap.add_argument("--swa", type=int, default=0, metavar="N",
                    help="with --teacher: stochastic weight averaging, i.e. keep the learning rate at half its "
                         "base and export the mean of the weights at the ends of the last N epochs (0 = off)")
    ap.add_argument("--decay-epochs", type=int, default=0, metavar="N",
                    help="without --teacher: in the last round keep the base rate for --epochs - N epochs, then "
                         "halve it every epoch for N (0 = the default: halve from the last round's second epoch). "
                         "Lets one long round from a good alignment (--align-with) train as far as the rounds do")
    ap.add_argument("--pcen", action="store_true",
                    help="train on PCEN of the log-mel (pcen_frames; experimental: the exported model then "
                         "expects PCEN input, which only offline wrappers compute)")
    ap.add_argument("--pcen-time", type=float, default=0.4, metavar="S",
                    help="with --pcen: time constant of the running energy, in seconds (default 0.4)")
    ap.add_argument("--init", metavar="DIR",
                    help="start from this earlier run's weights (LANG_float.keras) and feature "
                         "normalisation (LANG_norm.npz) instead of random weights")
    ap.add_argument("--init-lang", choices=["ko", "en"],
                    help="with --init: that run's language when it is not --lang (a cross-lingual start): "
                         "every layer but the phone output is loaded from it, the output starts random, "
                         "and its feature normalisation is kept")
    args = ap.parse_args()
    args.init_lang = args.init_lang or args.lang
    if args.consistent and not args.teacher:
        sys.exit("train_acoustic: --consistent needs at least one --teacher DIR")
    if (args.temperature != 1.0 or args.emission_weight) and not args.consistent:
        sys.exit("train_acoustic: --temperature and --emission-weight need --consistent")
    if args.label_weight and not args.consistent:
        sys.exit("train_acoustic: --label-weight needs --consistent (without it, --teacher's targets replace the labels)")
    if not 0 <= args.label_weight <= 1 or (args.label_weight and args.mixup):
        sys.exit("train_acoustic: --label-weight must be in 0..1 and cannot go with --mixup (mixed inputs have no label)")
    if args.temperature <= 0 or args.emission_weight < 0:
        sys.exit("train_acoustic: --temperature must be > 0 and --emission-weight >= 0")
    if args.swa and (not args.teacher or not 2 <= args.swa <= args.epochs):
        sys.exit("train_acoustic: --swa N needs --teacher and 2 <= N <= --epochs")
    if args.decay_epochs and (args.teacher or not 1 <= args.decay_epochs < args.epochs):
        sys.exit("train_acoustic: --decay-epochs N goes without --teacher and needs 1 <= N < --epochs")
    if args.mixup and not args.consistent:
        sys.exit("train_acoustic: --mixup needs --consistent (mixed inputs have no labels, only teachers' answers)")
    if not 0 <= args.noisy_student <= 1 or (args.noisy_student and not args.consistent):
        sys.exit("train_acoustic: --noisy-student P needs --consistent and 0 <= P <= 1")
    if not 0 <= args.student_reverb <= 1 or (args.student_reverb and not args.consistent):
        sys.exit("train_acoustic: --student-reverb P needs --consistent and 0 <= P <= 1")
    if not 0 < args.student_rt60[0] <= args.student_rt60[1] or args.student_drr[0] > args.student_drr[1]:
        sys.exit("train_acoustic: --student-rt60 LO HI needs 0 < LO <= HI and --student-drr LO HI needs LO <= HI")
    if (args.student_snr or args.student_noise) and not args.noisy_student:
        sys.exit("train_acoustic: --student-snr and --student-noise only go with --noisy-student P (P > 0)")
    args.student_snr = args.student_snr or (0.0, 20.0)
    if args.student_snr[0] > args.student_snr[1]:
        sys.exit("train_acoustic: --student-snr LO HI needs LO <= HI")
    args.student_noise = args.student_noise or os.path.join(args.data, "noise")
    if args.noisy_student and not os.path.exists(os.path.join(args.student_noise, "manifest.csv")):
        sys.exit(f"train_acoustic: --student-noise {args.student_noise}: no manifest.csv")
    for opt, d, lang in [("--teacher", d, args.lang) for d in args.teacher or []] + \
            ([("--init", args.init, args.init_lang)] if args.init else []) + \
            ([("--align-with", args.align_with, args.lang)] if args.align_with else []):
        for f in (f"{lang}_float.keras", f"{lang}_norm.npz"):
            if not os.path.exists(os.path.join(d, f)):
                sys.exit(f"train_acoustic: {opt} {d}: no {f} (an --out folder of train_acoustic.py)")
    if args.pcen_time != 0.4 and not args.pcen or args.pcen_time <= 0:
        sys.exit("train_acoustic: --pcen-time S goes with --pcen and needs S > 0")
    if args.pcen and (args.teacher or args.align_from_init):
        sys.exit("train_acoustic: --pcen goes without --teacher and --align-from-init (those networks "
                 "score log-mel input; align with --align-with DIR instead)")
    if args.align_from_init and not args.init:
        sys.exit("train_acoustic: --align-from-init needs --init DIR (the network that aligns)")
    if args.init_lang != args.lang and not args.init:
        sys.exit("train_acoustic: --init-lang needs --init DIR (a run of that language)")
    if args.align_with and args.align_from_init:
        sys.exit("train_acoustic: give --align-from-init or --align-with DIR, not both")
    if args.init_lang != args.lang and args.align_from_init:
        sys.exit("train_acoustic: --align-from-init cannot go with --init-lang: "
                 f"a {args.init_lang} network has no {args.lang} phones to align with")
    own_front = args.pcen_time if args.pcen else 0.0
    for opt, d, lang in ([("--init", args.init, args.init_lang)] if args.init else []) + \
            ([("--align-with", args.align_with, args.lang)] if args.align_with else []):
        theirs = run_pcen_time(d, lang)
        if theirs != own_front:
            sys.exit(f"train_acoustic: {opt} {d}: trained on another front end (PCEN time constant "
                     f"{theirs:g} s, this run {own_front:g}; 0 = log-mel)")
    teacher_pcen = [run_pcen_time(d, args.lang) for d in args.teacher or []]
    if any(teacher_pcen) and not args.consistent:
        sys.exit("train_acoustic: a PCEN teacher (--pcen run) needs --consistent")
    if args.teacher:
        args.rounds = 1
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    import tensorflow as tf
    import keras
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)
    from kws.phonesets import ENGLISH, KOREAN
    pset = KOREAN if args.lang == "ko" else ENGLISH
    P = len(pset.phones)

    data = prepare(args)
    utts = data["meta"]["utts"]
    feats_raw = data["feats"]
    aug_raw = data["aug"]
    words_of = [u["words"] for u in utts]
    tr0 = [i for i, u in enumerate(utts) if u["part"] == "train"]
    tr = [i for i, u in enumerate(utts) if u["part"] in ("train", "train_sp")]
    dv = [i for i, u in enumerate(utts) if u["part"] == "dev"]
    ps = pcen_smoother(args.pcen_time) if args.pcen else None
    if args.pcen:  # the network's input; feats_raw (log-mel) stays for trimming and --align-with
        feats_in = [pcen_frames(f, ps) for f in feats_raw]
        aug_in = [pcen_frames(a, ps) if len(a) else a for a in aug_raw]
        log(f"PCEN front end: the network sees pcen_frames() of the log-mel (time constant {args.pcen_time:g} s)")
    else:
        feats_in, aug_in = feats_raw, aug_raw
    all_tr = np.concatenate([feats_in[i] for i in tr0])
    mean = all_tr.mean(0).astype(np.float64)
    std = (all_tr.std(0) + 1e-3).astype(np.float64)
    del all_tr
    if args.init:  # the weights only make sense in the normalisation they were trained with
        z = np.load(os.path.join(args.init, f"{args.init_lang}_norm.npz"))
        mean, std = z["mean"].astype(np.float64), z["std"].astype(np.float64)
    np.savez(os.path.join(args.out, f"{args.lang}_norm.npz"), mean=mean, std=std,  # for --teacher
             pcen_time=args.pcen_time if args.pcen else 0.0)
    feats = [((f - mean) / std).astype(np.float32) for f in feats_in]
    augs = [((a - mean) / std).astype(np.float32) if len(a) else a for a in aug_in]
    stats = {}
    for part, ids in (("train", tr0), ("dev", dv)):
        sets = {}
        for i in ids:
            s = sets.setdefault(utts[i]["set"], {"utterances": 0, "hours": 0.0, "speakers": set()})
            s["utterances"] += 1
            s["hours"] += utts[i]["dur"] / 3600
            s["speakers"].add(utts[i]["speaker"])
        stats[part] = {k: {"utterances": v["utterances"], "hours": round(v["hours"], 3),
                           "speakers": len(v["speakers"])} for k, v in sets.items()}
    log(f"data: {json.dumps(stats)}")

    # flat start
    ali = {u: uniform_align(feats_raw[u], words_of[u], pset) for u in tr + dv}
    flat_ali = dict(ali)
    if args.init_align:
        n_init = 0
        zs = [np.load(f) for f in args.init_align]
        for u in tr + dv:
            key = f"{utts[u]['set']}|{utts[u]['path']}".replace("/", "|")
            z = next((z for z in zs if key in z.files), None)
            if z is None:
                continue
            ali[u] = on_own_axis(z[key].astype(np.int32), len(feats_raw[u]), utts[u].get("speed", 1.0))
            n_init += 1
        log(f"initial alignments from {args.init_align} for {n_init} of {len(tr + dv)} utterances")
        if not (args.align_from_init or args.align_with):  # (with them, a network aligns the others below)
            have = set(u for u in tr + dv if ali[u] is not flat_ali[u])
            tr0 = [u for u in tr0 if u in have]
            tr = [u for u in tr if u in have]
            log(f"training on the {len(tr)} utterances (incl. speed copies) that have one")
    flat = dict(ali)
    # --consistent: the augmentation runs outside the network (make_distiller), once per batch
    inner_aug = not args.consistent
    model = build_model(P, None, specaug=args.specaug and inner_aug,
                        freq_warp=args.freq_warp if inner_aug else 0.0)
    if args.init and args.init_lang != args.lang:
        n = load_body(model, args.init, args.init_lang,
                      len((ENGLISH if args.init_lang == "en" else KOREAN).phones))
        log(f"initial weights of {n} layers (all but the phone output) and normalisation from the "
            f"{args.init_lang} run {args.init}")
    elif args.init:
        model.load_weights(os.path.join(args.init, f"{args.lang}_float.keras"))
        log(f"initial weights and normalisation from {args.init}")
    aligner = None
    if args.align_from_init:
        aligner, feats_al, whose = model, feats, "the --init network"
    elif args.align_with:  # its own normalisation, which need not be this run's
        aligner, a_mean, a_std = load_teachers([args.align_with], P, args.lang)[0]
        feats_al = [((f - a_mean) / a_std).astype(np.float32) for f in feats_raw]
        whose = f"the network of {args.align_with}"
    if aligner is not None:
        ali, n_new = align_with_model(aligner, feats_al, utts, words_of, pset, ali, flat_ali,
                                      [u for u in tr + dv if utts[u]["part"] != "train_sp"],
                                      args.align_prior_scale)
        log(f"forced alignment with {whose} for {n_new} utterances (and their speed copies); "
            f"training on {len(tr)}")
        flat = dict(ali)
        del aligner, feats_al
    if args.freq_warp > 0:
        log(f"frequency warping (VTLP): factor uniform in {1 - args.freq_warp:.2f}..{1 + args.freq_warp:.2f} per segment")
    if args.specaug:
        log("SpecAugment: 2 mel bands of up to 6 channels and 2 stretches of up to 6 frames masked per segment")
    teachers = load_teachers(args.teacher, P, args.lang) if args.teacher else []
    if teachers:
        log(f"distilling from the mean posterior of {len(teachers)} teachers: {args.teacher}")
    # soft targets (the teachers' posteriors) or the alignment's phone indices
    base_lr = 1e-3 if args.init else 2e-3
    if args.consistent:
        augment = ([freq_warp_layer(args.freq_warp)] if args.freq_warp > 0 else []) + \
                  ([spec_augment_layer()] if args.specaug else [])
        student_noise = None
        if args.noisy_student:
            bank, starts = noise_bank(args.student_noise, SEG + CONTEXT - 1)
            student_noise = (bank, starts, args.noisy_student, *args.student_snr)
            log(f"noisy student: {len(bank)} frames of noise from {args.student_noise}, mixed into "
                f"{args.noisy_student:.0%} of the student's segments at {args.student_snr[0]:g}.."
                f"{args.student_snr[1]:g} dB; the teachers score them clean")
        student_reverb = None
        if args.student_reverb:
            student_reverb = (args.student_reverb, *args.student_rt60, *args.student_drr)
            log(f"reverberant student: {args.student_reverb:.0%} of the student's segments in rooms of RT60 "
                f"{args.student_rt60[0]:g}-{args.student_rt60[1]:g} s, direct-to-reverberant ratio "
                f"{args.student_drr[0]:g}..{args.student_drr[1]:g} dB; the teachers score them dry")
        trainer = make_distiller(model, augment, teachers, mean, std, mixup=args.mixup,
                                 temperature=args.temperature, emission_weight=args.emission_weight,
                                 label_weight=args.label_weight, student_noise=student_noise,
                                 teacher_pcen=teacher_pcen, student_reverb=student_reverb)
        trainer.compile(optimizer=keras.optimizers.Adam(base_lr))
        log("consistent distillation: the teachers score each augmented batch the student sees")
    else:
        loss, metric = (("categorical_crossentropy", "categorical_accuracy") if teachers
                        else ("sparse_categorical_crossentropy", "accuracy"))
        model.compile(optimizer=keras.optimizers.Adam(base_lr), loss=loss, weighted_metrics=[metric])
        trainer = model
    log(f"model: {model.count_params()} parameters, context {CONTEXT} frames, lookahead {LOOKAHEAD}")
    use_aug = not args.no_aug and all(len(augs[i]) for i in tr0)
    if args.no_aug:
        tr = tr0
    history = []
    nz = [((pcen_frames(f, ps) if args.pcen else f) - mean) / std
          for f in noise_segments(args.data, args.noise_segments, args.seed)]
    nz = [f.astype(np.float32) for f in nz]
    Xn = np.stack(nz) if nz else np.zeros((0, SEG + CONTEXT - 1, N_MELS), np.float32)
    Yn = np.zeros((len(nz), SEG), np.int32)
    Wn = np.ones((len(nz), SEG), np.float32)
    log(f"{len(nz)} speech-free segments labelled sil")
    for rnd in range(args.rounds):
        X, Y, W, _ = make_segments(feats, ali, tr)
        X, Y, W = np.concatenate([X, Xn]), np.concatenate([Y, Yn]), np.concatenate([W, Wn])
        if use_aug:
            Xa, Ya, Wa, _ = make_segments(augs, ali, tr0)  # same lengths -> same alignment
            X, Y, W = np.concatenate([X, Xa]), np.concatenate([Y, Ya]), np.concatenate([W, Wa])
        Xd, Yd, Wd, _ = make_segments(feats, ali, dv)
        if teachers and not args.consistent:
            t0 = time.time()
            Y = teacher_targets(teachers, X, mean, std)
            Yd = teacher_targets(teachers, Xd, mean, std)
            log(f"round {rnd}: teacher posteriors for {len(X)} + {len(Xd)} segments in {time.time() - t0:.0f} s")
        log(f"round {rnd}: {len(X)} training segments of {SEG} frames")
        data_tr, data_dv = ((X, W), (Xd, Wd)) if args.consistent and not args.label_weight \
            else ((X, Y, W), (Xd, Yd, Wd))
        ds = tf.data.Dataset.from_tensor_slices(data_tr).shuffle(len(X), seed=args.seed + rnd) \
            .batch(args.batch).prefetch(2)
        dds = tf.data.Dataset.from_tensor_slices(data_dv).batch(64)
        lr = base_lr if rnd < args.rounds - 1 else base_lr / 2
        trainer.optimizer.learning_rate.assign(lr)
        cb = []
        snapshots: list[list[np.ndarray]] = []
        if teachers and args.swa:  # constant rate; average the last N epochs' weights (Izmailov et al. 2018);
            # batch-norm statistics are averaged with the rest, not re-estimated: the snapshots lie close together
            first = args.epochs - args.swa
            cb = [keras.callbacks.LearningRateScheduler(lambda e, _lr: base_lr / 2),
                  keras.callbacks.LambdaCallback(on_epoch_end=lambda e, _logs: snapshots.append(
                      [w.copy() for w in model.get_weights()]) if e >= first else None)]
        elif teachers or (rnd == args.rounds - 1 and args.decay_epochs):
            # one long round (teachers' always, --decay-epochs' last): constant, then halving at the end
            cb = [keras.callbacks.LearningRateScheduler(
                constant_then_halving(base_lr, args.epochs, args.decay_epochs or min(6, args.epochs - 1)))]
        elif rnd == args.rounds - 1:
            cb = [keras.callbacks.LearningRateScheduler(
                lambda e, _lr: lr * (0.5 ** e) if e else lr)]
        h = trainer.fit(ds, epochs=args.epochs, validation_data=dds, verbose=2, callbacks=cb)
        history.append({k: [float(v) for v in vs] for k, vs in h.history.items()})
        if snapshots:
            model.set_weights([np.mean(ws, axis=0) for ws in zip(*snapshots)])
            log(f"round {rnd}: weights averaged over the last {len(snapshots)} epochs (SWA)")
        del ds, X, Y, W
        # re-align train and dev with the network
        post = predict_utts(model, feats, tr + dv)
        counts = np.bincount(np.concatenate([ali[u] for u in tr]), minlength=P).astype(np.float64)
        prior = (counts + 1) / (counts.sum() + P)
        t0 = time.time()
        ali, fails = realign(post, words_of, pset, prior, flat, args.align_prior_scale)
        log(f"round {rnd}: realigned {len(post)} utterances in {time.time() - t0:.0f} s, {fails} failed")
    # final dev evaluation (alignment from the final model)
    post_dv = predict_utts(model, feats, dv)
    ev_float = evaluate(post_dv, ali, words_of, pset)
    log(f"dev float: {ev_float}")
    train_time = time.time() - t_start

    os.makedirs(args.model_dir, exist_ok=True)
    tfl = os.path.join(args.model_dir, f"{args.lang}.tflite")
    model.save(os.path.join(args.out, f"{args.lang}_float.keras"))
    em, size = export_tflite(model, mean, std, P, [feats_in[i] for i in tr0], tfl)
    post_q, contract = tflite_posteriors(tfl, feats_in, dv)
    ev_int8 = evaluate(post_q, ali, words_of, pset)
    log(f"dev int8: {ev_int8}")
    n_par = int(model.count_params())
    macs = count_macs(P)
    meta = {
        "format": "kws acoustic model, TFLite int8",
        "phone_set": pset.name, "phone_set_id": pset.id, "phones": list(pset.phones), "n_phones": P,
        "chunk_frames": CHUNK, "context_frames": CONTEXT, "lookahead_frames": LOOKAHEAD,
        "input_frames": CHUNK + CONTEXT - 1,
        "streaming": (f"input = the {CONTEXT - 1} frames before the chunk's window plus {CHUNK} new frames; "
                      f"output frame i (0-based) is the posterior of input frame i + {CONTEXT - 1 - LOOKAHEAD}, "
                      f"i.e. the model sees {LOOKAHEAD} frames of look-ahead; at stream start pad the left "
                      f"with copies of the first frame"),
        "tensors": contract,
        "feature": {"type": "PCEN of log-mel" if args.pcen else "log-mel", "function": "kws.features.log_mel"
                    + (f", then tools/train_acoustic.py pcen_frames, time constant {args.pcen_time:g} s" if args.pcen else ""),
                    **({"pcen_time_s": args.pcen_time} if args.pcen else {}), "sample_rate": 16000,
                    "frame_length_ms": 25, "frame_shift_ms": 10, "n_mels": N_MELS,
                    "normalisation": "global mean/variance of the training set, folded into the first conv"},
        "architecture": {"first_conv": FIRST, "separable_blocks": BLOCKS, "activation": "relu",
                         "batch_norm": "folded", "output": "softmax"},
        "training": {"data": stats, "skipped_words": data["meta"]["skipped_words"],
                     "words": data["meta"]["words"], "dropped_utterances": len(data["meta"]["dropped"]),
                     "speech_free_segments": args.noise_segments,
                     "augmentation": ("one noisy copy per training utterance (room reverberation from "
                                      "pyroomacoustics shoebox rooms with p=0.5, a random channel "
                                      "EQ with p=0.6, noise/ at 5-20 dB SNR, gain -12..+6 dB) and speed-perturbed copies at 0.9 and 1.1 "
                                      "(soxr resampling; half of them noisy), aligned on their own"
                                      if use_aug else "none") + (SPECAUG_NOTE if args.specaug else "")
                                     + (f"; frequency warping (VTLP) by 1+-{args.freq_warp:g} per segment"
                                        if args.freq_warp > 0 else ""),
                     "initial_alignment": " + ".join(
                         ["PocketSphinx en-us forced alignment (tools/align_pocketsphinx.py)"] * bool(args.init_align)
                         + ["forced alignment with the --init network"] * args.align_from_init
                         + ([f"forced alignment with the network of run "
                             f"{os.path.basename(os.path.normpath(args.align_with))} (--align-with)"]
                            if args.align_with else [])) or "flat start",
                     "method": (f"distillation: {args.epochs} epochs of cross-entropy against the mean "
                                f"posterior of {len(teachers)} earlier runs (teachers)"
                                + (", computed on the same augmented batch the student sees" if args.consistent
                                   else "")
                                + (f", batches mixed with shuffled copies (Beta({args.mixup:g}, {args.mixup:g}))"
                                   if args.mixup else "")
                                + (f", posteriors softened by temperature {args.temperature:g}"
                                   if args.temperature != 1.0 else "")
                                + (f", plus {args.emission_weight:g} x the squared error of the decoder's "
                                   "emissions (log-ratio to the best phone, floored at -6)"
                                   if args.emission_weight else "")
                                + (f"; the student's copy of {args.noisy_student:.0%} of the segments mixed with "
                                   f"noise ({os.path.basename(os.path.normpath(args.student_noise))}) at "
                                   f"{args.student_snr[0]:g}-{args.student_snr[1]:g} dB SNR in the log-mel "
                                   "power domain, the teachers scoring the clean one" if args.noisy_student else "")
                                + (f"; the student's copy of {args.student_reverb:.0%} of the segments given a "
                                   f"late reverberant tail (RT60 {args.student_rt60[0]:g}-{args.student_rt60[1]:g} s, "
                                   f"direct-to-reverberant {args.student_drr[0]:g}..{args.student_drr[1]:g} dB) in "
                                   "the log-mel power domain, the teachers scoring the dry one"
                                   if args.student_reverb else "")
                                + (f"; weights averaged over the last {args.swa} epochs (SWA)" if args.swa else "")
                                + (f"; loss = {1 - args.label_weight:g} x that + {args.label_weight:g} x "
                                   "cross-entropy against the alignments' labels" if args.label_weight else "")
                                if teachers else
                                f"Viterbi training, {args.rounds} rounds x {args.epochs} epochs"
                                + (f" (the rate halved over the last {args.decay_epochs})" if args.decay_epochs else "")
                                + ", "
                                "frame-level cross-entropy, 2-state left-to-right phones, optional sil"),
                     "initial_weights": (f"earlier run {os.path.basename(os.path.normpath(args.init))} (--init)"
                                         + (f", {args.init_lang} network without its phone output (--init-lang)"
                                            if args.init_lang != args.lang else "")) if args.init else "random",
                     "teachers": [os.path.basename(os.path.normpath(d)) for d in args.teacher or []],
                     "seed": args.seed, "wall_time_s": round(train_time), "history": history},
        "dev": {"speakers": stats["dev"], "float": ev_float, "int8": ev_int8,
                "note": "frame accuracy vs forced alignment by the final float model; PER = greedy "
                        "argmax decode (collapse repeats, drop sil) vs transcript phones; per_phone_loop = "
                        "Viterbi over a free loop of 2-state phones (min 2 frames, insertion penalty 4 nats)"},
        "parameters": n_par, "macs_per_frame": macs, "macs_per_second": macs * 100,
        "tflite_bytes": size,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(os.path.join(args.model_dir, f"{args.lang}.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
    log(f"wrote {tfl} ({size} bytes) and {args.lang}.json; total {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
