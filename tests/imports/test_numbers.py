"""Number normalisation: every accepted form maps to one E.164 value; every refusal has a reason."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcast.settings import CONFIG_DIR
from subscriber_import.numbers import NumberPlan, normalise, normalise_one

PLAN = NumberPlan.from_files(
    CONFIG_DIR / "number_ranges.csv", CONFIG_DIR / "number_conversions.csv"
)
NEW_TO_OLD = {new: old for old, new in PLAN.conversions.items()}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "84912345678"),
        ("84912345678", "84912345678"),
        ("+84 91 234 5678", "84912345678"),
        ("(+84) 912-345-678", "84912345678"),
        ("0084912345678", "84912345678"),
        ("84 0912 345 678", "84912345678"),
        ("912345678", "84912345678"),  # leading zero lost
        (912345678.0, "84912345678"),  # Excel float
        ("912345678.0", "84912345678"),
        ("9.12345678E+8", "84912345678"),
        ("8.4912345678E10", "84912345678"),
        (912345678, "84912345678"),
        ("0912.345.678", "84912345678"),
        ("'0912345678", "84912345678"),  # Excel text marker
        ("0912\u00a0345\u00a0678", "84912345678"),
        ("0841234567", "84841234567"),  # VinaPhone 084, not the country code
        ("841234567", "84841234567"),
        ("01621234567", "84321234567"),  # Viettel 0162 → 032
        ("1621234567", "84321234567"),
        ("+84 162 123 4567", "84321234567"),
        ("01201234567", "84701234567"),  # MobiFone 0120 → 070
        ("01991234567", "84591234567"),  # Gmobile 0199 → 059
        ("0121 012 3456", "84790123456"),  # old 0121 (11 digits) → 079
        ("0993123456", "84993123456"),
        ("0559123456", "84559123456"),
        ("8401662345678", "84362345678"),  # 84, the trunk 0, an old 11-digit number
        ("+84 0166 234 5678", "84362345678"),
        ("0084 01662345678", "84362345678"),
        ("840912345678", "84912345678"),
        ("0311234567", "84311234567"),  # Viettel 031 (libphonenumber; see number_ranges.csv)
        ("0140123456", "84140123456"),  # MobiFone 0140
    ],
)
def test_accepted_forms(raw: object, expected: str) -> None:
    assert normalise_one(raw, PLAN) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        (None, "empty"),
        ("   ", "empty"),
        ("09l2345678", "invalid"),
        ("=HYPERLINK(1)", "invalid"),
        ("0239 3855 555", "landline"),  # Ha Tinh fixed line
        ("+1 555 123 4567", "not_mobile"),
        ("0991234567", "not_mobile"),  # 0991 is refused on purpose (number_ranges.csv)
        ("0951234567", "not_mobile"),  # 095: S-Fone's former range
        ("0112345678", "not_mobile"),
        ("12345", "not_mobile"),  # no range starts so: not a short mobile number
        ("0", "not_mobile"),
        ("091234567", "too_short"),
        ("0911", "too_short"),
        ("016212345", "too_short"),  # an old 11-digit prefix with digits missing
        ("09123456789", "too_long"),
        ("0912345678901234", "too_long"),
    ],
)
def test_refused_with_reason(raw: object, reason: str) -> None:
    frame = normalise(pd.Series([raw], dtype=object), PLAN)
    assert frame["reason"].iloc[0] == reason
    assert pd.isna(frame["msisdn"].iloc[0])


def test_converted_and_carrier_columns() -> None:
    frame = normalise(pd.Series(["01651234567", "0351234567", "0701234567"]), PLAN)
    assert frame["msisdn"].tolist() == ["84351234567", "84351234567", "84701234567"]
    assert frame["converted"].tolist() == [True, False, False]
    assert frame["carrier"].tolist() == ["viettel", "viettel", "mobifone"]


def _national_numbers() -> st.SearchStrategy[str]:
    prefixes = sorted(p for p, (carrier, _) in PLAN.ranges.items() if carrier)
    return st.sampled_from(prefixes).flatmap(
        lambda p: st.text("0123456789", min_size=PLAN.ranges[p][1] - len(p),
                          max_size=PLAN.ranges[p][1] - len(p)).map(lambda rest, p=p: p + rest)
    )  # fmt: skip


def _group(digits: str, sep: str, size: int) -> str:
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size))


FORMS = [
    lambda n, sep, size: "0" + n,
    lambda n, sep, size: "84" + n,
    lambda n, sep, size: "+84" + sep + _group(n, sep, size),
    lambda n, sep, size: "0" + _group(n, sep, size),
    lambda n, sep, size: n,
    lambda n, sep, size: n + ".0",
    lambda n, sep, size: f"{float(n):.{len(n) - 1}E}",
    lambda n, sep, size: float(n),
    lambda n, sep, size: float("84" + n),
    lambda n, sep, size: "0084" + n,
]


@settings(max_examples=300, deadline=None)
@given(
    national=_national_numbers(),
    form=st.integers(0, len(FORMS) - 1),
    sep=st.sampled_from([" ", ".", "-", ""]),
    size=st.integers(2, 4),
)
def test_any_valid_number_in_any_form_maps_to_one_e164(
    national: str, form: int, sep: str, size: int
) -> None:
    raw = FORMS[form](national, sep, size)
    assert normalise_one(raw, PLAN) == "84" + national, raw


@settings(max_examples=100, deadline=None)
@given(
    rest=st.text("0123456789", min_size=7, max_size=7),
    old=st.sampled_from(sorted(PLAN.conversions)),
)
def test_eleven_digit_numbers_convert_to_their_new_range(rest: str, old: str) -> None:
    expected = "84" + PLAN.conversions[old] + rest
    for raw in (
        "0" + old + rest,
        old + rest,
        "84" + old + rest,
        "+84 " + old + " " + rest,
        "840" + old + rest,
        "+84 0" + old + " " + rest,
    ):
        frame = normalise(pd.Series([raw]), PLAN)
        assert frame["msisdn"].iloc[0] == expected, raw
        assert bool(frame["converted"].iloc[0])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.text(max_size=20), st.floats(), st.integers(), st.none()), max_size=30)
)
def test_never_crashes_and_always_gives_a_number_or_a_reason(values: list[object]) -> None:
    frame = normalise(pd.Series(values, dtype=object), PLAN)
    assert len(frame) == len(values)
    assert (frame["msisdn"].isna() == frame["reason"].notna()).all()
    accepted = frame["msisdn"].dropna()
    assert accepted.str.fullmatch(r"84\d{9}").all()


# Edges found by mutation testing (docs/testing.md).
@pytest.mark.parametrize("raw", ["9.12345678e+8", "9,12345678E+8", "9,12345678e8"])
def test_spreadsheet_exponents_in_any_case_and_decimal_comma(raw: str) -> None:
    assert normalise_one(raw, PLAN) == "84912345678"


def test_normalise_one_says_none_for_a_refused_number() -> None:
    assert normalise_one("abc", PLAN) is None
    assert normalise_one(None, PLAN) is None
    assert normalise_one("0912345678", PLAN) == "84912345678"


def test_a_cell_reading_nan_is_an_empty_cell() -> None:
    """ "nan" is what a missing spreadsheet cell becomes when a tool turns it to text."""
    frame = normalise(pd.Series(["nan", float("nan"), 912345678.0], dtype=object), PLAN)
    assert frame["reason"].tolist() == ["empty", "empty", None]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("01123456789", "not_mobile"),  # ten national digits in no range: not too long
        ("011234567890", "too_long"),  # eleven
        ("9.9E+15", "too_long"),  # a spreadsheet exponent beyond any phone number
    ],
)
def test_lengths_outside_every_range(raw: str, reason: str) -> None:
    assert normalise(pd.Series([raw], dtype=object), PLAN)["reason"].iloc[0] == reason


def test_the_frame_keeps_the_callers_row_labels() -> None:
    frame = normalise(pd.Series(["0912345678", "abc"], index=[7, 3], dtype=object), PLAN)
    assert list(frame.index) == [7, 3]
    assert frame.loc[7, "msisdn"] == "84912345678" and frame.loc[3, "reason"] == "invalid"
    assert frame.loc[7, "carrier"] == "vinaphone" and pd.isna(frame.loc[3, "carrier"])


def test_one_column_may_mix_every_written_form() -> None:
    """A list mixes 0-, 84-, 840- and bare numbers: each keeps its own national number."""
    raw = ["0912345678", "84912345678", "912345678", "840912345678", "+84 91 234 5678"]
    frame = normalise(pd.Series(raw, dtype=object), PLAN)
    assert frame["msisdn"].tolist() == ["84912345678"] * 5


# A plan built here, with prefixes that overlap at several widths (the configured plan barely
# has them): 9 is viettel's, 91 vinaphone's, 912 refused inside it; two old prefixes of
# different widths, 162 → 32 and 1299 → 599, and 1688 → 388 whose new prefix is in no range.
SMALL = NumberPlan(
    ranges={
        "9": ("viettel", 9),
        "91": ("vinaphone", 9),
        "912": ("", 9),
        "32": ("viettel", 9),
        "599": ("gmobile", 10),
    },
    conversions={"162": "32", "1299": "599", "1688": "388"},  # 388: in no range
)


def test_the_longest_prefix_decides_and_old_prefixes_convert_once() -> None:
    raw = ["0934567890", "0913456789", "0912345678", "01621234567", "012991234567"]
    frame = normalise(pd.Series(raw, dtype=object), SMALL)
    assert [None if pd.isna(m) else m for m in frame["msisdn"]] == [
        "84934567890",
        "84913456789",
        None,
        "84321234567",
        "845991234567",
    ]
    assert frame["carrier"].tolist() == ["viettel", "vinaphone", None, "viettel", "gmobile"]
    assert frame["reason"].tolist()[2] == "not_mobile"  # the refused range inside 91
    assert frame["converted"].tolist() == [False, False, False, True, True]


def test_an_old_prefix_with_digits_missing_is_too_short_and_alone_is_not_mobile() -> None:
    raw = ["016212345", "0162123456", "0162", "0129912345", "016881234567"]
    frame = normalise(pd.Series(raw, dtype=object), SMALL)
    assert frame["reason"].tolist() == [
        "too_short",
        "too_short",
        "not_mobile",
        "too_short",
        "not_mobile",  # whole, converted, but to a prefix no carrier holds: not missing digits
    ]
