"""kws-enroll and kws-model from the outside: output, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kws.cli import enroll_main, model_main
from kws.model_file import KeywordModel


def one_line_error(capsys, code: int, prog: str) -> str:
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_enroll_english_json(tmp_path, capsys):
    path = tmp_path / "wake.kwm"
    assert enroll_main(["hey jarvis", "computer", "--lang", "en", "-o", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [k["keyword"] for k in info["keywords"]] == ["hey jarvis", "computer"]
    jarvis = info["keywords"][0]
    assert jarvis["variants"][0] == [["HH", "EY"]]
    assert ["JH", "AA", "R", "V", "IH", "S"] in jarvis["variants"][1]
    assert jarvis["states"] > 0 and jarvis["arcs"] > 0
    model = KeywordModel.load(path)
    assert model.names == ["hey jarvis", "computer"]
    assert info["bytes"] == path.stat().st_size


def test_enroll_korean_text_and_inspect(tmp_path, capsys):
    path = tmp_path / "ko.kwm"
    assert enroll_main(["헤이 카카오", "자비스야", "--lang", "ko", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "헤이 카카오" in out and "states" in out and "wrote" in out
    assert model_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ko-v1" in out and "자비스야" in out
    assert "false alarms/h expected" in out or "not calibrated" in out
    assert model_main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["phone_set"] == "ko-v1"
    assert [k["keyword"] for k in info["keywords"]] == ["헤이 카카오", "자비스야"]


@pytest.mark.parametrize("texts,lang", [
    ([""], "en"), (["   "], "ko"), (["?!..."], "en"), (["...!"], "ko"),
    (["🙂🙂"], "en"), (["🙂"], "ko"), (["헤이 카카오"], "en"), (["hey jarvis"], "ko"),
    (["hey 카카오"], "ko"), (["room 101"], "en"), (["jarvis", "jarvis"], "en"),
])
def test_enroll_bad_text_is_one_line(tmp_path, capsys, texts, lang):
    path = tmp_path / "x.kwm"
    code = enroll_main([*texts, "--lang", lang, "-o", str(path)])
    one_line_error(capsys, code, "kws-enroll")
    assert not path.exists()


def test_enroll_without_lang_follows_the_script(tmp_path, capsys):
    for texts, lang, phone_set in ((["자비스야", "헤이 카카오"], "ko", "ko-v1"), (["hey jarvis"], "en", "en-v1")):
        path = tmp_path / f"{lang}.kwm"
        assert enroll_main([*texts, "-o", str(path), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["lang"] == lang
        assert KeywordModel.load(path).phone_set.name == phone_set


@pytest.mark.parametrize("texts,why", [
    (["헤이 LG"], "mixes Hangul and Latin"), (["123"], "--lang ko or --lang en"),
    (["자비스야", "hey jarvis"], "two languages"),
])
def test_enroll_without_lang_refuses_what_the_script_does_not_decide(tmp_path, capsys, texts, why):
    path = tmp_path / "x.kwm"
    assert why in one_line_error(capsys, enroll_main([*texts, "-o", str(path)]), "kws-enroll")
    assert not path.exists()


def test_enroll_bad_output_path(tmp_path, capsys):
    code = enroll_main(["jarvis", "--lang", "en", "-o", str(tmp_path / "nope" / "x.kwm")])
    assert "does not exist" in one_line_error(capsys, code, "kws-enroll")


def test_enroll_keeps_existing_model_on_failure(tmp_path, capsys):
    path = tmp_path / "wake.kwm"
    assert enroll_main(["jarvis", "--lang", "en", "-o", str(path)]) == 0
    before = path.read_bytes()
    capsys.readouterr()
    one_line_error(capsys, enroll_main(["🙂", "--lang", "en", "-o", str(path)]), "kws-enroll")
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "empty"])
def test_inspect_bad_model_is_one_line(tmp_path, capsys, damage):
    path = tmp_path / "wake.kwm"
    assert enroll_main(["jarvis", "--lang", "en", "-o", str(path)]) == 0
    capsys.readouterr()
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-6] ^= 0xFF
    elif damage == "foreign":
        data = bytearray(b"\x89PNG\r\n\x1a\n" + bytes(100))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    line = one_line_error(capsys, model_main(["inspect", str(path)]), "kws-model")
    assert "not a valid keyword model" in line


def test_inspect_missing_file(tmp_path, capsys):
    line = one_line_error(capsys, model_main(["inspect", str(tmp_path / "none.kwm")]), "kws-model")
    assert "no such file" in line


def test_help_and_usage_exit_codes():
    with pytest.raises(SystemExit) as exc:
        enroll_main(["--help"])
    assert exc.value.code == 0
    with pytest.raises(SystemExit) as exc:
        enroll_main(["jarvis"])  # no -o
    assert exc.value.code == 2


BIN = Path(sys.executable).parent


@pytest.mark.skipif(not (BIN / "kws-enroll").exists(), reason="console scripts not installed")
def test_installed_console_scripts(tmp_path):
    path = tmp_path / "w.kwm"
    r = subprocess.run([str(BIN / "kws-enroll"), "자비스야", "--lang", "ko", "-o", str(path), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["keywords"][0]["keyword"] == "자비스야"
    r = subprocess.run([str(BIN / "kws-model"), "inspect", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "자비스야" in r.stdout
    r = subprocess.run([str(BIN / "kws-enroll"), "🙂", "--lang", "ko", "-o", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_module_entry_point_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kws.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "kws-enroll" in r.stdout


# --------------------------------------------------------------------------- calibration (issue 4)
@pytest.mark.parametrize("budget", ["0", "-1", "0.001", "61", "1e9", "nan", "inf"])
def test_enroll_budget_out_of_range_is_one_line(tmp_path, capsys, budget):
    path = tmp_path / "x.kwm"
    code = enroll_main(["hey jarvis", "--lang", "en", "-o", str(path), "--max-false-alarms-per-hour", budget])
    assert "between 0.01 and 60" in one_line_error(capsys, code, "kws-enroll")
    assert not path.exists()


def test_enroll_budget_not_a_number_is_usage():
    with pytest.raises(SystemExit) as exc:
        enroll_main(["hey jarvis", "--lang", "en", "-o", "x.kwm", "--max-false-alarms-per-hour", "often"])
    assert exc.value.code == 2


@pytest.mark.parametrize("texts,lang,why", [
    (["one two three four five six seven eight nine"], "en", "too long"),
    (["привет"], "en", ""), (["こんにちは"], "ko", ""), ([""], "ko", ""),
])
def test_enroll_too_long_or_unknown_script_is_one_line(tmp_path, capsys, texts, lang, why):
    code = enroll_main([*texts, "--lang", lang, "-o", str(tmp_path / "x.kwm")])
    assert why in one_line_error(capsys, code, "kws-enroll")


def test_enroll_shows_expected_rate_and_warns_on_stderr(tmp_path, capsys):
    path = tmp_path / "w.kwm"
    assert enroll_main(["hey jarvis", "yes", "--lang", "en", "-o", str(path),
                        "--max-false-alarms-per-hour", "2"]) == 0
    out, err = capsys.readouterr()
    assert "false alarms/h expected (budget 2/h" in out and "quality" in out
    assert "kws-enroll: warning: 'yes' has only 1 syllable" in err and "Traceback" not in err
    assert enroll_main(["hey jarvis", "yes", "--lang", "en", "-o", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)  # warnings stay off stdout
    yes = info["keywords"][1]
    assert yes["report"]["weak"] and yes["expected_fa_per_hour"] is not None
    assert info["budget_fa_per_hour"] == 0.5


def test_enroll_strict_refuses_weak_word_and_keeps_model(tmp_path, capsys):
    path = tmp_path / "w.kwm"
    assert enroll_main(["hey jarvis computer", "--lang", "en", "-o", str(path)]) == 0
    before = path.read_bytes()
    capsys.readouterr()
    code = enroll_main(["yes", "--lang", "en", "-o", str(path), "--strict"])
    assert "weak wake word" in one_line_error(capsys, code, "kws-enroll")
    assert path.read_bytes() == before


def test_enroll_recording_errors_are_one_line(tmp_path, capsys):
    code = enroll_main(["hey jarvis", "computer", "--lang", "en", "-o", str(tmp_path / "x.kwm"),
                        "--recording", str(tmp_path / "a.wav")])
    assert "single wake word" in one_line_error(capsys, code, "kws-enroll")
    code = enroll_main(["hey jarvis", "--lang", "en", "-o", str(tmp_path / "x.kwm"),
                        "--recording", str(tmp_path / "missing.wav")])
    assert "missing.wav" in one_line_error(capsys, code, "kws-enroll")


def test_enroll_with_a_recording(tmp_path, capsys):
    import numpy as np
    import soundfile

    wav = tmp_path / "me.wav"
    soundfile.write(wav, (np.random.default_rng(0).normal(0, 2000, 24000)).astype(np.int16), 16000)
    assert enroll_main(["either way", "--lang", "en", "-o", str(tmp_path / "x.kwm"), "--recording", str(wav),
                        "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["keywords"][0]["report"]
    assert rep["variant"] and rep["recordings"][0]["file"] == str(wav)


def test_enroll_with_phones_set_by_hand(tmp_path, capsys):
    """--phones replaces the guess for a word CMUdict lacks (the report's notation, a pasted
    report line too); the report then has no 'guessed' note; bad phones are one line and
    write nothing."""
    path = tmp_path / "x.kwm"
    assert enroll_main(["hey kaia", "--lang", "en", "-o", str(path), "--json"]) == 0
    guessed = json.loads(capsys.readouterr().out)["keywords"][0]["report"]["guessed"]
    assert guessed[0]["word"] == "kaia" and ["K", "AY", "AH"] in guessed[0]["also_likely"]
    assert enroll_main(["hey kaia", "--lang", "en", "-o", str(path), "--json", "--phones", "HH EY | K AY AH"]) == 0
    out = json.loads(capsys.readouterr().out)["keywords"][0]
    assert out["pronunciation"] == "hey kaia: HH EY | K AY AH" and out["report"]["guessed"] == []
    assert not [w for w in out["report"]["warnings"] if w["code"] == "guessed"]
    assert KeywordModel.load(path).keywords[0].pronunciation == "hey kaia: HH EY | K AY AH"
    assert enroll_main(["hey kaia", "--lang", "en", "-o", str(path), "--phones",
                        "hey kaia: HH EY | (K AY AH / K IY AH)"]) == 0
    assert KeywordModel.load(path).keywords[0].pronunciation == "hey kaia: HH EY | (K AY AH / K IY AH)"
    capsys.readouterr()
    before = path.read_bytes()
    for phones, needle in [("K AY AH", "has 2 words"), ("HH EY | K QQ AH", "unknown phone 'QQ'"),
                           ("HH EY | sil", "unknown phone 'sil'"), ("HH EY | ", "no phones"), ("  ", "non-empty"),
                           ("HH EY | (K AY AH / K IY AH / K EY AH / K AA / K OW)", "at most 4")]:
        code = enroll_main(["hey kaia", "--lang", "en", "-o", str(path), "--phones", phones])
        assert needle in one_line_error(capsys, code, "kws-enroll"), phones
    code = enroll_main(["hey kaia", "jarvis", "--lang", "en", "-o", str(path), "--phones", "HH EY | K AY AH"])
    assert "single wake word" in one_line_error(capsys, code, "kws-enroll")
    assert path.read_bytes() == before
    from kws import enroll
    from kws.errors import KwsError
    with pytest.raises(KwsError, match="not one of the wake words"):
        enroll(["hey kaia"], "en", phones={"hey kai": "HH EY | K AY"})
    ko = enroll(["헤이 카카오"], "ko", phones={"헤이 카카오": "h e i | k a k a o"})
    assert ko.model.keywords[0].pronunciation == "헤이 카카오: h e i | k a k a o"


def test_model_add_and_remove(tmp_path, capsys):
    path = tmp_path / "w.kwm"
    assert enroll_main(["hey jarvis", "--lang", "en", "-o", str(path)]) == 0
    first = KeywordModel.load(path).keywords[0]
    capsys.readouterr()
    assert model_main(["add", str(path), "open sesame", "--max-false-alarms-per-hour", "1"]) == 0
    out = capsys.readouterr().out
    assert "open sesame" in out and "2 keywords" in out
    model = KeywordModel.load(path)
    assert model.names == ["hey jarvis", "open sesame"]
    assert (model.keywords[0].states, model.keywords[0].threshold) == (first.states, first.threshold)
    assert model_main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert all(k["expected_fa_per_hour"] is not None for k in info["keywords"])
    before = path.read_bytes()
    for argv, why in [(["add", str(path), "hey jarvis"], "already in the model"),
                      (["add", str(path), "🙂"], ""),
                      (["add", str(path), "alexa", "--max-false-alarms-per-hour", "0"], "between"),
                      (["remove", str(path), "alexa"], "not in the model"),
                      (["remove", str(path), "hey jarvis", "open sesame"], "at least one")]:
        assert why in one_line_error(capsys, model_main(argv), "kws-model")
        assert path.read_bytes() == before
    assert model_main(["remove", str(path), "hey jarvis", "--json"]) == 0
    assert [k["keyword"] for k in json.loads(capsys.readouterr().out)["keywords"]] == ["open sesame"]
    assert KeywordModel.load(path).names == ["open sesame"]
    code = model_main(["add", str(tmp_path / "none.kwm"), "alexa"])
    assert "no such file" in one_line_error(capsys, code, "kws-model")


def test_enroll_states_per_phone(tmp_path, capsys):
    """--states-per-phone sets the shortest phone (in frames): 'computer' (8 phones, one
    pronunciation) has 8 * N states; out of range is a one-line error."""
    sizes = {}
    for n in (2, 4):
        path = tmp_path / f"c{n}.kwm"
        assert enroll_main(["computer", "--lang", "en", "-o", str(path), "--states-per-phone", str(n),
                            "--threshold", "-1"]) == 0
        capsys.readouterr()
        kw = KeywordModel.load(path).keywords[0]
        assert kw.phone_mean
        sizes[n] = len(kw.states)
    assert sizes[4] == 2 * sizes[2] and sizes[2] % 2 == 0
    msg = one_line_error(capsys, enroll_main(["computer", "--lang", "en", "-o", str(tmp_path / "x.kwm"),
                                              "--states-per-phone", "9"]), "kws-enroll")
    assert "--states-per-phone must be 1 to 8" in msg


# --------------------------------------------------------------------------- format 2.0
def test_enroll_uncertainty_weight_sets_the_format(tmp_path, capsys):
    """Default: format 2.1 (weight 0.5, the best phone pays it too); --uncertainty-weight 0
    writes 1.1 (for devices whose firmware predates 2.0), and its calibrated threshold is on
    the other scale."""
    new, old = tmp_path / "new.kwm", tmp_path / "old.kwm"
    assert enroll_main(["hey jarvis", "--lang", "en", "-o", str(new)]) == 0
    assert enroll_main(["hey jarvis", "--lang", "en", "-o", str(old), "--uncertainty-weight", "0"]) == 0
    capsys.readouterr()
    a, b = KeywordModel.load(new), KeywordModel.load(old)
    assert (a.format_version, a.uncertainty_weight, a.best_pays) == ("2.1", 0.5, True)
    assert (b.format_version, b.uncertainty_weight, b.best_pays) == ("1.1", 0.0, False)
    assert new.read_bytes()[4:8] == b"\x02\x00\x01\x00" and old.read_bytes()[4:6] == b"\x01\x00"
    # the weight lowers every score, so the same budget takes a lower threshold
    assert a.keywords[0].threshold < b.keywords[0].threshold
    assert model_main(["inspect", str(new), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format_version"] == "2.1" and info["uncertainty_weight"] == 0.5 and info["best_phone_pays"]
    # keywords added to a model are scored on its scale: a 1.1 model stays 1.1
    assert model_main(["add", str(old), "computer"]) == 0
    capsys.readouterr()
    grown = KeywordModel.load(old)
    assert grown.names == ["hey jarvis", "computer"] and grown.format_version == "1.1"
    assert model_main(["add", str(new), "computer"]) == 0  # and a 2.1 model stays 2.1
    capsys.readouterr()
    grown = KeywordModel.load(new)
    assert grown.names == ["hey jarvis", "computer"] and grown.format_version == "2.1" and grown.best_pays


@pytest.mark.parametrize("w", ["-0.1", "5", "nan"])
def test_enroll_bad_uncertainty_weight_is_one_line(tmp_path, capsys, w):
    path = tmp_path / "x.kwm"
    code = enroll_main(["hey jarvis", "--lang", "en", "-o", str(path), "--uncertainty-weight", w])
    assert "uncertainty weight must be 0 to 4" in one_line_error(capsys, code, "kws-enroll")
    assert not path.exists()
