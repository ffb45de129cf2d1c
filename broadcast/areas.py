"""Areas are data: a CSV of (code, name, parent_code, level) of any depth.

The demo ships Ha Tinh (config/areas/ha_tinh.csv); an operator loads the official code list
with `loa areas load FILE`. Loading is an upsert by code, parents before children, in one
transaction; a file with an unknown parent, a cycle or a missing column changes nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import audit
from broadcast.errors import ValidationFailed
from broadcast.models import Area

REQUIRED = ("code", "name", "parent_code", "level")


@dataclass(frozen=True)
class AreaRow:
    line: int
    code: str
    name: str
    parent_code: str
    level: str


def read_area_file(path: Path) -> list[AreaRow]:
    """Parse and check the file; errors name the line and the field."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationFailed(
                f"{path.name}: missing column(s) {', '.join(missing)}; "
                f"found {', '.join(reader.fieldnames or [])}",
                {"columns": missing},
            )
        rows = [
            AreaRow(
                line=i,
                code=(r["code"] or "").strip(),
                name=(r["name"] or "").strip(),
                parent_code=(r["parent_code"] or "").strip(),
                level=(r["level"] or "").strip(),
            )
            for i, r in enumerate(reader, start=2)
        ]
    errors: list[str] = []
    seen: dict[str, int] = {}
    for row in rows:
        if not row.code:
            errors.append(f"line {row.line}: code is empty")
        elif row.code in seen:
            errors.append(f"line {row.line}: code {row.code} repeats line {seen[row.code]}")
        else:
            seen[row.code] = row.line
        if not row.name:
            errors.append(f"line {row.line}: name is empty")
        if not row.level:
            errors.append(f"line {row.line}: level is empty")
    if errors:
        raise ValidationFailed(f"{path.name}: " + "; ".join(errors[:20]), {"rows": errors})
    return rows


def load_areas(session: Session, rows: list[AreaRow], *, actor: str = "system") -> int:
    """Upsert areas by code; returns how many rows were written. Raises before writing."""
    existing = {a.code: a for a in session.scalars(select(Area))}
    by_code = {r.code: r for r in rows}
    ordered: list[AreaRow] = []
    placed: set[str] = set(existing) - set(by_code)
    pending = list(rows)
    while pending:
        progressed = [r for r in pending if not r.parent_code or r.parent_code in placed]
        if not progressed:
            bad = pending[0]
            known = bad.parent_code in by_code or bad.parent_code in existing
            why = "is part of a cycle" if known else "is not a known area"
            raise ValidationFailed(
                f"line {bad.line}: parent_code {bad.parent_code} of area {bad.code} {why}",
                {"parent_code": [bad.parent_code]},
            )
        for r in progressed:
            placed.add(r.code)
            ordered.append(r)
        done = {r.code for r in progressed}
        pending = [r for r in pending if r.code not in done]

    for row in ordered:
        parent = existing.get(row.parent_code) if row.parent_code else None
        path = f"{parent.path if parent else '/'}{row.code}/"
        area = existing.get(row.code)
        if area is None:
            area = Area(code=row.code)
            session.add(area)
            existing[row.code] = area
        area.name, area.level, area.path = row.name, row.level, path
        area.parent = parent
    session.flush()
    audit.record(
        session, actor=actor, action="areas.load", object_type="area", after={"rows": len(rows)}
    )
    return len(ordered)


def load_area_file(session: Session, path: Path, *, actor: str = "system") -> int:
    return load_areas(session, read_area_file(path), actor=actor)
