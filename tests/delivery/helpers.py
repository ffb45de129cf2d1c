"""Helpers shared by delivery tests (not fixtures)."""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy import func, select

from broadcast.db import Database
from broadcast.models import Alert, Delivery
from smpp_gateway.simulator import SmscSimulator
from workers.runtime import Runtime
from workers.sender import SenderWorker, sender_for


def work(runtime: Runtime, carriers: list[str] | tuple[str, ...]) -> None:
    """Run each carrier's sender in burst mode in this process until its queues are empty."""
    for code in carriers:
        SenderWorker(sender_for(runtime, code)).work(burst=True, logging_level="WARNING")


def drain(runtime: Runtime, carriers: list[str] | tuple[str, ...], alert_id: int) -> bool:
    """Read every carrier's receipts until the alert has no open row (10 s at most)."""
    end = time.monotonic() + 10
    senders = [sender_for(runtime, code) for code in carriers]
    while time.monotonic() < end:
        for sender in senders:
            sender.idle(0.02)
            sender.flush_receipts(force_match=True)
        if not runtime.store.has_open(alert_id):
            return True
    return False


def states(database: Database, alert_id: int) -> Counter[str]:
    with database.session() as s:
        rows = s.execute(
            select(Delivery.state, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.state)
        ).all()
    return Counter({st.value: n for st, n in rows})


def alert_status(database: Database, alert_id: int) -> str:
    with database.session() as s:
        return s.get(Alert, alert_id).status.value


def accepted_numbers(sim: SmscSimulator) -> Counter[str]:
    """Numbers the simulator accepted a submit_sm for (first part only), with counts."""
    return Counter(r.destination_addr for r in sim.submits() if r.error is None)
