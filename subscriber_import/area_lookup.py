"""Map the area cells carriers write (a code, "Xã Can Lộc", "can loc", 18406.0) to area ids.

Only the distinct values of a column are looked at in Python (a province has hundreds of
areas, a file millions of rows); the rows are mapped with one vectorised lookup.

Carriers keep exporting pre-2025 labels. A cell is looked up, in this order, as the code of a
current area, an old code, the full name of a current area, an old full name, then the bare
name (level word dropped) of a current area and of an old unit. An old commune gives its new
commune (`mapped`); an old district or a unit split between several communes gives the
province (`old_district`, `split_area`: warnings); anything else is `unknown_area`. Retired
areas are never returned: their old codes go through the mapping like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.areas import OldLabel
from broadcast.models import Area
from subscriber_import.columns import fold

LEVEL_WORDS = (
    "tinh", "thanh_pho", "tp", "thi_xa", "tx", "huyen", "quan", "thi_tran", "tt",
    "xa", "phuong", "p", "dac_khu",
)  # fmt: skip
DISTRICT_WORDS = ("thanh_pho", "tp", "thi_xa", "tx", "huyen", "quan")
_LEVEL_PREFIX = re.compile(r"^(?:" + "|".join(LEVEL_WORDS) + r")_")
_DISTRICT_PREFIX = re.compile(r"^(?:" + "|".join(DISTRICT_WORDS) + r")_")
COMMUNE_LEVELS = ("commune", "ward", "special_zone", "town", "xa", "phuong")
COMMUNE_COLUMNS = ("ma_xa", "xa", "phuong_xa", "xa_phuong", "commune", "commune_code", "ward")
DISTRICT_COLUMNS = ("ma_huyen", "huyen", "quan_huyen", "district", "district_code")


class Match(str, Enum):
    """How a cell was placed; all but CURRENT are counted in the import report."""

    CURRENT = "current"
    MAPPED = "mapped"  # an old commune, placed in its new commune
    OLD_DISTRICT = "old_district"  # an abolished district: province level
    SPLIT_AREA = "split_area"  # an old unit split between communes: province level
    UNKNOWN_AREA = "unknown_area"  # no area at all


@dataclass(frozen=True)
class AreaInfo:
    id: int
    code: str
    name: str
    level: str
    path: str
    retired: bool = False


class AreaLookup:
    """The current areas indexed by code, folded name and bare name, plus the old labels."""

    def __init__(
        self,
        areas: list[AreaInfo],
        old_labels: list[OldLabel] | None = None,
        province_code: str | None = None,
    ) -> None:
        self.areas = {a.id: a for a in areas}  # retired ones too: reports name them
        self.any_by_code = {a.code: a for a in areas}
        current = [a for a in areas if not a.retired]
        self.by_code = {a.code: a for a in current}
        self.by_name: dict[str, list[AreaInfo]] = {}
        self.by_bare_name: dict[str, list[AreaInfo]] = {}
        for area in current:
            self.by_name.setdefault(fold(area.name), []).append(area)
            self.by_bare_name.setdefault(_bare(fold(area.name)), []).append(area)
        province = self.by_code.get(province_code or "")
        self.province_id = province.id if province else -1
        self.old_by_code: dict[str, OldLabel] = {}
        self.old_by_name: dict[str, list[OldLabel]] = {}
        self.old_by_bare_name: dict[str, list[OldLabel]] = {}
        for label in old_labels or []:
            self.old_by_code[label.code] = label
            self.old_by_name.setdefault(fold(label.name), []).append(label)
            self.old_by_bare_name.setdefault(_bare(fold(label.name)), []).append(label)

    @classmethod
    def load(
        cls,
        session: Session,
        old_labels: list[OldLabel] | None = None,
        province_code: str | None = None,
    ) -> AreaLookup:
        rows = session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.path, Area.retired_at)
        )
        infos = [AreaInfo(i, c, n, lv, p, r is not None) for i, c, n, lv, p, r in rows]
        return cls(infos, old_labels, province_code)

    def place(self, value: object, column: str = "") -> tuple[int, Match]:
        """(area id or -1, how it was found) for one cell."""
        text = _cell(value)
        if text in self.by_code:
            return self.by_code[text].id, Match.CURRENT
        if text in self.old_by_code:
            return self._old([self.old_by_code[text]])
        key = fold(text)
        hint = fold(column)
        if key in self.by_name:
            return self._current(self.by_name[key], hint), Match.CURRENT
        if key in self.old_by_name:
            return self._old(self.old_by_name[key])
        bare = _bare(key)
        # "Huyện Can Lộc" or a district column: the old district, not today's Xã Can Lộc.
        district_first = bool(_DISTRICT_PREFIX.match(key)) or hint in DISTRICT_COLUMNS
        olds = self.old_by_bare_name.get(bare, [])
        if district_first:
            districts = [o for o in olds if o.level == "district"]
            if districts:
                return self._old(districts)
        if bare in self.by_bare_name:
            return self._current(self.by_bare_name[bare], hint), Match.CURRENT
        if olds:
            return self._old(olds)
        return -1, Match.UNKNOWN_AREA

    def _current(self, candidates: list[AreaInfo], hint: str) -> int:
        if len(candidates) > 1 and hint in COMMUNE_COLUMNS:
            candidates = [a for a in candidates if a.level in COMMUNE_LEVELS] or candidates
        elif len(candidates) > 1 and hint in DISTRICT_COLUMNS:
            candidates = [a for a in candidates if a.level not in COMMUNE_LEVELS] or candidates
        # Same name at two levels: the coarser one, as carriers report by the larger unit.
        return min(candidates, key=lambda a: (a.path.count("/"), a.id)).id

    def _old(self, labels: list[OldLabel]) -> tuple[int, Match]:
        targets = {code for label in labels for code in label.new_codes}
        if any(label.level == "district" for label in labels):
            return self.province_id, Match.OLD_DISTRICT
        if len(targets) == 1:
            area = self.by_code.get(next(iter(targets)))
            if area is not None:
                return area.id, Match.MAPPED
            return -1, Match.UNKNOWN_AREA
        return self.province_id, Match.SPLIT_AREA

    def resolve(self, frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(area id or -1, Match value or "" when blank) per row; the first filled column wins."""
        ids = np.full(len(frame), -1, dtype=np.int64)
        matches = np.full(len(frame), "", dtype=object)
        pending = np.ones(len(frame), dtype=bool)
        for column in columns:
            codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
            placed = [self.place(v, column) if _cell(v) else (-1, "") for v in uniques]
            found_ids = np.array([p[0] for p in placed] + [-1], dtype=np.int64)
            found = np.array([getattr(p[1], "value", "") for p in placed] + [""], dtype=object)
            row_match = found[codes]  # the sentinel -1 indexes the trailing "blank"
            filled = pending & (row_match != "")
            ids = np.where(filled, found_ids[codes], ids)
            matches = np.where(filled, row_match, matches)
            pending &= ~filled
        return ids, matches


def _bare(folded: str) -> str:
    return _LEVEL_PREFIX.sub("", folded)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text[:-2] if re.fullmatch(r"\d+\.0", text) else text
