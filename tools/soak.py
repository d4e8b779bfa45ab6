#!/usr/bin/env python3
"""Soak test: stream many hours of perturbed real audio through ONE kws.Detector.

    python tools/soak.py --data ../shared/data --hours 24 [--lang en] [--json OUT]
                         [--plot OUT.png] [--seed 0] [--keyword 'hey jarvis']

The stream is generated on the fly (never held in memory): real speech clips from the
data folder's manifests, looped in a seeded random order, each with a random gain (-30 to
+20 dB, so some clips clip hard), a random speed (0.9x to 1.1x, resampled with soxr) and,
half the time, noise from ``noise/`` mixed in at 0 to 30 dB SNR; between them stretches of
noise only (1 to 20 s) and of digital silence (0.5 to 10 s). It is cut into chunks of
random size (1 sample to 2 s, log-uniform) and fed to a single Detector in one process,
with no reset.

Measured: hours streamed, wall time, the process's RSS over time (from /proc/self/statm,
or psutil where there is no /proc), the range of the decoder's per-frame keyword scores
(frames where a keyword holds no token are left out) and whether any was not finite, the
number of detections, and a probe check: a fixed utterance of the enrolled phrase (espeak-ng
speech if espeak-ng is installed, else the first clip of the data whose text is the phrase)
is inserted at the start and again at the end of the stream, each time after the same 3 s
of digital silence and at the same phase of the network's chunking, and its detections
(keyword, score, start and end relative to the insertion) and per-frame scores must be
identical both times.

Progress goes to stderr; --json writes every figure; --plot draws RSS against hours
streamed (needs matplotlib: pip install '.[plot]'). Exit status 0 when the probe results
match, every score is finite and RSS grew by less than --max-growth-mb after warm-up;
1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

RATE = 16000
FRAME_SHIFT = 160
PROBE_LEAD_S = 3.0  # digital silence before each probe
PROBE_TAIL_S = 3.0  # and after it, so its detection is reported before what follows

SPEECH_FOLDERS = {
    "en": ["en_speechocean", "en_ljspeech", "en_phrases", "en_speech_commands", "en_wakewords"],
    "ko": ["ko_emotiontts"],
}
DEFAULT_KEYWORD = {"en": "hey jarvis", "ko": "자비스야"}
ESPEAK_VOICE = {"en": "en-us", "ko": "ko"}


# --------------------------------------------------------------------------- memory
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        import psutil  # only where there is no /proc

        return int(psutil.Process().memory_info().rss)


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Clip:
    path: str
    duration_s: float
    text: str


def read_manifest(folder: Path) -> list[Clip]:
    clips = []
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            clips.append(Clip(f"{folder}/{row['path']}", float(row["duration_s"]), row.get("text") or ""))
    return clips


def find_data(explicit: str | None = None) -> Path | None:
    """The data folder: ``explicit`` (--data) if given, else $KWS_DATA, else ../shared/data
    beside the repository; None unless it holds noise/manifest.csv."""
    cands = [explicit] if explicit else [os.environ.get("KWS_DATA"),
                                         Path(__file__).resolve().parents[1] / ".." / "shared" / "data"]
    for cand in cands:
        if cand and (Path(cand) / "noise" / "manifest.csv").is_file():
            return Path(cand).resolve()
    return None


class Source:
    """Endless seeded stream of perturbed segments (int16 16 kHz), generated on demand."""

    def __init__(self, data: Path, lang: str, seed: int) -> None:
        from kws.audio import load_audio

        self._load = load_audio
        self.rng = np.random.default_rng(seed)
        self.speech: list[Clip] = []
        for name in SPEECH_FOLDERS[lang]:
            if (data / name / "manifest.csv").is_file():
                self.speech += [c for c in read_manifest(data / name) if c.duration_s > 0]
        self.noise = [c for c in read_manifest(data / "noise") if c.duration_s > 0]
        if not self.speech or not self.noise:
            raise SystemExit(f"soak: no {lang} speech or no noise manifests under {data}")
        self.order = self.rng.permutation(len(self.speech))
        self.pos = 0
        self.kinds: dict[str, float] = {"speech": 0.0, "noise": 0.0, "silence": 0.0}
        self.clipped_segments = 0

    def _noise(self, n: int) -> np.ndarray:
        """``n`` samples of noise (float, full scale 1) from a random noise clip at a random
        offset; reads only that stretch (Ogg/Opus seeks exactly), looping short clips."""
        import soundfile

        clip = self.noise[int(self.rng.integers(len(self.noise)))]
        with soundfile.SoundFile(clip.path) as f:
            if f.samplerate != RATE or f.channels != 1:  # not the case for the shipped data
                from kws.audio import to_pcm16

                x = to_pcm16(f.read(dtype="float32"), f.samplerate).astype(np.float32) / 32768.0
            elif f.frames >= n:
                f.seek(int(self.rng.integers(0, f.frames - n + 1)))
                x = f.read(n, dtype="float32")
            else:
                x = f.read(dtype="float32")
        if len(x) == 0:
            return np.zeros(n, np.float32)
        if len(x) < n:
            x = np.tile(x, -(-n // len(x)))
        return np.asarray(x[:n], np.float32)

    def _speech(self) -> np.ndarray:
        from soxr import resample

        if self.pos >= len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.speech)), 0
        clip = self.speech[self.order[self.pos]]
        self.pos += 1
        x = self._load(clip.path).astype(np.float32) / 32768.0
        speed = float(self.rng.uniform(0.9, 1.1))
        if abs(speed - 1.0) > 1e-3:  # play `speed` times faster: resample from RATE*speed
            x = resample(x, RATE * speed, RATE, quality="HQ").astype(np.float32)
        if self.rng.random() < 0.5 and len(x):
            noise = self._noise(len(x))
            snr_db = float(self.rng.uniform(0, 30))
            ps, pn = float(np.mean(x ** 2)) + 1e-12, float(np.mean(noise ** 2)) + 1e-12
            x = x + noise * math.sqrt(ps / (pn * 10 ** (snr_db / 10)))
        return x * 10 ** (float(self.rng.uniform(-30, 20)) / 20)

    def segments(self) -> Iterator[np.ndarray]:
        while True:
            u = self.rng.random()
            if u < 0.80:
                x, kind = self._speech(), "speech"
            elif u < 0.92:
                x = self._noise(int(float(self.rng.uniform(1, 20)) * RATE)) * 10 ** (float(self.rng.uniform(-30, 10)) / 20)
                kind = "noise"
            else:
                x, kind = np.zeros(int(float(self.rng.uniform(0.5, 10)) * RATE), np.float32), "silence"
            y = np.rint(x * 32768.0)
            if np.abs(y).max(initial=0) > 32767:
                self.clipped_segments += 1
            self.kinds[kind] += len(y) / RATE
            yield np.clip(y, -32768, 32767).astype(np.int16)


def chunked(segments: Iterator[np.ndarray], rng: np.random.Generator, total: int) -> Iterator[np.ndarray]:
    """Exactly ``total`` samples of the segments, in chunks of log-uniform size 1..32000."""
    buf = np.zeros(0, np.int16)
    left = total
    while left > 0:
        n = min(left, int(math.exp(rng.uniform(0, math.log(32000)))))
        while len(buf) < n:
            buf = np.concatenate([buf, next(segments)])
        yield buf[:n]
        buf = buf[n:]
        left -= n


# --------------------------------------------------------------------------- probe
def make_probe(data: Path, lang: str, keyword: str) -> tuple[np.ndarray, str]:
    from kws.audio import load_audio

    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "probe.wav"
            subprocess.run(["espeak-ng", "-v", ESPEAK_VOICE[lang], "-s", "150", "-w", str(wav), keyword],
                           check=True, timeout=60, capture_output=True)
            return load_audio(wav), f"espeak-ng -v {ESPEAK_VOICE[lang]} '{keyword}'"
    for name in SPEECH_FOLDERS[lang]:
        if (data / name / "manifest.csv").is_file():
            for c in read_manifest(data / name):
                if c.text.strip().lower() == keyword.lower():
                    return load_audio(c.path), os.path.relpath(c.path, data)
    raise SystemExit(f"soak: no espeak-ng and no clip of {keyword!r} in {data} for the probe")


def probe_block(probe: np.ndarray) -> np.ndarray:
    lead = np.zeros(int(PROBE_LEAD_S * RATE), np.int16)
    tail = np.zeros(int(PROBE_TAIL_S * RATE), np.int16)
    return np.concatenate([lead, probe, tail])


def feed(det, audio: np.ndarray, offset: int, stats: "Stats", chunk: int = 1600) -> list:
    """Feed ``audio`` in fixed chunks; return its detections."""
    out = []
    for i in range(0, len(audio), chunk):
        out += stats.run(det, audio[i:i + chunk], offset + i)
    return out


class Stats:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.score_min = math.inf
        self.score_max = -math.inf
        self.non_finite = 0
        self.detections: list = []
        self.frames = 0
        self.score_log: list[np.ndarray] = []  # filled only while recording the probe
        self.record = False

    def take(self, dets: list, scores: list) -> list:
        from kws.decoder import NO_SCORE

        for s in scores:
            self.frames += len(s)
            if self.record:
                self.score_log.append(s.copy())
            if not s.size:
                continue
            self.non_finite += int(np.count_nonzero(~np.isfinite(s)))
            real = s[(s > NO_SCORE / 2) & np.isfinite(s)]
            if real.size:
                self.score_min = min(self.score_min, float(real.min()))
                self.score_max = max(self.score_max, float(real.max()))
        self.detections += dets
        return dets

    def run(self, det, chunk: np.ndarray, offset: int) -> list:
        scores: list = []
        return self.take(det.process(chunk, scores=scores), scores)


def relative(dets: list, insert_sample: int) -> list[dict]:
    """The probe block's own detections (those starting after its insertion; one still
    pending from the audio before may be reported during the lead), frames relative to it."""
    t0 = insert_sample // FRAME_SHIFT
    return [{"keyword": d.keyword, "score": d.score, "start_frame": d.start_frame - t0,
             "end_frame": d.end_frame - t0} for d in dets if d.start_frame >= t0]


# --------------------------------------------------------------------------- main
def soak(data: Path, hours: float, lang: str = "en", keyword: str | None = None, seed: int = 0,
         threshold: float | None = None, sample_every_s: float = 300.0, progress=sys.stderr) -> dict:
    from kws import enroll
    from kws.detector import Detector

    keyword = keyword or DEFAULT_KEYWORD[lang]
    model = enroll([keyword], lang).model
    det = Detector(model, threshold=threshold)
    probe, probe_source = make_probe(data, lang, keyword)
    block = probe_block(probe)
    # The network is run on windows every chunk_frames frames: both probes must start at
    # the same sample phase modulo that period for their posteriors to be comparable.
    period = det.acoustic.card.chunk_frames * FRAME_SHIFT
    src = Source(data, lang, seed)
    chunk_rng = np.random.default_rng(seed + 1)
    stats = Stats(det.names)
    rss0 = rss_bytes()
    samples_rss: list[tuple[float, int]] = [(0.0, rss0)]
    t_start = time.perf_counter()
    cpu_start = time.process_time()

    # 1. the probe at the start of the stream
    stats.record = True
    rec1_at = stats.frames  # absolute frame index of the first recorded score row
    first = feed(det, block, 0, stats)
    first_scores = np.concatenate(stats.score_log) if stats.score_log else np.zeros((0, 1))
    stats.score_log, stats.record = [], False
    fed = len(block)

    # 2. hours of perturbed audio
    body = int(hours * 3600 * RATE)
    body += (-(fed + body)) % period  # so the second probe starts at the same phase
    next_sample = fed + int(sample_every_s * RATE)
    last_report = time.perf_counter()
    for chunk in chunked(src.segments(), chunk_rng, body):
        stats.run(det, chunk, fed)
        fed += len(chunk)
        if fed >= next_sample:
            samples_rss.append((fed / RATE / 3600, rss_bytes()))
            next_sample += int(sample_every_s * RATE)
            now = time.perf_counter()
            if progress is not None and now - last_report >= 10:
                last_report = now
                h = fed / RATE / 3600
                print(f"soak: {h:.2f} h of {hours:g} h, {now - t_start:.0f} s, "
                      f"{h * 3600 / (now - t_start):.0f}x real time, RSS {samples_rss[-1][1] / 2**20:.1f} MiB, "
                      f"{len(stats.detections)} detections", file=progress, flush=True)

    # 3. the probe again, same phase, then end of stream
    assert fed % period == 0
    second_at = fed
    n_before = len(stats.detections)
    stats.record = True
    rec2_at = stats.frames
    second = feed(det, block, fed, stats)
    second_scores = np.concatenate(stats.score_log) if stats.score_log else np.zeros((0, 1))
    stats.record = False
    fed += len(block)
    tail_scores: list = []
    stats.take(det.flush(scores=tail_scores), tail_scores)
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    samples_rss.append((fed / RATE / 3600, rss_bytes()))
    assert len(stats.detections) - n_before >= len(second)

    rel1, rel2 = relative(first, 0), relative(second, second_at)
    # Per-frame scores from the end of the lead on, by absolute frame index (the rows output
    # while feeding differ at the edges: a frame straddling the insertion, the latency).
    lead_frames = int(PROBE_LEAD_S * RATE) // FRAME_SHIFT
    a = first_scores[0 // FRAME_SHIFT + lead_frames - rec1_at:]
    b = second_scores[second_at // FRAME_SHIFT + lead_frames - rec2_at:]
    k = min(len(a), len(b))
    probe_frames = len(probe) // FRAME_SHIFT
    # frames where both sides have a complete path, or either has a candidate worth the
    # name (above the emission floor + 2): in digital silence every path ties, and which
    # tied path is the oldest, hence when a keyword briefly has no complete path at all,
    # depends on older audio
    no = -1e29
    live = (((a[:k] > no) & (b[:k] > no)) | (np.maximum(a[:k], b[:k]) > model.emission_floor + 2.0)).all(axis=1)
    # RSS growth after warm-up (the first tenth of the run, at least one sample in)
    warm = [r for h, r in samples_rss if h >= 0.1 * hours] or [samples_rss[-1][1]]
    growth = samples_rss[-1][1] - warm[0]
    hours_streamed = fed / RATE / 3600
    return {
        "lang": lang,
        "keyword": keyword,
        "threshold": det._decoder.thresholds()[0],
        "seed": seed,
        "hours_requested": hours,
        "hours_streamed": hours_streamed,
        "hours_by_kind": {k: v / 3600 for k, v in src.kinds.items()},
        "clipped_segments": src.clipped_segments,
        "wall_s": wall,
        "cpu_s": cpu,
        "x_real_time": hours_streamed * 3600 / wall,
        "frames": stats.frames,
        "detections": len(stats.detections),
        "detections_per_hour": len(stats.detections) / hours_streamed,
        "score_min": stats.score_min if math.isfinite(stats.score_min) else None,
        "score_max": stats.score_max if math.isfinite(stats.score_max) else None,
        "non_finite_scores": stats.non_finite,
        "rss_start_mib": rss0 / 2**20,
        "rss_after_warmup_mib": warm[0] / 2**20,
        "rss_end_mib": samples_rss[-1][1] / 2**20,
        "rss_max_mib": max(r for _, r in samples_rss) / 2**20,
        "rss_growth_after_warmup_mib": growth / 2**20,
        "rss_samples": [[round(h, 4), r] for h, r in samples_rss],
        "probe_source": probe_source,
        "probe_seconds": len(probe) / RATE,
        "probe_start": rel1,
        "probe_end": rel2,
        "probe_detections_equal": rel1 == rel2,
        # per-frame scores output while the probe and the silence after it were fed (the
        # lead's frames are left out: they still carry the state of the audio before),
        # compared where it means something (``live`` above)
        "probe_score_frames": k,
        "probe_score_frames_compared": int(np.count_nonzero(live)),
        "probe_scores_equal": bool(k >= probe_frames and live.any() and np.array_equal(a[:k][live], b[:k][live])),
    }


def plot(result: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = [p[0] for p in result["rss_samples"]]
    r = [p[1] / 2**20 for p in result["rss_samples"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(h, r, marker=".", lw=1)
    ax.set_xlabel("hours of audio streamed")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(0, max(r) * 1.15)
    ax.set_title(f"kws.Detector soak ({result['lang']}, '{result['keyword']}'): "
                 f"{result['hours_streamed']:.1f} h in {result['wall_s'] / 60:.1f} min")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="speech data folder (default $KWS_DATA or ../shared/data)")
    p.add_argument("--hours", type=float, default=24.0, help="hours of audio to stream (default 24)")
    p.add_argument("--lang", choices=sorted(SPEECH_FOLDERS), default="en")
    p.add_argument("--keyword", default=None, help="phrase to enrol and probe (default 'hey jarvis' / '자비스야')")
    p.add_argument("--threshold", type=float, default=None, help="override the keyword's threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=float, default=None, metavar="S",
                   help="seconds of audio between RSS samples (default hours*3600/200, at least 10)")
    p.add_argument("--max-growth-mb", type=float, default=20.0,
                   help="RSS growth after warm-up that fails the run (MiB, default 20)")
    p.add_argument("--json", metavar="OUT", help="write every figure as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="plot RSS against hours (needs matplotlib)")
    args = p.parse_args(argv)
    if not args.hours > 0:
        p.error("--hours must be positive")
    data = find_data(args.data)
    if data is None:
        print("soak: error: no speech data (give --data, set KWS_DATA, or put it at ../shared/data)",
              file=sys.stderr)
        return 1
    every = args.sample_every or max(10.0, args.hours * 3600 / 200)
    res = soak(data, args.hours, args.lang, args.keyword, args.seed, args.threshold, every)
    res["max_growth_mb"] = args.max_growth_mb
    ok = (res["probe_detections_equal"] and res["probe_scores_equal"] and res["non_finite_scores"] == 0
          and res["rss_growth_after_warmup_mib"] < args.max_growth_mb)
    res["ok"] = ok
    summary = {k: v for k, v in res.items() if k != "rss_samples"}
    print(json.dumps(summary, ensure_ascii=False, indent=1), file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        plot(res, args.plot)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
