"""The import report and the rejected-rows CSV a carrier downloads to fix its file."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from subscriber_import.schemas import ImportReportSchema

REJECTS_COLUMNS = ("line", "value", "area", "reason")
# A spreadsheet treats a cell starting with one of these as a formula (CSV injection).
FORMULA_START = r"^[=+\-@\t\r]"


SAMPLE_LABELS = 5  # distinct area labels kept per warning, for the carrier to fix its file


@dataclass
class ImportReport:
    """What happened to every row. rows == accepted + duplicates + sum(rejected.values()).

    `mapped` and `warnings` describe accepted rows: pre-2025 labels placed in their new
    commune, and numbers kept at province level (old district, split unit) or with no area
    (unknown label; province-wide alerts still reach them), with a few sample labels each.
    """

    import_id: int
    carrier: str
    kind: str
    filename: str = ""
    format: str = ""
    rows: int = 0
    accepted: int = 0
    converted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    conflicts_by_carrier: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    mapped: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    warning_samples: dict[str, list[str]] = field(default_factory=dict)
    possible_ported: int = 0
    possible_ported_by_carrier: dict[str, int] = field(default_factory=dict)
    per_area: list[dict[str, Any]] = field(default_factory=list)
    list_id: int | None = None
    version: int | None = None
    replaced_list_id: int | None = None
    replaced_count: int | None = None  # numbers in the list this one replaced
    shrink_confirmed: bool = False  # cut more than imports.max_shrink, confirmed by the uploader
    as_of: date | None = None
    rejects_csv: str | None = None
    seconds: float = 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict through the Marshmallow schema (dates as ISO strings)."""
        return ImportReportSchema().dump(self)

    def count_area_matches(self, matches: np.ndarray, labels: np.ndarray) -> None:
        """Count accepted rows whose area was mapped or not placed in a commune."""
        self.mapped += int((matches == "mapped").sum())
        for kind in ("old_district", "split_area", "unknown_area"):
            hit = matches == kind
            if not hit.any():
                continue
            self.warnings[kind] = self.warnings.get(kind, 0) + int(hit.sum())
            samples = self.warning_samples.setdefault(kind, [])
            for label in pd.unique(pd.Series(labels[hit]).astype(str).str.strip()):
                if len(samples) >= SAMPLE_LABELS:
                    break
                if label not in samples:
                    samples.append(label)

    def count_rejects(self, reasons: pd.Series) -> None:
        for reason, n in reasons.value_counts().items():
            self.rejected[str(reason)] = self.rejected.get(str(reason), 0) + int(n)


def defuse_cell(text: str) -> str:
    """One cell of an export, prefixed with ' when a spreadsheet would run it as a formula."""
    return "'" + text if re.match(FORMULA_START, text) else text


def defuse(values: pd.Series) -> pd.Series:
    """Prefix ' to cells a spreadsheet would run as a formula (`defuse_cell` on a column)."""
    text = values.astype(object).where(values.notna(), "").astype(str)
    risky = text.str.contains(FORMULA_START, regex=True)
    return text.where(~risky, "'" + text)


class RejectsWriter:
    """Appends rejected rows chunk by chunk, so memory stays flat whatever the file size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerow(REJECTS_COLUMNS)
        self.rows = 0

    def write(
        self, lines: pd.Index, values: pd.Series, areas: pd.Series | None, reasons: np.ndarray
    ) -> None:
        if len(lines) == 0:
            return
        frame = pd.DataFrame(
            {
                "line": np.asarray(lines),
                "value": defuse(values).to_numpy(),
                "area": defuse(areas).to_numpy() if areas is not None else "",
                "reason": reasons,
            }
        )
        # The header's line ending: the csv module then quotes a cell holding a bare CR, which
        # would otherwise end the row early in every reader.
        frame.to_csv(
            self.path, mode="a", header=False, index=False, encoding="utf-8", lineterminator="\r\n"
        )
        self.rows += len(frame)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
