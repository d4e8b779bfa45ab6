"""The wake-word quality report: length, closest phrases, confusability, ranking, --strict."""

from __future__ import annotations

import json

import pytest

from kws import enroll, pronounce
from kws import report as rep
from kws.enroll import WeakWakeWordError
from test_calibration import make_cache


@pytest.fixture(scope="module")
def cache():
    return make_cache(0)


@pytest.mark.parametrize("text,lang,syllables", [
    ("yes", "en", 1), ("jarvis", "en", 2), ("hey jarvis", "en", 3), ("abracadabra", "en", 5),
    ("네", "ko", 1), ("자비스야", "ko", 4), ("헤이 카카오", "ko", 5), ("의사", "ko", 2),
    ("안녕 123", "ko", 5),  # digits count as they are read (이리삼)
])
def test_syllables(text, lang, syllables):
    assert rep.count_syllables(pronounce(text, lang)) == syllables


def test_short_common_word_ranks_below_a_long_distinctive_one(cache):
    res = enroll(["yes", "hey jarvis", "abracadabra"], "en", max_false_alarms_per_hour=2.0, cache=cache)
    by = {r.keyword: r for r in res.report.keywords}
    assert by["yes"].quality < by["hey jarvis"].quality
    assert by["yes"].quality < by["abracadabra"].quality
    assert res.report.ranked()[-1].keyword == "yes"
    assert by["yes"].weak and by["yes"].rating == "weak"
    short = [w for w in by["yes"].warnings if w.code == "short"][0]
    assert "1 syllable" in short.message and "3 to 5" in short.message and "hey yes" in short.suggestion
    assert not any(w.code == "short" for w in by["abracadabra"].warnings)


def test_report_on_the_shipped_cache_ranks_short_words_lower():
    """Same ranking out of the box (whatever the acoustic model's quality)."""
    res = enroll(["yes", "hey jarvis computer"], "en")
    by = {r.keyword: r for r in res.report.keywords}
    assert by["yes"].quality < by["hey jarvis computer"].quality
    ko = enroll(["네", "헤이 카카오"], "ko")
    by = {r.keyword: r for r in ko.report.keywords}
    assert by["네"].quality < by["헤이 카카오"].quality
    assert by["네"].weak


def test_closest_phrases_come_from_the_negative_transcripts():
    # a near miss of "computer" ("commuter", K AH M Y UW T ER) planted in utterance 5,
    # in the third of four equally long words
    c = make_cache(4, utterances=30, frames=600,
                   plant={5: (["K", "AH", "M", "Y", "UW", "T", "ER"], "aaaaa bbbbb commu ddddd")})
    res = enroll(["computer"], "en", max_false_alarms_per_hour=2.0, cache=c)
    r = res.report.keywords[0]
    assert r.closest[0]["source"] == "synthetic/5"
    assert "commu" in r.closest[0]["text"].split()
    assert len(r.closest) <= 5 and len({x["text"] for x in r.closest}) == len(r.closest)


def test_confusable_keywords_are_flagged(cache):
    res = enroll(["jarvis", "hey jarvis", "computer"], "en", max_false_alarms_per_hour=2.0, cache=cache)
    by = {r.keyword: r for r in res.report.keywords}
    conf = {c["keyword"]: c for c in by["jarvis"].confusable}
    assert conf["hey jarvis"]["fires"] and not conf["computer"]["fires"]
    assert any(w.code == "confusable" for w in by["hey jarvis"].warnings)
    assert not any(w.code == "confusable" for w in by["computer"].warnings)


def test_strict_refuses_weak_wake_words(cache):
    with pytest.raises(WeakWakeWordError, match="'yes' has only 1 syllable.*drop --strict"):
        enroll(["hey jarvis", "yes"], "en", strict=True, max_false_alarms_per_hour=2.0, cache=cache)


def test_report_is_json_ready(cache):
    res = enroll(["hey jarvis"], "en", max_false_alarms_per_hour=2.0, cache=cache)
    d = json.loads(json.dumps(res.report.to_dict()))
    k = d["keywords"][0]
    assert {"syllables", "phones", "threshold", "expected_fa_per_hour", "closest", "confusable",
            "warnings", "quality", "rating"} <= set(k)
    assert k["calibration"]["calibrated"] and k["calibration"]["budget"] == 2.0
    row = res.summary()[0]
    assert row["expected_fa_per_hour"] == pytest.approx(res.model.keywords[0].expected_fa_per_hour)
    assert "\n".join(rep.format_text(res.report)).count("false alarms/h expected") == 1


def test_quality_reads_thresholds_on_one_scale_whatever_the_weight():
    """A format-2.0 keyword's threshold is lower by about 0.6 x its uncertainty weight
    (the weight lowers every score): the quality rules shift it back, so the same
    keyword rates the same in either format, and 'tight' means the same."""
    from kws import report as rep

    def kr(threshold: float, weight: float, best_pays: bool = False) -> "rep.KeywordReport":
        r = rep.KeywordReport(keyword="x", pronunciation="x", syllables=3, phones=6, threshold=threshold,
                              expected_fa_per_hour=0.5, calibration={"calibrated": True, "budget": 0.5},
                              uncertainty_weight=weight, best_pays=best_pays)
        rep.add_calibration_warnings(r)
        r.quality = rep.quality(r)
        return r

    old, new = kr(-0.9, 0.0), kr(-0.9 - rep.THRESHOLD_SHIFT_PER_WEIGHT * 0.5, 0.5)
    assert old.quality == new.quality < 100
    assert kr(-0.9, 0.5).quality < new.quality  # the same number is a tighter threshold at w = 0.5
    assert [w.code for w in kr(-0.1, 0.0).warnings] == ["tight"]
    assert [w.code for w in kr(-0.1 - 0.3, 0.5).warnings] == ["tight"]
    assert kr(-0.4, 0.0).warnings == []  # -0.4 is not tight on the 1.1 scale, but at w = 0.5
    assert [w.code for w in kr(-0.4, 0.5).warnings] == ["tight"]  # it is (-0.1 on the 1.1 scale)
    # 2.1 (the best phone pays too) lowers thresholds further: its own shift
    assert kr(-0.9 - rep.THRESHOLD_SHIFT_PER_WEIGHT_BEST_PAYS * 0.5, 0.5, True).quality == old.quality
    assert [w.code for w in kr(-0.6, 0.5, True).warnings] == ["tight"]  # -0.15 on the 1.1 scale
    assert kr(-0.6, 0.5).warnings == []  # at 2.0 the same number reads -0.3: not tight
