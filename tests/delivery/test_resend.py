"""Resend to the unreached, end to end: real senders against the SMSC simulators fail some
numbers; resends approved by a second person reach exactly those, commune by commune."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import insert, select

from broadcast import accounts, alerts, reach
from broadcast.alerts import AlertDraft
from broadcast.models import (
    AlertCategory,
    Area,
    Carrier,
    Delivery,
    DeliveryState,
    ListStatus,
    Role,
    Subscriber,
    SubscriberList,
    User,
)
from delivery.conftest import World
from delivery.helpers import alert_status, drain, wait_for, work
from workers import jobs

CARRIERS = ("viettel", "vinaphone")
COMMUNES = ("18073", "18100")
FAILED = {DeliveryState.UNDELIVERABLE, DeliveryState.EXPIRED, DeliveryState.REJECTED}


def _people(world: World) -> dict[str, int]:
    with world.database.session() as s:
        return {
            name: accounts.create_user(
                s, username=name, password="correct horse battery", role=role
            ).id
            for name, role in (("author", Role.DRAFTER), ("leader", Role.APPROVER))
        }


def _lists(world: World, per_commune: int) -> dict[str, tuple[str, str]]:
    """Each carrier's list: `per_commune` numbers in each commune. number → (carrier, commune)."""
    where: dict[str, tuple[str, str]] = {}
    with world.database.session() as s:
        areas = dict(s.execute(select(Area.code, Area.id)).all())
        for code in CARRIERS:
            carrier_id = s.scalar(select(Carrier.id).where(Carrier.code == code))
            row = SubscriberList(carrier_id=carrier_id, version=1, status=ListStatus.ACTIVE)
            s.add(row)
            s.flush()
            rows = []
            for commune in COMMUNES:
                for number in world.numbers(per_commune):
                    where[number] = (code, commune)
                    rows.append({"list_id": row.id, "msisdn": number, "area_id": areas[commune]})
            s.execute(insert(Subscriber), rows)
    return where


def _send(world: World, alert_id: int, people: dict[str, int]) -> None:
    """Submitted by its author, approved by the leader, fanned out and sent to the end."""
    with world.database.session() as s:
        author, leader = s.get(User, people["author"]), s.get(User, people["leader"])
        alerts.submit_for_approval(s, alert_id, user=author)
        version = alerts.get_alert(s, alert_id).version
        alerts.approve(s, alert_id, user=leader, version=version, settings=world.runtime.settings)
    jobs.fan_out(alert_id)
    work(world.runtime, CARRIERS)
    assert drain(world.runtime, CARRIERS, alert_id, timeout=20)
    assert wait_for(lambda: alert_status(world.database, alert_id) == "completed", timeout=10)


def _outcome(world: World, alert_id: int) -> dict[str, DeliveryState]:
    with world.database.session() as s:
        rows = s.execute(
            select(Delivery.msisdn, Delivery.state).where(Delivery.alert_id == alert_id)
        ).all()
    return {m: DeliveryState(state) for m, state in rows}


def _accepted_since(world: World, seen: dict[str, int]) -> Counter[str]:
    """Numbers the simulators accepted a submit_sm for since `seen` (records per carrier)."""
    out: Counter[str] = Counter()
    for code, sim in world.sims.items():
        records = sim.submits()
        out.update(r.destination_addr for r in records[seen.get(code, 0) :] if r.error is None)
        seen[code] = len(records)
    return out


def test_resends_reach_exactly_the_numbers_the_simulators_failed(
    make_world: Callable[..., World],
) -> None:
    world = make_world(
        CARRIERS,
        sim={
            "receipt_delay": 0.02,
            "receipt_mix": {"DELIVRD": 0.5, "UNDELIV": 0.3, "EXPIRED": 0.2},
            "permanent_error_rate": 0.05,
        },
    )
    people = _people(world)
    where = _lists(world, per_commune=30)
    with world.database.session() as s:
        alert = alerts.create_draft(
            s,
            AlertDraft(
                title="Lu quet",
                body="Lu quet tai Thanh Sen va Tran Phu. Di chuyen len cao ngay.",
                category=AlertCategory.EMERGENCY,
                area_codes=COMMUNES,
                carrier_codes=CARRIERS,
                brandname="UBND HaTinh",
            ),
            user=s.get(User, people["author"]),
        )
        original = alert.id
    seen: dict[str, int] = {}
    _send(world, original, people)
    assert set(_accepted_since(world, seen)) <= set(where)
    outcome = _outcome(world, original)
    assert set(outcome) == set(where)
    failed = {m for m, state in outcome.items() if state in FAILED}
    assert {outcome[m] for m in failed} == FAILED  # undeliverable, expired and rejected all seen
    with world.database.session() as s:
        ranked = reach.area_progress(s, original)
    assert {r["code"]: r["failed"] for r in ranked} == dict(Counter(where[m][1] for m in failed))

    # The networks recover: every message gets through now.
    for sim in world.sims.values():
        sim.set_config(receipt_mix={"DELIVRD": 1.0}, permanent_error_rate=0.0)

    # First one commune on one carrier (its base station came back up)...
    with world.database.session() as s:
        first = alerts.derive_resend(
            s, original, user=s.get(User, people["author"]), areas=["18073"], carriers=["viettel"]
        ).id
    _send(world, first, people)
    expected = {m for m in failed if where[m] == ("viettel", "18073")}
    assert expected and _accepted_since(world, seen) == dict.fromkeys(expected, 1)
    assert set(_outcome(world, first).values()) == {DeliveryState.DELIVERED}

    # ...then everybody still unreached, and nobody the first resend reached.
    with world.database.session() as s:
        rest = alerts.derive_resend(s, original, user=s.get(User, people["author"])).id
    _send(world, rest, people)
    assert _accepted_since(world, seen) == dict.fromkeys(failed - expected, 1)
    assert set(_outcome(world, rest).values()) == {DeliveryState.DELIVERED}
