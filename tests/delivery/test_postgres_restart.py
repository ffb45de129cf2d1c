"""The database going away mid-broadcast is a fault like the others: a private PostgreSQL
cluster (never the shared server) is stopped for a few seconds while a sender process and the
control worker run; they wait, carry on, and every number arrives exactly once."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
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
    numbers = world.numbers(1500)
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
            assert wait_for(lambda: len(sim.submits()) >= 1500, 40), sender.output()
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
    assert states(world.database, alert_id) == {"delivered": 1500}
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers)
    assert max(received.values()) == 1, sum(n - 1 for n in received.values())
