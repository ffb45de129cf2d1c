"""The handles a worker process needs (settings, database, Redis), built once per process.

RQ imports jobs by dotted path and calls them with ids only, so a job finds its handles here:
the `loa worker` command installs a Runtime at start; a plain `rq worker` gets one built
lazily from the settings (LOA_CONFIG and LOA_* variables) on the first job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from broadcast.db import Database
from broadcast.deliveries import SqlDeliveryStore
from broadcast.redis_server import connect, redis_url_for
from broadcast.settings import Settings, load_settings


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: redis.Redis
    store: SqlDeliveryStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = SqlDeliveryStore(self.database, self.settings.delivery)

    def close(self) -> None:
        self.redis.close()
        self.database.dispose()


def build_runtime(settings: Settings, database: Database | None = None) -> Runtime:
    url = redis_url_for(settings.redis_url, settings.instance_path)
    return Runtime(
        settings=settings,
        database=database or Database(settings.sqlalchemy_url),
        redis=connect(url),
    )


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    """Make `runtime` the one jobs in this process use (None forgets it)."""
    global _current
    _current = runtime


def current() -> Runtime:
    global _current
    if _current is None:
        _current = build_runtime(load_settings())
    return _current
