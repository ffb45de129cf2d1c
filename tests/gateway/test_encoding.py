"""Property tests for the pure encoding core: what a handset reassembles is what was typed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpp_gateway.encoding import (
    GSM_CHARS,
    GSM_EXTENSION,
    EncodingError,
    decode,
    fold,
    gsm_decode,
    gsm_encode,
    is_gsm7,
    join,
    preview,
    segments,
    split,
    validate_source,
)

METHODS = ("udh", "udh16", "sar", "payload")
GSM_ALPHABET = "".join(sorted(GSM_CHARS))
gsm_text = st.text(alphabet=GSM_ALPHABET, min_size=1, max_size=700)
any_text = st.text(min_size=1, max_size=400)
mixed_text = st.text(alphabet=GSM_ALPHABET + "ảđĐ€😀ệ中", min_size=1, max_size=500)

settings.register_profile("gateway", max_examples=150, deadline=None)
settings.load_profile("gateway")


def _reassemble(parts, method):
    """Order by the sequence number each method carries, as a handset would."""

    def seq(p):
        if method == "udh" and p.udh:
            return p.short_message[5]
        if method == "udh16" and p.udh:
            return p.short_message[6]
        return dict(p.tlvs).get("sar_segment_seqnum", 1)

    return join(sorted(parts, key=seq))


@given(text=st.one_of(any_text, gsm_text, mixed_text), method=st.sampled_from(METHODS))
def test_parts_decode_and_join_back_to_the_text(text, method):
    parts = split(text, concatenation=method, reference=0x1234)
    assert _reassemble(parts, method) == text


@given(text=st.one_of(any_text, gsm_text, mixed_text), method=st.sampled_from(METHODS[:3]))
def test_no_part_exceeds_140_octets_of_user_data(text, method):
    for p in split(text, concatenation=method, reference=7):
        assert p.air_octets <= 140
        assert len(p.short_message) <= 254  # SMPP short_message field limit


@given(text=mixed_text, method=st.sampled_from(METHODS[:3]))
def test_escape_pairs_and_surrogates_are_never_split(text, method):
    for p in split(text, concatenation=method, reference=7):
        body = p.short_message[len(p.udh) :]
        if p.data_coding == 0x08:
            body.decode("utf-16-be")  # raises on a lone surrogate
        else:
            assert not body.endswith(b"\x1b") or body.endswith(b"\x1b\x1b")
            assert gsm_encode(decode(p.short_message, p.data_coding, p.esm_class)) == body


@given(text=st.text(alphabet=GSM_ALPHABET.translate({ord(c): None for c in GSM_EXTENSION})))
def test_gsm_counts_follow_160_and_153(text):
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)
    assert preview(text).parts == expected
    assert preview(text).units == n
    if text:
        assert len(split(text, concatenation="udh", reference=1)) == expected


@given(text=st.text(alphabet="ảđĐệ中ÀÝ", min_size=1, max_size=600))
def test_ucs2_counts_follow_70_and_67(text):
    n = len(text)
    expected = 1 if n <= 70 else math.ceil(n / 67)
    pv = preview(text)
    assert (pv.encoding, pv.units, pv.parts) == ("ucs2", n, expected)
    assert len(split(text, concatenation="udh", reference=1)) == expected


@given(text=st.one_of(any_text, mixed_text), method=st.sampled_from(METHODS[:3]))
def test_preview_agrees_with_split(text, method):
    pv = preview(text, concatenation=method)
    parts = split(text, concatenation=method, reference=1)
    assert pv.parts == len(parts) == segments(text, concatenation=method)
    assert pv.chars_left >= 0
    assert pv.units == sum(p.units for p in parts)


def test_extension_characters_count_two_and_emoji_count_two():
    assert preview("a€").units == 3
    assert preview("{}").units == 4
    assert preview("😀").units == 2
    assert preview("😀").ucs2_chars == ("😀",)
    assert preview("x" * 159 + "€").parts == 2  # 161 septets


def test_escape_pair_at_boundary_moves_whole_to_next_part():
    text = "x" * 152 + "€" + "y" * 10  # € would straddle septet 153/154
    parts = split(text, concatenation="udh", reference=1)
    assert [p.units for p in parts] == [152, 12]
    assert join(parts) == text


def test_vietnamese_folds_to_gsm_and_fewer_parts():
    text = "Cảnh báo bão số 3: Đề nghị người dân di chuyển"
    folded = fold(text)
    assert folded == "Canh bao bao so 3: De nghi nguoi dan di chuyen"
    assert is_gsm7(folded)
    long = (text + " đến nơi an toàn trước 17h hôm nay. ") * 2
    assert preview(long).encoding == "ucs2"
    assert preview(long, fold=True).encoding == "gsm7"
    assert preview(long, fold=True).parts < preview(long).parts


def test_fold_handles_punctuation_and_decomposed_input():
    assert fold("“Chú ý” – sơ tán…") == '"Chu y" - so tan...'
    assert fold("Đà Nẵng") == "Da Nang"
    assert fold("Vie\u0302\u0323t") == "Viet"  # NFD input
    assert fold("Grüße 😀") == "Grüße 😀"  # GSM letters kept, emoji left for UCS-2


def test_preview_reports_characters_forcing_ucs2_in_order():
    pv = preview("Bão số 3 bão")
    assert pv.encoding == "ucs2"
    assert pv.ucs2_chars == ("ã", "ố")
    assert preview("Bão", fold=True).text == "Bao"


def test_chars_left():
    assert preview("hello").chars_left == 155
    assert preview("x" * 161).chars_left == 153 * 2 - 161
    assert preview("").parts == 0


@given(text=gsm_text)
def test_gsm_roundtrip(text):
    assert gsm_decode(gsm_encode(text)) == text


def test_multipart_headers():
    text = "x" * 200
    udh = split(text, concatenation="udh", reference=0x1AB)
    assert [p.short_message[:6] for p in udh] == [
        bytes([5, 0, 3, 0xAB, 2, 1]),
        bytes([5, 0, 3, 0xAB, 2, 2]),
    ]
    assert all(p.esm_class == 0x40 for p in udh)
    udh16 = split(text, concatenation="udh16", reference=0x1AB)
    assert udh16[1].short_message[:7] == bytes([6, 8, 4, 0x01, 0xAB, 2, 2])
    sar = split(text, concatenation="sar", reference=0x1AB)
    assert dict(sar[1].tlvs) == {
        "sar_msg_ref_num": 0x1AB,
        "sar_total_segments": 2,
        "sar_segment_seqnum": 2,
    }
    assert sar[0].esm_class == 0
    (payload,) = split(text, concatenation="payload", reference=1)
    assert payload.short_message == b""
    assert dict(payload.tlvs)["message_payload"] == b"x" * 200


def test_latin1_data_coding():
    (p,) = split("Hello @ home", concatenation="udh", reference=1, data_coding_gsm=0x03)
    assert (p.data_coding, p.short_message) == (0x03, b"Hello @ home")
    (p,) = split("Price 5€", concatenation="udh", reference=1, data_coding_gsm=0x03)
    assert p.data_coding == 0x08  # € is GSM but not Latin-1


def test_bad_input_is_refused():
    with pytest.raises(EncodingError):
        split("", concatenation="udh", reference=1)
    with pytest.raises(EncodingError, match="255"):
        split("x" * (153 * 255 + 1), concatenation="udh", reference=1)
    with pytest.raises(EncodingError, match="255"):
        split("x" * (153 * 255 + 1), concatenation="payload", reference=1)
    assert len(split("x" * (153 * 255), concatenation="udh", reference=1)) == 255
    for bad in ("TOOLONGBRAND1", "Bad!", "Cảnh"):
        with pytest.raises(EncodingError):
            validate_source(bad)
    for good in ("", "LOA-HaTinh", "UBND.HT", "84912345678"):
        validate_source(good)
    assert issubclass(EncodingError, ValueError)
