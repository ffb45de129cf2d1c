"""The schema migrates up from empty on SQLite and PostgreSQL and matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from broadcast.db import Database, alembic_config, downgrade
from broadcast.models import Base


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_fresh_database_is_at_head_and_matches_models(database: Database) -> None:
    assert database.current_revision() == head()
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
    assert database.current_revision() == head()


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
