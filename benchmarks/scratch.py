"""What the benchmark scripts share. A private PostgreSQL database for one run: created on the
shared server, migrated, and dropped at the end whatever happens (`scratch_database`);
`province_database` also loads the configured carriers and areas, as `loa init` does, in an
instance folder of its own. And `timed`, the median of repeated timings."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcast.areas import load_configured_areas  # noqa: E402
from broadcast.bootstrap import sync_carriers  # noqa: E402
from broadcast.db import Database  # noqa: E402
from broadcast.settings import Settings, load_settings  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database() -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database; dropped on the way out."""
    dbname = f"loa_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
            f"/{dbname}"
        )
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def settings_for(url: str, instance: str | Path) -> Settings:
    return load_settings({"LOA_INSTANCE_PATH": str(instance)}, overrides={"database_url": url})


@contextmanager
def province_database() -> Iterator[tuple[Database, Settings]]:
    """A migrated scratch database with the configured carriers and areas, and its settings."""
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="loa-bench-") as instance:
        settings = settings_for(url, instance)
        db = Database(settings.sqlalchemy_url)
        try:
            db.upgrade()
            with db.session() as session:
                sync_carriers(session, settings)
                load_configured_areas(session, settings)
            yield db, settings
        finally:
            db.dispose()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median of `repeat` timings of `fn()`, and its last answer."""
    runs, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result
