"""Map the area cells carriers write (a code, "Huyện Can Lộc", "can loc", 436.0) to area ids.

Only the distinct values of a column are looked at in Python (a province has hundreds of
areas, a file millions of rows); the rows are mapped with one vectorised lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.models import Area
from subscriber_import.columns import fold

LEVEL_WORDS = (
    "tinh", "thanh_pho", "tp", "thi_xa", "tx", "huyen", "quan", "thi_tran", "tt",
    "xa", "phuong", "p",
)  # fmt: skip
_LEVEL_PREFIX = re.compile(r"^(?:" + "|".join(LEVEL_WORDS) + r")_")
COMMUNE_LEVELS = ("commune", "ward", "xa", "phuong")
COMMUNE_COLUMNS = ("ma_xa", "xa", "phuong_xa", "xa_phuong", "commune", "commune_code", "ward")
DISTRICT_COLUMNS = ("ma_huyen", "huyen", "quan_huyen", "district", "district_code")


@dataclass(frozen=True)
class AreaInfo:
    id: int
    code: str
    name: str
    level: str
    path: str


class AreaLookup:
    """The areas of the database, indexed by code, folded name and bare name."""

    def __init__(self, areas: list[AreaInfo]) -> None:
        self.areas = {a.id: a for a in areas}
        self.by_code = {a.code: a for a in areas}
        self.by_name: dict[str, list[AreaInfo]] = {}
        for area in areas:
            for key in {fold(area.name), _LEVEL_PREFIX.sub("", fold(area.name))}:
                self.by_name.setdefault(key, []).append(area)

    @classmethod
    def load(cls, session: Session) -> AreaLookup:
        rows = session.execute(select(Area.id, Area.code, Area.name, Area.level, Area.path))
        return cls([AreaInfo(*row) for row in rows])

    def find(self, value: object, column: str = "") -> AreaInfo | None:
        text = _cell(value)
        if not text:
            return None
        if text in self.by_code:
            return self.by_code[text]
        key = fold(text)
        candidates = self.by_name.get(key) or self.by_name.get(_LEVEL_PREFIX.sub("", key)) or []
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        hint = fold(column)
        if hint in COMMUNE_COLUMNS:
            finer = [a for a in candidates if a.level in COMMUNE_LEVELS]
            candidates = finer or candidates
        elif hint in DISTRICT_COLUMNS:
            coarser = [a for a in candidates if a.level not in COMMUNE_LEVELS]
            candidates = coarser or candidates
        # Same name at two levels ("Nghi Xuân"): the coarser one, as carriers report by district.
        return min(candidates, key=lambda a: (a.path.count("/"), a.id))

    def resolve(self, frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(area id or -1 when blank, unknown mask) per row; the first filled column wins."""
        ids = np.full(len(frame), -1, dtype=np.int64)
        unknown = np.zeros(len(frame), dtype=bool)
        pending = np.ones(len(frame), dtype=bool)
        for column in columns:
            cells = frame[column]
            codes, uniques = pd.factorize(cells, use_na_sentinel=True)
            found = np.array(
                [(a.id if (a := self.find(v, column)) else -2) if _cell(v) else -1 for v in uniques]
                + [-1],
                dtype=np.int64,
            )
            mapped = found[codes]  # the sentinel -1 indexes the trailing "blank"
            filled = pending & (mapped != -1)
            ids = np.where(filled & (mapped >= 0), mapped, ids)
            unknown = np.where(filled, mapped == -2, unknown)
            pending &= ~filled
        return ids, unknown


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text[:-2] if re.fullmatch(r"\d+\.0", text) else text
