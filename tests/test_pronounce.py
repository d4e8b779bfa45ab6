"""Tests of the pronunciation front end (kws.pronunciation, kws.phonesets, kws.g2p_fallback).

No test may touch the network: nltk.download is replaced by a function that fails the
test, and the NLTK cmudict.zip that g2pk needs is built into a temporary KWS_CACHE_DIR.
"""

from __future__ import annotations

import importlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kws.errors import KwsError, PronunciationError
from kws.phonesets import ENGLISH, KOREAN, PHONE_SETS, get_phone_set, phone_set_by_id
from kws.pronunciation import Pronunciation, Word, pronounce

pron_mod = importlib.import_module("kws.pronunciation")
g2p_fallback = importlib.import_module("kws.g2p_fallback")

EN_ID = 315761107
KO_ID = 4269847869


def _one_line_error(text: str, lang: str, *needles: str) -> str:
    with pytest.raises(PronunciationError) as info:
        pronounce(text, lang)
    msg = str(info.value)
    assert msg and "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def _check_in_set(p: Pronunciation) -> None:
    ps = get_phone_set(p.lang)
    for w in p.words:
        assert 1 <= len(w.variants) <= 4
        assert len(set(w.variants)) == len(w.variants)
        for v in w.variants:
            assert v and all(ph in ps for ph in v) and "sil" not in v


# --- phone sets -------------------------------------------------------------------------


def test_phone_set_contents():
    assert len(ENGLISH) == 40 and ENGLISH.phones[0] == "sil"
    assert ENGLISH.phones[1:4] == ("AA", "AE", "AH") and ENGLISH.phones[-1] == "ZH"
    assert len(KOREAN) == 35 and KOREAN.phones[0] == "sil"
    assert KOREAN.phones[-7:] == ("K", "N", "T", "L", "M", "P", "NG")
    assert KOREAN.index("g") == 1 and KOREAN.index("NG") == 34
    assert ENGLISH.index("ZH") == 39
    assert PHONE_SETS == {"en": ENGLISH, "ko": KOREAN}


def test_phone_set_ids_are_stable():
    assert ENGLISH.id == EN_ID
    assert KOREAN.id == KO_ID
    assert ENGLISH.id != KOREAN.id
    assert all(isinstance(ps.id, int) and 0 <= ps.id < 2**32 for ps in (ENGLISH, KOREAN))
    assert phone_set_by_id(EN_ID) is ENGLISH
    assert phone_set_by_id(KO_ID) is KOREAN


def test_unknown_phone_set_id_and_phone():
    with pytest.raises(KwsError) as info:
        phone_set_by_id(12345)
    assert "\n" not in str(info.value) and "0x00003039" in str(info.value)
    with pytest.raises(ValueError):  # graph code relies on ValueError/KeyError here
        ENGLISH.index("AH0")
    with pytest.raises(KwsError):
        get_phone_set("fr")


# --- Korean ---------------------------------------------------------------------------


def test_korean_cmudict_zip_built_offline(offline_cache: Path):
    pronounce("신라면", "ko")
    z = offline_cache / "nltk_data" / "corpora" / "cmudict.zip"
    assert z.is_file()
    with zipfile.ZipFile(z) as f:
        head = f.read("cmudict/cmudict").decode().splitlines()[:5]
    assert all(len(line.split()) >= 3 and line.split()[1].isdigit() for line in head)
    assert not [n for n in os.listdir(z.parent) if n.endswith(".tmp")]


def test_nltk_reads_the_built_zip(offline_cache: Path):
    import nltk
    from nltk.corpus import cmudict as nltk_cmudict

    pron_mod._korean_g2p()
    assert str(nltk.data.find("corpora/cmudict.zip")).startswith(str(offline_cache))
    d = nltk_cmudict.dict()
    assert d["tomato"] == [["T", "AH0", "M", "EY1", "T", "OW2"], ["T", "AH0", "M", "AA1", "T", "OW2"]]


def test_sinramyeon_lateralises():
    p = pronounce("신라면", "ko")
    assert p.lang == "ko" and p.text == "신라면"
    assert len(p.words) == 1 and p.words[0].text == "실라면"
    # 실 s i L | 라 r a | 면 m y eo N  (ㅕ is the glide y plus eo)
    assert p.words[0].variants == (("s", "i", "L", "r", "a", "m", "y", "eo", "N"),)
    assert str(p) == "신라면: s i L r a m y eo N"


def test_gachi_palatalises():
    p = pronounce("같이", "ko")
    assert p.words[0].text == "가치"
    assert p.words[0].variants == (("g", "a", "ch", "i"),)


def test_hey_kakao_two_words():
    p = pronounce("헤이 카카오", "ko")
    assert [w.text for w in p.words] == ["헤이", "카카오"]
    assert p.words[0].variants == (("h", "e", "i"),)
    assert p.words[1].variants == (("k", "a", "k", "a", "o"),)
    assert str(p) == "헤이 카카오: h e i | k a k a o"


def test_jarvis_ya():
    p = pronounce("자비스야", "ko")
    assert p.words[0].variants == (("j", "a", "b", "i", "s", "eu", "y", "a"),)
    _check_in_set(p)


def test_korean_punctuation_dropped_and_digits_spoken():
    p = pronounce("  헤이,  카카오!  ", "ko")
    assert p.text == "헤이 카카오" and len(p.words) == 2
    p = pronounce("119", "ko")  # said digit by digit: 일일구 -> 이릴구
    assert p.words[0].text == "이릴구"
    assert p.words[0].variants == (("i", "r", "i", "L", "g", "u"),)


def test_korean_descriptive_variant_kept():
    p = pronounce("예의", "ko")  # standard 예의 (y e eu i), colloquial 예이
    assert p.words[0].variants == (("y", "e", "eu", "i"), ("y", "e", "i"))
    assert str(p) == "예의: (y e eu i / y e i)"


def test_korean_codas_and_compound_vowels():
    assert pronounce("값이", "ko").words[0].variants[0] == ("g", "a", "P", "ss", "i")
    assert pronounce("읽다", "ko").words[0].variants[0] == ("i", "K", "tt", "a")
    assert pronounce("안녕하세요", "ko").words[0].variants[0] == (
        "a", "N", "n", "y", "eo", "NG", "h", "a", "s", "e", "y", "o")
    # defensive tables: every syllable maps to phones of the set
    for code in range(0xAC00, 0xD7A4, 97):
        ph = pron_mod._syllable_phones(chr(code))
        assert ph and all(x in KOREAN for x in ph)
    assert pron_mod._syllable_phones("닭") == ("d", "a", "K")
    assert pron_mod._syllable_phones("왜") == ("w", "e")
    assert pron_mod._syllable_phones("의") == ("eu", "i")


@pytest.mark.parametrize(
    "text, needles",
    [
        ("", ["no pronounceable text"]),
        ("   \t\n ", ["no pronounceable text"]),
        ("?!...", ["no pronounceable text"]),
        ("헤이 siri", ["mixes scripts", "--lang en", "Hangul", "'siri'"]),
        ("hey jarvis", ["mixes scripts", "--lang en"]),
        ("자비스 😀", ["U+1F600"]),
        ("自비스", ["U+81EA"]),
        ("привет", ["U+043F"]),
        ("ㅋㅋ", ["jamo"]),
        ("가 나 다 라 마 바 사 아 자", ["too long", "9 words"]),
        ("안녕하세요 " * 6, ["too long", "72 phones"]),
    ],
)
def test_korean_errors(text: str, needles: list[str]):
    _one_line_error(text, "ko", *needles)


# --- English --------------------------------------------------------------------------


def test_hey_jarvis_from_cmudict():
    p = pronounce("Hey, Jarvis!", "en")
    assert p.text == "hey jarvis" and p.lang == "en"
    assert [w.text for w in p.words] == ["hey", "jarvis"]
    assert p.words[0].variants == (("HH", "EY"),)
    # CMUdict 1.1.3 has two entries for jarvis, in this order
    assert p.words[1].variants == (("JH", "AA", "R", "V", "AH", "S"), ("JH", "AA", "R", "V", "IH", "S"))
    assert str(p) == "hey jarvis: HH EY | (JH AA R V AH S / JH AA R V IH S)"


def test_alternate_pronunciations_kept():
    either = pronounce("either", "en").words[0].variants
    assert either[:2] == (("IY", "DH", "ER"), ("AY", "DH", "ER"))
    tomato = pronounce("tomato", "en").words[0].variants
    assert len(tomato) > 1 and ("T", "AH", "M", "AA", "T", "OW") in tomato


def test_variants_deduped_after_stress_removal_and_capped():
    # CMUdict: abstract = AE0 B S T R AE1 K T / AE1 B S T R AE2 K T, the same phones
    assert pronounce("abstract", "en").words[0].variants == (("AE", "B", "S", "T", "R", "AE", "K", "T"),)
    assert pronounce("adverse", "en").words[0].variants == (
        ("AE", "D", "V", "ER", "S"), ("AH", "D", "V", "ER", "S"))
    # CMUdict has at most 4 entries per word, so check the cap on the helper itself
    seqs = [("A",), ("B",), ("A",), ("C",), ("D",), ("E",), ()]
    assert pron_mod._dedupe(seqs) == (("A",), ("B",), ("C",), ("D",))


def test_oov_word_uses_neural_fallback():
    assert "zorbify" not in pron_mod._cmu()
    p = pronounce("zorbify", "en")
    v = p.words[0].variants
    assert 1 <= len(v) <= pron_mod.MAX_VARIANTS
    for reading in v:
        assert 4 <= len(reading) <= 12 and reading[0] == "Z" and "B" in reading and "F" in reading
    _check_in_set(p)


def _unstressed(phones: list[str]) -> tuple[str, ...]:
    return tuple(p.rstrip("012") for p in phones)


def test_fallback_beam_search_ranks_by_the_models_probability():
    """nbest's scores are the log-probabilities the model gives its readings (checked by
    scoring each one afresh), most likely first, and its best is at least as likely as the
    greedy reading (for "zorbify" strictly: greedy decoding misses the best reading)."""
    m = g2p_fallback.load_model()
    for word in ["zorbify", "nabu", "kakao", "activationist", "x", "o'brien"]:
        nb = m.nbest(word)
        assert 2 <= len(nb) <= 8, word
        scores = [s for _, s in nb]
        assert scores == sorted(scores, reverse=True), word
        assert len({tuple(p) for p, _ in nb}) == len(nb), word  # no reading twice
        for phones, s in nb:
            assert phones and all(p in g2p_fallback.PHONEMES[4:] for p in phones), word
            assert m.score(word, phones) == pytest.approx(s, abs=1e-4), word
        assert scores[0] >= m.score(word, m.predict(word)) - 1e-6, word
    assert m.nbest("zorbify")[0][1] > m.score("zorbify", m.predict("zorbify")) + 0.05


def test_fallback_guesses_are_the_readings_the_model_finds_likely():
    """From text alone a word CMUdict lacks gets the model's most likely reading; asked for
    more guesses (enrolment with a recording), the readings it finds likely: "nabu" as
    "nab-oo" and "nah-boo", while "lumi", which the model is sure of, stays one. Every kept
    reading has at least GUESS_RATIO of the best reading's probability (readings differing
    only in stress summed), and none left out has as much unless the cap is reached."""
    one = pronounce("okay nabu", "en")
    assert one.words[1].variants == (("N", "AE", "B", "UW"),) and one.words[1].guessed
    assert not one.words[0].guessed  # "okay" is in CMUdict
    four = pronounce("okay nabu", "en", guesses=4)
    assert four.words[1].variants[:2] == (("N", "AE", "B", "UW"), ("N", "AA", "B", "UW"))
    assert four.words[0].variants == one.words[0].variants  # dictionary words keep their entries
    assert pronounce("lumi", "en", guesses=4).words[0].variants == (("L", "UW", "M", "IY"),)
    for word in ["nabu", "kakao", "tiko", "kaia", "zorbify", "quizzaciously"]:
        merged: dict[tuple[str, ...], float] = {}
        for phones, s in g2p_fallback.nbest(word):
            merged[_unstressed(phones)] = merged.get(_unstressed(phones), 0.0) + float(np.exp(s))
        best = max(merged.values())
        kept = g2p_fallback.variants(word, ENGLISH, 4)
        assert kept[0] == max(merged, key=merged.get), word
        assert all(merged[k] >= g2p_fallback.GUESS_RATIO * best for k in kept), word
        left = [k for k in merged if k not in kept]
        assert all(merged[k] < g2p_fallback.GUESS_RATIO * best for k in left) or len(kept) == 4, word
        assert g2p_fallback.variants(word, ENGLISH, 1) == kept[:1]
        assert g2p_fallback.variants(word, ENGLISH, 4, min_ratio=1.0) == kept[:1]
        assert pronounce(word, "en").words[0].variants == tuple(kept[:1])
        probs = g2p_fallback.readings(word, ENGLISH, 4)
        assert [k for k, _ in probs] == kept and [p for _, p in probs] == pytest.approx([merged[k] for k in kept])
    for bad in (0, 5, 1.5, None):
        with pytest.raises(PronunciationError, match="guesses must be 1 to 4"):
            pronounce("nabu", "en", guesses=bad)


def test_fallback_matches_g2p_en(monkeypatch: pytest.MonkeyPatch):
    """The numpy port has g2p_en's phoneme table and gives its predict() output exactly."""
    import ast
    import re

    import nltk

    monkeypatch.setattr(nltk, "download", lambda *a, **k: False)  # g2p_en's import asks for a tagger
    g2p_mod = pytest.importorskip("g2p_en.g2p")
    src = Path(g2p_mod.__file__).read_text()
    m = re.search(r"self\.phonemes = (\[.*?\]) \+ (\[.*?\])", src, re.S)
    their_phonemes = ast.literal_eval(m.group(1)) + ast.literal_eval(m.group(2))
    assert tuple(their_phonemes) == g2p_fallback.PHONEMES
    # g2p_en's G2p() would load NLTK's cmudict and homographs; predict() needs only these.
    ref = object.__new__(g2p_mod.G2p)
    ref.graphemes = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")
    ref.g2idx = {g: i for i, g in enumerate(ref.graphemes)}
    ref.idx2p = dict(enumerate(their_phonemes))
    ref.load_variables()
    ours = g2p_fallback.load_model()
    for word in ["zorbify", "activationist", "kubernetes", "quizzaciously", "o'brien", "jarvisa", "x"]:
        assert ours.predict(word) == ref.predict(word), word


def test_oov_without_g2p_en(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(g2p_fallback, "checkpoint_path", lambda: None)
    msg = _one_line_error("zorbify", "en", "g2p_en", "not installed")
    assert "pip install" in msg
    pronounce("hey", "en")  # dictionary words still work


def test_english_does_not_import_g2p_en():
    import sys

    before = "g2p_en" in sys.modules
    pronounce("blorptastic", "en")
    assert ("g2p_en" in sys.modules) == before


@pytest.mark.parametrize(
    "text, needles",
    [
        ("", ["no pronounceable text"]),
        ("  \n\t ", ["no pronounceable text"]),
        ("... ?! --", ["no pronounceable text"]),
        ("hey r2d2", ["write numbers as words", "'hey r two d two'"]),
        ("agent 007", ["write numbers as words", "'agent zero zero seven'"]),
        ("hey HAL 9000", ["as they are said", "'hey HAL nine thousand'"]),
        ("the 1st mate", ["'the first mate'"]),
        ("R2-D2", ["'R two-D two'"]),
        ("hey \u0662", ["write numbers as words"]),  # ARABIC-INDIC DIGIT TWO
        ("헤이 카카오", ["--lang ko"]),
        ("hey 자비스", ["--lang ko"]),
        ("hey привет", ["U+043F"]),
        ("hey 😀", ["U+1F600"]),
        ("one two three four five six seven eight nine", ["too long", "9 words"]),
        ("antidisestablishmentarianism " * 3, ["too long", "phones"]),
    ],
)
def test_english_errors(text: str, needles: list[str]):
    _one_line_error(text, "en", *needles)


def test_unknown_language():
    _one_line_error("hey", "fr", "unsupported language", "'fr'")


def test_english_normalisation():
    p = pronounce("  Café  O’Brien's ", "en")
    assert p.text == "cafe o'brien's"
    _check_in_set(p)


def test_word_needs_phones():
    with pytest.raises(PronunciationError):
        Word("x", ())
    with pytest.raises(PronunciationError):
        Word("x", ((),))


@pytest.mark.parametrize("texts,lang", [
    ("자비스야", "ko"), (["헤이 카카오", "안녕 123"], "ko"), ("ㅎㅇ", "ko"),
    ("hey jarvis", "en"), (["Ève", "naïve robot"], "en"), ("ｈｅｙ ｊａｒｖｉｓ", "en"),
])
def test_guess_language_follows_the_script(texts, lang):
    from kws.pronunciation import guess_language
    assert guess_language(texts) == lang


@pytest.mark.parametrize("texts,why", [
    ("hey 카카오", "mixes Hangul and Latin"), ("123", "neither Hangul nor Latin"), ("🙂", "neither"),
    ([], "no wake word"), (["jarvis", "자비스"], "two languages"), ([7], "must be a string"),
])
def test_guess_language_refuses_in_one_line(texts, why):
    from kws.pronunciation import guess_language
    with pytest.raises(PronunciationError) as exc:
        guess_language(texts)
    assert why in str(exc.value) and "\n" not in str(exc.value)
