"""The database going away mid-broadcast is a fault like the others: a private PostgreSQL
cluster (never the shared server) is stopped for a few seconds while a sender process and the
control worker run; they wait, carry on, and every number arrives exactly once."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError

from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.models import Alert, Delivery, DeliveryState
from broadcast.postgres_server import PrivatePostgres
from tests.conftest import make_settings
from tests.delivery.conftest import World
from tests.delivery.helpers import LOA, accepted_numbers, drain, sender_processes, states, wait_for
from workers import jobs


@pytest.fixture
def seeded_database(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Database]:
    """The delivery fixtures' database, on the private cluster."""
    db = Database(private_postgres.create_database("loa"))
    db.upgrade()
    settings = make_settings(tmp_path, database_url=db.url)
    with db.session() as session:
        sync_carriers(session, settings)
        load_configured_areas(session, settings)
    yield db
    db.dispose()


@pytest.mark.slow
def test_postgres_restarted_mid_send_everyone_gets_it_once(
    make_world: Callable[..., World], private_postgres: PrivatePostgres
) -> None:
    world = make_world(
        ("viettel",), mps=250, batch_size=100, lease_seconds=5, reconcile_interval=2,
        sim={"receipt_delay": 0.02},
    )  # fmt: skip
    numbers = world.numbers(800)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    control_out = world.tmp_path / "control.out"
    with control_out.open("wb") as sink:
        control = subprocess.Popen(
            [*LOA, "worker", "--control"], env=world.env(), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        with sender_processes(world, ["viettel"], registered=2) as sender:
            sim = world.sims["viettel"]
            assert wait_for(lambda: len(sim.submits()) >= 300, 30), sender.output()
            private_postgres.restart(down=3.0)  # mid-send: sessions cut, 3 s without a database
            # The sender waited for the database with numbers left to send.
            assert len(sim.submits()) < len(numbers)
            assert wait_for(lambda: len(sim.submits()) >= len(numbers), 40), sender.output()
            # Every row leaves queued (the sender's outcomes were written, not lost).
            assert wait_for(lambda: states(world.database, alert_id)["queued"] == 0, 20), (
                sender.output()
            )
            assert sender.procs[0].poll() is None, sender.output()
        # (sender_processes: SIGTERM ends it with exit 0 and no traceback.)
        assert control.poll() is None, control_out.read_text()
    finally:
        control.terminate()
        control.wait(20)
    assert control.returncode == 0
    assert "Traceback" not in control_out.read_text(), control_out.read_text()
    assert drain(world.runtime, ["viettel"], alert_id, timeout=15)
    assert states(world.database, alert_id) == {"delivered": len(numbers)}
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers)
    assert max(received.values()) == 1, sum(n - 1 for n in received.values())


@pytest.mark.slow
def test_postgres_stopped_mid_fan_out_the_rest_is_sent_once(
    make_world: Callable[..., World], private_postgres: PrivatePostgres
) -> None:
    """The fan-out job fails when the database goes away half way through the audience;
    once it is back, reconcile runs the fan-out again: the rest is written and sent, nothing
    twice."""
    world = make_world(
        ("viettel",), mps=250, batch_size=100, lease_seconds=5, reconcile_interval=1,
        fan_out_first_rows=100, fan_out_chunk_rows=300, sim={"receipt_delay": 0.02},
    )  # fmt: skip
    numbers = world.numbers(1200)  # positions 1..1200: chunks of 100, 200, 300, 300, 300
    alert_id = world.make_alert({"viettel": numbers})
    carrier_id = world.runtime.store.carrier_ids()["viettel"]
    # Another transaction holds the last number's row (uncommitted): the fan-out commits its
    # first four chunks, then waits on that row in the last one until the database stops.
    blocker = world.database.engine.connect()
    blocker.begin()
    blocker.execute(
        insert(Delivery).values(
            alert_id=alert_id, carrier_id=carrier_id, msisdn=numbers[-1], batch_no=0,
            state=DeliveryState.QUEUED, parts=1,
        )
    )  # fmt: skip
    control_out = world.tmp_path / "control.out"
    with control_out.open("wb") as sink:  # its start-up reconcile enqueues the fan-out
        control = subprocess.Popen(
            [*LOA, "worker", "--control"], env=world.env(), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        with sender_processes(world, ["viettel"], registered=2) as sender:
            sim = world.sims["viettel"]
            assert wait_for(lambda: sum(states(world.database, alert_id).values()) == 900, 30), (
                control_out.read_text()
            )
            assert wait_for(lambda: len(sim.submits()) >= 200, 30), sender.output()
            private_postgres.restart(down=3.0)  # the fan-out's statement is cut off
            with suppress(DBAPIError):
                blocker.close()
            assert wait_for(lambda: len(sim.submits()) >= 1200, 60), (
                control_out.read_text() + sender.output()
            )
            assert wait_for(lambda: states(world.database, alert_id)["queued"] == 0, 20), (
                sender.output()
            )
        assert control.poll() is None, control_out.read_text()
    finally:
        control.terminate()
        control.wait(20)
    assert control.returncode == 0
    assert drain(world.runtime, ["viettel"], alert_id, timeout=15)
    # The fan-out run again wrote the rest: every number once in the table, once at the SMSC;
    # the last receipts may come after the senders' last look, so reconcile completes it.
    assert jobs.reconcile()["fan_outs"] == 0
    assert states(world.database, alert_id) == {"delivered": 1200}
    with world.database.session() as s:
        assert s.scalar(select(func.count(func.distinct(Delivery.msisdn)))) == 1200
        assert s.scalar(select(Alert.status).where(Alert.id == alert_id)).value == "completed"
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers)
    assert max(received.values()) == 1, sum(n - 1 for n in received.values())
