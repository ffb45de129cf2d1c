"""The preview's audience comes from per-list, per-area counts kept by the import, and always
equals what the snapshot writes (both backends): after a first and a second import, for a
commune picked with its parent, for narrowed carriers, and with numbers in two carriers' lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from broadcast import audience, deliveries
from broadcast.alerts import AlertDraft
from broadcast.db import Database, downgrade
from broadcast.models import (
    AlertCategory,
    Area,
    AudienceAreaCount,
    Carrier,
    Subscriber,
    SubscriberList,
)
from broadcast.settings import Settings
from subscriber_import.service import import_file
from tests.alerts.conftest import People
from tests.alerts.test_audience import _approved
from tests.imports.files import write_csv

CARRIERS = ("viettel", "vinaphone", "mobifone")
# (areas, carriers) as a drafter picks them: 42 is the province, the communes' parent.
CHOICES = [
    (("42",), CARRIERS),
    (("18073",), CARRIERS),
    (("18073", "42"), CARRIERS),  # a commune and the area it lies in: no double count
    (("18100", "18196"), ("viettel",)),  # carriers narrowed
    (("18754", "18073"), ("vinaphone", "mobifone")),
]


def _upload(
    db: Database, settings: Settings, tmp: Path, carrier: str, rows: dict[str, str]
) -> None:
    path = write_csv(
        tmp / f"{carrier}-{len(rows)}.csv",
        [["msisdn", "area"], *([m, a] for m, a in rows.items())],
    )
    import_file(db, settings, carrier_code=carrier, kind="list", path=path, allow_shrink=True)


def _kept_rows(db: Database) -> int:
    """Rows of the kept counts for the lists active now (0: the preview would scan)."""
    with db.session() as session:
        basis = audience.lists_basis(audience.active_lists(session))
        return int(
            session.scalar(
                select(func.count())
                .select_from(AudienceAreaCount)
                .where(AudienceAreaCount.basis == basis)
            )
            or 0
        )


def _check_every_choice(db: Database, tag: str) -> None:
    """Preview count == the snapshot's rows, carrier by carrier, for every choice."""
    with db.session() as session:
        people = People(session)
        for n, (areas, carriers) in enumerate(CHOICES):
            shown = audience.audience_counts(
                session, area_codes=areas, carrier_codes=carriers, test=False
            )
            alert = _approved(session, people, audience_draft(areas, carriers, title=f"{tag} {n}"))
            written = deliveries.write_audience(session, alert, batch_size=100)
            # the fan-out names only the carriers it wrote rows for
            assert {c: n for c, n in shown.items() if n} == written, (areas, shown, written)


def audience_draft(areas: tuple[str, ...], carriers: tuple[str, ...], *, title: str) -> AlertDraft:
    return AlertDraft(
        title=title,
        body="UBND tinh: thu nghiem dem so nguoi nhan.",
        category=AlertCategory.EMERGENCY,  # no daily cap: the count is the whole audience
        area_codes=areas,
        carrier_codes=carriers,
        brandname="UBND HaTinh",
    )


def test_preview_counts_equal_the_snapshot_after_each_import(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    db = seeded_database
    _upload(
        db,
        settings,
        tmp_path,
        "mobifone",
        {"0930000001": "18073", "0930000002": "18754", "0960000009": "18100"},
    )
    _upload(
        db,
        settings,
        tmp_path,
        "viettel",
        {
            "0960000001": "18073",
            "0960000002": "18100",
            "0960000003": "18196",
            "0960000004": "",  # no area: reached only when the whole province is picked
            "0960000005": "18754",
            "0960000009": "18100",  # also in Mobifone's older list: Viettel's now
        },
    )
    _upload(
        db,
        settings,
        tmp_path,
        "vinaphone",
        {"0910000001": "18073", "0960000001": "18073", "0910000002": "18196"},  # one ported
    )
    assert _kept_rows(db) > 0
    with db.session() as session:
        assert audience.audience_counts(
            session, area_codes=["42"], carrier_codes=CARRIERS, test=False
        ) == {"viettel": 5, "vinaphone": 3, "mobifone": 2}
    _check_every_choice(db, "first")

    # Viettel replaces its list: the number VinaPhone took back is Viettel's again, Mobifone's
    # shared number stays with Viettel, one number left Viettel's list.
    _upload(
        db,
        settings,
        tmp_path,
        "viettel",
        {
            "0960000001": "18073",
            "0960000003": "18196",
            "0960000009": "18100",
            "0960000010": "18073",
        },
    )
    assert _kept_rows(db) > 0
    with db.session() as session:
        assert audience.audience_counts(
            session, area_codes=["42"], carrier_codes=CARRIERS, test=False
        ) == {"viettel": 4, "vinaphone": 2, "mobifone": 2}
        assert audience.audience_counts(
            session, area_codes=["18073", "42"], carrier_codes=("viettel",), test=False
        ) == {"viettel": 4}
    _check_every_choice(db, "second")


@pytest.mark.parametrize("picked", [("18073",), ("42",)])
def test_kept_counts_are_what_the_preview_reads(
    seeded_database: Database, settings: Settings, tmp_path: Path, picked: tuple[str, ...]
) -> None:
    """The rows the import keeps answer the preview: a kept figure changed by hand shows."""
    db = seeded_database
    _upload(db, settings, tmp_path, "viettel", {"0960000001": "18073", "0960000002": "18100"})
    with db.session() as session:
        before = audience.audience_counts(
            session, area_codes=picked, carrier_codes=["viettel"], test=False
        )
        session.execute(AudienceAreaCount.__table__.update().values(subscribers=1000))
        after = audience.audience_counts(
            session, area_codes=picked, carrier_codes=["viettel"], test=False
        )
        session.rollback()
    assert before == {"viettel": 1 if picked == ("18073",) else 2}
    assert after == {"viettel": 1000 if picked == ("18073",) else 2000}


def test_the_migration_backfills_the_counts_of_an_existing_database(
    seeded_database: Database,
) -> None:
    """A database from before the kept counts (revision 0003) with active lists gets them
    on upgrade, equal to the scan."""
    db = seeded_database
    downgrade(db.engine, "0003")
    with db.session() as session:
        carriers = dict(session.execute(select(Carrier.code, Carrier.id)).all())
        areas = dict(session.execute(select(Area.code, Area.id)).all())
        for n, (code, numbers) in enumerate(
            {
                "viettel": {"84960000001": "18073", "84960000002": "18100", "84910000001": None},
                "vinaphone": {"84910000001": "18073", "84910000002": "18754"},
            }.items()
        ):
            list_id = session.execute(
                insert(SubscriberList.__table__)
                .values(
                    carrier_id=carriers[code],
                    version=1,
                    status="active",
                    filename="",
                    row_count=len(numbers),
                    activated_at=datetime(2026, 11, 1, n, tzinfo=UTC),
                )
                .returning(SubscriberList.__table__.c.id)
            ).scalar_one()
            session.execute(
                insert(Subscriber.__table__),
                [
                    {"list_id": list_id, "msisdn": m, "area_id": areas.get(a), "id": i}
                    for i, (m, a) in enumerate(numbers.items(), start=1)
                ],
            )
    db.upgrade()
    assert _kept_rows(db) > 0
    with db.session() as session:
        for areas_chosen in (["42"], ["18073"], ["18754", "18100"]):
            kept = audience.audience_counts(
                session, area_codes=areas_chosen, carrier_codes=CARRIERS, test=False
            )
            scanned = audience.audience_counts(
                session, area_codes=areas_chosen, carrier_codes=CARRIERS, test=False, kept=False
            )
            assert kept == scanned, areas_chosen
        assert audience.audience_counts(
            session, area_codes=["42"], carrier_codes=CARRIERS, test=False
        ) == {"viettel": 2, "vinaphone": 2, "mobifone": 0}
