#!/usr/bin/env python3
"""Footprint and speed of the Cortex-M4F firmware, against the goals of issue 5.

    python tools/firmware_report.py [--json] [--net MODEL.tflite|.kwn] [--quick]

Builds the firmware with the acoustic network linked into flash (the shipped English
model, kws/data/acoustic/en.tflite, exported to .kwn; else --net; else the small test
fixture network, which is said in the output) and reports:

- flash: .text + .data (+ .ARM.exidx) from ``arm-none-eabi-size -A``; RAM: .data + .bss +
  .stack (the emulator-only .testbuf in PSRAM is excluded: it stands in for flash
  contents loaded at run time in tests);
- stack: the high-water mark of the painted stack after a full detection run, and the
  largest single frame from the ``-fstack-usage`` (.su) files;
- bytes per keyword: .kwm size for 1 and for N enrolled keywords (and the decoder's RAM);
- instructions per second of audio for the front end, the network and the decoder,
  measured under ``qemu -icount shift=0`` (1 instruction = 1 ns of virtual time) with
  the CMSDK timer read around each stage; a loop of known length checks the
  instructions-per-tick factor on the same run.

``--quick`` uses 1 s of audio and skips the keyword sweep (for the test suite).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_firmware as fw  # noqa: E402

GOALS = {"ram_bytes": 64 * 1024, "flash_bytes": 256 * 1024, "bytes_per_keyword": 1024,
         "instructions_per_second_total": 20_000_000}
EN_KEYWORDS = ["hey jarvis", "computer", "okay speaker", "turn on the lights", "stop the music",
               "next song", "volume up", "good morning"]
KO_KEYWORDS = ["자비스야", "헤이 카카오", "불 켜 줘", "음악 멈춰", "다음 곡", "소리 크게", "좋은 아침", "안녕 스피커"]


def section_sizes(elf: Path) -> dict[str, int]:
    r = subprocess.run([fw.CROSS + "size", "-A", str(elf)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines()[2:]:
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def max_su(build_dir: Path) -> tuple[int, str]:
    best, where = 0, ""
    for su in build_dir.rglob("*.su"):
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) > best:
                best, where = int(parts[1]), parts[0]
    return best, where


def pick_net(arg: str | None) -> tuple[Path | None, str]:
    try:
        from kws.acoustic import DATA_DIR
        import kws.netblob  # noqa: F401
    except ImportError:
        return None, "none (kws.netblob not available)"
    if arg:
        return Path(arg), f"--net {arg}"
    if (DATA_DIR / "en.tflite").is_file():
        return DATA_DIR / "en.tflite", "shipped English acoustic model (kws/data/acoustic/en.tflite)"
    return fw.ROOT / "tests" / "data" / "net_ko16.tflite", "test fixture network (NOT the real model: sizes are not representative)"


def test_audio(seconds: float, tmp: Path, lang: str) -> np.ndarray:
    """Synthesised speech (espeak-ng) padded to ``seconds``, else a synthetic signal."""
    n = int(16000 * seconds)
    if shutil.which("espeak-ng"):
        from kws.audio import load_audio

        text = "hey jarvis, turn on the lights. computer, next song." if lang == "en" else "자비스야, 불 켜 줘. 헤이 카카오."
        wav = tmp / "s.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-w", str(wav), text], check=True, capture_output=True)
        x = load_audio(wav)
        x = np.resize(x, n) if len(x) < n else x[:n]
        return x.astype(np.int16)
    t = np.arange(n) / 16000
    return (8000 * np.sin(2 * np.pi * (200 + 1000 * t) * t)).astype(np.int16)


def report(net_arg: str | None = None, quick: bool = False) -> dict:
    import kws

    net_path, net_desc = pick_net(net_arg)
    rep: dict = {"network": net_desc, "goals": GOALS}
    with tempfile.TemporaryDirectory(prefix="kwsrep") as d:
        tmp = Path(d)
        kwn = None
        if net_path is not None:
            kwn = tmp / "net.kwn"
            kwn.write_bytes(fw.net_blob(net_path))
            rep["network_blob_bytes"] = kwn.stat().st_size
        bdir = fw.FW_DIR / "build-report"
        elf = fw.build(net=kwn, build_dir=bdir)
        s = section_sizes(elf)
        flash = s.get(".text", 0) + s.get(".data", 0) + s.get(".ARM.exidx", 0)
        ram = s.get(".data", 0) + s.get(".bss", 0) + s.get(".stack", 0)
        rep.update(flash_bytes=flash, ram_bytes=ram, sections={k: v for k, v in s.items() if not k.startswith(".debug")})
        su, su_fn = max_su(bdir)
        rep["stack_largest_frame"] = {"bytes": su, "function": su_fn}

        # Keyword model: bytes per keyword.
        lang = "en"
        if kwn is not None:
            from kws.phonesets import KOREAN

            if int.from_bytes(kwn.read_bytes()[16:20], "little") == KOREAN.id:
                lang = "ko"
        words = EN_KEYWORDS if lang == "en" else KO_KEYWORDS
        n_sweep = 2 if quick else len(words)
        one = kws.enroll(words[:1], lang=lang).model.to_bytes()
        many = kws.enroll(words[:n_sweep], lang=lang).model.to_bytes()
        rep["keyword_model"] = {"lang": lang, "keywords": n_sweep, "bytes": len(many),
                                "bytes_one_keyword": len(one),
                                "bytes_per_keyword": len(many) / n_sweep,
                                "marginal_bytes_per_keyword": (len(many) - len(one)) / (n_sweep - 1)}
        (tmp / "m.kwm").write_bytes(many)
        (tmp / "m1.kwm").write_bytes(one)

        # Speed: a detection run under -icount.
        seconds = 1.0 if quick else 5.0
        pcm = test_audio(seconds, tmp, lang)
        pcm.astype("<i2").tofile(tmp / "a.pcm")
        args = ["model", str(tmp / "m.kwm")]
        if kwn is not None:
            args += ["detect", str(tmp / "a.pcm")]
        else:  # no network: front end alone, then the decoder on synthetic posteriors
            args += ["feat", str(tmp / "a.pcm"), str(tmp / "f.f32")]
        res = fw.run(args, elf=elf, icount=True)
        if res.errors:
            raise fw.FirmwareError(f"measurement run failed: {res.errors}")
        ipt = res.insns_per_tick
        t = res.times[-1]
        secs = t["samples"] / 16000
        ips = {"frontend": t["fe"] * ipt / secs, "network": t["net"] * ipt / secs if kwn is not None else None,
               "decoder": t["dec"] * ipt / secs}
        if kwn is None:
            n_ph = int.from_bytes(many[20:22], "little")
            lp = np.log(np.random.default_rng(0).dirichlet(np.ones(n_ph), size=int(100 * seconds))).astype("<f4")
            r2 = fw.decode_posteriors(many, lp, elf=elf, icount=True)
            ips["decoder"] = r2.times[-1]["dec"] * r2.insns_per_tick / seconds
        ips["total"] = sum(v for v in ips.values() if v)
        if kwn is not None:  # the same run with one keyword (a product's usual wake word)
            r1 = fw.run(["model", str(tmp / "m1.kwm"), "detect", str(tmp / "a.pcm")], elf=elf, icount=True)
            t1 = r1.times[-1]
            s1 = t1["samples"] / 16000
            one_kw = {k: t1[key] * r1.insns_per_tick / s1 for k, key in
                      (("frontend", "fe"), ("network", "net"), ("decoder", "dec"))}
            one_kw["total"] = sum(one_kw.values())
            rep["instructions_per_second_one_keyword"] = one_kw
        rep.update(instructions_per_tick=ipt, audio_seconds=secs, instructions_per_second=ips,
                   stack_max_bytes=res.summary["stack_used"], stack_reserved_bytes=res.summary["stack_size"],
                   arena_bytes=res.boot.get("arena"), frontend_bytes=res.boot.get("frontend_bytes"),
                   network_ram_bytes=res.nets[-1]["ram_bytes"] if res.nets else None,
                   decoder_bytes=res.models[-1]["decoder_bytes"] if res.models else None,
                   detections=len(res.detections))
    kpk = rep["keyword_model"]["bytes_per_keyword"]
    rep["meets"] = {"ram": ram <= GOALS["ram_bytes"], "flash": flash <= GOALS["flash_bytes"],
                    "bytes_per_keyword": kpk <= GOALS["bytes_per_keyword"],
                    "instructions": ips["total"] <= GOALS["instructions_per_second_total"],
                    "instructions_one_keyword": (rep["instructions_per_second_one_keyword"]["total"]
                                                 <= GOALS["instructions_per_second_total"]
                                                 if "instructions_per_second_one_keyword" in rep else None)}
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--net", help="network to link into flash (.tflite or .kwn)")
    ap.add_argument("--quick", action="store_true", help="1 s of audio, 2 keywords")
    a = ap.parse_args(argv)
    why = fw.missing_tools()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 1
    rep = report(a.net, a.quick)
    if a.json:
        print(json.dumps(rep, indent=1))
        return 0
    ok = lambda b: "ok" if b else "OVER"  # noqa: E731
    ips, km = rep["instructions_per_second"], rep["keyword_model"]
    print(f"network:  {rep['network']}" + (f", blob {rep['network_blob_bytes']} B" if "network_blob_bytes" in rep else ""))
    print(f"flash:    {rep['flash_bytes']:7d} B   goal <= {GOALS['flash_bytes']} B  {ok(rep['meets']['flash'])}")
    print(f"RAM:      {rep['ram_bytes']:7d} B   goal <= {GOALS['ram_bytes']} B  {ok(rep['meets']['ram'])}"
          f"  (arena {rep['arena_bytes']} B: front end {rep['frontend_bytes']}, network {rep['network_ram_bytes']},"
          f" decoder {rep['decoder_bytes']}; stack reserved {rep['stack_reserved_bytes']} B)")
    print(f"stack:    {rep['stack_max_bytes']} B used (watermark); largest frame {rep['stack_largest_frame']['bytes']} B"
          f" in {rep['stack_largest_frame']['function']}")
    print(f"keywords: {km['bytes']} B for {km['keywords']} ({km['lang']}) = {km['bytes_per_keyword']:.0f} B/keyword"
          f" (one keyword: {km['bytes_one_keyword']} B, marginal {km['marginal_bytes_per_keyword']:.0f} B)"
          f"  goal <= {GOALS['bytes_per_keyword']}  {ok(rep['meets']['bytes_per_keyword'])}")
    fmt = lambda v: "  n/a" if v is None else f"{v / 1e6:6.2f} M"  # noqa: E731
    print(f"speed:    instructions per second of audio ({rep['audio_seconds']:.1f} s, -icount shift=0,"
          f" {rep['instructions_per_tick']:.2f} instructions/timer tick)")
    print(f"          front end {fmt(ips['frontend'])}  network {fmt(ips['network'])}  decoder {fmt(ips['decoder'])}"
          f"  total {fmt(ips['total'])}   goal < 20 M  {ok(rep['meets']['instructions'])}"
          f"  ({km['keywords']} keywords)")
    if "instructions_per_second_one_keyword" in rep:
        o = rep["instructions_per_second_one_keyword"]
        print(f"          front end {fmt(o['frontend'])}  network {fmt(o['network'])}  decoder {fmt(o['decoder'])}"
              f"  total {fmt(o['total'])}   goal < 20 M  {ok(rep['meets']['instructions_one_keyword'])}"
              f"  (1 keyword)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
