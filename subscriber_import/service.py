"""Import a carrier's file: the one service behind the console, the API and `loa import`.

A list import reads the file in chunks, normalises and validates each chunk with vectorised
pandas/arrow code, bulk-loads the accepted numbers as a new list version (PostgreSQL: COPY into
a partition of its own, indexed, then attached; SQLite: executemany; see _BulkWriter), and in
the same transaction supersedes the carrier's previous list. Any refusal rolls the whole
transaction back: a bad file changes nothing. The Import row that records the attempt is
written in transactions of its own, so a refusal is still on record.

Conflicts: a number may sit in several carriers' active lists (porting, stale lists). Lists
stay immutable; the owner of such a number is the carrier whose list was uploaded most
recently (the higher list id). Both carriers see the conflict: the importer in its report,
the other in `coverage()`; `active_count()` counts each number once, for its owner.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import repeat
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import and_, delete, exists, func, insert, select, text, update
from sqlalchemy.orm import Session, aliased

from broadcast import audit
from broadcast.areas import read_old_labels
from broadcast.audience import refresh_area_counts, short_of_reported
from broadcast.db import Database, rowcount
from broadcast.models import (
    Area,
    Carrier,
    CountReport,
    Import,
    ImportKind,
    ImportStatus,
    ListStatus,
    Subscriber,
    SubscriberList,
)
from broadcast.settings import Settings
from subscriber_import.area_lookup import AreaLookup, Match
from subscriber_import.columns import map_columns
from subscriber_import.errors import (
    ImportFailed,
    ImportRejected,
    ListChanged,
    ListShrinks,
    NoValidRows,
    TooManyRows,
    UnknownCarrier,
)
from subscriber_import.isolation import run_limited
from subscriber_import.numbers import NONE, NumberPlan, Reason, normalise
from subscriber_import.readers import Table, open_table
from subscriber_import.records import record_refusal, rejects_path, upload_folder
from subscriber_import.report import ImportReport, RejectsWriter

Progress = Callable[[int, int | None], None]
DUPLICATE = "duplicate"  # written in the rejects CSV, counted in `duplicates`, not `rejected`


def import_file(
    database: Database,
    settings: Settings,
    *,
    carrier_code: str,
    kind: str,
    path: Path,
    filename: str | None = None,
    sheet: str | None = None,
    user_id: int | None = None,
    progress: Progress | None = None,
    as_of: date | None = None,
    allow_shrink: bool = False,
    replacing: int | None = None,
    on_start: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import a list (replaces the carrier's list) or counts (appended). Raises ImportRejected
    (ImportFailed when the import's child process hit a limit or died). `on_start` gets the
    Import row's id once it exists.

    `as_of` is the date of the counts rows that give none: by default the province's date
    (settings.timezone) at the upload, `now` (the clock when None), so a file uploaded at 06:30
    in Ha Tinh is of that day, not of the day before in UTC.

    A list that would cut the active list by more than imports.max_shrink is refused
    (ListShrinks) unless `allow_shrink`. `replacing`, when given, is the id of the active list
    the uploader saw and confirmed to replace: if another import replaced it since, the file is
    refused (ListChanged) rather than applying a confirmation to a list nobody looked at.

    The Import row is written here; the file is read and loaded in a child process under
    imports.max_memory_mb and imports.max_seconds (subscriber_import.isolation)."""
    started = time.perf_counter()
    name = filename or Path(path).name
    as_of = as_of or _province_date(settings, now)
    try:
        kind_enum = ImportKind(kind)
    except ValueError:
        raise ImportRejected(
            f"kind must be 'list' or 'counts', not {kind!r}", {"kind": kind}
        ) from None
    with database.session() as session:
        carrier = session.scalar(select(Carrier).where(Carrier.code == carrier_code))
        if carrier is None or not carrier.active:
            known = session.scalars(
                select(Carrier.code).where(Carrier.active).order_by(Carrier.code)
            )
            raise UnknownCarrier(
                f"unknown carrier {carrier_code!r}; known: {', '.join(known)}",
                {"carrier": carrier_code},
            )
        record = Import(
            carrier_id=carrier.id,
            kind=kind_enum,
            status=ImportStatus.RUNNING,
            filename=name[:255],
            created_by=user_id,
        )
        session.add(record)
        session.flush()
        import_id, carrier_id = record.id, carrier.id
    if on_start is not None:
        on_start(import_id)

    # What the child needs, as plain values: it is started by a fork server, not by a fork of
    # this process (subscriber_import.isolation), so it receives them pickled.
    work = functools.partial(
        _in_child, database.url, settings, import_id, carrier_id, carrier_code, kind_enum,
        Path(path), name, sheet, user_id, as_of, started, allow_shrink, replacing,
    )  # fmt: skip
    try:
        return run_limited(
            work,
            name=name,
            max_memory_mb=settings.imports.max_memory_mb,
            max_seconds=settings.imports.max_seconds,
            progress=progress,
        )
    except ImportFailed as exc:
        record_refusal(
            database,
            import_id,
            exc.code,
            exc.message,
            exc.details,
            rejects_path(settings, import_id),
            status=ImportStatus.FAILED,
        )
        exc.import_id = import_id
        raise
    except ImportRejected as exc:  # recorded by the child
        exc.import_id = import_id
        raise
    except BaseException as exc:  # an internal error, or Ctrl-C on `loa import`
        record_refusal(
            database, import_id, "internal_error", str(exc) or type(exc).__name__, {},
            rejects_path(settings, import_id), status=ImportStatus.FAILED, only_running=True,
        )  # fmt: skip
        raise


def _in_child(
    url: str,
    settings: Settings,
    import_id: int,
    carrier_id: int,
    carrier_code: str,
    kind_enum: ImportKind,
    path: Path,
    name: str,
    sheet: str | None,
    user_id: int | None,
    as_of: date,
    started: float,
    allow_shrink: bool,
    replacing: int | None,
    progress: Progress,
) -> ImportReport:
    """The child's entry point: its own engine (never a connection of the parent's)."""
    own = Database(url)
    try:
        return _run(
            own, settings, import_id, carrier_id, carrier_code, kind_enum, path, name, sheet,
            user_id, progress, as_of, started, allow_shrink, replacing,
        )  # fmt: skip
    finally:
        own.dispose()


def _run(
    database: Database,
    settings: Settings,
    import_id: int,
    carrier_id: int,
    carrier_code: str,
    kind_enum: ImportKind,
    path: Path,
    name: str,
    sheet: str | None,
    user_id: int | None,
    progress: Progress | None,
    as_of: date,
    started: float,
    allow_shrink: bool,
    replacing: int | None,
) -> ImportReport:
    """The import itself, in the child process run_limited started."""
    report = ImportReport(import_id=import_id, carrier=carrier_code, kind=kind_enum.value)
    report.filename = name
    rejects = RejectsWriter(rejects_path(settings, import_id))
    table: Table | None = None
    try:
        table = open_table(
            path,
            filename=name,
            sheet=sheet,
            chunk_rows=settings.imports.chunk_rows,
            max_bytes=settings.imports.max_file_mb * 1024 * 1024,
            max_cells=settings.imports.max_cells,
            max_unzipped_bytes=settings.imports.max_unzipped_mb * 1024 * 1024,
        )
        report.format = table.format
        if table.total_rows is not None and table.total_rows > settings.imports.max_rows:
            raise _too_many(name, table.total_rows, settings)
        with database.session() as session:
            if kind_enum is ImportKind.LIST:
                _import_list(
                    session,
                    settings,
                    table,
                    report,
                    rejects,
                    carrier_id,
                    user_id,
                    progress,
                    allow_shrink=allow_shrink,
                    replacing=replacing,
                )
            else:
                _import_counts(
                    session, settings, table, report, rejects, carrier_id, progress, as_of
                )
            report.rejects_csv = str(rejects.path)
            report.seconds = round(time.perf_counter() - started, 3)
            # Only a running import succeeds: reconcile may have failed this one meanwhile.
            done = session.execute(
                update(Import)
                .where(Import.id == import_id, Import.status == ImportStatus.RUNNING)
                .values(
                    status=ImportStatus.SUCCEEDED,
                    finished_at=datetime.now(UTC),
                    list_id=report.list_id,
                    rejects_path=str(rejects.path),
                    report=report.to_json(),
                )
            )
            if rowcount(done) != 1:
                raise ImportFailed(
                    "import_stopped",
                    f"the import of {name} was marked failed while it ran (its worker was "
                    "thought dead); nothing was imported. Upload the file again",
                    {"file": name},
                )
            summary = report.to_json()
            keep = ("rows", "accepted", "list_id", "version", "replaced_count", "shrink_confirmed")
            after = {k: summary[k] for k in keep}
            if report.conflicts:  # who else holds these numbers: for admins, never the carrier
                after["conflicts_by_carrier"] = summary["conflicts_by_carrier"]
            audit.record(
                session,
                actor=None if user_id is None else f"user:{user_id}",
                action=f"import.{kind_enum.value}",
                object_type="import",
                object_id=import_id,
                after=after,
            )
    except ImportFailed:
        _close(table)
        rejects.discard()
        raise
    except ImportRejected as exc:
        _close(table)
        record_refusal(database, import_id, exc.code, exc.message, exc.details, rejects.path)
        raise
    except Exception as exc:
        _close(table)
        record_refusal(
            database, import_id, "internal_error", f"internal error: {exc}", {}, rejects.path,
            status=ImportStatus.FAILED,
        )  # fmt: skip
        raise
    return report


def _close(table: Table | None) -> None:
    """Stop reading now (closes the file) rather than when the generator is collected."""
    if table is not None:
        table.chunks.close()


def _too_many(name: str, rows: int, settings: Settings) -> TooManyRows:
    return TooManyRows(
        f"{name} has more than {settings.imports.max_rows:,} rows ({rows:,} read); "
        "split the file or raise imports.max_rows",
        {"rows": rows, "limit": settings.imports.max_rows},
    )


def load_plan(settings: Settings) -> NumberPlan:
    return NumberPlan.from_files(settings.number_ranges_file, settings.number_conversions_file)


def load_lookup(session: Session, settings: Settings) -> AreaLookup:
    """The current areas plus the configured province's pre-2025 labels, if it has a mapping."""
    path = settings.areas.old_labels_file
    old_labels = read_old_labels(path) if path is not None else []
    return AreaLookup.load(session, old_labels, settings.areas.province)


# --- lists ---------------------------------------------------------------------------------


def _import_list(
    session: Session,
    settings: Settings,
    table: Table,
    report: ImportReport,
    rejects: RejectsWriter,
    carrier_id: int,
    user_id: int | None,
    progress: Progress | None,
    *,
    allow_shrink: bool,
    replacing: int | None,
) -> None:
    columns = map_columns(table.columns, "list")
    number_col, area_cols = columns["msisdn"][0], columns.get("area", [])
    plan = load_plan(settings)
    areas = load_lookup(session, settings)
    carriers = dict(session.execute(select(Carrier.id, Carrier.code)).all())
    own_code = carriers[carrier_id]

    # One import per carrier at a time (PostgreSQL; SQLite has one writer anyway).
    session.execute(select(Carrier.id).where(Carrier.id == carrier_id).with_for_update())
    version = (
        session.scalar(
            select(func.max(SubscriberList.version)).where(SubscriberList.carrier_id == carrier_id)
        )
        or 0
    ) + 1
    new_list = SubscriberList(
        carrier_id=carrier_id,
        version=version,
        status=ListStatus.IMPORTING,
        filename=report.filename[:255],
        created_by=user_id,
    )
    session.add(new_list)
    session.flush()
    report.list_id, report.version = new_list.id, version

    seen = np.empty(0, dtype=np.int64)  # accepted numbers so far, sorted
    per_area: Counter[int] = Counter()
    ported: Counter[str] = Counter()
    writer = _BulkWriter(session, new_list.id)
    for chunk in table.chunks:
        report.rows += len(chunk)
        if report.rows > settings.imports.max_rows:
            raise _too_many(report.filename, report.rows, settings)
        numbers = normalise(chunk[number_col], plan)
        reason = numbers["reason"].to_numpy(dtype=object)
        if area_cols:
            area_ids, matches = areas.resolve(chunk, area_cols)
        else:
            area_ids = np.full(len(chunk), -1, dtype=np.int64)
            matches = np.full(len(chunk), "", dtype=object)
        valid = reason == None  # noqa: E711
        as_int = _as_int64(numbers["msisdn"], valid)
        dup, keep_sorted = _repeats(as_int, valid, seen)
        accepted = valid & ~dup
        reason = np.where(dup, DUPLICATE, reason)

        seen = np.concatenate([seen, keep_sorted])
        seen.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
        writer.add(as_int[accepted], area_ids[accepted])
        report.accepted += int(accepted.sum())
        if area_cols:
            report.count_area_matches(matches[accepted], chunk[area_cols[0]].to_numpy()[accepted])
        report.duplicates += int(dup.sum())
        report.converted += int(numbers["converted"].to_numpy()[accepted].sum())
        foreign = numbers["carrier"].to_numpy(dtype=object)[accepted]
        for code, count in pd.Series(foreign[foreign != own_code]).value_counts().items():
            ported[str(code)] += int(count)
        codes, counts = np.unique(area_ids[accepted], return_counts=True)
        per_area.update(dict(zip(codes.tolist(), counts.tolist(), strict=True)))
        refused = ~accepted
        if refused.any():
            bad = pd.Series(reason[refused & ~dup])
            report.count_rejects(bad)
            area_cells = chunk[area_cols[0]][refused] if area_cols else None
            rejects.write(
                chunk.index[refused], chunk[number_col][refused], area_cells, reason[refused]
            )
        if progress is not None:
            progress(report.rows, table.total_rows)

    if report.accepted == 0:
        raise NoValidRows(
            f"{report.filename}: no valid number in {report.rows:,} rows "
            f"({_reasons(report.rejected)}); the current list is kept",
            {"rows": report.rows, "rejected": report.rejected},
        )
    report.possible_ported = sum(ported.values())
    report.possible_ported_by_carrier = dict(sorted(ported.items()))
    _check_shrink(
        session, settings, report, carrier_id, own_code, allow_shrink, replacing, table.sheet
    )

    writer.finish()
    others = dict(
        session.execute(
            select(SubscriberList.id, SubscriberList.carrier_id).where(
                SubscriberList.status == ListStatus.ACTIVE, SubscriberList.carrier_id != carrier_id
            )
        ).all()
    )
    if others:
        mine, theirs = aliased(Subscriber), aliased(Subscriber)
        rows = session.execute(
            select(SubscriberList.carrier_id, func.count())
            .select_from(mine)
            .join(theirs, theirs.msisdn == mine.msisdn)
            .join(SubscriberList, SubscriberList.id == theirs.list_id)
            .where(mine.list_id == new_list.id, theirs.list_id.in_(list(others)))
            .group_by(SubscriberList.carrier_id)
        ).all()
        report.conflicts_by_carrier = {carriers[c]: int(n) for c, n in sorted(rows)}
        report.conflicts = sum(report.conflicts_by_carrier.values())

    now = datetime.now(UTC)
    session.execute(
        update(SubscriberList)
        .where(SubscriberList.carrier_id == carrier_id, SubscriberList.status == ListStatus.ACTIVE)
        .values(status=ListStatus.SUPERSEDED, superseded_at=now)
    )
    new_list.status = ListStatus.ACTIVE
    new_list.activated_at = now
    new_list.row_count = report.accepted
    session.flush()
    # The preview's per-area counts change with the lists, in this same transaction.
    refresh_area_counts(session)
    latest = _latest_counts(session, carrier_id)
    report.per_area = _area_rows(areas, per_area, latest)


def _check_shrink(
    session: Session,
    settings: Settings,
    report: ImportReport,
    carrier_id: int,
    carrier_code: str,
    allow_shrink: bool,
    replacing: int | None,
    sheet: str | None,
) -> None:
    """Refuse a list that cuts the active one by more than imports.max_shrink, unless allowed;
    runs before the bulk load is indexed, under the carrier's lock, so the counts compared are
    the ones that would be replaced."""
    current = session.execute(
        select(SubscriberList.id, SubscriberList.row_count).where(
            SubscriberList.carrier_id == carrier_id, SubscriberList.status == ListStatus.ACTIVE
        )
    ).first()
    current_id, current_count = (current[0], int(current[1] or 0)) if current else (None, 0)
    if replacing is not None and current_id != replacing:
        raise ListChanged(
            f"{report.filename}: {carrier_code}'s list changed since it was confirmed "
            f"(list {replacing} is no longer the active one); nothing changed, look again",
            {"confirmed_list_id": replacing, "current_list_id": current_id},
        )
    report.replaced_list_id = current_id
    report.replaced_count = current_count if current_id is not None else None
    limit = Fraction(str(settings.imports.max_shrink))
    if current_count == 0 or Fraction(current_count - report.accepted, current_count) <= limit:
        return
    if allow_shrink:
        report.shrink_confirmed = True
        return
    cut = 1 - report.accepted / current_count
    raise ListShrinks(
        f"{report.filename} would cut {carrier_code}'s list from {current_count:,} to "
        f"{report.accepted:,} numbers ({cut:.0%} fewer, more than imports.max_shrink "
        f"{float(limit):.0%}); nothing changed. If that is right, confirm it: "
        "--allow-shrink (CLI), allow_shrink=true (API)",
        {
            "current": current_count,
            "new": report.accepted,
            "current_list_id": current_id,
            "max_shrink": float(limit),
            "sheet": sheet,  # what a confirmation of the held upload must read again
        },
    )


def _as_int64(msisdn: pd.Series, valid: np.ndarray) -> np.ndarray:
    """E.164 digits (at most 15) as int64, 0 where not valid; arrow's cast, not a Python loop."""
    ints = pc.cast(pc.fill_null(pa.array(msisdn), "0"), pa.int64())
    return np.where(valid, ints.to_numpy(zero_copy_only=False), 0)


def _repeats(
    as_int: np.ndarray, valid: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate mask, this chunk's accepted numbers sorted). A duplicate repeats an earlier
    row of this chunk or a number accepted from an earlier chunk (`seen`, sorted); the first
    occurrence in file order is kept. One stable sort does both checks."""
    key = np.where(valid, as_int, -np.arange(1, len(as_int) + 1))  # invalid rows never match
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeat = np.concatenate([[False], ordered[1:] == ordered[:-1]])[: len(ordered)]
    repeat |= _contains(seen, ordered)  # ascending lookups: cache friendly
    dup = np.empty(len(as_int), dtype=bool)
    dup[order] = repeat
    dup &= valid
    keep_sorted = ordered[~repeat & valid[order]]
    return dup, keep_sorted


def _contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Membership by binary search: far cheaper than np.isin against a growing set."""
    if len(sorted_values) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def _reasons(rejected: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(rejected.items())) or "no data rows"


PARTITIONS = "subscriber_partitions"  # schema of the per-version partitions (migration 0001)


def partition_name(list_id: int) -> str:
    return f"{PARTITIONS}.subscribers_l{int(list_id)}"


class _BulkWriter:
    """Loads one list version on the session's own connection, inside the import's transaction.

    The accepted numbers (int64, a few bytes a row) are kept until the file is read, then
    written sorted by number, so the primary key (msisdn, list_id) is built from presorted
    rows. `id` is the position in that order, 1..n.

    PostgreSQL (how bulk loads are done there): COPY FREEZE into a fresh table with no index
    and no constraint, then CHECK (list_id = N), the primary key and the indexes, each built
    in one sorted pass, then ATTACH PARTITION (no validation scan, thanks to the CHECK). DDL is
    transactional: a refused import leaves no table behind. SQLite: executemany into the
    shared table (its figures are reported, not targeted).
    """

    SLICE = 500_000  # rows per COPY / executemany call (bounds the text buffer)

    def __init__(self, session: Session, list_id: int) -> None:
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        # The driver's own connection (psycopg's COPY, sqlite3's executemany).
        self.raw: Any = self.connection.connection.driver_connection
        self.list_id = int(list_id)
        self.numbers: list[np.ndarray] = []
        self.areas: list[np.ndarray] = []

    def add(self, msisdn: np.ndarray, area_ids: np.ndarray) -> None:
        self.numbers.append(msisdn.astype(np.int64, copy=False))
        self.areas.append(area_ids.astype(np.int64, copy=False))

    def finish(self) -> None:
        numbers = np.concatenate(self.numbers) if self.numbers else np.empty(0, np.int64)
        areas = np.concatenate(self.areas) if self.areas else np.empty(0, np.int64)
        self.numbers = self.areas = []
        order = np.argsort(numbers, kind="stable")
        numbers, areas = numbers[order], areas[order]
        del order
        if self.dialect == "postgresql":
            self._load_partition(numbers, areas)
        else:
            self._load_sqlite(numbers, areas)

    def _load_partition(self, numbers: np.ndarray, areas: np.ndarray) -> None:
        n, table = self.list_id, partition_name(self.list_id)
        local = f"subscribers_l{n}"
        with self.raw.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {table} (LIKE subscribers)")
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN list_id SET DEFAULT {n}")
            for start in range(0, len(numbers), self.SLICE):
                stop = min(start + self.SLICE, len(numbers))
                part = areas[start:stop]
                frame = pa.table(
                    {
                        "msisdn": pa.array(numbers[start:stop]).cast(pa.string()),
                        "area_id": pa.array(part, mask=part < 0, type=pa.int64()),
                        "id": pa.array(np.arange(start + 1, stop + 1, dtype=np.int64)),
                    }
                )
                sink = pa.BufferOutputStream()
                # CSV with nothing quoted: an empty field is NULL (area unknown).
                options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
                pa_csv.write_csv(frame, sink, options)
                with cursor.copy(
                    f"COPY {table} (msisdn, area_id, id) FROM STDIN (FORMAT csv, FREEZE)"
                ) as copy:
                    copy.write(memoryview(sink.getvalue()))
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")  # sorts in memory
            cursor.execute(
                f"ALTER TABLE {table} ALTER COLUMN list_id DROP DEFAULT,"
                f" ADD CONSTRAINT {local}_list CHECK (list_id = {n}),"
                f" ADD CONSTRAINT {local}_pkey PRIMARY KEY (msisdn, list_id)"
            )
            cursor.execute(f"CREATE INDEX {local}_list_area ON {table} (list_id, area_id)")
            cursor.execute(f"CREATE INDEX {local}_list_position ON {table} (list_id, id)")
            # The indexes above match the parent's, so ATTACH adopts them instead of building.
            cursor.execute(f"ALTER TABLE subscribers ATTACH PARTITION {table} FOR VALUES IN ({n})")
            cursor.execute(f"ANALYZE {table}")

    def _load_sqlite(self, numbers: np.ndarray, areas: np.ndarray) -> None:
        cursor = self.raw.cursor()
        try:
            for start in range(0, len(numbers), self.SLICE):
                stop = min(start + self.SLICE, len(numbers))
                part = areas[start:stop]
                cursor.executemany(
                    "INSERT INTO subscribers (list_id, msisdn, area_id, id) VALUES (?, ?, ?, ?)",
                    zip(
                        repeat(self.list_id),
                        numbers[start:stop].astype(str).tolist(),
                        np.where(part < 0, NONE, part).tolist(),
                        range(start + 1, stop + 1),
                        strict=False,
                    ),
                )
        finally:
            cursor.close()


# --- counts --------------------------------------------------------------------------------


def _province_date(settings: Settings, now: datetime | None) -> date:
    """Today in the province (settings.timezone) at `now` (aware; the clock when None)."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(settings.timezone)).date()


def _import_counts(
    session: Session,
    settings: Settings,
    table: Table,
    report: ImportReport,
    rejects: RejectsWriter,
    carrier_id: int,
    progress: Progress | None,
    as_of: date,
) -> None:
    columns = map_columns(table.columns, "counts")
    area_cols, count_col = columns["area"], columns["count"][0]
    date_col = columns.get("as_of", [None])[0]
    default_date = as_of
    report.as_of = default_date
    areas = load_lookup(session, settings)
    row_at: dict[tuple[int, date], int] = {}  # (area, date) → its row in `rows`
    direct: set[tuple[int, date]] = set()  # keys given by a current label
    seen_labels: set[tuple[str, date]] = set()
    accepted = 0
    rows: list[dict[str, Any]] = []
    for chunk in table.chunks:
        report.rows += len(chunk)
        if report.rows > settings.imports.max_rows:
            raise _too_many(report.filename, report.rows, settings)
        area_ids, matches = areas.resolve(chunk, area_cols)
        unknown = matches == Match.UNKNOWN_AREA.value
        # A district's or a split unit's count cannot be given to one commune.
        old_area = (matches == Match.OLD_DISTRICT.value) | (matches == Match.SPLIT_AREA.value)
        counts, bad_count = parse_counts(chunk[count_col])
        if date_col is not None:
            dates, bad_date = parse_dates(chunk[date_col], default_date)
        else:
            dates, bad_date = (
                np.full(len(chunk), default_date, dtype=object),
                np.zeros(len(chunk), bool),
            )
        reason = np.select(
            [old_area, area_ids == -1, unknown, bad_count, bad_date],
            [
                Reason.OLD_AREA.value,
                Reason.UNKNOWN_AREA.value,
                Reason.UNKNOWN_AREA.value,
                Reason.INVALID_COUNT.value,
                Reason.INVALID_DATE.value,
            ],
            default="",
        ).astype(object)
        cells = chunk[area_cols[0]].to_numpy()
        for i in np.flatnonzero(reason == ""):
            key = (int(area_ids[i]), dates[i])
            if matches[i] == Match.MAPPED.value:
                # Old communes merged into one new commune: their counts add up.
                label = (str(cells[i]).strip(), dates[i])
                if label in seen_labels or key in direct:
                    reason[i] = DUPLICATE
                    continue
                seen_labels.add(label)
                report.mapped += 1
                if key in row_at:
                    rows[row_at[key]]["count"] += int(counts[i])
                    accepted += 1
                    continue
            elif key in row_at:
                reason[i] = DUPLICATE
                continue
            else:
                direct.add(key)
            row_at[key] = len(rows)
            accepted += 1
            rows.append(
                {
                    "carrier_id": carrier_id,
                    "area_id": key[0],
                    "as_of": key[1],
                    "count": int(counts[i]),
                    "import_id": report.import_id,
                }
            )
        refused = reason != ""
        report.duplicates += int((reason == DUPLICATE).sum())
        report.count_rejects(pd.Series(reason[refused & (reason != DUPLICATE)]))
        if refused.any():
            rejects.write(
                chunk.index[refused],
                chunk[count_col][refused],
                chunk[area_cols[0]][refused],
                reason[refused],
            )
        if progress is not None:
            progress(report.rows, table.total_rows)
    report.accepted = accepted
    if not rows:
        raise NoValidRows(
            f"{report.filename}: no valid count in {report.rows:,} rows "
            f"({_reasons(report.rejected)}); nothing was recorded",
            {"rows": report.rows, "rejected": report.rejected},
        )
    session.execute(insert(CountReport), rows)
    as_of_dates = {r["as_of"] for r in rows}
    report.as_of = rows[0]["as_of"] if len(as_of_dates) == 1 else None  # per_area has each date
    listed = _active_area_counts(session, carrier_id)
    latest = _latest_counts(session, carrier_id)
    reported_ids = {r["area_id"] for r in rows}
    rows_out = _area_rows(areas, listed, latest)
    report.per_area = [r for r in rows_out if r["area_id"] in reported_ids]
    for row in report.per_area:
        row.pop("area_id", None)


def parse_counts(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Whole numbers >= 0; accepts "1.234", "1,234", "1 234" and Excel's 1234.0."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    text = text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    grouped = text.str.fullmatch(r"\d{1,3}(?:[.,\s\u00a0]\d{3})+")
    text = text.where(~grouped, text.str.replace(r"[.,\s\u00a0]", "", regex=True))
    good = text.str.fullmatch(r"\d{1,15}").to_numpy(dtype=bool)
    counts = np.where(good, text.where(good, "0"), "0").astype(np.int64)
    return counts, ~good


def parse_dates(values: pd.Series, default: date) -> tuple[np.ndarray, np.ndarray]:
    """ISO dates, dd/mm/yyyy (Vietnamese order) and spreadsheet dates; blank → default."""
    raw = values.astype(object)
    text = raw.map(lambda v: v.isoformat()[:10] if isinstance(v, date) else v)
    text = text.where(text.notna(), "").astype(str).str.strip()
    # %Y takes exactly four digits; a year pandas cannot hold (1600, 9999) makes to_datetime
    # raise even with errors="coerce", so such a row is marked unparseable before it gets there.
    year = pd.to_numeric(text.str.extract(r"(?<!\d)(\d{4})(?!\d)", expand=False))
    representable = year.between(pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1)
    text = text.where(year.isna() | representable, "?")
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d"):
        parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
    blank = (text == "").to_numpy()
    bad = parsed.isna().to_numpy() & ~blank
    out = np.array([d.date() if not pd.isna(d) else default for d in parsed], dtype=object)
    return out, bad


# --- coverage and counts -------------------------------------------------------------------


def _latest_counts(session: Session, carrier_id: int) -> dict[int, tuple[int, date]]:
    """area id → (count, as_of) of the carrier's most recent report for that area."""
    latest: dict[int, tuple[int, date]] = {}
    rows = session.execute(
        select(CountReport.area_id, CountReport.count, CountReport.as_of)
        .where(CountReport.carrier_id == carrier_id)
        .order_by(CountReport.as_of, CountReport.id)
    )
    for area_id, count, as_of in rows:
        latest[area_id] = (int(count), as_of)
    return latest


def _active_area_counts(session: Session, carrier_id: int) -> Counter[int]:
    rows = session.execute(
        select(Subscriber.area_id, func.count())
        .join(SubscriberList, SubscriberList.id == Subscriber.list_id)
        .where(SubscriberList.carrier_id == carrier_id, SubscriberList.status == ListStatus.ACTIVE)
        .group_by(Subscriber.area_id)
    )
    return Counter({(-1 if a is None else int(a)): int(n) for a, n in rows})


def _area_rows(
    areas: AreaLookup,
    listed: Counter[int],
    latest: dict[int, tuple[int, date]],
    extra: dict[int, dict[str, Any]] | None = None,
    tree: bool = False,
) -> list[dict[str, Any]]:
    """One row per area with numbers or a reported count; `accepted` includes the subtree.

    With `tree`, the ancestors of those areas get rows too (the province total), and an area
    that reported nothing itself shows the sum of its children's reports, the rule of
    audience.reported_counts: an area's own latest report stands for its whole subtree.
    """
    subtree: Counter[int] = Counter()
    for area_id, n in listed.items():
        info = areas.areas.get(area_id)
        if info is None:
            continue
        for code in info.path.strip("/").split("/"):
            ancestor = areas.any_by_code.get(code)
            if ancestor is not None:
                subtree[ancestor.id] += n
    shown = {a for a in listed if a in areas.areas} | set(latest)
    derived: dict[int, int] = {}
    if tree:
        shown |= {
            ancestor.id
            for a in list(shown)
            if a in areas.areas
            for code in areas.areas[a].path.strip("/").split("/")
            if (ancestor := areas.by_code.get(code)) is not None
        }
        derived = _reported_subtrees(areas, shown, latest)
    out: list[dict[str, Any]] = []
    for area_id in sorted(shown, key=lambda a: areas.areas[a].path if a in areas.areas else ""):
        info = areas.areas.get(area_id)
        if info is None:
            continue
        reported = latest.get(area_id)
        row = {
            "area_id": area_id,
            "area_code": info.code,
            "area_name": info.name,
            "accepted": subtree.get(area_id, 0),
            "reported": reported[0] if reported else derived.get(area_id),
            "as_of": reported[1] if reported else None,
        }
        if extra is not None:
            row.update(extra.get(area_id, {}))
        out.append(row)
    if listed.get(-1):
        out.append(
            {"area_id": None, "area_code": None, "area_name": "", "accepted": listed[-1],
             "reported": None, "as_of": None, **({"conflicts": 0} if extra is not None else {})}
        )  # fmt: skip
    return out


def _reported_subtrees(
    areas: AreaLookup, shown: set[int], latest: dict[int, tuple[int, date]]
) -> dict[int, int]:
    """For shown areas without a report of their own: the sum of their children's reports
    (a child without one counts its own children, recursively); absent when none reported."""
    children: dict[int, list[int]] = {}
    for info in areas.areas.values():
        codes = info.path.strip("/").split("/")
        parent = areas.by_code.get(codes[-2]) if len(codes) > 1 else None
        if parent is not None:
            children.setdefault(parent.id, []).append(info.id)
    memo: dict[int, int | None] = {}

    def value(area_id: int) -> int | None:
        if area_id in latest:
            return latest[area_id][0]
        if area_id not in memo:
            known = [v for c in children.get(area_id, []) if (v := value(c)) is not None]
            memo[area_id] = sum(known) if known else None
        return memo[area_id]

    return {a: v for a in shown - set(latest) if (v := value(a)) is not None}


def coverage(session: Session, carrier_code: str) -> list[dict[str, Any]]:
    """Per area, in tree order (`depth` 0 for the province): numbers in the carrier's active
    list (subtree) against its latest reported count, `short_of_reported` when the list holds
    far fewer (audience.short_of_reported), and `conflicts`: numbers there that another
    carrier's active list also holds (a count only: who holds them is not this carrier's)."""
    carrier_id = _carrier_id(session, carrier_code)
    areas = AreaLookup.load(session)
    listed = _active_area_counts(session, carrier_id)
    latest = _latest_counts(session, carrier_id)
    mine, theirs, their_list = aliased(Subscriber), aliased(Subscriber), aliased(SubscriberList)
    rows = session.execute(
        select(mine.area_id, func.count(func.distinct(mine.msisdn)))
        .join(SubscriberList, SubscriberList.id == mine.list_id)
        .join(theirs, theirs.msisdn == mine.msisdn)
        .join(their_list, their_list.id == theirs.list_id)
        .where(
            SubscriberList.carrier_id == carrier_id,
            SubscriberList.status == ListStatus.ACTIVE,
            their_list.status == ListStatus.ACTIVE,
            their_list.carrier_id != carrier_id,
        )
        .group_by(mine.area_id)
    ).all()
    conflicts = {(-1 if a is None else int(a)): int(n) for a, n in rows}
    extra = {a: {"conflicts": n} for a, n in conflicts.items()}
    out = _area_rows(areas, listed, latest, extra, tree=True)
    for row in out:
        row.setdefault("conflicts", 0)
        if row["area_id"] is None:
            row["conflicts"] = conflicts.get(-1, 0)
        info = areas.areas.get(row.pop("area_id", None) or -1)
        row["depth"] = info.path.strip("/").count("/") if info is not None else 0
        row["short_of_reported"] = short_of_reported(row["accepted"], row["reported"])
    return out


def _carrier_id(session: Session, carrier_code: str) -> int:
    carrier_id = session.scalar(select(Carrier.id).where(Carrier.code == carrier_code))
    if carrier_id is None:
        known = session.scalars(select(Carrier.code).order_by(Carrier.code))
        raise UnknownCarrier(
            f"unknown carrier {carrier_code!r}; known: {', '.join(known)}",
            {"carrier": carrier_code},
        )
    return carrier_id


def active_count(
    session: Session, *, carrier_code: str | None = None, area_code: str | None = None
) -> int:
    """Numbers in active lists, each counted once for its owner (the most recent upload);
    an area includes its whole subtree."""
    lst, newer, newer_list = aliased(SubscriberList), aliased(Subscriber), aliased(SubscriberList)
    query = (
        select(func.count())
        .select_from(Subscriber)
        .join(lst, lst.id == Subscriber.list_id)
        .where(lst.status == ListStatus.ACTIVE)
        .where(
            ~exists().where(
                and_(
                    newer.msisdn == Subscriber.msisdn,
                    newer_list.id == newer.list_id,
                    newer_list.status == ListStatus.ACTIVE,
                    newer_list.id > lst.id,
                )
            )
        )
    )
    if carrier_code is not None:
        query = query.where(lst.carrier_id == _carrier_id(session, carrier_code))
    if area_code is not None:
        path = session.scalar(select(Area.path).where(Area.code == area_code))
        if path is None:
            raise ImportRejected(f"unknown area {area_code!r}", {"area": area_code})
        query = query.join(Area, Area.id == Subscriber.area_id).where(Area.path.startswith(path))
    return int(session.scalar(query) or 0)


def purge_superseded(database: Database, settings: Settings, *, now: datetime | None = None) -> int:
    """Delete the numbers of lists superseded more than retention_days ago (personal data has a
    retention limit), and old rejects files. The list rows stay, marked deleted, for the record
    and for alerts that reference them. Returns the number of lists purged."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.imports.retention_days)
    with database.session() as session:
        ids = list(
            session.scalars(
                select(SubscriberList.id).where(
                    SubscriberList.status == ListStatus.SUPERSEDED,
                    SubscriberList.superseded_at <= cutoff,
                )
            )
        )
        if ids:
            if session.get_bind().dialect.name == "postgresql":
                # A version's numbers are its partition: DROP TABLE, no row-by-row delete.
                for list_id in ids:
                    session.execute(text(f"DROP TABLE IF EXISTS {partition_name(list_id)}"))
            # Rows written outside the importer sit in the default partition (or on SQLite).
            session.execute(delete(Subscriber).where(Subscriber.list_id.in_(ids)))
            session.execute(
                update(SubscriberList)
                .where(SubscriberList.id.in_(ids))
                .values(status=ListStatus.DELETED)
            )
            audit.record(
                session,
                actor="system",
                action="subscribers.purge",
                object_type="subscriber_list",
                after={"lists": ids, "retention_days": settings.imports.retention_days},
            )
        old = session.execute(
            select(Import.id, Import.rejects_path).where(
                Import.rejects_path.is_not(None), Import.finished_at <= cutoff
            )
        ).all()
        for import_id, old_rejects in old:
            if old_rejects is not None:  # the query asked for files, but the column may be NULL
                Path(old_rejects).unlink(missing_ok=True)
            session.execute(update(Import).where(Import.id == import_id).values(rejects_path=None))
        for held in upload_folder(settings).glob("held-*"):
            if held.stat().st_mtime <= cutoff.timestamp():  # never confirmed: personal data
                held.unlink(missing_ok=True)
    return len(ids)
