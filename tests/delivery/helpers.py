"""Helpers shared by delivery tests (not fixtures)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rq import Worker
from sqlalchemy import func, select

from broadcast.db import Database
from broadcast.models import Alert, Delivery
from smpp_gateway.simulator import SmscSimulator
from workers.processes import SenderWorker
from workers.runtime import Runtime
from workers.sender import sender_for

if TYPE_CHECKING:
    from delivery.conftest import World


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


LOA = [sys.executable, "-c", "from broadcast.cli import main; main()"]
_runs = itertools.count(1)


class SenderProcesses:
    """`loa worker --carrier CODE` processes: the real command, its SenderWorker, binds and
    signal handling, taking jobs off the carrier's queues (emergency first) while the test
    acts. Their output (stdout and stderr) goes to one file."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], out: Path, expected: str) -> None:
        self.procs = procs
        self.out = out
        self.expected = expected

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self, timeout: float = 20) -> list[int]:
        """The exit codes; a process still running after `timeout` is killed (code < 0)."""
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return [proc.returncode for proc in self.procs]

    def stop(self) -> None:
        """As systemd stops `loa worker`: SIGTERM, and a clean exit is required."""
        self.signal(signal.SIGTERM)
        codes = self.wait()
        output = self.output()
        assert codes == [0] * len(self.procs), output
        # no traceback, but those the test expects (each ends with the `expected` error)
        allowed = output.count(self.expected) if self.expected else 0
        assert output.count("Traceback") <= allowed, output


@contextmanager
def sender_processes(
    world: World,
    carriers: list[str] | tuple[str, ...],
    *args: str,
    env: dict[str, str] | None = None,
    log_level: str = "WARNING",
    registered: int | None = None,
    expected: str = "",
) -> Iterator[SenderProcesses]:
    """One `loa worker --carrier CODE [args]` per carrier, registered with RQ (binds open) on
    entry; stopped with SIGTERM on exit, which must end them cleanly (exit 0, no traceback but
    those ending with the `expected` error) unless the test failed or stopped them itself."""
    out = world.tmp_path / f"senders-{next(_runs)}.out"
    env = {**(env or world.env()), "LOA_LOG_LEVEL": log_level}
    with out.open("wb") as sink:
        procs = [
            subprocess.Popen(
                [*LOA, "worker", "--carrier", code, *args],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            for code in carriers
        ]
    running = SenderProcesses(procs, out, expected)
    expected = registered if registered is not None else len(procs)
    try:
        started = wait_for(
            lambda: (
                Worker.count(connection=world.runtime.redis) >= expected
                or any(p.poll() is not None for p in procs)
            ),
            40,
            0.05,
        )
        assert started and all(p.poll() is None for p in procs), running.output()
        yield running
    except BaseException:
        running.signal(signal.SIGKILL)
        running.wait(10)
        raise
    if any(p.returncode is None for p in procs):
        running.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False
