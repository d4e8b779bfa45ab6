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
