"""Keyword graphs: chains, variants as branches, optional pauses, topological order."""

from __future__ import annotations

import pytest

from kws import enroll, pronounce
from kws.graph import STATE_ENTRY, STATE_FINAL, STATE_SELF, build_graph
from kws.phonesets import ENGLISH, KOREAN
from synthetic import pron


def paths(graph) -> set[tuple[int, ...]]:
    """Every phone sequence the graph accepts (runs of one phone collapsed)."""
    succ = {i: [] for i in range(len(graph.states))}
    for i, s in enumerate(graph.states):
        for p in s.preds:
            succ[p].append(i)
    out = set()

    def walk(i, seq):
        seq = seq + [i]
        if graph.states[i].flags & STATE_FINAL:
            phones = [graph.states[j].phone for j in seq]
            out.add(tuple(p for k, p in enumerate(phones) if k == 0 or p != phones[k - 1]))
        for j in succ[i]:
            walk(j, seq)

    for i, s in enumerate(graph.states):
        if s.flags & STATE_ENTRY:
            walk(i, [])
    return out


def test_chain_has_states_per_phone_with_self_loops():
    g = build_graph(pron(["K", "AH", "M"]), ENGLISH, threshold=-1, states_per_phone=3)
    assert len(g.states) == 9
    assert all(s.flags & STATE_SELF for s in g.states)
    assert [s.flags & STATE_ENTRY for s in g.states].count(STATE_ENTRY) == 1
    assert g.states[0].flags & STATE_ENTRY and g.states[-1].flags & STATE_FINAL
    assert all(s.preds == (i - 1,) for i, s in enumerate(g.states) if i)
    assert [s.phone for s in g.states] == [ENGLISH.index(p) for p in "K K K AH AH AH M M M".split()]


def test_variants_are_parallel_branches_and_pause_is_optional():
    g = build_graph(pron([["IY", "DH", "ER"], ["AY", "DH", "ER"]], ["W", "EY"]), ENGLISH, threshold=-1)
    ix = ENGLISH.index
    seqs = {tuple(ENGLISH.phones[p] for p in seq) for seq in paths(g)}
    assert seqs == {("IY", "DH", "ER", "W", "EY"), ("AY", "DH", "ER", "W", "EY"),
                    ("IY", "DH", "ER", "sil", "W", "EY"), ("AY", "DH", "ER", "sil", "W", "EY")}
    assert sum(1 for s in g.states if s.flags & STATE_ENTRY) == 2
    assert sum(1 for s in g.states if s.phone == ix("sil")) == 1


def test_states_are_in_topological_order():
    model = enroll(["hey jarvis", "either way", "tomato soup"], "en").model
    for kw in model.keywords:
        assert all(p < i for i, s in enumerate(kw.states) for p in s.preds)


def test_korean_descriptive_variant_becomes_a_branch():
    p = pronounce("예의", "ko")  # g2pk: prescriptive 예의, descriptive 예이
    assert len(p.words[0].variants) == 2
    g = build_graph(p, KOREAN, threshold=-1)
    assert len(paths(g)) == 2


def test_max_frames_grows_with_length():
    short = build_graph(pron(["K", "AH"]), ENGLISH, threshold=-1)
    long = build_graph(pron(["K", "AH", "M", "P", "Y", "UW"]), ENGLISH, threshold=-1)
    assert long.max_frames == 3 * short.max_frames


def test_bad_states_per_phone():
    with pytest.raises(ValueError):
        build_graph(pron(["K"]), ENGLISH, threshold=-1, states_per_phone=0)
