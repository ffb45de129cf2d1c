"""validity_period: the client puts it on the wire, the simulator records and honours it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from smpp_gateway import smpptime
from smpp_gateway.client import OutboundMessage, Receipt, SmppSession
from smpp_gateway.simulator import SmscSimulator


def _wait(predicate: Callable[[], bool], session: SmppSession, timeout: float = 5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        session.poll(0.02)
        if predicate():
            return True
    return False


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_absolute_times_read_back_to_the_same_tenth_of_a_second(moment: datetime) -> None:
    text = smpptime.absolute(moment)
    assert len(text) == 16 and text.endswith("00+")
    back = smpptime.parse(text, datetime.now(UTC))
    assert back is not None
    assert timedelta(0) <= moment.replace(tzinfo=UTC) - back < timedelta(seconds=0.1)


def test_offsets_and_relative_times_are_read_as_smpp_3_4_says() -> None:
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    # 09:30 at UTC+7 (28 quarter hours) is 02:30 UTC.
    assert smpptime.parse("261201093000028+", now) == datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
    relative = now + timedelta(days=1, hours=2, minutes=3, seconds=4)
    assert smpptime.parse("000001020304000R", now) == relative
    assert smpptime.parse("", now) is None
    assert smpptime.parse("261301000000000+", now) is None  # month 13


def test_the_simulator_records_the_validity_and_expires_what_passed_it(
    start_simulator: Callable[..., SmscSimulator], open_session: Callable[..., SmppSession]
) -> None:
    sim = start_simulator(receipt_delay=1.0)
    receipts: dict[str, Receipt] = {}
    session = open_session(sim, on_receipt=lambda r: receipts.setdefault(r.message_id, r))
    soon = smpptime.absolute(datetime.now(UTC) + timedelta(seconds=0.3))
    later = smpptime.absolute(datetime.now(UTC) + timedelta(hours=24))
    session.submit(OutboundMessage(1, "84912000001", "Lu len", validity_period=soon))
    session.submit(OutboundMessage(2, "84912000002", "Lu len", validity_period=later))
    session.submit(OutboundMessage(3, "84912000003", "Lu len"))
    ids = {o.key: o.message_ids[0] for o in session.flush(5)}
    assert [r.validity_period for r in sim.submits()] == [soon, later, ""]
    assert sim.submits()[0].to_json()["validity_period"] == soon
    assert _wait(lambda: len(receipts) == 3, session)
    states = {key: receipts[mid].state.value for key, mid in ids.items()}
    assert states == {1: "expired", 2: "delivered", 3: "delivered"}
