#!/usr/bin/env python3
"""Texts for synthetic speech chosen to cover every phone in every word position.

    python tools/coverage_texts.py --data ../shared/data --n 2400 --out /tmp/cover_en.txt
    python tools/synth_speech.py --lang en --engine flite --texts /tmp/cover_en.txt --out ... --n 2400

Why: the synthetic sets speak the training speakers' transcripts, so they inherit their
gaps. In the English training transcripts a word-initial `V` occurs about once in a hundred
sentences against forty times for `DH` ("the", "this"), and `OY` hardly at all; every
network trained on them (and their ensemble) takes a word-initial V for DH and the OY of
"android" for ER or AY (docs/acoustic-models.md). These texts are built word by word: each
slot takes a frequent English word (wordfreq's top list, pronounced by CMUdict) that holds
the (phone, position) unit seen least so far, counting the training transcripts as already
seen, so rare units catch up with common ones. Words of the evaluation sets' texts
(`en_wakewords`, `en_phrases`) are never used: no test word is ever synthesised.
Needs `wordfreq` (in the `[train]` extra).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import re
import sys
from collections import Counter

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

#: sets whose words must never be synthesised (the English evaluation sets)
EVAL_SETS = ("en_wakewords", "en_phrases")
POSITIONS = ("initial", "medial", "final")


def word_units(phones: list[str]) -> list[tuple[str, str]]:
    """(phone, position in the word) for each phone; a one-phone word counts as initial."""
    n = len(phones)
    return [(p, "initial" if i == 0 else "final" if i == n - 1 else "medial") for i, p in enumerate(phones)]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def build_vocab(n_words: int, banned: set[str]) -> dict[str, list[str]]:
    """Frequent words with a CMUdict pronunciation (first variant, stress removed)."""
    from wordfreq import top_n_list

    from kws.pronunciation import _cmu, _english_variants
    cmu = _cmu()
    vocab = {}
    for w in top_n_list("en", n_words):
        if w in banned or not w.isalpha() or w not in cmu or (len(w) == 1 and w not in ("a", "i")):
            continue
        vocab[w] = list(_english_variants(w)[0])  # CMUdict's first entry, stress marks dropped
    return vocab


def coverage_texts(vocab: dict[str, list[str]], seen: Counter, n: int, words_per_text: tuple[int, int],
                   seed: int, target: int = 400, max_word_uses: int = 12) -> list[str]:
    """n texts; each slot fills one of the 8 least-seen (phone, position) units still under
    `target` with a word holding it, more frequent words (earlier in vocab) more likely and
    no word more than `max_word_uses` times (a unit only three odd words hold stops there);
    once every unit has reached the target, slots take frequent words at random."""
    rng = np.random.default_rng(seed)
    by_unit: dict[tuple[str, str], list[str]] = {}
    for w, ph in vocab.items():
        for u in dict.fromkeys(word_units(ph)):  # not a set: str hashes vary per process
            by_unit.setdefault(u, []).append(w)
    counts = Counter({u: seen.get(u, 0) for u in by_unit})
    uses: Counter = Counter()
    all_words = list(vocab)
    texts = []

    def pick(cands: list[str]) -> str:
        # Zipf-like preference for frequent words: rank r drawn with weight 1 / (r + 10)
        wts = 1.0 / (np.arange(len(cands)) + 10.0)
        return cands[int(rng.choice(len(cands), p=wts / wts.sum()))]

    for _ in range(n):
        k = int(rng.integers(words_per_text[0], words_per_text[1] + 1))
        words = []
        for _ in range(k):
            open_units = [u for u in by_unit if counts[u] < target
                          and any(uses[w] < max_word_uses for w in by_unit[u])]
            if open_units:
                least = sorted(open_units, key=lambda u: counts[u])[:8]
                u = least[int(rng.integers(len(least)))]
                w = pick([w for w in by_unit[u] if uses[w] < max_word_uses])
            else:
                w = pick(all_words)
            words.append(w)
            uses[w] += 1
            counts.update(word_units(vocab[w]))
        texts.append(" ".join(words))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True, help="text file to write, one text per line")
    ap.add_argument("--n", type=int, default=2400, help="number of texts")
    ap.add_argument("--vocab", type=int, default=30000, help="most frequent English words to draw from")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if importlib.util.find_spec("wordfreq") is None:
        sys.exit("coverage_texts: needs wordfreq (pip install '.[train]')")
    from synth_speech import training_texts

    from kws.pronunciation import _cmu, _english_variants
    banned = set()
    for s in EVAL_SETS:
        path = os.path.join(args.data, s, "manifest.csv")
        if not os.path.exists(path):
            sys.exit(f"coverage_texts: {path} not found (--data must point at ../shared/data)")
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                banned.update(_words(r["text"]))
    vocab = build_vocab(args.vocab, banned)
    cmu = _cmu()
    seen = Counter()
    for t in training_texts(args.data, "en"):
        for w in _words(t):
            if w in cmu:
                seen.update(word_units(list(_english_variants(w)[0])))
    texts = coverage_texts(vocab, seen, args.n, (5, 8), args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    after = Counter(seen)
    for t in texts:
        for w in t.split():
            after.update(word_units(vocab[w]))
    rare = sorted(seen, key=lambda u: seen[u])[:12]
    print(f"coverage_texts: {len(texts)} texts, {len(vocab)} words ({len(banned)} evaluation words banned); "
          "rarest units before -> after: " + ", ".join(f"{p}/{pos} {seen[(p, pos)]}->{after[(p, pos)]}"
                                                       for p, pos in rare), file=sys.stderr)


if __name__ == "__main__":
    main()
