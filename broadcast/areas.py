"""Areas are data: the official divisions of the configured province, or a CSV of any depth.

Since 1 July 2025 a province holds its communes (xã), wards (phường) and special zones (đặc
khu) directly; there is no district level. `loa init` loads the configured province from the
vietnam-provinces package (GSO codes); `loa areas load --official` refreshes it and
`loa areas load FILE` takes a CSV of (code, name, parent_code, level).

A load is an upsert by code in one transaction: a bad list changes nothing. Under each root of
the list (a row without parent), an area the list no longer holds is retired, never deleted:
old alerts, lists and reports keep it, but it can no longer be targeted or receive subscribers.
Every path is rebuilt from the parents afterwards, so moving an area moves its whole subtree.

Carriers keep writing pre-2025 labels; `config/areas/old_labels/<province>.csv` maps each old
code and name to the new commune (see read_old_labels and docs/import.md).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import audit
from broadcast.errors import ValidationFailed
from broadcast.models import Area
from broadcast.settings import Settings

REQUIRED = ("code", "name", "parent_code", "level")
OLD_LABEL_COLUMNS = ("old_code", "old_name", "old_level", "old_district_code", "new_code")
# vietnam-provinces' division types → the level Loa stores.
LEVELS = {"xã": "commune", "phường": "ward", "đặc khu": "special_zone"}
PROVINCE_TITLES = {"tỉnh": "Tỉnh", "thành phố trung ương": "Thành phố"}


@dataclass(frozen=True)
class AreaRow:
    line: int
    code: str
    name: str
    parent_code: str
    level: str


@dataclass(frozen=True)
class LoadResult:
    loaded: int
    retired: list[str]


@dataclass(frozen=True)
class OldLabel:
    """A pre-2025 unit: its new commune (`new_codes` has one code), or several codes when it was
    split, or none for an old district: both of the latter stay at province level."""

    code: str
    name: str
    level: str
    new_codes: tuple[str, ...]


def official_source() -> dict[str, str]:
    """Which release of the official list this Loa reads (shown by `loa areas load`)."""
    import vietnam_provinces

    return {
        "package": "vietnam-provinces",
        "version": vietnam_provinces.__version__,
        "data_version": vietnam_provinces.__data_version__,
    }


def official_rows(province_code: str) -> list[AreaRow]:
    """The province and its communes, wards and special zones, from vietnam-provinces' JSON."""
    from vietnam_provinces import NESTED_DIVISIONS_JSON_PATH

    provinces = json.loads(NESTED_DIVISIONS_JSON_PATH.read_text(encoding="utf-8"))
    wanted = str(int(province_code)) if province_code.isdigit() else province_code
    province = next((p for p in provinces if str(p["code"]) == wanted), None)
    if province is None:
        known = ", ".join(f"{p['code']} {p['name']}" for p in provinces)
        raise ValidationFailed(
            f"no province with code {province_code!r} in the official list; known: {known}",
            {"province": [province_code]},
        )
    title = PROVINCE_TITLES.get(province["division_type"], "Tỉnh")
    rows = [AreaRow(1, str(province["code"]), f"{title} {province['name']}", "", "province")]
    for i, ward in enumerate(sorted(province["wards"], key=lambda w: w["code"]), start=2):
        level = LEVELS.get(ward["division_type"], "commune")
        rows.append(AreaRow(i, str(ward["code"]), ward["name"], rows[0].code, level))
    return rows


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


def load_areas(session: Session, rows: list[AreaRow], *, actor: str = "system") -> LoadResult:
    """Upsert areas by code, retire what the list dropped under its roots, rebuild every path.

    Raises before writing: an unknown parent or a cycle changes nothing.
    """
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
        area = existing.get(row.code)
        if area is None:
            area = Area(code=row.code, path="")
            session.add(area)
            existing[row.code] = area
        area.name, area.level, area.retired_at = row.name, row.level, None
        area.parent = existing[row.parent_code] if row.parent_code else None
    _check_no_cycle(existing)
    _rebuild_paths(existing)

    now = datetime.now(UTC)
    roots = [existing[r.code].path for r in rows if not r.parent_code]
    retired = sorted(
        (
            area
            for area in existing.values()
            if area.code not in by_code
            and area.retired_at is None
            and any(area.path.startswith(root) for root in roots)
        ),
        key=lambda a: a.path,
    )
    for area in retired:
        area.retired_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="areas.load",
        object_type="area",
        after={"rows": len(rows), "retired": [a.code for a in retired]},
    )
    return LoadResult(loaded=len(ordered), retired=[a.code for a in retired])


def _check_no_cycle(areas: dict[str, Area]) -> None:
    for area in areas.values():
        seen = {area.code}
        node = area.parent
        while node is not None:
            if node.code in seen:
                raise ValidationFailed(
                    f"area {area.code}: its parent chain loops through {node.code}",
                    {"parent_code": [node.code]},
                )
            seen.add(node.code)
            node = node.parent


def _rebuild_paths(areas: dict[str, Area]) -> None:
    """Every path from the parent links: a moved area takes its descendants along."""
    cache: dict[str, str] = {}

    def path_of(area: Area) -> str:
        if area.code not in cache:
            base = path_of(area.parent) if area.parent is not None else "/"
            cache[area.code] = f"{base}{area.code}/"
        return cache[area.code]

    for area in areas.values():
        area.path = path_of(area)


def load_area_file(session: Session, path: Path, *, actor: str = "system") -> LoadResult:
    return load_areas(session, read_area_file(path), actor=actor)


def load_official(session: Session, province_code: str, *, actor: str = "system") -> LoadResult:
    return load_areas(session, official_rows(province_code), actor=actor)


def load_configured_areas(
    session: Session, settings: Settings, *, actor: str = "system"
) -> LoadResult:
    """What `loa init` loads: the configured file if any, else the official province list."""
    if settings.areas.file is not None:
        return load_area_file(session, settings.areas.file, actor=actor)
    return load_official(session, settings.areas.province, actor=actor)


def read_old_labels(path: Path) -> list[OldLabel]:
    """The old-label mapping of a province (lines starting with # are its source notes)."""

    def data_lines() -> Iterator[str]:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            yield from (line for line in fh if not line.startswith("#"))

    reader = csv.DictReader(data_lines())
    missing = [c for c in OLD_LABEL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(
            f"{path.name}: missing column(s) {', '.join(missing)}", {"columns": missing}
        )
    return [
        OldLabel(
            code=(r["old_code"] or "").strip(),
            name=(r["old_name"] or "").strip(),
            level=(r["old_level"] or "").strip(),
            new_codes=tuple((r["new_code"] or "").split()),
        )
        for r in reader
    ]
