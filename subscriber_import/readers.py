"""Read carrier files in chunks: CSV in any of the encodings and delimiters carriers use, and
workbooks (XLSX and friends) through python-calamine (Rust), never cell by cell in Python.

Every value comes out as text or the spreadsheet's own type; interpretation is left to the
normalisers. The content is checked against the extension before anything is parsed.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import unicodedata
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from python_calamine import CalamineError, CalamineWorkbook

from subscriber_import.errors import (
    EmptyFile,
    FileTooLarge,
    MalformedFile,
    SheetNotFound,
    TooManyCells,
    UnsafeFile,
    WrongFileType,
)

CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SAMPLE_BYTES = 64 * 1024
# Parts of a workbook unpacking at more than this ratio are refused (zip bombs). Real sheets of
# numbers compress about 5-15:1; runs of identical bytes reach 1000:1.
MAX_ZIP_RATIO = 100


@dataclass
class Table:
    """A file opened for reading: its header and an iterator of DataFrame chunks.

    Each chunk's index is the row's line in the file (the header is line 1; in CSV, blank
    lines are skipped and not counted; in a sheet, the row number Excel shows).
    """

    columns: list[str]
    chunks: Generator[pd.DataFrame]
    total_rows: int | None
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


def open_table(
    path: Path,
    *,
    filename: str | None = None,
    sheet: str | None = None,
    chunk_rows: int = 250_000,
    max_bytes: int | None = None,
    max_cells: int | None = None,
    max_unzipped_bytes: int | None = None,
) -> Table:
    """Check size and type, then open; raises an ImportRejected subclass naming the problem.

    A workbook is first checked for what would make reading it cost far more than its size
    (check_workbook): a zip bomb, XML entities, cells spread over more than `max_cells`."""
    name = filename or path.name
    size = path.stat().st_size
    if size == 0:
        raise EmptyFile(f"{name} is empty (0 bytes)", {"file": name})
    if max_bytes is not None and size > max_bytes:
        raise FileTooLarge(
            f"{name} is {size / 1048576:.1f} MB; the limit is {max_bytes / 1048576:.0f} MB",
            {"file": name, "bytes": size, "limit_bytes": max_bytes},
        )
    ext = Path(name).suffix.lower()
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    is_workbook = head.startswith(ZIP_MAGIC) or head.startswith(OLE_MAGIC)
    if ext in WORKBOOK_EXTENSIONS:
        if not is_workbook:
            kind = "text (CSV?)" if _looks_like_text(head) else "not a workbook"
            raise WrongFileType(
                f"{name} is named {ext} but its content is {kind}; "
                "save it as a real workbook or name it .csv",
                {"file": name, "extension": ext},
            )
        if head.startswith(ZIP_MAGIC):
            check_workbook(path, name, max_cells=max_cells, max_unzipped_bytes=max_unzipped_bytes)
        return _open_workbook(path, name, sheet, chunk_rows)
    if ext in CSV_EXTENSIONS or ext == "":
        if is_workbook:
            raise WrongFileType(
                f"{name} is named {ext or 'without extension'} but is a spreadsheet workbook; "
                "name it .xlsx (or export it as CSV)",
                {"file": name, "extension": ext},
            )
        if sheet:
            raise WrongFileType(
                f"--sheet {sheet!r} was given but {name} is a CSV file, which has no sheets",
                {"sheet": sheet},
            )
        return _open_csv(path, name, head, chunk_rows)
    raise WrongFileType(
        f"{name}: extension {ext!r} is not accepted; use one of "
        f"{', '.join(CSV_EXTENSIONS + WORKBOOK_EXTENSIONS)}",
        {"file": name, "extension": ext},
    )


# --- CSV -----------------------------------------------------------------------------------


def _looks_like_text(sample: bytes) -> bool:
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_order(sample):
        return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls <= max(1, len(sample) // 1000)


def _utf16_order(sample: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII text then has a NUL in every other byte."""
    pairs = sample[: len(sample) // 2 * 2]
    if len(pairs) < 4:
        return None
    even = pairs[0::2].count(0)
    odd = pairs[1::2].count(0)
    half = len(pairs) // 2
    if odd > half * 0.4 and even < half * 0.05:
        return "utf-16-le"
    if even > half * 0.4 and odd < half * 0.05:
        return "utf-16-be"
    return None


def detect_encoding(path: Path, head: bytes) -> str:
    """BOM first; then UTF-16 by its NULs; then UTF-8 if the whole file decodes; else
    Windows-1258 (Vietnamese Windows), which decodes what older Excel exports write."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    order = _utf16_order(head)
    if order:
        return order
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1258"
    return "utf-8"


def _detect_delimiter(first_line: str) -> str:
    counts = {d: _count_outside_quotes(first_line, d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            count += 1
    return count


def _open_csv(path: Path, name: str, head: bytes, chunk_rows: int) -> Table:
    if not _looks_like_text(head):
        raise WrongFileType(
            f"{name} does not look like a text (CSV) file: it has binary content",
            {"file": name},
        )
    encoding = detect_encoding(path, head)
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise EmptyFile(f"{name} has no header and no rows", {"file": name})
    delimiter = _detect_delimiter(lines[0])
    common: dict[str, Any] = {
        "sep": delimiter,
        "encoding": encoding,
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "skipinitialspace": True,
        "skip_blank_lines": True,
        "engine": "c",
        "quotechar": '"',
    }
    try:
        header = pd.read_csv(path, nrows=0, **common)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MalformedFile(f"{name}: cannot read the header: {_first_line(exc)}") from None
    columns = [unicodedata.normalize("NFC", str(c)).strip() for c in header.columns]

    def chunks() -> Generator[pd.DataFrame]:
        try:
            with pd.read_csv(path, chunksize=chunk_rows, **common) as reader:
                yield from _chunks_of(reader, columns, encoding)
        except pd.errors.ParserError as exc:
            raise MalformedFile(
                f"{name}: the file is broken part-way: {_first_line(exc)}; nothing was imported",
                {"file": name},
            ) from None
        except UnicodeDecodeError as exc:
            raise MalformedFile(f"{name}: undecodable bytes ({encoding}): {exc}") from None

    return Table(
        columns=columns,
        chunks=chunks(),
        total_rows=None,
        format="csv",
        encoding=encoding,
        delimiter=delimiter,
    )


def _chunks_of(reader: Any, columns: list[str], encoding: str) -> Iterator[pd.DataFrame]:
    for chunk in reader:
        chunk.columns = columns
        chunk.index = chunk.index + 2  # file line numbers; the header is line 1
        if encoding == "cp1258":
            # Windows-1258 writes tone marks as combining characters: compose them.
            for column in columns:
                chunk[column] = chunk[column].str.normalize("NFC")
        yield chunk


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- workbooks -----------------------------------------------------------------------------

# Cell references: the form every writer uses (`r` first) is matched fast; a block with cells
# it misses (attributes in another order) is scanned again with the general pattern.
_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_ANY_CELL_REF = re.compile(rb'<c\b[^>]*?\sr="([A-Z]{1,3})([0-9]{1,7})"')
_DIMENSION = re.compile(rb'<dimension\b[^>]*?\bref="([^"]*)"')
_SCAN_BLOCK = 1 << 20


def check_workbook(
    path: Path, name: str, *, max_cells: int | None, max_unzipped_bytes: int | None
) -> None:
    """Refuse a zip workbook whose reading would cost far more than the file: parts that unpack
    past `max_unzipped_bytes` or at more than MAX_ZIP_RATIO:1 (sizes are counted while
    unpacking, not taken from the headers), a DOCTYPE or ENTITY declaration (OOXML and ODF
    never need one), or an XLSX sheet whose cells span more than `max_cells`.

    python-calamine builds a sheet as a dense rectangle from its first to its last cell, so
    two cells at A1 and XFD1048576 cost 17 billion cells. The sheet's `<dimension>` element is
    not trusted (it may be missing or lie, and calamine does not use it): the extent is
    measured from the cell references themselves, at unzip speed."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WrongFileType(f"{name} is not a readable workbook: {_first_line(exc)}") from None
    limit = max_unzipped_bytes
    with archive:
        members = archive.infolist()
        declared = sum(m.file_size for m in members)
        if limit is not None and declared > limit:
            raise _unzips_too_large(name, declared, limit)
        total = 0
        for member in members:
            if member.is_dir():
                continue
            # Every XML part is measured, not only xl/worksheets/: the workbook's relations
            # may put a sheet anywhere, and other parts have no `<c r=` to find.
            is_sheet = member.filename.endswith(".xml")
            size = 0
            extent = _Extent()
            try:
                with archive.open(member) as part:
                    tail = b""
                    while block := part.read(_SCAN_BLOCK):
                        size += len(block)
                        total += len(block)
                        if limit is not None and total > limit:
                            raise _unzips_too_large(name, total, limit)
                        if size > (1 << 20) and size > MAX_ZIP_RATIO * max(member.compress_size, 1):
                            raise UnsafeFile(
                                f"{name}: part {member.filename} unpacks at more than "
                                f"{MAX_ZIP_RATIO}:1 (a zip bomb?); the file was not read",
                                {"file": name, "part": member.filename},
                            )
                        data = tail + block
                        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
                            raise UnsafeFile(
                                f"{name}: part {member.filename} declares XML entities "
                                "(a DOCTYPE), which workbooks never need; the file was not read",
                                {"file": name, "part": member.filename},
                            )
                        if is_sheet:
                            # Scan up to the last complete tag; the rest starts the next block.
                            cut = data.rfind(b">") + 1 or max(0, len(data) - 64)
                            extent.scan(data[:cut])
                            tail = data[cut:]
                        else:
                            tail = data[-16:]
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise WrongFileType(
                    f"{name} is not a readable workbook: {_first_line(exc)}"
                ) from None
            if is_sheet and max_cells is not None and extent.cells > max_cells:
                raise TooManyCells(
                    f"{name}: part {member.filename} has cells from A1 to "
                    f"{extent.corner} ({extent.rows:,} rows x {extent.columns:,} columns = "
                    f"{extent.cells:,} cells; the limit is {max_cells:,}); delete the cells "
                    "far outside the data, or save the sheet as CSV",
                    {
                        "file": name,
                        "part": member.filename,
                        "rows": extent.rows,
                        "columns": extent.columns,
                        "cells": extent.cells,
                        "corner": extent.corner,
                        "limit": max_cells,
                        "dimension": extent.dimension,
                    },
                )


class _Extent:
    """The farthest row and column of an XLSX sheet's cells (a styled empty cell counts too:
    cheaper to scan, and only a sheet formatted far outside its data is refused for it)."""

    def __init__(self) -> None:
        self.rows = 0
        self.columns = 0
        self.dimension: str | None = None

    def scan(self, data: bytes) -> None:
        if self.dimension is None and (found := _DIMENSION.search(data)):
            self.dimension = found.group(1).decode("ascii", "replace")[:40]
        refs = _CELL_REF.findall(data)
        if len(refs) < data.count(b"<c ") + data.count(b"<c\t") + data.count(b"<c\n"):
            refs = _ANY_CELL_REF.findall(data)
        if refs:
            self.rows = max(self.rows, max(int(r) for _, r in refs))
            self.columns = max(self.columns, max(_column_number(c) for c in {c for c, _ in refs}))

    @property
    def cells(self) -> int:
        return self.rows * self.columns

    @property
    def corner(self) -> str:
        letters, n = "", self.columns
        while n:
            n, rest = divmod(n - 1, 26)
            letters = chr(65 + rest) + letters
        return f"{letters or 'A'}{max(self.rows, 1)}"


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _unzips_too_large(name: str, size: int, limit: int) -> UnsafeFile:
    return UnsafeFile(
        f"{name} unpacks to more than {limit / 1048576:,.0f} MB ({size / 1048576:,.0f} MB "
        "found; imports.max_unzipped_mb); the file was not read",
        {"file": name, "unzipped_bytes": size, "limit_bytes": limit},
    )


def _open_workbook(path: Path, name: str, sheet: str | None, chunk_rows: int) -> Table:
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except (CalamineError, ValueError, OSError) as exc:
        raise WrongFileType(f"{name} is not a readable workbook: {_first_line(exc)}") from None
    names = list(workbook.sheet_names)
    if sheet is not None and sheet not in names:
        raise SheetNotFound(
            f"{name} has no sheet {sheet!r}; sheets: {', '.join(repr(n) for n in names)}",
            {"sheet": sheet, "sheets": names},
        )
    if not names:
        raise EmptyFile(f"{name} has no sheets", {"file": name})
    chosen = sheet if sheet is not None else names[0]
    try:
        data = workbook.get_sheet_by_name(chosen)
        rows = data.iter_rows()
        header: list[Any] | None = None
        skipped = 0
        for row in rows:
            skipped += 1
            if any(_filled(v) for v in row):
                header = row
                break
    except (CalamineError, ValueError) as exc:
        raise MalformedFile(f"{name}, sheet {chosen!r}: {_first_line(exc)}") from None
    if header is None:
        raise EmptyFile(f"{name}: sheet {chosen!r} is empty", {"sheet": chosen})
    width = len(header)
    while width and not _filled(header[width - 1]):
        width -= 1
    columns = [_cell_text(v) or f"column_{i + 1}" for i, v in enumerate(header[:width])]
    total = max(0, data.height - skipped)

    def chunks() -> Generator[pd.DataFrame]:
        batch: list[list[Any]] = []
        line = skipped
        start = line + 1
        try:
            for row in rows:
                line += 1
                cells = list(row[:width])
                if len(cells) < width:
                    cells.extend([""] * (width - len(cells)))
                batch.append(cells)
                if len(batch) >= chunk_rows:
                    yield _frame(batch, columns, start)
                    batch, start = [], line + 1
        except (CalamineError, ValueError) as exc:
            raise MalformedFile(f"{name}, sheet {chosen!r}: {_first_line(exc)}") from None
        finally:
            workbook.close()
        if batch:
            yield _frame(batch, columns, start)

    return Table(
        columns=columns,
        chunks=chunks(),
        total_rows=total,
        format="xlsx",
        sheet=chosen,
    )


def _filled(value: Any) -> bool:
    return value is not None and value != ""


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "" if value is None else str(value).strip()


def _frame(batch: list[list[Any]], columns: list[str], start: int) -> pd.DataFrame:
    index = pd.RangeIndex(start, start + len(batch))
    frame = pd.DataFrame(batch, columns=columns, index=index, dtype=object)
    # Blank rows in a sheet are skipped, as in CSV.
    filled = frame.ne("").any(axis=1) & frame.notna().any(axis=1)
    return frame[filled] if not filled.all() else frame
