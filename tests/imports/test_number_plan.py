"""config/number_ranges.csv checked against libphonenumber's Vietnamese metadata.

For every national prefix 01xx to 09xx down to four significant digits, Loa's normaliser (the
product's vectorised path) and libphonenumber agree on valid or not and on the carrier, or the
row of the ranges file that decides the prefix names what libphonenumber says and why Loa
differs (`libphonenumber` and `source` columns). A row claiming a difference that no longer
exists fails too, so the file follows libphonenumber's updates under review.
libphonenumber is the check, not the truth: it is used here, never per row in the product.
"""

from __future__ import annotations

import csv
from functools import cache

import pandas as pd
import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, carrier

from broadcast.settings import CONFIG_DIR
from subscriber_import.numbers import NumberPlan, normalise

RANGES = CONFIG_DIR / "number_ranges.csv"
PLAN = NumberPlan.from_files(RANGES, CONFIG_DIR / "number_conversions.csv")
# libphonenumber's English carrier names → Loa's carrier codes (config/carriers.toml).
CARRIER_CODES = {
    "Viettel": "viettel",
    "Vinaphone": "vinaphone",
    "MobiFone": "mobifone",
    "Vietnamobile": "vietnamobile",
    "G-Mobile": "gmobile",
    "Reddi": "reddi",
    "Indochina Telecom": "itelecom",
}
# Several subscriber numbers per prefix: a verdict must hold for the whole prefix.
TAILS = ("00000", "12345", "55555", "67890", "99999")
PREFIXES = [str(p) for p in range(1000, 10000)]  # four significant digits: 0100 to 0999 9


def _rows() -> list[dict[str, str]]:
    with RANGES.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@cache
def _deciding_rows() -> dict[str, dict[str, str]]:
    """prefix → the ranges-file row whose prefix is the longest one it starts with."""
    rows = sorted(_rows(), key=lambda r: len(r["prefix"]), reverse=True)
    found = {}
    for prefix in PREFIXES:
        row = next((r for r in rows if prefix.startswith(r["prefix"])), None)
        if row is not None:
            found[prefix] = row
    return found


def _libphonenumber(national: str) -> str:
    number = phonenumbers.parse("+84" + national)
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return "invalid"
    name = carrier.name_for_number(number, "en")
    if not name:
        return "no carrier"
    assert name in CARRIER_CODES, f"libphonenumber names a carrier Loa does not know: {name}"
    return CARRIER_CODES[name]


@cache
def _verdicts() -> dict[str, tuple[str, str]]:
    """prefix → (Loa's verdict, libphonenumber's), each the same for every tail."""
    nationals = [p + t for p in PREFIXES for t in TAILS]
    frame = normalise(pd.Series(["0" + n for n in nationals]), PLAN)
    loa = frame["carrier"].where(frame["msisdn"].notna(), "invalid").tolist()
    verdicts: dict[str, set[tuple[str, str]]] = {}
    for national, mine in zip(nationals, loa, strict=True):
        verdicts.setdefault(national[:4], set()).add((mine, _libphonenumber(national)))
    for prefix, seen in verdicts.items():
        assert len(seen) == 1, f"0{prefix}: verdicts differ inside the prefix: {seen}"
    return {prefix: next(iter(seen)) for prefix, seen in verdicts.items()}


def test_every_row_names_its_source() -> None:
    rows = _rows()
    misshapen = [r for r in rows if None in r or None in r.values()]  # a stray comma
    assert not misshapen, misshapen
    assert rows and all(r["source"].strip() for r in rows), [r for r in rows if not r["source"]]
    codes = {r["carrier"] for r in rows} - {""}
    assert codes <= set(CARRIER_CODES.values())


def test_loa_and_libphonenumber_agree_or_the_ranges_file_says_why() -> None:
    undocumented = []
    for prefix, (loa, theirs) in _verdicts().items():
        row = _deciding_rows().get(prefix)
        claimed = row["libphonenumber"] if row else ""
        if loa != theirs and claimed != theirs:
            undocumented.append(f"0{prefix}: Loa {loa}, libphonenumber {theirs}")
    assert not undocumented, "differences missing from number_ranges.csv:\n" + "\n".join(
        undocumented
    )


def test_every_listed_difference_still_exists() -> None:
    stale = []
    for prefix, (loa, theirs) in _verdicts().items():
        row = _deciding_rows().get(prefix)
        if row and row["libphonenumber"] and (loa == theirs or row["libphonenumber"] != theirs):
            stale.append(f"0{prefix} (row {row['prefix']}): libphonenumber now says {theirs}")
    assert not stale, "number_ranges.csv lists differences that are gone:\n" + "\n".join(stale)


@pytest.mark.parametrize(
    ("national", "expected"),
    [
        ("311234567", "viettel"),  # 031x: libphonenumber's Viettel range, accepted
        ("140123456", "mobifone"),
        ("871234567", "itelecom"),  # iTel's range on VinaPhone's network
        ("520123456", "vietnamobile"),  # accepted though libphonenumber says unallocated
        ("891234567", "mobifone"),
        ("951234567", None),  # S-Fone's former range: refused
        ("990123456", None),
    ],
)
def test_the_decided_differences(national: str, expected: str | None) -> None:
    frame = normalise(pd.Series(["0" + national]), PLAN)
    assert frame["carrier"].iloc[0] == expected
    if expected is None:
        assert frame["reason"].iloc[0] == "not_mobile"
