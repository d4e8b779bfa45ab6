"""Sentence-level transcription for training: same phone sets as enrolment, no length limit."""

from __future__ import annotations

from kws.phonesets import ENGLISH, KOREAN
from kws.pronunciation import pronounce
from kws.transcribe import transcribe


def test_korean_sentence_applies_g2pk_rules_across_words():
    words = transcribe("신라면을 같이 먹었다.", "ko")
    flat = [p for w in words for p in w]
    assert all(p in KOREAN for p in flat)
    assert flat[:3] == ["s", "i", "L"]          # 신라 -> 실라
    assert "ch" in flat                          # 같이 -> 가치
    assert len(words) == 3


def test_english_sentence_and_long_text():
    text = "ZERO THREE FIVE ONE " * 20          # far beyond a wake word's limit
    words = transcribe(text, "en")
    assert len(words) == 80
    assert words[0] == ["Z", "IH", "R", "OW"]  # CMUdict's first alternative
    assert all(p in ENGLISH for w in words for p in w)


def test_agrees_with_enrolment_on_a_wake_word():
    for text, lang in (("hey jarvis", "en"), ("헤이 카카오", "ko")):
        pron = pronounce(text, lang)
        assert transcribe(text, lang) == [list(w.variants[0]) for w in pron.words]


def test_untranscribable_words_are_skipped_and_reported():
    skipped: list[str] = []
    words = transcribe("안녕 ABC 하세요 🙂", "ko", skipped)
    assert len(words) == 2 and skipped
