"""Shared fixtures: real SQLite and PostgreSQL databases, a real Redis server, settings.

- `database` is parametrised over SQLite and PostgreSQL: every test that takes it runs on both.
  Each test gets a freshly migrated database (SQLite: a copy of a migrated file; PostgreSQL: a
  database created from a migrated template); one that asks for `seeded_database` gets a copy
  of a template that was also seeded once (`seed`: the carriers and Ha Tinh's areas).
- The tests' people carry a cheap scrypt hash (`people_password_hash`), and their instance
  folders start with the compiled translations (`make_settings`): see docs/testing.md.
- PostgreSQL comes from LOA_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test,
  used only to create and drop private databases). When it cannot be reached the PostgreSQL
  variants are skipped with the reason, unless LOA_REQUIRE_POSTGRES=1 (CI), where they fail.
  The browser tests follow the same rule with LOA_REQUIRE_BROWSER=1 (see `require_or_skip`).
- A run in which no test passed (everything skipped or deselected) fails: a suite that tested
  nothing must not look green.
- `redis_url` is a private redis-server started for the test session (LOA_TEST_REDIS_URL uses an
  existing server instead; its database is flushed before and after each test). Under
  pytest-xdist each worker has its own: a private server, or the URL's database number minus
  the worker's index (gw0: 15, gw1: 14 for …/15).
- The test files that judge rates, windows and deadlines (`SERIAL`) are marked `serial`:
  `python3 tasks.py test` runs them alone after the rest ran on parallel workers.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import make_url
from werkzeug.security import generate_password_hash

from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database, make_engine, upgrade
from broadcast.models import Carrier
from broadcast.postgres_server import PrivatePostgres
from broadcast.redis_server import PrivateRedis
from broadcast.settings import Settings, load_settings
from broadcast.web.i18n import compile_catalogues

PG_ADMIN_URL = os.environ.get("LOA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("LOA_REQUIRE_POSTGRES") == "1"
REQUIRE_BROWSER = os.environ.get("LOA_REQUIRE_BROWSER") == "1"
RUN_ID = uuid.uuid4().hex[:8]


def _pg_conninfo(url: str, dbname: str | None = None) -> str:
    parsed = make_url(url.replace("postgresql+psycopg://", "postgresql://"))
    if dbname:
        parsed = parsed.set(database=dbname)
    return parsed.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")


def _sqlalchemy_pg(url: str, dbname: str) -> str:
    return _pg_conninfo(url, dbname).replace("postgresql://", "postgresql+psycopg://", 1)


def seed(database: Database) -> None:
    """What `seeded_database` holds: the default settings' carriers and Ha Tinh's areas,
    written by the code `loa init` runs."""
    with tempfile.TemporaryDirectory() as instance:
        settings = load_settings({"LOA_INSTANCE_PATH": instance})
    with database.session() as session:
        sync_carriers(session, settings)
        load_configured_areas(session, settings)


class PostgresTemplates:
    """Creates two template databases per test session, migrated and migrated then seeded
    (`seed`), and copies of them.

    A copy costs CREATE DATABASE (0.1 to 0.6 s here, mostly waiting on the disk), so a thread
    makes `AHEAD` copies of each before they are asked for and drops each one after its test:
    a test waits for neither while the server works beside it. Every test still gets a
    database nobody used before."""

    AHEAD = 2
    KINDS = ("empty", "seeded")

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.templates = {"empty": f"loa_tpl_{RUN_ID}", "seeded": f"loa_tpl_{RUN_ID}_seeded"}
        self.created = 0
        self.live: set[str] = set()  # created or asked for, not dropped yet
        self.error: str | None = None
        self.ready = False
        self._copies: dict[str, queue.Queue[str | BaseException]] = {
            kind: queue.Queue() for kind in self.KINDS
        }
        self._tasks: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(_pg_conninfo(self.admin_url), autocommit=True, connect_timeout=3)

    def prepare(self) -> None:
        if self.ready or self.error:
            return
        empty, seeded = self.templates["empty"], self.templates["seeded"]
        try:
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{empty}"')
        except psycopg.Error as exc:
            self.error = f"PostgreSQL not reachable at {self.admin_url}: {exc}".strip()
            return
        engine = make_engine(_sqlalchemy_pg(self.admin_url, empty))
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{seeded}" TEMPLATE "{empty}"')
        database = Database(_sqlalchemy_pg(self.admin_url, seeded))
        try:
            seed(database)
        finally:
            database.dispose()
        self.ready = True

    def _serve(self) -> None:
        """The thread: create and drop copies, in the order asked."""
        with self._admin() as conn:
            while (task := self._tasks.get()) is not None:
                action, kind, name = task
                try:
                    if action == "drop":
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        continue
                    template = self.templates[kind]
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    # A test's commits need not wait for the disk (about 0.7 ms each here):
                    # durability across a server crash is tested on private clusters.
                    conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
                    self._copies[kind].put(name)
                except psycopg.Error as exc:
                    if action == "create":
                        self._copies[kind].put(exc)

    def _ask_copy(self, kind: str) -> None:
        name = f"loa_t_{RUN_ID}_{self.created}"
        self.created += 1
        self.live.add(name)
        self._tasks.put(("create", kind, name))

    def new_database(self, kind: str) -> str:
        """A copy of the migrated ("empty") or seeded ("seeded") template."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="pg-copies", daemon=True)
            self._thread.start()
            for ahead in self.KINDS:
                for _ in range(self.AHEAD):
                    self._ask_copy(ahead)
        self._ask_copy(kind)
        copy = self._copies[kind].get(timeout=120)
        if isinstance(copy, BaseException):
            raise copy
        return _sqlalchemy_pg(self.admin_url, copy)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None
        self.live.discard(name)
        self._tasks.put(("drop", "", name))

    def close(self) -> None:
        if self._thread is not None:
            self._tasks.put(None)
            self._thread.join(60)
        if not self.ready:
            return
        with self._admin() as conn:
            for name in [*self.live, self.templates["seeded"], self.templates["empty"]]:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[PostgresTemplates]:
    templates = PostgresTemplates(PG_ADMIN_URL)
    yield templates
    templates.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def sqlite_seeded_template(sqlite_template: Path) -> Path:
    path = sqlite_template.with_name("seeded.db")
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        seed(database)
        with database.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        database.dispose()
    return path


def require_or_skip(required: bool, variable: str, reason: str) -> NoReturn:
    """Skip for a missing component, or fail when `variable`=1 says the run requires it (CI).

    Works in a test, a fixture or at module level (where the failure is a collection error,
    which fails the run as well)."""
    if required:
        pytest.fail(f"{variable}=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _postgres_or_skip(pg_templates: PostgresTemplates) -> None:
    pg_templates.prepare()
    if pg_templates.error:
        require_or_skip(REQUIRE_PG, "LOA_REQUIRE_POSTGRES", pg_templates.error)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn a green run in which no test passed into a failure, naming why."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus != pytest.ExitCode.OK or reporter is None or session.config.option.collectonly:
        return
    if not reporter.stats.get("passed"):
        skipped = len(reporter.stats.get("skipped", []))
        reporter.write_sep("=", f"no test passed ({skipped} skipped): failing the run", red=True)
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Why each rerun test failed the first time (`-raR` names it only): the error lines of
    its report, so that a flake seen once in CI can be fixed rather than guessed at."""
    for report in terminalreporter.stats.get("rerun", []):
        lines = str(report.longreprtext).splitlines()
        errors = [line for line in lines if line.startswith("E ")][:12] or lines[-12:]
        terminalreporter.write_sep("-", f"first failure of {report.nodeid}", yellow=True)
        for line in errors:
            terminalreporter.write_line(line[:300])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    sqlite_seeded_template: Path,
    pg_templates: PostgresTemplates,
) -> Iterator[str]:
    """A freshly migrated, empty database URL on each backend; already seeded (`seed`) for a
    test that asks for `seeded_database`, a copy of a template seeded once per run (seeding
    each test's copy cost about 0.1 s)."""
    seeded = "seeded_database" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "loa.db"
        shutil.copyfile(sqlite_seeded_template if seeded else sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    _postgres_or_skip(pg_templates)
    url = pg_templates.new_database("seeded" if seeded else "empty")
    yield url
    pg_templates.drop(url)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


# The test files judged by timing (rates and sliding windows at the simulator, pause within a
# second, ETAs, the SMPP session's windows and deadlines): they run alone, after the rest.
# The other delivery tests (recovery, restarts, outcomes, late rows) judge what arrived and
# what the database says, with waits bounded in tens of seconds, and run beside other tests.
SERIAL = frozenset(
    {
        "delivery/test_ceiling.py",
        "delivery/test_control.py",
        "delivery/test_eta.py",
        "delivery/test_limiter.py",
        "gateway/test_cli.py",
        "gateway/test_client.py",
        "gateway/test_mobile_originated.py",
        "gateway/test_simulator.py",
        "gateway/test_validity.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().relative_to(tests).as_posix() in SERIAL:
            item.add_marker(pytest.mark.serial)


def _worker_database(url: str) -> str:
    """A database of the shared Redis server of its own for this xdist worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parsed = redis.connection.parse_url(url)
    base = int(parsed.get("db", 0))
    db = base - int(worker[2:])
    if db < 0:
        raise pytest.UsageError(f"LOA_TEST_REDIS_URL database {base} leaves none for {worker}")
    return urlsplit(url)._replace(path=f"/{db}").geturl()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("LOA_TEST_REDIS_URL")
    if url:
        yield _worker_database(url)
        return
    server = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield redis_server
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@cache
def people_password_hash(password: str) -> str:
    """The stored password hash of the tests' people: scrypt, as accounts.hash_password makes
    it, with a work factor of 2**10 instead of werkzeug's 2**15. The factor is written in the
    hash and check_password_hash reads it from there, so logging in runs the same code and
    costs about 5 ms instead of 0.15 s (most of the alert-rule and sign-in tests' CPU before).
    The production factor is asserted by tests/web/test_auth.py."""
    return generate_password_hash(password, method="scrypt:1024:8:1")


@cache
def _compiled_catalogues() -> Path:
    """The console's translations, compiled once per test process by the code the console
    runs at start (broadcast.web.i18n.compile_catalogues)."""
    folder = Path(tempfile.mkdtemp(prefix="loa-catalogues-"))
    atexit.register(shutil.rmtree, folder, True)
    return compile_catalogues(folder)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: instance folder under tmp_path; nested overrides allowed.

    The instance folder starts with the compiled translations, as a console's has after its
    first start: compiling them again for every test cost about 0.07 s of CPU each.
    (tests/web/test_foundation.py starts a console on a folder without them.)"""
    instance = tmp_path / "instance"
    if not (instance / "translations").exists():
        shutil.copytree(_compiled_catalogues(), instance / "translations")
    env = {"LOA_INSTANCE_PATH": str(instance)}
    return load_settings(env, overrides=overrides)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url, redis_url=redis_url)


@pytest.fixture
def seeded_database(database: Database) -> Database:
    """A migrated database with the configured carriers and the Ha Tinh areas (`seed`): a copy
    of the seeded template when the test asked for it by name, else seeded here."""
    with database.session() as session:
        seeded = session.scalar(select(Carrier.id).limit(1)) is not None
    if not seeded:
        seed(database)
    return database


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own (initdb and pg_ctl on another port of
    127.0.0.1), for the tests that stop the database; never the shared server."""
    if not PrivatePostgres.available():
        if os.environ.get("LOA_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server programs (initdb, pg_ctl) are required")
        pytest.skip("PostgreSQL server programs not installed")
    with PrivatePostgres() as server:
        yield server
