"""How a list version is stored: one PostgreSQL partition per version (loaded, indexed, then
attached in the import's transaction), positions for chunked snapshots, purge by DROP TABLE;
and that an alert keeps the deliveries it snapshotted when its list is superseded and purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from broadcast import deliveries
from broadcast.db import Database
from broadcast.models import (
    Alert,
    AlertCategory,
    AlertStatus,
    Area,
    Carrier,
    Delivery,
    Role,
    Subscriber,
    SubscriberList,
    User,
)
from broadcast.settings import Settings
from subscriber_import.errors import MalformedFile
from subscriber_import.service import import_file, purge_superseded
from tests.conftest import make_settings
from tests.imports.files import write_csv


def _numbers(prefix: str, count: int) -> list[list[object]]:
    return [["msisdn", "area"]] + [[f"{prefix}{i:05d}", "18073"] for i in range(count)]


def _partitions(db: Database) -> dict[str, int | None]:
    """Partition table → the list id it is attached for (None: the default partition)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'subscriber_partitions' AND c.relkind = 'r'"
            )
        ).all()
    out: dict[str, int | None] = {}
    for name, bound in rows:
        out[name] = None if bound == "DEFAULT" else int(bound.rsplit("(", 1)[1].rstrip(")"))
    return out


def _positions(db: Database, list_id: int) -> list[int]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Subscriber.id).where(Subscriber.list_id == list_id).order_by(Subscriber.id)
            )
        )


def test_each_version_is_its_own_attached_partition_and_a_failed_import_leaves_none(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    small = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000}
    )
    first = import_file(
        seeded_database, small, carrier_code="vinaphone", kind="list",
        path=write_csv(tmp_path / "v1.csv", _numbers("09120", 1500)),
    )  # fmt: skip
    # Positions 1..n, in number order, whatever the chunking: what chunked snapshots range over.
    assert _positions(seeded_database, first.list_id) == list(range(1, 1501))
    rows = _numbers("09130", 2500)
    rows.insert(2001, ["0913000001", "18073", "extra field"])
    with pytest.raises(MalformedFile):
        import_file(
            seeded_database, small, carrier_code="vinaphone", kind="list",
            path=write_csv(tmp_path / "broken.csv", rows),
        )  # fmt: skip
    with seeded_database.session() as session:
        lists = list(session.scalars(select(SubscriberList.id)))
        assert lists == [first.list_id]
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1500
    if seeded_database.engine.dialect.name == "postgresql":
        assert _partitions(seeded_database) == {
            "subscribers_default": None,
            f"subscribers_l{first.list_id}": first.list_id,
        }
        with seeded_database.engine.connect() as conn:
            in_default = conn.execute(
                text("SELECT count(*) FROM subscriber_partitions.subscribers_default")
            ).scalar()
            # The partition carries the parent's indexes (adopted at ATTACH, not rebuilt).
            indexes = set(
                conn.execute(
                    text(
                        "SELECT indexname FROM pg_indexes"
                        " WHERE schemaname = 'subscriber_partitions'"
                        f" AND tablename = 'subscribers_l{first.list_id}'"
                    )
                ).scalars()
            )
        assert in_default == 0
        assert {f"subscribers_l{first.list_id}_{s}" for s in ("pkey", "list_area")} <= indexes


def test_rows_inserted_without_the_importer_get_positions_per_list(database: Database) -> None:
    with database.session() as session:
        carrier = Carrier(code="viettel", name="Viettel")
        session.add(carrier)
        session.flush()
        lists = [SubscriberList(carrier_id=carrier.id, version=v, status="active") for v in (1, 2)]
        session.add_all(lists)
        session.flush()
        a, b = lists[0].id, lists[1].id
        session.execute(
            insert(Subscriber),
            [{"list_id": a, "msisdn": f"8496000000{i}", "area_id": None} for i in range(3)]
            + [{"list_id": b, "msisdn": "84960000009", "area_id": None}],
        )
        session.add(Subscriber(list_id=a, msisdn="84960000005"))
    assert _positions(database, a) == [1, 2, 3, 4]
    assert _positions(database, b) == [1]


def test_an_alert_keeps_its_deliveries_when_its_list_is_superseded_and_purged(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    v1 = import_file(
        seeded_database, settings, carrier_code="vinaphone", kind="list",
        path=write_csv(tmp_path / "v1.csv", _numbers("09120", 50)),
    )  # fmt: skip
    with seeded_database.session() as session:
        user = User(username="approver", password_hash="x", role=Role.APPROVER)
        session.add(user)
        session.flush()
        alert = Alert(
            identifier="storage-test-1",
            title="Bão",
            body="Bão số 3: ở trong nhà.",
            category=AlertCategory.EMERGENCY,
            status=AlertStatus.APPROVED,
            brandname="UBND HaTinh",
            created_by=user.id,
            areas=list(session.scalars(select(Area).where(Area.code == "42"))),
            carriers=list(session.scalars(select(Carrier).where(Carrier.code == "vinaphone"))),
        )
        session.add(alert)
        session.flush()
        chunks = [
            (c.carrier_code, c.rows)
            for c in deliveries.fan_out(session, alert, batch_size=10, first_rows=20, chunk_rows=20)
        ]
        alert_id = alert.id
    assert chunks == [("vinaphone", 20), ("vinaphone", 20), ("vinaphone", 10)]

    import_file(
        seeded_database, settings, carrier_code="vinaphone", kind="list",
        path=write_csv(tmp_path / "v2.csv", _numbers("09130", 30)), allow_shrink=True,
    )  # fmt: skip
    later = datetime.now(UTC) + timedelta(days=settings.imports.retention_days + 1)
    assert purge_superseded(seeded_database, settings, now=later) == 1
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).where(Subscriber.list_id == v1.list_id)) == 0
        kept = session.scalars(select(Delivery.msisdn).where(Delivery.alert_id == alert_id)).all()
    assert len(kept) == 50 and all(m.startswith("849120") for m in kept)
    if seeded_database.engine.dialect.name == "postgresql":
        assert f"subscribers_l{v1.list_id}" not in _partitions(seeded_database)
