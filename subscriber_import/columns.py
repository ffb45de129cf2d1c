"""The documented mapping from the column names carriers use to the roles Loa reads.

Headers are compared after folding: lower case, Vietnamese diacritics removed (đ → d), and
every run of other characters turned into one underscore; "Số thuê bao" becomes so_thue_bao.
docs/import.md shows this table; keep the two in step.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from subscriber_import.errors import UnknownLayout

# role → accepted folded names, per kind of file. For area roles the order is the priority
# when a file has several (the finest level wins where it is filled in).
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "msisdn": (
        "msisdn",
        "isdn",
        "so_thue_bao",
        "sothuebao",
        "so_tb",
        "stb",
        "thue_bao",
        "so_dien_thoai",
        "sodienthoai",
        "so_dt",
        "sdt",
        "dien_thoai",
        "dtdd",
        "so_di_dong",
        "phone",
        "phone_number",
        "mobile",
        "mobile_number",
        "number",
        "subscriber",
    ),
    "area": (
        "ma_xa",
        "xa",
        "phuong_xa",
        "xa_phuong",
        "commune",
        "commune_code",
        "ward",
        "area_code",
        "area",
        "ma_khu_vuc",
        "khu_vuc",
        "ma_dia_ban",
        "dia_ban",
        "ma_huyen",
        "huyen",
        "quan_huyen",
        "district",
        "district_code",
    ),
}
COUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "area": LIST_COLUMNS["area"],
    "count": (
        "count",
        "so_luong",
        "so_luong_thue_bao",
        "sl",
        "so_thue_bao",
        "tong_so_thue_bao",
        "tong",
        "tong_so",
        "total",
        "subscribers",
        "subscriber_count",
    ),
    "as_of": ("as_of", "as_of_date", "date", "ngay", "ngay_bao_cao", "thoi_diem", "den_ngay"),
}
REQUIRED = {"list": ("msisdn",), "counts": ("area", "count")}
TABLES = {"list": LIST_COLUMNS, "counts": COUNT_COLUMNS}


def fold(name: object) -> str:
    """'Số thuê bao' → 'so_thue_bao'; 'Mã Huyện ' → 'ma_huyen'."""
    text = str(name).replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def map_columns(columns: Sequence[object], kind: str) -> dict[str, list[str]]:
    """role → the file's column names for it (area roles in priority order).

    Raises UnknownLayout naming the columns found and the names expected.
    """
    table = TABLES[kind]
    folded = {fold(c): str(c) for c in columns}
    found: dict[str, list[str]] = {}
    for role, names in table.items():
        hits = [folded[n] for n in names if n in folded]
        if hits:
            found[role] = hits if role == "area" else hits[:1]
    missing = [role for role in REQUIRED[kind] if role not in found]
    if missing:
        expected = {role: list(table[role]) for role in missing}
        shown = ", ".join(repr(str(c)) for c in columns) or "(none)"
        raise UnknownLayout(
            f"no {' or '.join(missing)} column among the columns found: {shown}; "
            f"expected one of: "
            + "; ".join(f"{role}: {', '.join(names[:8])}, …" for role, names in expected.items()),
            {"found": [str(c) for c in columns], "expected": expected},
        )
    return found
