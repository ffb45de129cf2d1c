"""Alembic environment: the engine is handed in by broadcast.db (no URL read from a file)."""

from __future__ import annotations

from alembic import context

from broadcast.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
