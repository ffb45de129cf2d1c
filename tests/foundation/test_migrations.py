"""The schema migrates up from empty on SQLite and PostgreSQL and matches the models."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Engine,
    Enum,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    inspect,
    text,
)
from sqlalchemy.exc import DatabaseError

from broadcast.db import Database, alembic_config, downgrade
from broadcast.models import Base

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_fresh_database_is_at_head_and_matches_models(database: Database) -> None:
    assert database.current_revision() == HEAD
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    tables = set(inspect(database.engine).get_table_names())
    assert {"deliveries", "delivery_parts", "receipts", "audit_log", "subscribers"} <= tables


def test_hot_query_indexes_exist(database: Database) -> None:
    inspector = inspect(database.engine)
    names = {
        table: {ix["name"] for ix in inspector.get_indexes(table)}
        for table in ("subscribers", "deliveries", "delivery_parts")
    }
    assert "ix_subscribers_list_area" in names["subscribers"]
    assert "ix_deliveries_alert_state" in names["deliveries"]
    assert "ix_delivery_parts_carrier_message" in names["delivery_parts"]


def test_downgrade_to_empty_and_up_again(database: Database) -> None:
    downgrade(database.engine, "base")
    assert "deliveries" not in inspect(database.engine).get_table_names()
    database.upgrade()
    assert database.current_revision() == HEAD


def test_audit_log_is_append_only(database: Database) -> None:
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (actor, action, object_type) "
                "VALUES ('tester', 'alert.approve', 'alert')"
            )
        )
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["tester"]


def _one_row_in_every_table(engine: Engine) -> dict[str, int]:
    """One row in every table of the schema as it is now (reflected, whatever the revision),
    each NOT NULL reference pointing at row 1 of its table: the rows an upgrade must carry
    over, and the references that make SQLite refuse to drop a table others point at."""
    meta = MetaData()
    meta.reflect(engine)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            row: dict[str, object] = {}
            for column in table.columns:
                if column.primary_key and not column.foreign_keys:
                    row[column.name] = 1
                elif column.nullable or column.server_default is not None:
                    continue
                elif column.foreign_keys:
                    row[column.name] = 1
                else:
                    row[column.name] = _a_value(column.type)
            conn.execute(table.insert().values(**row))
            counts[table.name] = 1
    return counts


def _a_value(kind: object) -> object:
    if isinstance(kind, Enum):
        return kind.enums[0]
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer | Numeric):
        return 1
    if isinstance(kind, DateTime):
        return datetime(2026, 11, 30, tzinfo=UTC)
    if isinstance(kind, Date):
        return date(2026, 11, 30)
    if isinstance(kind, JSON):
        return []
    if isinstance(kind, LargeBinary):
        return b"x"
    return "x"


def test_a_database_in_use_upgrades_from_before_this_sessions_migrations(
    database: Database,
) -> None:
    """Revision 0003 with a row in every table (alerts with deliveries, carriers with lists):
    every later migration carries the rows over. SQLite cannot drop a table other rows
    reference, so a migration that recreates `alerts` or `carriers` (batch mode) fails here."""
    downgrade(database.engine, "0003")
    before = _one_row_in_every_table(database.engine)
    with database.engine.begin() as conn:  # the alert was sending under the old version
        conn.execute(text("UPDATE alerts SET started_at = '2026-11-30 08:00:00+00:00'"))
    database.upgrade()
    assert database.current_revision() == HEAD
    with database.engine.connect() as conn:
        for table in ("carriers", "alerts", "deliveries", "subscribers", "users", "areas"):
            assert table in before
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1, table
        # 0009: an alert started before it counts as fanned out (reconcile leaves it alone),
        # and the list positions are a b-tree on every partition.
        assert conn.execute(text("SELECT fanned_out_at IS NOT NULL FROM alerts")).scalar()
        if conn.dialect.name == "postgresql":
            defs = (
                conn.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'subscribers%'"
                        " AND indexdef LIKE '%(list_id, id)'"
                    )
                )
                .scalars()
                .all()
            )
            assert len(defs) >= 2 and all("USING btree" in d for d in defs), defs
