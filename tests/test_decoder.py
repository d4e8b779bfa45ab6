"""The C decoder on synthetic posteriorgrams, checked against known positions and the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from kws.decoder import NO_SCORE, KeywordDecoder
from kws.errors import ModelFormatError
from kws.model_file import KeywordModel
from reference_decoder import ReferenceDecoder
from synthetic import Posteriorgram, make_model, pron

JARVIS = pron(["HH", "EY"], ["JH", "AA", "R", "V", "IH", "S"])
COMPUTER = pron(["K", "AH", "M", "P", "Y", "UW", "T", "ER"])
SNOWBOY = pron(["S", "N", "OW", "B", "OY"])
KW_PHONES = {p for w in (JARVIS, COMPUTER, SNOWBOY) for word in w.words for v in word.variants for p in v}


def run(model, logpost, chunk=None):
    dec = KeywordDecoder(model)
    if chunk is None:
        dets = dec.process(logpost)
    else:
        dets = []
        for i in range(0, len(logpost), chunk):
            dets += dec.process(logpost[i:i + chunk])
    return dets + dec.flush()


def clean_gram(seed=0):
    return Posteriorgram(seed=seed, sharpness=9.0, noise=0.4)


def test_keyword_found_at_its_position():
    g = clean_gram()
    g.background(120, avoid=KW_PHONES)
    s1, _ = g.add(["HH", "EY"], 5)
    _, e1 = g.add(["JH", "AA", "R", "V", "IH", "S"], 6)
    g.background(150, avoid=KW_PHONES)
    dets = run(make_model({"hey jarvis": JARVIS}), g.logpost())
    assert [(d.keyword, d.start_frame, d.end_frame) for d in dets] == [("hey jarvis", s1, e1)]
    assert dets[0].score > -0.05  # every frame's best phone was the keyword's
    assert dets[0].start_s == pytest.approx(s1 * 0.01)
    assert dets[0].end_s == pytest.approx((e1 + 1) * 0.01)


def test_absent_keyword_not_found():
    g = clean_gram(1)
    g.background(100, avoid=KW_PHONES)
    g.add(["K", "AH", "M", "P", "Y", "UW", "T", "ER"], 6)  # computer, not jarvis
    g.background(100, avoid=KW_PHONES)
    g.background(2000)  # plus random phones of every kind
    assert run(make_model({"hey jarvis": JARVIS}), g.logpost()) == []


def test_partial_keyword_not_found():
    g = clean_gram(2)
    g.background(100, avoid=KW_PHONES)
    g.add(["HH", "EY", "JH", "AA", "R"], 6)  # "hey jar..." cut short
    g.background(100, avoid=KW_PHONES)
    assert run(make_model({"hey jarvis": JARVIS}), g.logpost()) == []


def test_variants_are_branches():
    either = pron([["IY", "DH", "ER"], ["AY", "DH", "ER"]], ["W", "EY"])
    model = make_model({"either way": either})
    for first in ("IY", "AY"):
        g = clean_gram(3)
        g.background(80, avoid=KW_PHONES | {"IY", "AY", "DH", "W"})
        s, _ = g.add([first, "DH", "ER"], 6)
        _, e = g.add(["W", "EY"], 6)
        g.background(80, avoid=KW_PHONES | {"IY", "AY", "DH", "W"})
        dets = run(model, g.logpost())
        assert [(d.start_frame, d.end_frame) for d in dets] == [(s, e)], first


def test_optional_pause_between_words():
    model = make_model({"hey jarvis": JARVIS})
    g = clean_gram(4)
    g.background(60, avoid=KW_PHONES)
    s, _ = g.add(["HH", "EY"], 6)
    g.add(["sil"], 12)
    _, e = g.add(["JH", "AA", "R", "V", "IH", "S"], 6)
    g.background(60, avoid=KW_PHONES)
    dets = run(model, g.logpost())
    assert [(d.start_frame, d.end_frame) for d in dets] == [(s, e)]


def _best_score(model, logpost):
    """Best per-frame keyword score of the C decoder, checked against the reference."""
    dec = KeywordDecoder(model)
    scores = np.zeros((len(logpost), len(model.keywords)), np.float32)
    dec.process(logpost, scores)
    ref = ReferenceDecoder(model)
    ref_scores = np.array([ref.step(x)[1] for x in logpost], np.float32)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    return float(scores.max()), scores


def test_pause_over_silence_is_neutral():
    """Silence between the words neither raises nor lowers the keyword's score."""
    model = make_model({"hey jarvis": JARVIS})
    g = Posteriorgram(seed=9, noise=0.0)
    g.add(["sil"], 20)
    g.add(["HH", "EY"], 6)
    g.add(["JH", "AA", "R", "V", "IH", "S"], 6)
    g.add(["sil"], 20)
    tight = g.logpost()
    g2 = Posteriorgram(seed=9, noise=0.0)
    g2.add(["sil"], 20)
    g2.add(["HH", "EY"], 6)
    g2.add(["sil"], 25)
    g2.add(["JH", "AA", "R", "V", "IH", "S"], 6)
    g2.add(["sil"], 20)
    paused = g2.logpost()
    assert _best_score(model, paused)[0] == pytest.approx(_best_score(model, tight)[0], abs=1e-6)


def test_silence_cannot_pad_a_weak_match():
    """Half the keyword spoken then silence: the pause must not average the score up.

    Before pause frames were made neutral, 30 frames of silence in the optional pause
    counted as 30 perfect frames and lifted a half-heard keyword over the threshold."""
    model = make_model({"hey jarvis": JARVIS})
    g = Posteriorgram(seed=3, noise=0.0)
    g.add(["sil"], 20)
    g.add(["HH", "EY"], 6)
    g.add(["sil"], 30)
    g.add(["K", "AA", "M", "P", "Y", "UW"], 6)  # not "jarvis"
    g.add(["sil"], 20)
    best, _ = _best_score(model, g.logpost())
    assert best < -2.0
    dets = run(model, g.logpost())
    assert dets == []


def test_several_keywords_in_one_model():
    model = make_model({"hey jarvis": JARVIS, "computer": COMPUTER, "snowboy": SNOWBOY})
    g = clean_gram(5)
    g.background(100, avoid=KW_PHONES)
    s_c, _ = g.add(["K", "AH", "M", "P", "Y", "UW", "T", "ER"], 5)
    e_c = g.n - 1
    g.background(200, avoid=KW_PHONES)
    s_s, _ = g.add(["S", "N", "OW", "B", "OY"], 7)
    e_s = g.n - 1
    g.background(200, avoid=KW_PHONES)
    dets = run(model, g.logpost())
    assert [(d.keyword, d.start_frame, d.end_frame) for d in dets] == [
        ("computer", s_c, e_c), ("snowboy", s_s, e_s)]


def test_refractory_gives_one_detection_per_utterance_and_repeats_later():
    model = make_model({"snowboy": SNOWBOY})
    g = clean_gram(6)
    ends = []
    for _ in range(3):
        g.background(150, avoid=KW_PHONES)
        g.add(["S", "N", "OW", "B", "OY"], 6)
        ends.append(g.n - 1)
    g.background(150, avoid=KW_PHONES)
    dets = run(model, g.logpost())
    assert [d.end_frame for d in dets] == ends


def test_threshold_controls_detection():
    g = Posteriorgram(seed=7, sharpness=3.0, noise=1.0)  # blurry: scores well below 0
    g.background(100, avoid=KW_PHONES)
    g.add(["S", "N", "OW", "B", "OY"], 6)
    g.background(100, avoid=KW_PHONES)
    x = g.logpost()
    dec = KeywordDecoder(make_model({"snowboy": SNOWBOY}, threshold=-0.01))
    assert dec.process(x) + dec.flush() == []
    dec = KeywordDecoder(make_model({"snowboy": SNOWBOY}, threshold=-0.5))
    assert len(dec.process(x) + dec.flush()) == 1
    dec.reset()
    dec.set_threshold("snowboy", -0.01)  # per-decoder override of the stored threshold
    assert dec.process(x) + dec.flush() == []


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 333, 5000])
def test_chunking_does_not_change_detections(chunk):
    model = make_model({"hey jarvis": JARVIS, "computer": COMPUTER, "snowboy": SNOWBOY}, threshold=-1.5)
    g = Posteriorgram(seed=8, sharpness=5.0, noise=1.0)
    for words in (["HH", "EY", "JH", "AA", "R", "V", "IH", "S"], ["S", "N", "OW", "B", "OY"],
                  ["K", "AH", "M", "P", "Y", "UW", "T", "ER"]) * 3:
        g.background(int(g.rng.integers(50, 300)))
        g.add(words, int(g.rng.integers(4, 9)))
    g.background(200)
    x = g.logpost()
    whole = run(model, x)
    assert len(whole) >= 6
    assert run(model, x, chunk=chunk) == whole


def test_scores_trace_matches_detections():
    model = make_model({"snowboy": SNOWBOY})
    g = clean_gram(9)
    g.background(100, avoid=KW_PHONES)
    g.add(["S", "N", "OW", "B", "OY"], 6)
    end = g.n - 1
    g.background(100, avoid=KW_PHONES)
    x = g.logpost()
    dec = KeywordDecoder(model)
    scores = np.zeros((len(x), 1), np.float32)
    dets = dec.process(x, scores)
    assert len(dets) == 1
    assert scores[end, 0] == pytest.approx(dets[0].score)
    assert scores[:40, 0].max() <= NO_SCORE or scores[:40, 0].max() < model.keywords[0].threshold


@pytest.mark.parametrize("weight,best_pays", [(0.0, False), (0.5, False), (0.5, True)],
                         ids=["w0", "w0.5", "w0.5-best-pays"])
@pytest.mark.parametrize("phone_mean", [True, False], ids=["by-phone", "by-frame"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_decoder_agrees_with_numpy_reference(seed, phone_mean, weight, best_pays):
    model = make_model({"hey jarvis": JARVIS, "computer": COMPUTER, "snowboy": SNOWBOY,
                        "either": pron([["IY", "DH", "ER"], ["AY", "DH", "ER"]])},
                       threshold=-2.0, hold_frames=8, refractory_frames=30)
    for kw in model.keywords:  # both scorings (format 1.1 by phone, 1.0 by frame)
        kw.phone_mean = phone_mean
    model.uncertainty_weight = weight  # format 2.0 when set
    model.best_pays = best_pays  # 2.1: the keyword phones pay the weight where they are the best too
    model = KeywordModel.from_bytes(model.to_bytes())
    assert all(k.phone_mean == phone_mean for k in model.keywords)
    assert model.uncertainty_weight == weight and model.format_version[:2] == ("2." if weight else "1.")
    assert model.best_pays == best_pays and model.format_version.endswith(".1" if best_pays else "")
    g = Posteriorgram(seed=seed, sharpness=4.0, noise=1.2)
    for words in (["HH", "EY", "JH", "AA", "R", "V", "IH", "S"], ["S", "N", "OW", "B", "OY"],
                  ["IY", "DH", "ER"], ["K", "AH", "M", "P", "Y", "UW", "T", "ER"]):
        g.background(int(g.rng.integers(30, 120)))
        g.add(words, int(g.rng.integers(3, 8)))
    g.background(60)
    x = g.logpost()
    x[5, 3] = np.nan  # a NaN counts as the floor, in both

    ref = ReferenceDecoder(model)
    ref_scores = []
    ref_dets = []
    for frame in x:
        d, s = ref.step(frame)
        ref_dets += d
        ref_scores.append(s)
    ref_dets += ref.flush()

    dec = KeywordDecoder(model)
    c_scores = np.zeros((len(x), len(model.keywords)), np.float32)
    c_dets = dec.process(x, c_scores) + dec.flush()

    assert len(ref_dets) >= 3
    assert [(d.keyword_index, d.start_frame, d.end_frame) for d in c_dets] == [
        (k, a, b) for k, _, a, b in ref_dets]
    np.testing.assert_allclose([d.score for d in c_dets], [s for _, s, _, _ in ref_dets], rtol=0, atol=1e-6)
    np.testing.assert_allclose(c_scores, np.array(ref_scores, np.float32), rtol=0, atol=1e-6)


def test_scores_stay_finite_over_an_hour_of_frames():
    model = make_model({"hey jarvis": JARVIS, "computer": COMPUTER}, threshold=-0.3)
    dec = KeywordDecoder(model)
    rng = np.random.default_rng(0)
    lo, hi = np.inf, -np.inf
    for _ in range(36):  # 36 x 10000 frames = 1 hour at 10 ms
        x = rng.normal(0, 3, size=(10000, 40)).astype(np.float32)
        x -= np.log(np.exp(x).sum(axis=1, keepdims=True))
        scores = np.zeros((len(x), 2), np.float32)
        dec.process(x, scores)
        live = scores[scores > NO_SCORE]
        if live.size:
            lo, hi = min(lo, live.min()), max(hi, live.max())
    assert dec.frames == 360000
    assert np.isfinite(lo) and np.isfinite(hi)
    assert model.emission_floor <= lo <= hi <= 0.0


def test_wrong_posterior_width_is_refused():
    dec = KeywordDecoder(make_model({"snowboy": SNOWBOY}))
    with pytest.raises(ValueError, match="columns"):
        dec.process(np.zeros((10, 35), np.float32))


def test_decoder_from_file_bytes_keeps_frame_shift():
    model = make_model({"snowboy": SNOWBOY})
    model.frame_shift_ms = 20
    dec = KeywordDecoder(model.to_bytes())
    assert dec.names == ["snowboy"] and dec.frame_shift_s == 0.02
    with pytest.raises(ModelFormatError):
        KeywordDecoder(model.to_bytes()[:-8])


def test_phone_scoring_weighs_phones_not_frames():
    """By phone, a long well-matched vowel cannot carry wrong consonants: 'snowboy' said
    with a long 'snow' and a wrong 'boy' scores lower by phone than by frame, while the
    keyword itself scores 0 either way."""
    model = make_model({"snowboy": SNOWBOY}, threshold=-6.0)
    g = Posteriorgram(seed=4, noise=0.0)
    g.background(40, avoid={"S", "N", "OW", "B", "OY"})
    g.add(["S", "N"], 4)
    g.add(["OW"], 30)            # a drawn-out vowel
    g.add(["K", "EY"], 4)        # "snow-kay", not "snowboy"
    g.background(40, avoid={"S", "N", "OW", "B", "OY"})
    x = g.logpost()
    by_phone, _ = _best_score(model, x)
    for kw in model.keywords:
        kw.phone_mean = False
    by_frame, _ = _best_score(model, x)
    assert by_phone < by_frame - 0.5
    g2 = Posteriorgram(seed=4, noise=0.0)
    g2.background(40)
    g2.add(["S", "N", "OW", "B", "OY"], 6)
    g2.background(40)
    for flag in (True, False):
        for kw in model.keywords:
            kw.phone_mean = flag
        assert _best_score(model, g2.logpost())[0] == pytest.approx(0.0, abs=1e-6)
