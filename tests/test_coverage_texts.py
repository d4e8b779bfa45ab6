"""tools/coverage_texts.py: texts that fill the rarest (phone, word position) units first,
never use a banned (evaluation) word, and never repeat one word beyond its cap."""
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from coverage_texts import coverage_texts, word_units  # noqa: E402

VOCAB = {  # word -> phones, most frequent first
    "the": ["DH", "AH"], "this": ["DH", "IH", "S"], "that": ["DH", "AE", "T"], "a": ["AH"],
    "very": ["V", "EH", "R", "IY"], "voice": ["V", "OY", "S"], "oil": ["OY", "L"],
    "boy": ["B", "OY"], "vast": ["V", "AE", "S", "T"], "sat": ["S", "AE", "T"],
}


def test_word_units_positions():
    assert word_units(["V", "OY", "S"]) == [("V", "initial"), ("OY", "medial"), ("S", "final")]
    assert word_units(["AH"]) == [("AH", "initial")]


def test_rare_units_are_filled_first_and_caps_hold():
    seen = Counter({("DH", "initial"): 500, ("AH", "final"): 500, ("V", "initial"): 1, ("OY", "medial"): 0})
    texts = coverage_texts(VOCAB, seen, n=20, words_per_text=(5, 5), seed=0, target=30, max_word_uses=6)
    words = Counter(w for t in texts for w in t.split())
    assert len(texts) == 20 and all(len(t.split()) == 5 for t in texts)
    assert set(words) <= set(VOCAB)
    after = Counter(seen)
    for t in texts:
        for w in t.split():
            after.update(word_units(VOCAB[w]))
    # the rare units gained far more than the common ones: V-initial from 1, OY-medial from 0
    assert after[("V", "initial")] >= 10 and after[("OY", "medial")] >= 5
    assert after[("DH", "initial")] - seen[("DH", "initial")] < after[("V", "initial")] - seen[("V", "initial")]


def test_no_word_beyond_its_cap_while_units_are_open():
    # 10 words x cap 6 = 60 uses > 50 slots, and a target never reached: every slot fills a unit
    texts = coverage_texts(VOCAB, Counter(), n=10, words_per_text=(5, 5), seed=2, target=10**6, max_word_uses=6)
    words = Counter(w for t in texts for w in t.split())
    assert sum(words.values()) == 50 and max(words.values()) <= 6


def test_words_left_out_of_the_vocabulary_never_appear():
    vocab = {w: p for w, p in VOCAB.items() if w != "voice"}  # as build_vocab bans evaluation words
    texts = coverage_texts(vocab, Counter(), n=30, words_per_text=(4, 6), seed=1)
    assert all("voice" not in t.split() for t in texts)
