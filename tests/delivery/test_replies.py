"""People's replies end to end: real senders bound to simulators that answer a share of the
delivered messages; every reply the SMSCs sent is stored once, attributed to the alert that
reached the number, with the number's commune and the keyword it matched."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, select

from broadcast import replies
from broadcast.models import Alert, Area, Carrier, Reply
from delivery.conftest import World
from delivery.helpers import drain, states, wait_for, work
from workers import jobs
from workers.sender import sender_for

KEYWORDS = [
    {"word": "1", "label": "An toàn / Safe", "help": False},
    {"word": "can giup", "label": "Cần giúp / Need help", "help": True},
]
MIX = {"1": 0.5, "Cần giúp": 0.3, "other": 0.2}
CARRIERS = ("viettel", "vinaphone")


def _stored(world: World) -> list[tuple[str, str, str, int | None, str | None, str | None]]:
    with world.database.session() as s:
        return [
            tuple(row)
            for row in s.execute(
                select(
                    Carrier.code, Reply.msisdn, Reply.text, Reply.alert_id, Reply.keyword, Area.code
                )
                .join(Carrier, Carrier.id == Reply.carrier_id)
                .outerjoin(Area, Area.id == Reply.area_id)
                .order_by(Reply.id)
            )
        ]


def _sent(world: World) -> Counter:
    system = {"loa_viettel": "viettel", "loa_vina": "vinaphone"}
    return Counter(
        (system[r.system_id], r.source_addr, r.text)
        for code in CARRIERS
        for r in world.sims[code].replies()
    )


def _settle(world: World) -> None:
    """Keep the senders reading until every reply the simulators sent is stored."""

    def stored_all() -> bool:
        for code in CARRIERS:
            sender_for(world.runtime, code).idle(0.02)
        with world.database.session() as s:
            return s.scalar(select(func.count()).select_from(Reply)) >= sum(_sent(world).values())

    assert wait_for(stored_all, timeout=20)


def test_replies_from_the_smsc_are_stored_and_attributed(make_world: Callable[..., World]) -> None:
    world = make_world(
        CARRIERS,
        sim={"receipt_delay": 0.02, "reply_rate": 0.3, "reply_delay": 0.02, "reply_mix": MIX},
    )
    numbers = {code: world.numbers(150) for code in CARRIERS}
    communes = ("18073", "18100", "18196")
    area_of = {m: communes[i % 3] for code in CARRIERS for i, m in enumerate(numbers[code])}
    first = world.make_alert(numbers, area_of=area_of, reply_keywords=KEYWORDS)
    jobs.fan_out(first)
    work(world.runtime, CARRIERS)
    assert drain(world.runtime, CARRIERS, first)
    _settle(world)

    sent = _sent(world)
    assert 40 <= sum(sent.values()) <= 140  # 30 % of 300, with room for chance
    stored = _stored(world)
    # Each reply once, as the subscriber wrote it, on the carrier whose bind it came by.
    assert Counter((c, m, t) for c, m, t, *_ in stored) == sent
    assert {a for _, _, _, a, _, _ in stored} == {first}
    expected = {"1": "1", "Cần giúp": "can giup"}
    for _, msisdn, text, _, keyword, area in stored:
        assert keyword == expected.get(text, replies.OTHER), text
        assert area == area_of[msisdn]
    assert {k for *_, k, _ in stored} == {"1", "can giup", replies.OTHER}

    with world.database.session() as s:
        summary = replies.summary(s, s.get(Alert, first))
    assert summary["total"] == len(stored)
    assert summary["by_keyword"] == {
        "1": sum(t == "1" for _, _, t, *_ in stored),
        "can giup": sum(t == "Cần giúp" for _, _, t, *_ in stored),
        "other": sum(t not in expected for _, _, t, *_ in stored),
    }
    assert sorted(a["code"] for a in summary["by_area"]) == sorted({area for *_, area in stored})
    assert sum(a["total"] for a in summary["by_area"]) == len(stored)

    # A later alert to some of the same numbers: their replies now answer it, not the first.
    again = numbers["viettel"][:60]
    second = world.make_alert({"viettel": again}, area_of=area_of, body="Cap nhat: nuoc rut")
    before = len(stored)
    world.sims["viettel"].set_config(reply_rate=1.0)
    jobs.fan_out(second)
    work(world.runtime, ["viettel"])
    assert drain(world.runtime, ["viettel"], second)
    _settle(world)
    later = _stored(world)[before:]
    assert len(later) == 60 and {m for _, m, *_ in later} == set(again)
    assert {a for _, _, _, a, _, _ in later} == {second}
    # The second alert asked for no keywords: every reply is "other".
    assert {k for *_, k, _ in later} == {replies.OTHER}
    assert states(world.database, second) == {"delivered": 60}
