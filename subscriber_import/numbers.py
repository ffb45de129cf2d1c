"""Pure, vectorised normalisation of Vietnamese mobile numbers to E.164 digits (`84…`).

No I/O and no per-row Python: every step is a pandas string operation over the whole column,
so a million numbers take well under a second. The number plan (ranges per carrier and the
2018 conversion of 11-digit numbers) is data, loaded from the files named in Settings.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

COUNTRY_CODE = "84"
# None as np.where sees it (a 0-d object array): the "no value" of object columns.
NONE = np.array(None, dtype=object)
STRING = pd.StringDtype("pyarrow")


class Reason(str, Enum):
    """Why a row was refused. The values are written in reports and the rejects CSV."""

    EMPTY = "empty"  # no number in the cell
    INVALID = "invalid"  # characters other than digits and separators
    NOT_MOBILE = "not_mobile"  # not a Vietnamese mobile range (or a foreign country code)
    LANDLINE = "landline"  # a fixed-line number (national number starting with 2)
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    UNKNOWN_AREA = "unknown_area"  # the area cell names no known area (counts files)
    OLD_AREA = "old_area"  # counts files: an abolished district or a unit split since 2025
    INVALID_COUNT = "invalid_count"  # counts files: not a whole number >= 0
    INVALID_DATE = "invalid_date"  # counts files: as_of is not a date


@dataclass(frozen=True)
class NumberPlan:
    """Mobile ranges (national prefix → carrier, national length) and old → new prefixes.

    A range with an empty carrier is refused on purpose (`not_mobile`), even inside a longer
    accepted prefix: the ranges file lists each difference with libphonenumber and its source.
    The range's carrier only says which carrier a prefix was allocated to (the import report's
    `possible_ported`); a number is sent through the carrier whose list holds it.
    """

    ranges: dict[str, tuple[str, int]]
    conversions: dict[str, str]

    @classmethod
    def from_files(cls, ranges_file: Path, conversions_file: Path) -> NumberPlan:
        with ranges_file.open(encoding="utf-8-sig", newline="") as fh:
            ranges = {
                r["prefix"].strip(): (r["carrier"].strip(), int(r["length"]))
                for r in csv.DictReader(fh)
            }
        with conversions_file.open(encoding="utf-8-sig", newline="") as fh:
            conversions = {
                r["old_prefix"].strip(): r["new_prefix"].strip() for r in csv.DictReader(fh)
            }
        return cls(ranges=ranges, conversions=conversions)

    @property
    def prefix_lengths(self) -> list[int]:
        return sorted({len(p) for p in self.ranges}, reverse=True)

    @property
    def old_prefix_lengths(self) -> list[int]:
        return sorted({len(p) for p in self.conversions}, reverse=True)


_SEPARATORS = r"[\s\x{00a0}.\-()/'\"]"


def _to_arrow(values: pd.Series) -> pa.Array:
    """Any column (text, Excel floats and ints, empty cells) as one arrow string array."""
    if values.dtype == object:
        # Spreadsheet cells: floats print as "912345678.0" and big ones as "9.1234e+10",
        # both handled below. Missing cells stay missing.
        values = values.map(lambda v: v if v is None or isinstance(v, str) else str(v))
        values = values.where(values != "nan", None)
    arr = pa.array(values.astype(STRING).array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string()) if arr.type != pa.string() else arr


def _np(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _where_not_digits(s: pa.Array, fix: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply `fix` only to the cells that are not all ASCII digits (same result, less work)."""
    other = pc.invert(pc.ascii_is_decimal(s))
    if not pc.any(other).as_py():
        return s
    return pc.replace_with_mask(s, other, fix(pc.filter(s, other)))


def _lookup(keys: pa.Array, table: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised dict lookup via arrow's hash index_in: (hit mask, position in table)."""
    idx = pc.index_in(keys, value_set=pa.array(list(table), type=pa.string()))
    hit = _np(pc.is_valid(idx))
    pos = pc.fill_null(idx, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return hit, pos


def normalise(values: pd.Series, plan: NumberPlan) -> pd.DataFrame:
    """Map raw cells to E.164 digits.

    Returns a frame on the same index with: `msisdn` (E.164 digits, missing when rejected),
    `carrier` (the range's carrier, missing when rejected), `converted` (an 11-digit number
    moved to its 10-digit form) and `reason` (a Reason value, missing when accepted).
    """
    n = len(values)
    s = pc.utf8_trim_whitespace(_to_arrow(values))
    empty = _np(pc.or_kleene(pc.is_null(s), pc.equal(s, "")))
    s = pc.fill_null(s, "")

    # Most cells are plain digits: the regex kernels below run only on the others.
    s = _where_not_digits(s, lambda t: pc.replace_substring_regex(t, r"^(\d+)\.0+$", r"\1"))
    # Excel float damage: "912345678.0" (above) and "9.12345678E+8".
    sci = _np(pc.match_substring_regex(s, r"^\d(?:[.,]\d+)?[eE]\+?\d{1,2}$"))
    if sci.any():
        text = pd.Series(s.to_numpy(zero_copy_only=False)[sci], dtype=object)
        floats = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        floats = floats.where(floats < 1e15)  # longer than any phone number: too_long below
        fixed = floats.round().astype("Int64").astype(str).to_numpy(dtype=object)
        fixed = np.where(floats.isna().to_numpy(), "9" * 16, fixed)
        whole = s.to_numpy(zero_copy_only=False).astype(object)
        whole[sci] = fixed
        s = pa.array(whole, type=pa.string())

    s = _where_not_digits(s, lambda t: pc.replace_substring_regex(t, _SEPARATORS, ""))
    plus = _np(pc.starts_with(s, "+"))
    s = _where_not_digits(s, lambda t: pc.replace_substring_regex(t, r"^\+", ""))
    digits = _np(pc.ascii_is_decimal(s))
    double_zero = _np(pc.starts_with(s, "00"))
    s = pc.if_else(pa.array(double_zero), pc.utf8_slice_codeunits(s, 2), s)
    international = plus | double_zero
    length = pc.utf8_length(s).to_numpy(zero_copy_only=False).astype(np.int64)
    starts84 = _np(pc.starts_with(s, COUNTRY_CODE))
    starts840 = _np(pc.starts_with(s, "840"))
    starts0 = _np(pc.starts_with(s, "0"))
    foreign = international & ~starts84

    # The national number: strip 84 (written with + or 00, or 11/12 digits long: a national
    # number never starts with 84 at that length), "840" (84 then a trunk zero), or the 0.
    # No national number is 11 or 12 digits long, nor starts with 0, so these never collide.
    cut = np.select(
        [
            # 84, then the trunk 0, then a 9-digit number or an old 11-digit one (10 digits).
            starts840 & ((length == 12) | (length == 13)),
            starts84 & (international | (length == 11) | (length == 12)),
            starts0,
        ],
        [3, 2, 1],
        default=0,
    )
    national = s
    for start in (1, 2, 3):
        where = cut == start
        if where.any():
            national = pc.if_else(pa.array(where), pc.utf8_slice_codeunits(s, start), national)
    nlen = length - cut

    converted = np.zeros(n, dtype=bool)
    old_short = np.zeros(n, dtype=bool)  # an old prefix with digits missing: too_short
    for width in plan.old_prefix_lengths:
        hit, pos = _lookup(pc.utf8_slice_codeunits(national, 0, width), plan.conversions)
        old_short |= hit & (nlen > width) & (nlen < width + 7)
        hit &= (nlen == width + 7) & ~converted
        if hit.any():
            new = np.array(list(plan.conversions.values()) or [""], dtype=object)[pos]
            rest = pc.utf8_slice_codeunits(national, width)
            joined = pc.binary_join_element_wise(pa.array(new, type=pa.string()), rest, "")
            national = pc.if_else(pa.array(hit), joined, national)
            nlen = np.where(hit, 7 + np.char.str_len(new.astype(str)), nlen)
            converted |= hit

    carrier = np.full(n, None, dtype=object)
    expected = np.full(n, 9, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    by_width: dict[int, dict[str, tuple[str, int]]] = {}
    for prefix, value in plan.ranges.items():
        by_width.setdefault(len(prefix), {})[prefix] = value
    for width in plan.prefix_lengths:
        table = by_width[width]
        hit, who = _lookup(pc.utf8_slice_codeunits(national, 0, width), table)
        hit &= ~found
        if hit.any():
            codes = np.array([c for c, _ in table.values()], dtype=object)
            sizes = np.array([size for _, size in table.values()], dtype=np.int64)
            carrier = np.where(hit, codes[who], carrier)
            expected = np.where(hit, sizes[who], expected)
            found |= hit

    landline = _np(pc.starts_with(national, "2"))
    refused_range = found & (carrier == "")
    reason = np.select(
        [
            empty,
            ~digits,
            foreign,
            landline,
            refused_range,
            found & (nlen == expected),
            # Too short only when written as a phone number (0, 84) and naming a range; a bare
            # "12345" is a short code or a stray value, not a mobile number missing digits.
            (cut > 0) & ((found & (nlen < expected)) | old_short),
            nlen > np.where(found, expected, 10),
        ],
        [
            Reason.EMPTY.value,
            Reason.INVALID.value,
            Reason.NOT_MOBILE.value,
            Reason.LANDLINE.value,
            Reason.NOT_MOBILE.value,
            "",
            Reason.TOO_SHORT.value,
            Reason.TOO_LONG.value,
        ],
        default=Reason.NOT_MOBILE.value,
    )
    ok = reason == ""
    msisdn = pc.binary_join_element_wise(COUNTRY_CODE, national, "")
    msisdn = pc.if_else(pa.array(ok), msisdn, pa.scalar(None, pa.string()))
    index = values.index
    return pd.DataFrame(
        {
            "msisdn": pd.Series(pd.arrays.ArrowExtensionArray(msisdn), index=index).astype(STRING),
            "carrier": pd.Series(np.where(ok, carrier, NONE), index=index, dtype=object),
            "converted": converted & ok,
            "reason": pd.Series(np.where(ok, NONE, reason), index=index, dtype=object),
        },
        index=index,
    )


def normalise_one(value: object, plan: NumberPlan) -> str | None:
    """One number (for forms and the CLI); None when it is not an accepted mobile number."""
    frame = normalise(pd.Series([value], dtype=object), plan)
    result = frame["msisdn"].iloc[0]
    return None if pd.isna(result) else str(result)
