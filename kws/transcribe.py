"""Sentence-level phone transcription for acoustic-model training.

``kws.pronunciation.pronounce`` is for wake words: strict about the text and limited to
8 words / 60 phones.  Training transcripts are whole sentences, so this module reuses the
same private helpers (same phone sets, same rules) without the length limit, and it is
lenient: punctuation is dropped, and a word that cannot be transcribed is skipped (and
reported through ``skipped``) instead of failing the utterance.

Korean
    g2pk on the whole sentence (its prescriptive output, so rules apply across word
    boundaries), then each Hangul syllable -> onset / vowel / coda phones of ``ko-v1``.
English
    CMUdict's first alternative without stress; words CMUdict lacks go to the neural G2P
    fallback (kws.g2p_fallback) when g2p_en is installed.
"""

from __future__ import annotations

import unicodedata

from .errors import KwsError
from . import pronunciation as _p

__all__ = ["transcribe"]


def _clean_korean(text: str, skipped: list[str] | None) -> str:
    clean = unicodedata.normalize("NFKC", text)
    out = []
    for ch in clean:
        if _p._SYL_FIRST <= ord(ch) <= _p._SYL_LAST or "0" <= ch <= "9":
            out.append(ch)
        else:
            out.append(" ")
    # words dropped for characters we cannot speak (Latin, lone jamo, symbols)
    if skipped is not None:
        for tok in clean.split():
            kept = [c for c in tok if _p._SYL_FIRST <= ord(c) <= _p._SYL_LAST or "0" <= c <= "9"]
            bad = [c for c in tok if not (_p._SYL_FIRST <= ord(c) <= _p._SYL_LAST or "0" <= c <= "9"
                                          or _p._is_punct(c))]
            if bad and not kept:
                skipped.append(tok)
    return " ".join("".join(out).split())


def _transcribe_korean(text: str, skipped: list[str] | None) -> list[list[str]]:
    norm = _clean_korean(text, skipped)
    if not norm:
        return []
    g2p = _p._korean_g2p()
    try:
        surface = g2p(norm).split()
    except Exception:  # g2pk failing on a sentence: fall back to word by word
        surface = []
        for w in norm.split():
            try:
                surface.extend(g2p(w).split())
            except Exception:
                if skipped is not None:
                    skipped.append(w)
    words: list[list[str]] = []
    for w in surface:
        # g2pk may leave non-syllables (digits it could not read, symbols): keep syllables
        syl = "".join(c for c in w if _p._SYL_FIRST <= ord(c) <= _p._SYL_LAST)
        if not syl or len(syl) != len(w):
            if skipped is not None:
                skipped.append(w)
            if not syl:
                continue
        _append_word(words, w, lambda: _p._hangul_word_phones(syl), skipped)
    return words


def _append_word(words: list[list[str]], w: str, phones_of, skipped: list[str] | None) -> None:
    """Append the phones of one word (``phones_of()``), or note the word as skipped where the
    pronunciation layer refuses it: training transcripts must not stop on one odd word."""
    try:
        phones = list(phones_of())
    except KwsError:
        if skipped is not None:
            skipped.append(w)
        return
    if phones:
        words.append(phones)


def _transcribe_english(text: str, skipped: list[str] | None) -> list[list[str]]:
    clean = _p._strip_accents(unicodedata.normalize("NFKC", text).translate(_p._APOSTROPHES))
    spaced = "".join(c if ("a" <= c <= "z" or c == "'" or c.isspace()) else
                     (" " if (_p._is_punct(c) or not c.isalnum()) else "\x00" + c)
                     for c in clean.lower())
    words: list[list[str]] = []
    for tok in spaced.split():
        if "\x00" in tok:  # digits or foreign letters: not speakable from the text
            if skipped is not None:
                skipped.append(tok.replace("\x00", ""))
            continue
        w = tok.strip("'")
        if not w:
            continue
        _append_word(words, w, lambda: _p._english_variants(w)[0], skipped)
    return words


def transcribe(text: str, lang: str, skipped: list[str] | None = None) -> list[list[str]]:
    """Phones per word (first variant) of a whole sentence in the phone set of ``lang``.

    Words that cannot be transcribed are left out; when ``skipped`` is a list they are
    appended to it so the caller can count them.  No length limit.
    """
    if lang == "ko":
        return _transcribe_korean(text, skipped)
    if lang == "en":
        return _transcribe_english(text, skipped)
    raise ValueError(f"unsupported language {lang!r}")
