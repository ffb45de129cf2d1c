"""Properties of broadcast.text, the rules every typed field passes (API, console and core)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcast import text
from broadcast.models import Alert, ApiToken, Area, Brandname, Carrier, Import, TestRecipient, User
from broadcast.text import TextRule

# Stated here, not taken from the code under test: embeddings and overrides, isolates, the
# left-to-right and right-to-left marks, the Arabic letter mark.
BIDI_CONTROLS = [chr(c) for c in range(0x202A, 0x202F)] + [
    *(chr(c) for c in range(0x2066, 0x206A)),
    "\u200e",
    "\u200f",
    "\u061c",
]
BLANKS = "\u200b\u200c\u200d\u2060\ufeff\u3164\u2800\u115f\u1160\uffa0\u180e"

VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
VIETNAMESE = VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + "0123456789 .,;:!?()-–/%\"'"
INVISIBLE = st.one_of(
    st.characters(categories=["Cf", "Zs", "Zl", "Zp", "Mn", "Me"]),
    st.sampled_from(BLANKS),
)
RULES = [text.TITLE, text.SMS_BODY, text.EVENT, text.INSTRUCTION, text.REASON, text.TOKEN_NAME]
REQUIRED = [r for r in RULES if r.required]
PUBLIC = [r for r in RULES if r.public]


@settings(max_examples=300, derandomize=True)
@given(value=st.text(INVISIBLE, min_size=0, max_size=50), rule=st.sampled_from(REQUIRED))
def test_text_made_only_of_invisible_characters_is_refused(value: str, rule: TextRule) -> None:
    assert text.problems(value, rule)


@pytest.mark.parametrize("blank", BLANKS)
def test_each_blank_character_alone_is_no_title(blank: str) -> None:
    assert text.problems(blank * 3, text.TITLE)


@settings(max_examples=300, derandomize=True)
@given(
    before=st.text(VIETNAMESE, max_size=40),
    control=st.sampled_from(sorted(BIDI_CONTROLS)),
    after=st.text(VIETNAMESE, max_size=40),
    rule=st.sampled_from(PUBLIC),
)
def test_bidi_controls_are_refused_and_named_in_public_text(
    before: str, control: str, after: str, rule: TextRule
) -> None:
    found = text.problems(f"x{before}{control}{after}", rule)
    assert any(f"U+{ord(control):04X}" in message for message in found), found


@settings(max_examples=200, derandomize=True)
@given(rule=st.sampled_from(RULES), extra=st.integers(min_value=-3, max_value=3))
def test_lengths_are_enforced_at_the_boundary(rule: TextRule, extra: int) -> None:
    value = "Đ" * (rule.max_length + extra)
    refused = any("at most" in message for message in text.problems(value, rule))
    assert refused == (extra > 0)


@settings(max_examples=300, derandomize=True)
@given(
    value=st.text(VIETNAMESE, min_size=1, max_size=200).filter(lambda v: v.strip()),
    rule=st.sampled_from(RULES),
)
def test_vietnamese_text_is_accepted(value: str, rule: TextRule) -> None:
    value = value[: rule.max_length]
    if not value.strip():
        value = "Bão"
    assert text.problems(value, rule) == []


@settings(max_examples=200, derandomize=True)
@given(value=st.text(st.characters(categories=["Cc"]), min_size=1, max_size=5))
def test_control_characters_are_refused_except_line_breaks_in_long_text(value: str) -> None:
    assert text.problems(f"Bão{value}", text.TITLE)
    breaks_only = all(c in "\n\r\t" for c in value)
    assert bool(text.problems(f"Bão{value}", text.SMS_BODY)) != breaks_only


@pytest.mark.parametrize(
    ("rule", "column"),
    [
        (text.TITLE, Alert.__table__.c.title),
        (text.EVENT, Alert.__table__.c.event),
        (text.WEB, Alert.__table__.c.web),
        (text.BRANDNAME, Alert.__table__.c.brandname),
        (text.BRANDNAME, Brandname.__table__.c.name),
        (text.CODE, Area.__table__.c.code),
        (text.CODE, Carrier.__table__.c.code),
        (text.USERNAME, User.__table__.c.username),
        (text.DISPLAY_NAME, User.__table__.c.display_name),
        (text.TOKEN_NAME, ApiToken.__table__.c.name),
        (text.RECIPIENT_NAME, TestRecipient.__table__.c.name),
        (text.FILENAME, Import.__table__.c.filename),
    ],
    ids=lambda v: getattr(v, "name", "") if not isinstance(v, TextRule) else "",
)
def test_limits_match_the_database_columns(rule: TextRule, column: Any) -> None:
    assert rule.max_length == column.type.length
