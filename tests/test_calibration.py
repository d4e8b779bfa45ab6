"""Threshold calibration on a negative-speech cache: cache format, threshold rule, enrolment.

Everything here runs on synthetic posteriorgrams (tests/synthetic.py), so nothing
depends on the acoustic model's quality; only the freshness test looks at the shipped
cache and model files.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kws import calibration as cal
from kws.enroll import (DEFAULT_THRESHOLD, BudgetError, RecordingError, add_keywords, enroll,
                        remove_keywords)
from kws.errors import KwsError
from kws.phonesets import ENGLISH
from synthetic import Posteriorgram

WORDS = ["table", "green", "river", "stone", "paper", "cloud", "seven", "light", "metal", "window"]


def make_cache(seed: int = 0, utterances: int = 120, frames: int = 600, plant: dict | None = None,
               acoustic_sha: str = "synthetic") -> cal.NegativeCache:
    """Random-phone 'speech' (6 s per utterance by default) with plain texts.

    ``plant`` maps an utterance index to (phones, text): those phones are put in the
    middle of that utterance and its text replaced (for exclusion and word tests).
    """
    rng = np.random.default_rng(seed)
    counts, phones, values, best, utts = [], [], [], [], []
    for i in range(utterances):
        pg = Posteriorgram(seed=seed * 1000 + i, sharpness=4.0, noise=1.5)
        text = " ".join(rng.choice(WORDS, size=4))
        if plant and i in plant:
            ph, text = plant[i]
            pg.background(frames // 2 - 20, avoid={"sil"})
            pg.add(ph, frames=10)  # longer than any phone minimum (8 frames)
            pg.background(frames - pg.n, avoid={"sil"})
        else:
            pg.background(frames, avoid={"sil"})
        lp = pg.logpost()
        c, p, v, b = cal.quantise(lp)
        counts.append(c)
        phones.append(p)
        values.append(v)
        best.append(b)
        utts.append(cal.Utterance(text, f"synthetic/{i}", f"s{i % 7}", len(lp), cal.speech_span(lp)))
    meta = {"version": cal.CACHE_VERSION, "lang": "en", "phone_set_id": ENGLISH.id, "n_phones": len(ENGLISH),
            "frame_shift_ms": 10, "acoustic_sha256": acoustic_sha, "front_end": cal.FRONT_END,
            "sources": {"synthetic": "test"}}
    return cal.NegativeCache(meta, utts, np.concatenate(counts), np.concatenate(phones), np.concatenate(values),
                             np.concatenate(best))


@pytest.fixture(scope="module")
def cache():
    return make_cache(0)


@pytest.fixture(scope="module")
def heldout():
    return make_cache(1)


def test_quantise_keeps_emissions_within_the_band():
    pg = Posteriorgram(seed=3, sharpness=3.0, noise=2.0)
    pg.background(500)
    lp = pg.logpost()
    c, p, v, b = cal.quantise(lp)
    back = cal.dequantise(c, p, v, len(ENGLISH), b)
    # each frame's best log-posterior is kept (a 2.x keyword's uncertainty weight uses it)
    assert lp.max(axis=1).min() < -0.5  # the test means something: unsure frames exist
    assert np.abs(back.max(axis=1) - lp.max(axis=1)).max() <= 0.5 / cal.STEP + 1e-6
    e = np.maximum(lp - lp.max(axis=1, keepdims=True), -6.0)
    e2 = np.maximum(back - back.max(axis=1, keepdims=True), -6.0)
    kept = np.zeros_like(lp, bool)
    rows = np.repeat(np.arange(len(c)), c.astype(int))
    kept[rows, p] = True
    assert np.abs(e - e2)[kept].max() <= 0.5 / cal.STEP + 1e-6
    # a phone not stored is one beyond the band or past the per-frame cap: at the floor,
    # or (capped) no better than the worst phone stored for its frame
    assert (e2[~kept] == -6.0).all()
    assert c.max() <= cal.MAX_PHONES_PER_FRAME
    assert (v <= cal.BAND * cal.STEP).all()


def test_cache_round_trip_and_refusals(tmp_path, cache):
    path = tmp_path / "en.npz"
    cache.save(path)
    back = cal.NegativeCache.load(path)
    assert len(back.utterances) == len(cache.utterances)
    assert back.utterances[5] == cache.utterances[5]
    assert math.isclose(back.hours, cache.hours)
    np.testing.assert_array_equal(back.dense(), cache.dense())
    back.check_fresh("en", ENGLISH.id, "synthetic")
    with pytest.raises(cal.CalibrationUnavailable, match="rebuild it"):
        back.check_fresh("en", ENGLISH.id, "0123456789abcdef")
    with pytest.raises(cal.CalibrationUnavailable, match="not ko"):
        back.check_fresh("ko", ENGLISH.id, None)
    back.meta.pop("front_end")  # a cache from before the front end's level control
    with pytest.raises(cal.CalibrationUnavailable, match="another front end.*rebuild it"):
        back.check_fresh("en", ENGLISH.id, "synthetic")
    (tmp_path / "junk.npz").write_bytes(b"not a cache")
    with pytest.raises(cal.CalibrationUnavailable, match="not a calibration cache"):
        cal.NegativeCache.load(tmp_path / "junk.npz")
    with pytest.raises(cal.CalibrationUnavailable, match="no calibration cache"):
        cal.NegativeCache.load(tmp_path / "none.npz")


def test_shipped_caches_match_the_shipped_acoustic_models():
    """If this fails, the acoustic model changed: rerun tools/build_calibration_cache.py."""
    for lang in ("en", "ko"):
        c = cal.default_cache(lang)
        assert c.meta["acoustic_sha256"] == cal.acoustic_sha256(lang)
        assert c.hours > 0.1
        assert cal.default_cache_path(lang).stat().st_size < 8_000_000
        assert not any("noise/" in u.source or "en_wakewords" in u.source for u in c.utterances)


def test_threshold_rule_on_a_known_exponential_tail():
    rng = np.random.default_rng(0)
    hours = 1.0
    scores = -2.0 + rng.exponential(0.15, size=3000)  # 3000 peaks/h, rate(t) = 3000 exp(-(t + 2) / 0.15)
    truth = lambda t: 3000 * math.exp(-(t + 2.0) / 0.15)  # noqa: E731
    for budget in (60.0, 30.0):  # resolved by counting
        c = cal.choose_threshold(scores, hours, budget)
        assert c.method == "empirical" and c.reachable
        assert (scores >= c.threshold).sum() / hours <= budget
        assert (scores >= c.threshold - 0.01).sum() / hours > budget * 0.9
    for budget in (0.5, 0.1):  # below what one hour resolves: tail fit
        c = cal.choose_threshold(scores, hours, budget)
        assert c.method == "tail-fit" and c.reachable
        assert (scores >= c.threshold).sum() <= max(cal.MIN_ALLOWED, math.floor(budget * hours))
        assert truth(c.threshold) == pytest.approx(budget, rel=1.5)  # within a factor 2.5
        assert c.expected_fa_per_hour == pytest.approx(budget, rel=1e-3)


def test_one_odd_negative_does_not_set_the_threshold():
    """Where the cached hours allow no false alarm, the single best negative would set the
    threshold on its own; the tail fit of the top peaks decides instead. Two such
    negatives are more than chance at the budget and do raise it."""
    rng = np.random.default_rng(1)
    hours = 1.5
    tail = -2.0 + rng.exponential(0.15, size=3000)
    plain = cal.choose_threshold(tail, hours, 0.5)
    one = cal.choose_threshold(np.append(tail, -0.3), hours, 0.5)
    two = cal.choose_threshold(np.append(tail, [-0.3, -0.35]), hours, 0.5)
    assert plain.threshold < -0.6 and plain.reachable
    assert one.threshold < -0.5  # the outlier only widens the fitted tail a little
    assert one.reachable and one.expected_fa_per_hour == pytest.approx(0.5, rel=0.05)
    assert two.threshold > -0.35


def test_without_a_tail_no_false_alarm_is_tolerated():
    """Too few peaks for a tail fit: nothing could judge an in-sample false alarm, so the
    threshold goes just above the best negative, as the empirical rule says."""
    c = cal.choose_threshold(np.array([-1.2, -1.9, -2.5]), 1.5, 0.5)
    assert c.tail is None and c.reachable
    assert -1.2 < c.threshold < -1.19


def test_threshold_rule_when_the_budget_cannot_be_met():
    scores = np.zeros(100)  # every peak a perfect match
    c = cal.choose_threshold(scores, 1.0, 0.5)
    assert c.threshold == 0.0 and not c.reachable and c.expected_fa_per_hour == 100.0


def test_threshold_never_below_the_floor():
    c = cal.choose_threshold(np.array([-5.0, -4.5, -4.0]), 1.0, 60.0)
    assert c.threshold == cal.MIN_THRESHOLD and c.method == "floor" and c.reachable
    c = cal.choose_threshold(np.array([]), 1.0, 0.5)
    assert c.threshold == cal.MIN_THRESHOLD


def test_floor_follows_the_uncertainty_weight():
    """Format-2.x keywords score lower (the weight's penalty), so the lowest threshold
    calibration sets moves down with the weight (2.1 more); 1.x keywords keep MIN_THRESHOLD."""
    import dataclasses
    m = enroll(["computer"], "en", threshold=-1.0, uncertainty_weight=0.0).model
    assert cal.min_threshold(m) == cal.MIN_THRESHOLD
    assert cal.min_threshold(dataclasses.replace(m, uncertainty_weight=0.5)) == cal.MIN_THRESHOLD - 0.5
    # format 2.1 (the best phone pays too) lowers scores further, and the floor with them
    assert cal.min_threshold(dataclasses.replace(m, uncertainty_weight=0.5, best_pays=True)) == cal.MIN_THRESHOLD - 0.75
    assert enroll(["computer"], "en", threshold=-1.0).model.best_pays  # what kws-enroll writes
    c = cal.choose_threshold(np.array([-5.0, -4.5, -4.0]), 1.0, 60.0, floor=cal.MIN_THRESHOLD - 0.5)
    assert c.threshold == cal.MIN_THRESHOLD - 0.5 and c.method == "floor"


def test_contains_keyword():
    assert cal.contains_keyword("Hey, JARVIS! how are you", "hey jarvis", "en")
    assert not cal.contains_keyword("hey jarvisson", "hey jarvis", "en")
    assert cal.contains_keyword("오늘 고객님께서", "고객님", "ko")
    assert cal.contains_keyword("헤이카카오 불 켜줘", "헤이 카카오", "ko")


def test_calibrated_enrolment_keeps_its_budget(cache, heldout):
    """Threshold chosen on one synthetic set; false alarms counted on another."""
    for budget in (2.0, 10.0, 30.0):
        res = enroll(["computer"], "en", max_false_alarms_per_hour=budget, cache=cache)
        kw = res.model.keywords[0]
        assert kw.threshold <= 0 and 0 <= kw.expected_fa_per_hour <= budget * 1.0001
        peaks, hours = cal.scan(res.model, cache)[0]
        assert sum(p.score >= kw.threshold for p in peaks) / hours <= budget
        peaks, hours = cal.scan(res.model, heldout)[0]
        measured = sum(p.score >= kw.threshold for p in peaks) / hours
        assert measured <= 3 * budget + 3 / hours  # same distribution, small samples


def test_stricter_budget_gives_a_higher_threshold(cache):
    # 4 states for every phone: the synthetic background's phones are short, and with the
    # measured per-phone minimums (up to 8 frames) "computer" scores below the lowest
    # threshold calibration sets (-2) on all of it, whatever the budget
    t = [enroll(["computer"], "en", max_false_alarms_per_hour=b, cache=cache, states_per_phone=4)
         .model.keywords[0].threshold for b in (30.0, 5.0, 0.5, 0.05)]
    assert t == sorted(t)
    assert t[0] < t[-1]


def test_utterances_containing_the_keyword_are_not_negatives():
    phones = ["K", "AH", "M", "P", "Y", "UW", "T", "ER"]
    c = make_cache(2, utterances=40, plant={3: (phones, "my computer is slow")})
    peaks, hours = cal.scan(enroll(["computer"], "en", threshold=-1.0, cache=c).model, c)[0]
    assert all(p.utterance != 3 for p in peaks)
    assert hours == pytest.approx(c.hours * 39 / 40)
    # the same utterance under another text is a negative, and the best one
    # (each utterance's best score, which an earlier weak candidate's refractory cannot hide)
    c2 = make_cache(2, utterances=40, plant={3: (phones, "my commuter is slow")})
    best = np.empty((40, 1))
    cal.scan(enroll(["computer"], "en", threshold=-1.0, cache=c2).model, c2, best=best)
    order = np.argsort(-best[:, 0])
    assert order[0] == 3 and best[3, 0] > -1.0 and best[3, 0] > best[order[1], 0] + 1.0


def test_skipping_unreachable_utterances_changes_nothing(cache):
    """Calibration's later passes decode only utterances where some keyword reaches its
    threshold (``reach``); the detections must be exactly those of decoding everything,
    and the skip must actually leave utterances out (else it is not what makes it fast)."""
    model = enroll(["computer", "seven", "window"], "en", threshold=-1.0, cache=cache,
                   states_per_phone=2).model
    best = np.full((len(cache.utterances), 3), -np.inf, np.float32)
    cal.scan(model, cache, best=best)
    for thr in ([-2.5, -2.0, -1.5], [-1.2, -3.0, -0.8]):
        m = cal._with_thresholds(model, thr)
        full = cal.scan(m, cache, at_model_thresholds=True)
        fast = cal.scan(m, cache, at_model_thresholds=True, reach=best)
        assert fast == full
        assert sum(len(p) for p, _ in full) > 0  # something fired: the comparison means something
        reachable = np.any(best >= np.asarray(thr, np.float32), axis=1)
        assert 0 < reachable.sum() < len(cache.utterances)


def test_explicit_threshold_overrides_calibration(cache):
    res = enroll(["computer"], "en", threshold=-2.0, cache=cache)
    kw = res.model.keywords[0]
    assert kw.threshold == -2.0
    assert kw.expected_fa_per_hour > 0  # still measured at that threshold
    assert res.report.keywords[0].calibration.get("explicit")


def test_stale_default_cache_falls_back_or_refuses(monkeypatch):
    monkeypatch.setattr(cal, "acoustic_sha256", lambda lang: "f" * 64)
    res = enroll(["hey jarvis"], "en")  # no budget asked for: old default, with a note
    assert res.model.keywords[0].threshold == DEFAULT_THRESHOLD
    assert res.model.keywords[0].expected_fa_per_hour < 0
    assert "not calibrated" in res.report.notes[0] and "build_calibration_cache" in res.report.notes[0]
    with pytest.raises(cal.CalibrationUnavailable, match="rebuild"):
        enroll(["hey jarvis"], "en", max_false_alarms_per_hour=0.5)


@pytest.mark.parametrize("budget", [0, -1, 0.001, 61, 1e9, float("nan"), float("inf")])
def test_budget_out_of_range(cache, budget):
    with pytest.raises(BudgetError, match="between 0.01 and 60"):
        enroll(["computer"], "en", max_false_alarms_per_hour=budget, cache=cache)


def test_add_and_remove_keep_the_other_keywords(cache):
    base = enroll(["hey jarvis", "computer"], "en", max_false_alarms_per_hour=5.0, cache=cache).model
    before = base.to_bytes()
    grown = add_keywords(base, ["open sesame"], max_false_alarms_per_hour=1.0, cache=cache)
    assert grown.model.names == ["hey jarvis", "computer", "open sesame"]
    assert [p.text for p in grown.pronunciations] == ["open sesame"]
    for a, b in zip(base.keywords, grown.model.keywords):
        assert (a.states, a.threshold, a.expected_fa_per_hour) == (b.states, b.threshold, b.expected_fa_per_hour)
    assert base.to_bytes() == before  # not modified in place
    shrunk = remove_keywords(grown.model, "computer")
    assert shrunk.names == ["hey jarvis", "open sesame"]
    assert shrunk.keywords[1].threshold == grown.model.keywords[2].threshold
    with pytest.raises(KwsError, match="already in the model"):
        add_keywords(base, ["computer"], cache=cache)
    with pytest.raises(KwsError, match="not in the model"):
        remove_keywords(base, "alexa")
    with pytest.raises(KwsError, match="at least one"):
        remove_keywords(base, ["hey jarvis", "computer"])


def test_recordings_pick_the_variant_with_the_largest_margin():
    """A reading that everyday speech also says fits a recording well but needs a high
    threshold: with a cache the pick weighs each candidate's calibrated threshold (margin),
    without one it takes the best fit. Variant A is a shorter reading (B without its last two
    phones), planted in a quarter of the cache's utterances, as a short word is common in
    speech; the recording says B with a blur inside its IY (less of a fit than A)."""
    from kws.enroll import _pick_variant
    from synthetic import Posteriorgram, pron

    a = ["M", "AE", "G", "N", "OW", "L"]
    b = a + ["IY", "AH"]
    planted = make_cache(3, plant={i: (a, "magnol") for i in range(0, 120, 4)})
    pg = Posteriorgram(seed=5)
    pg.background(40, avoid={"sil"})
    pg.add(a, frames=10)
    pg.add(["IY"], frames=5)
    pg.add(["AA"], frames=3)  # a blur inside IY that every path through B must pay for
    pg.add(["IY"], frames=5)
    pg.add(["AH"], frames=10)
    pg.background(40, avoid={"sil"})
    rec = [("rec", pg.logpost())]
    p = pron([a, b], text="magnolia")
    by_fit, fit_scores, n = _pick_variant(p, rec, ENGLISH, 4)
    by_margin, margin_scores, _ = _pick_variant(p, rec, ENGLISH, 4, cache=planted, budget=1.0)
    assert n == 2 and by_fit.words[0].variants == (tuple(a),) and by_margin.words[0].variants == (tuple(b),)
    assert fit_scores[0] > margin_scores[0]  # B fits the recording less well ...
    th = [c.threshold for c in cal.calibrate(make_model_from(p, [a, b]), planted, 1.0, reference=DEFAULT_THRESHOLD)]
    assert fit_scores[0] - th[0] < margin_scores[0] - th[1]  # ... but clears its threshold by more


def make_model_from(p, variants):
    from kws.graph import build_graph
    from kws.model_file import KeywordModel
    from kws.pronunciation import Pronunciation, Word
    graphs = [build_graph(Pronunciation(p.text, "en", (Word("w0", (tuple(v),)),)), ENGLISH, threshold=0.0,
                          states_per_phone=4, name=f"v{i}") for i, v in enumerate(variants)]
    return KeywordModel(phone_set=ENGLISH, keywords=graphs, uncertainty_weight=0.5, best_pays=True)


def test_recordings_pick_a_variant_and_are_checked(cache):
    # 'either' has two pronunciations (IY DH ER / AY DH ER); a clip of noise runs the whole
    # path through the shipped acoustic model whatever its quality
    rng = np.random.default_rng(0)
    clip = (rng.normal(0, 3000, 16000)).astype(np.int16)
    res = enroll(["either"], "en", recordings=[clip, clip], cache=cache, max_false_alarms_per_hour=5.0)
    r = res.report.keywords[0]
    assert r.variant is not None and len(res.model.keywords[0].pronunciation.split("/")) == 1
    assert len(r.recordings) == 2 and set(r.recordings[0]) == {"file", "score", "margin", "detected"}
    with pytest.raises(RecordingError, match="single wake word"):
        enroll(["either", "computer"], "en", recordings=[clip], cache=cache)
    with pytest.raises(RecordingError, match="one to 3"):
        enroll(["either"], "en", recordings=[clip] * 4, cache=cache)
