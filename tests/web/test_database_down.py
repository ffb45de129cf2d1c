"""The database going away is answered 503 with Retry-After (nothing done), on the API and the
console alike, never a 500; once it is back the same request succeeds. A private PostgreSQL
cluster is stopped for this (never the shared server)."""

from __future__ import annotations

from pathlib import Path

import redis
from webtools import add_people, login

from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.postgres_server import PrivatePostgres
from broadcast.web import create_app
from tests.conftest import make_settings


def test_database_away_is_503_then_back(
    private_postgres: PrivatePostgres, tmp_path: Path, redis_client: redis.Redis
) -> None:
    database = Database(private_postgres.create_database("loa"))
    database.upgrade()
    settings = make_settings(tmp_path, database_url=database.url)
    with database.session() as session:
        sync_carriers(session, settings)
        load_configured_areas(session, settings)
    people = add_people(database)
    app = create_app(settings, database=database, redis_client=redis_client)
    app.testing = True
    api, console = app.test_client(), app.test_client()
    try:
        login(console, "drafter")
        assert api.get("/api/v1/alerts", headers=people.auth("drafter")).status_code == 200
        assert console.get("/alerts/").status_code == 200
        private_postgres.stop()
        refused = api.get("/api/v1/alerts", headers=people.auth("drafter"))
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert refused.get_json()["error"]["code"] == "unavailable"
        page = console.get("/alerts/")
        assert page.status_code == 503 and page.headers["Retry-After"] == "30"
        assert "Tạm thời không phục vụ được" in page.get_data(as_text=True)
        private_postgres.start()
        assert api.get("/api/v1/alerts", headers=people.auth("drafter")).status_code == 200
        assert console.get("/alerts/").status_code == 200
    finally:
        database.dispose()
