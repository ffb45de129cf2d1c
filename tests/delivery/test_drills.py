"""Drills (exercise alerts) end to end over the SMSC simulator: only the drill group receives
them, the text on the wire starts with [DIỄN TẬP] ([DIEN TAP] when folded), and they are
outside the daily cap both ways: a drill is never held back by it and never counts towards it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update

from broadcast import registry
from broadcast.models import Alert, RecipientGroup
from delivery.conftest import World
from delivery.helpers import accepted_numbers, drain, states, work
from smpp_gateway.encoding import decode
from workers import jobs


def _join(world: World, numbers: dict[str, list[str]], group: RecipientGroup) -> None:
    with world.database.session() as s:
        for code, msisdns in numbers.items():
            for msisdn in msisdns:
                registry.add_test_recipient(
                    s,
                    msisdn=msisdn,
                    carrier_code=code,
                    normalise=lambda raw: raw,
                    actor="test",
                    group=group,
                )


def _send(world: World, alert_id: int, carriers: tuple[str, ...]) -> None:
    jobs.fan_out(alert_id)
    work(world.runtime, carriers)
    assert drain(world.runtime, carriers, alert_id), states(world.database, alert_id)


def _texts(world: World, code: str) -> dict[str, str]:
    return {
        r.destination_addr or "": decode(
            r.short_message or b"", r.data_coding or 0, r.esm_class or 0
        )
        for r in world.sims[code].submits()
        if r.error is None
    }


def test_a_drill_goes_only_to_the_drill_group_with_its_prefix_on_the_wire(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("viettel", "vinaphone"), sim={"receipt_delay": 0.02})
    public = {"viettel": world.numbers(5), "vinaphone": world.numbers(5)}
    drill_group = {"viettel": world.numbers(2), "vinaphone": world.numbers(1)}
    test_group = {"viettel": world.numbers(1)}
    _join(world, drill_group, RecipientGroup.DRILL)
    _join(world, test_group, RecipientGroup.TEST)

    body = "Diễn tập sơ tán lũ: tập trung tại nhà văn hoá xã."
    drill = world.make_alert(public, category="exercise", body=body)
    _send(world, drill, ("viettel", "vinaphone"))

    assert states(world.database, drill) == {"delivered": 3}
    for code in ("viettel", "vinaphone"):
        assert set(accepted_numbers(world.sims[code])) == set(drill_group[code])
        texts = _texts(world, code)
        assert set(texts.values()) == {f"[DIỄN TẬP] {body}"}

    folded = world.make_alert(public, category="exercise", body=body)
    with world.database.session() as s:
        s.execute(update(Alert).where(Alert.id == folded).values(fold=True))
    _send(world, folded, ("viettel", "vinaphone"))
    seen = [
        decode(r.short_message or b"", r.data_coding or 0, r.esm_class or 0)
        for r in world.sims["viettel"].submits()
        if r.error is None
    ]
    assert "[DIEN TAP] Dien tap so tan lu: tap trung tai nha van hoa xa." in seen


def test_drills_are_outside_the_daily_cap_both_ways(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), sim={"receipt_delay": 0.02})
    member, other, newcomer = world.numbers(3)
    _join(world, {"viettel": [member]}, RecipientGroup.DRILL)
    cap = world.runtime.settings.policy.daily_cap
    assert cap == 3

    def warning(*numbers: str) -> int:
        alert_id = world.make_alert({"viettel": [member, *numbers]}, category="warning")
        with world.database.session() as s:  # the cap applies: not waived
            s.execute(update(Alert).where(Alert.id == alert_id).values(waive_daily_cap=False))
        _send(world, alert_id, ("viettel",))
        return alert_id

    for _ in range(cap):  # a day of drills for the member …
        _send(world, world.make_alert({"viettel": []}, category="exercise"), ("viettel",))
    first = warning(other)  # … does not use up their cap: the warning still reaches them
    assert states(world.database, first) == {"delivered": 2}
    for _ in range(cap - 1):
        warning(other)
    # Three real alerts today: a drill still reaches the member, a fourth warning does not.
    drill = world.make_alert({"viettel": []}, category="exercise")
    _send(world, drill, ("viettel",))
    assert states(world.database, drill) == {"delivered": 1}
    last = warning(newcomer)
    assert states(world.database, last) == {"delivered": 1}  # the newcomer; `member` is capped
    assert accepted_numbers(world.sims["viettel"])[member] == cap + cap + 1  # real + drills
