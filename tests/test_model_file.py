"""The .kwm writer and both readers (Python and C) against docs/kwm-format.md."""

from __future__ import annotations

import struct
import zlib

import pytest

from kws import _core
from kws.errors import ModelFormatError
from kws.model_file import HEADER_SIZE, KeywordModel
from kws.phonesets import KOREAN
from synthetic import make_model, pron

KWS_ERR_TRUNCATED, KWS_ERR_MAGIC, KWS_ERR_VERSION, KWS_ERR_CRC = 2, 3, 4, 5
KWS_ERR_CORRUPT, KWS_ERR_PHONESET = 6, 7


@pytest.fixture(scope="module")
def model() -> KeywordModel:
    return make_model({
        "hey jarvis": pron(["HH", "EY"], ["JH", "AA", "R", "V", "IH", "S"]),
        "either": pron([["IY", "DH", "ER"], ["AY", "DH", "ER"]]),
    }, threshold=-0.75)


def refresh_crc(data: bytearray) -> bytearray:
    data[12:16] = b"\0\0\0\0"
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data)))
    return data


def test_round_trip(model):
    data = model.to_bytes()
    assert data[:4] == b"KWSM" and len(data) % 4 == 0
    assert struct.unpack_from("<I", data, 8)[0] == len(data)
    back = KeywordModel.from_bytes(data)
    assert back.names == ["hey jarvis", "either"]
    assert back.phone_set == model.phone_set
    assert [k.states for k in back.keywords] == [k.states for k in model.keywords]
    assert [k.threshold for k in back.keywords] == [-0.75, -0.75]
    assert back.to_bytes() == data
    assert _core.validate_model(data) == (0, "ok")


def test_c_crc_matches_zlib():
    for blob in (b"", b"123456789", bytes(range(256)) * 7):
        assert _core.crc32(blob) == zlib.crc32(blob)
    assert _core.crc32(b"123456789") == 0xCBF43926


def test_sections_are_aligned(model):
    data = model.to_bytes()
    offsets = struct.unpack_from("<IIII", data, 32)
    assert all(o % 4 == 0 and HEADER_SIZE <= o <= len(data) for o in offsets)


def test_every_truncation_is_refused_by_both_readers(model):
    data = model.to_bytes()
    for n in range(len(data)):
        code, _ = _core.validate_model(data[:n])
        assert code != 0, n
        with pytest.raises(ModelFormatError):
            KeywordModel.from_bytes(data[:n])


@pytest.mark.parametrize("offset", [0, 5, 20, 40, 70, 100, -3])
def test_flipped_byte_fails_crc(model, offset):
    data = bytearray(model.to_bytes())
    data[offset] ^= 0x40
    code, _ = _core.validate_model(bytes(data))
    assert code in (KWS_ERR_CRC, KWS_ERR_MAGIC, KWS_ERR_VERSION, KWS_ERR_TRUNCATED, KWS_ERR_CORRUPT)
    if offset not in (0, 5):
        assert code == KWS_ERR_CRC
    with pytest.raises(ModelFormatError, match="not a valid keyword model"):
        KeywordModel.from_bytes(bytes(data))


def test_foreign_file_is_refused():
    code, msg = _core.validate_model(b"RIFF" + bytes(200))
    assert code == KWS_ERR_MAGIC
    with pytest.raises(ModelFormatError, match="magic"):
        KeywordModel.from_bytes(b"RIFF" + bytes(200))


def test_phone_scoring_is_format_1_1_and_1_0_files_stay_1_0(model):
    """Keywords scored by phone set keyword flag bit 0 and state flag PHONE_START (1.1);
    a model without them is written as 1.0, which older readers accept."""
    from kws.graph import KW_PHONE_MEAN, STATE_PHONE_START
    data = model.to_bytes()
    assert struct.unpack_from("<H", data, 6)[0] == 1
    kw0 = HEADER_SIZE
    assert struct.unpack_from("<H", data, kw0 + 26)[0] == KW_PHONE_MEAN
    back = KeywordModel.from_bytes(data)
    assert all(k.phone_mean for k in back.keywords)
    # the first state of every phone starts a phone: "hey" = HH EY, n states each
    from kws.graph import DEFAULT_STATES_PER_PHONE as n
    assert [bool(s.flags & STATE_PHONE_START) for s in back.keywords[0].states[:2 * n]] == \
        ([True] + [False] * (n - 1)) * 2
    import dataclasses
    old = dataclasses.replace(model, version_minor=0, keywords=[
        dataclasses.replace(k, phone_mean=False,
                            states=[dataclasses.replace(s, flags=s.flags & ~STATE_PHONE_START) for s in k.states])
        for k in model.keywords])
    raw = old.to_bytes()
    assert struct.unpack_from("<H", raw, 6)[0] == 0 and struct.unpack_from("<H", raw, kw0 + 26)[0] == 0
    assert not any(k.phone_mean for k in KeywordModel.from_bytes(raw).keywords)


def test_newer_major_version_is_refused(model):
    data = bytearray(model.to_bytes())
    struct.pack_into("<H", data, 4, 3)
    assert _core.validate_model(bytes(refresh_crc(data)))[0] == KWS_ERR_VERSION
    with pytest.raises(ModelFormatError, match="version"):
        KeywordModel.from_bytes(bytes(data))


def test_best_pays_makes_a_2_1_file(model):
    """Format 2.1: with ``best_pays`` every state but the pauses' carries state flag
    BEST_PAYS (0x10), which a 2.0 reader refuses as an unknown flag rather than score
    the file on another scale; without a weight the flag is not written (1.x)."""
    import dataclasses
    from kws.graph import STATE_BEST_PAYS
    m = dataclasses.replace(model, uncertainty_weight=0.5, best_pays=True)
    data = m.to_bytes()
    assert struct.unpack_from("<HH", data, 4) == (2, 1)
    assert _core.validate_model(data)[0] == 0
    back = KeywordModel.from_bytes(data)
    assert back.best_pays and back.format_version == "2.1" and back.to_bytes() == data
    assert not any(st.flags & STATE_BEST_PAYS for k in back.keywords for st in k.states)  # the model says it
    st_off, n_states = struct.unpack_from("<I", data, 36)[0], struct.unpack_from("<I", data, 24)[0]
    flags = [(struct.unpack_from("<H", data, st_off + 8 * i)[0], data[st_off + 8 * i + 2]) for i in range(n_states)]
    assert all(bool(f & STATE_BEST_PAYS) == (phone != 0) for phone, f in flags)
    assert any(phone == 0 for phone, _ in flags)  # the test model has pauses, which stay neutral
    no_weight = dataclasses.replace(m, uncertainty_weight=0.0).to_bytes()
    assert struct.unpack_from("<H", no_weight, 4)[0] == 1 and not KeywordModel.from_bytes(no_weight).best_pays
    assert dataclasses.replace(m, best_pays=False).to_bytes()[4:8] == b"\x02\x00\x00\x00"


def test_uncertainty_weight_makes_a_2_0_file(model):
    """Format 2.0 (docs/kwm-format.md): header field 58 holds the weight in 1/256 units;
    a file without a weight stays 1.x, where field 58 is reserved and read as no weight."""
    import dataclasses
    assert struct.unpack_from("<HHHH", model.to_bytes(), 4)[0] == 1
    w = dataclasses.replace(model, uncertainty_weight=0.5)
    data = w.to_bytes()
    assert struct.unpack_from("<HH", data, 4) == (2, 0) and struct.unpack_from("<H", data, 58)[0] == 128
    assert _core.validate_model(data)[0] == 0
    back = KeywordModel.from_bytes(data)
    assert back.uncertainty_weight == 0.5 and back.format_version == "2.0"
    assert back.to_bytes() == data
    # 1.x: a non-zero field 58 (reserved there) is not a weight
    old = bytearray(model.to_bytes())
    struct.pack_into("<H", old, 58, 128)
    assert KeywordModel.from_bytes(bytes(refresh_crc(old))).uncertainty_weight == 0.0
    with pytest.raises(ModelFormatError, match="uncertainty_weight"):
        dataclasses.replace(model, uncertainty_weight=-0.1).to_bytes()


def test_newer_minor_version_is_accepted(model):
    data = bytearray(model.to_bytes())
    struct.pack_into("<H", data, 6, 3)
    back = KeywordModel.from_bytes(bytes(refresh_crc(data)))
    assert back.version_minor == 3


def test_other_phone_set_is_refused(model):
    data = model.to_bytes()
    assert _core.validate_model(data, KOREAN.id)[0] == KWS_ERR_PHONESET
    assert _core.validate_model(data, model.phone_set.id)[0] == 0


@pytest.mark.parametrize("what", ["phone", "pred", "coverage", "name", "floor"])
def test_corrupt_graph_with_valid_crc_is_refused(model, what):
    data = bytearray(model.to_bytes())
    kw_off, st_off, arc_off, str_off = struct.unpack_from("<IIII", data, 32)
    if what == "phone":
        struct.pack_into("<H", data, st_off + 8 * 3, 999)
    elif what == "pred":
        struct.pack_into("<H", data, arc_off, 40)  # a predecessor after its state
    elif what == "coverage":
        struct.pack_into("<I", data, kw_off + 32 + 12, 3)  # second keyword's first_state
    elif what == "name":
        struct.pack_into("<I", data, kw_off, 10_000)
    elif what == "floor":
        struct.pack_into("<f", data, 60, 1.0)
    data = bytes(refresh_crc(data))
    assert _core.validate_model(data)[0] == KWS_ERR_CORRUPT
    with pytest.raises(ModelFormatError):
        KeywordModel.from_bytes(data)


def test_save_is_atomic_and_load_reports_missing(model, tmp_path):
    path = tmp_path / "m.kwm"
    model.save(path)
    assert path.read_bytes() == model.to_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.kwm"]
    with pytest.raises(ModelFormatError, match="no such file"):
        KeywordModel.load(tmp_path / "missing.kwm")
    with pytest.raises(ModelFormatError, match="directory"):
        KeywordModel.load(tmp_path)
