"""Audience counts, reported counts, ETA and the snapshot into deliveries, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from broadcast import alerts, audience, deliveries
from broadcast.alerts import AlertDraft
from broadcast.errors import ValidationFailed
from broadcast.models import (
    Alert,
    AlertCarrier,
    AlertCategory,
    Area,
    Carrier,
    CountReport,
    Delivery,
    DeliveryState,
    ListStatus,
    SubscriberList,
    TestRecipient,
)
from tests.alerts.conftest import DAYTIME, People

# 42 = Hà Tĩnh, the province; 18073 = Phường Thành Sen, 18652 = Phường Hà Huy Tập and
# 18100 = Phường Trần Phú: communes directly under it (no district level since July 2025).
VT = {
    "84960000001": "18073",
    "84960000002": "18652",
    "84960000003": "18100",
    "84960000004": None,  # area unknown: reached only when the whole province is chosen
    "84960000005": "18073",
}
VN = {"84910000001": "18073", "84910000002": "18100"}
TWO_WARDS = ("18073", "18652")


def _approved(session: Session, people: People, draft: AlertDraft, **approve: Any) -> Alert:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)
    return alerts.approve(
        session, alert.id, version=alert.version, user=people["approver"], now=DAYTIME, **approve
    )


def _deliveries(session: Session, alert_id: int) -> dict[str, tuple[str, int]]:
    rows = session.execute(
        select(Delivery.msisdn, Carrier.code, Delivery.batch_no)
        .join(Carrier, Carrier.id == Delivery.carrier_id)
        .where(Delivery.alert_id == alert_id)
    )
    return {m: (c, b) for m, c, b in rows}


def test_counts_follow_area_subtrees(session: Session, add_list: Callable[..., Any]) -> None:
    add_list("viettel", VT)
    add_list("vinaphone", VN)
    add_list("viettel", {"84969999999": "18073"}, status=ListStatus.SUPERSEDED)  # not active

    def counts(*areas: str) -> dict[str, int]:
        return audience.audience_counts(
            session,
            area_codes=areas,
            carrier_codes=["viettel", "vinaphone", "mobifone"],
            test=False,
        )

    assert counts("18073") == {"viettel": 2, "vinaphone": 1, "mobifone": 0}
    assert counts("18652") == {"viettel": 1, "vinaphone": 0, "mobifone": 0}
    assert counts("18073", "18652") == {"viettel": 3, "vinaphone": 1, "mobifone": 0}
    assert counts("42") == {"viettel": 5, "vinaphone": 2, "mobifone": 0}
    assert counts("42", "18652") == {"viettel": 5, "vinaphone": 2, "mobifone": 0}  # once
    assert counts("18100", "18652") == {"viettel": 2, "vinaphone": 1, "mobifone": 0}


def test_test_alert_counts_the_test_group(session: Session, add_list: Callable[..., Any]) -> None:
    add_list("viettel", VT)
    ids = dict(session.execute(select(Carrier.code, Carrier.id)).all())
    session.add_all(
        [
            TestRecipient(msisdn="84961111111", carrier_id=ids["viettel"], name="Trực ban"),
            TestRecipient(msisdn="84962222222", carrier_id=ids["viettel"]),
            TestRecipient(msisdn="84911111111", carrier_id=ids["vinaphone"]),
        ]
    )
    session.flush()
    assert audience.audience_counts(
        session, area_codes=["18073"], carrier_codes=["viettel", "vinaphone", "gmobile"], test=True
    ) == {"viettel": 2, "vinaphone": 1, "gmobile": 0}


def test_unknown_codes_are_named(session: Session) -> None:
    with pytest.raises(ValidationFailed, match="unknown area code\\(s\\): 777"):
        audience.audience_counts(session, area_codes=["777"], carrier_codes=["viettel"], test=False)
    with pytest.raises(ValidationFailed, match="unknown carrier\\(s\\): sfone"):
        audience.audience_counts(session, area_codes=["42"], carrier_codes=["sfone"], test=False)


def test_reported_counts_never_double_count(session: Session) -> None:
    ids = dict(session.execute(select(Carrier.code, Carrier.id)).all())
    areas = dict(session.execute(select(Area.code, Area.id)).all())

    def report(carrier: str, area: str, count: int, as_of: date) -> dict[str, Any]:
        return {"carrier_id": ids[carrier], "area_id": areas[area], "count": count, "as_of": as_of}

    old, new = date(2026, 10, 1), date(2026, 11, 1)
    session.execute(
        insert(CountReport),
        [
            report("viettel", "18073", 900, old),
            report("viettel", "18073", 1000, new),  # latest wins
            report("viettel", "18652", 300, new),
            report("viettel", "18100", 500, new),
            report("vinaphone", "18652", 70, new),  # only a commune reported
        ],
    )

    def reported(*codes: str) -> dict[str, int | None]:
        return audience.reported_counts(
            session, area_codes=codes, carrier_codes=["viettel", "vinaphone", "mobifone"]
        )

    assert reported("18073") == {"viettel": 1000, "vinaphone": None, "mobifone": None}
    assert reported("18652") == {"viettel": 300, "vinaphone": 70, "mobifone": None}
    # the province has no report of its own: the sum of its communes
    assert reported("42") == {"viettel": 1800, "vinaphone": 70, "mobifone": None}
    # a commune chosen with its province is not added again
    assert reported("42", "18652") == {"viettel": 1800, "vinaphone": 70, "mobifone": None}
    session.execute(insert(CountReport), [report("viettel", "42", 2000, new)])
    assert reported("42", "18652")["viettel"] == 2000  # the province's own report stands


def test_snapshot_one_row_per_number_newest_upload_wins(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
) -> None:
    vt = add_list("viettel", VT, minutes_ago=60)
    # 84960000001 ported to VinaPhone, whose list came later: it goes through VinaPhone only
    vn = add_list("vinaphone", {**VN, "84960000001": "18073"}, minutes_ago=5)
    # 84910000002 also sits in Mobifone's older list: VinaPhone's newer list wins
    add_list("mobifone", {"84910000002": "18100", "84930000001": "18073"}, minutes_ago=120)
    alert = _approved(
        session,
        people,
        make_draft(area_codes=("42",), carrier_codes=("viettel", "vinaphone", "mobifone")),
    )
    written = deliveries.write_audience(session, alert, batch_size=2)
    assert written == {"mobifone": 1, "vinaphone": 3, "viettel": 4}
    rows = _deliveries(session, alert.id)
    assert len(rows) == 8
    assert rows["84960000001"][0] == "vinaphone"
    assert rows["84910000002"][0] == "vinaphone"
    assert rows["84930000001"][0] == "mobifone"
    assert sorted(b for c, b in rows.values() if c == "viettel") == [1, 1, 2, 2]
    states = set(session.scalars(select(Delivery.state).where(Delivery.alert_id == alert.id)))
    assert states == {DeliveryState.QUEUED}
    pinned = dict(
        session.execute(
            select(AlertCarrier.carrier_id, AlertCarrier.list_id).where(
                AlertCarrier.alert_id == alert.id
            )
        ).all()
    )
    assert vt.id in pinned.values() and vn.id in pinned.values()
    # the counts the console showed agree with what was written
    assert (
        audience.audience_counts(
            session,
            area_codes=["42"],
            carrier_codes=["viettel", "vinaphone", "mobifone"],
            test=False,
        )
        == written
    )
    # a retried fan-out adds nothing
    assert deliveries.write_audience(session, alert, batch_size=2) == {}


def test_a_number_in_two_alerts_gets_both(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
) -> None:
    add_list("viettel", VT)
    first = _approved(session, people, make_draft(area_codes=TWO_WARDS, carrier_codes=("viettel",)))
    second = _approved(
        session, people, make_draft(area_codes=TWO_WARDS, carrier_codes=("viettel",), title="Lần 2")
    )
    deliveries.write_audience(session, first, batch_size=500)
    deliveries.write_audience(session, second, batch_size=500)
    assert (
        set(_deliveries(session, first.id))
        == set(_deliveries(session, second.id))
        == {
            "84960000001",
            "84960000002",
            "84960000005",
        }
    )


def test_chunked_snapshot_matches_and_reports_batches(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
) -> None:
    numbers = {f"8496{i:07d}": ("18073" if i % 3 else "18100") for i in range(1, 101)}
    add_list("viettel", numbers)
    alert = _approved(
        session, people, make_draft(area_codes=("18073",), carrier_codes=("viettel",))
    )
    seen = [
        (c.carrier_code, c.rows, c.batches)
        for c in deliveries.fan_out(session, alert, batch_size=10, first_rows=25, chunk_rows=25)
    ]
    expected = sum(1 for a in numbers.values() if a == "18073")
    assert sum(rows for _, rows, _ in seen) == expected and len(seen) == 4
    rows = _deliveries(session, alert.id)
    assert set(rows) == {m for m, a in numbers.items() if a == "18073"}
    batches = sorted(b for _, b in rows.values())
    # batches never straddle chunks and none exceeds the batch size
    assert max(batches.count(b) for b in set(batches)) <= 10
    assert sorted(set(batches)) == sorted(b for _, _, r in seen for b in r)


def test_test_alert_snapshots_only_the_test_group(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
) -> None:
    add_list("viettel", VT)
    ids = dict(session.execute(select(Carrier.code, Carrier.id)).all())
    session.add(TestRecipient(msisdn="84961111111", carrier_id=ids["viettel"]))
    session.flush()
    alert = _approved(session, people, make_draft(category=AlertCategory.TEST))
    assert deliveries.write_audience(session, alert, batch_size=500) == {"viettel": 1}
    assert set(_deliveries(session, alert.id)) == {"84961111111"}


def _sent_before(
    session: Session, people: People, msisdns: list[str], times: list[datetime]
) -> None:
    """Earlier alerts already submitted to these numbers at these times."""
    carrier_id = session.scalar(select(Carrier.id).where(Carrier.code == "viettel"))
    for at in times:
        earlier = Alert(
            identifier=f"earlier-{uuid.uuid4()}",
            title="t",
            body="b",
            category=AlertCategory.INFORMATION,
            status="completed",
            brandname="UBND HaTinh",
            created_by=people["drafter"].id,
        )
        session.add(earlier)
        session.flush()
        session.execute(
            insert(Delivery),
            [
                {
                    "alert_id": earlier.id,
                    "carrier_id": carrier_id,
                    "msisdn": m,
                    "state": DeliveryState.DELIVERED,
                    "submitted_at": at,
                }
                for m in msisdns
            ],
        )


@pytest.mark.parametrize(
    ("category", "waive", "capped"),
    [
        (AlertCategory.INFORMATION, False, True),
        (AlertCategory.WARNING, False, True),
        (AlertCategory.INFORMATION, True, False),
        (AlertCategory.EMERGENCY, False, False),
    ],
)
def test_daily_cap_excludes_numbers_already_sent_three(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
    category: AlertCategory,
    waive: bool,
    capped: bool,
) -> None:
    add_list("viettel", VT)
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    # ..01 got three in the last 24 h; ..02 got two recent and one 25 h ago; ..05 got none
    _sent_before(session, people, ["84960000001", "84960000002"], [now - hour, now - 2 * hour])
    _sent_before(session, people, ["84960000001"], [now - 3 * hour])
    _sent_before(session, people, ["84960000002"], [now - 25 * hour])
    alert = _approved(
        session,
        people,
        make_draft(area_codes=TWO_WARDS, category=category, carrier_codes=("viettel",)),
        waive_daily_cap=waive,
    )
    deliveries.write_audience(session, alert, batch_size=500, now=now)
    expected = {"84960000002", "84960000005"} | (set() if capped else {"84960000001"})
    assert set(_deliveries(session, alert.id)) == expected


def test_snapshot_statement_is_one_insert_select() -> None:
    alert = Alert(id=7, category=AlertCategory.WARNING, parts=2)
    stmt = audience.snapshot_insert_select(
        alert,
        carrier_id=1,
        list_id=3,
        area_paths=["/42/436/"],
        batch_size=500,
        dialect="postgresql",
        newer_list_ids=[4],
    )
    from sqlalchemy.dialects import postgresql

    sql = str(stmt.compile(dialect=postgresql.dialect()))
    assert sql.startswith("INSERT INTO deliveries") and "SELECT" in sql
    assert "ON CONFLICT (alert_id, msisdn) DO NOTHING" in sql
    with pytest.raises(ValueError, match="batch_size"):
        audience.snapshot_insert_select(
            alert, carrier_id=1, list_id=3, area_paths=[], batch_size=0, dialect="sqlite"
        )


def test_list_ids_are_pinned_only_for_active_lists(
    session: Session, people: People, add_list: Callable[..., Any], make_draft: Any
) -> None:
    add_list("viettel", VT)
    alert = _approved(session, people, make_draft())
    plans = audience.plan_snapshot(session, alert)
    by_code = {p.carrier_code: p for p in plans}
    assert by_code["vinaphone"].list_id is None  # no list uploaded yet
    active = session.scalar(select(SubscriberList.id).where(SubscriberList.status == "active"))
    assert by_code["viettel"].list_id == active


def test_a_ported_number_is_not_sent_by_its_old_carrier(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
) -> None:
    add_list("viettel", VT, minutes_ago=60)
    add_list("vinaphone", {"84960000001": "18073"}, minutes_ago=5)  # ported after Viettel's upload
    alert = _approved(session, people, make_draft(area_codes=TWO_WARDS, carrier_codes=("viettel",)))
    assert deliveries.write_audience(session, alert, batch_size=500) == {"viettel": 2}
    assert set(_deliveries(session, alert.id)) == {"84960000002", "84960000005"}


def test_generic_dialect_skips_existing_rows_with_not_exists(
    session: Session,
    people: People,
    add_list: Callable[..., Any],
    make_draft: Callable[..., AlertDraft],
) -> None:
    """The portable statement (no ON CONFLICT) gives the same rows and is safe to re-run."""
    add_list("viettel", VT)
    alert = _approved(session, people, make_draft(area_codes=TWO_WARDS, carrier_codes=("viettel",)))
    [plan] = audience.plan_snapshot(session, alert)
    stmt = plan.insert(alert, batch_size=2, dialect="generic")
    assert "ON CONFLICT" not in str(stmt)
    conn = session.connection()
    first = conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
    again = conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
    assert (first, again) == (3, 0)
    assert sorted(b for _, b in _deliveries(session, alert.id).values()) == [0, 0, 1]
