"""Phone sets: the ordered phone inventories an acoustic model's posteriors are indexed by.

A keyword model and the acoustic model that feeds it must agree on the phone order, so
each set has a stable ``id`` (CRC-32 of its name and phones, see docs/kwm-format.md).
Renaming, adding or reordering a phone changes the id: never edit a released set,
add a new one (``en-v2``, ...) instead.

English, ``en-v1``
    ``sil`` and the 39 ARPAbet phones of CMUdict without stress marks (stress is not
    needed to spot a keyword and would split the training data three ways).

Korean, ``ko-v1``
    ``sil``, then onsets, vowels, glides and codas, romanised in lower case for sounds
    at the start of a syllable and in upper case for codas, which sound different
    (unreleased stops, lateral ``L``) from the onset with the same letter.

    Onsets, one per Hangul initial that has a sound (initial ㅇ is silent and has none)::

        ㄱ g   ㄲ kk  ㄴ n   ㄷ d   ㄸ tt  ㄹ r   ㅁ m   ㅂ b   ㅃ pp
        ㅅ s   ㅆ ss  ㅈ j   ㅉ jj  ㅊ ch  ㅋ k   ㅌ t   ㅍ p   ㅎ h

    Simple vowels: ㅏ a, ㅓ eo, ㅗ o, ㅜ u, ㅡ eu, ㅣ i, and ㅐ / ㅔ both ``e`` (merged
    in modern Seoul speech).  Compound vowels are a glide plus a simple vowel::

        ㅑ y a    ㅕ y eo   ㅛ y o    ㅠ y u    ㅒ y e    ㅖ y e
        ㅘ w a    ㅝ w eo   ㅙ w e    ㅞ w e    ㅚ w e    ㅟ w i
        ㅢ eu i

    Codas.  After g2pk's rules every coda is already one of the 7 representative
    sounds, but all 27 final consonants are mapped so that unexpected input still
    gives the sound a speaker would make::

        ㄱ ㄲ ㅋ ㄳ ㄺ      -> K
        ㄴ ㄵ ㄶ            -> N
        ㄷ ㅅ ㅆ ㅈ ㅊ ㅌ ㅎ -> T
        ㄹ ㄼ ㄽ ㄾ ㅀ      -> L
        ㅁ ㄻ               -> M
        ㅂ ㅍ ㅄ ㄿ         -> P
        ㅇ                  -> NG
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cached_property

from .errors import KwsError, PronunciationError

__all__ = [
    "PhoneSet",
    "ENGLISH",
    "KOREAN",
    "PHONE_SETS",
    "get_phone_set",
    "phone_set_by_id",
]


@dataclass(frozen=True)
class PhoneSet:
    """An ordered phone inventory; a phone's position is its posterior column."""

    name: str
    lang: str
    phones: tuple[str, ...]

    def __post_init__(self) -> None:
        # A duplicate would make index() ambiguous and the id meaningless.
        if len(set(self.phones)) != len(self.phones):
            raise ValueError(f"phone set {self.name}: duplicate phones")
        if any(not p or any(c.isspace() for c in p) for p in self.phones):
            raise ValueError(f"phone set {self.name}: phones must be non-empty and without spaces")

    @property
    def id(self) -> int:
        """Stable 32-bit id stored in model files to check that models agree on the phone order."""
        return zlib.crc32(f"{self.name}:{' '.join(self.phones)}".encode("utf-8"))

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.phones)}

    def index(self, phone: str) -> int:
        """Posterior column of ``phone``; PronunciationError (a ValueError) if not in the set."""
        try:
            return self._positions[phone]
        except KeyError:
            raise PronunciationError(
                f"phone {phone!r} is not in phone set {self.name}; use one of: {' '.join(self.phones)}"
            ) from None

    def __contains__(self, phone: object) -> bool:
        return phone in self._positions

    def __len__(self) -> int:
        return len(self.phones)


ENGLISH = PhoneSet(
    name="en-v1",
    lang="en",
    phones=(
        "sil",
        "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH",
        "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH", "K",
        "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH",
        "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
    ),
)

KOREAN = PhoneSet(
    name="ko-v1",
    lang="ko",
    phones=(
        "sil",
        # onsets
        "g", "kk", "n", "d", "tt", "r", "m", "b", "pp",
        "s", "ss", "j", "jj", "ch", "k", "t", "p", "h",
        # vowels
        "a", "eo", "o", "u", "eu", "i", "e",
        # glides
        "y", "w",
        # codas
        "K", "N", "T", "L", "M", "P", "NG",
    ),
)

PHONE_SETS: dict[str, PhoneSet] = {"en": ENGLISH, "ko": KOREAN}

_BY_ID: dict[int, PhoneSet] = {ps.id: ps for ps in PHONE_SETS.values()}


def get_phone_set(lang: str) -> PhoneSet:
    """The phone set for a language code ("en", "ko")."""
    try:
        return PHONE_SETS[lang]
    except KeyError:
        raise KwsError(
            f"no phone set for language {lang!r}; use one of: {', '.join(sorted(PHONE_SETS))}"
        ) from None


def phone_set_by_id(id: int) -> PhoneSet:  # noqa: A002 - the name mirrors PhoneSet.id
    """The phone set a model file refers to by id; KwsError if this version does not know it."""
    try:
        return _BY_ID[id]
    except (KeyError, TypeError):
        known = ", ".join(f"{ps.name}=0x{ps.id:08x}" for ps in PHONE_SETS.values())
        shown = f"0x{id:08x}" if isinstance(id, int) and id >= 0 else repr(id)
        raise KwsError(
            f"unknown phone-set id {shown} (known: {known}); "
            "the model was built for another phone set: re-create it with this version of kws"
        ) from None
