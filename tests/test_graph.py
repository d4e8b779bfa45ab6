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


def test_states_per_phone_table_gives_each_phone_its_minimum():
    """A mapping phone -> count: each phone gets its own number of states (its minimum
    duration in frames), phones missing from it the default, and PHONE_START marks the
    first state of each; counts outside 1..8 are refused."""
    from kws.graph import DEFAULT_STATES_PER_PHONE, STATE_PHONE_START
    g = build_graph(pron(["K", "AH", "M"]), ENGLISH, threshold=-1, states_per_phone={"K": 6, "AH": 2})
    names = [ENGLISH.phones[s.phone] for s in g.states]
    assert names == ["K"] * 6 + ["AH"] * 2 + ["M"] * DEFAULT_STATES_PER_PHONE
    starts = [i for i, s in enumerate(g.states) if s.flags & STATE_PHONE_START]
    assert starts == [0, 6, 8]
    assert all(s.preds == (i - 1,) for i, s in enumerate(g.states) if i)
    for bad in ({"K": 0}, {"K": 9}):
        with pytest.raises(ValueError, match="1 to 8"):
            build_graph(pron(["K"]), ENGLISH, threshold=-1, states_per_phone=bad)


@pytest.mark.parametrize("phone_set", [ENGLISH, KOREAN])
def test_shipped_phone_minimums_cover_the_phone_set(phone_set):
    """Each language ships a measured minimum (4-8 frames) for every phone but silence."""
    from kws.graph import phone_min_frames
    table = phone_min_frames(phone_set)
    assert table is not None
    assert set(table) == set(phone_set.phones) - {"sil"}
    assert all(4 <= n <= 8 for n in table.values())
    assert len(set(table.values())) > 1  # per phone, not one number for all


def test_phone_minimum_table_for_another_phone_set_or_corrupt(tmp_path, monkeypatch):
    """A table measured for another phone set is not used; a corrupt one is a one-line
    ModelFormatError that says how to rebuild it."""
    import json
    import kws.graph as graph
    from kws.errors import ModelFormatError
    monkeypatch.setattr(graph, "DURATIONS_DIR", tmp_path)
    graph._load_min_frames.cache_clear()
    try:
        (tmp_path / "en.json").write_text(json.dumps({"phone_set": "en-v0", "min_frames": {"K": 5}}))
        assert graph.phone_min_frames(ENGLISH) is None
        graph._load_min_frames.cache_clear()
        (tmp_path / "en.json").write_text(json.dumps({"phone_set": ENGLISH.name, "min_frames": {"K": 12}}))
        with pytest.raises(ModelFormatError, match="1 to 8"):
            graph.phone_min_frames(ENGLISH)
        graph._load_min_frames.cache_clear()
        (tmp_path / "en.json").write_text("{not json")
        with pytest.raises(ModelFormatError, match="tools/phone_durations.py"):
            graph.phone_min_frames(ENGLISH)
    finally:
        graph._load_min_frames.cache_clear()


def test_enrolment_uses_the_measured_minimums_unless_told():
    """By default enrolment gives each phone its measured minimum; states_per_phone=N
    gives every phone N states."""
    from kws.graph import phone_min_frames
    table = phone_min_frames(ENGLISH)
    phones = ["S", "N", "OW", "B", "OY"]  # snowboy, one pronunciation in CMUdict
    kw = enroll(["snowboy"], "en", threshold=-1.0).model.keywords[0]
    assert len(kw.states) == sum(table[p] for p in phones)
    assert [ENGLISH.phones[s.phone] for s in kw.states] == [p for p in phones for _ in range(table[p])]
    kw4 = enroll(["snowboy"], "en", threshold=-1.0, states_per_phone=4).model.keywords[0]
    assert len(kw4.states) == 20
