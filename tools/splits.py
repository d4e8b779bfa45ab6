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
