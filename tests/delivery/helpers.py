"""Helpers shared by delivery tests (not fixtures)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from rq import Queue
from sqlalchemy import func, select

from broadcast import keys
from broadcast.db import Database
from broadcast.models import Alert, Delivery
from smpp_gateway.simulator import SmscSimulator
from workers.processes import SenderWorker
from workers.runtime import Runtime
from workers.sender import sender_for


def work(runtime: Runtime, carriers: list[str] | tuple[str, ...]) -> None:
    """Run each carrier's sender in burst mode in this process until its queues are empty."""
    for code in carriers:
        SenderWorker(sender_for(runtime, code)).work(burst=True, logging_level="WARNING")


def drain(
    runtime: Runtime, carriers: list[str] | tuple[str, ...], alert_id: int, timeout: float = 10
) -> bool:
    """Read every carrier's receipts until the alert has no open row."""
    end = time.monotonic() + timeout
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


class ThreadSender:
    """One carrier's sender in a background thread, taking jobs off its queues (emergency
    first) like `loa worker` does, so a test can act while it sends."""

    def __init__(self, runtime: Runtime, code: str) -> None:
        self.runtime = runtime
        self.code = code
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            sender = sender_for(self.runtime, self.code)
            queues = [Queue(n, connection=self.runtime.redis) for n in keys.send_queues(self.code)]
            while not self.stop.is_set():
                found = Queue.dequeue_any(queues, None, connection=self.runtime.redis)
                if found:
                    found[0].perform()
                else:
                    sender.idle(0.02)
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def join(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.errors, self.errors


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False
