"""Errors, retries, receipts that overtake their submit response, and overlapping alerts."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from broadcast.deliveries import Outcomes, ReceiptIn
from broadcast.models import Alert, Delivery, DeliveryState
from broadcast.settings import DeliverySettings
from delivery.conftest import World
from delivery.helpers import alert_status, drain, states, work
from smpp_gateway.codec import ESME_RINVDSTADR
from workers import jobs


def test_transient_and_permanent_errors_add_up(make_world: Callable[..., World]) -> None:
    world = make_world(
        ("viettel",),
        sim={"receipt_delay": 0.02, "transient_error_rate": 0.05, "permanent_error_rate": 0.02},
    )
    numbers = world.numbers(500)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel"])
    assert drain(world.runtime, ["viettel"], alert_id)

    outcomes: dict[str, list[int | None]] = defaultdict(list)
    submits = world.sims["viettel"].submits()
    for record in submits:
        outcomes[record.destination_addr].append(record.error)
    accepted = {n for n, errs in outcomes.items() if None in errs}
    refused = {n for n, errs in outcomes.items() if ESME_RINVDSTADR in errs}
    assert set(outcomes) == set(numbers)
    assert all(errs.count(None) <= 1 for errs in outcomes.values())
    assert accepted.isdisjoint(refused)
    assert len(refused) > 0 and any(len(e) > 1 for e in outcomes.values())  # retries happened
    counts = states(world.database, alert_id)
    assert counts == {"delivered": len(accepted), "rejected": len(refused)}
    with world.database.session() as s:
        attempts = s.scalar(
            select(func.sum(Delivery.attempts)).where(Delivery.alert_id == alert_id)
        )
        errors = s.scalars(
            select(Delivery.last_error).where(Delivery.state == DeliveryState.REJECTED)
        ).all()
    assert attempts == len(submits)  # every submit_sm the SMSC saw is accounted for
    assert all("0x0B" in e for e in errors)


def test_a_batch_left_with_retries_only_lets_the_next_batches_go_first(
    make_world: Callable[..., World],
) -> None:
    """A transient failure is retried after its backoff (2 s, the default). A batch whose
    only rows left wait for such a retry gives them back, behind the carrier's other batches,
    instead of holding the sender idle: every first attempt of the later batches leaves
    before the first batch's retries. Given back and claimed again, a row still keeps its
    backoff."""
    backoff = DeliverySettings().retry_backoff_initial
    world = make_world(
        ("viettel",), sim={"transient_error_rate": 0.1}, retry_backoff_initial=backoff
    )
    numbers = world.numbers(200)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel"])

    submits: dict[str, list[tuple[float, int | None]]] = defaultdict(list)
    for record in world.sims["viettel"].submits():
        submits[record.destination_addr].append((record.time, record.error))
    assert all([e for _, e in tries].count(None) == 1 for tries in submits.values())
    assert set(submits) == set(numbers)
    with world.database.session() as s:
        rows = s.execute(
            select(Delivery.msisdn, Delivery.batch_no).where(Delivery.alert_id == alert_id)
        ).all()
    batch_of = {msisdn: batch for msisdn, batch in rows}
    assert max(batch_of.values()) == 4  # batches of 50
    retried = [tries for n, tries in submits.items() if batch_of[n] == 1 and len(tries) > 1]
    assert retried, "no transient failure in the first batch (the simulator's seed is fixed)"
    later_firsts = max(tries[0][0] for n, tries in submits.items() if batch_of[n] > 1)
    assert later_firsts < min(tries[1][0] for tries in retried)
    for tries in submits.values():
        for attempt, ((before, _), (after, _)) in enumerate(itertools.pairwise(tries)):
            assert after - before >= 0.9 * backoff * 2**attempt, tries  # 2 s, 4 s, …


def test_a_number_in_two_alerts_gets_both(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), sim={"receipt_delay": 0.02})
    shared = world.numbers(30)
    first = world.make_alert({"viettel": shared + world.numbers(20)}, body="Bao so 1")
    second = world.make_alert({"viettel": shared + world.numbers(20)}, body="Bao so 2")
    jobs.fan_out(first)
    jobs.fan_out(second)
    work(world.runtime, ["viettel"])
    assert drain(world.runtime, ["viettel"], first)
    assert drain(world.runtime, ["viettel"], second)
    seen: dict[tuple[str, bytes], int] = defaultdict(int)
    for r in world.sims["viettel"].submits():
        seen[(r.destination_addr, r.short_message)] += 1
    assert set(seen.values()) == {1}
    for number in shared:
        assert {text for n, text in seen if n == number} == {b"Bao so 1", b"Bao so 2"}
    assert states(world.database, first) == {"delivered": 50}
    assert states(world.database, second) == {"delivered": 50}


def test_a_receipt_before_its_submit_response_is_matched_later(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("viettel",))
    alert_id = world.make_alert({"viettel": world.numbers(3)})
    jobs.fan_out(alert_id)
    store = world.runtime.store
    carrier_id = store.carrier_ids()["viettel"]
    claim = store.claim(alert_id, carrier_id, 1)
    ids = [row.id for row in claim.rows]
    # The SMSC's receipts overtake the responses: stored, not matched, nothing lost.
    store.store_receipts(
        carrier_id, [ReceiptIn(f"a{i}", "delivered", "000", None) for i in range(3)]
    )
    assert not store.match_receipts(carrier_id)
    store.record(
        alert_id, carrier_id, Outcomes(accepted=[(i, (f"a{n}",)) for n, i in enumerate(ids)])
    )
    assert states(world.database, alert_id) == {"submitted": 3}
    moved = store.match_receipts(carrier_id)
    assert sum(moved.values()) == 3
    assert states(world.database, alert_id) == {"delivered": 3}


def test_multipart_and_receipt_states(make_world: Callable[..., World]) -> None:
    """Two-part alerts over UDH (viettel) and SAR (vinaphone); a receipt mix with failures."""
    world = make_world(
        sim={"receipt_delay": 0.02, "receipt_mix": {"DELIVRD": 0.8, "UNDELIV": 0.2}},
    )
    body = "Canh bao lu quet tai cac xa ven song. " * 5  # 190 GSM characters: two parts
    audience = {"viettel": world.numbers(40), "vinaphone": world.numbers(40)}
    alert_id = world.make_alert(audience, body=body)
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel", "vinaphone"])
    assert drain(world.runtime, ["viettel", "vinaphone"], alert_id)
    for code, numbers in audience.items():
        per_number = Counter(r.destination_addr for r in world.sims[code].submits())
        assert per_number == dict.fromkeys(numbers, 2)
    counts = states(world.database, alert_id)
    assert counts["delivered"] + counts["undeliverable"] == 80
    assert 0 < counts["undeliverable"] < 80
    with world.database.session() as s:
        parts = s.execute(
            select(Delivery.parts, Delivery.parts_final).where(Delivery.alert_id == alert_id)
        ).all()
    assert set(parts) == {(2, 2)}


def test_nothing_is_sent_after_the_alert_expires(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",))
    alert_id = world.make_alert({"viettel": world.numbers(20)})
    jobs.fan_out(alert_id)
    with world.database.session() as s:
        s.get(Alert, alert_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    work(world.runtime, ["viettel"])
    assert world.sims["viettel"].submits() == []
    assert states(world.database, alert_id) == {"expired": 20}
    assert alert_status(world.database, alert_id) == "completed"


def test_an_alert_that_expires_mid_batch_sends_nothing_after_its_expiry(
    make_world: Callable[..., World],
) -> None:
    """One batch of 100 at 20 messages a second takes 5 s; the alert expires after about 1.5 s.
    The simulator's arrival times show nothing reached it after the expiry instant, and the
    rows not sent by then end expired."""
    world = make_world(("viettel",), mps=20, batch_size=100, sim={"receipt_delay": 0.01})
    alert_id = world.make_alert({"viettel": world.numbers(100)})
    jobs.fan_out(alert_id)
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    with world.database.session() as s:
        s.get(Alert, alert_id).expires_at = expires
    work(world.runtime, ["viettel"])
    assert drain(world.runtime, ["viettel"], alert_id)
    arrivals = [r.time for r in world.sims["viettel"].submits()]
    assert arrivals, "nothing was sent before the expiry"
    # The simulator stamps a PDU when its thread reads it: allow the socket and a busy machine
    # 0.1 s. Without the check the batch goes on for 3.5 s after the expiry.
    assert max(arrivals) <= expires.timestamp() + 0.1, max(arrivals) - expires.timestamp()
    counts = states(world.database, alert_id)
    # The SMSC was told the expiry too (validity_period): a message that arrived in the last
    # moments gets an EXPIRED receipt (receipts come 10 ms later; arrivals are 50 ms apart).
    delivered = counts.get("delivered", 0)
    assert len(arrivals) - 3 <= delivered <= len(arrivals)
    assert counts == {"delivered": delivered, "expired": 100 - delivered}
    assert counts["expired"] >= 40
    assert alert_status(world.database, alert_id) == "completed"
