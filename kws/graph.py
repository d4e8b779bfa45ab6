"""Keyword graphs: phone chains turned into the HMM state graphs the C decoder runs.

A keyword is a left-to-right HMM. Each phone becomes ``n`` states, each with a
self-loop, so a phone lasts at least ``n`` frames and as long as the audio needs. ``n``
is the phone's measured minimum duration (:func:`phone_min_frames`, half its median
duration in the training speech, 4-8 frames) unless a fixed ``states_per_phone`` is
asked for. Pronunciation variants of a word become parallel branches between the
same junctions, so "either" as IY DH ER and AY DH ER costs two short chains rather than
two whole keywords. Between words an optional short pause (one ``sil`` state with a
self-loop) may be taken or skipped.

States are emitted in topological order (every predecessor has a smaller index), which
is what lets the decoder update states in place from last to first
(docs/kwm-format.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .errors import ModelFormatError, PronunciationError
from .phonesets import PhoneSet
from .pronunciation import Pronunciation

STATE_SELF = 0x01
STATE_ENTRY = 0x02
STATE_FINAL = 0x04
#: (format 1.1) A new phone begins here when the path arrives from a predecessor.
STATE_PHONE_START = 0x08
#: (format 2.1) The state's phone pays the uncertainty weight also on frames where it is
#: the best phone. Set by :class:`kws.model_file.KeywordModel` from its ``best_pays``.
STATE_BEST_PAYS = 0x10

#: Keyword flag (format 1.1): score a path by the mean of its phones' mean emissions.
KW_PHONE_MEAN = 0x0001

#: Default number of HMM states per phone: a phone lasts at least this many frames
#: (40 ms). With the free phone loop as filler, a path may otherwise hop through a phone
#: on a 20 ms blip where it happens to be the best phone; on held-out real wake words
#: (kws-bench, 1.18 h of negatives) 2 -> 3 -> 4 states cut the weighted miss rate at
#: 1 FA/h from 53 % to 41 % to 33 % (5: 30 %, 6: 28 %, but fast speech has phones
#: shorter than 50-60 ms, and the decoder's cost grows with the states); docs/decoder.md.
#: Used for phones without a measured minimum; enrolment takes per-phone minimums
#: (:func:`phone_min_frames`) when the language has them.
DEFAULT_STATES_PER_PHONE = 4
#: Most states one phone may have (the per-phone tables and ``--states-per-phone``).
MAX_STATES_PER_PHONE = 8
#: Per-language minimum phone durations, written by tools/phone_durations.py.
DURATIONS_DIR = Path(__file__).resolve().parent / "data" / "phone_durations"
#: Frames a phone may last on average before a path is dropped (max_frames budget).
MAX_FRAMES_PER_PHONE = 25
#: Frames the optional pause between words may last, within that budget.
MAX_PAUSE_FRAMES = 30
#: Longest keyword path the file format can describe (u16).
MAX_FRAMES_LIMIT = 65535


@dataclass(frozen=True)
class State:
    """One HMM state: the phone it emits, its flags and its predecessors (local indices)."""

    phone: int
    flags: int
    preds: tuple[int, ...] = ()


@dataclass
class KeywordGraph:
    """A compiled keyword: its state graph plus what a person needs to read it back."""

    name: str
    pronunciation: str
    states: list[State]
    max_frames: int
    threshold: float
    expected_fa_per_hour: float = -1.0
    #: score by phone (each phone's mean emission, averaged over phones) rather than by
    #: frame; see docs/decoder.md "Normalising by phone"
    phone_mean: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def n_arcs(self) -> int:
        return sum(len(s.preds) for s in self.states)


def _variant_phones(phone_set: PhoneSet, variant: tuple[str, ...], word: str) -> list[int]:
    try:
        return [phone_set.index(p) for p in variant]
    except (KeyError, ValueError) as exc:  # a phone outside the set is a bug upstream
        raise PronunciationError(
            f"pronunciation of {word!r} uses a phone outside {phone_set.name}: {exc}"
        ) from None


def build_graph(
    pron: Pronunciation,
    phone_set: PhoneSet,
    *,
    threshold: float,
    states_per_phone: int | Mapping[str, int] = DEFAULT_STATES_PER_PHONE,
    optional_pause: bool = True,
    name: str | None = None,
    phone_mean: bool = True,
) -> KeywordGraph:
    """Turn a pronunciation into a keyword graph.

    Variants of each word are parallel chains; each chain's first state is entered
    from every final state of the previous word (and from the pause state); the first
    word's first states are entry states and the last word's last states are final.
    The first state of every phone (and the pause state) is marked ``PHONE_START`` so
    that the decoder can score by phone (``phone_mean``, the default: on held-out real
    speech it missed fewer wake words at the same false-alarm rate than scoring by
    frame, docs/decoder.md).

    ``states_per_phone`` is one count for every phone or a mapping phone name -> count
    (phones missing from it get :data:`DEFAULT_STATES_PER_PHONE`).
    """
    if isinstance(states_per_phone, Mapping):
        table = dict(states_per_phone)
        if any(not isinstance(n, int) or not 1 <= n <= MAX_STATES_PER_PHONE for n in table.values()):
            raise ValueError(f"states per phone must be 1 to {MAX_STATES_PER_PHONE}")
        n_states = [table.get(p, DEFAULT_STATES_PER_PHONE) for p in phone_set.phones]
    else:
        if states_per_phone < 1:
            raise ValueError("states_per_phone must be at least 1")
        n_states = [int(states_per_phone)] * len(phone_set.phones)
    if not pron.words:
        raise PronunciationError(f"no pronounceable text in {pron.text!r}")
    sil = phone_set.index("sil")
    states: list[State] = []
    prev_ends: list[int] = []  # states a new word may be entered from
    max_frames = 0
    n_words = len(pron.words)
    for w_i, word in enumerate(pron.words):
        last_word = w_i == n_words - 1
        ends: list[int] = []
        longest = 0
        for variant in word.variants:
            phones = _variant_phones(phone_set, variant, word.text)
            if not phones:
                continue
            longest = max(longest, len(phones))
            for p_i, phone in enumerate(phones):
                for k in range(n_states[phone]):
                    first = p_i == 0 and k == 0
                    flags = STATE_SELF | (STATE_PHONE_START if k == 0 else 0)
                    if first and w_i == 0:
                        flags |= STATE_ENTRY
                    preds = tuple(prev_ends) if first else (len(states) - 1,)
                    states.append(State(phone, flags, preds))
            ends.append(len(states) - 1)
        if not ends:
            raise PronunciationError(f"word {word.text!r} has no phones")
        max_frames += longest * MAX_FRAMES_PER_PHONE
        if last_word:
            for s in ends:
                st = states[s]
                states[s] = State(st.phone, st.flags | STATE_FINAL, st.preds)
        elif optional_pause:
            states.append(State(sil, STATE_SELF | STATE_PHONE_START, tuple(ends)))
            ends = ends + [len(states) - 1]
            max_frames += MAX_PAUSE_FRAMES
        prev_ends = ends
    if len(states) > 65535:
        raise PronunciationError(
            f"{pron.text!r} is too long: {len(states)} states (at most 65535); use a shorter phrase"
        )
    return KeywordGraph(
        name=name if name is not None else pron.text,
        pronunciation=str(pron),
        states=states,
        max_frames=min(max_frames, MAX_FRAMES_LIMIT),
        threshold=float(threshold),
        phone_mean=phone_mean,
    )


def phone_min_frames(phone_set: PhoneSet) -> Mapping[str, int] | None:
    """The measured minimum duration (in frames, = HMM states) of each phone of
    ``phone_set``, or None where none was measured for it.

    Why per phone: a diphthong or an affricate is rarely shorter than 80 ms, a schwa or a
    flap often lasts 30 ms; one minimum for all is either too loose for the long phones
    (a path hops through them on a blip) or too strict for the short ones. The tables
    come from forced alignments of the training speakers (tools/phone_durations.py:
    half of each phone's median duration, 4 to 8 frames); on held-out wake words they
    missed fewer utterances at the same false-alarm rate than 4 states for every phone
    (docs/decoder.md).
    """
    return _load_min_frames(phone_set.lang, phone_set.name)


@lru_cache(maxsize=8)
def _load_min_frames(lang: str, phone_set_name: str) -> Mapping[str, int] | None:
    path = DURATIONS_DIR / f"{lang}.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("phone_set") != phone_set_name:
            return None  # measured for another phone set: not ours
        table = {str(k): int(v) for k, v in raw["min_frames"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFormatError(f"{path}: not a valid phone-duration table ({exc}); "
                               "rebuild it with tools/phone_durations.py --write") from None
    if any(not 1 <= n <= MAX_STATES_PER_PHONE for n in table.values()):
        raise ModelFormatError(f"{path}: minimum durations must be 1 to {MAX_STATES_PER_PHONE} frames")
    return MappingProxyType(table)  # cached and shared: read-only
