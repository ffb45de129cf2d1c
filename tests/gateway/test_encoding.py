"""Property tests for the pure encoding core: what a handset reassembles is what was typed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpp_gateway.client import OutboundMessage
from smpp_gateway.encoding import (
    GSM_CHARS,
    GSM_EXTENSION,
    EncodingError,
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


# --- the wire, checked against an oracle written here, apart from smpp_gateway.encoding ---
# GSM 03.38 extension table (3GPP TS 23.038 6.2.1.1): character → code after the 0x1B escape.
REF_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
                 "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip
REF_UNESCAPE = {code: char for char, code in REF_EXTENSION.items()}
# Septets per part: alone, then concatenated after a 6-octet UDH (7-octet for 16-bit refs).
REF_SINGLE, REF_MULTI = 160, {"udh": 153, "sar": 153, "udh16": 152}
# Text rich in escape pairs, at lengths around the part boundaries.
escape_heavy = st.lists(
    st.sampled_from([*REF_EXTENSION, "x", "x", "x", "y", "@", " "]), min_size=70, max_size=700
).map("".join)


def _ref_septets(char: str) -> int:
    return 2 if char in REF_EXTENSION else 1


def _ref_part_sizes(text: str, method: str) -> list[int]:
    """Septets per part by the plain rule: one part up to 160, else greedy parts of 153 (152)
    that never take half of an escape pair."""
    total = sum(_ref_septets(c) for c in text)
    if total <= REF_SINGLE:
        return [total]
    sizes, used = [], 0
    for char in text:
        if used + _ref_septets(char) > REF_MULTI[method]:
            sizes.append(used)
            used = 0
        used += _ref_septets(char)
    return [*sizes, used]


def _ref_pack(udh: bytes, septets: bytes) -> bytes:
    """User data as the SMSC puts it on the air: the UDH, fill bits to a septet boundary, then
    the septets packed 7 bits each, least significant bit first (TS 23.038 6.1.2.1)."""
    bits = "".join(format(octet, "08b")[::-1] for octet in udh)
    bits += "0" * (-len(bits) % 7)
    bits += "".join(format(septet, "07b")[::-1] for septet in septets)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8][::-1], 2) for i in range(0, len(bits), 8))


def _wire_body(short_message: bytes, esm_class: int) -> tuple[bytes, bytes]:
    """(UDH, body) of a short_message as an SMSC reads it: UDHL says how long the UDH is."""
    if esm_class & 0x40:
        return short_message[: 1 + short_message[0]], short_message[1 + short_message[0] :]
    return b"", short_message


def _ref_gsm_body(body: bytes) -> str:
    """The text of one part on its own. A 0x1B must be followed, in the same part, by a code of
    the extension table: a pair cut across parts would show the wrong character."""
    out, i = [], 0
    while i < len(body):
        if body[i] == 0x1B:
            assert i + 1 < len(body), "escape pair split across parts"
            assert body[i + 1] in REF_UNESCAPE, f"escape then {body[i + 1]:#04x}"
            out.append(REF_UNESCAPE[body[i + 1]])
            i += 2
        else:
            assert body[i] < 0x80
            out.append(gsm_decode(bytes([body[i]])))
            i += 1
    return "".join(out)


def _check_wire(text: str, method: str, received: list[tuple[bytes, int, int]]) -> None:
    """`received`: (short_message, data_coding, esm_class) of each submit_sm, in order."""
    texts = []
    for short_message, data_coding, esm_class in received:
        udh, body = _wire_body(short_message, esm_class)
        assert len(short_message) <= 254  # the SMPP short_message field
        if data_coding == 0x08:
            texts.append(body.decode("utf-16-be"))  # strict: a lone surrogate raises
            on_air = len(udh) + len(body)
            if method == "sar" and len(received) > 1:
                on_air += 6  # the SMSC adds the concatenation UDH
        else:
            texts.append(_ref_gsm_body(body))
            on_air = len(_ref_pack(udh, body))
            if method == "sar" and len(received) > 1:
                on_air = len(_ref_pack(bytes(6), body))
        assert on_air <= 140, f"{on_air} octets of user data on the air"
    assert "".join(texts) == text
    if is_gsm7(text) and received[0][1] != 0x08:
        septets = [len(_wire_body(sm, esm)[1]) for sm, _, esm in received]
        assert septets == _ref_part_sizes(text, method)


def _as_sent(parts):
    return [(p.short_message, p.data_coding, p.esm_class) for p in parts]


@given(
    text=st.one_of(any_text, gsm_text, mixed_text, escape_heavy),
    method=st.sampled_from(METHODS[:3]),
)
def test_no_part_exceeds_140_octets_of_user_data(text, method):
    _check_wire(text, method, _as_sent(split(text, concatenation=method, reference=7)))


@given(text=escape_heavy, method=st.sampled_from(METHODS[:3]))
def test_escape_pairs_are_never_split_and_parts_follow_the_reference_count(text, method):
    parts = split(text, concatenation=method, reference=7)
    _check_wire(text, method, _as_sent(parts))
    assert len(parts) == len(_ref_part_sizes(text, method)) == segments(text, concatenation=method)


@given(text=mixed_text, method=st.sampled_from(METHODS[:3]))
def test_surrogate_pairs_are_never_split(text, method):
    for p in split(text, concatenation=method, reference=7):
        if p.data_coding == 0x08:
            _wire_body(p.short_message, p.esm_class)[1].decode("utf-16-be")


BOUNDARY_TEXTS = {
    "pair_at_153": "x" * 152 + "€" + "y" * 10,
    "pair_at_152": "x" * 151 + "{" + "y" * 160,
    "all_pairs_one_part": "€" * 80,
    "all_pairs_two_parts": "€" * 81,
    "pair_at_160": "x" * 159 + "|",
    "pairs_across_three": ("x" * 75 + "[]") * 5,
}


@pytest.mark.parametrize("method", ["udh", "udh16", "sar"])
@pytest.mark.parametrize("text", list(BOUNDARY_TEXTS.values()), ids=list(BOUNDARY_TEXTS))
def test_what_the_smsc_receives_passes_the_oracle(start_simulator, open_session, method, text):
    sim = start_simulator()
    session = open_session(sim, concatenation=method)
    session.submit_many([OutboundMessage(1, "84912345678", text)])
    received = [(r.short_message, r.data_coding, r.esm_class) for r in sim.submits()]
    _check_wire(text, method, received)


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


# Edges found by mutation testing (docs/testing.md): each assertion fails for a planted change.


def test_sender_limits_are_inclusive_and_name_the_value():
    validate_source("A" * 11)
    validate_source("9" * 20)
    with pytest.raises(EncodingError, match=r"'AAAAAAAAAAAA' is longer than 11 characters"):
        validate_source("A" * 12)
    with pytest.raises(EncodingError, match=r"'9{21}' is longer than 20 digits"):
        validate_source("9" * 21)
    with pytest.raises(EncodingError, match=r"invalid characters \['!'\]"):
        validate_source("Bad!")


def test_unknown_septets_decode_as_question_marks():
    assert gsm_decode(b"\x80A") == "?A"
    assert gsm_decode(b"\x1b\x41") == "A"  # escape then a code with no extension: the basic one
    assert gsm_decode(b"\x1b\x80") == "?"
    assert gsm_decode(b"\x1b\x65") == "€"


def test_refusals_say_what_is_wrong():
    with pytest.raises(EncodingError, match=r"^not GSM 7-bit: 'ảệ'$"):
        gsm_encode("aảbệả")
    with pytest.raises(EncodingError, match=r"^empty text: nothing to send$"):
        split("", concatenation="udh", reference=1)


def test_latin1_parts_decode_as_latin1():
    from smpp_gateway.encoding import decode

    assert decode("café".encode("latin-1"), 0x03) == "café"


def test_empty_preview_and_default_segments():
    assert preview("") == preview("", concatenation="udh")
    assert (preview("").text, preview("").encoding, preview("").chars_left) == ("", "gsm7", 160)
    assert preview("").ucs2_chars == ()
    assert segments("") == 0
    assert segments("x" * 161) == 2
    assert segments("ả" * 71) == 2  # UCS-2 counts 70 per part, not GSM's 160


def test_ucs2_parts_count_utf16_units_only():
    def units(text: str) -> list[int]:
        return [p.units for p in split(text, concatenation="udh", reference=1)]

    assert units("ả" + "€" * 100) == [67, 34]  # € is one unit in UCS-2, two only in GSM
    assert units("😀" * 40) == [66, 14]  # a surrogate pair is two units, never cut
    assert units("\U00010000" * 40) == [66, 14]
    assert units("\uffff" * 71) == [67, 4]


def test_every_part_says_what_it_carries():
    (single,) = split("hello", concatenation="udh", reference=1)
    assert (single.esm_class, single.text, single.udh, single.data_coding) == (0, "hello", b"", 0)
    first, second = split("x" * 200, concatenation="udh", reference=9, data_coding_gsm=0x01)
    assert first.udh == bytes([5, 0, 3, 9, 2, 1]) and second.udh == bytes([5, 0, 3, 9, 2, 2])
    assert (first.text, second.text) == ("x" * 153, "x" * 47)
    assert first.data_coding == second.data_coding == 0x01
    (payload,) = split("y" * 200, concatenation="payload", reference=1, data_coding_gsm=0x01)
    assert (payload.esm_class, payload.data_coding) == (0, 0x01)
    assert (payload.text, payload.units) == ("y" * 200, 200)


# The fold table is built at import time, before mutmut turns a mutant on, so mutation testing
# cannot check it (docs/testing.md): every entry is pinned here instead.
FOLDED = {
    "đĐðÐ": "dDdD",
    "‘’‚‛′´`": "'''''''",
    "“”„‟″«»": '"""""""',
    "‐‑‒–—―−": "-------",
    "…•·\t": "...-. ",
    "\u00a0\u2002\u2003\u2009\u202f": "     ",
    "a\u200bb\ufeffc": "abc",
    "ÀẠẢÃÁÂẦẬẨẪẤĂẰẶẲẴẮ": "AAAAAAAAAAAAAAAAA",
    "ƠỜỢỞỠỚƯỪỰỬỮỨỲỴỶỸÝ": "OOOOOOUUUUUUYYYYY",
    "Ḁ": "A",  # first of the Latin Extended Additional block
    "ÄÖÑÜäöñüÅåÇÆæØøß": "ÄÖÑÜäöñüÅåÇÆæØøß",  # GSM letters stay as they are
    "ɐ": "ɐ",  # no mark to strip: left for UCS-2
}


@pytest.mark.parametrize(("typed", "sent"), FOLDED.items())
def test_fold_table(typed, sent):
    assert fold(typed) == sent


@pytest.mark.parametrize("method", ["udh16", "sar"])
def test_udh16_and_sar_parts_say_what_they_carry(method):
    first, second = split("z" * 200, concatenation=method, reference=9, data_coding_gsm=0x01)
    assert (first.text, second.text) == ("z" * first.units, "z" * second.units)
    assert first.units + second.units == 200
    assert first.data_coding == second.data_coding == 0x01
    assert bool(first.udh) == (method == "udh16")
    if method == "udh16":
        assert second.udh == bytes([6, 8, 4, 0, 9, 2, 2])


def test_the_last_bmp_character_is_one_ucs2_unit():
    assert preview("\uffff" * 70).units == 70 and preview("\uffff" * 70).parts == 1
