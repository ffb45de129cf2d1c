"""Files in every accepted format and encoding are read alike; damaged files are refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from subscriber_import.columns import fold, map_columns
from subscriber_import.errors import (
    EmptyFile,
    FileTooLarge,
    MalformedFile,
    SheetNotFound,
    UnknownLayout,
    WrongFileType,
)
from subscriber_import.readers import open_table
from tests.imports.files import write_csv, write_xlsx

ROWS = [
    ["Số thuê bao", "Huyện"],
    ["0912345678", "Huyện Can Lộc"],
    ["+84 98 123 4567", "Thành phố Hà Tĩnh"],
    ["01621234567", "Thị xã Hồng Lĩnh"],
]


def _read_all(path: Path, **kwargs: object) -> pd.DataFrame:
    table = open_table(path, chunk_rows=1000, **kwargs)  # type: ignore[arg-type]
    return pd.concat(list(table.chunks))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1258"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("quote_all", [False, True])
def test_csv_in_every_encoding_and_delimiter(
    tmp_path: Path, encoding: str, delimiter: str, quote_all: bool
) -> None:
    path = write_csv(
        tmp_path / "list.csv", ROWS, encoding=encoding, delimiter=delimiter, quote_all=quote_all
    )
    table = open_table(path, chunk_rows=1000)
    frame = pd.concat(list(table.chunks))
    assert table.columns == ["Số thuê bao", "Huyện"]
    assert table.delimiter == delimiter
    assert frame["Huyện"].tolist() == ["Huyện Can Lộc", "Thành phố Hà Tĩnh", "Thị xã Hồng Lĩnh"]
    assert frame["Số thuê bao"].tolist() == ["0912345678", "+84 98 123 4567", "01621234567"]
    assert frame.index.tolist() == [2, 3, 4]  # file line numbers


def test_windows_1258_is_detected_when_not_utf8(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", ROWS, encoding="cp1258")
    assert open_table(path).encoding == "cp1258"


def test_xlsx_first_sheet_and_named_sheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "list.xlsx",
        {
            "Ghi chú": [["note"], ["nothing here"]],
            "Danh sách": [["msisdn"], [912345678], ["0981234567"]],
        },
    )
    frame = _read_all(path, sheet="Danh sách")
    assert frame["msisdn"].tolist() == [912345678, "0981234567"]
    assert _read_all(path).columns.tolist() == ["note"]


def test_missing_sheet_names_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", {"A": [["msisdn"], ["0912345678"]]})
    with pytest.raises(SheetNotFound, match=r"no sheet 'B'; sheets: 'A'"):
        open_table(path, sheet="B")


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("list.csv", b"", EmptyFile, "is empty"),
        ("list.csv", b"\r\n\r\n", EmptyFile, "no header"),
        (
            "list.xlsx",
            b"msisdn\n0912345678\n",
            WrongFileType,
            r"named \.xlsx but its content is text",
        ),
        ("list.csv", bytes(range(256)) * 40, WrongFileType, "binary content"),
        ("list.pdf", b"%PDF-1.4", WrongFileType, "extension '.pdf' is not accepted"),
    ],
)
def test_damaged_files_are_refused(
    tmp_path: Path, name: str, content: bytes, error: type[Exception], message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        open_table(path)


def test_workbook_named_csv_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", {"A": [["msisdn"]]})
    renamed = path.rename(tmp_path / "list.csv")
    with pytest.raises(WrongFileType, match="is a spreadsheet workbook"):
        open_table(renamed)


def test_broken_zip_named_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(WrongFileType, match="not a readable workbook"):
        open_table(path)


def test_size_limit_names_size_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"msisdn\n" + b"0912345678\n" * 200_000)
    with pytest.raises(FileTooLarge, match=r"is 2\.1 MB; the limit is 1 MB"):
        open_table(path, max_bytes=1024 * 1024)


def test_row_with_too_many_fields_fails_part_way(tmp_path: Path) -> None:
    rows: list[list[object]] = [["msisdn", "area"]] + [["0912345678", "18073"]] * 1500
    rows.append(["0912345678", "18073", "extra", "fields"])
    table = open_table(write_csv(tmp_path / "list.csv", rows), chunk_rows=1000)
    first = next(table.chunks)
    assert len(first) == 1000
    with pytest.raises(MalformedFile, match="broken part-way"):
        list(table.chunks)


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("Số thuê bao", "msisdn"),
        ("so_thue_bao", "msisdn"),
        ("MSISDN", "msisdn"),
        ("Phone", "msisdn"),
        ("Số điện thoại", "msisdn"),
        ("SĐT", "msisdn"),
    ],
)
def test_number_column_names(header: str, role: str) -> None:
    assert map_columns([header, "Huyện"], "list")[role] == [header]


def test_area_columns_finest_first() -> None:
    found = map_columns(["msisdn", "District", "Xã"], "list")
    assert found["area"] == ["Xã", "District"]


def test_unknown_layout_lists_found_and_expected() -> None:
    with pytest.raises(UnknownLayout, match=r"columns found: 'name', 'address'") as info:
        map_columns(["name", "address"], "list")
    assert info.value.details["found"] == ["name", "address"]
    assert "msisdn" in info.value.details["expected"]["msisdn"]


def test_fold() -> None:
    assert fold("  Mã Huyện ") == "ma_huyen"
    assert fold("Đơn vị / Số lượng") == "don_vi_so_luong"
