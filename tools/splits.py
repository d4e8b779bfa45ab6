"""Train/dev speaker split shared by the training and evaluation tools.

Held-out figures are only honest if evaluation uses exactly the speakers that training
never saw, so both tools take the split from here.
"""

from __future__ import annotations

import hashlib

#: Korean dev speakers (ko_emotiontts), as suggested by the data README.
KO_DEV = frozenset({"pfa", "pma", "nea", "ava", "kih"})

#: Share of en_speechocean speakers held out.
EN_DEV_SHARE = 0.15


def en_dev_speakers(speakers) -> set[str]:
    """The held-out en_speechocean speakers: the first 15 % by MD5 of the speaker id."""
    spk = sorted(set(speakers), key=lambda s: hashlib.md5(s.encode()).hexdigest())
    return set(spk[: round(EN_DEV_SHARE * len(spk))])


#: The real training sets of each language's acoustic model.
TRAINING_SETS = {"ko": ("ko_emotiontts",), "en": ("en_speechocean", "en_ljspeech")}


def is_dev(set_name: str, rows: list[dict]):
    """A predicate row -> True for the held-out (dev) rows of ``set_name``'s manifest rows."""
    if set_name == "ko_emotiontts":
        return lambda r: r["speaker"] in KO_DEV
    if set_name == "en_speechocean":
        dev = en_dev_speakers(r["speaker"] for r in rows)
        return lambda r: r["speaker"] in dev
    return lambda r: False  # en_ljspeech: one speaker, all training



def write_dev_manifest(set_name: str, out: str, data: str = "../shared/data") -> int:
    """Write the held-out rows of ``set_name`` as a manifest with absolute paths, so that
    ``kws-bench`` can take exactly the speakers training never saw. Returns the row count."""
    import csv
    from pathlib import Path
    src = Path(data).resolve() / set_name
    with open(src / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    pred = is_dev(set_name, rows)
    keep = [dict(r, path=str(src / r["path"])) for r in rows if pred(r)]
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["path", "duration_s", "speaker", "lang", "text"])
        w.writeheader()
        w.writerows({k: r[k] for k in w.fieldnames} for r in keep)
    return len(keep)


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="Write a training set's held-out (dev) speakers as a manifest for "
                                            "kws-bench: python tools/splits.py ko_emotiontts -o ko_dev.csv")
    p.add_argument("set_name", choices=["ko_emotiontts", "en_speechocean"])
    p.add_argument("-o", "--output", required=True, help="manifest to write (paths inside are absolute)")
    p.add_argument("--data", default="../shared/data", help="folder holding the data sets (default ../shared/data)")
    a = p.parse_args()
    n = write_dev_manifest(a.set_name, a.output, a.data)
    print(f"wrote {a.output}: {n} held-out clips of {a.set_name}")
